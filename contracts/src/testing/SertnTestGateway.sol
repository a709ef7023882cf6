// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {
    CallbackStatus,
    IInferenceGateway,
    InferenceErrorCode,
    RequestStatus
} from "../interfaces/IInferenceGateway.sol";
import {ISertnConsumer} from "../interfaces/ISertnConsumer.sol";
import {Callback} from "../libraries/Callback.sol";
import {FieldEncoding} from "../libraries/FieldEncoding.sol";
import {Owned} from "../utils/Owned.sol";

/// @title SertnTestGateway
/// @notice A local stand-in for Sertn's gateway, for consumers' tests only. **It verifies nothing:**
///         its owner (the test) decides each request's result, with no proof, no model and no node.
///         Never point a deployed consumer at it, and never trust a result it delivered.
/// @dev What is the same as the real gateway, so that a consumer deploys against it unchanged and
///      a test of its behaviour holds on the real one:
///      - the request side of {IInferenceGateway}: {requestInference}, {requestInferenceWith}, {quote},
///        {getRequest}, {owed}, {withdraw}, {refund}, with the same checks, custom errors, events
///        and request lifecycle (Pending, then exactly one of Fulfilled, Failed or Refunded);
///      - the price: the model's fee plus `(fulfillGasOverhead + callbackGasLimit) * gasPrice`;
///      - the callbacks: made by the same library as the real gateway (`Callback.call`), with exactly
///        the request's callback gas limit, isolated (a reverting or out-of-gas callback is recorded
///        as `CallbackStatus.Failed` and the request is settled regardless), skipped for an EOA;
///      - refunds: the escrow is pushed to the requester (with 10,000 gas, as the real gateway pays)
///        before the error callback, or held for {withdraw} if the push fails.
///      What differs: models are declared with {setModel} (no registry, no circuit); the node side
///      ({fulfill}, {fulfillBatch}, {fail}) is refused, and the owner settles requests with
///      {fulfillRequest}, {failRequest} and {expireRequest}; batches and fan-out are not offered.
contract SertnTestGateway is IInferenceGateway, Owned {
    /// @notice A model as the test declares it.
    struct TestModel {
        /// @notice Whether new requests are accepted.
        bool active;
        /// @notice The model's version (at least 1); raising it makes pending requests unfulfillable,
        ///         as a circuit update does on the real gateway.
        uint32 version;
        /// @notice Elements a request's input carries (1 for a hashed input: its commitment).
        uint32 inputLength;
        /// @notice Elements a result's output carries (1 for a hashed output: its commitment).
        uint32 outputLength;
        /// @notice The largest |input element| accepted (ignored for a hashed input).
        uint64 maxAbsInput;
        /// @notice The fee (wei) per inference, beyond gas.
        uint96 fee;
        /// @notice Whether the input is hashed: requests carry its commitment and an input reference.
        bool inputHashed;
        /// @notice Whether the output is hashed: results reach `rawOnHashedInferenceResult`.
        bool outputHashed;
        /// @notice The artifacts hash a request may pin.
        bytes32 artifactsHash;
    }

    /// @notice The model was never declared with {setModel}.
    error TestGatewayModelVersionZero();

    /// @notice The model was declared or changed.
    event TestModelSet(bytes32 indexed modelId, TestModel model);

    /// @notice The most input elements any request may carry (as on the real gateway).
    uint256 public constant MAX_INPUT_LENGTH = 1024;
    /// @notice The longest error reason (as on the real gateway).
    uint256 public constant MAX_REASON_LENGTH = 256;
    /// @dev Gas forwarded with pushed payments, as on the real gateway.
    uint256 private constant PAYMENT_GAS = 10_000;

    Config private _config;
    uint256 private _lastRequestId;
    bool private _entered;
    mapping(bytes32 modelId => TestModel) private _models;
    mapping(uint256 requestId => Request) private _requests;
    mapping(address account => uint256) private _owed;
    mapping(bytes32 modelId => ModelUsage) private _usage;
    mapping(bytes32 modelId => mapping(address requester => uint256)) private _requestsBy;

    /// @notice A gateway owned by the deployer (the test), priced as a local Sertn deployment:
    ///         1 hour to answer, callbacks of up to 2,000,000 gas, 750,000 gas of fulfilment
    ///         overhead at 1 gwei. Change it with {setConfig}.
    constructor() Owned(msg.sender) {
        _setConfig(
            Config({
                requestTimeout: 3600,
                maxCallbackGasLimit: 2_000_000,
                fulfillGasOverhead: 750_000,
                gasPrice: 1 gwei,
                batchGasOverhead: 0,
                batchRowGasOverhead: 0
            })
        );
    }

    modifier nonReentrant() {
        if (_entered) revert GatewayReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }

    // ─────────────────────────────── Test controls ────────────────────────

    /// @notice Declares (or changes) a model: from now on requests are checked against `model`.
    ///         Raising its version leaves pending requests unfulfillable ({GatewayModelVersionChanged}).
    function setModel(bytes32 modelId, TestModel calldata model) external onlyOwner {
        if (model.version == 0) revert TestGatewayModelVersionZero();
        _models[modelId] = model;
        emit TestModelSet(modelId, model);
    }

    /// @notice Replaces the configuration, with the real gateway's bounds (a timeout of at least
    ///         1 second, callbacks of at most 10,000,000 gas).
    function setConfig(Config calldata config_) external onlyOwner {
        _setConfig(config_);
    }

    /// @notice Settles request `requestId` with `output` as if a verified result arrived: the
    ///         escrow goes to the caller, the requester is called back with its gas limit and
    ///         {InferenceFulfilled} is emitted. For a model whose output is hashed, `output` is the
    ///         one commitment (signed encoding) and the callback is `rawOnHashedInferenceResult`
    ///         with `artifacts.output` as the output's reference.
    /// @dev Reverts as the real gateway rejects a result: {GatewayRequestNotPending} (unknown or
    ///      settled: a request is fulfilled at most once), {GatewayRequestExpired},
    ///      {GatewayModelVersionChanged}, {ResultOutputShapeMismatch}.
    /// @return callbackStatus How the callback went.
    /// @return callbackGasUsed The gas it used.
    function fulfillRequest(uint256 requestId, int256[] calldata output, StorageRefs memory artifacts)
        public
        onlyOwner
        nonReentrant
        returns (CallbackStatus callbackStatus, uint256 callbackGasUsed)
    {
        Request storage r = _pending(requestId);
        uint256 deadline = r.deadline;
        if (block.timestamp > deadline) revert GatewayRequestExpired(requestId, deadline);
        TestModel memory m = _models[r.modelId];
        if (m.version != r.modelVersion) revert GatewayModelVersionChanged(requestId, r.modelVersion, m.version);
        if (output.length != m.outputLength) revert ResultOutputShapeMismatch(m.outputLength, output.length);

        r.status = RequestStatus.Fulfilled;
        r.inputHash = bytes32(0);
        ++_usage[r.modelId].served;
        (callbackStatus, callbackGasUsed) = Callback.call(
            r.requester,
            r.callbackGasLimit,
            m.outputHashed
                ? abi.encodeCall(
                    ISertnConsumer.rawOnHashedInferenceResult,
                    (requestId, FieldEncoding.toFelt(output[0]), artifacts.output)
                )
                : abi.encodeCall(ISertnConsumer.rawOnInferenceResult, (requestId, output))
        );
        emit InferenceFulfilled(requestId, msg.sender, output, artifacts, callbackStatus, callbackGasUsed);
        _pay(msg.sender, r.escrow);
    }

    /// @notice {fulfillRequest} with no storage references.
    function fulfillRequest(uint256 requestId, int256[] calldata output)
        external
        returns (CallbackStatus callbackStatus, uint256 callbackGasUsed)
    {
        return fulfillRequest(requestId, output, StorageRefs(bytes32(0), bytes32(0)));
    }

    /// @notice Fails request `requestId` as a node that cannot serve it does: the escrow is refunded
    ///         to the requester, which is called back with `code` and `reason`, and {InferenceFailed}
    ///         is emitted.
    /// @return callbackStatus How the error callback went.
    function failRequest(uint256 requestId, InferenceErrorCode code, string calldata reason)
        external
        onlyOwner
        nonReentrant
        returns (CallbackStatus callbackStatus)
    {
        if (bytes(reason).length > MAX_REASON_LENGTH) revert ResultReasonTooLong(bytes(reason).length, MAX_REASON_LENGTH);
        Request storage r = _pending(requestId);
        r.status = RequestStatus.Failed;
        callbackStatus = _refundAndReport(r, requestId, code, reason);
        emit InferenceFailed(requestId, msg.sender, code, reason, callbackStatus);
    }

    /// @notice Ends request `requestId` as if its deadline had passed and {refund} was called: the
    ///         escrow is refunded, the requester is called back with `Timeout`, and
    ///         {InferenceRefunded} is emitted. (Or let the clock pass the deadline and call {refund}.)
    /// @return callbackStatus How the error callback went.
    function expireRequest(uint256 requestId) external onlyOwner nonReentrant returns (CallbackStatus callbackStatus) {
        return _expire(_pending(requestId), requestId);
    }

    /// @notice The id of the most recent request (ids start at 1).
    function lastRequestId() external view returns (uint256) {
        return _lastRequestId;
    }

    /// @notice A declared model (version 0: none).
    function modelOf(bytes32 modelId) external view returns (TestModel memory) {
        return _models[modelId];
    }

    /// @notice The gateway's configuration.
    function config() external view returns (Config memory) {
        return _config;
    }

    // ─────────────────────────────── Requesters ───────────────────────────

    /// @inheritdoc IInferenceGateway
    function quote(bytes32 modelId, uint32 callbackGasLimit) public view returns (uint256) {
        TestModel storage m = _models[modelId];
        if (m.version == 0) revert GatewayUnknownModel(modelId);
        Config memory cfg = _config;
        return uint256(m.fee) + (uint256(cfg.fulfillGasOverhead) + callbackGasLimit) * cfg.gasPrice;
    }

    /// @inheritdoc IInferenceGateway
    /// @dev This gateway settles no batches: the same as {quote}.
    function quoteBatched(bytes32 modelId, uint32 callbackGasLimit, uint16) external view returns (uint256) {
        return quote(modelId, callbackGasLimit);
    }

    /// @inheritdoc IInferenceGateway
    /// @dev This gateway settles no batches: it always reverts {GatewayNoBatchClaim}.
    function releaseBatch(uint256[] calldata requestIds) external pure {
        revert GatewayNoBatchClaim(keccak256(abi.encode(requestIds)));
    }

    /// @inheritdoc IInferenceGateway
    function requestInference(bytes32 modelId, int256[] calldata input, uint32 callbackGasLimit)
        external
        payable
        nonReentrant
        returns (uint256 requestId)
    {
        return _request(modelId, input, bytes32(0), callbackGasLimit, 0, bytes32(0));
    }

    /// @inheritdoc IInferenceGateway
    /// @dev `failIfNoCapacity` is accepted and ignored: this gateway has no node pool.
    function requestInferenceWith(RequestParams calldata p) external payable nonReentrant returns (uint256 requestId) {
        return _request(p.modelId, p.input, p.inputRef, p.callbackGasLimit, p.modelVersion, p.artifactsHash);
    }

    /// @inheritdoc IInferenceGateway
    function refund(uint256 requestId) external nonReentrant {
        Request storage r = _pending(requestId);
        uint256 deadline = r.deadline;
        if (block.timestamp <= deadline) revert GatewayRequestNotExpired(requestId, deadline);
        _expire(r, requestId);
    }

    /// @inheritdoc IInferenceGateway
    function withdraw() external nonReentrant {
        uint256 amount = _owed[msg.sender];
        if (amount == 0) revert GatewayNothingToWithdraw(msg.sender);
        delete _owed[msg.sender];
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert GatewayWithdrawFailed(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    /// @inheritdoc IInferenceGateway
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @inheritdoc IInferenceGateway
    function modelUsage(bytes32 modelId) external view returns (ModelUsage memory) {
        return _usage[modelId];
    }

    /// @inheritdoc IInferenceGateway
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    // ─────────────────────────────── Nodes (refused) ──────────────────────

    /// @notice Refused: this gateway verifies no proofs. Settle requests with {fulfillRequest}.
    function fulfill(uint256, int256[] calldata, int256[] calldata, bytes calldata, StorageRefs calldata)
        external
        view
    {
        revert GatewayUnauthorizedNode(msg.sender);
    }

    /// @notice Refused: this gateway verifies no proofs and settles no batches.
    function fulfillBatch(
        uint16,
        uint256[] calldata,
        int256[] calldata,
        int256[] calldata,
        bytes calldata,
        StorageRefs calldata
    ) external view {
        revert GatewayUnauthorizedNode(msg.sender);
    }

    /// @notice Refused: this gateway has no nodes. Fail requests with {failRequest}.
    function fail(uint256, InferenceErrorCode, string calldata) external view {
        revert GatewayUnauthorizedNode(msg.sender);
    }

    // ─────────────────────────────── Internals ────────────────────────────

    /// @dev Checks and escrows a request as the real gateway does (same checks, same order).
    function _request(
        bytes32 modelId,
        int256[] calldata input,
        bytes32 inputRef,
        uint32 callbackGasLimit,
        uint32 pinnedVersion,
        bytes32 pinnedArtifacts
    ) private returns (uint256 requestId) {
        if (input.length > MAX_INPUT_LENGTH) revert GatewayInputTooLarge(input.length, MAX_INPUT_LENGTH);
        TestModel memory m = _models[modelId];
        if (m.version == 0) revert GatewayUnknownModel(modelId);
        if (!m.active) revert GatewayModelInactive(modelId);
        if (pinnedVersion != 0 && pinnedVersion != m.version) revert GatewayModelVersionMismatch(pinnedVersion, m.version);
        if (pinnedArtifacts != bytes32(0) && pinnedArtifacts != m.artifactsHash) {
            revert GatewayModelArtifactsMismatch(pinnedArtifacts, m.artifactsHash);
        }
        if (input.length != m.inputLength) revert GatewayInputShapeMismatch(m.inputLength, input.length);
        _checkInput(input, inputRef, m);
        Config memory cfg = _config;
        if (callbackGasLimit > cfg.maxCallbackGasLimit) {
            revert GatewayCallbackGasLimitTooHigh(callbackGasLimit, cfg.maxCallbackGasLimit);
        }
        uint256 price = uint256(m.fee) + (uint256(cfg.fulfillGasOverhead) + callbackGasLimit) * cfg.gasPrice;
        if (msg.value < price || msg.value > type(uint96).max) revert GatewayInsufficientPayment(price, msg.value);

        requestId = ++_lastRequestId;
        Request storage r = _requests[requestId];
        r.requester = msg.sender;
        r.callbackGasLimit = callbackGasLimit;
        r.deadline = uint40(block.timestamp + cfg.requestTimeout);
        r.status = RequestStatus.Pending;
        r.modelId = modelId;
        r.escrow = uint96(msg.value);
        r.modelVersion = m.version;
        r.inputHash = keccak256(abi.encodePacked(modelId, uint256(m.version), input));
        _countRequest(modelId, msg.sender);
        emit InferenceRequested(
            requestId, modelId, msg.sender, input, inputRef, m.version, callbackGasLimit, r.escrow, r.deadline
        );
    }

    /// @dev The real gateway's input checks: elements within the bound, or one commitment (a field
    ///      element in the signed encoding) with a storage reference.
    function _checkInput(int256[] calldata input, bytes32 inputRef, TestModel memory m) private pure {
        if (m.inputHashed) {
            int256 c = input[0];
            int256 max = int256(FieldEncoding.MAX_ABS_VALUE);
            if (c > max || c < -max) revert GatewayInvalidInputCommitment(c);
            if (inputRef == bytes32(0)) revert GatewayMissingInputRef();
            return;
        }
        int256 bound = int256(uint256(m.maxAbsInput));
        for (uint256 i; i < input.length; ++i) {
            int256 v = input[i];
            if (v > bound || v < -bound) revert GatewayInputOutOfRange(i, v, uint256(bound));
        }
    }

    function _countRequest(bytes32 modelId, address requester) private {
        ModelUsage storage u = _usage[modelId];
        uint256 n = ++_requestsBy[modelId][requester];
        if (n == 1) ++u.requesters;
        else if (n == 2) ++u.repeatRequesters;
        ++u.requests;
    }

    /// @dev Refunds a pending request whose deadline passed (or that the test expired).
    function _expire(Request storage r, uint256 requestId) private returns (CallbackStatus cs) {
        r.status = RequestStatus.Refunded;
        cs = _refundAndReport(r, requestId, InferenceErrorCode.Timeout, "deadline passed");
        emit InferenceRefunded(requestId, msg.sender, cs);
    }

    /// @dev Pushes the escrow back to the requester, then calls it back with the error (as the real gateway).
    function _refundAndReport(Request storage r, uint256 requestId, InferenceErrorCode code, string memory reason)
        private
        returns (CallbackStatus cs)
    {
        r.inputHash = bytes32(0);
        _pay(r.requester, r.escrow);
        (cs,) = Callback.call(
            r.requester, r.callbackGasLimit, abi.encodeCall(ISertnConsumer.rawOnInferenceError, (requestId, code, reason))
        );
    }

    function _pending(uint256 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        RequestStatus status = r.status;
        if (status != RequestStatus.Pending) revert GatewayRequestNotPending(requestId, status);
    }

    /// @dev Pushes `amount` with bounded gas and no return data; if that fails it is held for {withdraw}.
    function _pay(address to, uint256 amount) private {
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
