// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {
    IInferenceGateway,
    InferenceErrorCode,
    RequestStatus,
    CallbackStatus
} from "./interfaces/IInferenceGateway.sol";
import {IModelRegistry, Visibility} from "./interfaces/IModelRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {ISertnConsumer} from "./interfaces/ISertnConsumer.sol";
import {Destination, ISertnCopies} from "./interfaces/ISertnCopies.sol";
import {Callback} from "./libraries/Callback.sol";
import {FieldEncoding} from "./libraries/FieldEncoding.sol";
import {ResultProof} from "./libraries/ResultProof.sol";
import {Owned} from "./utils/Owned.sol";

/// @title InferenceGateway
/// @notice Contracts request ML inference here and receive results that this chain has verified
///         against their very request.
/// @dev A result is accepted only if the model's verifier, called with the verifying-key artifact
///      that the registry pins for the model, accepts the proof for public instances that the
///      gateway builds itself from the request's input and the delivered output (or their Poseidon
///      commitments, for a model whose input or output is hashed). Each request is
///      settled at most once: fulfilled (node paid, requester called back), failed or refunded
///      (requester refunded and called back). Callbacks run with the requester's gas limit and are
///      isolated: a reverting, gas-hungry or return-data-bombing requester cannot undo the settlement.
///      On the hub, each request is opened as a job in the {INodeRegistry}, which assigns it to a node
///      of the model's pool: only that node may fulfil or fail it, and only it is paid.
contract InferenceGateway is IInferenceGateway, ISertnCopies, Owned {
    // ─────────────────────────────── Constants ────────────────────────────

    /// @notice The most input elements any request may carry.
    uint256 public constant MAX_INPUT_LENGTH = 1024;
    /// @notice The longest error reason a node may send.
    uint256 public constant MAX_REASON_LENGTH = 256;
    /// @notice The most other chains a fan-out request may name.
    uint256 public constant MAX_DESTINATIONS = 4;
    /// @dev Gas forwarded with pushed payments; a payee that needs more withdraws instead.
    uint256 private constant PAYMENT_GAS = 10_000;

    // ─────────────────────────────── State ────────────────────────────────

    /// @notice The registry that pins each model's circuit.
    IModelRegistry public immutable registry;
    /// @notice Assigns each request to a node and says who may answer it (none: the gateway takes
    ///         no local answers, as on a spoke, whose answers come from the hub).
    INodeRegistry public immutable nodes;

    Config private _config;
    uint256 private _lastRequestId;
    mapping(uint256 requestId => Request) private _requests;
    mapping(address account => uint256) private _owed;
    mapping(bytes32 modelId => ModelUsage) private _usage;
    mapping(bytes32 modelId => mapping(address requester => uint256)) private _requestsBy;
    bool private transient _entered;
    /// @dev What a settled batch owes its requesters, by keccak256(abi.encode(requestIds)).
    mapping(bytes32 batch => BatchClaim) internal _batchClaims;

    /// @dev A settled batch's debts to its requesters: each row's rebate (the verification shared)
    ///      and, on a spoke, its receipt's fee and the reserves it was paid from.
    struct BatchClaim {
        uint96 rebate;
        uint80 fee;
        uint80 reserves;
    }

    /// @param initialOwner Who configures the gateway.
    /// @param registry_ The model registry.
    /// @param nodes_ The node registry that assigns requests (zero for none; it must allow this gateway as a market).
    /// @param config_ The initial configuration.
    constructor(address initialOwner, IModelRegistry registry_, INodeRegistry nodes_, Config memory config_)
        Owned(initialOwner)
    {
        registry = registry_;
        nodes = nodes_;
        _setConfig(config_);
    }

    modifier nonReentrant() {
        if (_entered) revert GatewayReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }

    // ─────────────────────────────── Requesters ───────────────────────────

    /// @inheritdoc IInferenceGateway
    function quote(bytes32 modelId, uint32 callbackGasLimit) external view returns (uint256) {
        return _quoteRows(modelId, callbackGasLimit, 0, new Destination[](0));
    }

    /// @inheritdoc IInferenceGateway
    function quoteBatched(bytes32 modelId, uint32 callbackGasLimit, uint16 rows) external view returns (uint256) {
        return _quoteRows(modelId, callbackGasLimit, rows, new Destination[](0));
    }

    /// @dev The quote with `copies` to other chains, less the rebate of a batch settling `rows`
    ///      requests (none for 0).
    function _quoteRows(bytes32 modelId, uint32 callbackGasLimit, uint256 rows, Destination[] memory copies)
        internal
        view
        returns (uint256)
    {
        IModelRegistry.RequestTerms memory terms = registry.tryGetRequestTerms(modelId);
        if (terms.version == 0) revert GatewayUnknownModel(modelId);
        Config memory cfg = _config;
        return _quote(terms.fee, callbackGasLimit, cfg) + _copiesFee(copies, cfg) - _rebate(rows, cfg)
            + _messagingFee(terms.inputLength, copies.length);
    }

    /// @inheritdoc IInferenceGateway
    function releaseBatch(uint256[] calldata requestIds) external nonReentrant {
        bytes32 key = keccak256(abi.encode(requestIds));
        BatchClaim memory c = _batchClaims[key];
        if (uint256(c.rebate) | c.reserves == 0) revert GatewayNoBatchClaim(key);
        delete _batchClaims[key];
        for (uint256 i; i < requestIds.length; ++i) {
            Request storage r = _requests[requestIds[i]];
            uint256 escrow = r.escrow;
            _pay(r.requester, (c.rebate < escrow ? c.rebate : escrow) + _releaseRow(requestIds[i], c));
        }
    }

    /// @inheritdoc IInferenceGateway
    function requestInference(bytes32 modelId, int256[] calldata input, uint32 callbackGasLimit)
        external
        payable
        nonReentrant
        returns (uint256 requestId)
    {
        return _request(modelId, input, bytes32(0), callbackGasLimit, 0, bytes32(0), false, new Destination[](0));
    }

    /// @inheritdoc IInferenceGateway
    function requestInferenceWith(RequestParams calldata p) external payable nonReentrant returns (uint256 requestId) {
        return _requestWith(p, new Destination[](0));
    }

    /// @inheritdoc IInferenceGateway
    function refund(uint256 requestId) external nonReentrant {
        Request storage r = _pending(requestId);
        uint256 deadline = r.deadline;
        if (block.timestamp <= deadline) revert GatewayRequestNotExpired(requestId, deadline);
        r.status = RequestStatus.Refunded;
        r.inputHash = bytes32(0);
        _closeJob(requestId, address(0));
        address requester = r.requester;
        _pay(requester, r.escrow);
        CallbackStatus cs = _callbackError(r, requestId, InferenceErrorCode.Timeout, "deadline passed");
        emit InferenceRefunded(requestId, msg.sender, cs);
        _afterSettle(requestId, RequestStatus.Refunded, address(0));
    }

    /// @inheritdoc IInferenceGateway
    function withdraw() external nonReentrant {
        uint256 amount = _owed[msg.sender];
        if (amount == 0) revert GatewayNothingToWithdraw(msg.sender);
        delete _owed[msg.sender];
        (bool ok, ) = msg.sender.call{value: amount}("");
        if (!ok) revert GatewayWithdrawFailed(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // ─────────────────────────────── Nodes ────────────────────────────────

    /// @inheritdoc IInferenceGateway
    function fulfill(
        uint256 requestId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        StorageRefs calldata artifacts
    ) external virtual nonReentrant {
        _claimJob(requestId);
        _fulfill(requestId, input, output, proof, artifacts, msg.sender);
    }

    /// @inheritdoc IInferenceGateway
    function fulfillBatch(
        uint16 size,
        uint256[] calldata requestIds,
        int256[] calldata inputs,
        int256[] calldata outputs,
        bytes calldata proof,
        StorageRefs calldata artifacts
    ) external virtual nonReentrant {
        if (address(nodes) == address(0)) revert GatewayUnauthorizedNode(msg.sender);
        _fulfillBatch(size, requestIds, inputs, outputs, proof, artifacts, msg.sender, false);
    }

    /// @inheritdoc IInferenceGateway
    function fail(uint256 requestId, InferenceErrorCode code, string calldata reason)
        external
        virtual
        nonReentrant
    {
        _claimJob(requestId);
        _fail(requestId, code, reason, msg.sender);
    }

    // ─────────────────────────────── Owner ────────────────────────────────

    /// @notice Replaces the configuration; pending requests keep their deadline and escrow.
    function setConfig(Config calldata config_) external onlyOwner {
        _setConfig(config_);
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @inheritdoc IInferenceGateway
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @notice The gateway's configuration.
    function config() external view returns (Config memory) {
        return _config;
    }

    /// @inheritdoc IInferenceGateway
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @inheritdoc IInferenceGateway
    function modelUsage(bytes32 modelId) external view returns (ModelUsage memory) {
        return _usage[modelId];
    }

    /// @notice The id of the most recent request (ids start at 1).
    function lastRequestId() external view returns (uint256) {
        return _lastRequestId;
    }

    // ─────────────────────────────── Internals ────────────────────────────

    /// @dev {_request} with every option of `p`.
    function _requestWith(RequestParams calldata p, Destination[] memory copies) internal returns (uint256) {
        return _request(p.modelId, p.input, p.inputRef, p.callbackGasLimit, p.modelVersion, p.artifactsHash, p.failIfNoCapacity, copies);
    }

    /// @dev Checks and escrows a request; `pinnedVersion` / `pinnedArtifacts` zero mean "any";
    ///      `copies`: the other chains its result goes to (a fan-out request; each copy's delivery
    ///      is escrowed with the request's, see {_copiesFee}).
    function _request(
        bytes32 modelId,
        int256[] calldata input,
        bytes32 inputRef,
        uint32 callbackGasLimit,
        uint32 pinnedVersion,
        bytes32 pinnedArtifacts,
        bool failIfNoCapacity,
        Destination[] memory copies
    ) internal returns (uint256 requestId) {
        if (input.length > MAX_INPUT_LENGTH) revert GatewayInputTooLarge(input.length, MAX_INPUT_LENGTH);
        IModelRegistry.RequestTerms memory terms = registry.tryGetRequestTerms(modelId);
        if (terms.version == 0) revert GatewayUnknownModel(modelId);
        if (!terms.active) revert GatewayModelInactive(modelId);
        if (pinnedVersion != 0 && pinnedVersion != terms.version) revert GatewayModelVersionMismatch(pinnedVersion, terms.version);
        if (pinnedArtifacts != bytes32(0) && pinnedArtifacts != terms.artifactsHash) {
            revert GatewayModelArtifactsMismatch(pinnedArtifacts, terms.artifactsHash);
        }
        if (input.length != terms.inputLength) revert GatewayInputShapeMismatch(terms.inputLength, input.length);
        _checkInput(input, inputRef, terms);
        Config memory cfg = _config;
        if (callbackGasLimit > cfg.maxCallbackGasLimit) {
            revert GatewayCallbackGasLimitTooHigh(callbackGasLimit, cfg.maxCallbackGasLimit);
        }
        uint256 messaging = _messagingFee(input.length, copies.length);
        uint256 price = _quote(terms.fee, callbackGasLimit, cfg) + _copiesFee(copies, cfg) + messaging;
        if (msg.value < price || msg.value > type(uint96).max) revert GatewayInsufficientPayment(price, msg.value);

        requestId = ++_lastRequestId;
        Request storage r = _requests[requestId];
        r.requester = msg.sender;
        r.callbackGasLimit = callbackGasLimit;
        r.deadline = uint40(block.timestamp + cfg.requestTimeout);
        r.status = RequestStatus.Pending;
        r.modelId = modelId;
        r.escrow = uint96(msg.value - messaging);
        r.modelVersion = terms.version;
        r.inputHash = _inputCommitment(modelId, terms.version, input);
        _countRequest(modelId, msg.sender);
        _announce(requestId, r, input, inputRef);
        _openJob(requestId, r, terms.computeUnits, failIfNoCapacity);
        _afterRequest(requestId, r, input, inputRef, messaging, failIfNoCapacity, copies);
    }

    /// @dev What a fan-out request's `copies` add to its escrow: each copy's delivery gas (as a
    ///      result's, with its receiver's callback) at the configured price, paid to the node that
    ///      answers (which pays their messages) or refunded with the escrow. Reverts
    ///      {GatewayInvalidDestination} for a destination that cannot be served: more than
    ///      {MAX_DESTINATIONS}, this chain, a chain named twice, no receiver, too much callback gas.
    function _copiesFee(Destination[] memory copies, Config memory cfg) private view returns (uint256 fee) {
        uint256 n = copies.length;
        for (uint256 i; i < n; ++i) {
            Destination memory d = copies[i];
            bool bad = i >= MAX_DESTINATIONS || d.domain == block.chainid || d.receiver == address(0)
                || d.callbackGasLimit > cfg.maxCallbackGasLimit;
            for (uint256 j; j < i && !bad; ++j) bad = copies[j].domain == d.domain;
            if (bad) revert GatewayInvalidDestination(i);
            fee += (uint256(cfg.fulfillGasOverhead) + d.callbackGasLimit) * cfg.gasPrice;
        }
    }

    function _announce(uint256 requestId, Request storage r, int256[] calldata input, bytes32 inputRef) private {
        emit InferenceRequested(
            requestId, r.modelId, r.requester, input, inputRef, r.modelVersion, r.callbackGasLimit, r.escrow, r.deadline
        );
    }

    /// @dev A public input's elements must be within the model's bound; a hashed input is one
    ///      commitment (a field element in the signed encoding) with a storage reference.
    function _checkInput(int256[] calldata input, bytes32 inputRef, IModelRegistry.RequestTerms memory terms)
        private
        pure
    {
        if (terms.inputVisibility == Visibility.Hashed) {
            int256 c = input[0];
            int256 max = int256(FieldEncoding.MAX_ABS_VALUE);
            if (c > max || c < -max) revert GatewayInvalidInputCommitment(c);
            if (inputRef == bytes32(0)) revert GatewayMissingInputRef();
            return;
        }
        int256 bound = int256(uint256(terms.maxAbsInput));
        for (uint256 i; i < input.length; ++i) {
            int256 v = input[i];
            if (v > bound || v < -bound) revert GatewayInputOutOfRange(i, v, uint256(bound));
        }
    }

    /// @dev Counts a request of `requester` for `modelId` (the model's usage record).
    function _countRequest(bytes32 modelId, address requester) private {
        ModelUsage storage u = _usage[modelId];
        uint256 n = ++_requestsBy[modelId][requester];
        if (n == 1) ++u.requesters;
        else if (n == 2) ++u.repeatRequesters;
        ++u.requests;
    }

    /// @dev Settles `requestId` with a verified result and pays `payee`: the one path by which any
    ///      entry point (a local node's {fulfill}, a messenger's authenticated delivery) fulfils a
    ///      request. Reverts, changing nothing, unless the request is pending, unexpired, and the
    ///      proof verifies for the request's input and `output`. The caller holds the reentrancy
    ///      lock and has authenticated the delivery.
    function _fulfill(
        uint256 requestId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        StorageRefs calldata artifacts,
        address payee
    ) internal {
        Request storage r = _pending(requestId);
        Visibility outputVisibility = _checkResult(requestId, r, input, output, proof);
        ++_usage[r.modelId].served;
        _pay(payee, _settleFulfilled(requestId, output, outputVisibility, artifacts, payee));
    }

    /// @dev Settles the requests a batch names with one proof of the model's batch circuit of
    ///      `size` rows and pays `payee` once: the one path by which any entry point (a hub node's
    ///      {fulfillBatch}, a messenger's authenticated delivery) fulfils a batch. Every row is bound
    ///      to its request ({_bindRows}) and the proof verified before anything settles; on the hub
    ///      each job is closed for `payee`, which must hold it. With `skipSettled` (a batch that
    ///      travelled from the hub) a row whose request is no longer pending or has expired is
    ///      left alone, as a padding row; otherwise it reverts. Returns the settled requests
    ///      (zeros where a row settled none) and how many there are. The caller holds the lock.
    function _fulfillBatch(
        uint16 size,
        uint256[] calldata requestIds,
        int256[] memory inputs,
        int256[] memory outputs,
        bytes calldata proof,
        StorageRefs calldata artifacts,
        address payee,
        bool skipSettled
    ) internal returns (uint256[] memory named) {
        (uint256[] memory settled, uint256 count, bytes32 modelId, IModelRegistry.VerificationTerms memory t) =
            _verifyBatch(size, requestIds, inputs, outputs, proof, skipSettled);
        _usage[modelId].served += uint64(count);
        // The verification is shared: each row's requester is owed a rebate, recorded once for the batch.
        uint256 rebate = _rebate(count, _config);
        named = _compact(settled, count);
        if (rebate != 0) {
            _batchClaims[keccak256(abi.encode(named))].rebate = uint96(rebate);
            emit BatchRebate(named, rebate);
        }
        // One payment for the whole batch: the escrows less the rebates.
        _pay(payee, _settleRows(settled, outputs, t, artifacts, payee, rebate));
    }

    /// @dev The `count` nonzero ids of `ids`, in order.
    function _compact(uint256[] memory ids, uint256 count) internal pure returns (uint256[] memory named) {
        named = new uint256[](count);
        uint256 n;
        for (uint256 i; n < count; ++i) if (ids[i] != 0) named[n++] = ids[i];
    }

    /// @dev What a batch that settles `rows` requests gives back to each of them: the single
    ///      request's fulfilment gas less the row's share of the batch's (zero when batches are not priced).
    function _rebate(uint256 rows, Config memory cfg) private pure returns (uint256) {
        if (cfg.batchGasOverhead == 0 || rows == 0) return 0;
        uint256 share = cfg.batchGasOverhead / rows + cfg.batchRowGasOverhead;
        return share < cfg.fulfillGasOverhead ? (cfg.fulfillGasOverhead - share) * cfg.gasPrice : 0;
    }

    /// @dev What else {releaseBatch} pays the requester of `requestId` (a spoke's receipt reserve).
    function _releaseRow(uint256, BatchClaim memory) internal virtual returns (uint256) {
        return 0;
    }

    /// @dev Binds a batch's rows ({_bindRows}) and verifies its proof: the rows it settles, how
    ///      many, and the terms it was verified with.
    function _verifyBatch(
        uint16 size,
        uint256[] calldata requestIds,
        int256[] memory inputs,
        int256[] memory outputs,
        bytes calldata proof,
        bool skipSettled
    )
        private
        returns (uint256[] memory settled, uint256 count, bytes32 modelId, IModelRegistry.VerificationTerms memory t)
    {
        (settled, count, modelId, t) = _batchTerms(size, requestIds, inputs, skipSettled);
        uint256 expected = uint256(size) * t.outputLength;
        if (outputs.length != expected) revert ResultOutputShapeMismatch(expected, outputs.length);
        // The instances: every row's input (each settled row's bound by _bindRows), then every row's output.
        if (!ResultProof.verifies(t.verifier, t.vka, proof, inputs, outputs)) revert ResultInvalidProof(_firstOf(settled));
    }

    /// @dev Settles each row's request of a verified batch (closing its job for `payee` on the
    ///      hub) with its row of `outputs`; returns the escrows they add up to, less each row's
    ///      `rebate` (at most its escrow).
    function _settleRows(
        uint256[] memory settled,
        int256[] memory outputs,
        IModelRegistry.VerificationTerms memory t,
        StorageRefs calldata artifacts,
        address payee,
        uint256 rebate
    ) private returns (uint256 earned) {
        uint256 outLen = t.outputLength;
        for (uint256 i; i < settled.length; ++i) {
            uint256 id = settled[i];
            if (id == 0) continue;
            // A request named twice is pending only the first time.
            _pending(id);
            _closeJob(id, payee);
            // The row's output, read in place: the word before the row holds its length meanwhile.
            int256[] memory output;
            uint256 saved;
            assembly ("memory-safe") {
                output := add(outputs, mul(mul(i, outLen), 0x20))
                saved := mload(output)
                mstore(output, outLen)
            }
            uint256 escrow = _settleFulfilled(id, output, t.outputVisibility, artifacts, payee);
            assembly ("memory-safe") {
                mstore(output, saved)
            }
            earned += escrow > rebate ? escrow - rebate : 0;
        }
    }

    /// @dev Settles a pending request whose result the caller has verified: calls the requester back
    ///      (isolated, with its gas limit) and emits {InferenceFulfilled}. Returns the escrow, which
    ///      the caller pays to `payee` (once per batch).
    function _settleFulfilled(
        uint256 requestId,
        int256[] memory output,
        Visibility outputVisibility,
        StorageRefs calldata artifacts,
        address payee
    ) private returns (uint256 escrow) {
        Request storage r = _requests[requestId];
        r.status = RequestStatus.Fulfilled;
        // A settled request needs no input commitment; clearing it refunds part of the settlement's gas.
        r.inputHash = bytes32(0);
        escrow = r.escrow;
        (CallbackStatus cs, uint256 gasUsed) = _callback(
            r.requester,
            r.callbackGasLimit,
            outputVisibility == Visibility.Hashed
                ? abi.encodeCall(
                    ISertnConsumer.rawOnHashedInferenceResult,
                    (requestId, FieldEncoding.toFelt(output[0]), artifacts.output)
                )
                : abi.encodeCall(ISertnConsumer.rawOnInferenceResult, (requestId, output))
        );
        emit InferenceFulfilled(requestId, payee, output, artifacts, cs, gasUsed);
        _afterSettle(requestId, RequestStatus.Fulfilled, payee);
    }

    /// @dev Fails `requestId` for `node`: refunds the escrow and calls the requester back with the
    ///      error. The caller holds the reentrancy lock and has authenticated `node`.
    function _fail(uint256 requestId, InferenceErrorCode code, string memory reason, address node) internal {
        if (bytes(reason).length > MAX_REASON_LENGTH) revert ResultReasonTooLong(bytes(reason).length, MAX_REASON_LENGTH);
        Request storage r = _pending(requestId);
        r.status = RequestStatus.Failed;
        r.inputHash = bytes32(0);
        _pay(r.requester, r.escrow);
        CallbackStatus cs = _callbackError(r, requestId, code, reason);
        emit InferenceFailed(requestId, node, code, reason, cs);
        _afterSettle(requestId, RequestStatus.Failed, node);
    }

    /// @dev Wei a request with `inputLength` input elements (and `copies` other destinations) pays
    ///      on top of the quote for cross-chain messages (none here). It is not escrowed:
    ///      {_afterRequest} spends it.
    function _messagingFee(uint256, uint256) internal view virtual returns (uint256) {
        return 0;
    }

    /// @dev Opens the request's job in the node registry (assigned, or queued for capacity unless the
    ///      requester chose to fail then: the request reverts {GatewayNoCapacity}).
    ///      A gateway without a node registry (a spoke) opens none.
    function _openJob(uint256 requestId, Request storage r, uint32 units, bool failIfNoCapacity) internal virtual {
        if (address(nodes) == address(0)) return;
        address node = nodes.openJob(requestId, r.modelId, units, r.requester, r.deadline, !failIfNoCapacity);
        if (node == address(0) && failIfNoCapacity) revert GatewayNoCapacity(r.modelId);
    }

    /// @dev Closes a settled request's job in the node registry, for `node` (zero: refunded).
    function _closeJob(uint256 requestId, address node) internal virtual {
        if (address(nodes) != address(0)) nodes.closeJob(requestId, node);
    }

    /// @dev Closes the pending request's job for the caller, which must be the node it is assigned to.
    function _claimJob(uint256 requestId) private {
        if (address(nodes) == address(0)) revert GatewayUnauthorizedNode(msg.sender);
        _pending(requestId);
        nodes.closeJob(requestId, msg.sender);
    }

    /// @dev Called once a request is stored and announced, with the messaging fee it paid and the
    ///      other chains it fans out to (none on the hub, whose requests are answered here).
    function _afterRequest(
        uint256 requestId,
        Request storage r,
        int256[] calldata input,
        bytes32 inputRef,
        uint256 messagingFee,
        bool failIfNoCapacity,
        Destination[] memory copies
    ) internal virtual {}

    /// @dev Called once a request is settled (after its callback): Fulfilled (with the paid node),
    ///      Failed (with the reporting node) or Refunded (no node).
    function _afterSettle(uint256 requestId, RequestStatus status, address node) internal virtual {}

    /// @dev The stored request (all zero if unknown).
    function _requestOf(uint256 requestId) internal view returns (Request storage) {
        return _requests[requestId];
    }

    function _pending(uint256 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        RequestStatus status = r.status;
        if (status != RequestStatus.Pending) revert GatewayRequestNotPending(requestId, status);
    }

    function _quote(uint96 fee, uint32 callbackGasLimit, Config memory cfg) private pure returns (uint256) {
        return uint256(fee) + (uint256(cfg.fulfillGasOverhead) + callbackGasLimit) * cfg.gasPrice;
    }

    /// @dev Reverts unless `proof` proves that the model the request pins maps the request's input
    ///      (or its commitment) to `output` (or its commitment); returns the output's visibility.
    function _checkResult(
        uint256 requestId,
        Request storage r,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof
    ) private returns (Visibility) {
        uint256 deadline = r.deadline;
        if (block.timestamp > deadline) revert GatewayRequestExpired(requestId, deadline);
        bytes32 modelId = r.modelId;
        uint32 version = r.modelVersion;
        if (_inputCommitment(modelId, version, input) != r.inputHash) revert ResultInputMismatch(requestId);

        IModelRegistry.VerificationTerms memory terms = registry.tryGetVerificationTerms(modelId);
        if (terms.version != version) revert GatewayModelVersionChanged(requestId, version, terms.version);
        if (output.length != terms.outputLength) revert ResultOutputShapeMismatch(terms.outputLength, output.length);

        // The instances are the request's input (checked against its hash above) and the output.
        if (!ResultProof.verifies(terms.verifier, terms.vka, proof, input, output)) revert ResultInvalidProof(requestId);
        return terms.outputVisibility;
    }

    /// @dev The terms a batch of `size` rows is verified with: the model's batch circuit of that
    ///      size for the version its requests were made against; and the rows it settles (see {_bindRows}).
    function _batchTerms(uint16 size, uint256[] calldata requestIds, int256[] memory inputs, bool skipSettled)
        private
        view
        returns (uint256[] memory settled, uint256 count, bytes32 modelId, IModelRegistry.VerificationTerms memory terms)
    {
        uint32 version;
        (settled, count, modelId, version) = _bindRows(size, requestIds, inputs, skipSettled);
        terms = registry.tryGetBatchVerificationTerms(modelId, size);
        if (terms.version != version) revert GatewayModelVersionChanged(_firstOf(settled), version, terms.version);
        if (terms.vka == address(0)) revert GatewayNoBatchCircuit(modelId, size);
    }

    /// @dev The first request of a batch's rows (there is one: {_bindRows} checked).
    function _firstOf(uint256[] memory ids) private pure returns (uint256 id) {
        for (uint256 i; id == 0; ++i) id = ids[i];
    }

    /// @dev Binds each named row to its request: pending, unexpired, of the same model and version
    ///      as the first, and its row exactly its input. With `skipSettled`, a row whose request is
    ///      not pending or has expired is left out instead of reverting. Returns the rows' requests
    ///      (zero for padding and left-out rows), how many, and their model and version.
    function _bindRows(uint16 size, uint256[] calldata requestIds, int256[] memory inputs, bool skipSettled)
        private
        view
        returns (uint256[] memory ids, uint256 count, bytes32 modelId, uint32 version)
    {
        if (size == 0 || requestIds.length != size || inputs.length % size != 0) {
            revert GatewayBatchShapeMismatch(size, requestIds.length);
        }
        ids = new uint256[](size);
        uint256 inLen = inputs.length / size;
        uint256 named;
        for (uint256 i; i < size; ++i) {
            uint256 id = requestIds[i];
            if (id == 0) continue;
            if (named == 0) named = id;
            Request storage r = _requests[id];
            (RequestStatus status, uint256 deadline) = (r.status, r.deadline);
            if (skipSettled && (status != RequestStatus.Pending || block.timestamp > deadline)) continue;
            if (status != RequestStatus.Pending) revert GatewayRequestNotPending(id, status);
            if (block.timestamp > deadline) revert GatewayRequestExpired(id, deadline);
            if (count == 0) (modelId, version) = (r.modelId, r.modelVersion);
            // The commitment binds the row to the request's input, model and version at once.
            if (_rowHash(inputs, i * inLen, inLen, modelId, version) != r.inputHash) {
                if (r.modelId != modelId || r.modelVersion != version) revert GatewayBatchMixesModels(id);
                revert ResultInputMismatch(id);
            }
            ids[i] = id;
            ++count;
        }
        if (named == 0) revert GatewayBatchShapeMismatch(size, 0);
        if (count == 0) {
            // Every row was left out: say why the first was.
            Request storage r = _pending(named);
            revert GatewayRequestExpired(named, r.deadline);
        }
    }

    /// @dev A request's input commitment: keccak256(abi.encodePacked(modelId, uint256(version), input)),
    ///      so that a result bound to it is bound to the request's model and version as well.
    function _inputCommitment(bytes32 modelId, uint32 version, int256[] calldata input) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(modelId, uint256(version), input));
    }

    /// @dev The input commitment ({_inputCommitment}) of row `values[from : from + n]`, hashed in
    ///      scratch memory past the free memory pointer (nothing is allocated).
    function _rowHash(int256[] memory values, uint256 from, uint256 n, bytes32 modelId, uint32 version)
        private
        pure
        returns (bytes32 h)
    {
        if (from + n > values.length) revert GatewayBatchShapeMismatch(0, values.length);
        assembly ("memory-safe") {
            let buf := mload(0x40)
            mstore(buf, modelId)
            mstore(add(buf, 0x20), and(version, 0xffffffff)) // a uint32's upper bits may be dirty here
            let src := add(add(values, 0x20), mul(from, 0x20))
            for { let k := 0 } lt(k, n) { k := add(k, 1) } {
                mstore(add(add(buf, 0x40), mul(k, 0x20)), mload(add(src, mul(k, 0x20))))
            }
            h := keccak256(buf, add(0x40, mul(n, 0x20)))
        }
    }

    function _callbackError(Request storage r, uint256 requestId, InferenceErrorCode code, string memory reason)
        private
        returns (CallbackStatus cs)
    {
        (cs, ) = _callback(
            r.requester,
            r.callbackGasLimit,
            abi.encodeCall(ISertnConsumer.rawOnInferenceError, (requestId, code, reason))
        );
    }

    /// @dev Calls `target` back, isolated (see {Callback.call}).
    function _callback(address target, uint256 gasLimit, bytes memory data)
        internal
        returns (CallbackStatus, uint256 gasUsed)
    {
        return Callback.call(target, gasLimit, data);
    }

    /// @dev Pushes `amount` to `to` with bounded gas and no return data; if that fails the amount
    ///      is held for `to` to {withdraw}.
    function _pay(address to, uint256 amount) internal {
        if (amount == 0) return;
        bool ok;
        assembly ("memory-safe") {
            ok := call(PAYMENT_GAS, to, amount, 0, 0, 0, 0)
        }
        if (!ok) {
            _owed[to] += amount;
            emit PaymentDeferred(to, amount);
        }
    }

    function _setConfig(Config memory config_) private {
        if (config_.requestTimeout == 0 || config_.maxCallbackGasLimit > 10_000_000) revert GatewayInvalidConfig();
        _config = config_;
        emit ConfigSet(config_);
    }
}
