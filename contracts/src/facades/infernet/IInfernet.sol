// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.4;

/// @title IInfernetRegistry
/// @notice The part of Ritual Infernet's `Registry` (infernet-sdk v1.x) that a consumer reads at
///         construction: where the coordinator and the inbox are. Same signatures as the SDK's;
///         written for Sertn.
interface IInfernetRegistry {
    /// @notice The coordinator consumers create subscriptions at and are called back by.
    function COORDINATOR() external view returns (address);

    /// @notice The inbox of lazy subscriptions' responses (zero on Sertn: not served).
    function INBOX() external view returns (address);
}

/// @title IInfernetCoordinator
/// @notice The part of Ritual Infernet's `Coordinator` (infernet-sdk v1.x) that consumers call:
///         creating and cancelling subscriptions, and its subscription events. Same signatures as
///         the SDK's; written for Sertn.
interface IInfernetCoordinator {
    /// @notice A subscription was created.
    /// @param id The subscription id.
    event SubscriptionCreated(uint32 indexed id);

    /// @notice A subscription was cancelled.
    /// @param id The subscription id.
    event SubscriptionCancelled(uint32 indexed id);

    /// @notice A subscription's interval was answered.
    /// @param id The subscription id.
    /// @param node Who delivered the response.
    event SubscriptionFulfilled(uint32 indexed id, address indexed node);

    /// @notice Creates a subscription owned (and called back) by the caller.
    /// @param containerId The compute container(s), comma-separated.
    /// @param frequency How many intervals it runs (1: a one-time request).
    /// @param period Seconds between intervals (0: one-time, answerable at once).
    /// @param redundancy How many nodes answer each interval.
    /// @param lazy Whether responses are stored in the inbox rather than delivered.
    /// @param paymentToken The payment's token (zero: ETH).
    /// @param paymentAmount The payment per response.
    /// @param wallet The Infernet wallet that pays.
    /// @param verifier An optional proof verifier that gates payment.
    /// @return The subscription id.
    function createSubscription(
        string memory containerId,
        uint32 frequency,
        uint32 period,
        uint16 redundancy,
        bool lazy,
        address paymentToken,
        uint256 paymentAmount,
        address wallet,
        address verifier
    ) external returns (uint32);

    /// @notice Cancels a subscription the caller owns.
    function cancelSubscription(uint32 subscriptionId) external;
}

/// @title IInfernetConsumer
/// @notice What a Ritual Infernet consumer (infernet-sdk v1.x `BaseConsumer`) exposes to the
///         coordinator and to nodes. Same signatures as the SDK's; written for Sertn.
interface IInfernetConsumer {
    /// @notice Delivers a container's response; the consumer accepts it only from its coordinator.
    /// @param subscriptionId The subscription answered.
    /// @param interval The interval answered.
    /// @param redundancy How many nodes have answered this interval, this one included.
    /// @param node Who answered.
    /// @param input The input the node recorded (may be empty or hashed).
    /// @param output The container's output.
    /// @param proof A proof of the execution, or metadata (may be empty).
    /// @param containerId For a lazy subscription, its container id; else zero.
    /// @param index For a lazy subscription, the inbox index; else zero.
    function rawReceiveCompute(
        uint32 subscriptionId,
        uint32 interval,
        uint16 redundancy,
        address node,
        bytes calldata input,
        bytes calldata output,
        bytes calldata proof,
        bytes32 containerId,
        uint256 index
    ) external;

    /// @notice The inputs of a subscription's interval, for the node that serves it.
    function getContainerInputs(uint32 subscriptionId, uint32 interval, uint32 timestamp, address caller)
        external
        view
        returns (bytes memory);
}
