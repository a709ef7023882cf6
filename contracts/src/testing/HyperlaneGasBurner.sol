// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Test-only Hyperlane message recipient that burns gas in `handle`: `burn` units on every
/// delivery, plus `surgeBurn` more when the delivery runs in a block numbered `surgeFromBlock` or
/// later (0: never). A recipient whose gas use at execution differs from what was estimated a block
/// earlier (state or block dependent), or that costs more than a relayer will pay. Only its mailbox
/// may call `handle`; it uses the mailbox's default ISM.
contract HyperlaneGasBurner {
    address public immutable mailbox;
    address public immutable owner;
    uint256 public burn;
    uint256 public surgeBurn;
    uint256 public surgeFromBlock;
    uint256 public deliveries;

    constructor(address _mailbox, uint256 _burn) {
        mailbox = _mailbox;
        owner = msg.sender;
        burn = _burn;
    }

    function setBurn(uint256 _burn, uint256 _surgeBurn, uint256 _surgeFromBlock) external {
        require(msg.sender == owner, "!owner");
        burn = _burn;
        surgeBurn = _surgeBurn;
        surgeFromBlock = _surgeFromBlock;
    }

    function handle(uint32, bytes32, bytes calldata) external payable {
        require(msg.sender == mailbox, "!mailbox");
        uint256 target = burn;
        if (surgeFromBlock != 0 && block.number >= surgeFromBlock) target += surgeBurn;
        uint256 start = gasleft();
        while (start - gasleft() < target) {}
        deliveries += 1;
    }
}
