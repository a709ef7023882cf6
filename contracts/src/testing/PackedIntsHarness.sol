// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {PackedInts} from "../libraries/PackedInts.sol";

/// @notice Exposes {PackedInts} for the tests.
contract PackedIntsHarness {
    /// @notice The width `values` pack at, the packed bytes, and what unpacking them gives back.
    function roundTrip(int256[] calldata values)
        external
        view
        returns (uint8 width, bytes memory packed, int256[] memory unpacked)
    {
        width = PackedInts.widthOf(values, values[:0]);
        packed = PackedInts.pack(values, width);
        unpacked = this.unpack(packed, width);
    }

    function unpack(bytes calldata data, uint8 width) external pure returns (int256[] memory) {
        return PackedInts.unpack(data, width);
    }
}
