// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IResultErrors
/// @notice Why a contract that verifies results (a gateway, the hub market) rejects a node's
///         result or failure report. Declared once, so that the gateway's and the market's
///         rejections have one selector each and mean the same to a node.
interface IResultErrors {
    /// @notice The input sent with the result is not the request's input.
    /// @param requestId The request's id on the rejecting contract.
    error ResultInputMismatch(uint256 requestId);
    /// @notice The output does not have the model's number of elements.
    error ResultOutputShapeMismatch(uint256 expected, uint256 actual);
    /// @notice The verifier rejected the proof for the request's input and the claimed output.
    /// @param requestId The request's id on the rejecting contract.
    error ResultInvalidProof(uint256 requestId);
    /// @notice A failure report's reason is longer than the contract accepts.
    error ResultReasonTooLong(uint256 length, uint256 maxLength);
}
