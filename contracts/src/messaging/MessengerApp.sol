// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Owned} from "../utils/Owned.sol";
import {IMessengerPort, IMessengerRecipient} from "./IMessengerPort.sol";

/// @title MessengerApp
/// @notice The messenger-independent half of a cross-chain Sertn application: one owner-set
///         route per remote Sertn domain (chain id) naming the messenger port that reaches it and
///         the peer application there; the authenticated entry point ports call; and sending.
/// @dev Applications (the spoke gateway, the hub market) implement only {_handleMessage} and
///      call only {_sendMessage} / {_quoteMessage}: they know no messaging network. Each network
///      is a port contract ({IMessengerPort}: Hyperlane's, LayerZero's, …) that authenticates
///      its own endpoint and peer port and hands over the sending application's address, so a
///      new network is a new port and never touches an application. Different routes may use
///      different networks: the hub market reaches one spoke over Hyperlane and another over
///      LayerZero. At-most-once delivery is the network's job (Hyperlane: `Mailbox.delivered`;
///      LayerZero: the endpoint clears a packet's payload hash when it delivers it).
abstract contract MessengerApp is Owned, IMessengerRecipient {
    /// @notice The caller is not the port of the message's origin route.
    error MessengerUnauthorizedCaller(address caller);
    /// @notice The sender is not the peer application of the origin's route.
    error MessengerUnknownRoute(uint32 originDomain, bytes32 sender);
    /// @notice A route needs a port and a non-zero peer.
    error MessengerInvalidRoute();
    /// @notice No route leads to `domain`.
    error MessengerNoRoute(uint32 domain);
    /// @notice The fee sent does not cover the messenger's quote.
    error MessengerInsufficientFee(uint256 required, uint256 paid);

    /// @notice Messages to and from `domain` go through `port`, to and from `peer` there.
    event RouteSet(uint32 indexed domain, address indexed port, bytes32 indexed peer);
    /// @notice `domain` has no route any more; its undelivered messages will be rejected.
    event RouteRemoved(uint32 indexed domain, address indexed port, bytes32 indexed peer);
    /// @notice A message left for `destination` (`messageId`: the network's id for it).
    event MessageSent(uint32 indexed destination, bytes32 indexed recipient, bytes32 indexed messageId, uint8 kind);

    /// @notice A route: the port that reaches a domain and the peer application there.
    struct Route {
        address port;
        bytes32 peer;
    }

    mapping(uint32 domain => Route) private _routes;

    /// @notice Routes messages to and from `domain` through `port`, with `peer` (left-padded
    ///         address) the application there; replaces any earlier route to `domain`.
    function setRoute(uint32 domain, address port, bytes32 peer) external onlyOwner {
        _setRoute(domain, port, peer);
    }

    /// @notice Removes the route to `domain`.
    function removeRoute(uint32 domain) external onlyOwner {
        _removeRoute(domain);
    }

    /// @notice The route to `domain` (zero port if none).
    function routeOf(uint32 domain) public view returns (Route memory) {
        return _routes[domain];
    }

    /// @notice Whether `sender` on `originDomain` is the peer of an enrolled route.
    function isRoute(uint32 originDomain, bytes32 sender) public view returns (bool) {
        Route storage r = _routes[originDomain];
        return r.port != address(0) && r.peer == sender;
    }

    /// @inheritdoc IMessengerRecipient
    /// @dev Only the route's port may call, and only for the route's peer application.
    function receiveMessage(uint32 origin, bytes32 sender, bytes calldata body) external {
        Route storage r = _routes[origin];
        if (r.port == address(0) || msg.sender != r.port) revert MessengerUnauthorizedCaller(msg.sender);
        if (sender != r.peer) revert MessengerUnknownRoute(origin, sender);
        _handleMessage(origin, sender, body);
    }

    function _setRoute(uint32 domain, address port, bytes32 peer) internal {
        if (port == address(0) || peer == bytes32(0)) revert MessengerInvalidRoute();
        _routes[domain] = Route({port: port, peer: peer});
        emit RouteSet(domain, port, peer);
    }

    function _removeRoute(uint32 domain) internal {
        Route memory r = _routes[domain];
        delete _routes[domain];
        emit RouteRemoved(domain, r.port, r.peer);
    }

    /// @dev Receives a message whose port and route were authenticated. Reverting rejects it
    ///      (the network leaves it undelivered, to be retried or reported).
    function _handleMessage(uint32 originDomain, bytes32 sender, bytes calldata body) internal virtual;

    /// @dev Sends `body` to `recipient` on `destination` through its route's port, paying `fee`
    ///      wei from this contract's balance; `gasLimit` is what handling it needs there.
    function _sendMessage(uint32 destination, bytes32 recipient, bytes memory body, uint256 gasLimit, uint256 fee)
        internal
        returns (bytes32 messageId)
    {
        messageId = IMessengerPort(_portTo(destination)).send{value: fee}(destination, recipient, body, gasLimit);
        emit MessageSent(destination, recipient, messageId, body.length == 0 ? 0 : uint8(body[0]));
    }

    /// @dev The fee {_sendMessage} needs for this message now.
    function _quoteMessage(uint32 destination, bytes32 recipient, bytes memory body, uint256 gasLimit)
        internal
        view
        returns (uint256)
    {
        return IMessengerPort(_portTo(destination)).quote(destination, recipient, body, gasLimit);
    }

    function _portTo(uint32 domain) private view returns (address port) {
        port = _routes[domain].port;
        if (port == address(0)) revert MessengerNoRoute(domain);
    }
}
