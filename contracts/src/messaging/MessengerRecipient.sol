// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Owned} from "../utils/Owned.sol";

/// @title MessengerRecipient
/// @notice Messenger-independent half of a cross-chain message recipient: owner-managed routes
///         (origin domain, sender) and the hook that receives authenticated messages.
/// @dev Each messenger adapter (Hyperlane now, LayerZero later) adds a raw entry point that
///      (a) checks that its caller is the messenger's endpoint, (b) calls {_authenticateRoute},
///      then (c) calls {_handleMessage}. Contracts that consume messages implement only
///      {_handleMessage}, so a new messenger never touches their logic. Domains are the
///      messenger's own (Hyperlane domain ids; a LayerZero adapter would map its endpoint ids).
///      At-most-once delivery is the messenger's job (Hyperlane: `Mailbox.delivered`).
abstract contract MessengerRecipient is Owned {
    /// @notice The caller is not the messenger endpoint.
    error MessengerUnauthorizedCaller(address caller);
    /// @notice The (origin domain, sender) pair is not an enrolled route.
    error MessengerUnknownRoute(uint32 originDomain, bytes32 sender);
    /// @notice The zero sender cannot be enrolled.
    error MessengerInvalidRoute();

    /// @notice `sender` on `originDomain` may now send messages here.
    event RouteEnrolled(uint32 indexed originDomain, bytes32 indexed sender);
    /// @notice `sender` on `originDomain` may no longer send messages here.
    event RouteUnenrolled(uint32 indexed originDomain, bytes32 indexed sender);

    mapping(uint32 originDomain => mapping(bytes32 sender => bool)) private _routes;

    /// @notice Allows `sender` (left-padded address, or a non-EVM id) on `originDomain`.
    function enrollRoute(uint32 originDomain, bytes32 sender) external onlyOwner {
        if (sender == bytes32(0)) revert MessengerInvalidRoute();
        _routes[originDomain][sender] = true;
        emit RouteEnrolled(originDomain, sender);
    }

    /// @notice Removes a route; messages from it that are not yet delivered will be rejected.
    function unenrollRoute(uint32 originDomain, bytes32 sender) external onlyOwner {
        delete _routes[originDomain][sender];
        emit RouteUnenrolled(originDomain, sender);
    }

    /// @notice Whether `sender` on `originDomain` is enrolled.
    function isRoute(uint32 originDomain, bytes32 sender) public view returns (bool) {
        return _routes[originDomain][sender];
    }

    /// @dev Reverts unless (`originDomain`, `sender`) is enrolled.
    function _authenticateRoute(uint32 originDomain, bytes32 sender) internal view {
        if (!_routes[originDomain][sender]) revert MessengerUnknownRoute(originDomain, sender);
    }

    /// @dev Receives a message whose messenger endpoint and route were authenticated. Reverting
    ///      rejects it (the messenger leaves it undelivered, to be retried or dropped).
    function _handleMessage(uint32 originDomain, bytes32 sender, bytes calldata body) internal virtual;
}
