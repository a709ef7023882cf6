// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title FieldEncoding
/// @notice EZKL's encoding of signed fixed-point integers as BN254 scalar-field elements:
///         q when q >= 0, R - |q| when q < 0. The TypeScript twin is `core/field.ts`; the two
///         agree on every value (see test/integration/field-encoding.test.ts).
library FieldEncoding {
    /// @notice The BN254 scalar field modulus R.
    uint256 internal constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice The largest magnitude that encodes unambiguously: (R - 1) / 2.
    uint256 internal constant MAX_ABS_VALUE = (FIELD_MODULUS - 1) / 2;

    /// @notice A value whose magnitude exceeds (R - 1) / 2 cannot be encoded.
    /// @param value The offending value.
    error FieldEncodingOutOfRange(int256 value);

    /// @notice Encodes `value` as a field element.
    function toFelt(int256 value) internal pure returns (uint256) {
        if (value >= 0) {
            if (uint256(value) > MAX_ABS_VALUE) revert FieldEncodingOutOfRange(value);
            return uint256(value);
        }
        // |value| without overflowing at type(int256).min.
        uint256 magnitude = uint256(-(value + 1)) + 1;
        if (magnitude > MAX_ABS_VALUE) revert FieldEncodingOutOfRange(value);
        unchecked {
            return FIELD_MODULUS - magnitude;
        }
    }
}
