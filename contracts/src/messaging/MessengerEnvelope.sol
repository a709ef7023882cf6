// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMessengerPort, IMessengerRecipient} from "./IMessengerPort.sol";

/// @title MessengerEnvelope
/// @notice The port-to-port wire format `sender (32) ‖ recipient (32) ‖ body` and its delivery.
library MessengerEnvelope {
    uint256 internal constant HEADER_LENGTH = 64;

    function encode(address sender, bytes32 recipient, bytes calldata body) internal pure returns (bytes memory) {
        return abi.encodePacked(bytes32(uint256(uint160(sender))), recipient, body);
    }

    /// @dev The recipient of a message (an address: ports deliver only to EVM addresses here).
    function decode(bytes calldata envelope)
        internal
        pure
        returns (bytes32 sender, address recipient, bytes calldata body)
    {
        if (envelope.length < HEADER_LENGTH) revert IMessengerPort.PortMalformedEnvelope(envelope.length);
        sender = bytes32(envelope[0:32]);
        recipient = address(uint160(uint256(bytes32(envelope[32:64]))));
        body = envelope[HEADER_LENGTH:];
    }

    /// @dev Hands an authenticated envelope to its recipient; a revert there is re-thrown as is.
    function deliver(uint32 origin, bytes calldata envelope) internal returns (address recipient, bytes32 sender) {
        bytes calldata body;
        (sender, recipient, body) = decode(envelope);
        IMessengerRecipient(recipient).receiveMessage(origin, sender, body);
    }
}
