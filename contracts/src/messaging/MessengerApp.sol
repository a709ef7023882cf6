// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Owned} from "../utils/Owned.sol";

/// @title MessengerApp
/// @notice Messenger-independent half of a cross-chain application: owner-managed routes
///         (origin domain, sender) that may deliver messages here, the hook that receives
///         authenticated messages, and the send primitives a messenger adapter implements.
/// @dev Each messenger adapter (Hyperlane now, LayerZero later) adds a raw entry point that
///      (a) checks that its caller is the messenger's endpoint, (b) calls {_authenticateRoute},
///      then (c) calls {_handleMessage}; and implements {_sendMessage} / {_quoteMessage}.
///      Applications (the spoke gateway, the hub market) implement only {_handleMessage} and call
///      only {_sendMessage}, so a new messenger never touches their logic. Domains are the
///      messenger's own (Hyperlane domain ids; a LayerZero adapter would map its endpoint ids).
///      At-most-once delivery is the messenger's job (Hyperlane: `Mailbox.delivered`).
abstract contract MessengerApp is Owned {
    /// @notice The caller is not the messenger endpoint.
    error MessengerUnauthorizedCaller(address caller);
    /// @notice The (origin domain, sender) pair is not an enrolled route.
    error MessengerUnknownRoute(uint32 originDomain, bytes32 sender);
    /// @notice The zero sender cannot be enrolled.
    error MessengerInvalidRoute();
    /// @notice The fee sent does not cover the messenger's quote.
    error MessengerInsufficientFee(uint256 required, uint256 paid);

    /// @notice `sender` on `originDomain` may now send messages here.
    event RouteEnrolled(uint32 indexed originDomain, bytes32 indexed sender);
    /// @notice `sender` on `originDomain` may no longer send messages here.
    event RouteUnenrolled(uint32 indexed originDomain, bytes32 indexed sender);
    /// @notice A message left for `destination` (the messenger's id for it).
    event MessageSent(uint32 indexed destination, bytes32 indexed recipient, bytes32 indexed messageId, uint8 kind);

    mapping(uint32 originDomain => mapping(bytes32 sender => bool)) private _routes;

    /// @notice Allows `sender` (left-padded address, or a non-EVM id) on `originDomain`.
    function enrollRoute(uint32 originDomain, bytes32 sender) external onlyOwner {
        _enrollRoute(originDomain, sender);
    }

    /// @notice Removes a route; messages from it that are not yet delivered will be rejected.
    function unenrollRoute(uint32 originDomain, bytes32 sender) external onlyOwner {
        _unenrollRoute(originDomain, sender);
    }

    /// @notice Whether `sender` on `originDomain` is enrolled.
    function isRoute(uint32 originDomain, bytes32 sender) public view returns (bool) {
        return _routes[originDomain][sender];
    }

    function _enrollRoute(uint32 originDomain, bytes32 sender) internal {
        if (sender == bytes32(0)) revert MessengerInvalidRoute();
        _routes[originDomain][sender] = true;
        emit RouteEnrolled(originDomain, sender);
    }

    function _unenrollRoute(uint32 originDomain, bytes32 sender) internal {
        delete _routes[originDomain][sender];
        emit RouteUnenrolled(originDomain, sender);
    }

    /// @dev Reverts unless (`originDomain`, `sender`) is enrolled.
    function _authenticateRoute(uint32 originDomain, bytes32 sender) internal view {
        if (!_routes[originDomain][sender]) revert MessengerUnknownRoute(originDomain, sender);
    }

    /// @dev Receives a message whose messenger endpoint and route were authenticated. Reverting
    ///      rejects it (the messenger leaves it undelivered, to be retried or dropped).
    function _handleMessage(uint32 originDomain, bytes32 sender, bytes calldata body) internal virtual;

    /// @dev Sends `body` to `recipient` on `destination`, paying `fee` wei from this contract's
    ///      balance; returns the messenger's message id. Reverts if the messenger refuses.
    function _sendMessage(uint32 destination, bytes32 recipient, bytes memory body, uint256 fee)
        internal
        virtual
        returns (bytes32 messageId);

    /// @dev The fee {_sendMessage} needs for this message now.
    function _quoteMessage(uint32 destination, bytes32 recipient, bytes memory body)
        internal
        view
        virtual
        returns (uint256);
}
