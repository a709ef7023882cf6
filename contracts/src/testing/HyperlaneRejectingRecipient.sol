// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Test-only Hyperlane message recipient that rejects every message (its `handle`
/// reverts with "rejected: unknown route", as a real application does for a route it does not
/// know) until its owner calls `setRejecting(false)`. Only its mailbox may call `handle`; it uses
/// the mailbox's default ISM.
contract HyperlaneRejectingRecipient {
    address public immutable mailbox;
    address public immutable owner;
    bool public rejecting = true;
    uint256 public deliveries;

    constructor(address _mailbox) {
        mailbox = _mailbox;
        owner = msg.sender;
    }

    function setRejecting(bool value) external {
        require(msg.sender == owner, "!owner");
        rejecting = value;
    }

    function handle(uint32, bytes32, bytes calldata) external payable {
        require(msg.sender == mailbox, "!mailbox");
        require(!rejecting, "rejected: unknown route");
        deliveries += 1;
    }
}
