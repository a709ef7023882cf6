// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ISertnCopyReceiver, InferenceCopy} from "./interfaces/ISertnCopies.sol";

/// @title SertnCopyReceiver
/// @notice Base contract for contracts that receive copies of fan-out requests' results made on
///         other chains. Inherit it and implement {_onInferenceCopy}: only the contract that delivers
///         copies on this chain (a spoke's gateway, or the hub's market) can trigger it, and only
///         after this chain verified the copy's proof. Check the copy's origin, gateway and
///         requester: anyone on any connected chain may name this contract as a destination.
abstract contract SertnCopyReceiver is ISertnCopyReceiver {
    /// @notice A copy came from someone other than this chain's deliverer.
    error SertnCopyReceiverOnlyDeliverer(address caller);

    /// @notice Who delivers copies on this chain: a spoke's gateway, or the hub's market.
    address public immutable copyDeliverer;

    constructor(address deliverer) {
        copyDeliverer = deliverer;
    }

    /// @inheritdoc ISertnCopyReceiver
    function rawOnInferenceCopy(InferenceCopy calldata copy) external {
        if (msg.sender != copyDeliverer) revert SertnCopyReceiverOnlyDeliverer(msg.sender);
        _onInferenceCopy(copy);
    }

    /// @notice Receives a verified copy: the origin chain, its gateway and requester, the request's
    ///         id there, the model, the input and the output.
    function _onInferenceCopy(InferenceCopy calldata copy) internal virtual;
}
