// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CallbackStatus, IInferenceGateway} from "./IInferenceGateway.sol";

/// @notice Another chain that a fan-out request's result is delivered to, verified there, beside
///         the requesting chain (see `SpokeGateway.requestInferenceFanOut`).
struct Destination {
    /// @notice The chain's Sertn domain (its chain id): a spoke the hub routes to, or the hub.
    uint32 domain;
    /// @notice The contract called back there with the copy ({ISertnCopyReceiver}).
    address receiver;
    /// @notice Gas the receiver's callback gets there.
    uint32 callbackGasLimit;
}

/// @notice A verified result as delivered to a fan-out request's other chains.
struct InferenceCopy {
    /// @notice The requesting chain's Sertn domain.
    uint32 origin;
    /// @notice The gateway the request was made on (left-padded address).
    bytes32 gateway;
    /// @notice The request's id on that gateway.
    uint256 requestId;
    /// @notice Who made the request there (a receiver should accept copies only from requesters it trusts).
    address requester;
    /// @notice The model.
    bytes32 modelId;
    /// @notice The request's input, as the hub recorded it.
    int256[] input;
    /// @notice The model's output, proven and verified on this chain (for a model whose output is
    ///         hashed, its Poseidon commitment).
    int256[] output;
    /// @notice Where the node stored the output document (its values, which hash to the commitment
    ///         of a hashed output); zero if it stored none.
    bytes32 outputRef;
}

/// @title ISertnCopyReceiver
/// @notice What a fan-out request's receiver on another chain implements. It is called by the
///         contract that delivers copies there (a spoke's gateway, or the hub's market), with the gas
///         limit the requester chose, only after that chain verified the proof.
interface ISertnCopyReceiver {
    function rawOnInferenceCopy(InferenceCopy calldata copy) external;
}

/// @title ISertnCopies
/// @notice Events and errors of fan-out: a request naming more than one destination chain, its result
///         proven once and delivered, verified, to each.
interface ISertnCopies {
    /// @notice A fan-out request names no destination, more than the most, this chain, a chain twice,
    ///         no receiver, or a callback gas limit above the gateway's (`index`: the destination).
    error GatewayInvalidDestination(uint256 index);
    /// @notice The copy of this request's result reached this chain before (a copy goes at most once).
    error CopyAlreadyDelivered(uint32 origin, bytes32 gateway, uint256 requestId);

    /// @notice A copy of the result of request `requestId` of `gateway` on `origin` was verified here
    ///         and delivered to `receiver` (at most once).
    event InferenceCopied(
        uint32 indexed origin,
        uint256 indexed requestId,
        address indexed receiver,
        bytes32 gateway,
        address node,
        int256[] output,
        CallbackStatus callbackStatus,
        uint256 callbackGasUsed
    );
    /// @notice A copy for this chain was rejected by its verification (`error`: why); it will not be delivered.
    event CopyRejected(
        uint32 indexed origin, uint256 indexed requestId, address indexed receiver, bytes32 gateway, bytes4 error
    );
}

/// @title IFanOutGateway
/// @notice A gateway that takes fan-out requests (a spoke's: see `SpokeGateway.requestInferenceFanOut`).
interface IFanOutGateway {
    function requestInferenceFanOut(IInferenceGateway.RequestParams calldata params, Destination[] calldata destinations)
        external
        payable
        returns (uint256 requestId);

    function quoteFanOut(bytes32 modelId, uint32 callbackGasLimit, Destination[] calldata destinations)
        external
        view
        returns (uint256);
}
