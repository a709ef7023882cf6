// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SertnCopyReceiver} from "../SertnCopyReceiver.sol";
import {InferenceCopy} from "../interfaces/ISertnCopies.sol";

/// @notice Test receiver of fan-out copies: records each copy it is given, and how many calls it had.
/// @dev For tests only.
contract RecordingCopyReceiver is SertnCopyReceiver {
    /// @notice Calls received.
    uint256 public calls;
    mapping(bytes32 => InferenceCopy) private _copies;

    constructor(address deliverer) SertnCopyReceiver(deliverer) {}

    /// @notice The copy of request `requestId` of `gateway` on `origin` (all zero if none).
    function copyOf(uint32 origin, bytes32 gateway, uint256 requestId) external view returns (InferenceCopy memory) {
        return _copies[keccak256(abi.encode(origin, gateway, requestId))];
    }

    function _onInferenceCopy(InferenceCopy calldata copy) internal override {
        ++calls;
        _copies[keccak256(abi.encode(copy.origin, copy.gateway, copy.requestId))] = copy;
    }
}
