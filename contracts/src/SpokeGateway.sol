// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InferenceGateway} from "./InferenceGateway.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {HyperlaneReceiver} from "./messaging/HyperlaneReceiver.sol";
import {SertnMessages} from "./messaging/SertnMessages.sol";

/// @title SpokeGateway
/// @notice An inference gateway on a spoke chain: contracts request here as on the hub, and
///         results arrive from the hub market through an enrolled messenger route. Each result is
///         verified here exactly as {InferenceGateway.fulfill} verifies it (registry-pinned VKA,
///         instances built from the request's input commitment and the output) before the node is
///         paid and the requester called back.
/// @dev Inheritance, not composition: the messenger entry point must reach the gateway's internal
///      `_fulfill` (and its reentrancy lock) without a second contract, a second authorisation
///      hop, or a second copy of the request state. The messenger adapter is a separate abstract
///      base ({HyperlaneReceiver} over {MessengerRecipient}), so adding LayerZero is a new adapter
///      base and one more parent here; {_handleMessage} and the gateway stay as they are.
///
///      Local nodes cannot {fulfill} on a spoke: every result must come from the hub market, whose
///      node set and (later) stake decide who serves. `fail` stays with the spoke's authorised
///      nodes until failure messages from the hub exist.
///
///      A message for an unknown, settled or expired request, or with an invalid proof, reverts with
///      the gateway's custom error; the mailbox's `process` reverts with it, so nothing is half
///      applied and the message stays undelivered for the relayer to report.
contract SpokeGateway is InferenceGateway, HyperlaneReceiver {
    /// @notice Results reach a spoke only from the hub, through the messenger.
    error SpokeLocalFulfillDisabled();

    /// @param initialOwner Who configures the gateway and enrolls routes.
    /// @param registry_ The spoke's model registry.
    /// @param config_ The initial configuration.
    /// @param mailbox_ The Hyperlane mailbox on this chain.
    constructor(address initialOwner, IModelRegistry registry_, Config memory config_, address mailbox_)
        InferenceGateway(initialOwner, registry_, config_)
        HyperlaneReceiver(mailbox_)
    {}

    /// @notice Disabled on a spoke: results arrive through {handle}.
    function fulfill(uint256, int256[] calldata, int256[] calldata, bytes calldata, StorageRefs calldata)
        external
        virtual
        override
    {
        revert SpokeLocalFulfillDisabled();
    }

    /// @notice Settles a request with a result from an authenticated hub message; only this
    ///         contract calls it (from {_handleMessage}), so that the payload is decoded as calldata.
    /// @param node The hub-registered node that served the request; it is paid the escrow.
    function deliverResult(
        uint256 requestId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        StorageRefs calldata refs,
        address node
    ) external nonReentrant {
        if (msg.sender != address(this)) revert MessengerUnauthorizedCaller(msg.sender);
        _fulfill(requestId, input, output, proof, refs, node);
    }

    /// @dev Dispatches by message kind. The Result payload is the exact argument encoding of
    ///      {deliverResult}, which decodes and bounds-checks it as calldata; its revert data is
    ///      re-thrown unchanged.
    function _handleMessage(uint32, bytes32, bytes calldata body) internal override {
        uint8 kind = SertnMessages.kind(body);
        if (kind != SertnMessages.RESULT) revert SertnMessages.SertnMessagesUnknownKind(kind);
        (bool ok, bytes memory ret) =
            address(this).call(bytes.concat(this.deliverResult.selector, SertnMessages.payload(body)));
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
