// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SertnConsumer} from "../SertnConsumer.sol";
import {IInferenceGateway, InferenceErrorCode} from "../interfaces/IInferenceGateway.sol";

/// @title ExampleClassifier
/// @notice A dApp that classifies a 4-feature record with a verified ML model and keeps the label.
///         Features are fixed-point at the model's input scale: x is passed as round(x * 2^12) for
///         the demo model. The label is the index of the highest output score.
/// @dev The callback keeps one storage slot per classification (label and winning score) and puts
///      all scores in an event: callback gas is paid by the requester, so store only what is read.
contract ExampleClassifier is SertnConsumer {
    /// @notice A classification's state.
    enum Status {
        None,
        Pending,
        Done,
        Failed
    }

    /// @notice One classification (one storage slot).
    struct Classification {
        /// @notice Its state.
        Status status;
        /// @notice The winning class (valid when Done).
        uint8 label;
        /// @notice The winning class's verified score at the model's output scale (valid when Done).
        int128 score;
    }

    /// @notice The features must be four values.
    error ExampleClassifierWrongFeatureCount(uint256 count);

    /// @notice A classification was requested.
    event ClassificationRequested(uint256 indexed requestId, address indexed by);
    /// @notice A verified classification arrived.
    event Classified(uint256 indexed requestId, uint8 label, int256[] scores);
    /// @notice A classification will not arrive; the payment came back to this contract.
    event ClassificationFailed(uint256 indexed requestId, InferenceErrorCode code, string reason);

    /// @notice The model this dApp uses.
    bytes32 public immutable modelId;
    /// @notice Gas reserved for our callback.
    uint32 public constant CALLBACK_GAS_LIMIT = 200_000;

    mapping(uint256 requestId => Classification) private _classifications;

    constructor(IInferenceGateway gateway_, bytes32 modelId_) SertnConsumer(gateway_) {
        modelId = modelId_;
    }

    /// @notice What {classify} costs.
    function price() external view returns (uint256) {
        return gateway.quote(modelId, CALLBACK_GAS_LIMIT);
    }

    /// @notice Classifies `features` (fixed-point), paying with `msg.value` (see {price}).
    function classify(int256[] calldata features) external payable returns (uint256 requestId) {
        if (features.length != 4) revert ExampleClassifierWrongFeatureCount(features.length);
        requestId = _requestInference(modelId, features, CALLBACK_GAS_LIMIT, msg.value);
        _classifications[requestId].status = Status.Pending;
        emit ClassificationRequested(requestId, msg.sender);
    }

    /// @notice A classification by request id.
    function classification(uint256 requestId) external view returns (Classification memory) {
        return _classifications[requestId];
    }

    function _onInferenceResult(uint256 requestId, int256[] calldata output) internal override {
        uint8 best;
        for (uint8 i = 1; i < output.length; ++i) {
            if (output[i] > output[best]) best = i;
        }
        _classifications[requestId] = Classification({status: Status.Done, label: best, score: int128(output[best])});
        emit Classified(requestId, best, output);
    }

    function _onInferenceError(uint256 requestId, InferenceErrorCode code, string calldata reason)
        internal
        override
    {
        _classifications[requestId].status = Status.Failed;
        emit ClassificationFailed(requestId, code, reason);
    }
}
