// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.4;

import {BaseConsumer} from "./BaseConsumer.sol";

/// @title CallbackConsumer
/// @notice A Ritual Infernet consumer of one-time requests delivered by callback, with the members
///         and ABI of infernet-sdk v1.x's `CallbackConsumer`: {_requestCompute} creates a one-time
///         subscription at the coordinator and keeps its inputs for {getContainerInputs}. Written
///         for Sertn; no Ritual code.
abstract contract CallbackConsumer is BaseConsumer {
    /// @notice Each subscription's inputs.
    mapping(uint32 => bytes) internal subscriptionInputs;

    /// @param registry The Infernet registry (on Sertn: the `SertnInfernetCoordinator`).
    constructor(address registry) BaseConsumer(registry) {}

    /// @notice Requests one computation of `containerId` on `inputs`, answered by callback.
    /// @param containerId The container(s) (on Sertn: an id the coordinator maps to a model).
    /// @param inputs The inputs (on Sertn: `abi.encode(int256[])` at the model's input scale).
    /// @param redundancy How many nodes answer (on Sertn: 1).
    /// @param paymentToken The payment's token (on Sertn: zero, ETH).
    /// @param paymentAmount The most to pay (on Sertn: zero, or at least the fee).
    /// @param wallet The paying wallet (unused on Sertn: the fee comes from the consumer's deposit).
    /// @param verifier An optional proof verifier (unused on Sertn: every result is verified).
    /// @return The subscription id.
    function _requestCompute(
        string memory containerId,
        bytes memory inputs,
        uint16 redundancy,
        address paymentToken,
        uint256 paymentAmount,
        address wallet,
        address verifier
    ) internal returns (uint32) {
        uint32 subscriptionId = COORDINATOR.createSubscription(
            containerId, 1, 0, redundancy, false, paymentToken, paymentAmount, wallet, verifier
        );
        subscriptionInputs[subscriptionId] = inputs;
        return subscriptionId;
    }

    /// @inheritdoc BaseConsumer
    function getContainerInputs(uint32 subscriptionId, uint32, uint32, address)
        external
        view
        override
        returns (bytes memory)
    {
        return subscriptionInputs[subscriptionId];
    }
}
