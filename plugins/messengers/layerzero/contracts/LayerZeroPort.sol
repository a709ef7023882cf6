// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {OApp, Origin} from "@layerzerolabs/lz-evm-oapp-v2/contracts/oapp/OApp.sol";
import {OptionsBuilder} from "@layerzerolabs/lz-evm-oapp-v2/contracts/oapp/libs/OptionsBuilder.sol";
import {
    MessagingFee,
    MessagingParams,
    MessagingReceipt
} from "@layerzerolabs/lz-evm-protocol-v2/contracts/interfaces/ILayerZeroEndpointV2.sol";
import {Errors} from "@layerzerolabs/lz-evm-protocol-v2/contracts/libs/Errors.sol";
import {IMessengerPort} from "../../../../contracts/src/messaging/IMessengerPort.sol";
import {MessengerEnvelope} from "../../../../contracts/src/messaging/MessengerEnvelope.sol";

/// @title LayerZeroPort
/// @notice The LayerZero V2 {IMessengerPort}: an OApp on the chain's EndpointV2 that carries
///         Sertn envelopes (`sender ‖ recipient ‖ body`) to and from its peer ports.
/// @dev Sertn domains (chain ids) map one-to-one to LayerZero endpoint ids (eids); the OApp peer
///      of an eid is the port on that domain. The endpoint authenticates packets (the receive
///      library's DVNs verified them), keeps each payload hash until it is executed once, and
///      calls {lzReceive}; the port checks that the packet comes from the peer port of its origin
///      and hands the envelope to its recipient. A recipient that reverts makes `lzReceive`
///      revert: the packet stays verified and undelivered on the endpoint, for the executor to
///      retry. Sending pays the executor up front for the gas of `lzReceive` on the destination
///      (the executor option: `gasLimit` plus the port's overhead), the DVNs and any treasury fee.
///      Delivery is unordered (`nextNonce` is 0): a rejected message does not block later ones.
contract LayerZeroPort is OApp, IMessengerPort {
    using OptionsBuilder for bytes;

    /// @notice Gas the port asks the executor for beyond the recipient's `gasLimit` (and the 1/64
    ///         of it that the call to the recipient keeps back): the endpoint's payload check and
    ///         clearing (a first nonce on a path writes a fresh slot), the peer check, decoding, the event.
    uint256 public constant RECEIVE_GAS_OVERHEAD = 50_000;

    /// @notice A peer was set through {setPeer} for an eid no Sertn domain maps to.
    error LayerZeroPortUnmappedEid(uint32 eid);
    /// @notice A domain or eid of zero, or this chain's own domain, given as a peer.
    error LayerZeroPortInvalidPeer(uint32 domain, uint32 eid);
    /// @notice `gasLimit` is beyond any block's gas (more than 2^64 - 1).
    error LayerZeroPortGasLimitTooHigh(uint256 gasLimit);

    uint32 private immutable _localDomain;
    mapping(address app => bool) private _apps;
    mapping(uint32 domain => uint32 eid) private _eidOf;
    mapping(uint32 eid => uint32 domain) private _domainOf;

    modifier onlyApp() {
        if (!_apps[msg.sender]) revert PortUnauthorizedApp(msg.sender);
        _;
    }

    /// @param endpoint_ This chain's LayerZero EndpointV2.
    /// @param owner_ Owns the port and is its delegate on the endpoint (may configure its libraries).
    /// @param localDomain_ This chain's Sertn domain (its chain id).
    constructor(address endpoint_, address owner_, uint32 localDomain_) OApp(endpoint_, owner_) Ownable(owner_) {
        _localDomain = localDomain_;
    }

    // ------------------------------------------------------------------ owner

    /// @notice Allows (or no longer allows) `app` to send through this port.
    function setApp(address app, bool allowed) external onlyOwner {
        _apps[app] = allowed;
        emit AppSet(app, allowed);
    }

    /// @notice Sets the peer port for Sertn domain `domain`, reached as endpoint id `eid`
    ///         (a zero `peer` removes it). Replaces any earlier mapping of the domain or the eid.
    function setPeerDomain(uint32 domain, uint32 eid, bytes32 peer) external onlyOwner {
        if (domain == 0 || eid == 0 || domain == _localDomain) revert LayerZeroPortInvalidPeer(domain, eid);
        uint32 oldEid = _eidOf[domain];
        if (oldEid != 0 && oldEid != eid) {
            delete _domainOf[oldEid];
            _setPeer(oldEid, bytes32(0));
        }
        uint32 oldDomain = _domainOf[eid];
        if (oldDomain != 0 && oldDomain != domain) {
            delete _eidOf[oldDomain];
            emit PeerSet(oldDomain, eid, bytes32(0));
        }
        _eidOf[domain] = eid;
        _domainOf[eid] = domain;
        _setPeer(eid, peer);
        emit PeerSet(domain, eid, peer);
    }

    /// @notice The OApp peer setter, kept for LayerZero tooling: only for an eid that a Sertn
    ///         domain already maps to (see {setPeerDomain}).
    function setPeer(uint32 eid, bytes32 peer) public override onlyOwner {
        uint32 domain = _domainOf[eid];
        if (domain == 0) revert LayerZeroPortUnmappedEid(eid);
        _setPeer(eid, peer);
        emit PeerSet(domain, eid, peer);
    }

    // ------------------------------------------------------------------ IMessengerPort

    /// @inheritdoc IMessengerPort
    /// @dev `msg.value` is handed to the endpoint whole; what the send library does not charge is
    ///      refunded to the calling app.
    function send(uint32 destination, bytes32 recipient, bytes calldata body, uint256 gasLimit)
        external
        payable
        onlyApp
        returns (bytes32 messageId)
    {
        (uint32 eid, bytes32 peer) = _route(destination);
        MessagingParams memory params = MessagingParams(
            eid, peer, MessengerEnvelope.encode(msg.sender, recipient, body), _options(gasLimit), false
        );
        // One fee computation: the endpoint's own check, reported as the port's error.
        try endpoint.send{value: msg.value}(params, msg.sender) returns (MessagingReceipt memory receipt) {
            messageId = receipt.guid;
        } catch (bytes memory reason) {
            if (reason.length == 132 && bytes4(reason) == Errors.LZ_InsufficientFee.selector) {
                uint256 required; // LZ_InsufficientFee(requiredNative, suppliedNative, requiredLzToken, suppliedLzToken)
                assembly ("memory-safe") {
                    required := mload(add(reason, 36))
                }
                revert PortInsufficientFee(required, msg.value);
            }
            assembly ("memory-safe") {
                revert(add(reason, 32), mload(reason))
            }
        }
        emit PortMessageSent(destination, msg.sender, messageId, recipient, gasLimit);
    }

    /// @inheritdoc IMessengerPort
    function quote(uint32 destination, bytes32 recipient, bytes calldata body, uint256 gasLimit)
        external
        view
        returns (uint256 fee)
    {
        (uint32 eid, bytes32 peer) = _route(destination);
        MessagingFee memory f = endpoint.quote(
            MessagingParams(eid, peer, MessengerEnvelope.encode(msg.sender, recipient, body), _options(gasLimit), false),
            address(this)
        );
        return f.nativeFee;
    }

    /// @inheritdoc IMessengerPort
    function localDomain() external view returns (uint32) {
        return _localDomain;
    }

    /// @inheritdoc IMessengerPort
    function peerOf(uint32 domain) external view returns (uint32 networkDomain, bytes32 peer) {
        networkDomain = _eidOf[domain];
        peer = networkDomain == 0 ? bytes32(0) : peers[networkDomain];
    }

    /// @inheritdoc IMessengerPort
    function isApp(address app) external view returns (bool) {
        return _apps[app];
    }

    /// @notice The Sertn domain that endpoint id `eid` maps to (0: none).
    function domainOf(uint32 eid) external view returns (uint32) {
        return _domainOf[eid];
    }

    /// @notice The executor options {send} uses for `gasLimit` (type 3, one lzReceive option).
    function optionsFor(uint256 gasLimit) external pure returns (bytes memory) {
        return _options(gasLimit);
    }

    // ------------------------------------------------------------------ OApp receiving

    /// @notice Called by the endpoint with a verified packet: only from the peer port of a mapped
    ///         domain. Reverts (leaving the packet undelivered) when the recipient reverts.
    function lzReceive(
        Origin calldata origin,
        bytes32 guid,
        bytes calldata message,
        address executor,
        bytes calldata extraData
    ) public payable override {
        if (msg.sender != address(endpoint)) revert PortUnauthorizedCaller(msg.sender);
        bytes32 peer = peers[origin.srcEid];
        if (peer == bytes32(0) || peer != origin.sender) revert PortUnknownPeer(origin.srcEid, origin.sender);
        _lzReceive(origin, guid, message, executor, extraData);
    }

    function _lzReceive(Origin calldata origin, bytes32 guid, bytes calldata message, address, bytes calldata)
        internal
        override
    {
        uint32 domain = _domainOf[origin.srcEid];
        if (domain == 0) revert PortUnknownPeer(origin.srcEid, origin.sender);
        (address recipient, bytes32 sender) = MessengerEnvelope.deliver(domain, message);
        emit PortMessageReceived(domain, recipient, guid, sender);
    }

    // ------------------------------------------------------------------ internal

    function _route(uint32 destination) private view returns (uint32 eid, bytes32 peer) {
        eid = _eidOf[destination];
        peer = eid == 0 ? bytes32(0) : peers[eid];
        if (peer == bytes32(0)) revert PortUnknownDomain(destination);
    }

    /// @dev The executor's lzReceive gas for a recipient needing `gasLimit`: enough that, after the
    ///      endpoint and the port took theirs, the 63/64 forwarded to the recipient still cover it.
    function _options(uint256 gasLimit) private pure returns (bytes memory) {
        if (gasLimit > type(uint64).max) revert LayerZeroPortGasLimitTooHigh(gasLimit);
        uint256 gas = gasLimit + gasLimit / 63 + RECEIVE_GAS_OVERHEAD;
        return OptionsBuilder.newOptions().addExecutorLzReceiveOption(uint128(gas), 0);
    }
}
