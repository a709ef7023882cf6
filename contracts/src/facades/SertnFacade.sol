// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SertnConsumer} from "../SertnConsumer.sol";
import {IInferenceGateway} from "../interfaces/IInferenceGateway.sol";
import {IModelRegistry, Visibility} from "../interfaces/IModelRegistry.sol";
import {Owned} from "../utils/Owned.sol";

/// @notice The registry a gateway checks requests against (both `InferenceGateway` and
///         `SpokeGateway` expose it).
interface IGatewayRegistry {
    /// @notice The model registry of the gateway's chain.
    function registry() external view returns (IModelRegistry);
}

/// @title SertnFacade
/// @notice What Sertn's drop-in oracle facades share: they are Sertn consumers of their chain's
///         gateway (a hub `InferenceGateway` or a spoke `SpokeGateway`, the same API), owned by whoever
///         maps the other oracle's ids to Sertn models, guarded against re-entry, and they give a
///         consumer's callback its gas limit plus what the facade itself spends in the gateway's
///         callback.
abstract contract SertnFacade is SertnConsumer, Owned {
    // ─────────────────────────────── Constants ────────────────────────────

    /// @notice Gas the facade spends in the gateway's callback beyond the consumer's gas limit and
    ///         the 1/64 the EVM withholds from a call: its own bookkeeping, the output's encoding,
    ///         the events, and up to {MAX_CALLBACK_DATA} bytes of stored callback data read back.
    uint256 public constant FACADE_GAS_OVERHEAD = 150_000;

    /// @notice The most bytes of `callbackData` a request may carry (read back within {FACADE_GAS_OVERHEAD}).
    uint256 public constant MAX_CALLBACK_DATA = 1024;

    /// @notice Gas a pushed refund gets (enough for a plain transfer; a payee that needs more withdraws).
    uint256 internal constant REFUND_GAS = 10_000;

    // ─────────────────────────────── Errors ───────────────────────────────

    /// @notice A function was re-entered.
    error SertnFacadeReentrantCall();
    /// @notice The consumer's gas limit plus the facade's overhead does not fit a Sertn request.
    /// @param gasLimit The consumer's gas limit.
    /// @param max The largest gas limit this facade can carry.
    error SertnFacadeGasLimitTooHigh(uint256 gasLimit, uint256 max);
    /// @notice The mapped model cannot be served through a facade on this chain: it is not
    ///         registered here, or its input or output is hashed (a facade passes values inline).
    error SertnFacadeModelUnsupported(bytes32 modelId);
    /// @notice Nothing is owed to the caller.
    error SertnFacadeNothingToWithdraw(address account);
    /// @notice Sending owed funds failed.
    error SertnFacadeWithdrawFailed(address account, uint256 amount);

    // ─────────────────────────────── Events ───────────────────────────────

    /// @notice A refund could not be pushed and is held for `account` to {withdraw}.
    event FacadeRefundDeferred(address indexed account, uint256 amount);
    /// @notice Owed funds were withdrawn.
    event FacadeWithdrawn(address indexed account, uint256 amount);
    /// @notice The owner swept `amount` held by no one (e.g. what a spoke's receipt reserve left) to `to`.
    event FacadeSwept(address indexed to, uint256 amount);

    // ─────────────────────────────── State ────────────────────────────────

    bool private _entered;
    mapping(address => uint256) private _owed;

    /// @dev Wei this contract holds for others (refunds owed, deposits, reserved fees): what
    ///      {sweep} leaves alone.
    uint256 internal _held;

    /// @param owner_ Who maps ids to models.
    /// @param gateway_ This chain's Sertn gateway.
    constructor(address owner_, IInferenceGateway gateway_) SertnConsumer(gateway_) Owned(owner_) {}

    modifier nonReentrant() {
        if (_entered) revert SertnFacadeReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }

    // ─────────────────────────────── Funds ────────────────────────────────

    /// @notice Funds held for `account` after a pushed refund failed.
    function owed(address account) external view returns (uint256) {
        return _owed[account];
    }

    /// @notice Withdraws refunds that could not be pushed to the caller.
    function withdraw() external nonReentrant {
        uint256 amount = _owed[msg.sender];
        if (amount == 0) revert SertnFacadeNothingToWithdraw(msg.sender);
        _owed[msg.sender] = 0;
        _held -= amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert SertnFacadeWithdrawFailed(msg.sender, amount);
        emit FacadeWithdrawn(msg.sender, amount);
    }

    /// @notice Wei this contract holds that belongs to no one: what the gateway pays back beyond a
    ///      request's escrow (a spoke's receipt reserve left over after its receipt was sent).
    function surplus() public view returns (uint256) {
        return address(this).balance - _held;
    }

    /// @notice Sends the {surplus} to `to`; the owner only.
    function sweep(address to) external onlyOwner nonReentrant {
        uint256 amount = surplus();
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert SertnFacadeWithdrawFailed(to, amount);
        emit FacadeSwept(to, amount);
    }

    // ─────────────────────────────── Internals ────────────────────────────

    /// @dev The Sertn callback gas limit that gives a consumer `gasLimit` (see {FACADE_GAS_OVERHEAD}).
    function _sertnGas(uint256 gasLimit) internal pure returns (uint32) {
        uint256 max = type(uint32).max - FACADE_GAS_OVERHEAD;
        max -= max / 64;
        if (gasLimit > max) revert SertnFacadeGasLimitTooHigh(gasLimit, max);
        return uint32(gasLimit + gasLimit / 63 + FACADE_GAS_OVERHEAD);
    }

    /// @dev The elements a request for `modelId` must carry; reverts {SertnFacadeModelUnsupported}
    ///      for a model not registered on this chain or whose input or output is hashed.
    function _inputLength(bytes32 modelId) internal view returns (uint256) {
        IModelRegistry registry = IGatewayRegistry(address(gateway)).registry();
        IModelRegistry.RequestTerms memory terms = registry.tryGetRequestTerms(modelId);
        if (
            terms.version == 0 || terms.inputVisibility != Visibility.Public
                || registry.tryGetVerificationTerms(modelId).outputVisibility != Visibility.Public
        ) revert SertnFacadeModelUnsupported(modelId);
        return terms.inputLength;
    }

    /// @dev What the gateway refunded for `requestId` (its escrow).
    function _escrowOf(uint256 requestId) internal view returns (uint256) {
        return gateway.getRequest(requestId).escrow;
    }

    /// @dev Pushes `amount` to `to` with bounded gas; if that fails it is held for `to` to {withdraw}.
    function _refund(address to, uint256 amount) internal {
        if (amount == 0) return;
        bool ok;
        assembly ("memory-safe") {
            ok := call(REFUND_GAS, to, amount, 0, 0, 0, 0)
        }
        if (!ok) {
            _owed[to] += amount;
            _held += amount;
            emit FacadeRefundDeferred(to, amount);
        }
    }
}
