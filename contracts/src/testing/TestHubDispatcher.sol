// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInferenceGateway} from "../interfaces/IInferenceGateway.sol";
import {IMessengerPort} from "../messaging/IMessengerPort.sol";
import {SertnMessages} from "../messaging/SertnMessages.sol";

interface IMailboxDispatch {
    function dispatch(uint32 destinationDomain, bytes32 recipientAddress, bytes calldata messageBody)
        external
        payable
        returns (bytes32 messageId);
}

/// @notice Test-only stand-in for a hub market (or any sender) that sends Sertn messages two ways
///         (anyone may call it):
///         - straight through a Hyperlane mailbox, as a contract that is not a Sertn port: the
///           Hyperlane sender is this contract, and the port-to-port envelope
///           `claimed sender ‖ recipient ‖ body` says whatever the caller wants;
///         - through a Sertn port's `IMessengerPort.send`, as an application: the port stamps this
///           contract as the envelope's sender (the port's owner must allow it first).
contract TestHubDispatcher {
    /// @notice A RESULT message's fields (one struct, so that the entry points fit the stack).
    struct Result {
        uint256 requestId;
        int256[] input;
        int256[] output;
        bytes proof;
        IInferenceGateway.StorageRefs refs;
        address node;
    }

    /// @notice The Hyperlane mailbox this contract dispatches through.
    address public immutable mailbox;
    /// @notice The Sertn port this contract sends through (zero if none).
    address public immutable port;

    constructor(address mailbox_, address port_) {
        mailbox = mailbox_;
        port = port_;
    }

    // ─────────────────────────────── Straight through the mailbox ─────────

    /// @notice Dispatches to Hyperlane recipient `to` on Hyperlane domain `destination` the
    ///         envelope `claimedSender ‖ recipient ‖ RESULT(r)`.
    function dispatchResult(uint32 destination, bytes32 to, bytes32 claimedSender, bytes32 recipient, Result calldata r)
        external
        payable
        returns (bytes32)
    {
        bytes memory envelope = abi.encodePacked(claimedSender, recipient, _resultBody(r));
        return IMailboxDispatch(mailbox).dispatch{value: msg.value}(destination, to, envelope);
    }

    /// @notice Dispatches `message` as is to Hyperlane recipient `to` on Hyperlane domain `destination`.
    function dispatchRaw(uint32 destination, bytes32 to, bytes calldata message) external payable returns (bytes32) {
        return IMailboxDispatch(mailbox).dispatch{value: msg.value}(destination, to, message);
    }

    // ─────────────────────────────── Through a port ───────────────────────

    /// @notice Sends RESULT(r) to `recipient` on Sertn domain `destination` through the port.
    function sendResult(uint32 destination, bytes32 recipient, Result calldata r) external payable returns (bytes32) {
        return IMessengerPort(port).send{value: msg.value}(destination, recipient, _resultBody(r), SertnMessages.resultGas(0));
    }

    /// @notice Sends `body` to `recipient` on Sertn domain `destination` through the port.
    function sendRaw(uint32 destination, bytes32 recipient, bytes calldata body) external payable returns (bytes32) {
        return IMessengerPort(port).send{value: msg.value}(destination, recipient, body, SertnMessages.RECEIPT_GAS);
    }

    /// @notice Sends any body through the port with the gas the caller names (e.g. a RESULT_BATCH).
    function sendBody(uint32 destination, bytes32 recipient, bytes calldata body, uint256 gasLimit)
        external
        payable
        returns (bytes32)
    {
        return IMessengerPort(port).send{value: msg.value}(destination, recipient, body, gasLimit);
    }

    function _resultBody(Result calldata r) private pure returns (bytes memory) {
        return SertnMessages.encodeResult(r.requestId, r.input, r.output, r.proof, r.refs, r.node);
    }
}
