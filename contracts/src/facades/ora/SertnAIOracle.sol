// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CallbackStatus, IInferenceGateway, InferenceErrorCode} from "../../interfaces/IInferenceGateway.sol";
import {Callback} from "../../libraries/Callback.sol";
import {FacadeInput} from "../FacadeInput.sol";
import {SertnFacade} from "../SertnFacade.sol";
import {AIOracleCallbackReceiver} from "./AIOracleCallbackReceiver.sol";
import {IAIOracle} from "./IAIOracle.sol";

/// @title SertnAIOracle
/// @notice ORA's `IAIOracle` on Sertn: a contract written for ORA's onchain AI oracle (an
///         `AIOracleCallbackReceiver` that calls `requestCallback` and `estimateFee`) points at this
///         contract instead and gets results proven in zero knowledge and verified on this chain.
///         Each ORA model id the owner maps names a Sertn model; `input` is `abi.encode(int256[])`
///         at the model's input scale; the output handed to `aiOracleCallback` is
///         `abi.encode(int256[])` at its output scale, exactly the output the gateway verified.
/// @dev A request is a Sertn request of this facade (the request ids are the gateway's). The
///      receiver is called only from the gateway's verified-result callback, with the request's
///      gas limit, at most once. If Sertn cannot serve a request (the node reports an error, or
///      the deadline passes), the gateway's refund is passed on to the requester, the facade emits
///      {AIOracleRequestFailed}, and for an invalid input it calls the receiver's
///      `aiOracleCallbackError` (ORA's `InvalidInput`).
contract SertnAIOracle is IAIOracle, SertnFacade {
    // ─────────────────────────────── Types ────────────────────────────────

    /// @notice A request's state.
    enum Status {
        /// @notice No such request.
        None,
        /// @notice Sent to Sertn; no result yet.
        Pending,
        /// @notice Its verified result was delivered: final.
        Finalized,
        /// @notice Sertn could not serve it; its payment was refunded.
        Failed
    }

    /// @notice A request as stored.
    struct OracleRequest {
        /// @notice Who requested (and is refunded).
        address account;
        /// @notice Its state.
        Status status;
        /// @notice Gas the callback gets.
        uint64 gasLimit;
        /// @notice Who is called back (zero: nobody).
        address callbackContract;
        /// @notice The ORA model id.
        uint256 modelId;
        /// @notice Data handed back to the callback.
        bytes callbackData;
    }

    // ─────────────────────────────── Errors ───────────────────────────────

    /// @notice No Sertn model is mapped to this ORA model id on this chain.
    error SertnAIOracleUnknownModel(uint256 modelId);
    /// @notice The payment does not cover {estimateFee}.
    error SertnAIOracleInsufficientFee(uint256 required, uint256 paid);
    /// @notice The input is not `abi.encode(int256[])` (see `FacadeInput`).
    /// @param length The input's length in bytes.
    error SertnAIOracleInvalidInput(uint256 length);
    /// @notice The input does not have the model's number of elements.
    error SertnAIOracleInputShapeMismatch(uint256 expected, uint256 actual);
    /// @notice A callback contract needs a gas limit, and no callback contract takes one (as in ORA).
    error SertnAIOracleInvalidGasLimit(address callbackContract, uint64 gasLimit);
    /// @notice The callback data is longer than {MAX_CALLBACK_DATA}.
    error SertnAIOracleCallbackDataTooLong(uint256 length, uint256 max);
    /// @notice The gateway called back for a request this facade does not hold pending.
    error SertnAIOracleRequestNotPending(uint256 requestId);

    // ─────────────────────────────── Events ───────────────────────────────

    /// @notice The owner mapped an ORA model id to a Sertn model (zero: unmapped).
    event AIOracleModelMapped(uint256 indexed modelId, bytes32 indexed sertnModelId);
    /// @notice The receiver's `aiOracleCallback` was called; `succeeded` is false if it reverted or ran out of gas.
    event AIOracleCallbackCalled(uint256 indexed requestId, bool succeeded);
    /// @notice Sertn could not serve a request: `refund` was returned to `account`.
    event AIOracleRequestFailed(
        uint256 indexed requestId, address indexed account, InferenceErrorCode code, string reason, uint256 refund
    );

    // ─────────────────────────────── State ────────────────────────────────

    mapping(uint256 => bytes32) private _models;
    mapping(uint256 => OracleRequest) private _requests;

    /// @param owner_ Who maps ORA model ids to Sertn models.
    /// @param gateway_ This chain's Sertn gateway (hub `InferenceGateway` or `SpokeGateway`).
    constructor(address owner_, IInferenceGateway gateway_) SertnFacade(owner_, gateway_) {}

    // ─────────────────────────────── Owner ────────────────────────────────

    /// @notice Maps ORA model id `modelId` to the Sertn model `sertnModelId` (zero: unmaps it).
    function setModel(uint256 modelId, bytes32 sertnModelId) external onlyOwner {
        _models[modelId] = sertnModelId;
        emit AIOracleModelMapped(modelId, sertnModelId);
    }

    // ─────────────────────────────── IAIOracle ────────────────────────────

    /// @inheritdoc IAIOracle
    /// @dev The gateway's quote for the mapped model with a callback gas limit of `gasLimit` plus
    ///      the facade's own ({FACADE_GAS_OVERHEAD}, and the 1/64 of `gasLimit` a call withholds).
    function estimateFee(uint256 modelId, uint256 gasLimit) external view returns (uint256) {
        return gateway.quote(_modelOf(modelId), _sertnGas(gasLimit));
    }

    /// @inheritdoc IAIOracle
    /// @dev Pays the gateway all of `msg.value` (the gateway escrows what is above the quote too,
    ///      as ORA keeps an overpayment). Reverts {SertnAIOracleUnknownModel},
    ///      {SertnAIOracleInvalidInput}, {SertnAIOracleInputShapeMismatch},
    ///      {SertnAIOracleInvalidGasLimit}, {SertnAIOracleCallbackDataTooLong},
    ///      {SertnAIOracleInsufficientFee}, or the gateway's errors (e.g. a gas limit above its cap).
    function requestCallback(
        uint256 modelId,
        bytes memory input,
        address callbackContract,
        uint64 gasLimit,
        bytes memory callbackData
    ) external payable nonReentrant returns (uint256 requestId) {
        bytes32 sertnModelId = _modelOf(modelId);
        if ((callbackContract == address(0)) != (gasLimit == 0)) {
            revert SertnAIOracleInvalidGasLimit(callbackContract, gasLimit);
        }
        if (callbackData.length > MAX_CALLBACK_DATA) {
            revert SertnAIOracleCallbackDataTooLong(callbackData.length, MAX_CALLBACK_DATA);
        }
        (bool ok, int256[] memory values) = FacadeInput.decode(input);
        if (!ok) revert SertnAIOracleInvalidInput(input.length);
        uint256 expected = _inputLength(sertnModelId);
        if (values.length != expected) revert SertnAIOracleInputShapeMismatch(expected, values.length);
        uint32 sertnGas = _sertnGas(gasLimit);
        uint256 fee = gateway.quote(sertnModelId, sertnGas);
        if (msg.value < fee) revert SertnAIOracleInsufficientFee(fee, msg.value);

        requestId = _requestInference(sertnModelId, values, sertnGas, msg.value);
        OracleRequest storage r = _requests[requestId];
        r.account = msg.sender;
        r.status = Status.Pending;
        r.gasLimit = gasLimit;
        r.callbackContract = callbackContract;
        r.modelId = modelId;
        r.callbackData = callbackData;
        emit AICallbackRequest(msg.sender, requestId, modelId, input, callbackContract, gasLimit, callbackData);
    }

    /// @inheritdoc IAIOracle
    /// @dev True once the request's verified result was delivered: a Sertn result is proven and
    ///      verified before delivery, so there is no challenge window.
    function isFinalized(uint256 requestId) external view returns (bool) {
        return _requests[requestId].status == Status.Finalized;
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @notice The Sertn model mapped to ORA model id `modelId` (zero: none).
    function sertnModelOf(uint256 modelId) external view returns (bytes32) {
        return _models[modelId];
    }

    /// @notice A request by id.
    function getRequest(uint256 requestId) external view returns (OracleRequest memory) {
        return _requests[requestId];
    }

    // ─────────────────────────────── Gateway callbacks ────────────────────

    /// @dev The verified output, from the gateway only (checked by `SertnConsumer`): marks the
    ///      request final, then calls the receiver with its gas limit, isolated.
    function _onInferenceResult(uint256 requestId, int256[] calldata output) internal override {
        OracleRequest storage r = _requests[requestId];
        if (r.status != Status.Pending) revert SertnAIOracleRequestNotPending(requestId);
        r.status = Status.Finalized;
        bytes memory encoded = FacadeInput.encode(output);
        address target = r.callbackContract;
        if (target != address(0)) {
            (CallbackStatus cs,) = Callback.call(
                target,
                r.gasLimit,
                abi.encodeCall(AIOracleCallbackReceiver.aiOracleCallback, (requestId, encoded, r.callbackData))
            );
            emit AIOracleCallbackCalled(requestId, cs == CallbackStatus.Succeeded);
        }
        emit AICallbackResult(r.account, requestId, address(gateway), encoded);
    }

    /// @dev The gateway refunded the request (paid before this call): passes the refund on to the
    ///      requester and, for an invalid input, tells the receiver through `aiOracleCallbackError`.
    function _onInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason) internal override {
        OracleRequest storage r = _requests[requestId];
        if (r.status != Status.Pending) revert SertnAIOracleRequestNotPending(requestId);
        r.status = Status.Failed;
        uint256 refund = _escrowOf(requestId);
        address account = r.account;
        _refund(account, refund);
        emit AIOracleRequestFailed(requestId, account, code, reason, refund);
        address target = r.callbackContract;
        if (code == InferenceErrorCode.InvalidInput && target != address(0)) {
            Callback.call(
                target,
                r.gasLimit,
                abi.encodeCall(
                    AIOracleCallbackReceiver.aiOracleCallbackError,
                    (requestId, AIOracleCallbackReceiver.AIOracleError.InvalidInput, bytes(reason), r.callbackData)
                )
            );
        }
    }

    function _modelOf(uint256 modelId) private view returns (bytes32 sertnModelId) {
        sertnModelId = _models[modelId];
        if (sertnModelId == bytes32(0)) revert SertnAIOracleUnknownModel(modelId);
    }
}
