// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CallbackStatus, IInferenceGateway} from "./interfaces/IInferenceGateway.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IResultErrors} from "./interfaces/IResultErrors.sol";
import {ISertnCopies, ISertnCopyReceiver} from "./interfaces/ISertnCopies.sol";
import {Callback} from "./libraries/Callback.sol";
import {ResultProof} from "./libraries/ResultProof.sol";
import {SertnMessages} from "./messaging/SertnMessages.sol";

/// @title CopyLedger
/// @notice Which fan-out copies reached a spoke gateway, kept in a namespaced slot of its storage
///         (ERC-7201: `sertn.storage.CopyLedger`), where {CopyDelivery} writes them.
library CopyLedger {
    /// @dev keccak256(abi.encode(uint256(keccak256("sertn.storage.CopyLedger")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant SLOT = 0x258346d1caf3d8508fc66ea19fb667570fccf736eca2f6ec60daa7d01ad50900;

    struct Layout {
        /// @dev By keccak256(abi.encode(origin, gateway, requestId)): delivered or rejected.
        mapping(bytes32 copy => bool) arrived;
    }

    function layout() internal pure returns (Layout storage l) {
        assembly ("memory-safe") {
            l.slot := SLOT
        }
    }

    function keyOf(uint32 origin, bytes32 gateway, uint256 requestId) internal pure returns (bytes32) {
        return keccak256(abi.encode(origin, gateway, requestId));
    }
}

/// @title CopyDelivery
/// @notice Delivers fan-out copies on a spoke: a copy of another chain's request's result, sent by
///         the hub market, is verified with this chain's own VKA of the model (the version the hub
///         recorded here) and its receiver called back in isolation, at most once per request.
/// @dev The spoke gateway runs this code with `delegatecall` (its own code is at the size limit),
///      once it has authenticated the hub's message: events come from the gateway, receivers are
///      called by it, and the ledger lives in the gateway's storage ({CopyLedger}). Called any
///      other way, it refuses.
contract CopyDelivery is ISertnCopies {
    /// @notice Called other than by its gateway's delegatecall.
    error CopyDeliveryNotDelegated();

    /// @notice The spoke's model registry (the gateway's).
    IModelRegistry public immutable registry;
    address private immutable _self;

    constructor(IModelRegistry registry_) {
        registry = registry_;
        _self = address(this);
    }

    /// @notice Delivers copy `c` (see the contract's notes). A copy this chain rejects (the model's
    ///         version here is no longer the one the hub recorded, the output's shape, the proof) is
    ///         recorded as arrived and reported ({CopyRejected}); it is never delivered. A second
    ///         copy of the same request reverts {CopyAlreadyDelivered}.
    function deliverCopy(SertnMessages.ResultCopy calldata c) external {
        if (address(this) == _self) revert CopyDeliveryNotDelegated();
        bytes32 key = CopyLedger.keyOf(c.copy.origin, c.copy.gateway, c.copy.requestId);
        CopyLedger.Layout storage ledger = CopyLedger.layout();
        if (ledger.arrived[key]) revert CopyAlreadyDelivered(c.copy.origin, c.copy.gateway, c.copy.requestId);
        ledger.arrived[key] = true;
        IModelRegistry.VerificationTerms memory t = registry.tryGetVerificationTerms(c.copy.modelId);
        bytes4 rejected;
        if (t.version == 0 || t.version != c.modelVersion) rejected = IInferenceGateway.GatewayModelVersionChanged.selector;
        else if (c.copy.output.length != t.outputLength) rejected = IResultErrors.ResultOutputShapeMismatch.selector;
        else if (!ResultProof.verifies(t.verifier, t.vka, c.proof, c.copy.input, c.copy.output)) {
            rejected = IResultErrors.ResultInvalidProof.selector;
        }
        if (rejected != 0) {
            emit CopyRejected(c.copy.origin, c.copy.requestId, c.receiver, c.copy.gateway, rejected);
            return;
        }
        (CallbackStatus cs, uint256 gasUsed) =
            Callback.call(c.receiver, c.callbackGasLimit, abi.encodeCall(ISertnCopyReceiver.rawOnInferenceCopy, (c.copy)));
        emit InferenceCopied(c.copy.origin, c.copy.requestId, c.receiver, c.copy.gateway, c.node, c.copy.output, cs, gasUsed);
    }
}
