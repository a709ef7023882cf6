// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InferenceGateway} from "./InferenceGateway.sol";
import {InferenceErrorCode, RequestStatus} from "./interfaces/IInferenceGateway.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {Destination} from "./interfaces/ISertnCopies.sol";
import {CopyDelivery, CopyLedger} from "./CopyDelivery.sol";
import {MessengerApp} from "./messaging/MessengerApp.sol";
import {SertnMessages} from "./messaging/SertnMessages.sol";
import {PackedInts} from "./libraries/PackedInts.sol";

/// @title SpokeGateway
/// @notice An inference gateway on a spoke chain. Contracts request here exactly as on the hub;
///         each request is escrowed here and sent to the hub market, and its result (or failure)
///         comes back from the hub market through the enrolled messenger route. A result is
///         verified here exactly as {InferenceGateway.fulfill} verifies it (registry-pinned VKA,
///         instances built from the request's input commitment and the output) before the node is
///         paid and the requester called back. Every settlement (fulfilled, failed, refunded) is
///         reported back to the hub in a receipt.
/// @dev The gateway knows no messaging network: {MessengerApp} routes its messages to and from
///      the hub through the hub route's port (Hyperlane's, LayerZero's, …), which authenticates
///      its network and hands over the hub market's address; {receiveMessage} admits only that
///      port and that market.
///
///      Local nodes can neither {fulfill} nor {fail} on a spoke: every outcome comes from the hub
///      market, whose node set decides who serves. Anyone may {refund} after the deadline.
///
///      A message for an unknown, settled or expired request reverts with the gateway's custom
///      error; the network's delivery reverts with it, so nothing is half applied and the message
///      stays undelivered for the network's agents to report. A result this chain rejects (its
///      verifier refuses the proof, the model changed here, the shapes differ) fails the request
///      instead: the requester is refunded and called back with `InvalidResult`, and the hub
///      receives a Failed receipt, so that no request waits for its deadline on a result that can
///      never be accepted.
///
///      Messaging fees: a request pays, on top of the quote, the network's fee for its request
///      message to the hub (quoted for a body of the model's input length and the gas recording
///      it needs there) and for a receipt, kept in reserve. If the receipt cannot be sent when
///      the request settles (the network's fee rose, say), the settlement stands and the receipt
///      waits for anyone to {sendReceipt} with the difference; what the reserve does not spend
///      goes back to the requester.
contract SpokeGateway is InferenceGateway, MessengerApp {
    /// @notice Results reach a spoke only from the hub, through the messenger.
    error SpokeLocalFulfillDisabled();
    /// @notice Failures reach a spoke only from the hub, through the messenger.
    error SpokeLocalFailDisabled();
    /// @notice No hub is configured: requests cannot be taken.
    error SpokeHubNotSet();
    /// @notice No receipt is waiting to be sent for `requestId`.
    error SpokeNoPendingReceipt(uint256 requestId);
    /// @notice Ether was sent to the gateway outside a send's refund.
    error SpokeUnexpectedPayment(address from, uint256 amount);

    /// @notice The hub market this spoke sends requests to and takes results from.
    event HubSet(uint32 indexed domain, bytes32 indexed market, address indexed port);
    /// @notice This chain rejected a result from the hub; the request was failed and refunded.
    event ResultRejected(uint256 indexed requestId, address indexed node, bytes4 error);
    /// @notice The request's message to the hub left (`messageId` is the messenger's id).
    event RequestSentToHub(uint256 indexed requestId, bytes32 indexed messageId);
    /// @notice The settlement receipt for `requestId` left for the hub.
    event ReceiptSent(uint256 indexed requestId, RequestStatus status, bytes32 indexed messageId);
    /// @notice The receipt could not be sent now (held funds: `reserve`); {sendReceipt} retries.
    event ReceiptDeferred(uint256 indexed requestId, RequestStatus status, uint256 reserve);
    /// @notice One receipt for the requests a batch settled left for the hub. Each request's
    ///         receipt reserve pays its share of `fee`, in proportion; the rest is its requester's,
    ///         paid by {releaseBatch} with these `requestIds`.
    event BatchReceiptSent(bytes32 indexed messageId, RequestStatus status, uint256[] requestIds, uint256 fee);
    /// @notice A result batch from the hub was rejected by this chain; its pending rows were failed and refunded.
    event BatchRejected(address indexed node, bytes4 error, uint256 failed);

    struct PendingReceipt {
        RequestStatus status;
        address node;
        uint96 reserve;
    }

    /// @notice The hub's Sertn domain (its chain id).
    uint32 public hubDomain;
    /// @notice The hub market (left-padded address).
    bytes32 public hubMarket;

    mapping(uint256 requestId => PendingReceipt) private _pendingReceipts;
    /// @dev Set while a batch settles: its receipts are sent as one, after every row.
    bool private transient _batching;
    /// @dev Set while this gateway sends without quoting first: the port returns the fee's surplus then.
    bool private transient _sending;
    /// @notice The code that delivers fan-out copies here, run in this gateway's context (see {_deliverCopy}).
    address public immutable copyDelivery;

    /// @param initialOwner Who configures the gateway and enrolls routes.
    /// @param registry_ The spoke's model registry.
    /// @param config_ The initial configuration.
    constructor(address initialOwner, IModelRegistry registry_, Config memory config_)
        InferenceGateway(initialOwner, registry_, INodeRegistry(address(0)), config_)
    {
        copyDelivery = address(new CopyDelivery(registry_));
    }

    // ─────────────────────────────── Owner ────────────────────────────────

    /// @notice Points the gateway at the hub market on `domain`, reached through `port`, and
    ///         makes it the only route; the previous hub's route is removed (its undelivered
    ///         messages will be rejected).
    function setHub(uint32 domain, address port, bytes32 market) external onlyOwner {
        if (hubMarket != bytes32(0) && hubDomain != domain) _removeRoute(hubDomain);
        _setRoute(domain, port, market);
        hubDomain = domain;
        hubMarket = market;
        emit HubSet(domain, market, port);
    }

    // ─────────────────────────────── Fan-out ──────────────────────────────

    /// @notice Requests an inference whose result, proven once, is delivered verified here (as
    ///         {requestInferenceWith}) and to each of `destinations` (other chains the hub routes
    ///         to, or the hub), where that chain's own verifier checks the proof before its receiver
    ///         is called back ({ISertnCopyReceiver}), at most once per chain. Pays {quoteFanOut}: each
    ///         copy's delivery is escrowed with the request's and refunded with it. A destination the
    ///         hub cannot serve (no route, the model not current there) fails the request with a
    ///         refund; a failed request sends no copy.
    function requestInferenceFanOut(RequestParams calldata p, Destination[] calldata destinations)
        external
        payable
        nonReentrant
        returns (uint256 requestId)
    {
        if (destinations.length == 0) revert GatewayInvalidDestination(0);
        return _requestWith(p, destinations);
    }

    /// @notice What {requestInferenceFanOut} costs with these destinations.
    function quoteFanOut(bytes32 modelId, uint32 callbackGasLimit, Destination[] calldata destinations)
        external
        view
        returns (uint256)
    {
        return _quoteRows(modelId, callbackGasLimit, 0, destinations);
    }

    /// @notice Whether the copy of request `requestId` of `gateway` on `origin` reached this chain
    ///         (delivered, or rejected by its verification).
    function copyArrived(uint32 origin, bytes32 gateway, uint256 requestId) external view returns (bool) {
        return CopyLedger.layout().arrived[CopyLedger.keyOf(origin, gateway, requestId)];
    }

    // ─────────────────────────────── Disabled locally ─────────────────────

    /// @notice Disabled on a spoke: results arrive through {receiveMessage}.
    function fulfill(uint256, int256[] calldata, int256[] calldata, bytes calldata, StorageRefs calldata)
        external
        virtual
        override
    {
        revert SpokeLocalFulfillDisabled();
    }

    /// @notice Disabled on a spoke: failures arrive through {receiveMessage}.
    function fail(uint256, InferenceErrorCode, string calldata) external virtual override {
        revert SpokeLocalFailDisabled();
    }

    /// @notice Batches reach a spoke only from the hub, through the messenger.
    function fulfillBatch(uint16, uint256[] calldata, int256[] calldata, int256[] calldata, bytes calldata, StorageRefs calldata)
        external
        virtual
        override
    {
        revert SpokeLocalFulfillDisabled();
    }

    // ─────────────────────────────── Messages from the hub ────────────────

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

    /// @notice Fails a request (refund and error callback) on an authenticated hub message; only
    ///         this contract calls it (from {_handleMessage}).
    function deliverFailure(uint256 requestId, InferenceErrorCode code, string calldata reason, address node)
        external
        nonReentrant
    {
        if (msg.sender != address(this)) revert MessengerUnauthorizedCaller(msg.sender);
        _fail(requestId, code, reason, node);
    }

    /// @notice Settles the requests of a batch from an authenticated hub message with one
    ///         verification (see {InferenceGateway._fulfillBatch}); only this contract calls it.
    ///         A row whose request was settled or expired meanwhile (refunded here, say) is left
    ///         alone; the rest are paid to `node` once and called back each in isolation, and one
    ///         receipt reports them to the hub.
    function deliverBatch(SertnMessages.ResultBatch calldata b) external nonReentrant {
        if (msg.sender != address(this)) revert MessengerUnauthorizedCaller(msg.sender);
        _batching = true;
        uint256[] memory settled = _fulfillBatch(
            b.size, b.requestIds, PackedInts.unpack(b.inputs, b.width), PackedInts.unpack(b.outputs, b.width), b.proof, b.refs, b.node, true
        );
        _batching = false;
        _sendBatchReceipt(settled, RequestStatus.Fulfilled, b.node);
    }

    /// @notice Fails (refund and error callback) every pending, unexpired request a rejected batch
    ///         names, with one receipt; only this contract calls it (from {_handleMessage}).
    function deliverBatchFailure(SertnMessages.ResultBatch calldata b, bytes4 error) external nonReentrant {
        if (msg.sender != address(this)) revert MessengerUnauthorizedCaller(msg.sender);
        uint256[] memory failed = new uint256[](b.requestIds.length);
        uint256 count;
        _batching = true;
        for (uint256 i; i < failed.length; ++i) {
            uint256 id = b.requestIds[i];
            Request storage r = _requestOf(id);
            if (id == 0 || r.status != RequestStatus.Pending || block.timestamp > r.deadline) continue;
            _fail(id, InferenceErrorCode.InvalidResult, "batch rejected by this chain's verification", b.node);
            failed[i] = id;
            ++count;
        }
        _batching = false;
        emit BatchRejected(b.node, error, count);
        _sendBatchReceipt(_compact(failed, count), RequestStatus.Failed, b.node);
    }

    // ─────────────────────────────── Receipts ─────────────────────────────

    /// @notice Sends a deferred settlement receipt to the hub; anyone may call it, topping up the
    ///         fee beyond the request's reserve. The reserve pays first; what is left of it goes to
    ///         the requester, what is left of `msg.value` back to the caller.
    function sendReceipt(uint256 requestId) external payable nonReentrant {
        PendingReceipt memory p = _pendingReceipts[requestId];
        if (p.status == RequestStatus.None) revert SpokeNoPendingReceipt(requestId);
        delete _pendingReceipts[requestId];
        bytes memory body = SertnMessages.encodeReceipt(requestId, p.status, p.node);
        uint256 reserve = p.reserve;
        uint256 fee = _quoteMessage(hubDomain, hubMarket, body, SertnMessages.RECEIPT_GAS);
        if (reserve + msg.value < fee) revert MessengerInsufficientFee(fee, reserve + msg.value);
        bytes32 id = _sendMessage(hubDomain, hubMarket, body, SertnMessages.RECEIPT_GAS, fee);
        emit ReceiptSent(requestId, p.status, id);
        if (fee <= reserve) {
            _pay(_requestOf(requestId).requester, reserve - fee);
            if (msg.value > 0) _refundSurplus(msg.sender, msg.value);
        } else if (reserve + msg.value > fee) {
            _refundSurplus(msg.sender, reserve + msg.value - fee);
        }
    }

    /// @dev A spoke has no node registry: its requests' jobs live on the hub.
    function _openJob(uint256, Request storage, uint32, bool) internal pure override {}

    function _closeJob(uint256, address) internal pure override {}

    /// @dev {releaseBatch} also pays what the batch's one receipt left of the request's receipt
    ///      reserve (each reserve pays its share of the fee, in proportion, rounded up). The batch
    ///      itself leaves the reserves in place: a per-row refund would cost each row a transfer.
    function _releaseRow(uint256 requestId, BatchClaim memory c) internal override returns (uint256) {
        if (c.reserves == 0) return 0;
        Request storage r = _requestOf(requestId);
        uint256 reserve = r.receiptReserve;
        r.receiptReserve = 0;
        return reserve - (uint256(c.fee) * reserve + c.reserves - 1) / c.reserves;
    }

    /// @notice The receipt reserve held for `requestId`: what its receipt may spend while it is
    ///         pending; after a batch settled it, until {releaseBatch}, the whole reserve (its
    ///         share of the batch receipt's fee not yet taken out).
    function receiptReserve(uint256 requestId) external view returns (uint256) {
        return _requestOf(requestId).receiptReserve;
    }

    /// @notice The receipt waiting to be sent for `requestId` (status None if none).
    function pendingReceipt(uint256 requestId) external view returns (PendingReceipt memory) {
        return _pendingReceipts[requestId];
    }

    // ─────────────────────────────── Hooks ────────────────────────────────

    /// @dev Dispatches by message kind; payloads are the exact argument encoding of the entry
    ///      point, which decodes and bounds-checks them as calldata. Revert data is re-thrown as is,
    ///      except a result this chain rejects, which fails the request (see the contract's notes).
    function _handleMessage(uint32, bytes32, bytes calldata body) internal override {
        uint8 kind = SertnMessages.kind(body);
        bytes4 selector;
        if (kind == SertnMessages.RESULT) selector = this.deliverResult.selector;
        else if (kind == SertnMessages.FAILURE) selector = this.deliverFailure.selector;
        else if (kind == SertnMessages.RESULT_BATCH) selector = this.deliverBatch.selector;
        else if (kind == SertnMessages.RESULT_COPY) return _deliverCopy(SertnMessages.payload(body));
        else revert SertnMessages.SertnMessagesUnknownKind(kind);
        (bool ok, bytes memory ret) = address(this).call(bytes.concat(selector, SertnMessages.payload(body)));
        if (!ok && kind == SertnMessages.RESULT && _isResultRejection(ret)) {
            // The head of (requestId, input, output, proof, refs, node): its first word and its seventh.
            bytes calldata payload = SertnMessages.payload(body);
            uint256 requestId = uint256(bytes32(payload[0:32]));
            address node = address(uint160(uint256(bytes32(payload[192:224]))));
            (ok, ) = address(this).call(
                abi.encodeCall(
                    this.deliverFailure,
                    (requestId, InferenceErrorCode.InvalidResult, "result rejected by this chain's verification", node)
                )
            );
            if (ok) emit ResultRejected(requestId, node, bytes4(ret));
        } else if (!ok && kind == SertnMessages.RESULT_BATCH && _isResultRejection(ret)) {
            // (ResultBatch b, bytes4 error): b's tuple moves behind the error word (its offsets are its own).
            (ok, ) = address(this).call(
                bytes.concat(this.deliverBatchFailure.selector, bytes32(uint256(0x40)), bytes32(bytes4(ret)), SertnMessages.payload(body)[32:])
            );
        }
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    /// @dev Delivers a copy of another chain's fan-out request's result from an authenticated hub
    ///      message by running {CopyDelivery.deliverCopy} here: verified with this chain's VKA,
    ///      its receiver called back in isolation, at most once per request. Its reverts (a copy
    ///      delivered before, too little gas) are re-thrown as they are.
    function _deliverCopy(bytes calldata payload) private nonReentrant {
        (bool ok, bytes memory ret) = copyDelivery.delegatecall(bytes.concat(CopyDelivery.deliverCopy.selector, payload));
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    /// @dev Whether `err` is a rejection of the result itself (not of the request's state, and not
    ///      a lack of gas): the proof, the output's shape, the input, or the model version.
    function _isResultRejection(bytes memory err) private pure returns (bool) {
        if (err.length < 4) return false;
        bytes4 s = bytes4(err);
        return s == ResultInvalidProof.selector || s == ResultOutputShapeMismatch.selector
            || s == ResultInputMismatch.selector || s == GatewayModelVersionChanged.selector
            || s == GatewayNoBatchCircuit.selector || s == GatewayBatchMixesModels.selector
            || s == GatewayBatchShapeMismatch.selector || s == PackedInts.PackedIntsMalformed.selector;
    }

    /// @dev The fees of the request's message to the hub (a body of this input length, naming
    ///      `copies` other destinations) and of the receipt kept in reserve.
    function _messagingFee(uint256 inputLength, uint256 copies) internal view override returns (uint256) {
        bytes32 market = hubMarket;
        if (market == bytes32(0)) revert SpokeHubNotSet();
        SertnMessages.SpokeRequest memory sized;
        sized.input = new int256[](inputLength);
        sized.destinations = new Destination[](copies);
        bytes memory request = SertnMessages.encodeRequest(sized);
        bytes memory receipt = SertnMessages.encodeReceipt(0, RequestStatus.Fulfilled, address(0));
        return _quoteMessage(hubDomain, market, request, SertnMessages.requestGas(inputLength, copies))
            + _quoteMessage(hubDomain, market, receipt, SertnMessages.RECEIPT_GAS);
    }

    function _afterRequest(
        uint256 requestId,
        Request storage r,
        int256[] calldata input,
        bytes32 inputRef,
        uint256 messagingFee,
        bool failIfNoCapacity,
        Destination[] memory copies
    ) internal override {
        bytes memory body = SertnMessages.encodeRequest(
            SertnMessages.SpokeRequest({
                requestId: requestId,
                modelId: r.modelId,
                modelVersion: r.modelVersion,
                input: input,
                inputRef: inputRef,
                requester: r.requester,
                callbackGasLimit: r.callbackGasLimit,
                escrow: r.escrow,
                deadline: r.deadline,
                failIfNoCapacity: failIfNoCapacity,
                destinations: copies
            })
        );
        // Sent with the whole messaging fee: what the request message did not cost is the receipt's reserve.
        (bytes32 id, uint256 paid) =
            _sendUnquoted(hubDomain, hubMarket, body, SertnMessages.requestGas(input.length, copies.length), messagingFee);
        r.receiptReserve = uint96(messagingFee - paid);
        emit RequestSentToHub(requestId, id);
    }

    /// @dev Sends the receipt from the request's reserve (what the messenger does not charge goes
    ///      to the requester); if the messenger refuses, the settlement stands and the receipt is
    ///      kept for {sendReceipt}.
    function _afterSettle(uint256 requestId, RequestStatus status, address node) internal override {
        if (_batching) return; // the batch sends one receipt for all its rows ({_sendBatchReceipt})
        Request storage r = _requestOf(requestId);
        uint96 reserve = r.receiptReserve;
        r.receiptReserve = 0;
        bytes memory body = SertnMessages.encodeReceipt(requestId, status, node);
        uint32 domain = hubDomain;
        bytes32 market = hubMarket;
        try this.sendOwnMessage(domain, market, body, reserve, SertnMessages.RECEIPT_GAS) returns (bytes32 id, uint256 fee) {
            emit ReceiptSent(requestId, status, id);
            if (reserve > fee) _pay(_requestOf(requestId).requester, reserve - fee);
        } catch {
            _pendingReceipts[requestId] = PendingReceipt({status: status, node: node, reserve: reserve});
            emit ReceiptDeferred(requestId, status, reserve);
        }
    }

    /// @notice Sends a receipt from this contract's balance; only this contract calls it (so that
    ///         {_afterSettle} can catch a messenger's refusal without undoing the settlement).
    /// @return messageId The messenger's id for the message.
    /// @return paid The fee paid (at most `fee`).
    function sendOwnMessage(uint32 destination, bytes32 recipient, bytes calldata body, uint256 fee, uint256 gasLimit)
        external
        returns (bytes32 messageId, uint256 paid)
    {
        if (msg.sender != address(this)) revert MessengerUnauthorizedCaller(msg.sender);
        return _sendUnquoted(destination, recipient, body, gasLimit, fee);
    }

    /// @dev Sends with up to `fee` and no quote first: the port takes its fee (or reverts) and
    ///      returns the rest, which saves the network's fee computation once per message
    ///      (LayerZero's is ~110k gas). Returns what the send cost.
    function _sendUnquoted(uint32 destination, bytes32 recipient, bytes memory body, uint256 gasLimit, uint256 fee)
        private
        returns (bytes32 messageId, uint256 paid)
    {
        uint256 before = address(this).balance;
        _sending = true;
        messageId = _sendMessage(destination, recipient, body, gasLimit, fee);
        _sending = false;
        paid = before - address(this).balance;
    }

    /// @notice Takes the surplus a port returns while this gateway sends (a request's message, a
    ///         receipt); any other ether sent here is refused.
    receive() external payable {
        if (!_sending) revert SpokeUnexpectedPayment(msg.sender, msg.value);
    }

    /// @dev One receipt for the requests a batch settled alike (`named`), paid from their
    ///      reserves together (each pays its share, in proportion, when {releaseBatch} pays the
    ///      rest to its requester). If the messenger refuses, each request's receipt waits for
    ///      {sendReceipt} with its whole reserve.
    function _sendBatchReceipt(uint256[] memory named, RequestStatus status, address node) private {
        uint256 count = named.length;
        if (count == 0) return;
        uint256 reserves;
        for (uint256 i; i < count; ++i) reserves += _requestOf(named[i]).receiptReserve;
        bytes memory body = SertnMessages.encodeReceiptBatch(named, status, node);
        try this.sendOwnMessage(hubDomain, hubMarket, body, reserves, SertnMessages.receiptBatchGas(count)) returns (
            bytes32 messageId, uint256 fee
        ) {
            // The reserves stay in place; {releaseBatch} pays each requester its rest later.
            if (reserves != 0) {
                BatchClaim storage c = _batchClaims[keccak256(abi.encode(named))];
                (c.fee, c.reserves) = (uint80(fee), uint80(reserves));
            }
            emit BatchReceiptSent(messageId, status, named, fee);
        } catch {
            for (uint256 i; i < count; ++i) {
                uint256 id = named[i];
                Request storage r = _requestOf(id);
                uint96 reserve = r.receiptReserve;
                r.receiptReserve = 0;
                _pendingReceipts[id] = PendingReceipt({status: status, node: node, reserve: reserve});
                emit ReceiptDeferred(id, status, reserve);
            }
        }
    }

    function _refundSurplus(address to, uint256 amount) private {
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert GatewayWithdrawFailed(to, amount);
    }
}
