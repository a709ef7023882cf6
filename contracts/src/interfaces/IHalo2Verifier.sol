// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IHalo2Verifier
/// @notice The reusable EZKL Halo2-KZG verifier: one contract per chain, the circuit given by the
///         verifying-key artifact (VKA) address that the caller passes.
/// @dev The verifier trusts its caller's `vk`: callers must pass only a VKA that the registry pins.
///      It reverts on an invalid proof rather than returning false.
interface IHalo2Verifier {
    /// @param vk The verifying-key artifact of the circuit.
    /// @param proof The proof bytes.
    /// @param instances The public instances (field elements), inputs then outputs.
    /// @return True when the proof is valid for `instances` under `vk`.
    function verifyProof(address vk, bytes calldata proof, uint256[] calldata instances) external returns (bool);
}
