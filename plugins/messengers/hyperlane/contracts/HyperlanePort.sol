// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Owned} from "../../../../contracts/src/utils/Owned.sol";
import {IMessengerPort} from "../../../../contracts/src/messaging/IMessengerPort.sol";
import {MessengerEnvelope} from "../../../../contracts/src/messaging/MessengerEnvelope.sol";

/// @notice The parts of Hyperlane's v3 `IMailbox` the port uses.
interface IHyperlaneMailbox {
    function dispatch(uint32 destinationDomain, bytes32 recipientAddress, bytes calldata messageBody)
        external
        payable
        returns (bytes32 messageId);

    function quoteDispatch(uint32 destinationDomain, bytes32 recipientAddress, bytes calldata messageBody)
        external
        view
        returns (uint256 fee);
}

/// @title HyperlanePort
/// @notice Sertn's port on Hyperlane ({IMessengerPort}): sends envelopes through the mailbox's
///         `dispatch` (default hooks: the merkle tree, then the required protocol fee) to the
///         peer port of the destination, and is the Hyperlane `IMessageRecipient` that hands
///         messages from peer ports to their Sertn recipient. `ISpecifiesInterchainSecurityModule`
///         lets the owner pin an ISM (zero: the mailbox's default).
/// @dev No interchain gas paymaster is configured: `gasLimit` is not charged for here, but
///      {PortMessageSent} records it beside the mailbox's `Dispatch`, as a gas payment would, and
///      the relayer delivers with it.
contract HyperlanePort is IMessengerPort, Owned {
    /// @notice The interchain security module changed (zero: the mailbox's default ISM).
    event InterchainSecurityModuleSet(address indexed ism);

    /// @notice The Hyperlane mailbox on this chain: the only caller of {handle}.
    address public immutable mailbox;
    /// @inheritdoc IMessengerPort
    uint32 public immutable localDomain;
    /// @notice The ISM the mailbox checks messages to this port with; zero = the mailbox's default.
    address public interchainSecurityModule;

    struct Peer {
        uint32 networkDomain;
        bytes32 port;
    }

    mapping(uint32 domain => Peer) private _peers;
    mapping(uint32 networkDomain => uint32 domain) private _domainOf;
    mapping(address app => bool) private _apps;

    /// @param initialOwner Who allows applications and sets peers.
    /// @param mailbox_ The Hyperlane mailbox on this chain.
    /// @param localDomain_ This chain's Sertn domain (its chain id).
    constructor(address initialOwner, address mailbox_, uint32 localDomain_) Owned(initialOwner) {
        mailbox = mailbox_;
        localDomain = localDomain_;
    }

    // ─────────────────────────────── Owner ────────────────────────────────

    /// @notice Allows (or disallows) `app` to send through this port.
    function setApp(address app, bool allowed) external onlyOwner {
        _apps[app] = allowed;
        emit AppSet(app, allowed);
    }

    /// @notice The port on Sertn domain `domain` is `peer`, a Hyperlane recipient on Hyperlane
    ///         domain `networkDomain`; zero `peer` removes it.
    function setPeer(uint32 domain, uint32 networkDomain, bytes32 peer) external onlyOwner {
        Peer memory old = _peers[domain];
        if (old.port != bytes32(0)) delete _domainOf[old.networkDomain];
        if (peer == bytes32(0)) {
            delete _peers[domain];
        } else {
            _peers[domain] = Peer({networkDomain: networkDomain, port: peer});
            _domainOf[networkDomain] = domain;
        }
        emit PeerSet(domain, networkDomain, peer);
    }

    /// @notice Sets the ISM (zero: the mailbox's default).
    function setInterchainSecurityModule(address ism) external onlyOwner {
        interchainSecurityModule = ism;
        emit InterchainSecurityModuleSet(ism);
    }

    // ─────────────────────────────── Applications ─────────────────────────

    /// @inheritdoc IMessengerPort
    function send(uint32 destination, bytes32 recipient, bytes calldata body, uint256 gasLimit)
        external
        payable
        returns (bytes32 messageId)
    {
        if (!_apps[msg.sender]) revert PortUnauthorizedApp(msg.sender);
        Peer memory p = _peerOrRevert(destination);
        bytes memory envelope = MessengerEnvelope.encode(msg.sender, recipient, body);
        uint256 fee = IHyperlaneMailbox(mailbox).quoteDispatch(p.networkDomain, p.port, envelope);
        if (msg.value < fee) revert PortInsufficientFee(fee, msg.value);
        messageId = IHyperlaneMailbox(mailbox).dispatch{value: fee}(p.networkDomain, p.port, envelope);
        emit PortMessageSent(destination, msg.sender, messageId, recipient, gasLimit);
        // The surplus goes back to the app, as LayerZero's endpoint does.
        if (msg.value > fee) {
            (bool ok, ) = msg.sender.call{value: msg.value - fee}("");
            if (!ok) revert PortRefundFailed(msg.sender, msg.value - fee);
        }
    }

    /// @inheritdoc IMessengerPort
    function quote(uint32 destination, bytes32 recipient, bytes calldata body, uint256)
        external
        view
        returns (uint256)
    {
        Peer memory p = _peerOrRevert(destination);
        return IHyperlaneMailbox(mailbox).quoteDispatch(p.networkDomain, p.port, MessengerEnvelope.encode(msg.sender, recipient, body));
    }

    // ─────────────────────────────── Hyperlane ────────────────────────────

    /// @notice Hyperlane `IMessageRecipient.handle`: called by the mailbox in `process`, after the
    ///         ISM verified the message and it was marked delivered (a revert undoes both).
    /// @dev Any value the mailbox forwards stays here (Sertn ports send none).
    function handle(uint32 origin, bytes32 sender, bytes calldata envelope) external payable {
        if (msg.sender != mailbox) revert PortUnauthorizedCaller(msg.sender);
        uint32 domain = _domainOf[origin];
        Peer storage p = _peers[domain];
        if (p.port == bytes32(0) || p.port != sender || p.networkDomain != origin) revert PortUnknownPeer(origin, sender);
        (address recipient, bytes32 from) = MessengerEnvelope.deliver(domain, envelope);
        // The mailbox's own `ProcessId` event in this transaction carries the message id.
        emit PortMessageReceived(domain, recipient, bytes32(0), from);
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @inheritdoc IMessengerPort
    function peerOf(uint32 domain) external view returns (uint32 networkDomain, bytes32 peer) {
        Peer memory p = _peers[domain];
        return (p.networkDomain, p.port);
    }

    /// @notice The Sertn domain of Hyperlane domain `networkDomain` (0 if no peer there).
    function domainOf(uint32 networkDomain) external view returns (uint32) {
        return _domainOf[networkDomain];
    }

    /// @inheritdoc IMessengerPort
    function isApp(address app) external view returns (bool) {
        return _apps[app];
    }

    function _peerOrRevert(uint32 domain) private view returns (Peer memory p) {
        p = _peers[domain];
        if (p.port == bytes32(0)) revert PortUnknownDomain(domain);
    }

}
