/**
 * The hub's node pools: deploys the NodeRegistry (the book of operators and of jobs) with its
 * penalty and miss limit, allows markets (the hub's gateway, the InferenceMarket) to open jobs in
 * it, sets each model's minimum stake, and has operators stake and join the models' pools. Every
 * step is idempotent (it reads before it writes), so a recorded deployment can be brought up to
 * date by running them again.
 *
 * A node registered in an epoch is active, and assigned requests, from the next one:
 * {@link mineToNextEpoch} gets a local chain there at once (anvil only: local chains and tests).
 */
import { formatEther, parseEther, toHex, type Address, type Hex } from 'viem'
import { NodeRegistry } from '../../contracts/artifacts/index.ts'
import type { SertnClient } from './clients.ts'
import { confirm, deployContract } from './transactions.ts'

/** How a NodeRegistry runs its pools. */
export type NodePoolParameters = {
  /** Blocks per epoch: capacity is committed, and registrations take effect, per epoch. */
  epochLength: bigint
  /** Epochs a node's stake stays bonded after it left its last pool. */
  unbondingEpochs: bigint
  /** The stake (wei) each model's pool requires of its nodes (set per model as it is registered). */
  minimumStake: bigint
  /** Wei slashed from a node for each job whose window it missed (capped at its stake). */
  missPenalty: bigint
  /** The requester's share of a slash, in basis points (the rest goes to the protocol). */
  requesterShareBps: bigint
  /** Seconds an assigned node has to serve a job before anyone may reassign it. */
  window: bigint
  /** Misses in one epoch after which a node is suspended for the rest of it (0: never). */
  maxMissesPerEpoch: bigint
  /**
   * Jobs of one model a node holds at once before the draw passes it over, the rest waiting queued
   * (0: no limit). A job's window starts when it is assigned: about what a node serves in one
   * `window` keeps a burst above the pool's throughput from being assigned, missed and slashed.
   */
  maxOpenJobs: bigint
}

export const DEFAULT_NODE_POOL: NodePoolParameters = {
  epochLength: 200n,
  unbondingEpochs: 2n,
  minimumStake: parseEther('1'),
  missPenalty: parseEther('0.1'),
  requesterShareBps: 5000n,
  window: 120n,
  maxMissesPerEpoch: 3n,
  maxOpenJobs: 0n,
}

/** Compute units per epoch a node commits to each model's pool by default. */
export const DEFAULT_NODE_CAPACITY = 1_000_000n

/** The stake (wei) a node holds by default. */
export const DEFAULT_NODE_STAKE = parseEther('10')

/** A membership's `activeUntil` while the node is not leaving. */
const FOREVER = 2n ** 64n - 1n

/**
 * Deploys a NodeRegistry over the hub's model registry, owned by `owner`'s account, with the pool's
 * epochs, penalty and miss limit ({@link DEFAULT_NODE_POOL} where `pool` says nothing). Each model's
 * minimum stake is set apart ({@link setPoolMinimumStake}), and markets allowed ({@link allowMarket}).
 */
export async function deployNodeRegistry(
  owner: SertnClient,
  p: { registry: Address; pool?: Partial<NodePoolParameters> },
): Promise<Address> {
  const pool = { ...DEFAULT_NODE_POOL, ...p.pool }
  const address = await deployContract(owner, NodeRegistry, [owner.account.address, p.registry, pool.epochLength, pool.unbondingEpochs])
  await confirm(
    owner,
    await owner.writeContract({
      address,
      abi: NodeRegistry.abi,
      functionName: 'setPenalty',
      args: [pool.missPenalty, pool.requesterShareBps, pool.window],
    }),
  )
  await confirm(
    owner,
    await owner.writeContract({ address, abi: NodeRegistry.abi, functionName: 'setMaxMissesPerEpoch', args: [pool.maxMissesPerEpoch] }),
  )
  if (pool.maxOpenJobs !== 0n)
    await confirm(
      owner,
      await owner.writeContract({ address, abi: NodeRegistry.abi, functionName: 'setMaxOpenJobs', args: [pool.maxOpenJobs] }),
    )
  return address
}

/** Allows `market` (a gateway or the InferenceMarket) to open and close jobs; true when it was not allowed yet. */
export async function allowMarket(owner: SertnClient, nodeRegistry: Address, market: Address): Promise<boolean> {
  if (await owner.readContract({ address: nodeRegistry, abi: NodeRegistry.abi, functionName: 'isMarket', args: [market] })) return false
  await confirm(
    owner,
    await owner.writeContract({ address: nodeRegistry, abi: NodeRegistry.abi, functionName: 'setMarket', args: [market, true] }),
  )
  return true
}

/** Sets the stake `modelId`'s pool requires; true when it changed. */
export async function setPoolMinimumStake(owner: SertnClient, nodeRegistry: Address, modelId: Hex, amount: bigint): Promise<boolean> {
  const current = await owner.readContract({ address: nodeRegistry, abi: NodeRegistry.abi, functionName: 'minimumStake', args: [modelId] })
  if (current === amount) return false
  await confirm(
    owner,
    await owner.writeContract({ address: nodeRegistry, abi: NodeRegistry.abi, functionName: 'setMinimumStake', args: [modelId, amount] }),
  )
  return true
}

export type JoinPoolParameters = {
  /** The models whose pools to join. */
  models: readonly Hex[]
  /** Compute units per epoch committed to each (default {@link DEFAULT_NODE_CAPACITY}). */
  capacity?: bigint
  /**
   * The stake to hold (default {@link DEFAULT_NODE_STAKE}; raised to the highest minimum of
   * `models` if that is more); only the difference to the current stake is staked.
   */
  stake?: bigint
}

/**
 * Has `node`'s account stake and register for each model's pool it is not registered for (never
 * registered, or gone). A registration is active from the next epoch. Idempotent: returns what it
 * did, as notes (none when there was nothing to do). A model the node is leaving cannot be joined
 * again before the next epoch: a note says so.
 */
export async function joinPool(node: SertnClient, nodeRegistry: Address, p: JoinPoolParameters): Promise<string[]> {
  const who = node.account.address
  const at = { address: nodeRegistry, abi: NodeRegistry.abi } as const
  const notes: string[] = []
  const minimums = await Promise.all(p.models.map((m) => node.readContract({ ...at, functionName: 'minimumStake', args: [m] })))
  let target = p.stake ?? DEFAULT_NODE_STAKE
  for (const minimum of minimums) if (minimum > target) target = minimum
  const staked = await node.readContract({ ...at, functionName: 'stakeOf', args: [who] })
  if (staked < target) {
    await confirm(node, await node.writeContract({ ...at, functionName: 'stake', value: target - staked }))
    notes.push(`node ${who} staked ${formatEther(target - staked)} ETH (${formatEther(target)} ETH in all)`)
  }
  const capacity = p.capacity ?? DEFAULT_NODE_CAPACITY
  for (const modelId of p.models) {
    const epoch = await node.readContract({ ...at, functionName: 'epoch' })
    const m = await node.readContract({ ...at, functionName: 'membershipOf', args: [who, modelId] })
    if (m.capacity !== 0n && m.activeUntil > epoch) {
      if (m.activeUntil !== FOREVER)
        notes.push(`node ${who} is leaving the pool of model ${modelId}: it can join it again from epoch ${m.activeUntil}`)
      continue
    }
    await confirm(node, await node.writeContract({ ...at, functionName: 'register', args: [modelId, capacity] }))
    notes.push(`node ${who} joined the pool of model ${modelId} with ${capacity} compute units per epoch (active from epoch ${epoch + 1n})`)
  }
  return notes
}

/** Whether `node` may be assigned `modelId`'s requests now. */
export async function isActiveIn(client: SertnClient, nodeRegistry: Address, node: Address, modelId: Hex): Promise<boolean> {
  return client.readContract({ address: nodeRegistry, abi: NodeRegistry.abi, functionName: 'isActive', args: [node, modelId] })
}

/**
 * Mines blocks up to the first block of the next epoch, where nodes registered in this one become
 * active; returns the new epoch. Local chains and tests only: it calls anvil's `anvil_mine`.
 */
export async function mineToNextEpoch(client: SertnClient, nodeRegistry: Address): Promise<bigint> {
  const at = { address: nodeRegistry, abi: NodeRegistry.abi } as const
  const epoch = await client.readContract({ ...at, functionName: 'epoch' })
  const start = await client.readContract({ ...at, functionName: 'epochStartBlock', args: [epoch + 1n] })
  const head = await client.getBlockNumber({ cacheTime: 0 })
  if (start > head) await client.request({ method: 'anvil_mine' as never, params: [toHex(start - head)] as never })
  return client.readContract({ ...at, functionName: 'epoch' })
}

export type LocalPoolsParameters = {
  /** The models whose pools the nodes join. */
  models: readonly Hex[]
  /** Hub clients of the nodes' accounts. */
  nodes: readonly SertnClient[]
  /** Each model's minimum stake (default {@link DEFAULT_NODE_POOL}'s). */
  minimumStake?: bigint
  /** Compute units per epoch each node commits to each model (default {@link DEFAULT_NODE_CAPACITY}). */
  capacity?: bigint
}

/**
 * Opens the pools of `models` on a local chain at once: sets each model's minimum stake (`owner`
 * owns the node registry), has each node join every pool ({@link joinPool}), and mines to the next
 * epoch, where they are active. Local chains and tests only ({@link mineToNextEpoch}); returns the
 * epoch they are active in.
 */
export async function openLocalPools(owner: SertnClient, nodeRegistry: Address, p: LocalPoolsParameters): Promise<bigint> {
  for (const modelId of p.models) await setPoolMinimumStake(owner, nodeRegistry, modelId, p.minimumStake ?? DEFAULT_NODE_POOL.minimumStake)
  for (const node of p.nodes)
    await joinPool(node, nodeRegistry, { models: p.models, ...(p.capacity !== undefined ? { capacity: p.capacity } : {}) })
  return mineToNextEpoch(owner, nodeRegistry)
}
