// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MessengerRecipient} from "./MessengerRecipient.sol";

/// @title HyperlaneReceiver
/// @notice Hyperlane adapter for {MessengerRecipient}: the `IMessageRecipient.handle` entry point,
///         callable only by the mailbox, for enrolled routes only, plus `ISpecifiesInterchainSecurityModule`.
abstract contract HyperlaneReceiver is MessengerRecipient {
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
    /// @dev Any value the mailbox forwards stays with this contract (the Sertn hub sends none).
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
}
