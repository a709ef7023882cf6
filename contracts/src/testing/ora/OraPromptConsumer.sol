// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.9;

import "../../facades/ora/IAIOracle.sol";
import "../../facades/ora/AIOracleCallbackReceiver.sol";

/// @title OraPromptConsumer
/// @notice A consumer written the way ORA's developers write one against OAO's published
///         interfaces (a Prompt-style contract: per-model callback gas, `estimateFee`, a payable
///         request, an `onlyAIOracleCallback` callback that stores the output), with nothing of
///         Sertn in it; the tests deploy it unchanged against `SertnAIOracle`. Its input is the
///         model's input bytes rather than a text prompt.
contract OraPromptConsumer is AIOracleCallbackReceiver {
    /// @notice A result arrived.
    event promptsUpdated(uint256 requestId, uint256 modelId, bytes input, bytes output, bytes callbackData);

    /// @notice A request was sent.
    event promptRequest(uint256 requestId, address sender, uint256 modelId, bytes prompt);

    /// @notice A request and, once delivered, its output.
    struct AIOracleRequest {
        address sender;
        uint256 modelId;
        bytes input;
        bytes output;
    }

    address owner;

    modifier onlyOwner() {
        require(msg.sender == owner, "Only owner");
        _;
    }

    /// @notice Requests by id.
    mapping(uint256 => AIOracleRequest) public requests;

    /// @notice Callback gas per model.
    mapping(uint256 => uint64) public callbackGasLimit;

    /// @notice Binds the contract to an oracle.
    constructor(IAIOracle _aiOracle) AIOracleCallbackReceiver(_aiOracle) {
        owner = msg.sender;
    }

    /// @notice Sets the callback gas for a model.
    function setCallbackGasLimit(uint256 modelId, uint64 gasLimit) external onlyOwner {
        callbackGasLimit[modelId] = gasLimit;
    }

    /// @notice The oracle's callback: only the oracle may call it.
    function aiOracleCallback(uint256 requestId, bytes calldata output, bytes calldata callbackData)
        external
        override
        onlyAIOracleCallback
    {
        AIOracleRequest storage request = requests[requestId];
        require(request.sender != address(0), "request not exists");
        request.output = output;
        emit promptsUpdated(requestId, request.modelId, request.input, output, callbackData);
    }

    /// @notice The oracle's error callback: only the oracle may call it.
    function aiOracleCallbackError(uint256 requestId, AIOracleError code, bytes calldata message, bytes calldata callbackData)
        external
        override
        onlyAIOracleCallback
    {
        emit AICallbackError(requestId, code, message, callbackData);
    }

    /// @notice What a request of `modelId` costs.
    function estimateFee(uint256 modelId) public view returns (uint256) {
        return aiOracle.estimateFee(modelId, callbackGasLimit[modelId]);
    }

    /// @notice Requests the model's output on `input`, paying `msg.value`.
    function calculateAIResult(uint256 modelId, bytes calldata input) external payable returns (uint256) {
        uint256 requestId =
            aiOracle.requestCallback{value: msg.value}(modelId, input, address(this), callbackGasLimit[modelId], "");
        AIOracleRequest storage request = requests[requestId];
        request.input = input;
        request.sender = msg.sender;
        request.modelId = modelId;
        emit promptRequest(requestId, msg.sender, modelId, input);
        return requestId;
    }
}
