// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IHalo2Verifier} from "../interfaces/IHalo2Verifier.sol";
import {FieldEncoding} from "./FieldEncoding.sol";

/// @title ResultProof
/// @notice The one check by which every Sertn contract (gateway, spoke gateway, hub market) accepts
///         an inference result.
library ResultProof {
    /// @notice Whether `proof` proves, with `verifier` and the pinned `vka`, that the model maps
    ///         `input` to `output`. The public instances are built here, never taken from the
    ///         caller: the input, then the output, in the circuit's field encoding (negative values
    ///         as R - |x|). Any failure of the verifier (it reverts on an invalid proof) is a rejection.
    function verifies(
        address verifier,
        address vka,
        bytes calldata proof,
        int256[] memory input,
        int256[] memory output
    ) internal returns (bool ok) {
        bytes4 selector = IHalo2Verifier.verifyProof.selector;
        bytes4 outOfRange = FieldEncoding.FieldEncodingOutOfRange.selector;
        uint256 p = FieldEncoding.FIELD_MODULUS;
        uint256 max = FieldEncoding.MAX_ABS_VALUE;
        // verifyProof(vka, proof, instances), encoded once past the free memory pointer (nothing
        // is allocated): the proof copied from calldata, then each instance converted in place.
        assembly ("memory-safe") {
            let data := mload(0x40)
            let proofLen := proof.length
            let proofWords := mul(div(add(proofLen, 31), 32), 32)
            // Narrow types' unused bits may be dirty in assembly: each is cleaned as it is written.
            mstore(data, and(selector, shl(224, 0xffffffff)))
            mstore(add(data, 0x04), and(vka, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(data, 0x24), 0x60)
            mstore(add(data, 0x44), add(0x80, proofWords))
            if proofWords { mstore(add(add(data, 0x84), sub(proofWords, 32)), 0) } // the proof's padding
            mstore(add(data, 0x64), proofLen)
            calldatacopy(add(data, 0x84), proof.offset, proofLen)
            let at := add(add(data, 0x84), proofWords)
            let nIn := mload(input)
            let nOut := mload(output)
            mstore(at, add(nIn, nOut))
            at := add(at, 0x20)
            for { let k := 0 } lt(k, 2) { k := add(k, 1) } {
                let src := input
                if k { src := output }
                let end := add(add(src, 0x20), mul(mload(src), 0x20))
                for { let q := add(src, 0x20) } lt(q, end) { q := add(q, 0x20) } {
                    let v := mload(q)
                    // |v| <= (R - 1) / 2, else FieldEncodingOutOfRange(v); negative v is R - |v|.
                    if or(sgt(v, max), slt(v, sub(0, max))) {
                        mstore(0, and(outOfRange, shl(224, 0xffffffff)))
                        mstore(0x04, v)
                        revert(0, 0x24)
                    }
                    if slt(v, 0) { v := add(v, p) }
                    mstore(at, v)
                    at := add(at, 0x20)
                }
            }
            // A verifier that reverts, or answers anything but true, rejects.
            let success := call(gas(), verifier, 0, data, sub(at, data), 0, 0x20)
            ok := and(success, and(gt(returndatasize(), 31), eq(mload(0), 1)))
        }
    }
}
