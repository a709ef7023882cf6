// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {FieldEncoding} from "../libraries/FieldEncoding.sol";

/// @notice Exposes {FieldEncoding} for differential tests against the TypeScript encoder.
/// @dev For tests only.
contract FieldEncodingHarness {
    /// @notice Encodes each value; a value that cannot be encoded yields (false, 0).
    function tryToFelts(int256[] calldata values) external view returns (bool[] memory ok, uint256[] memory felts) {
        ok = new bool[](values.length);
        felts = new uint256[](values.length);
        for (uint256 i; i < values.length; ++i) {
            try this.toFelt(values[i]) returns (uint256 f) {
                (ok[i], felts[i]) = (true, f);
            } catch {}
        }
    }

    /// @notice Encodes one value, reverting with FieldEncodingOutOfRange when it cannot.
    function toFelt(int256 value) external pure returns (uint256) {
        return FieldEncoding.toFelt(value);
    }
}
