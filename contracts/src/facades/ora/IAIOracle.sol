// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.9;

/// @title IAIOracle
/// @notice ORA's onchain AI oracle (OAO) interface, with the signatures, events and ABI that ORA
///         publishes, so that a contract written against OAO compiles and runs unchanged against
///         Sertn's facade (`SertnAIOracle`). Written for Sertn; no ORA code.
/// @dev On Sertn, `input` and the delivered `output` are `abi.encode(int256[])` at the mapped
///      model's input and output scales (see `FacadeInput`).
interface IAIOracle {
    /// @notice A callback request was accepted through {requestCallback}.
    /// @param account Who requested (and pays, and is refunded).
    /// @param requestId The request's id.
    /// @param modelId The oracle's model id.
    /// @param input The model's input.
    /// @param callbackContract Who is called back (zero: nobody).
    /// @param gasLimit Gas the callback gets.
    /// @param callbackData Data handed back to the callback unchanged.
    event AICallbackRequest(
        address indexed account,
        uint256 indexed requestId,
        uint256 modelId,
        bytes input,
        address callbackContract,
        uint64 gasLimit,
        bytes callbackData
    );

    /// @notice A request's result was delivered.
    /// @param account Who requested.
    /// @param requestId The request.
    /// @param invoker Who delivered the result.
    /// @param output The model's output.
    event AICallbackResult(address indexed account, uint256 indexed requestId, address invoker, bytes output);

    /// @notice Requests an inference whose result is delivered to `callbackContract`'s
    ///         `aiOracleCallback(requestId, output, callbackData)` with `gasLimit` gas.
    /// @param modelId The oracle's model id.
    /// @param input The model's input.
    /// @param callbackContract Who is called back (zero, with `gasLimit` zero: nobody).
    /// @param gasLimit Gas for the callback.
    /// @param callbackData Optional data handed back to the callback.
    /// @return The request's id.
    function requestCallback(
        uint256 modelId,
        bytes memory input,
        address callbackContract,
        uint64 gasLimit,
        bytes memory callbackData
    ) external payable returns (uint256);

    /// @notice What {requestCallback} costs for `modelId` with a callback of `gasLimit` gas.
    function estimateFee(uint256 modelId, uint256 gasLimit) external view returns (uint256);

    /// @notice Whether the request's result is final (it cannot change any more).
    function isFinalized(uint256 requestId) external view returns (bool);
}
