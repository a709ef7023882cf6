// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.9;

import {IAIOracle} from "./IAIOracle.sol";

/// @title AIOracleCallbackReceiver
/// @notice The base contract of an ORA OAO consumer, with the members and ABI that ORA publishes
///         (the `aiOracle` binding, the `onlyAIOracleCallback` guard, the `aiOracleCallback` and
///         `aiOracleCallbackError` entry points), so that an ORA consumer inherits it unchanged and
///         points it at Sertn's `SertnAIOracle`. Written for Sertn; no ORA code.
abstract contract AIOracleCallbackReceiver {
    /// @notice The oracle this receiver accepts callbacks from.
    IAIOracle public immutable aiOracle;

    /// @notice A callback came from someone other than {aiOracle}.
    /// @param expected The oracle.
    /// @param found The caller.
    error UnauthorizedCallbackSource(IAIOracle expected, IAIOracle found);

    /// @notice Why the oracle could not serve a request.
    enum AIOracleError {
        /// @notice The input could not be used by the model.
        InvalidInput,
        /// @notice A batch request's size did not cover its inferences (unused by Sertn).
        InvalidBatchSize
    }

    /// @notice The oracle reported an error for a request.
    /// @param requestId The request.
    /// @param code Why.
    /// @param message Details (may be empty).
    /// @param callbackData The request's callback data.
    event AICallbackError(uint256 indexed requestId, AIOracleError indexed code, bytes message, bytes callbackData);

    /// @param _aiOracle The oracle (on Sertn: the chain's `SertnAIOracle`).
    constructor(IAIOracle _aiOracle) {
        aiOracle = _aiOracle;
    }

    /// @notice Lets only {aiOracle} through.
    modifier onlyAIOracleCallback() {
        IAIOracle found = IAIOracle(msg.sender);
        if (found != aiOracle) revert UnauthorizedCallbackSource(aiOracle, found);
        _;
    }

    /// @notice Receives a request's result; guard it with {onlyAIOracleCallback}.
    /// @param requestId The request.
    /// @param output The model's output (on Sertn: proven, verified on this chain, `abi.encode(int256[])`).
    /// @param callbackData The request's callback data.
    function aiOracleCallback(uint256 requestId, bytes calldata output, bytes calldata callbackData) external virtual;

    /// @notice Whether the request's result is final, as the oracle says.
    function isFinalized(uint256 requestId) external view returns (bool) {
        return aiOracle.isFinalized(requestId);
    }

    /// @notice Receives an error for a request; by default emits {AICallbackError}. Override it
    ///         with {onlyAIOracleCallback} to act on errors.
    /// @param requestId The request.
    /// @param code Why.
    /// @param message Details (may be empty).
    /// @param callbackData The request's callback data.
    function aiOracleCallbackError(
        uint256 requestId,
        AIOracleError code,
        bytes calldata message,
        bytes calldata callbackData
    ) external virtual {
        emit AICallbackError(requestId, code, message, callbackData);
    }
}
