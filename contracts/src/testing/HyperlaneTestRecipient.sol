// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Test-only Hyperlane message recipient: records the last message and counts deliveries.
/// Only its mailbox may call `handle`. `interchainSecurityModule()` returns zero (the mailbox's
/// default ISM) unless the owner sets one.
contract HyperlaneTestRecipient {
    address public immutable mailbox;
    address public immutable owner;
    address public interchainSecurityModule;

    uint256 public deliveries;
    uint32 public lastOrigin;
    bytes32 public lastSender;
    bytes public lastBody;
    uint256 public lastValue;

    event Received(uint32 indexed origin, bytes32 indexed sender, bytes body);

    constructor(address _mailbox) {
        mailbox = _mailbox;
        owner = msg.sender;
    }

    function setInterchainSecurityModule(address ism) external {
        require(msg.sender == owner, "!owner");
        interchainSecurityModule = ism;
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external payable {
        require(msg.sender == mailbox, "!mailbox");
        deliveries += 1;
        lastOrigin = origin;
        lastSender = sender;
        lastBody = body;
        lastValue = msg.value;
        emit Received(origin, sender, body);
    }
}
