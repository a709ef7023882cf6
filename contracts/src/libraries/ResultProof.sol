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
        uint256[] memory instances = new uint256[](input.length + output.length);
        FieldEncoding.writeFelts(instances, 0, input);
        FieldEncoding.writeFelts(instances, input.length, output);
        try IHalo2Verifier(verifier).verifyProof(vka, proof, instances) returns (bool v) {
            ok = v;
        } catch {}
    }
}
