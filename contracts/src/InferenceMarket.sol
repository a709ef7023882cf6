// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CallbackStatus, IInferenceGateway, InferenceErrorCode, RequestStatus} from "./interfaces/IInferenceGateway.sol";
import {Destination, ISertnCopies, ISertnCopyReceiver, InferenceCopy} from "./interfaces/ISertnCopies.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IResultErrors} from "./interfaces/IResultErrors.sol";
import {Callback} from "./libraries/Callback.sol";
import {PackedInts} from "./libraries/PackedInts.sol";
import {ResultProof} from "./libraries/ResultProof.sol";
import {MessengerApp} from "./messaging/MessengerApp.sol";
import {SertnMessages} from "./messaging/SertnMessages.sol";
import {Owned} from "./utils/Owned.sol";

/// @title InferenceMarket
/// @notice The hub's book of requests from every spoke chain. A spoke gateway's request message
///         is recorded here and assigned, through the hub's {INodeRegistry}, to a node of the
///         model's pool; that node alone submits its result (or its failure) here, the
///         market checks it against the hub's registry and sends it to the requesting chain through
///         that chain's route, and the spoke's settlement receipt (Fulfilled, Failed, Refunded)
///         closes the request here.
/// @dev The market verifies each result on the hub before dispatching it (same rules as the
///      gateways: instances built here from the recorded input commitment and the output, VKA
///      pinned by the registry), so no invalid result is ever relayed; the spoke verifies again
///      with its own verifier before it pays or calls back, and it alone decides the outcome.
///      A result goes back only to the (domain, gateway) its request came from, and a request
///      can be answered once: a second submission reverts. Messages arrive only through enrolled
///      routes (one per spoke chain: its gateway, and the port of the network that reaches it),
///      so the market serves spokes over different networks at once and knows none of them.
///      A rejected result reverts with the gateways' own {IResultErrors} errors. The node the
///      result names (the one the spoke pays) is always the assigned node that submitted it: a
///      copy of its transaction from another account is refused by the registry.
///
///      Fan-out: a request may name other destination chains (REQUEST_FANOUT). Its result, verified
///      here once, then goes to each of them as well, in the same transaction as to the requesting
///      chain: a RESULT_COPY to that chain's gateway, which verifies it with its own VKA, or, for the
///      hub itself, straight to the receiver (isolated), since it was verified here. A fan-out
///      request whose destinations the hub cannot serve (no route, the model's current circuit not
///      recorded there) gets no job, like a request for an unknown model, so that it is failed and
///      refunded at once. Such requests are answered alone, never in a batch.
contract InferenceMarket is MessengerApp, IResultErrors, ISertnCopies {
    /// @notice Where a spoke request stands on the hub.
    enum MarketStatus {
        /// @notice No such request.
        None,
        /// @notice Recorded; waiting for the assigned node (see {INodeRegistry}).
        Open,
        /// @notice The node's verified result is on its way to the spoke.
        ResultSent,
        /// @notice The node's failure report is on its way to the spoke.
        FailureSent,
        /// @notice The spoke reported the request settled (see {MarketRequest.settlement}).
        Settled
    }

    /// @notice A spoke request as recorded on the hub.
    struct MarketRequest {
        /// @notice The requesting chain's Sertn domain (its chain id).
        uint32 origin;
        /// @notice The spoke request's deadline (the spoke's clock).
        uint40 deadline;
        /// @notice Where it stands here.
        MarketStatus status;
        /// @notice How the spoke settled it (once `status` is Settled).
        RequestStatus settlement;
        /// @notice The model version on the spoke when it was requested.
        uint32 modelVersion;
        /// @notice The node that answered (or that the spoke paid); the assigned node is in the registry's job.
        address node;
        /// @notice The spoke gateway (left-padded address): the only place its answer goes.
        bytes32 gateway;
        /// @notice The request's id on the spoke gateway.
        uint256 spokeRequestId;
        /// @notice The model.
        bytes32 modelId;
        /// @notice keccak256(abi.encodePacked(input)).
        bytes32 inputHash;
        /// @notice The requester's callback gas limit (the result's delivery must cover it).
        uint32 callbackGasLimit;
        /// @notice How many other chains the result also goes to (see {destinationsOf}).
        uint8 copies;
    }

    /// @notice A fan-out request's other destinations, and its requester (whom each copy names).
    struct FanOut {
        address requester;
        Destination[] destinations;
    }

    /// @notice The request is not open (unknown, answered, or settled).
    error MarketRequestNotOpen(uint256 marketRequestId, MarketStatus status);
    /// @notice The spoke request's deadline has passed; the spoke will refund it.
    error MarketRequestExpired(uint256 marketRequestId, uint256 deadline);
    /// @notice The hub's registry has no such model.
    error MarketUnknownModel(bytes32 modelId);
    /// @notice The model's current circuit is not recorded as deployed on the requesting chain.
    error MarketModelNotDeployed(bytes32 modelId, uint32 domain, uint32 recordedVersion, uint32 currentVersion);
    /// @notice The request names a model version of its chain other than the one whose circuit the
    ///         hub recorded as deployed there: the spoke would reject the result.
    error MarketModelVersionMismatch(bytes32 modelId, uint32 domain, uint32 requestedVersion, uint32 recordedVersion);
    /// @notice The same spoke request was recorded before.
    error MarketDuplicateRequest(uint32 origin, bytes32 gateway, uint256 spokeRequestId);
    /// @notice A receipt names a spoke request the market never recorded.
    error MarketUnknownSpokeRequest(uint32 origin, bytes32 gateway, uint256 spokeRequestId);
    /// @notice A receipt is not a settlement, or the request was settled already.
    error MarketInvalidReceipt(uint256 marketRequestId, RequestStatus settlement);
    /// @notice Refunding surplus fee failed.
    error MarketRefundFailed(address to, uint256 amount);
    /// @notice A function was re-entered.
    error MarketReentrantCall();
    /// @notice A batch's rows, request ids and inputs do not fit its size (or it names no request).
    error MarketBatchShapeMismatch(uint16 size, uint256 rows);
    /// @notice A batch names requests of different spokes, models or model versions.
    error MarketBatchMixesRequests(uint256 marketRequestId);
    /// @notice The model has no batch circuit of this size, here or recorded on the requesting chain.
    error MarketNoBatchCircuit(bytes32 modelId, uint32 domain, uint16 size);
    /// @notice The batch's callbacks need more gas than one message to the spoke may carry.
    error MarketBatchTooMuchGas(uint256 gas, uint256 max);
    /// @notice A fan-out request is answered alone ({submitResult}), not in a batch.
    error MarketBatchFansOut(uint256 marketRequestId);

    /// @notice A spoke request was recorded under `marketRequestId`.
    event RequestRecorded(
        uint256 indexed marketRequestId,
        uint32 indexed origin,
        uint256 indexed spokeRequestId,
        bytes32 gateway,
        SertnMessages.SpokeRequest request
    );
    /// @notice A verified result left for the requesting chain.
    event ResultDispatched(
        uint256 indexed marketRequestId,
        address indexed node,
        bytes32 indexed messageId,
        int256[] output,
        IInferenceGateway.StorageRefs artifacts
    );
    /// @notice A failure report left for the requesting chain.
    event FailureDispatched(
        uint256 indexed marketRequestId,
        address indexed node,
        bytes32 indexed messageId,
        InferenceErrorCode code,
        string reason
    );
    /// @notice A batch's verified results left for the requesting chain in one message: row r of
    ///         the proof answers `marketRequestIds[r]` (0: a padding row).
    event BatchDispatched(
        bytes32 indexed messageId,
        address indexed node,
        uint16 size,
        uint256[] marketRequestIds,
        IInferenceGateway.StorageRefs artifacts
    );
    /// @notice The spoke settled the request (Fulfilled, Failed or Refunded).
    event RequestSettled(uint256 indexed marketRequestId, RequestStatus settlement, address node);
    /// @notice A fan-out request's other destinations were recorded with it.
    event DestinationsRecorded(uint256 indexed marketRequestId, Destination[] destinations);
    /// @notice A fan-out request's verified result left for one of its other destinations.
    event CopyDispatched(uint256 indexed marketRequestId, uint32 indexed destination, bytes32 indexed messageId);

    /// @notice The longest error reason a node may send.
    uint256 public constant MAX_REASON_LENGTH = 256;

    /// @notice The hub's model registry (pins each model's circuit and records its spoke deployments).
    IModelRegistry public immutable registry;
    /// @notice The hub's node registry: assigns each request to a node and says who may answer it.
    INodeRegistry public immutable nodes;

    uint256 private _lastRequestId;
    mapping(uint256 marketRequestId => MarketRequest) private _requests;
    mapping(bytes32 spokeKey => uint256 marketRequestId) private _idBySpokeKey;
    mapping(uint256 marketRequestId => FanOut) private _fanOuts;
    bool private transient _entered;

    /// @param initialOwner Who enrolls spoke routes.
    /// @param registry_ The hub's model registry.
    /// @param nodes_ The hub's node registry (which must allow this market to open jobs).
    constructor(address initialOwner, IModelRegistry registry_, INodeRegistry nodes_) Owned(initialOwner) {
        registry = registry_;
        nodes = nodes_;
    }

    modifier nonReentrant() {
        if (_entered) revert MarketReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }

    // ─────────────────────────────── Nodes ────────────────────────────────

    /// @notice The assigned node submits the result of an open request; once verified here it is
    ///         sent to the requesting gateway, paying the messenger's fee from `msg.value` (surplus
    ///         refunded). Any other caller is refused ({NodeRegistry.NodeRegistryNotAssigned}).
    /// @param input The request's input (checked against the recorded commitment).
    /// @param artifacts Where the node stored the output and the proof.
    function submitResult(
        uint256 marketRequestId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata artifacts
    ) external payable nonReentrant returns (bytes32 messageId) {
        MarketRequest storage r = _open(marketRequestId);
        _checkResult(marketRequestId, r, input, output, proof);
        nodes.closeJob(marketRequestId, msg.sender);
        r.status = MarketStatus.ResultSent;
        r.node = msg.sender;
        bytes memory body = SertnMessages.encodeResult(r.spokeRequestId, input, output, proof, artifacts, msg.sender);
        uint256 spent;
        (messageId, spent) = _sendPaid(r.origin, r.gateway, body, SertnMessages.resultGas(r.callbackGasLimit), 0);
        emit ResultDispatched(marketRequestId, msg.sender, messageId, output, artifacts);
        if (r.copies != 0) spent = _sendCopies(marketRequestId, r, input, output, proof, artifacts, spent);
        _refundSurplus(spent);
    }

    /// @notice The assigned node submits one proof of the model's batch circuit of `size` rows for
    ///         open requests of one spoke (same model and version): row r answers
    ///         `marketRequestIds[r]`, whose input is row r of `inputs` (a padding row, id 0, answers
    ///         none). Verified here with the batch VKA the registry pins, after every row is bound
    ///         to its request's input; then sent to the spoke in one message, which verifies it
    ///         once with its own batch VKA and settles every row. The message's fee (its gas covers
    ///         every row's callback) comes from `msg.value`, surplus refunded.
    function submitBatch(
        uint16 size,
        uint256[] calldata marketRequestIds,
        int256[] calldata inputs,
        int256[] calldata outputs,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata artifacts
    ) external payable nonReentrant returns (bytes32 messageId) {
        BatchRoute memory b = _bindBatch(size, marketRequestIds, inputs, outputs);
        if (!ResultProof.verifies(b.verifier, b.vka, proof, inputs, outputs)) revert ResultInvalidProof(b.firstId);
        bytes memory body = _batchBody(size, b.spokeIds, inputs, outputs, proof, artifacts);
        for (uint256 i; i < size; ++i) {
            uint256 id = marketRequestIds[i];
            if (id == 0) continue;
            // A request named twice is open only the first time.
            MarketRequest storage r = _open(id);
            nodes.closeJob(id, msg.sender);
            r.status = MarketStatus.ResultSent;
            r.node = msg.sender;
        }
        messageId = _dispatch(b.origin, b.gateway, body, b.gas);
        emit BatchDispatched(messageId, msg.sender, size, marketRequestIds, artifacts);
    }

    /// @notice The assigned node reports that it cannot serve an open request; the spoke refunds it.
    ///         A request that no pool can serve (it has no job: see {_record}) may be failed by anyone,
    ///         who pays the message.
    function failRequest(uint256 marketRequestId, InferenceErrorCode code, string calldata reason)
        external
        payable
        nonReentrant
        returns (bytes32 messageId)
    {
        if (bytes(reason).length > MAX_REASON_LENGTH) revert ResultReasonTooLong(bytes(reason).length, MAX_REASON_LENGTH);
        MarketRequest storage r = _open(marketRequestId);
        if (nodes.hasJob(address(this), marketRequestId)) nodes.closeJob(marketRequestId, msg.sender);
        r.status = MarketStatus.FailureSent;
        r.node = msg.sender;
        bytes memory body = SertnMessages.encodeFailure(r.spokeRequestId, code, reason, msg.sender);
        messageId = _dispatch(r.origin, r.gateway, body, SertnMessages.failureGas(r.callbackGasLimit));
        emit FailureDispatched(marketRequestId, msg.sender, messageId, code, reason);
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @notice The request recorded under `marketRequestId` (status None if unknown).
    function getRequest(uint256 marketRequestId) external view returns (MarketRequest memory) {
        return _requests[marketRequestId];
    }

    /// @notice The market id of the spoke request `spokeRequestId` of `gateway` on `origin` (0 if
    ///         not recorded yet).
    function marketRequestIdOf(uint32 origin, bytes32 gateway, uint256 spokeRequestId) external view returns (uint256) {
        return _idBySpokeKey[_spokeKey(origin, gateway, spokeRequestId)];
    }

    /// @notice The id of the most recently recorded request (ids start at 1).
    function lastRequestId() external view returns (uint256) {
        return _lastRequestId;
    }

    /// @notice The messenger fee for sending this result now (what {submitResult} needs).
    function quoteResult(
        uint256 marketRequestId,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata artifacts
    ) external view returns (uint256) {
        MarketRequest storage r = _requests[marketRequestId];
        bytes memory body = SertnMessages.encodeResult(r.spokeRequestId, input, output, proof, artifacts, msg.sender);
        uint256 fee = _quoteMessage(r.origin, r.gateway, body, SertnMessages.resultGas(r.callbackGasLimit));
        if (r.copies == 0) return fee;
        FanOut storage f = _fanOuts[marketRequestId];
        for (uint256 i; i < f.destinations.length; ++i) {
            Destination memory d = f.destinations[i];
            if (d.domain == block.chainid) continue;
            bytes memory copy = _copyBody(_copyOf(r, f.requester, input, output, artifacts.output), d, proof, artifacts);
            fee += _quoteMessage(d.domain, routeOf(d.domain).peer, copy, SertnMessages.resultGas(d.callbackGasLimit));
        }
        return fee;
    }

    /// @notice A fan-out request's requester and other destinations (none for another request).
    function destinationsOf(uint256 marketRequestId) external view returns (address requester, Destination[] memory destinations) {
        FanOut storage f = _fanOuts[marketRequestId];
        return (f.requester, f.destinations);
    }

    /// @notice The first of a fan-out request's other destinations that the hub cannot serve now
    ///         (no route there, or the model's current circuit not recorded there), as its index
    ///         plus one; 0 when it can serve them all.
    function unservedDestination(uint256 marketRequestId) external view returns (uint256) {
        MarketRequest storage r = _requests[marketRequestId];
        return _unserved(r.modelId, _fanOuts[marketRequestId].destinations);
    }

    /// @notice The messenger fee for sending this batch now (what {submitBatch} needs); reverts as
    ///         {submitBatch} would for a batch whose rows do not bind (the proof is not checked here).
    function quoteBatch(
        uint16 size,
        uint256[] calldata marketRequestIds,
        int256[] calldata inputs,
        int256[] calldata outputs,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata artifacts
    ) external view returns (uint256) {
        BatchRoute memory b = _bindBatch(size, marketRequestIds, inputs, outputs);
        bytes memory body = _batchBody(size, b.spokeIds, inputs, outputs, proof, artifacts);
        return _quoteMessage(b.origin, b.gateway, body, b.gas);
    }

    /// @notice The messenger fee for sending this failure report now (what {failRequest} needs).
    function quoteFailure(uint256 marketRequestId, InferenceErrorCode code, string calldata reason)
        external
        view
        returns (uint256)
    {
        MarketRequest storage r = _requests[marketRequestId];
        bytes memory body = SertnMessages.encodeFailure(r.spokeRequestId, code, reason, msg.sender);
        return _quoteMessage(r.origin, r.gateway, body, SertnMessages.failureGas(r.callbackGasLimit));
    }

    // ─────────────────────────────── Messages from spokes ─────────────────

    function _handleMessage(uint32 origin, bytes32 sender, bytes calldata body) internal override {
        uint8 kind = SertnMessages.kind(body);
        if (kind == SertnMessages.REQUEST) _record(origin, sender, SertnMessages.decodeRequest(body));
        else if (kind == SertnMessages.RECEIPT) _settle(origin, sender, body);
        else if (kind == SertnMessages.RECEIPT_BATCH) _settleBatch(origin, sender, body);
        else revert SertnMessages.SertnMessagesUnknownKind(kind);
    }

    function _record(uint32 origin, bytes32 gateway, SertnMessages.SpokeRequest memory q) private {
        Destination[] memory copies = q.destinations;
        bytes32 key = _spokeKey(origin, gateway, q.requestId);
        if (_idBySpokeKey[key] != 0) revert MarketDuplicateRequest(origin, gateway, q.requestId);
        uint256 id = ++_lastRequestId;
        _idBySpokeKey[key] = id;
        _requests[id] = MarketRequest({
            origin: origin,
            deadline: q.deadline,
            status: MarketStatus.Open,
            settlement: RequestStatus.Pending,
            modelVersion: q.modelVersion,
            node: address(0),
            gateway: gateway,
            spokeRequestId: q.requestId,
            modelId: q.modelId,
            inputHash: keccak256(abi.encodePacked(q.input)),
            callbackGasLimit: q.callbackGasLimit,
            copies: uint8(copies.length)
        });
        emit RequestRecorded(id, origin, q.requestId, gateway, q);
        if (copies.length != 0) {
            FanOut storage f = _fanOuts[id];
            f.requester = q.requester;
            for (uint256 i; i < copies.length; ++i) f.destinations.push(copies[i]);
            emit DestinationsRecorded(id, copies);
        }
        // A model the hub does not know, or whose circuit it has not recorded on the requesting
        // chain, has no pool that could serve the request: it gets no job, and any node may fail
        // it ({failRequest}) so that the spoke refunds it now rather than at its deadline.
        IModelRegistry.RequestTerms memory terms = registry.tryGetRequestTerms(q.modelId);
        if (terms.version == 0 || registry.getChainDeployment(q.modelId, origin).version != terms.version) return;
        if (copies.length != 0 && _unserved(q.modelId, copies) != 0) return;
        // No capacity: queued, or (the requester's choice) no job, so that any node fails it with NoCapacity.
        nodes.openJob(id, q.modelId, terms.computeUnits, q.requester, q.deadline, !q.failIfNoCapacity);
    }

    /// @dev The spoke is the authority on its requests: whatever settlement it reports is recorded.
    function _settle(uint32 origin, bytes32 gateway, bytes calldata body) private {
        (uint256 spokeRequestId, RequestStatus settlement, address node) = SertnMessages.decodeReceipt(body);
        _settleOne(origin, gateway, spokeRequestId, settlement, node);
    }

    /// @dev A batch's receipt: every request it names settled alike.
    function _settleBatch(uint32 origin, bytes32 gateway, bytes calldata body) private {
        (uint256[] memory spokeRequestIds, RequestStatus settlement, address node) = SertnMessages.decodeReceiptBatch(body);
        for (uint256 i; i < spokeRequestIds.length; ++i) _settleOne(origin, gateway, spokeRequestIds[i], settlement, node);
    }

    function _settleOne(uint32 origin, bytes32 gateway, uint256 spokeRequestId, RequestStatus settlement, address node)
        private
    {
        uint256 id = _idBySpokeKey[_spokeKey(origin, gateway, spokeRequestId)];
        if (id == 0) revert MarketUnknownSpokeRequest(origin, gateway, spokeRequestId);
        MarketRequest storage r = _requests[id];
        if (
            r.status == MarketStatus.Settled
                || (settlement != RequestStatus.Fulfilled && settlement != RequestStatus.Failed
                    && settlement != RequestStatus.Refunded)
        ) revert MarketInvalidReceipt(id, settlement);
        r.status = MarketStatus.Settled;
        r.settlement = settlement;
        if (node != address(0)) r.node = node;
        // Settled without an answer here (a refund after the deadline): nobody holds the job any more.
        if (settlement == RequestStatus.Refunded) nodes.closeJob(id, address(0));
        emit RequestSettled(id, settlement, node);
    }

    // ─────────────────────────────── Internals ────────────────────────────

    function _open(uint256 marketRequestId) private view returns (MarketRequest storage r) {
        r = _requests[marketRequestId];
        if (r.status != MarketStatus.Open) revert MarketRequestNotOpen(marketRequestId, r.status);
    }

    function _checkResult(
        uint256 marketRequestId,
        MarketRequest storage r,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof
    ) private {
        uint256 deadline = r.deadline;
        if (block.timestamp > deadline) revert MarketRequestExpired(marketRequestId, deadline);
        if (keccak256(abi.encodePacked(input)) != r.inputHash) revert ResultInputMismatch(marketRequestId);
        bytes32 modelId = r.modelId;
        IModelRegistry.VerificationTerms memory terms = registry.tryGetVerificationTerms(modelId);
        if (terms.version == 0) revert MarketUnknownModel(modelId);
        IModelRegistry.ChainDeployment memory dep = registry.getChainDeployment(modelId, r.origin);
        if (dep.version != terms.version) revert MarketModelNotDeployed(modelId, r.origin, dep.version, terms.version);
        if (dep.remoteVersion != r.modelVersion) {
            revert MarketModelVersionMismatch(modelId, r.origin, r.modelVersion, dep.remoteVersion);
        }
        if (output.length != terms.outputLength) revert ResultOutputShapeMismatch(terms.outputLength, output.length);
        if (!ResultProof.verifies(terms.verifier, terms.vka, proof, input, output)) revert ResultInvalidProof(marketRequestId);
    }

    /// @dev A batch's message to its spoke, the rows packed at the fewest bytes that hold them.
    function _batchBody(
        uint16 size,
        uint256[] memory spokeIds,
        int256[] calldata inputs,
        int256[] calldata outputs,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata artifacts
    ) private view returns (bytes memory) {
        uint8 width = PackedInts.widthOf(inputs, outputs);
        return SertnMessages.encodeResultBatch(
            SertnMessages.ResultBatch({
                size: size,
                requestIds: spokeIds,
                width: width,
                inputs: PackedInts.pack(inputs, width),
                outputs: PackedInts.pack(outputs, width),
                proof: proof,
                refs: artifacts,
                node: msg.sender
            })
        );
    }

    /// @dev Where a batch goes and what verifies it (see {_bindBatch}).
    struct BatchRoute {
        uint32 origin;
        bytes32 gateway;
        /// @dev Gas the spoke needs for the batch's message.
        uint256 gas;
        address verifier;
        address vka;
        uint256 firstId;
        /// @dev Each row's spoke request id (0: padding).
        uint256[] spokeIds;
    }

    /// @dev Binds every named row of a batch to its open request (one spoke, model and version;
    ///      unexpired; the row exactly its input) and checks the output's shape: where the batch
    ///      goes, the batch circuit that verifies it, and the spoke's ids of its rows.
    function _bindBatch(uint16 size, uint256[] calldata marketRequestIds, int256[] calldata inputs, int256[] calldata outputs)
        private
        view
        returns (BatchRoute memory b)
    {
        if (size == 0 || marketRequestIds.length != size || inputs.length % size != 0) {
            revert MarketBatchShapeMismatch(size, marketRequestIds.length);
        }
        b.spokeIds = new uint256[](size);
        uint256 inLen = inputs.length / size;
        uint256 firstId;
        uint256 rows;
        uint256 callbackGas;
        for (uint256 i; i < size; ++i) {
            uint256 id = marketRequestIds[i];
            if (id == 0) continue;
            MarketRequest storage r = _open(id);
            if (r.copies != 0) revert MarketBatchFansOut(id);
            if (firstId == 0) {
                firstId = id;
            } else {
                MarketRequest storage first = _requests[firstId];
                if (
                    r.origin != first.origin || r.gateway != first.gateway || r.modelId != first.modelId
                        || r.modelVersion != first.modelVersion
                ) revert MarketBatchMixesRequests(id);
            }
            if (block.timestamp > r.deadline) revert MarketRequestExpired(id, r.deadline);
            if (keccak256(abi.encodePacked(inputs[i * inLen:(i + 1) * inLen])) != r.inputHash) revert ResultInputMismatch(id);
            b.spokeIds[i] = r.spokeRequestId;
            ++rows;
            callbackGas += r.callbackGasLimit;
        }
        if (firstId == 0) revert MarketBatchShapeMismatch(size, 0);
        MarketRequest storage one = _requests[firstId];
        (b.origin, b.gateway, b.firstId) = (one.origin, one.gateway, firstId);
        IModelRegistry.VerificationTerms memory terms = _batchTerms(one, size);
        if (outputs.length != uint256(size) * terms.outputLength) {
            revert ResultOutputShapeMismatch(uint256(size) * terms.outputLength, outputs.length);
        }
        (b.verifier, b.vka) = (terms.verifier, terms.vka);
        b.gas = SertnMessages.resultBatchGas(rows, callbackGas);
        if (b.gas > SertnMessages.MAX_RESULT_BATCH_GAS) revert MarketBatchTooMuchGas(b.gas, SertnMessages.MAX_RESULT_BATCH_GAS);
    }

    /// @dev The hub's batch circuit of `size` rows for the model of request `r`, which must be
    ///      current on the requesting chain for the version the request was made against, batch
    ///      circuit included.
    function _batchTerms(MarketRequest storage r, uint16 size)
        private
        view
        returns (IModelRegistry.VerificationTerms memory terms)
    {
        bytes32 modelId = r.modelId;
        uint32 origin = r.origin;
        terms = registry.tryGetBatchVerificationTerms(modelId, size);
        if (terms.version == 0) revert MarketUnknownModel(modelId);
        IModelRegistry.ChainDeployment memory dep = registry.getChainDeployment(modelId, origin);
        if (dep.version != terms.version) revert MarketModelNotDeployed(modelId, origin, dep.version, terms.version);
        if (dep.remoteVersion != r.modelVersion) {
            revert MarketModelVersionMismatch(modelId, origin, r.modelVersion, dep.remoteVersion);
        }
        (address spokeVka, uint32 recorded) = registry.getBatchChainDeployment(modelId, origin, size);
        if (terms.vka == address(0) || spokeVka == address(0) || recorded != terms.version) {
            revert MarketNoBatchCircuit(modelId, origin, size);
        }
    }

    /// @dev Sends `body` to the request's own gateway, paying the quote from `msg.value` and
    ///      refunding the rest to the caller.
    function _dispatch(uint32 destination, bytes32 gateway, bytes memory body, uint256 gasLimit)
        private
        returns (bytes32 messageId)
    {
        uint256 spent;
        (messageId, spent) = _sendPaid(destination, gateway, body, gasLimit, 0);
        _refundSurplus(spent);
    }

    /// @dev Sends `body`, paying its quote from `msg.value`, of which `spent` is spent already;
    ///      returns what is spent after it.
    function _sendPaid(uint32 destination, bytes32 recipient, bytes memory body, uint256 gasLimit, uint256 spent)
        private
        returns (bytes32 messageId, uint256)
    {
        uint256 fee = _quoteMessage(destination, recipient, body, gasLimit);
        spent += fee;
        if (msg.value < spent) revert MessengerInsufficientFee(spent, msg.value);
        messageId = _sendMessage(destination, recipient, body, gasLimit, fee);
        return (messageId, spent);
    }

    /// @dev Returns to the caller what of `msg.value` was not `spent`.
    function _refundSurplus(uint256 spent) private {
        uint256 surplus = msg.value - spent;
        if (surplus > 0) {
            (bool ok, ) = msg.sender.call{value: surplus}("");
            if (!ok) revert MarketRefundFailed(msg.sender, surplus);
        }
    }

    /// @dev Delivers a fan-out request's verified result to each of its other destinations: a
    ///      RESULT_COPY to another chain's gateway (paid from `msg.value`, of which `spent` is
    ///      spent), or the receiver called back here for the hub. Returns what is spent after it.
    function _sendCopies(
        uint256 marketRequestId,
        MarketRequest storage r,
        int256[] calldata input,
        int256[] calldata output,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata artifacts,
        uint256 spent
    ) private returns (uint256) {
        FanOut storage f = _fanOuts[marketRequestId];
        uint256 bad = _unserved(r.modelId, f.destinations);
        if (bad != 0) {
            uint32 domain = f.destinations[bad - 1].domain;
            uint32 recorded = registry.getChainDeployment(r.modelId, domain).version;
            revert MarketModelNotDeployed(r.modelId, domain, recorded, registry.tryGetRequestTerms(r.modelId).version);
        }
        InferenceCopy memory c = _copyOf(r, f.requester, input, output, artifacts.output);
        for (uint256 i; i < f.destinations.length; ++i) {
            Destination memory d = f.destinations[i];
            if (d.domain == block.chainid) {
                (CallbackStatus cs, uint256 gasUsed) =
                    Callback.call(d.receiver, d.callbackGasLimit, abi.encodeCall(ISertnCopyReceiver.rawOnInferenceCopy, (c)));
                emit InferenceCopied(c.origin, c.requestId, d.receiver, c.gateway, msg.sender, c.output, cs, gasUsed);
                continue;
            }
            bytes32 messageId;
            (messageId, spent) = _sendPaid(
                d.domain, routeOf(d.domain).peer, _copyBody(c, d, proof, artifacts), SertnMessages.resultGas(d.callbackGasLimit), spent
            );
            emit CopyDispatched(marketRequestId, d.domain, messageId);
        }
        return spent;
    }

    /// @dev A fan-out request's result as its copies carry it.
    function _copyOf(
        MarketRequest storage r,
        address requester,
        int256[] calldata input,
        int256[] calldata output,
        bytes32 outputRef
    ) private view returns (InferenceCopy memory) {
        return InferenceCopy({
            origin: r.origin,
            gateway: r.gateway,
            requestId: r.spokeRequestId,
            requester: requester,
            modelId: r.modelId,
            input: input,
            output: output,
            outputRef: outputRef
        });
    }

    /// @dev The RESULT_COPY message of copy `c` for destination `d`.
    function _copyBody(
        InferenceCopy memory c,
        Destination memory d,
        bytes calldata proof,
        IInferenceGateway.StorageRefs calldata artifacts
    ) private view returns (bytes memory) {
        return SertnMessages.encodeResultCopy(
            SertnMessages.ResultCopy({
                copy: c,
                modelVersion: registry.getChainDeployment(c.modelId, d.domain).remoteVersion,
                proof: proof,
                refs: artifacts,
                node: msg.sender,
                receiver: d.receiver,
                callbackGasLimit: d.callbackGasLimit
            })
        );
    }

    /// @dev The first of `copies` that the hub cannot serve now, as its index plus one (0: none):
    ///      another chain without a route, or where the model's current circuit is not recorded.
    function _unserved(bytes32 modelId, Destination[] memory copies) private view returns (uint256) {
        uint32 current = registry.tryGetRequestTerms(modelId).version;
        for (uint256 i; i < copies.length; ++i) {
            uint32 domain = copies[i].domain;
            if (domain == block.chainid) continue;
            if (routeOf(domain).port == address(0) || registry.getChainDeployment(modelId, domain).version != current) {
                return i + 1;
            }
        }
        return 0;
    }

    function _spokeKey(uint32 origin, bytes32 gateway, uint256 spokeRequestId) private pure returns (bytes32) {
        return keccak256(abi.encode(origin, gateway, spokeRequestId));
    }
}
