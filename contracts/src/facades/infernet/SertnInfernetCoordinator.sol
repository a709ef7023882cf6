// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CallbackStatus, IInferenceGateway, InferenceErrorCode} from "../../interfaces/IInferenceGateway.sol";
import {Callback} from "../../libraries/Callback.sol";
import {FacadeInput} from "../FacadeInput.sol";
import {SertnFacade} from "../SertnFacade.sol";
import {IInfernetConsumer, IInfernetCoordinator, IInfernetRegistry} from "./IInfernet.sol";

/// @title SertnInfernetCoordinator
/// @notice Ritual Infernet's registry and coordinator on Sertn, for one-time callback requests: a
///         consumer written with infernet-sdk v1.x's `CallbackConsumer` is deployed with this
///         contract's address as its registry and gets results proven in zero knowledge and
///         verified on this chain through `rawReceiveCompute`.
/// @dev A request's life:
///      1. The consumer's `_requestCompute` calls {createSubscription}: the container id must be
///         mapped to a Sertn model ({setContainer}); the fee (the gateway's quote for the model with
///         the container's callback gas plus the facade's) is reserved from the consumer's ETH
///         deposit ({deposit}); the consumer then stores the inputs, as the SDK does.
///      2. The Sertn node's keeper, watching {SubscriptionCreated} as Infernet nodes do, calls
///         {dispatch} once the subscription is confirmed (anyone else may call it first: the
///         dApp's front end, another keeper), which reads the inputs from the consumer's
///         `getContainerInputs` as an Infernet node would, checks they are `abi.encode(int256[])`
///         of the model's input length, and requests the inference from the gateway with the
///         reserved fee.
///      3. Only the gateway's verified-result callback delivers: `rawReceiveCompute(subscriptionId,
///         1, 1, gateway, abi.encode(keccak256(inputs)), abi.encode(output), "", 0, 0)` with the
///         container's gas limit, at most once. If Sertn cannot serve the request, the gateway's
///         refund goes back to the consumer's deposit (Infernet has no error callback).
contract SertnInfernetCoordinator is IInfernetRegistry, IInfernetCoordinator, SertnFacade {
    // ─────────────────────────────── Types ────────────────────────────────

    /// @notice A subscription's state.
    enum Status {
        /// @notice No such subscription.
        None,
        /// @notice Created, its fee reserved; waiting for {dispatch} (by the node's keeper, or anyone).
        Created,
        /// @notice Sent to Sertn; no result yet.
        Requested,
        /// @notice Its verified result was delivered.
        Fulfilled,
        /// @notice Sertn could not serve it; its payment went back to the consumer's deposit.
        Failed,
        /// @notice Cancelled by its owner before dispatch; its fee went back to the deposit.
        Cancelled
    }

    /// @notice What a container id maps to.
    struct Container {
        /// @notice The Sertn model.
        bytes32 modelId;
        /// @notice Gas the consumer's `rawReceiveCompute` gets.
        uint32 callbackGasLimit;
    }

    /// @notice A one-time subscription as stored.
    struct Subscription {
        /// @notice The consumer that created it (called back and refunded).
        address owner;
        /// @notice Its state.
        Status status;
        /// @notice Gas the consumer's callback gets.
        uint32 callbackGasLimit;
        /// @notice The fee reserved from the owner's deposit (paid to the gateway on dispatch).
        uint96 fee;
        /// @notice The Sertn model.
        bytes32 modelId;
        /// @notice The gateway's request id, once dispatched.
        uint256 requestId;
        /// @notice keccak256 of the inputs it was dispatched with.
        bytes32 inputsHash;
    }

    // ─────────────────────────────── Errors ───────────────────────────────

    /// @notice No Sertn model is mapped to this container id on this chain.
    error SertnInfernetUnknownContainer(string containerId);
    /// @notice Only one-time, eager subscriptions are served (frequency 1, period 0, not lazy).
    error SertnInfernetUnsupportedSubscription(uint32 frequency, uint32 period, bool lazy);
    /// @notice Only a redundancy of 1 is served: one verified result is the answer.
    error SertnInfernetUnsupportedRedundancy(uint16 redundancy);
    /// @notice Only ETH pays (`paymentToken` zero).
    error SertnInfernetUnsupportedPaymentToken(address paymentToken);
    /// @notice The subscription's `paymentAmount` (when not zero) is below the fee.
    error SertnInfernetPaymentTooLow(uint256 required, uint256 paymentAmount);
    /// @notice The consumer's deposit does not cover the fee: {deposit} more.
    error SertnInfernetInsufficientBalance(address consumer, uint256 required, uint256 balance);
    /// @notice The consumer's inputs are not `abi.encode(int256[])` (see `FacadeInput`).
    error SertnInfernetInvalidInput(uint32 subscriptionId, uint256 length);
    /// @notice The inputs do not have the model's number of elements.
    error SertnInfernetInputShapeMismatch(uint32 subscriptionId, uint256 expected, uint256 actual);
    /// @notice The caller does not own the subscription.
    error SertnInfernetNotSubscriptionOwner(uint32 subscriptionId, address caller);
    /// @notice The subscription is not waiting for dispatch (unknown, dispatched, or ended).
    error SertnInfernetSubscriptionNotOpen(uint32 subscriptionId, Status status);
    /// @notice The gateway called back for a request this facade does not hold pending.
    error SertnInfernetRequestNotPending(uint256 requestId);
    /// @notice A withdrawal above the caller's deposit.
    error SertnInfernetWithdrawTooMuch(uint256 amount, uint256 balance);

    // ─────────────────────────────── Events ───────────────────────────────

    /// @notice The owner mapped a container id to a Sertn model (zero model: unmapped).
    event InfernetContainerMapped(string containerId, bytes32 indexed modelId, uint32 callbackGasLimit);
    /// @notice `amount` was deposited for `consumer` by `from`.
    event InfernetDeposited(address indexed consumer, address indexed from, uint256 amount);
    /// @notice `consumer` withdrew `amount` of its deposit.
    event InfernetWithdrawn(address indexed consumer, uint256 amount);
    /// @notice A subscription was sent to Sertn as gateway request `requestId`.
    event InfernetSubscriptionDispatched(uint32 indexed id, uint256 indexed requestId, address dispatcher);
    /// @notice The consumer's `rawReceiveCompute` was called; `succeeded` is false if it reverted or ran out of gas.
    event InfernetCallbackCalled(uint32 indexed id, bool succeeded);
    /// @notice Sertn could not serve a subscription: `refund` went back to its owner's deposit.
    event InfernetSubscriptionFailed(
        uint32 indexed id, uint256 indexed requestId, InferenceErrorCode code, string reason, uint256 refund
    );

    // ─────────────────────────────── State ────────────────────────────────

    /// @notice The id the next subscription gets (1-based, as Infernet's).
    uint32 public id = 1;

    mapping(bytes32 => Container) private _containers;
    mapping(uint32 => Subscription) private _subscriptions;
    mapping(uint256 => uint32) private _subscriptionOfRequest;
    mapping(address => uint256) private _balances;

    /// @param owner_ Who maps container ids to Sertn models.
    /// @param gateway_ This chain's Sertn gateway (hub `InferenceGateway` or `SpokeGateway`).
    constructor(address owner_, IInferenceGateway gateway_) SertnFacade(owner_, gateway_) {}

    // ─────────────────────────────── Owner ────────────────────────────────

    /// @notice Maps container id `containerId` to Sertn model `modelId` (zero: unmaps it), whose
    ///         consumers' callbacks get `callbackGasLimit` gas.
    function setContainer(string calldata containerId, bytes32 modelId, uint32 callbackGasLimit) external onlyOwner {
        _containers[keccak256(bytes(containerId))] = Container(modelId, callbackGasLimit);
        emit InfernetContainerMapped(containerId, modelId, callbackGasLimit);
    }

    // ─────────────────────────────── Registry ─────────────────────────────

    /// @inheritdoc IInfernetRegistry
    /// @dev This contract: it is the registry and the coordinator.
    function COORDINATOR() external view returns (address) {
        return address(this);
    }

    /// @inheritdoc IInfernetRegistry
    /// @dev Zero: lazy subscriptions are not served.
    function INBOX() external pure returns (address) {
        return address(0);
    }

    // ─────────────────────────────── Deposits ─────────────────────────────

    /// @notice Deposits `msg.value` for `consumer`'s requests.
    function deposit(address consumer) external payable {
        _balances[consumer] += msg.value;
        _held += msg.value;
        emit InfernetDeposited(consumer, msg.sender, msg.value);
    }

    /// @notice What `consumer` has deposited and not spent or reserved.
    function balanceOf(address consumer) external view returns (uint256) {
        return _balances[consumer];
    }

    /// @notice Withdraws `amount` of the caller's deposit (a consumer contract calls it itself).
    function withdrawBalance(uint256 amount) external nonReentrant {
        uint256 balance = _balances[msg.sender];
        if (amount > balance) revert SertnInfernetWithdrawTooMuch(amount, balance);
        _balances[msg.sender] = balance - amount;
        _held -= amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert SertnFacadeWithdrawFailed(msg.sender, amount);
        emit InfernetWithdrawn(msg.sender, amount);
    }

    // ─────────────────────────────── Coordinator ──────────────────────────

    /// @notice The fee of one request of `containerId` (the gateway's quote with the container's
    ///         callback gas and the facade's).
    function feeOf(string calldata containerId) external view returns (uint256) {
        Container memory c = _containerOf(containerId);
        return gateway.quote(c.modelId, _sertnGas(c.callbackGasLimit));
    }

    /// @inheritdoc IInfernetCoordinator
    /// @dev Serves one-time requests only: reverts {SertnInfernetUnknownContainer},
    ///      {SertnInfernetUnsupportedSubscription}, {SertnInfernetUnsupportedRedundancy},
    ///      {SertnInfernetUnsupportedPaymentToken}, {SertnInfernetPaymentTooLow} or
    ///      {SertnInfernetInsufficientBalance}. `wallet` and `verifier` are ignored.
    function createSubscription(
        string memory containerId,
        uint32 frequency,
        uint32 period,
        uint16 redundancy,
        bool lazy,
        address paymentToken,
        uint256 paymentAmount,
        address,
        address
    ) external nonReentrant returns (uint32 subscriptionId) {
        Container memory c = _containerOf(containerId);
        if (frequency != 1 || period != 0 || lazy) revert SertnInfernetUnsupportedSubscription(frequency, period, lazy);
        if (redundancy != 1) revert SertnInfernetUnsupportedRedundancy(redundancy);
        if (paymentToken != address(0)) revert SertnInfernetUnsupportedPaymentToken(paymentToken);
        uint256 fee = gateway.quote(c.modelId, _sertnGas(c.callbackGasLimit));
        if (paymentAmount != 0 && paymentAmount < fee) revert SertnInfernetPaymentTooLow(fee, paymentAmount);
        uint256 balance = _balances[msg.sender];
        if (balance < fee) revert SertnInfernetInsufficientBalance(msg.sender, fee, balance);
        _balances[msg.sender] = balance - fee;

        subscriptionId = id++;
        Subscription storage s = _subscriptions[subscriptionId];
        s.owner = msg.sender;
        s.status = Status.Created;
        s.callbackGasLimit = c.callbackGasLimit;
        s.fee = uint96(fee);
        s.modelId = c.modelId;
        emit SubscriptionCreated(subscriptionId);
    }

    /// @inheritdoc IInfernetCoordinator
    /// @dev Before {dispatch} only: the reserved fee goes back to the owner's deposit. A dispatched
    ///      request is paid for and will be answered.
    function cancelSubscription(uint32 subscriptionId) external nonReentrant {
        Subscription storage s = _subscriptions[subscriptionId];
        if (s.owner != msg.sender) revert SertnInfernetNotSubscriptionOwner(subscriptionId, msg.sender);
        if (s.status != Status.Created) revert SertnInfernetSubscriptionNotOpen(subscriptionId, s.status);
        s.status = Status.Cancelled;
        _balances[msg.sender] += s.fee;
        emit SubscriptionCancelled(subscriptionId);
    }

    /// @notice Sends a created subscription to Sertn: reads its inputs from the consumer's
    ///         `getContainerInputs(subscriptionId, 1, now, this)`, checks them, and requests the
    ///         inference with the reserved fee. The node's keeper calls it for every subscription
    ///         it sees created; anyone may call it, once per subscription (a second call reverts
    ///         {SertnInfernetSubscriptionNotOpen}).
    /// @return requestId The gateway's request id.
    function dispatch(uint32 subscriptionId) external nonReentrant returns (uint256 requestId) {
        Subscription storage s = _subscriptions[subscriptionId];
        if (s.status != Status.Created) revert SertnInfernetSubscriptionNotOpen(subscriptionId, s.status);
        bytes memory inputs =
            IInfernetConsumer(s.owner).getContainerInputs(subscriptionId, 1, uint32(block.timestamp), address(this));
        (bool ok, int256[] memory values) = FacadeInput.decode(inputs);
        if (!ok) revert SertnInfernetInvalidInput(subscriptionId, inputs.length);
        uint256 expected = _inputLength(s.modelId);
        if (values.length != expected) revert SertnInfernetInputShapeMismatch(subscriptionId, expected, values.length);
        s.status = Status.Requested;
        s.inputsHash = keccak256(inputs);
        _held -= s.fee;
        requestId = _requestInference(s.modelId, values, _sertnGas(s.callbackGasLimit), s.fee);
        s.requestId = requestId;
        _subscriptionOfRequest[requestId] = subscriptionId;
        emit InfernetSubscriptionDispatched(subscriptionId, requestId, msg.sender);
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @notice A subscription by id.
    function getSubscription(uint32 subscriptionId) external view returns (Subscription memory) {
        return _subscriptions[subscriptionId];
    }

    /// @notice The subscription a gateway request serves (zero: none).
    function subscriptionOfRequest(uint256 requestId) external view returns (uint32) {
        return _subscriptionOfRequest[requestId];
    }

    /// @notice What container id `containerId` maps to (a zero model: nothing).
    function containerOf(string calldata containerId) external view returns (Container memory) {
        return _containers[keccak256(bytes(containerId))];
    }

    // ─────────────────────────────── Gateway callbacks ────────────────────

    /// @dev The verified output, from the gateway only (checked by `SertnConsumer`): marks the
    ///      subscription fulfilled, then calls the consumer with its gas limit, isolated.
    function _onInferenceResult(uint256 requestId, int256[] calldata output) internal override {
        uint32 subscriptionId = _subscriptionOfRequest[requestId];
        Subscription storage s = _subscriptions[subscriptionId];
        if (subscriptionId == 0 || s.status != Status.Requested) revert SertnInfernetRequestNotPending(requestId);
        s.status = Status.Fulfilled;
        (CallbackStatus cs,) = Callback.call(
            s.owner,
            s.callbackGasLimit,
            abi.encodeCall(
                IInfernetConsumer.rawReceiveCompute,
                (
                    subscriptionId,
                    1,
                    1,
                    address(gateway),
                    abi.encode(s.inputsHash),
                    FacadeInput.encode(output),
                    "",
                    bytes32(0),
                    0
                )
            )
        );
        emit InfernetCallbackCalled(subscriptionId, cs == CallbackStatus.Succeeded);
        emit SubscriptionFulfilled(subscriptionId, address(gateway));
    }

    /// @dev The gateway refunded the request (paid before this call): the refund goes back to the
    ///      owner's deposit.
    function _onInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason) internal override {
        uint32 subscriptionId = _subscriptionOfRequest[requestId];
        Subscription storage s = _subscriptions[subscriptionId];
        if (subscriptionId == 0 || s.status != Status.Requested) revert SertnInfernetRequestNotPending(requestId);
        s.status = Status.Failed;
        uint256 refund = _escrowOf(requestId);
        _balances[s.owner] += refund;
        _held += refund;
        emit InfernetSubscriptionFailed(subscriptionId, requestId, code, reason, refund);
    }

    function _containerOf(string memory containerId) private view returns (Container memory c) {
        c = _containers[keccak256(bytes(containerId))];
        if (c.modelId == bytes32(0)) revert SertnInfernetUnknownContainer(containerId);
    }
}
