// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {Owned} from "./utils/Owned.sol";

/// @title NodeRegistry
/// @notice The hub's book of operators: each node stakes, registers for models with a capacity in
///         compute units per epoch, and is active from the epoch after the one it registered in.
///         Leaving takes effect at the next epoch boundary; stake comes back only after an
///         unbonding period that covers every request the node may still hold. The market (set by
///         the owner) spends a node's capacity as it assigns requests, and slashes and counts the
///         misses of a node that let its window pass; a node with too many misses in an epoch is
///         suspended for the rest of it.
/// @dev Epochs are `epochLength` blocks counted from the deployment block. Stake is in the chain's
///      native token. A node's stake backs all its pools; each model sets the minimum it needs.
contract NodeRegistry is Owned {
    /// @notice The stake is below what the model requires of its nodes.
    error NodeRegistryStakeBelowMinimum(bytes32 modelId, uint256 required, uint256 staked);
    /// @notice The hub's registry has no such model.
    error NodeRegistryUnknownModel(bytes32 modelId);
    /// @notice A node must commit some capacity.
    error NodeRegistryZeroCapacity();
    /// @notice The node is registered (and not leaving) for this model already.
    error NodeRegistryAlreadyRegistered(address node, bytes32 modelId);
    /// @notice The node is not registered for this model (or is leaving it already).
    error NodeRegistryNotRegistered(address node, bytes32 modelId);
    /// @notice Stake can only be withdrawn once the node serves no pool and its unbonding ended.
    error NodeRegistryUnbonding(address node, uint256 untilEpoch);
    /// @notice The node still serves (or will serve) a pool: leave every pool first.
    error NodeRegistryStillRegistered(address node, uint256 pools);
    /// @notice Nothing to withdraw (never staked, or withdrawn already).
    error NodeRegistryNothingToWithdraw(address node);
    /// @notice Only the market may do this.
    error NodeRegistryNotMarket(address caller);
    /// @notice The node's remaining capacity in this epoch does not cover the units.
    error NodeRegistryCapacityExceeded(address node, bytes32 modelId, uint256 remaining, uint256 units);
    /// @notice The node is not active for the model in this epoch.
    error NodeRegistryNotActive(address node, bytes32 modelId, uint256 epoch);
    /// @notice A slash larger than the stake, or shares that do not add up.
    error NodeRegistryInvalidSlash(uint256 amount, uint256 stake);
    /// @notice An invalid parameter (zero epoch length, zero address).
    error NodeRegistryInvalidParameter();
    /// @notice No active node of the model's pool has `units` of capacity left in this epoch.
    error NodeRegistryNoCapacity(bytes32 modelId, uint256 units, uint256 epoch);
    /// @notice The model's pool is full (assignment walks every node of it).
    error NodeRegistryPoolFull(bytes32 modelId, uint256 maxPoolSize);
    /// @notice A native transfer failed.
    error NodeRegistryTransferFailed(address to, uint256 amount);

    event Staked(address indexed node, uint256 amount, uint256 total);
    event Registered(address indexed node, bytes32 indexed modelId, uint64 capacity, uint256 activeFrom);
    event Left(address indexed node, bytes32 indexed modelId, uint256 activeUntil);
    event Withdrawn(address indexed node, uint256 amount);
    event CapacityUsed(address indexed node, bytes32 indexed modelId, uint256 indexed epoch, uint256 units, uint256 used);
    event Slashed(address indexed node, uint256 amount, address indexed toRequester, uint256 requesterShare, uint256 misses);
    event Suspended(address indexed node, uint256 indexed epoch, uint256 misses);
    event MinimumStakeSet(bytes32 indexed modelId, uint256 amount);
    event MarketSet(address indexed market);
    event MaxMissesSet(uint256 maxMisses);
    event Assigned(address indexed node, bytes32 indexed modelId, uint256 indexed epoch, bytes32 seed, uint256 units);

    /// @notice A node's registration for one model.
    struct Membership {
        /// @notice Committed compute units per epoch.
        uint64 capacity;
        /// @notice The first epoch it is active in.
        uint64 activeFrom;
        /// @notice The first epoch it is no longer active in (max when not leaving).
        uint64 activeUntil;
    }

    /// @notice Blocks per epoch.
    uint256 public immutable epochLength;
    /// @notice Epochs a node's stake stays bonded after its last pool ends.
    uint256 public immutable unbondingEpochs;
    /// @notice The block epoch 0 starts at.
    uint256 public immutable genesisBlock;
    /// @notice The hub's model registry.
    IModelRegistry public immutable registry;

    /// @notice The market: spends capacity, slashes.
    address public market;
    /// @notice Misses in one epoch after which a node is suspended for the rest of it (0: never).
    uint256 public maxMissesPerEpoch;
    /// @notice Slashed stake the protocol kept (withdrawable by the owner).
    uint256 public protocolBalance;

    mapping(bytes32 modelId => uint256) public minimumStake;
    mapping(address node => uint256) private _stake;
    mapping(address node => uint256) private _unbondingUntil;
    mapping(address node => uint256) private _pools;
    mapping(address node => mapping(bytes32 modelId => Membership)) private _memberships;
    mapping(bytes32 modelId => address[]) private _poolNodes;
    mapping(address node => mapping(bytes32 modelId => mapping(uint256 epoch => uint256))) private _used;
    mapping(address node => mapping(uint256 epoch => uint256)) private _misses;

    uint64 private constant FOREVER = type(uint64).max;
    /// @notice The most nodes a model's pool holds (assignment walks them all).
    uint256 public constant MAX_POOL_SIZE = 64;

    /// @param initialOwner Governance: sets minimum stakes, the market, the miss limit.
    /// @param registry_ The hub's model registry (models must exist there).
    /// @param epochLength_ Blocks per epoch.
    /// @param unbondingEpochs_ Epochs the stake stays bonded after the node's last pool ends.
    constructor(address initialOwner, IModelRegistry registry_, uint256 epochLength_, uint256 unbondingEpochs_)
        Owned(initialOwner)
    {
        if (epochLength_ == 0 || address(registry_) == address(0)) revert NodeRegistryInvalidParameter();
        registry = registry_;
        epochLength = epochLength_;
        unbondingEpochs = unbondingEpochs_;
        genesisBlock = block.number;
    }

    modifier onlyMarket() {
        if (msg.sender != market) revert NodeRegistryNotMarket(msg.sender);
        _;
    }

    // ─────────────────────────────── Operators ────────────────────────────

    /// @notice Adds `msg.value` to the caller's stake.
    function stake() external payable {
        if (msg.value == 0) revert NodeRegistryInvalidParameter();
        uint256 total = _stake[msg.sender] + msg.value;
        _stake[msg.sender] = total;
        emit Staked(msg.sender, msg.value, total);
    }

    /// @notice Registers the caller for `modelId` with `capacity` compute units per epoch, active from
    ///         the next epoch. Its stake must cover the model's minimum.
    function register(bytes32 modelId, uint64 capacity) external {
        if (capacity == 0) revert NodeRegistryZeroCapacity();
        if (registry.tryGetRequestTerms(modelId).version == 0) revert NodeRegistryUnknownModel(modelId);
        uint256 required = minimumStake[modelId];
        uint256 staked = _stake[msg.sender];
        if (staked == 0 || staked < required) revert NodeRegistryStakeBelowMinimum(modelId, required, staked);
        Membership storage m = _memberships[msg.sender][modelId];
        uint256 now_ = epoch();
        if (m.capacity != 0 && m.activeUntil > now_) revert NodeRegistryAlreadyRegistered(msg.sender, modelId);
        if (m.capacity == 0) {
            if (_poolNodes[modelId].length >= MAX_POOL_SIZE) revert NodeRegistryPoolFull(modelId, MAX_POOL_SIZE);
            _poolNodes[modelId].push(msg.sender);
        }
        if (m.capacity == 0 || m.activeUntil <= now_) ++_pools[msg.sender];
        uint64 from = uint64(now_ + 1);
        _memberships[msg.sender][modelId] = Membership({capacity: capacity, activeFrom: from, activeUntil: FOREVER});
        emit Registered(msg.sender, modelId, capacity, from);
    }

    /// @notice The caller leaves `modelId`'s pool at the next epoch boundary; its stake unbonds from
    ///         then once it has left every pool.
    function leave(bytes32 modelId) external {
        Membership storage m = _memberships[msg.sender][modelId];
        uint256 now_ = epoch();
        if (m.capacity == 0 || m.activeUntil != FOREVER) revert NodeRegistryNotRegistered(msg.sender, modelId);
        uint64 until = uint64(now_ + 1);
        m.activeUntil = until;
        if (--_pools[msg.sender] == 0) _unbondingUntil[msg.sender] = now_ + 1 + unbondingEpochs;
        emit Left(msg.sender, modelId, until);
    }

    /// @notice Withdraws the caller's whole stake, once it serves no pool and its unbonding ended.
    function withdraw() external {
        uint256 amount = _stake[msg.sender];
        if (amount == 0) revert NodeRegistryNothingToWithdraw(msg.sender);
        uint256 pools = _pools[msg.sender];
        if (pools != 0) revert NodeRegistryStillRegistered(msg.sender, pools);
        uint256 until = _unbondingUntil[msg.sender];
        if (epoch() < until) revert NodeRegistryUnbonding(msg.sender, until);
        _stake[msg.sender] = 0;
        _send(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // ─────────────────────────────── Market ───────────────────────────────

    /// @notice Spends `units` of `node`'s capacity for `modelId` in the current epoch; reverts if the
    ///         node is not active for it or the units exceed what is left.
    function useCapacity(address node, bytes32 modelId, uint256 units) external onlyMarket {
        uint256 now_ = epoch();
        if (!_isActive(node, modelId, now_)) revert NodeRegistryNotActive(node, modelId, now_);
        uint256 used = _used[node][modelId][now_];
        uint256 remaining = _memberships[node][modelId].capacity - used;
        if (units > remaining) revert NodeRegistryCapacityExceeded(node, modelId, remaining, units);
        used += units;
        _used[node][modelId][now_] = used;
        emit CapacityUsed(node, modelId, now_, units, used);
    }

    /// @notice Assigns `units` of work for `modelId` to an active node of its pool, other than
    ///         `exclude`, whose remaining capacity in this epoch covers them, and spends them. The node
    ///         is drawn with a probability proportional to its stake, from `seed` (the market derives
    ///         it from the request and a past block hash, so anyone can check the draw).
    /// @return node The assigned node.
    function assign(bytes32 modelId, uint256 units, bytes32 seed, address exclude) external onlyMarket returns (address node) {
        uint256 now_ = epoch();
        node = _draw(modelId, units, seed, exclude, now_);
        uint256 used = _used[node][modelId][now_] + units;
        _used[node][modelId][now_] = used;
        emit CapacityUsed(node, modelId, now_, units, used);
        emit Assigned(node, modelId, now_, seed, units);
    }

    /// @notice Slashes `amount` of `node`'s stake for a missed window: `requesterShare` of it goes to
    ///         `requester`, the rest to the protocol; counts the miss (and suspends the node for the
    ///         rest of the epoch when it reaches the limit).
    function slash(address node, uint256 amount, address requester, uint256 requesterShare) external onlyMarket {
        uint256 staked = _stake[node];
        if (amount > staked || requesterShare > amount) revert NodeRegistryInvalidSlash(amount, staked);
        _stake[node] = staked - amount;
        protocolBalance += amount - requesterShare;
        uint256 now_ = epoch();
        uint256 misses = ++_misses[node][now_];
        if (requesterShare > 0) _send(requester, requesterShare);
        emit Slashed(node, amount, requester, requesterShare, misses);
        if (maxMissesPerEpoch != 0 && misses == maxMissesPerEpoch) emit Suspended(node, now_, misses);
    }

    // ─────────────────────────────── Owner ────────────────────────────────

    /// @notice The stake a node needs to register for `modelId`.
    function setMinimumStake(bytes32 modelId, uint256 amount) external onlyOwner {
        minimumStake[modelId] = amount;
        emit MinimumStakeSet(modelId, amount);
    }

    /// @notice The market that spends capacity and slashes.
    function setMarket(address market_) external onlyOwner {
        if (market_ == address(0)) revert NodeRegistryInvalidParameter();
        market = market_;
        emit MarketSet(market_);
    }

    /// @notice Misses in one epoch after which a node is suspended for the rest of it (0: never).
    function setMaxMissesPerEpoch(uint256 maxMisses) external onlyOwner {
        maxMissesPerEpoch = maxMisses;
        emit MaxMissesSet(maxMisses);
    }

    /// @notice Sends the protocol's share of slashes to `to`.
    function withdrawProtocol(address to) external onlyOwner {
        uint256 amount = protocolBalance;
        if (amount == 0) revert NodeRegistryNothingToWithdraw(to);
        protocolBalance = 0;
        _send(to, amount);
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @notice The current epoch.
    function epoch() public view returns (uint256) {
        return (block.number - genesisBlock) / epochLength;
    }

    /// @notice The first block of epoch `e`.
    function epochStartBlock(uint256 e) external view returns (uint256) {
        return genesisBlock + e * epochLength;
    }

    /// @notice `node`'s stake.
    function stakeOf(address node) external view returns (uint256) {
        return _stake[node];
    }

    /// @notice `node`'s registration for `modelId` (zero capacity: never registered).
    function membershipOf(address node, bytes32 modelId) external view returns (Membership memory) {
        return _memberships[node][modelId];
    }

    /// @notice The pools `node` serves or will serve (not yet left).
    function poolsOf(address node) external view returns (uint256) {
        return _pools[node];
    }

    /// @notice The epoch from which `node`'s stake may be withdrawn (once it serves no pool).
    function unbondingUntil(address node) external view returns (uint256) {
        return _unbondingUntil[node];
    }

    /// @notice Every node that ever registered for `modelId` (active or not).
    function poolNodes(bytes32 modelId) external view returns (address[] memory) {
        return _poolNodes[modelId];
    }

    /// @notice Whether `node` may be assigned `modelId`'s requests now: registered since an earlier
    ///         epoch, not gone, not suspended, and staked at the model's minimum.
    function isActive(address node, bytes32 modelId) external view returns (bool) {
        return _isActive(node, modelId, epoch());
    }

    /// @notice `node`'s capacity for `modelId` left in the current epoch (0 when not active).
    function remainingCapacity(address node, bytes32 modelId) external view returns (uint256) {
        uint256 now_ = epoch();
        if (!_isActive(node, modelId, now_)) return 0;
        return _memberships[node][modelId].capacity - _used[node][modelId][now_];
    }

    /// @notice `node`'s misses in epoch `e`.
    function missesOf(address node, uint256 e) external view returns (uint256) {
        return _misses[node][e];
    }

    /// @dev The node `seed` draws among the eligible ones, each weighted by {_weight} (computed once).
    function _draw(bytes32 modelId, uint256 units, bytes32 seed, address exclude, uint256 e) private view returns (address) {
        address[] storage pool = _poolNodes[modelId];
        uint256[] memory weights = new uint256[](pool.length);
        uint256 total;
        for (uint256 i; i < weights.length; ++i) {
            weights[i] = _weight(pool[i], modelId, units, exclude, e);
            total += weights[i];
        }
        if (total == 0) revert NodeRegistryNoCapacity(modelId, units, e);
        uint256 draw = uint256(seed) % total;
        uint256 k;
        while (draw >= weights[k]) draw -= weights[k++];
        return pool[k];
    }

    /// @dev A node's weight in a draw: its stake when it is eligible (active, not excluded, with
    ///      `units` of capacity left), else 0.
    function _weight(address node, bytes32 modelId, uint256 units, address exclude, uint256 e) private view returns (uint256) {
        if (node == exclude || !_isActive(node, modelId, e)) return 0;
        if (_memberships[node][modelId].capacity - _used[node][modelId][e] < units) return 0;
        return _stake[node];
    }

    function _isActive(address node, bytes32 modelId, uint256 e) private view returns (bool) {
        Membership storage m = _memberships[node][modelId];
        if (m.capacity == 0 || e < m.activeFrom || e >= m.activeUntil) return false;
        uint256 max = maxMissesPerEpoch;
        if (max != 0 && _misses[node][e] >= max) return false;
        uint256 staked = _stake[node];
        return staked != 0 && staked >= minimumStake[modelId];
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert NodeRegistryTransferFailed(to, amount);
    }
}
