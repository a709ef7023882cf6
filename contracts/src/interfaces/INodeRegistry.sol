// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title INodeRegistry
/// @notice What a market (a contract that records requests) asks of the hub's node registry: open
///         each request as a job assigned to a node of the model's pool, and close it when the
///         assigned node serves it or the request is settled another way.
interface INodeRegistry {
    /// @notice Opens request `id` of the calling market as a job and assigns it. When no node has
    ///         capacity it returns zero, and the job is queued for capacity if `queue`, else not opened.
    function openJob(uint256 id, bytes32 modelId, uint32 units, address requester, uint40 deadline, bool queue)
        external
        returns (address node);

    /// @notice Closes job `id` of the calling market: served by `node` (which must be the assigned
    ///         one, or this reverts), or, with `node` zero, settled another way.
    function closeJob(uint256 id, address node) external;

    /// @notice Whether `market` opened a job for its request `id` (a request no pool can serve has none).
    function hasJob(address market, uint256 id) external view returns (bool);
}
