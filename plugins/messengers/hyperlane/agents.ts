/**
 * Runs the local Hyperlane agents for a set of connected chains: one validator per origin chain
 * (signing that chain's merkle tree checkpoints) and one relayer per ordered chain pair, with file
 * stores under `dir` (or in memory) so that a restarted set resumes where it stopped. Each chain
 * may say which messages delivered to it the relayers pay for (`shouldRelay`). A validator and the
 * relayers from its chain share its checkpoint store: a new checkpoint wakes them, and a relayer
 * that sees a new message wakes the validator (before its route filter's lookups). A relayer polls
 * half an interval after its last busy poll, between its validator's polls, so that a new message
 * waits at most half a polling interval (a quarter on average) for the first of them; a hop then
 * takes that plus a few RPC rounds and the chains' own latency. Messages from Sertn ports are sent
 * by their port's gas limit, without an estimate (see `relayer.ts`).
 */
import { join } from 'node:path'
import type { Abi, Hex, LocalAccount } from 'viem'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { createLocalRelayer, type Delivery, type LocalRelayer, type RouteFilter } from './relayer.ts'
import { componentLogger } from '../../../core/log.ts'
import { reportBacklog } from '../backlog.ts'
import {
  FileCheckpointStore,
  FileRelayerCursorStore,
  MemoryCheckpointStore,
  MemoryRelayerCursorStore,
  type CheckpointStore,
  type IgnoredMessage,
  type RejectedMessage,
} from './stores.ts'
import { createLocalValidator, type LocalValidator } from './validator.ts'

export type AgentChain = {
  /** A short name for logs and store folders. */
  name: string
  domain: number
  /** Reads this chain, and pays for `process` of messages delivered to it. */
  client: SertnClient
  mailbox: `0x${string}`
  merkleTreeHook: `0x${string}`
  /** Where the agents start scanning without saved state (the mailbox's deployment block). */
  fromBlock?: bigint
  /** The most blocks one scan of this chain (its validator's, its relayers' as the origin) asks `eth_getLogs` for. Default 1000. */
  maxBlockRange?: bigint
  /**
   * Which messages delivered to this chain its relayers pay for (e.g. `enrolledRoutes`); the others
   * are ignored. Default: every message sent to this chain's domain.
   */
  shouldRelay?: RouteFilter
}

export type LocalAgentsConfig = {
  chains: readonly AgentChain[]
  /** The validator key; the chains' ISMs must list it. */
  validator: LocalAccount
  /** Folder for checkpoint stores and relayer cursors; in memory when absent. */
  dir?: string
  pollingIntervalMs?: number
  /** Blocks on top of a message before it is signed and relayed (default 1). */
  confirmations?: number
  /** The most gas a relayer pays for one delivery (default 5,000,000). */
  maxGas?: bigint
  /** Gas added to each delivery's estimate and its fifth, or to a port's gas limit (default 100,000). */
  gasReserve?: bigint
  /** For deliveries by a port's gas limit: the mailbox, ISM and port gas beyond it and the calldata (default 100,000). */
  processOverheadGas?: bigint
  /** Failed attempts after which a message is rejected, and the retry backoff (see the relayer). */
  maxAttempts?: number
  retryBackoffMs?: number
  maxRetryBackoffMs?: number
  /** The recipients' custom errors, to name them in `lastError`. */
  errorAbi?: Abi
  onError?: (who: string, err: unknown) => void
  onDelivered?: (route: { from: string; to: string }, d: Delivery) => void
  /** A message given up on (failed attempts, or more gas than `maxGas`). */
  onRejected?: (route: { from: string; to: string }, r: RejectedMessage) => void
  /** A message the destination's `shouldRelay` turned down. */
  onIgnored?: (route: { from: string; to: string }, m: IgnoredMessage) => void
}

export type LocalAgents = {
  /** Settles once every relayer has checked its mailboxes (failures are reported to `onError`; the relayers keep polling). */
  ready: Promise<void>
  validators: ReadonlyMap<string, LocalValidator>
  /** By route, `from→to`. */
  relayers: ReadonlyMap<string, LocalRelayer>
  /** Moves rejected messages (all, or these ids) back to pending on every relayer; how many were moved. */
  requeue(messageIds?: readonly Hex[]): Promise<number>
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** Starts the agents (polling in the background) until `stop()`. */
export function startLocalAgents(cfg: LocalAgentsConfig): LocalAgents {
  const onError =
    cfg.onError ??
    ((who, err) => componentLogger('relay', { messenger: 'hyperlane', agent: who }).warn(err instanceof Error ? err.message : String(err)))
  const stores = new Map<string, CheckpointStore>()
  const validators = new Map<string, LocalValidator>()
  const relayers = new Map<string, LocalRelayer>()
  for (const chain of cfg.chains) {
    const store = cfg.dir
      ? new FileCheckpointStore(join(cfg.dir, `checkpoints-${chain.domain}`), cfg.validator.address)
      : new MemoryCheckpointStore(cfg.validator.address)
    stores.set(chain.name, store)
    validators.set(
      chain.name,
      createLocalValidator({
        client: chain.client,
        domain: chain.domain,
        merkleTreeHook: chain.merkleTreeHook,
        account: cfg.validator,
        store,
        fromBlock: chain.fromBlock,
        ...(chain.maxBlockRange !== undefined ? { maxBlockRange: chain.maxBlockRange } : {}),
        confirmations: cfg.confirmations,
        pollingIntervalMs: cfg.pollingIntervalMs,
        onError: (e) => onError(`validator ${chain.name}`, e),
      }),
    )
  }
  for (const from of cfg.chains) {
    for (const to of cfg.chains) {
      if (from === to) continue
      const route = `${from.name}→${to.name}`
      relayers.set(
        route,
        createLocalRelayer({
          origin: { client: from.client, mailbox: from.mailbox, merkleTreeHook: from.merkleTreeHook, domain: from.domain },
          destination: { client: to.client, mailbox: to.mailbox, domain: to.domain },
          checkpointStores: [stores.get(from.name)!],
          cursorStore: cfg.dir
            ? new FileRelayerCursorStore(cfg.dir, `relayer-${from.domain}-${to.domain}.json`)
            : new MemoryRelayerCursorStore(),
          fromBlock: from.fromBlock,
          ...(from.maxBlockRange !== undefined ? { maxBlockRange: from.maxBlockRange } : {}),
          confirmations: cfg.confirmations,
          pollingIntervalMs: cfg.pollingIntervalMs,
          ...(to.shouldRelay ? { shouldRelay: to.shouldRelay } : {}),
          ...(cfg.maxGas !== undefined ? { maxGas: cfg.maxGas } : {}),
          ...(cfg.gasReserve !== undefined ? { gasReserve: cfg.gasReserve } : {}),
          ...(cfg.processOverheadGas !== undefined ? { processOverheadGas: cfg.processOverheadGas } : {}),
          ...(cfg.maxAttempts !== undefined ? { maxAttempts: cfg.maxAttempts } : {}),
          ...(cfg.retryBackoffMs !== undefined ? { retryBackoffMs: cfg.retryBackoffMs } : {}),
          ...(cfg.maxRetryBackoffMs !== undefined ? { maxRetryBackoffMs: cfg.maxRetryBackoffMs } : {}),
          ...(cfg.errorAbi ? { errorAbi: cfg.errorAbi } : {}),
          onError: (e) => onError(`relayer ${route}`, e),
          onDelivered: (d) => cfg.onDelivered?.({ from: from.name, to: to.name }, d),
          onRejected: (r) => cfg.onRejected?.({ from: from.name, to: to.name }, r),
          onIgnored: (m) => cfg.onIgnored?.({ from: from.name, to: to.name }, m),
          onBacklog: (b) => reportBacklog('hyperlane', route, b),
          // The origin's validator signs at once rather than at its next poll (it shares the store, which wakes this relayer),
          // woken as soon as a scan finds a new message, before the route filter's lookups.
          onDispatched: () => validators.get(from.name)?.wake(),
        }),
      )
    }
  }
  for (const v of validators.values()) v.start()
  for (const r of relayers.values()) r.start()
  const ready = Promise.all([...relayers].map(([route, r]) => r.prepare().catch((err: unknown) => onError(`relayer ${route}`, err)))).then(
    () => undefined,
  )
  const agents: LocalAgents = {
    ready,
    validators,
    relayers,
    async requeue(ids) {
      let n = 0
      for (const r of relayers.values()) n += await r.requeue(ids)
      return n
    },
    async stop() {
      await Promise.all([...validators.values(), ...relayers.values()].map((a) => a[Symbol.asyncDispose]()))
    },
    [Symbol.asyncDispose]: () => agents.stop(),
  }
  return agents
}
