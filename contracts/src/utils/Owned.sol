// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Owned
/// @notice Two-step ownership: the owner proposes, the new owner accepts.
abstract contract Owned {
    // ─────────────────────────────── Errors ───────────────────────────────

    /// @notice The caller is not the owner.
    /// @param caller The caller.
    error OwnedUnauthorized(address caller);

    /// @notice The zero address cannot own the contract.
    error OwnedZeroOwner();

    // ─────────────────────────────── Events ───────────────────────────────

    /// @notice An ownership transfer was proposed.
    /// @param owner The current owner.
    /// @param pendingOwner The proposed owner, who must accept.
    event OwnershipTransferStarted(address indexed owner, address indexed pendingOwner);

    /// @notice Ownership changed.
    /// @param previousOwner The former owner.
    /// @param newOwner The new owner.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    // ─────────────────────────────── State ────────────────────────────────

    address private _owner;
    address private _pendingOwner;

    constructor(address initialOwner) {
        if (initialOwner == address(0)) revert OwnedZeroOwner();
        _owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    modifier onlyOwner() {
        if (msg.sender != _owner) revert OwnedUnauthorized(msg.sender);
        _;
    }

    /// @notice The current owner.
    function owner() public view returns (address) {
        return _owner;
    }

    /// @notice The proposed owner, if any.
    function pendingOwner() public view returns (address) {
        return _pendingOwner;
    }

    /// @notice Proposes `newOwner`; ownership moves when they call {acceptOwnership}.
    function transferOwnership(address newOwner) external onlyOwner {
        _pendingOwner = newOwner;
        emit OwnershipTransferStarted(_owner, newOwner);
    }

    /// @notice Accepts a proposed ownership transfer.
    function acceptOwnership() external {
        if (msg.sender != _pendingOwner) revert OwnedUnauthorized(msg.sender);
        address previous = _owner;
        _owner = msg.sender;
        delete _pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }
}
