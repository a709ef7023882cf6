// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SertnConsumer} from "../SertnConsumer.sol";
import {IInferenceGateway, InferenceErrorCode} from "../interfaces/IInferenceGateway.sol";
import {Destination} from "../interfaces/ISertnCopies.sol";

/// @notice Test consumers that misbehave in their callbacks, to show the gateway stays safe.
/// @dev For tests only; never deploy these outside a test chain.
abstract contract TestConsumerBase is SertnConsumer {
    /// @notice Last request made.
    uint256 public lastRequestId;

    constructor(IInferenceGateway gateway_) SertnConsumer(gateway_) {}

    /// @notice Requests `input` on `modelId`, forwarding msg.value.
    function request(bytes32 modelId, int256[] calldata input, uint32 callbackGasLimit)
        external
        payable
        returns (uint256)
    {
        lastRequestId = _requestInference(modelId, input, callbackGasLimit, msg.value);
        return lastRequestId;
    }

    /// @notice Requests a fan-out (its result also to `destinations`), forwarding msg.value.
    function requestFanOut(IInferenceGateway.RequestParams calldata params, Destination[] calldata destinations)
        external
        payable
        returns (uint256)
    {
        lastRequestId = _requestInferenceFanOut(params, destinations, msg.value);
        return lastRequestId;
    }

    /// @notice Requests with every option (a hashed input's commitment and reference, pins).
    function requestWith(IInferenceGateway.RequestParams calldata params) external payable returns (uint256) {
        lastRequestId = _requestInferenceWith(params, msg.value);
        return lastRequestId;
    }

    function _onInferenceError(uint256, InferenceErrorCode, string calldata) internal virtual override {}
}

/// @notice Records results like a well-behaved consumer.
contract RecordingConsumer is TestConsumerBase {
    /// @notice Outputs received, by request id.
    mapping(uint256 => int256[]) private _outputs;
    /// @notice Error codes received, by request id (plus one; zero means none).
    mapping(uint256 => uint256) public errorCodePlusOne;
    /// @notice Hashed results received, by request id.
    mapping(uint256 => HashedResult) private _hashed;

    /// @notice A hashed result as delivered: the output's commitment and where the output is stored.
    struct HashedResult {
        uint256 commitment;
        bytes32 outputRef;
    }

    constructor(IInferenceGateway gateway_) TestConsumerBase(gateway_) {}

    function outputOf(uint256 requestId) external view returns (int256[] memory) {
        return _outputs[requestId];
    }

    function hashedResultOf(uint256 requestId) external view returns (HashedResult memory) {
        return _hashed[requestId];
    }

    function _onHashedInferenceResult(uint256 requestId, uint256 commitment, bytes32 outputRef) internal override {
        _hashed[requestId] = HashedResult({commitment: commitment, outputRef: outputRef});
    }

    function _onInferenceResult(uint256 requestId, int256[] calldata output) internal override {
        _outputs[requestId] = output;
    }

    function _onInferenceError(uint256 requestId, InferenceErrorCode code, string calldata) internal override {
        errorCodePlusOne[requestId] = uint256(code) + 1;
    }
}

/// @notice Reverts in every callback.
contract RevertingConsumer is TestConsumerBase {
    error RevertingConsumerNo();

    constructor(IInferenceGateway gateway_) TestConsumerBase(gateway_) {}

    function _onInferenceResult(uint256, int256[] calldata) internal pure override {
        revert RevertingConsumerNo();
    }

    function _onInferenceError(uint256, InferenceErrorCode, string calldata) internal pure override {
        revert RevertingConsumerNo();
    }
}

/// @notice Burns all the gas it is given.
contract GasGuzzlerConsumer is TestConsumerBase {
    uint256 public sink;

    constructor(IInferenceGateway gateway_) TestConsumerBase(gateway_) {}

    function _onInferenceResult(uint256, int256[] calldata) internal override {
        for (uint256 i; ; ++i) sink = i;
    }
}

/// @notice Returns a huge return-data blob, hoping the caller copies it.
contract ReturnBombConsumer is TestConsumerBase {
    constructor(IInferenceGateway gateway_) TestConsumerBase(gateway_) {}

    function _onInferenceResult(uint256, int256[] calldata) internal pure override {
        assembly {
            revert(0, 1000000)
        }
    }
}

/// @notice Refuses pushed ETH, so refunds to it must be held for withdrawal.
contract EthRefusingConsumer is TestConsumerBase {
    error EthRefusingConsumerNoEth();

    bool private _accepting;

    constructor(IInferenceGateway gateway_) TestConsumerBase(gateway_) {}

    function _onInferenceResult(uint256, int256[] calldata) internal override {}

    receive() external payable override {
        if (!_accepting) revert EthRefusingConsumerNoEth();
    }

    /// @notice Pulls held refunds.
    function pull() external {
        _accepting = true;
        gateway.withdraw();
        _accepting = false;
    }
}

/// @notice The most expensive requester to fail: refuses pushed ETH (its refund is held for
///         withdrawal, a new storage slot) and burns all the gas its error callback is given.
contract FailGuzzlerConsumer is TestConsumerBase {
    error FailGuzzlerConsumerNoEth();

    uint256 public sink;

    constructor(IInferenceGateway gateway_) TestConsumerBase(gateway_) {}

    function _onInferenceResult(uint256, int256[] calldata) internal override {}

    function _onInferenceError(uint256, InferenceErrorCode, string calldata) internal override {
        for (uint256 i; ; ++i) sink = i;
    }

    receive() external payable override {
        revert FailGuzzlerConsumerNoEth();
    }
}
