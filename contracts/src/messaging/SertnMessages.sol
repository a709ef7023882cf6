// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IInferenceGateway} from "../interfaces/IInferenceGateway.sol";

/// @title SertnMessages
/// @notice Versioned codec for hub → spoke messages: `kind (1 byte) ‖ abi.encode(payload)`.
/// @dev The first byte is the message kind; a new payload layout gets a new kind, never a changed
///      one. Kind 1, Result: `abi.encode(uint256 requestId, int256[] input, int256[] output,
///      bytes proof, StorageRefs refs, address node)` — exactly the argument encoding of
///      `SpokeGateway.deliverResult`, so the spoke can forward it without re-encoding.
library SertnMessages {
    /// @notice A verified-by-the-spoke inference result for a spoke request.
    uint8 internal constant RESULT = 1;

    /// @notice The message's kind is not one this recipient understands.
    error SertnMessagesUnknownKind(uint8 kind);

    function encodeResult(
        uint256 requestId,
        int256[] memory input,
        int256[] memory output,
        bytes memory proof,
        IInferenceGateway.StorageRefs memory refs,
        address node
    ) internal pure returns (bytes memory) {
        return abi.encodePacked(RESULT, abi.encode(requestId, input, output, proof, refs, node));
    }

    /// @notice The message's kind (0 if it is empty).
    function kind(bytes calldata body) internal pure returns (uint8) {
        return body.length == 0 ? 0 : uint8(body[0]);
    }

    /// @notice The payload after the kind byte.
    function payload(bytes calldata body) internal pure returns (bytes calldata) {
        return body[1:];
    }
}
