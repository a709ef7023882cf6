// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {SertnMessages} from "./messaging/SertnMessages.sol";
import {Owned} from "./utils/Owned.sol";

/// @title NodeRegistry
/// @notice The hub's book of operators: each node stakes, registers for models with a capacity in
///         compute units per epoch, and is active from the epoch after the one it registered in.
///         Leaving takes effect at the next epoch boundary; stake comes back only after an
///         unbonding period that covers every request the node may still hold.
///
///         It also keeps the book of jobs: each request a market (the hub's gateway, the market for
///         spoke requests; set by the owner) records is opened here as a job and assigned, from a
///         seed anyone can recompute (the market and request id and the previous block's hash), to
///         an active node of the model's pool drawn by stake among those whose capacity left in the
///         epoch covers the model's compute units. Only that node may then close the job (submit
///         its result or failure). Once its window has passed, anyone may {reassign} the job: the
///         missing node is slashed (a share credited to the requester, the rest to the protocol),
///         its miss counted (too many in an epoch suspend it for the rest of it), and the job goes
///         to another eligible node. A node holding `maxOpenJobs` jobs of a model (its backlog) is
///         passed over until one closes, so that a burst above what the pool serves in a window
///         waits queued instead of being assigned, missed and slashed. A job that no node can take
///         waits in a queue for capacity ({assignQueued}).
/// @dev Epochs are `epochLength` blocks counted from the deployment block. Stake is in the chain's
///      native token. A node's stake backs all its pools; each model sets the minimum it needs.
///      Credits (slash shares) are pulled with {claim}, so no requester can block a reassignment.
contract NodeRegistry is INodeRegistry, Owned {
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
    /// @notice The job is not assigned to `node` (it is to `assigned`, or not assigned at all).
    error NodeRegistryNotAssigned(address market, uint256 id, address node, address assigned);
    /// @notice The job exists already.
    error NodeRegistryJobExists(address market, uint256 id);
    /// @notice The job is not in the state this needs (see {JobState}).
    error NodeRegistryJobNotReassignable(address market, uint256 id, JobState state);
    /// @notice The assigned node's window is still open.
    error NodeRegistryWindowOpen(address market, uint256 id, uint256 windowEnd);
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
    event MarketSet(address indexed market, bool allowed);
    event MaxMissesSet(uint256 maxMisses);
    /// @notice The most jobs of one model a node holds at once was set (0: no limit).
    event MaxOpenJobsSet(uint256 maxOpenJobs);
    /// @notice A job was assigned to `node` (also after a reassignment), who alone may serve it until `windowEnd`.
    event JobAssigned(address indexed market, uint256 indexed id, address indexed node, uint256 epoch, uint256 windowEnd);
    /// @notice No node had the capacity for the job: it waits for {assignQueued}.
    event JobQueued(address indexed market, uint256 indexed id, bytes32 indexed modelId, uint256 epoch);
    /// @notice The job's window passed without `missed` serving it.
    event JobReassigned(address indexed market, uint256 indexed id, address indexed missed, uint256 slashed);
    /// @notice The job ended: served by `node`, or (node zero) settled another way.
    event JobClosed(address indexed market, uint256 indexed id, address indexed node);
    /// @notice Credited slash shares were claimed.
    event Claimed(address indexed account, uint256 amount);
    event PenaltySet(uint256 missPenalty, uint256 requesterShareBps, uint256 window);

    /// @notice Where a job stands.
    enum JobState {
        /// @notice No such job.
        None,
        /// @notice Waiting for a node with capacity.
        Queued,
        /// @notice Assigned (see {Job.node} and {Job.windowEnd}).
        Assigned,
        /// @notice Served by its node, or settled another way.
        Closed,
        /// @notice Missed after its deadline: nobody is assigned any more; the request is refunded.
        Lapsed
    }

    /// @notice A request as the registry assigns it.
    struct Job {
        /// @notice The node that alone may serve it now.
        address node;
        /// @notice Until when (a timestamp) only `node` may serve it; after it, anyone may reassign it.
        uint40 windowEnd;
        JobState state;
        /// @notice How many nodes missed it.
        uint8 misses;
        /// @notice Who is credited the requester's share of a slash.
        address requester;
        /// @notice The request's deadline (a timestamp): a job missed after it is not assigned again.
        uint40 deadline;
        /// @notice The compute units it costs.
        uint32 units;
        bytes32 modelId;
    }

    /// @notice A node's registration for one model.
    struct Membership {
        /// @notice Committed compute units per epoch.
        uint64 capacity;
        /// @notice The first epoch it is active in.
        uint64 activeFrom;
        /// @notice The first epoch it is no longer active in (max when not leaving).
        uint64 activeUntil;
        /// @notice Jobs of the model assigned to it and not closed, reassigned or lapsed yet (its backlog).
        uint64 open;
    }

    /// @notice Blocks per epoch.
    uint256 public immutable epochLength;
    /// @notice Epochs a node's stake stays bonded after its last pool ends.
    uint256 public immutable unbondingEpochs;
    /// @notice The block epoch 0 starts at.
    uint256 public immutable genesisBlock;
    /// @notice The hub's model registry.
    IModelRegistry public immutable registry;

    /// @notice The markets: open and close jobs.
    mapping(address => bool) public isMarket;
    /// @notice Wei slashed from a node for each missed window (capped at its stake).
    uint256 public missPenalty;
    /// @notice The requester's share of a slash, in basis points.
    uint256 public requesterShareBps;
    /// @notice Seconds a node has to serve a job assigned to it.
    uint256 public window;
    /// @notice Misses in one epoch after which a node is suspended for the rest of it (0: never).
    uint256 public maxMissesPerEpoch;
    /// @notice Jobs of one model a node may hold open at once ({Membership.open}) before the draw
    ///         passes it over (0: no limit). A job's window starts when it is assigned, so a node
    ///         assigned more than it can serve within one window would miss the rest: set it to about
    ///         what a node serves in a window, and the excess waits queued ({assignQueued}).
    uint256 public maxOpenJobs;
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
    mapping(address market => mapping(uint256 id => Job)) private _jobs;
    mapping(address account => uint256) private _credits;

    uint64 private constant FOREVER = type(uint64).max;
    /// @notice The most nodes a model's pool holds (assignment walks them all, inside the request
    ///         message's gas: see {SertnMessages.requestGas}).
    uint256 public constant MAX_POOL_SIZE = SertnMessages.MAX_POOL_SIZE;

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
        if (!isMarket[msg.sender]) revert NodeRegistryNotMarket(msg.sender);
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
        _memberships[msg.sender][modelId] = Membership({capacity: capacity, activeFrom: from, activeUntil: FOREVER, open: m.open});
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

    // ─────────────────────────────── Markets ──────────────────────────────

    /// @notice Opens request `id` of the calling market as a job and assigns it (see {JobAssigned});
    ///         when no node of the pool has the capacity, queues it (see {JobQueued}) if `queue`,
    ///         else opens nothing and returns zero (the market then fails the request).
    /// @param units The model's compute units.
    /// @param requester Credited the requester's share if a node misses the job.
    /// @param deadline The request's deadline (a timestamp).
    /// @return node The assigned node (zero: queued, or not opened).
    function openJob(uint256 id, bytes32 modelId, uint32 units, address requester, uint40 deadline, bool queue)
        external
        onlyMarket
        returns (address node)
    {
        Job storage j = _jobs[msg.sender][id];
        if (j.state != JobState.None) revert NodeRegistryJobExists(msg.sender, id);
        if (!queue) {
            node = _draw(modelId, units, _seed(msg.sender, id, 0), address(0), epoch());
            if (node == address(0)) return address(0);
        }
        j.requester = requester;
        j.deadline = deadline;
        j.units = units;
        j.modelId = modelId;
        node = _assign(msg.sender, id, j, address(0));
    }

    /// @notice Closes the calling market's job `id`. With a node, it must be the assigned one (the
    ///         market pays only it); with none, the request was settled another way (a refund, a
    ///         spoke's receipt) and the job ends whoever holds it.
    function closeJob(uint256 id, address node) external onlyMarket {
        Job storage j = _jobs[msg.sender][id];
        if (node != address(0)) {
            if (j.state != JobState.Assigned || j.node != node) revert NodeRegistryNotAssigned(msg.sender, id, node, j.node);
        } else if (j.state != JobState.Assigned && j.state != JobState.Queued) {
            return;
        }
        _release(j);
        j.state = JobState.Closed;
        emit JobClosed(msg.sender, id, node);
    }

    // ─────────────────────────────── Anyone ───────────────────────────────

    /// @notice Once the assigned node's window has passed, slashes it (the requester's share
    ///         credited, the rest to the protocol), counts its miss, and assigns the job to another
    ///         eligible node (queued if none has capacity; lapsed after the request's deadline).
    function reassign(address market_, uint256 id) external {
        Job storage j = _jobs[market_][id];
        if (j.state != JobState.Assigned) revert NodeRegistryJobNotReassignable(market_, id, j.state);
        if (block.timestamp <= j.windowEnd) revert NodeRegistryWindowOpen(market_, id, j.windowEnd);
        address missed = j.node;
        _release(j);
        uint256 slashed = _slash(missed, j.requester);
        if (j.misses < type(uint8).max) ++j.misses;
        emit JobReassigned(market_, id, missed, slashed);
        if (block.timestamp >= j.deadline) {
            j.state = JobState.Lapsed;
            j.node = address(0);
            return;
        }
        _assign(market_, id, j, missed);
    }

    /// @notice Assigns a queued job now that some node may have capacity (a new epoch, a new node).
    function assignQueued(address market_, uint256 id) external returns (address node) {
        Job storage j = _jobs[market_][id];
        if (j.state != JobState.Queued) revert NodeRegistryJobNotReassignable(market_, id, j.state);
        node = _draw(j.modelId, j.units, _seed(market_, id, j.misses), address(0), epoch());
        if (node == address(0)) revert NodeRegistryNoCapacity(j.modelId, j.units, epoch());
        _take(market_, id, j, node);
    }

    /// @notice Sends the caller the slash shares credited to it.
    function claim() external {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert NodeRegistryNothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        _send(msg.sender, amount);
        emit Claimed(msg.sender, amount);
    }

    // ─────────────────────────────── Owner ────────────────────────────────

    /// @notice The stake a node needs to register for `modelId`.
    function setMinimumStake(bytes32 modelId, uint256 amount) external onlyOwner {
        minimumStake[modelId] = amount;
        emit MinimumStakeSet(modelId, amount);
    }

    /// @notice Allows or disallows a market (a contract that records requests) to open and close jobs.
    function setMarket(address market_, bool allowed) external onlyOwner {
        if (market_ == address(0)) revert NodeRegistryInvalidParameter();
        isMarket[market_] = allowed;
        emit MarketSet(market_, allowed);
    }

    /// @notice The slash for a missed window (wei), the requester's share of it (basis points), and
    ///         the window (seconds) a node has to serve a job.
    function setPenalty(uint256 missPenalty_, uint256 requesterShareBps_, uint256 window_) external onlyOwner {
        if (requesterShareBps_ > 10_000 || window_ == 0 || window_ > type(uint32).max) revert NodeRegistryInvalidParameter();
        missPenalty = missPenalty_;
        requesterShareBps = requesterShareBps_;
        window = window_;
        emit PenaltySet(missPenalty_, requesterShareBps_, window_);
    }

    /// @notice Misses in one epoch after which a node is suspended for the rest of it (0: never).
    function setMaxMissesPerEpoch(uint256 maxMisses) external onlyOwner {
        maxMissesPerEpoch = maxMisses;
        emit MaxMissesSet(maxMisses);
    }

    /// @notice Jobs of one model a node may hold open at once (0: no limit); see {maxOpenJobs}.
    ///         Jobs already assigned stay with their nodes.
    function setMaxOpenJobs(uint256 maxOpen) external onlyOwner {
        maxOpenJobs = maxOpen;
        emit MaxOpenJobsSet(maxOpen);
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

    /// @notice Request `id` of `market_` as a job.
    function jobOf(address market_, uint256 id) external view returns (Job memory) {
        return _jobs[market_][id];
    }

    /// @inheritdoc INodeRegistry
    function hasJob(address market_, uint256 id) external view returns (bool) {
        return _jobs[market_][id].state != JobState.None;
    }

    /// @notice Slash shares credited to `account`, to {claim}.
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @notice `node`'s capacity for `modelId` used in epoch `e`.
    function usedCapacity(address node, bytes32 modelId, uint256 e) external view returns (uint256) {
        return _used[node][modelId][e];
    }

    /// @notice `node`'s misses in epoch `e`.
    function missesOf(address node, uint256 e) external view returns (uint256) {
        return _misses[node][e];
    }

    /// @dev Draws a node for the job (excluding `exclude`) and gives it the job, or queues the job.
    function _assign(address market_, uint256 id, Job storage j, address exclude) private returns (address node) {
        uint256 now_ = epoch();
        node = _draw(j.modelId, j.units, _seed(market_, id, j.misses), exclude, now_);
        if (node == address(0)) {
            j.state = JobState.Queued;
            j.node = address(0);
            emit JobQueued(market_, id, j.modelId, now_);
        } else {
            _take(market_, id, j, node);
        }
    }

    /// @dev Gives the job to `node`: spends its capacity and opens its window.
    function _take(address market_, uint256 id, Job storage j, address node) private {
        uint256 now_ = epoch();
        uint256 used = _used[node][j.modelId][now_] + j.units;
        _used[node][j.modelId][now_] = used;
        ++_memberships[node][j.modelId].open;
        uint256 end = block.timestamp + window;
        j.node = node;
        j.windowEnd = uint40(end);
        j.state = JobState.Assigned;
        emit CapacityUsed(node, j.modelId, now_, j.units, used);
        emit JobAssigned(market_, id, node, now_, end);
    }

    /// @dev Takes an assigned job off its node's backlog.
    function _release(Job storage j) private {
        if (j.state != JobState.Assigned) return;
        Membership storage m = _memberships[j.node][j.modelId];
        if (m.open != 0) --m.open;
    }

    /// @dev The draw's seed: the job and the previous block's hash (known to all once mined, not
    ///      chosen by the requester), and how many nodes missed it so far.
    function _seed(address market_, uint256 id, uint8 misses) private view returns (bytes32) {
        return keccak256(abi.encode(market_, id, misses, blockhash(block.number - 1)));
    }

    /// @dev Slashes `node` for a missed window; returns the amount.
    function _slash(address node, address requester) private returns (uint256 amount) {
        uint256 staked = _stake[node];
        amount = missPenalty < staked ? missPenalty : staked;
        _stake[node] = staked - amount;
        uint256 share = amount * requesterShareBps / 10_000;
        _credits[requester] += share;
        protocolBalance += amount - share;
        uint256 now_ = epoch();
        uint256 misses = ++_misses[node][now_];
        emit Slashed(node, amount, requester, share, misses);
        if (maxMissesPerEpoch != 0 && misses == maxMissesPerEpoch) emit Suspended(node, now_, misses);
    }

    /// @dev Two nodes drawn by `seed` among the eligible ones, each weighted by {_weight} (computed
    ///      once), the second among the others; the one with the shorter backlog ({Membership.open})
    ///      gets the job, the first on a tie (the power of two choices: the stake still decides who is
    ///      drawn, and no node piles up jobs while another idles). Zero if none is eligible.
    function _draw(bytes32 modelId, uint256 units, bytes32 seed, address exclude, uint256 e) private view returns (address) {
        address[] storage pool = _poolNodes[modelId];
        uint256[] memory weights = new uint256[](pool.length);
        uint256 total;
        for (uint256 i; i < weights.length; ++i) {
            weights[i] = _weight(pool[i], modelId, units, exclude, e);
            total += weights[i];
        }
        if (total == 0) return address(0);
        uint256 first = _pick(weights, uint256(seed) % total);
        uint256 rest = total - weights[first];
        if (rest == 0) return pool[first];
        weights[first] = 0;
        uint256 second = _pick(weights, uint256(keccak256(abi.encode(seed))) % rest);
        return _lessBusy(pool[first], pool[second], modelId);
    }

    /// @dev `b` when its backlog for `modelId` is shorter than `a`'s, else `a`.
    function _lessBusy(address a, address b, bytes32 modelId) private view returns (address) {
        return _memberships[b][modelId].open < _memberships[a][modelId].open ? b : a;
    }

    /// @dev The index whose cumulative weight covers `draw` (which is below the weights' sum).
    function _pick(uint256[] memory weights, uint256 draw) private pure returns (uint256 k) {
        while (draw >= weights[k]) draw -= weights[k++];
    }

    /// @dev A node's weight in a draw: its stake when it is eligible (active, not excluded, with
    ///      `units` of capacity left and its backlog below {maxOpenJobs}), else 0.
    function _weight(address node, bytes32 modelId, uint256 units, address exclude, uint256 e) private view returns (uint256) {
        if (node == exclude || !_isActive(node, modelId, e)) return 0;
        Membership storage m = _memberships[node][modelId];
        if (m.capacity - _used[node][modelId][e] < units) return 0;
        uint256 maxOpen = maxOpenJobs;
        if (maxOpen != 0 && m.open >= maxOpen) return 0;
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
