// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CallbackStatus, IInferenceGateway} from "../interfaces/IInferenceGateway.sol";

/// @title Callback
/// @notice The one way Sertn contracts call a consumer back: isolated, so that a reverting,
///         gas-hungry or return-data-bombing callee cannot undo what called it.
library Callback {
    /// @dev Gas kept back, beyond the callback's limit and the 1/64 the EVM withholds, so that the
    ///      callback is sure to get its full limit.
    uint256 private constant RESERVE = 10_000;

    /// @notice Calls `target` with exactly `gasLimit` gas (reverting
    ///         {IInferenceGateway.GatewayInsufficientGasForCallback} if the caller has too little
    ///         left to guarantee it), copying no return data. An account without code is skipped.
    function call(address target, uint256 gasLimit, bytes memory data)
        internal
        returns (CallbackStatus status, uint256 gasUsed)
    {
        if (target.code.length == 0) return (CallbackStatus.Skipped, 0);
        uint256 required = gasLimit + gasLimit / 63 + RESERVE;
        if (gasleft() < required) revert IInferenceGateway.GatewayInsufficientGasForCallback(gasleft(), required);
        bool ok;
        assembly ("memory-safe") {
            let before := gas()
            ok := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
            gasUsed := sub(before, gas())
        }
        return (ok ? CallbackStatus.Succeeded : CallbackStatus.Failed, gasUsed);
    }
}
