// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInferenceGateway, InferenceErrorCode} from "./interfaces/IInferenceGateway.sol";
import {ISertnConsumer} from "./interfaces/ISertnConsumer.sol";
import {Destination, IFanOutGateway} from "./interfaces/ISertnCopies.sol";

/// @title SertnConsumer
/// @notice Base contract for contracts that consume verified inference. Inherit it, call
///         {_requestInference}, and implement {_onInferenceResult} and {_onInferenceError}: only
///         the gateway can trigger them, and a result arrives only after the gateway verified its
///         proof against your request's input.
abstract contract SertnConsumer is ISertnConsumer {
    /// @notice A callback came from someone other than the gateway.
    /// @param caller The caller.
    error SertnConsumerOnlyGateway(address caller);
    /// @notice A hashed result arrived but this consumer does not handle hashed outputs.
    error SertnConsumerHashedResultUnhandled(uint256 requestId);

    /// @notice The gateway this consumer uses.
    IInferenceGateway public immutable gateway;

    constructor(IInferenceGateway gateway_) {
        gateway = gateway_;
    }

    /// @inheritdoc ISertnConsumer
    function rawOnInferenceResult(uint256 requestId, int256[] calldata output) external {
        if (msg.sender != address(gateway)) revert SertnConsumerOnlyGateway(msg.sender);
        _onInferenceResult(requestId, output);
    }

    /// @inheritdoc ISertnConsumer
    function rawOnHashedInferenceResult(uint256 requestId, uint256 outputCommitment, bytes32 outputRef) external {
        if (msg.sender != address(gateway)) revert SertnConsumerOnlyGateway(msg.sender);
        _onHashedInferenceResult(requestId, outputCommitment, outputRef);
    }

    /// @inheritdoc ISertnConsumer
    function rawOnInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason) external {
        if (msg.sender != address(gateway)) revert SertnConsumerOnlyGateway(msg.sender);
        _onInferenceError(requestId, code, reason);
    }

    /// @notice Refunds from the gateway arrive here.
    receive() external payable virtual {}

    /// @notice Requests an inference with every option (a hashed input's commitment and storage
    ///         reference; the model version or artifacts hash you expect), paying `payment`.
    function _requestInferenceWith(IInferenceGateway.RequestParams memory params, uint256 payment)
        internal
        returns (uint256 requestId)
    {
        return gateway.requestInferenceWith{value: payment}(params);
    }

    /// @notice Requests an inference whose verified result also goes to other chains' receivers
    ///         (see `SpokeGateway.requestInferenceFanOut`; a spoke's gateway only), paying `payment`
    ///         (at least its `quoteFanOut`).
    function _requestInferenceFanOut(
        IInferenceGateway.RequestParams memory params,
        Destination[] memory destinations,
        uint256 payment
    ) internal returns (uint256 requestId) {
        return IFanOutGateway(address(gateway)).requestInferenceFanOut{value: payment}(params, destinations);
    }

    /// @notice Requests an inference, paying `payment` (at least `gateway.quote(modelId, callbackGasLimit)`).
    /// @param modelId The model.
    /// @param input The input at the model's input scale, flattened.
    /// @param callbackGasLimit Gas for your {_onInferenceResult} / {_onInferenceError}.
    /// @param payment Wei to pay from this contract's balance.
    function _requestInference(bytes32 modelId, int256[] memory input, uint32 callbackGasLimit, uint256 payment)
        internal
        returns (uint256 requestId)
    {
        return gateway.requestInference{value: payment}(modelId, input, callbackGasLimit);
    }

    /// @notice Receives a verified result (the output at the model's output scale).
    function _onInferenceResult(uint256 requestId, int256[] calldata output) internal virtual;

    /// @notice Receives a verified result of a model whose output is hashed: the output's Poseidon
    ///         commitment and where its values are stored. Override it to use such models; by
    ///         default it reverts (the request is settled regardless, with a failed callback).
    function _onHashedInferenceResult(uint256 requestId, uint256, bytes32) internal virtual {
        revert SertnConsumerHashedResultUnhandled(requestId);
    }

    /// @notice Learns that a request will not be served; its payment was refunded to this contract.
    function _onInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason) internal virtual;
}
