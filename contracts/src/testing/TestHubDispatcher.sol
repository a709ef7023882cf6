// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInferenceGateway} from "../interfaces/IInferenceGateway.sol";
import {SertnMessages} from "../messaging/SertnMessages.sol";

interface IMailboxDispatch {
    function dispatch(uint32 destinationDomain, bytes32 recipientAddress, bytes calldata messageBody)
        external
        payable
        returns (bytes32 messageId);
}

/// @notice Test-only stand-in for the hub market: dispatches encoded Result messages through the
///         hub's Hyperlane mailbox (anyone may call it).
contract TestHubDispatcher {
    address public immutable mailbox;

    constructor(address mailbox_) {
        mailbox = mailbox_;
    }

    function dispatchResult(
        uint32 destination,
        address recipient,
        uint256 requestId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata refs,
        address node
    ) external payable returns (bytes32) {
        bytes memory body = SertnMessages.encodeResult(requestId, input, output, proof, refs, node);
        return IMailboxDispatch(mailbox).dispatch{value: msg.value}(destination, bytes32(uint256(uint160(recipient))), body);
    }

    function dispatchRaw(uint32 destination, address recipient, bytes calldata body) external payable returns (bytes32) {
        return IMailboxDispatch(mailbox).dispatch{value: msg.value}(destination, bytes32(uint256(uint160(recipient))), body);
    }
}
