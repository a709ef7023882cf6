// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMessengerPort, IMessengerRecipient} from "../messaging/IMessengerPort.sol";

/// @notice Test-only Sertn application on a messenger port: sends through the port, and records
/// what the port delivers (count, last origin, sender and body). Its owner can make it reject
/// messages (revert) or burn gas in `receiveMessage`. Only its port may deliver.
contract LayerZeroTestApp is IMessengerRecipient {
    IMessengerPort public immutable port;
    address public immutable owner;

    uint256 public deliveries;
    uint32 public lastOrigin;
    bytes32 public lastSender;
    bytes public lastBody;
    bool public rejecting;
    /// @notice Gas `receiveMessage` burns before recording (0: none).
    uint256 public burnGas;

    event Received(uint32 indexed origin, bytes32 indexed sender, bytes body);

    error TestAppNotPort(address caller);
    error TestAppNotOwner(address caller);
    error TestAppRejected(uint32 origin, bytes32 sender);

    constructor(IMessengerPort port_) {
        port = port_;
        owner = msg.sender;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert TestAppNotOwner(msg.sender);
        _;
    }

    function setRejecting(bool rejecting_) external onlyOwner {
        rejecting = rejecting_;
    }

    function setBurnGas(uint256 gas_) external onlyOwner {
        burnGas = gas_;
    }

    /// @notice Sends `body` to `recipient` on `destination` through the port, paying `msg.value`.
    function send(uint32 destination, address recipient, bytes calldata body, uint256 gasLimit)
        external
        payable
        returns (bytes32 messageId)
    {
        return port.send{value: msg.value}(destination, bytes32(uint256(uint160(recipient))), body, gasLimit);
    }

    function quote(uint32 destination, address recipient, bytes calldata body, uint256 gasLimit)
        external
        view
        returns (uint256)
    {
        return port.quote(destination, bytes32(uint256(uint160(recipient))), body, gasLimit);
    }

    function receiveMessage(uint32 origin, bytes32 sender, bytes calldata body) external {
        if (msg.sender != address(port)) revert TestAppNotPort(msg.sender);
        if (rejecting) revert TestAppRejected(origin, sender);
        uint256 burn = burnGas;
        if (burn > 0) {
            uint256 stop = gasleft() > burn ? gasleft() - burn : 0;
            while (gasleft() > stop) {}
        }
        deliveries += 1;
        lastOrigin = origin;
        lastSender = sender;
        lastBody = body;
        emit Received(origin, sender, body);
    }

    /// @notice Fee refunds from the endpoint.
    receive() external payable {}
}
