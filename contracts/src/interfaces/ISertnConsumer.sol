// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InferenceErrorCode} from "./IInferenceGateway.sol";

/// @title ISertnConsumer
/// @notice The callbacks a gateway makes to the contract that requested an inference.
/// @dev Inherit `SertnConsumer` rather than implementing this directly: it authenticates the
///      gateway and exposes internal hooks.
interface ISertnConsumer {
    /// @notice Delivers a verified result. Called only by the gateway, with the gas limit the
    ///         requester chose.
    /// @param requestId The request.
    /// @param output The model's output at the model's output scale, proven and verified on-chain.
    function rawOnInferenceResult(uint256 requestId, int256[] calldata output) external;

    /// @notice Delivers a verified result of a model whose output is hashed: the output's Poseidon
    ///         commitment (a field element) and where the output document is stored (its values,
    ///         which hash to the commitment). Called only by the gateway.
    /// @param requestId The request.
    /// @param outputCommitment The Poseidon hash of the output, proven and verified on-chain.
    /// @param outputRef The stored output document (e.g. an Arweave transaction id).
    function rawOnHashedInferenceResult(uint256 requestId, uint256 outputCommitment, bytes32 outputRef) external;

    /// @notice Reports that the request will not be served; its escrow has been refunded.
    /// @param requestId The request.
    /// @param code Why.
    /// @param reason Details from the node (may be empty).
    function rawOnInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason) external;
}
