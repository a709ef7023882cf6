// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title PackedInts
/// @notice Signed integers packed at one width: each element the low `width` bytes of its two's
///         complement, big-endian, one after another. A batch's rows travel this way between
///         chains: the values of a quantized model fit in a few bytes, so the message stays small
///         (LayerZero's executors take 10,000 bytes by default) and its calldata cheap.
library PackedInts {
    /// @notice A packed array's length is not a multiple of its width, or the width is not 1 to 32.
    error PackedIntsMalformed(uint256 length, uint256 width);

    /// @notice The fewest bytes in which every element of `a` and `b` fits (at least 1).
    function widthOf(int256[] calldata a, int256[] calldata b) internal pure returns (uint8 width) {
        width = 1;
        width = _widen(a, width);
        width = _widen(b, width);
    }

    /// @notice `values` packed at `width` bytes each (each must fit: see {widthOf}).
    function pack(int256[] calldata values, uint8 width) internal pure returns (bytes memory out) {
        uint256 n = values.length;
        uint256 w = width;
        out = new bytes(n * w);
        uint256 shift = 256 - 8 * w;
        for (uint256 i; i < n; ++i) {
            uint256 v = uint256(values[i]) << shift;
            // Writes a whole word: the next element's write overwrites the spill (the last one's
            // spill lands past the array, in free memory, which nothing has claimed yet).
            assembly ("memory-safe") {
                mstore(add(add(out, 0x20), mul(i, w)), v)
            }
        }
        // The last element's spill: cleared, so that the bytes past the end are zero as Solidity expects.
        assembly ("memory-safe") {
            mstore(add(add(out, 0x20), mul(n, w)), 0)
        }
    }

    /// @notice The elements of `data` packed at `width` bytes each, sign-extended.
    function unpack(bytes calldata data, uint8 width) internal pure returns (int256[] memory values) {
        uint256 w = width;
        if (w == 0 || w > 32 || data.length % w != 0) revert PackedIntsMalformed(data.length, w);
        uint256 n = data.length / w;
        values = new int256[](n);
        uint256 shift = 256 - 8 * w;
        uint256 top = w - 1;
        for (uint256 i; i < n; ++i) {
            int256 v;
            assembly {
                v := signextend(top, shr(shift, calldataload(add(data.offset, mul(i, w)))))
            }
            values[i] = v;
        }
    }

    function _widen(int256[] calldata values, uint8 width) private pure returns (uint8) {
        for (uint256 i; i < values.length; ++i) {
            int256 v = values[i];
            // v fits in w bytes iff -2^(8w-1) <= v < 2^(8w-1), i.e. v ^ (v >> 255) < 2^(8w-1).
            uint256 m = uint256(v ^ (v >> 255));
            while (width < 32 && m >= (uint256(1) << (8 * uint256(width) - 1))) ++width;
        }
        return width;
    }
}
