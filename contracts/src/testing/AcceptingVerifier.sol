// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IHalo2Verifier} from "../interfaces/IHalo2Verifier.sol";

/// @title AcceptingVerifier
/// @notice Test only: a "verifier" that accepts every proof, the kind of contract a registry must
///         never let verify a model (nodes refuse to serve a registry that points at it).
contract AcceptingVerifier is IHalo2Verifier {
    /// @inheritdoc IHalo2Verifier
    function verifyProof(address, bytes calldata, uint256[] calldata) external pure returns (bool) {
        return true;
    }
}
