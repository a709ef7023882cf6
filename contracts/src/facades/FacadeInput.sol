// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title FacadeInput
/// @notice The one input encoding of Sertn's drop-in oracle facades: another oracle's `bytes` input
///         is `abi.encode(int256[])`, the model's input at its input scale (round(x * 2^inputScale)),
///         flattened in row-major order; a result's output is `abi.encode(int256[])` at the model's
///         output scale. This library checks that bytes are exactly such an encoding before decoding
///         them, so that malformed input gets the facade's own error rather than a bare revert.
library FacadeInput {
    /// @notice The most elements an input may carry (the gateway's `MAX_INPUT_LENGTH`).
    uint256 internal constant MAX_ELEMENTS = 1024;

    /// @notice Decodes `data` as `abi.encode(int256[])`.
    /// @param data The bytes to decode.
    /// @return ok Whether `data` is exactly the standard encoding of an `int256[]` of at most
    ///         {MAX_ELEMENTS} elements (head offset 32, length word, one word per element, nothing more).
    /// @return values The decoded elements (empty when not `ok`).
    function decode(bytes memory data) internal pure returns (bool ok, int256[] memory values) {
        if (data.length < 64) return (false, values);
        uint256 offset;
        uint256 n;
        assembly ("memory-safe") {
            offset := mload(add(data, 0x20))
            n := mload(add(data, 0x40))
        }
        if (offset != 32 || n > MAX_ELEMENTS || data.length != 64 + 32 * n) return (false, values);
        return (true, abi.decode(data, (int256[])));
    }

    /// @notice Encodes a model's output (or input) as the facades hand it over: `abi.encode(int256[])`.
    function encode(int256[] memory values) internal pure returns (bytes memory) {
        return abi.encode(values);
    }
}
