// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MessengerApp} from "./MessengerApp.sol";

/// @notice The parts of Hyperlane's v3 `IMailbox` the adapter uses.
interface IHyperlaneMailbox {
    function dispatch(uint32 destinationDomain, bytes32 recipientAddress, bytes calldata messageBody)
        external
        payable
        returns (bytes32 messageId);

    function quoteDispatch(uint32 destinationDomain, bytes32 recipientAddress, bytes calldata messageBody)
        external
        view
        returns (uint256 fee);
}

/// @title HyperlaneMessenger
/// @notice Hyperlane adapter for {MessengerApp}: the `IMessageRecipient.handle` entry point,
///         callable only by the mailbox, for enrolled routes only; `ISpecifiesInterchainSecurityModule`;
///         and sending through the mailbox's `dispatch` (default hooks: the merkle tree, then the
///         required protocol-fee hook).
abstract contract HyperlaneMessenger is MessengerApp {
    /// @notice The interchain security module changed (zero: the mailbox's default ISM).
    event InterchainSecurityModuleSet(address indexed ism);

    /// @notice The Hyperlane mailbox on this chain: the only caller of {handle}.
    address public immutable mailbox;

    /// @notice The ISM the mailbox checks messages to this contract with; zero = the mailbox's default.
    address public interchainSecurityModule;

    constructor(address mailbox_) {
        mailbox = mailbox_;
    }

    /// @notice Hyperlane `IMessageRecipient.handle`: called by the mailbox in `process`, after
    ///         the ISM verified the message and it was marked delivered. A revert undoes both.
    /// @dev Any value the mailbox forwards stays with this contract (Sertn senders send none).
    function handle(uint32 origin, bytes32 sender, bytes calldata body) external payable {
        if (msg.sender != mailbox) revert MessengerUnauthorizedCaller(msg.sender);
        _authenticateRoute(origin, sender);
        _handleMessage(origin, sender, body);
    }

    /// @notice Sets the ISM (zero: the mailbox's default).
    function setInterchainSecurityModule(address ism) external onlyOwner {
        interchainSecurityModule = ism;
        emit InterchainSecurityModuleSet(ism);
    }

    function _sendMessage(uint32 destination, bytes32 recipient, bytes memory body, uint256 fee)
        internal
        override
        returns (bytes32 messageId)
    {
        messageId = IHyperlaneMailbox(mailbox).dispatch{value: fee}(destination, recipient, body);
        emit MessageSent(destination, recipient, messageId, body.length == 0 ? 0 : uint8(body[0]));
    }

    function _quoteMessage(uint32 destination, bytes32 recipient, bytes memory body)
        internal
        view
        override
        returns (uint256)
    {
        return IHyperlaneMailbox(mailbox).quoteDispatch(destination, recipient, body);
    }
}
