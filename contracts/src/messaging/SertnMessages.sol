// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInferenceGateway, InferenceErrorCode, RequestStatus} from "../interfaces/IInferenceGateway.sol";
import {Destination, InferenceCopy} from "../interfaces/ISertnCopies.sol";

/// @title SertnMessages
/// @notice Versioned codec for the messages between spoke gateways and the hub market:
///         `kind (1 byte) ‖ abi.encode(payload)`.
/// @dev The first byte is the message kind; a new payload layout gets a new kind, never a changed
///      one. Hub → spoke payloads are exactly the argument encoding of the spoke's entry point for
///      them (`SpokeGateway.deliverResult` / `deliverFailure`), so the spoke forwards them without
///      re-encoding and decodes them as bounds-checked calldata.
///      - RESULT (hub → spoke): `(uint256 requestId, int256[] input, int256[] output, bytes proof,
///        StorageRefs refs, address node)`.
///      - FAILURE (hub → spoke): `(uint256 requestId, InferenceErrorCode code, string reason, address node)`.
///      - REQUEST (spoke → hub): `abi.encode(SpokeRequest)`: `(uint256 requestId, bytes32 modelId,
///        uint32 modelVersion, int256[] input, bytes32 inputRef, address requester,
///        uint32 callbackGasLimit, uint96 escrow, uint40 deadline, bool failIfNoCapacity,
///        Destination[] destinations)` as one tuple. (Kind 3 was the request without `inputRef`,
///        encoded field by field; kind 5 the request without `destinations`. Both are retired.)
///      - RECEIPT (spoke → hub): `(uint256 requestId, RequestStatus status, address node)`: the
///        spoke settled the request (Fulfilled, Failed or Refunded).
///      - RESULT_BATCH (hub → spoke): `abi.encode(ResultBatch)`: `(uint16 size, uint256[] requestIds,
///        uint8 width, bytes inputs, bytes outputs, bytes proof, StorageRefs refs, address node)` as
///        one tuple: one proof of the model's
///        batch circuit of `size` rows; row r answers spoke request `requestIds[r]` (0: a padding
///        row); the rows' inputs and outputs are packed at `width` bytes per element (see {PackedInts}).
///      - RECEIPT_BATCH (spoke → hub): `(uint256[] requestIds, RequestStatus status, address node)`:
///        the spoke settled these requests of one batch alike (Fulfilled, or Failed when it rejected the batch).
///      - RESULT_COPY (hub → another chain than the request's): `abi.encode(ResultCopy)`: a fan-out
///        request's result, verified there with that chain's own VKA before its receiver is called.
library SertnMessages {
    /// @notice A result for a spoke request, to be verified by the spoke.
    uint8 internal constant RESULT = 1;
    /// @notice The hub's node cannot serve a spoke request: refund it.
    uint8 internal constant FAILURE = 2;
    /// @notice A new spoke request, for the hub market to record.
    uint8 internal constant REQUEST = 8;
    /// @notice How the spoke settled one of its requests.
    uint8 internal constant RECEIPT = 4;
    /// @notice Results for several requests of one spoke, proven together in a batch circuit.
    uint8 internal constant RESULT_BATCH = 6;
    /// @notice How the spoke settled the requests of one batch.
    uint8 internal constant RECEIPT_BATCH = 7;
    /// @notice A fan-out request's result, for one of its other chains.
    uint8 internal constant RESULT_COPY = 9;
    /// @notice Gas recording each of a fan-out request's destinations needs on the hub.
    uint256 internal constant DESTINATION_RECORD_GAS = 40_000;

    /// @notice Gas a receipt's handling needs on the hub (settling the market's record).
    uint256 internal constant RECEIPT_GAS = 150_000;
    /// @notice Gas a result's handling needs on a spoke beyond the callback: verification (up to
    ///         ~0.95M for the circuits `sertn model build` accepts), payment, and the receipt's send.
    uint256 internal constant RESULT_BASE_GAS = 1_600_000;
    /// @notice Gas a failure's handling needs on a spoke beyond the callback (refund, receipt).
    uint256 internal constant FAILURE_BASE_GAS = 450_000;

    /// @notice Gas a batch's handling needs on a spoke beyond its rows: verification (up to ~1.6M for
    ///         the batch circuits the registry takes), the node's payment and the receipt's send.
    uint256 internal constant RESULT_BATCH_BASE_GAS = 2_400_000;
    /// @notice Gas each named row of a batch needs on a spoke beyond its callback (binding, settlement).
    uint256 internal constant RESULT_BATCH_ROW_GAS = 45_000;
    /// @notice Gas a batch receipt's handling needs on the hub, and per request it names.
    uint256 internal constant RECEIPT_BATCH_BASE_GAS = 120_000;
    uint256 internal constant RECEIPT_BATCH_ROW_GAS = 30_000;
    /// @notice The most gas a batch's message may ask of its spoke (blocks hold ~30M).
    uint256 internal constant MAX_RESULT_BATCH_GAS = 24_000_000;

    /// @notice The message's kind is not one this recipient understands.
    error SertnMessagesUnknownKind(uint8 kind);

    /// @notice A spoke request as the hub learns it.
    struct SpokeRequest {
        uint256 requestId;
        bytes32 modelId;
        uint32 modelVersion;
        int256[] input;
        bytes32 inputRef;
        address requester;
        uint32 callbackGasLimit;
        uint96 escrow;
        uint40 deadline;
        /// @notice Fail at once (refunded) rather than wait when no node of the pool has capacity.
        bool failIfNoCapacity;
        /// @notice Other chains the result also goes to, verified there (a fan-out request; usually none).
        Destination[] destinations;
    }

    function encodeResult(
        uint256 requestId,
        int256[] memory input,
        int256[] memory output,
        bytes memory proof,
        IInferenceGateway.StorageRefs memory refs,
        address node
    ) internal pure returns (bytes memory) {
        return abi.encodePacked(RESULT, abi.encode(requestId, input, output, proof, refs, node));
    }

    function encodeFailure(uint256 requestId, InferenceErrorCode code, string memory reason, address node)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(FAILURE, abi.encode(requestId, code, reason, node));
    }

    /// @notice A RESULT_BATCH payload (see the library's notes).
    struct ResultBatch {
        uint16 size;
        /// @notice Row r's spoke request (0: a padding row).
        uint256[] requestIds;
        /// @notice Bytes per packed element of `inputs` and `outputs`.
        uint8 width;
        /// @notice Every row's input, row after row, packed.
        bytes inputs;
        /// @notice Every row's output, row after row, packed.
        bytes outputs;
        bytes proof;
        IInferenceGateway.StorageRefs refs;
        /// @notice The hub-registered node that served the batch; it is paid the escrows.
        address node;
    }

    /// @notice A RESULT_COPY payload: the copy its receiver gets, and what verifies it there.
    struct ResultCopy {
        InferenceCopy copy;
        /// @notice The model's version on the destination chain that the hub recorded (its VKA verifies the proof).
        uint32 modelVersion;
        bytes proof;
        IInferenceGateway.StorageRefs refs;
        /// @notice The hub-registered node that answered the request.
        address node;
        address receiver;
        uint32 callbackGasLimit;
    }

    function encodeResultCopy(ResultCopy memory c) internal pure returns (bytes memory) {
        return abi.encodePacked(RESULT_COPY, abi.encode(c));
    }

    function encodeResultBatch(ResultBatch memory b) internal pure returns (bytes memory) {
        return abi.encodePacked(RESULT_BATCH, abi.encode(b));
    }

    function encodeReceiptBatch(uint256[] memory requestIds, RequestStatus status, address node)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(RECEIPT_BATCH, abi.encode(requestIds, status, node));
    }

    function decodeReceiptBatch(bytes calldata body)
        internal
        pure
        returns (uint256[] memory requestIds, RequestStatus status, address node)
    {
        return abi.decode(body[1:], (uint256[], RequestStatus, address));
    }

    function encodeRequest(SpokeRequest memory r) internal pure returns (bytes memory) {
        return abi.encodePacked(REQUEST, abi.encode(r));
    }

    function decodeRequest(bytes calldata body) internal pure returns (SpokeRequest memory r) {
        r = abi.decode(body[1:], (SpokeRequest));
    }

    function encodeReceipt(uint256 requestId, RequestStatus status, address node) internal pure returns (bytes memory) {
        return abi.encodePacked(RECEIPT, abi.encode(requestId, status, node));
    }

    function decodeReceipt(bytes calldata body)
        internal
        pure
        returns (uint256 requestId, RequestStatus status, address node)
    {
        return abi.decode(body[1:], (uint256, RequestStatus, address));
    }

    /// @notice Gas a request's handling needs on the hub (recording it: its input is logged, its
    ///         node drawn, and each of its `copies` other destinations checked and stored).
    function requestGas(uint256 inputLength, uint256 copies) internal pure returns (uint256) {
        return 300_000 + 2_500 * inputLength + POOL_NODE_GAS * MAX_POOL_SIZE + DESTINATION_RECORD_GAS * copies;
    }

    /// @notice The most nodes a model's pool on the hub holds (the hub's NodeRegistry enforces it):
    ///         recording a request draws its node over the whole pool, and the request message's gas
    ///         must cover the largest pool.
    uint256 internal constant MAX_POOL_SIZE = 16;
    /// @notice Gas the draw spends per pool node (its membership, stake, misses and capacity used: four cold reads).
    uint256 internal constant POOL_NODE_GAS = 10_000;

    /// @notice Gas a result's handling needs on the spoke, with the callback's own limit (and
    ///         the 1/64 each call level withholds).
    function resultGas(uint256 callbackGasLimit) internal pure returns (uint256) {
        return RESULT_BASE_GAS + callbackGasLimit + callbackGasLimit / 32;
    }

    /// @notice Gas a batch's handling needs on the spoke: `rows` named rows whose callbacks' limits
    ///         add up to `callbackGas` (each with the 1/64 its call levels withhold).
    function resultBatchGas(uint256 rows, uint256 callbackGas) internal pure returns (uint256) {
        return RESULT_BATCH_BASE_GAS + rows * RESULT_BATCH_ROW_GAS + callbackGas + callbackGas / 32;
    }

    /// @notice Gas a batch receipt naming `rows` requests needs on the hub.
    function receiptBatchGas(uint256 rows) internal pure returns (uint256) {
        return RECEIPT_BATCH_BASE_GAS + rows * RECEIPT_BATCH_ROW_GAS;
    }

    /// @notice Gas a failure's handling needs on the spoke, with the error callback's limit.
    function failureGas(uint256 callbackGasLimit) internal pure returns (uint256) {
        return FAILURE_BASE_GAS + callbackGasLimit + callbackGasLimit / 32;
    }

    /// @notice The message's kind (0 if it is empty).
    function kind(bytes calldata body) internal pure returns (uint8) {
        return body.length == 0 ? 0 : uint8(body[0]);
    }

    /// @notice The payload after the kind byte.
    function payload(bytes calldata body) internal pure returns (bytes calldata) {
        return body[1:];
    }
}
