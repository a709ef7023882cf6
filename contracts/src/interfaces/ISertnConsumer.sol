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

    /// @notice Reports that the request will not be served; its escrow has been refunded.
    /// @param requestId The request.
    /// @param code Why.
    /// @param reason Details from the node (may be empty).
    function rawOnInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason) external;
}
