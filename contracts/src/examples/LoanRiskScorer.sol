// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SertnConsumer} from "../SertnConsumer.sol";
import {IInferenceGateway, InferenceErrorCode, RequestStatus} from "../interfaces/IInferenceGateway.sol";

/// @title LoanRiskScorer
/// @notice A worked example of a Sertn consumer: a lender grades each loan application's risk with
///         a verified ML model (one score per risk grade, grade 0 the safest) and approves it when
///         the best-scoring grade is at most {maxApprovedGrade}. It shows the parts every consumer has:
///         1. **Pin the model.** It asks for the model version and artifacts hash it was audited
///            against (`requestInferenceWith`): if the model's owner publishes a new circuit, new
///            requests revert `GatewayModelVersionMismatch` instead of silently scoring with it, and
///            a pending request cannot be answered by the new circuit either.
///         2. **Pay the quote.** The applicant pays {price} (`gateway.quote`); anything above it is
///            credited back to them. The gateway holds the payment in escrow until the result.
///         3. **Handle the result.** {_onInferenceResult} runs only when the gateway calls it, and
///            the gateway calls it only after it verified the result's proof against this very
///            request's input. It runs with {callbackGasLimit} gas: keep it small.
///         4. **Handle errors and refunds.** When a request will not be served (the node could not,
///            or the deadline passed), the gateway first sends the escrow back to this contract, then
///            calls {_onInferenceError}; the applicant withdraws it with {withdrawRefund}.
///         5. **Never handle a request twice, never lose one.** The gateway settles each request at
///            most once, and this contract checks again. If a callback ever fails (it ran out of gas
///            or reverted), the gateway settles the request regardless: {reconcile} reads the
///            request's final state from the gateway so that no application stays open forever.
/// @dev Features are fixed-point at the model's input scale (x is passed as round(x * 2^scale));
///      scores are at the model's output scale. The model has {riskGrades} outputs (the repository's
///      demo MLP, 4 features to 3 scores, has that shape with `riskGrades = 3`).
contract LoanRiskScorer is SertnConsumer {
    /// @notice Where an application stands.
    enum Decision {
        /// @notice No such application.
        None,
        /// @notice Requested; the verified score has not arrived.
        Pending,
        /// @notice Graded at most {maxApprovedGrade}.
        Approved,
        /// @notice Graded riskier than {maxApprovedGrade}.
        Declined,
        /// @notice Not served (the node failed it, or the deadline passed); the fee was refunded.
        Failed,
        /// @notice Served, but our callback failed (out of gas or reverted), so the verified score
        ///         never reached this contract; the fee went to the node. Only {reconcile} sets it.
        Unanswered
    }

    /// @notice One application.
    struct Application {
        /// @notice Who applied (and is owed any refund).
        address applicant;
        /// @notice Where it stands.
        Decision decision;
        /// @notice The verified risk grade: the best-scoring output (valid when Approved or Declined;
        ///         the scores themselves are in the {LoanScored} event: store only what is read).
        uint8 grade;
        /// @notice What the gateway holds in escrow for it: what comes back if it is not served.
        uint96 escrow;
    }

    /// @notice The applicant already has an application waiting for its score.
    error LoanRiskScorerApplicationOpen(uint256 requestId);
    /// @notice The payment does not cover {price}.
    error LoanRiskScorerUnderpaid(uint256 price, uint256 paid);
    /// @notice The request is not an application waiting for its score (unknown, or already handled).
    error LoanRiskScorerNotPending(uint256 requestId);
    /// @notice The model's output does not have one score per risk grade.
    error LoanRiskScorerWrongOutputLength(uint256 expected, uint256 actual);
    /// @notice The approval threshold names no risk grade.
    error LoanRiskScorerInvalidGrades(uint8 riskGrades, uint8 maxApprovedGrade);
    /// @notice The gateway has not settled the request yet, and its deadline has not passed.
    error LoanRiskScorerStillPending(uint256 requestId);
    /// @notice Nothing is owed to the caller.
    error LoanRiskScorerNothingToWithdraw(address account);
    /// @notice Sending the caller's refund failed.
    error LoanRiskScorerWithdrawFailed(address account, uint256 amount);

    /// @notice `applicant` applied; the score is requested as `requestId`.
    event LoanApplied(uint256 indexed requestId, address indexed applicant, uint256 paid);
    /// @notice A verified score arrived and decided the application.
    event LoanScored(uint256 indexed requestId, address indexed applicant, Decision decision, uint8 grade, int256[] scores);
    /// @notice The application will not be scored; its escrow was refunded and is owed to the applicant.
    event LoanScoringFailed(uint256 indexed requestId, address indexed applicant, InferenceErrorCode code, string reason);
    /// @notice The request was settled but our callback failed; found by {reconcile}.
    event LoanUnanswered(uint256 indexed requestId, address indexed applicant, RequestStatus status);

    /// @notice The model that scores applications.
    bytes32 public immutable modelId;
    /// @notice The model version this lender audited (0: accept whichever is current).
    uint32 public immutable modelVersion;
    /// @notice The model's artifacts hash (sha256 of its manifest) this lender audited (zero: any).
    bytes32 public immutable artifactsHash;
    /// @notice Risk grades the model scores (its outputs).
    uint8 public immutable riskGrades;
    /// @notice The riskiest grade this lender approves.
    uint8 public immutable maxApprovedGrade;
    /// @notice Gas the gateway gives our callbacks. Measure them and leave a margin: a callback
    ///         that runs out of gas loses the result (see {reconcile}), and each unit of gas is
    ///         paid for in the quote.
    uint32 public immutable callbackGasLimit;

    mapping(uint256 requestId => Application) private _applications;
    /// @notice The application `applicant` is waiting on (0: none).
    mapping(address applicant => uint256 requestId) public openApplicationOf;
    /// @notice Wei owed to each account: refunds of unserved applications, and overpayments.
    mapping(address account => uint256) public refundOf;

    /// @param gateway_ The Sertn gateway on this chain.
    /// @param modelId_ The scoring model.
    /// @param modelVersion_ The model version to pin (0: none).
    /// @param artifactsHash_ The artifacts hash to pin (zero: none).
    /// @param riskGrades_ Risk grades the model scores (its outputs).
    /// @param maxApprovedGrade_ The riskiest grade to approve (below `riskGrades_`).
    /// @param callbackGasLimit_ Gas for our callbacks (100,000 is ample for these).
    constructor(
        IInferenceGateway gateway_,
        bytes32 modelId_,
        uint32 modelVersion_,
        bytes32 artifactsHash_,
        uint8 riskGrades_,
        uint8 maxApprovedGrade_,
        uint32 callbackGasLimit_
    ) SertnConsumer(gateway_) {
        if (maxApprovedGrade_ >= riskGrades_) revert LoanRiskScorerInvalidGrades(riskGrades_, maxApprovedGrade_);
        modelId = modelId_;
        modelVersion = modelVersion_;
        artifactsHash = artifactsHash_;
        riskGrades = riskGrades_;
        maxApprovedGrade = maxApprovedGrade_;
        callbackGasLimit = callbackGasLimit_;
    }

    /// @notice What an application costs now: the gateway's quote for the model and our callback gas.
    function price() public view returns (uint256) {
        return gateway.quote(modelId, callbackGasLimit);
    }

    /// @notice Applies for a loan: requests a verified score of `features` (fixed-point, at the
    ///         model's input scale), paying {price} from `msg.value` (the rest is credited to the
    ///         caller, see {withdrawRefund}). One open application per applicant.
    /// @dev The gateway's checks bubble up as its custom errors: `GatewayInputShapeMismatch` (wrong
    ///      number of features), `GatewayInputOutOfRange`, `GatewayModelVersionMismatch` /
    ///      `GatewayModelArtifactsMismatch` (the model changed since this lender pinned it),
    ///      `GatewayModelInactive`.
    /// @return requestId The request's id on the gateway (the application's id here).
    function applyForLoan(int256[] calldata features) external payable returns (uint256 requestId) {
        uint256 open = openApplicationOf[msg.sender];
        if (open != 0) revert LoanRiskScorerApplicationOpen(open);
        uint256 cost = price();
        if (msg.value < cost) revert LoanRiskScorerUnderpaid(cost, msg.value);

        requestId = _requestInferenceWith(
            IInferenceGateway.RequestParams({
                modelId: modelId,
                input: features,
                inputRef: bytes32(0),
                callbackGasLimit: callbackGasLimit,
                modelVersion: modelVersion,
                artifactsHash: artifactsHash,
                failIfNoCapacity: false
            }),
            cost
        );
        // What comes back if the request is not served: the escrow, as the gateway recorded it (on a
        // spoke it is less than the price, which also paid for cross-chain messages).
        uint96 escrow = gateway.getRequest(requestId).escrow;
        _applications[requestId] =
            Application({applicant: msg.sender, decision: Decision.Pending, grade: 0, escrow: escrow});
        openApplicationOf[msg.sender] = requestId;
        if (msg.value > cost) refundOf[msg.sender] += msg.value - cost;
        emit LoanApplied(requestId, msg.sender, cost);
    }

    /// @notice An application by its request id.
    function application(uint256 requestId) external view returns (Application memory) {
        return _applications[requestId];
    }

    /// @notice Closes an application whose request the gateway settled without a successful
    ///         callback (it ran out of gas or reverted), or whose deadline passed with no answer
    ///         (it asks the gateway for the refund, which calls {_onInferenceError}). Anyone may call it.
    /// @dev A failed error callback leaves the refund here unassigned: this assigns it. A failed
    ///      result callback lost the verified score (it is in the gateway's `InferenceFulfilled`
    ///      event, but no contract can read events): the application ends Unanswered, and the
    ///      applicant may apply again.
    function reconcile(uint256 requestId) external {
        Application storage a = _pendingApplication(requestId);
        IInferenceGateway.Request memory r = gateway.getRequest(requestId);
        if (r.status == RequestStatus.Pending) {
            if (block.timestamp <= r.deadline) revert LoanRiskScorerStillPending(requestId);
            // Refunds the escrow to this contract and calls _onInferenceError back.
            gateway.refund(requestId);
            if (a.decision != Decision.Pending) return;
            r.status = RequestStatus.Refunded;
        }
        address applicant = a.applicant;
        delete openApplicationOf[applicant];
        if (r.status == RequestStatus.Fulfilled) {
            a.decision = Decision.Unanswered;
        } else {
            // Failed or Refunded: the gateway sent the escrow here before its callback failed.
            a.decision = Decision.Failed;
            refundOf[applicant] += a.escrow;
        }
        emit LoanUnanswered(requestId, applicant, r.status);
    }

    /// @notice Sends the caller what it is owed (refunds and overpayments).
    function withdrawRefund() external {
        uint256 amount = refundOf[msg.sender];
        if (amount == 0) revert LoanRiskScorerNothingToWithdraw(msg.sender);
        delete refundOf[msg.sender];
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert LoanRiskScorerWithdrawFailed(msg.sender, amount);
    }

    /// @dev The verified score: only the gateway reaches here (SertnConsumer checks the caller),
    ///      only after verifying the proof against this request's input and the pinned model.
    ///      Reverting here is safe (the request is settled regardless, see {reconcile}) but loses
    ///      the result: check only what cannot happen unless something is badly wrong.
    function _onInferenceResult(uint256 requestId, int256[] calldata output) internal override {
        Application storage a = _pendingApplication(requestId);
        if (output.length != riskGrades) revert LoanRiskScorerWrongOutputLength(riskGrades, output.length);
        uint8 grade;
        for (uint8 i = 1; i < output.length; ++i) {
            if (output[i] > output[grade]) grade = i;
        }
        Decision decision = grade <= maxApprovedGrade ? Decision.Approved : Decision.Declined;
        // Applicant, decision and grade share a slot: one storage write.
        a.decision = decision;
        a.grade = grade;
        address applicant = a.applicant;
        delete openApplicationOf[applicant];
        emit LoanScored(requestId, applicant, decision, grade, output);
    }

    /// @dev The request will not be served: the gateway has already sent its escrow to this
    ///      contract (through `receive`), so it is owed to the applicant.
    function _onInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason)
        internal
        override
    {
        Application storage a = _pendingApplication(requestId);
        a.decision = Decision.Failed;
        address applicant = a.applicant;
        refundOf[applicant] += a.escrow;
        delete openApplicationOf[applicant];
        emit LoanScoringFailed(requestId, applicant, code, reason);
    }

    /// @dev The application of `requestId`, which must be waiting for its score: a request is
    ///      handled once, and a request this contract did not make is never handled.
    function _pendingApplication(uint256 requestId) private view returns (Application storage a) {
        a = _applications[requestId];
        if (a.decision != Decision.Pending) revert LoanRiskScorerNotPending(requestId);
    }
}
