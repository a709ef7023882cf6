// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.4;

import {IInfernetCoordinator, IInfernetRegistry} from "../IInfernet.sol";

/// @title BaseConsumer
/// @notice The base of a Ritual Infernet consumer with the members and ABI of infernet-sdk v1.x's
///         `BaseConsumer`: it reads its coordinator from a registry at construction, accepts
///         `rawReceiveCompute` only from that coordinator, and hands the response to
///         {_receiveCompute}. On Sertn the registry and the coordinator are the chain's
///         `SertnInfernetCoordinator`. Written for Sertn; no Ritual code.
abstract contract BaseConsumer {
    /// @notice The coordinator this consumer accepts responses from.
    IInfernetCoordinator internal immutable COORDINATOR;

    /// @notice The inbox of lazy responses (zero on Sertn).
    address internal immutable INBOX;

    /// @notice `rawReceiveCompute` was called by someone other than {COORDINATOR}.
    error NotCoordinator();

    /// @param registry The Infernet registry (on Sertn: the `SertnInfernetCoordinator`).
    constructor(address registry) {
        COORDINATOR = IInfernetCoordinator(IInfernetRegistry(registry).COORDINATOR());
        INBOX = IInfernetRegistry(registry).INBOX();
    }

    /// @notice Receives a response; called once {rawReceiveCompute} has checked its caller. Same
    ///         parameters as {rawReceiveCompute}.
    function _receiveCompute(
        uint32 subscriptionId,
        uint32 interval,
        uint16 redundancy,
        address node,
        bytes calldata input,
        bytes calldata output,
        bytes calldata proof,
        bytes32 containerId,
        uint256 index
    ) internal virtual {}

    /// @notice The inputs of a subscription's interval, for whoever serves it (override to supply them).
    function getContainerInputs(uint32 subscriptionId, uint32 interval, uint32 timestamp, address caller)
        external
        view
        virtual
        returns (bytes memory)
    {}

    /// @notice Delivers a response; only {COORDINATOR} may call it (else {NotCoordinator}).
    /// @param subscriptionId The subscription answered.
    /// @param interval The interval answered.
    /// @param redundancy How many nodes have answered this interval.
    /// @param node Who answered (on Sertn: the gateway that verified the result).
    /// @param input The input (on Sertn: `abi.encode(keccak256(inputs))`, the hash of the inputs served).
    /// @param output The output (on Sertn: `abi.encode(int256[])`, verified on this chain).
    /// @param proof The proof (empty on Sertn: the gateway verified it).
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
    ) external {
        if (msg.sender != address(COORDINATOR)) revert NotCoordinator();
        _receiveCompute(subscriptionId, interval, redundancy, node, input, output, proof, containerId, index);
    }
}
