// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.9;

import {CallbackConsumer} from "../../facades/infernet/consumer/CallbackConsumer.sol";

/// @title InfernetCallbackConsumer
/// @notice A consumer written the way Ritual Infernet's developers write one with the SDK's
///         `CallbackConsumer` (a one-time `_requestCompute` to a container, the response in
///         `_receiveCompute`), with nothing of Sertn in it; the tests deploy it unchanged with
///         `SertnInfernetCoordinator` as its registry.
contract InfernetCallbackConsumer is CallbackConsumer {
    /// @notice The container this consumer asks.
    string public containerId;

    /// @notice Each subscription's delivered output.
    mapping(uint32 => bytes) public outputs;

    /// @notice Each subscription's delivered input record.
    mapping(uint32 => bytes) public inputsSeen;

    /// @notice Who answered each subscription.
    mapping(uint32 => address) public nodes;

    /// @notice A request was made.
    event Requested(uint32 indexed subscriptionId);

    /// @notice A response arrived.
    event Received(uint32 indexed subscriptionId, uint32 interval, uint16 redundancy, address node, bytes output);

    /// @param registry The Infernet registry.
    /// @param containerId_ The container to ask.
    constructor(address registry, string memory containerId_) CallbackConsumer(registry) {
        containerId = containerId_;
    }

    /// @notice Asks the container once for `inputs`, unpaid (the coordinator charges the deposit).
    function request(bytes calldata inputs) external returns (uint32 subscriptionId) {
        subscriptionId = _requestCompute(containerId, inputs, 1, address(0), 0, address(0), address(0));
        emit Requested(subscriptionId);
    }

    /// @notice Asks once with every option of `_requestCompute`.
    function requestWith(bytes calldata inputs, uint16 redundancy, address paymentToken, uint256 paymentAmount)
        external
        returns (uint32 subscriptionId)
    {
        subscriptionId = _requestCompute(containerId, inputs, redundancy, paymentToken, paymentAmount, address(0), address(0));
        emit Requested(subscriptionId);
    }

    /// @notice Cancels a request not yet served.
    function cancel(uint32 subscriptionId) external {
        COORDINATOR.cancelSubscription(subscriptionId);
    }

    function _receiveCompute(
        uint32 subscriptionId,
        uint32 interval,
        uint16 redundancy,
        address node,
        bytes calldata input,
        bytes calldata output,
        bytes calldata,
        bytes32,
        uint256
    ) internal override {
        outputs[subscriptionId] = output;
        inputsSeen[subscriptionId] = input;
        nodes[subscriptionId] = node;
        emit Received(subscriptionId, interval, redundancy, node, output);
    }
}
