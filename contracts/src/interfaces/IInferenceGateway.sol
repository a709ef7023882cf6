// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IResultErrors} from "./IResultErrors.sol";

/// @notice Why a request ended without a result.
enum InferenceErrorCode {
    /// @notice Unspecified.
    Unknown,
    /// @notice The input was rejected by the model or the circuit.
    InvalidInput,
    /// @notice Running the model failed.
    ModelFailed,
    /// @notice Proving failed.
    ProvingFailed,
    /// @notice The model's circuit changed or it can no longer be served.
    ModelUnavailable,
    /// @notice The deadline passed without a result.
    Timeout,
    /// @notice The result delivered from the hub was rejected by this chain's verification.
    InvalidResult,
    /// @notice No node of the model's pool had the capacity, and the requester chose to fail then.
    NoCapacity
}

/// @notice A request's lifecycle: Pending, then exactly one of Fulfilled, Failed or Refunded.
enum RequestStatus {
    /// @notice No such request.
    None,
    /// @notice Accepted; its fee is in escrow.
    Pending,
    /// @notice A verified result was delivered and the node was paid.
    Fulfilled,
    /// @notice The node reported that it cannot serve it; the requester was refunded.
    Failed,
    /// @notice The deadline passed; the requester was refunded.
    Refunded
}

/// @notice What happened when the gateway called the requester back.
enum CallbackStatus {
    /// @notice The callback returned normally.
    Succeeded,
    /// @notice The callback reverted or ran out of gas; the request is settled regardless.
    Failed,
    /// @notice The requester has no code (an EOA), so nothing was called.
    Skipped
}

/// @title IInferenceGateway
/// @notice Where contracts request ML inference and receive results proven in zero knowledge and
///         verified on this chain. A rejected result reverts with an {IResultErrors} error.
interface IInferenceGateway is IResultErrors {
    // ─────────────────────────────── Types ────────────────────────────────

    /// @notice A request as stored.
    struct Request {
        /// @notice Who requested and is called back (and refunded).
        address requester;
        /// @notice Gas the callback gets.
        uint32 callbackGasLimit;
        /// @notice After this timestamp the request can no longer be fulfilled, only refunded.
        uint40 deadline;
        /// @notice The lifecycle state.
        RequestStatus status;
        /// @notice The model.
        bytes32 modelId;
        /// @notice Wei held in escrow: paid to the node on fulfilment, refunded otherwise.
        uint96 escrow;
        /// @notice The model version the request was made against.
        uint32 modelVersion;
        /// @notice On a spoke: wei held for the request's settlement receipt to the hub (in the
        ///         escrow's slot, so that settling reads no other). Zero on the hub.
        uint96 receiptReserve;
        /// @notice The input commitment, keccak256(abi.encodePacked(modelId, uint256(modelVersion),
        ///         input)), while the request is pending: a result must match it, which binds the
        ///         result to the request's input, model and version. Zero once the request is settled.
        bytes32 inputHash;
    }

    /// @notice A request with every option (see {requestInferenceWith}).
    struct RequestParams {
        /// @notice The model.
        bytes32 modelId;
        /// @notice The input at the model's input scale, flattened; for a model whose input is
        ///         hashed, the one element is the input's Poseidon commitment, in the circuit's
        ///         signed encoding (a field element h above (R - 1) / 2 is passed as h - R).
        int256[] input;
        /// @notice For a model whose input is hashed: where the input is stored (e.g. an Arweave
        ///         transaction id). The node fetches it, checks it against the commitment, and
        ///         fails the request with a refund if it is missing or does not match. Zero otherwise.
        bytes32 inputRef;
        /// @notice Gas for the result callback.
        uint32 callbackGasLimit;
        /// @notice The model version the requester expects (0: whichever is current).
        uint32 modelVersion;
        /// @notice The artifacts hash (sha256 of the model's manifest) the requester expects
        ///         (zero: whichever is current).
        bytes32 artifactsHash;
        /// @notice What happens when no node of the model's pool has capacity left in the epoch:
        ///         false, the request waits (queued) for the next epoch or a node with capacity; true,
        ///         it fails at once with a refund (on the hub the request reverts
        ///         {GatewayNoCapacity}; from a spoke it is failed with `NoCapacity` and refunded).
        bool failIfNoCapacity;
    }

    /// @notice How a model is used through this gateway (its vetting record).
    struct ModelUsage {
        /// @notice Requests accepted.
        uint64 requests;
        /// @notice Requests fulfilled with a verified result.
        uint64 served;
        /// @notice Distinct requesting accounts.
        uint32 requesters;
        /// @notice Accounts that requested more than once.
        uint32 repeatRequesters;
    }

    /// @notice Where a node stored a result's artifacts, for anyone to fetch and re-verify.
    struct StorageRefs {
        /// @notice The stored output document (32-byte id, e.g. an Arweave transaction id).
        bytes32 output;
        /// @notice The stored proof.
        bytes32 proof;
    }

    /// @notice Gateway settings.
    struct Config {
        /// @notice Seconds a node has to fulfil a request.
        uint32 requestTimeout;
        /// @notice The most gas a requester may ask for its callback.
        uint32 maxCallbackGasLimit;
        /// @notice Gas the node spends on `fulfill` beyond the callback (verification included),
        ///         charged to the requester at `gasPrice`.
        uint32 fulfillGasOverhead;
        /// @notice Wei per gas charged for the node's fulfilment gas.
        uint96 gasPrice;
        /// @notice Gas a batch delivery spends beyond its rows (its one verification included),
        ///         shared by the rows it settles; 0: batch rows are charged as single requests.
        uint32 batchGasOverhead;
        /// @notice Gas each row of a batch adds beyond its callback (binding, settlement, event).
        uint32 batchRowGasOverhead;
    }

    // ─────────────────────────────── Errors ───────────────────────────────

    /// @notice The registry has no such model.
    error GatewayUnknownModel(bytes32 modelId);
    /// @notice No node of the model's pool has capacity left in this epoch, and the request chose to fail then.
    error GatewayNoCapacity(bytes32 modelId);
    /// @notice The model does not accept new requests.
    error GatewayModelInactive(bytes32 modelId);
    /// @notice The input has more elements than any model accepts.
    error GatewayInputTooLarge(uint256 length, uint256 maxLength);
    /// @notice The input does not have the model's number of elements.
    error GatewayInputShapeMismatch(uint256 expected, uint256 actual);
    /// @notice An input element exceeds the model's bound.
    error GatewayInputOutOfRange(uint256 index, int256 value, uint256 maxAbs);
    /// @notice The payment does not cover the quote.
    error GatewayInsufficientPayment(uint256 required, uint256 paid);
    /// @notice The callback gas limit exceeds the gateway's maximum.
    error GatewayCallbackGasLimitTooHigh(uint256 requested, uint256 max);
    /// @notice This gateway takes no answers from nodes (it has no node registry: a spoke's answers come from the hub).
    error GatewayUnauthorizedNode(address caller);
    /// @notice The request is not pending (unknown, or already settled).
    error GatewayRequestNotPending(uint256 requestId, RequestStatus status);
    /// @notice The request's deadline has passed: it can only be refunded.
    error GatewayRequestExpired(uint256 requestId, uint256 deadline);
    /// @notice The deadline has not passed yet.
    error GatewayRequestNotExpired(uint256 requestId, uint256 deadline);
    /// @notice The model's circuit changed since the request was made.
    error GatewayModelVersionChanged(uint256 requestId, uint32 requested, uint32 current);
    /// @notice Too little gas was sent to give the callback its full gas limit.
    error GatewayInsufficientGasForCallback(uint256 available, uint256 required);
    /// @notice Nothing is owed to the account.
    error GatewayNothingToWithdraw(address account);
    /// @notice Sending owed funds failed.
    error GatewayWithdrawFailed(address account, uint256 amount);
    /// @notice A configuration value is out of range.
    error GatewayInvalidConfig();
    /// @notice A function was re-entered.
    error GatewayReentrantCall();
    /// @notice The request pinned a model version that is not the current one.
    error GatewayModelVersionMismatch(uint32 pinned, uint32 current);
    /// @notice The request pinned an artifacts hash that is not the model's current one.
    error GatewayModelArtifactsMismatch(bytes32 pinned, bytes32 current);
    /// @notice A hashed input's commitment is not a field element in the signed encoding.
    error GatewayInvalidInputCommitment(int256 commitment);
    /// @notice A request for a model whose input is hashed must say where the input is stored.
    error GatewayMissingInputRef();
    /// @notice A batch must have one request id per row of its circuit (`size`), at least one of them a request.
    error GatewayBatchShapeMismatch(uint256 size, uint256 rows);
    /// @notice The model's current circuit has no batch circuit of `size` rows.
    error GatewayNoBatchCircuit(bytes32 modelId, uint16 size);
    /// @notice Every request of a batch must be of the same model and version as its first.
    error GatewayBatchMixesModels(uint256 requestId);
    /// @notice No settled batch with exactly these request ids owes its requesters anything (or it was released).
    error GatewayNoBatchClaim(bytes32 batch);

    // ─────────────────────────────── Events ───────────────────────────────

    /// @notice A request was accepted and its payment escrowed.
    /// @param requestId The request's id on this gateway.
    /// @param modelId The model.
    /// @param requester Who is called back.
    /// @param input The input at the model's input scale (its commitment, for a hashed input).
    /// @param inputRef Where a hashed input is stored (zero for a public input).
    /// @param modelVersion The model version it was made against.
    /// @param callbackGasLimit Gas the callback gets.
    /// @param escrow Wei in escrow.
    /// @param deadline The fulfilment deadline (unix seconds).
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed requester,
        int256[] input,
        bytes32 inputRef,
        uint32 modelVersion,
        uint32 callbackGasLimit,
        uint96 escrow,
        uint40 deadline
    );

    /// @notice A verified result was delivered and the node paid.
    /// @param requestId The request.
    /// @param node The node that delivered and was paid.
    /// @param output The verified output at the model's output scale (its commitment, for a
    ///        hashed output, whose values are in the stored output document `artifacts.output`).
    /// @param artifacts Where the node stored the output and the proof (e.g. Arweave transaction ids).
    /// @param callbackStatus How the requester's callback went.
    /// @param callbackGasUsed Gas the callback used.
    event InferenceFulfilled(
        uint256 indexed requestId,
        address indexed node,
        int256[] output,
        StorageRefs artifacts,
        CallbackStatus callbackStatus,
        uint256 callbackGasUsed
    );

    /// @notice A node reported that it cannot serve the request; the requester was refunded.
    event InferenceFailed(
        uint256 indexed requestId,
        address indexed node,
        InferenceErrorCode code,
        string reason,
        CallbackStatus callbackStatus
    );

    /// @notice The deadline passed and the requester was refunded.
    event InferenceRefunded(uint256 indexed requestId, address indexed caller, CallbackStatus callbackStatus);

    /// @notice A payment could not be pushed and is held for `account` to withdraw.
    event PaymentDeferred(address indexed account, uint256 amount);

    /// @notice Owed funds were withdrawn.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice The configuration changed.
    event ConfigSet(Config config);

    /// @notice A batch settled `requestIds` and shared its verification: each of their requesters
    ///         is owed `rebate` (at most its escrow), paid by {releaseBatch} with these ids.
    event BatchRebate(uint256[] requestIds, uint256 rebate);

    // ─────────────────────────────── Functions ────────────────────────────

    /// @notice What `requestInference` costs: the model's fee plus the node's fulfilment gas. A
    ///         request settled in a batch pays less in the end: see {quoteBatched}.
    function quote(bytes32 modelId, uint32 callbackGasLimit) external view returns (uint256);

    /// @notice What a request ends up paying when it is settled in a batch that settles `rows`
    ///         requests: the model's fee, its callback gas, its row's gas and its share of the
    ///         batch's (one verification for all rows), at the configured gas price. It pays
    ///         {quote} up front; the difference comes back through {releaseBatch}.
    function quoteBatched(bytes32 modelId, uint32 callbackGasLimit, uint16 rows) external view returns (uint256);

    /// @notice Pays the requesters of a settled batch what it owes them: each its rebate from
    ///         {BatchRebate} (the verification shared) and, on a spoke, what the batch's one
    ///         receipt left of its receipt reserve. `requestIds` are exactly those of the batch's
    ///         {BatchRebate} (or, on a spoke, its `BatchReceiptSent`). Anyone may call it, once.
    function releaseBatch(uint256[] calldata requestIds) external;

    /// @notice Requests an inference of `modelId` on `input`; pays at least `quote`.
    /// @param modelId The model.
    /// @param input The input at the model's input scale (round(x * 2^inputScale)), flattened.
    /// @param callbackGasLimit Gas for the result callback.
    /// @return requestId The request's id on this gateway.
    function requestInference(bytes32 modelId, int256[] calldata input, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId);

    /// @notice Requests an inference with every option: a hashed input (its commitment and where it
    ///         is stored), and the model version or artifacts hash the requester expects.
    /// @return requestId The request's id on this gateway.
    function requestInferenceWith(RequestParams calldata params) external payable returns (uint256 requestId);

    /// @notice How `modelId` is used through this gateway: requests, served, distinct and repeat
    ///         requesters.
    function modelUsage(bytes32 modelId) external view returns (ModelUsage memory);

    /// @notice Delivers a result with its proof; authorised nodes only.
    /// @param requestId The request.
    /// @param input The request's input (checked against the stored hash), or its commitment.
    /// @param output The claimed output at the model's output scale, or its commitment.
    /// @param proof The proof whose public instances must be the input and the output.
    /// @param artifacts Where the output and the proof are stored (recorded in the event; zero if not stored).
    function fulfill(
        uint256 requestId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        StorageRefs calldata artifacts
    ) external;

    /// @notice Delivers the results of a batch: one proof of the model's batch circuit of `size`
    ///         rows answers every request it names; the assigned node of each, only. All rows are
    ///         checked before any is settled, and any bad row rejects the batch; once accepted,
    ///         each request is paid and called back on its own (a consumer that reverts or runs
    ///         out of gas harms no other row).
    /// @param size The batch circuit's rows.
    /// @param requestIds One per row: the request the row answers, or 0 for a padding row, which
    ///        binds to no request (its input and output are proven, and ignored).
    /// @param inputs Every row's input (or commitment), row after row: each request's row must be
    ///        its input exactly (checked against its stored hash).
    /// @param outputs Every row's output (or commitment), row after row.
    /// @param proof The proof whose public instances are `inputs`, then `outputs`.
    /// @param artifacts Where the batch's outputs and proof are stored (recorded in each row's event).
    function fulfillBatch(
        uint16 size,
        uint256[] calldata requestIds,
        int256[] calldata inputs,
        int256[] calldata outputs,
        bytes calldata proof,
        StorageRefs calldata artifacts
    ) external;

    /// @notice Ends a request that cannot be served: error callback and full refund; nodes only.
    function fail(uint256 requestId, InferenceErrorCode code, string calldata reason) external;

    /// @notice Refunds a request whose deadline passed; anyone may call it.
    function refund(uint256 requestId) external;

    /// @notice Withdraws payments that could not be pushed to the caller.
    function withdraw() external;

    /// @notice Funds held for `account` after a pushed payment failed.
    function owed(address account) external view returns (uint256);

    /// @notice A request by id.
    function getRequest(uint256 requestId) external view returns (Request memory);
}
