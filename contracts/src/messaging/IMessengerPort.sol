// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IMessengerPort
/// @notice One messaging network's port on one chain: Sertn applications (gateways, the market)
///         send through it and receive from it, and never see the network's own types.
/// @dev Domains are Sertn's: the chain id of each chain (as uint32). A port maps them to its
///      network's own ids (a Hyperlane domain, a LayerZero endpoint id) and knows one peer port
///      per remote domain. A message travels port to port as an envelope
///      `sender (32 bytes) ‖ recipient (32 bytes) ‖ body`: the sender is the application that
///      called {send} (so it cannot be forged), and the receiving port, after the network
///      authenticated the message and the peer port it came from, calls
///      `IMessengerRecipient(recipient).receiveMessage(origin, sender, body)`. A revert there
///      rejects the message: the network keeps it undelivered, to be retried or reported.
///      Only applications the port's owner allowed may send, so every message between two
///      peer ports comes from a Sertn application.
interface IMessengerPort {
    /// @notice The caller is not an application allowed to send through this port.
    error PortUnauthorizedApp(address caller);
    /// @notice No peer port is set for this Sertn domain.
    error PortUnknownDomain(uint32 domain);
    /// @notice The message did not come from the peer port of its origin.
    error PortUnknownPeer(uint32 networkOrigin, bytes32 sender);
    /// @notice The caller is not the network's endpoint on this chain.
    error PortUnauthorizedCaller(address caller);
    /// @notice The envelope is shorter than its two addresses.
    error PortMalformedEnvelope(uint256 length);
    /// @notice The fee sent does not cover the network's quote.
    error PortInsufficientFee(uint256 required, uint256 paid);
    /// @notice The surplus of a send could not be returned to `app`.
    error PortRefundFailed(address app, uint256 amount);

    /// @notice `app` may (or may no longer) send through this port.
    event AppSet(address indexed app, bool allowed);
    /// @notice The peer port for Sertn domain `domain` is `peer`, reached as `networkDomain` on the network.
    event PeerSet(uint32 indexed domain, uint32 networkDomain, bytes32 peer);
    /// @notice A message left: `messageId` is the network's id for it; `gasLimit` is the gas the
    ///         sender says its handling needs on the destination (what delivery agents provide).
    event PortMessageSent(
        uint32 indexed destination, address indexed sender, bytes32 indexed messageId, bytes32 recipient, uint256 gasLimit
    );
    /// @notice A message was handed to its recipient.
    event PortMessageReceived(uint32 indexed origin, address indexed recipient, bytes32 indexed messageId, bytes32 sender);

    /// @notice Sends `body` from the calling application to `recipient` on Sertn domain
    ///         `destination`, paying the network's fee from `msg.value`; any surplus goes back to
    ///         the app in the same call (an app may send without quoting first, and learn the fee
    ///         from its balance).
    /// @param gasLimit The gas the recipient's handling needs on the destination (networks whose
    ///        executor is paid up front, like LayerZero, charge for it; others may ignore it).
    /// @return messageId The network's id for the message.
    function send(uint32 destination, bytes32 recipient, bytes calldata body, uint256 gasLimit)
        external
        payable
        returns (bytes32 messageId);

    /// @notice The fee {send} needs for this message now.
    function quote(uint32 destination, bytes32 recipient, bytes calldata body, uint256 gasLimit)
        external
        view
        returns (uint256 fee);

    /// @notice This chain's Sertn domain.
    function localDomain() external view returns (uint32);

    /// @notice The peer port for `domain` and its network domain (zero peer if none).
    function peerOf(uint32 domain) external view returns (uint32 networkDomain, bytes32 peer);

    /// @notice Whether `app` may send.
    function isApp(address app) external view returns (bool);
}

/// @title IMessengerRecipient
/// @notice What a port calls on the application a message is for.
interface IMessengerRecipient {
    /// @notice Handles a message that a peer port authenticated: `sender` is the application that
    ///         sent it on Sertn domain `origin`. Reverting rejects the message.
    function receiveMessage(uint32 origin, bytes32 sender, bytes calldata body) external;
}
