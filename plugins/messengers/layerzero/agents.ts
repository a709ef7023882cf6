/**
 * Runs the local LayerZero agents for a set of connected chains: for every ordered pair (origin →
 * destination) a DVN and an executor, with file cursors under `dir` (or in memory) so that a
 * restarted set resumes where it stopped. A DVN that committed a packet wakes the executor of its
 * route at once, so a message waits for no poll interval between verification and execution.
 * Transactions from one account on one chain go one at a time (one nonce sequence).
 */
import type { Abi, LocalAccount } from 'viem'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import type { PacketPollResult } from './agent.ts'
import type { DecodedPacket } from './packet.ts'
import type { LayerZeroCoreDeployment } from './deploy.ts'
import { createLocalDvn, type LocalDvn, type Verification } from './dvn.ts'
import { createLocalExecutor, type Delivery, type LocalExecutor } from './executor.ts'
import { createSerialLock, type SerialLock } from './loop.ts'
import { FilePacketCursorStore, MemoryPacketCursorStore, type RejectedPacket } from './stores.ts'
import { componentLogger } from '../../../core/log.ts'
import { reportBacklog } from '../backlog.ts'

export type LayerZeroAgentChain = {
  /** A short name for logs. */
  name: string
  core: Pick<LayerZeroCoreDeployment, 'eid' | 'endpoint' | 'receiveUln' | 'dvn' | 'deployBlock'>
  /** Submits the DVN's instructions on this chain (a DVN admin); also reads the chain. */
  dvnClient: SertnClient
  /** Pays for `lzReceive` on this chain. */
  executorClient: SertnClient
  /** The most blocks one scan of this chain (as an origin) asks `eth_getLogs` for. Default 1000. */
  maxBlockRange?: bigint
  /** Where the agents start scanning without saved state (default: the core's `deployBlock`). */
  fromBlock?: bigint
}

export type Route = { from: string; to: string }

export type LayerZeroAgentsConfig = {
  chains: readonly LayerZeroAgentChain[]
  /** The DVN contracts' signer keys. */
  dvnSigners: readonly LocalAccount[]
  /** Folder for the cursors (`dvn-<srcEid>-<dstEid>.json`, `executor-<srcEid>-<dstEid>.json`); in memory when absent. */
  dir?: string
  pollingIntervalMs?: number
  maxAttempts?: number
  retryBackoffMs?: number
  maxRetryBackoffMs?: number
  /** Most gas the executors pay for one lzReceive. */
  maxGas?: bigint
  /** Custom errors of the recipients, to name them in `lastError`. */
  errorAbi?: Abi
  /** Which packets of a route to serve (see PacketAgentOptions.accept); both its DVN and its executor ask. */
  accept?: (route: Route, packet: DecodedPacket) => Promise<true | string>
  /** A packet `accept` turned down (reported by the route's DVN; its executor skips it silently). */
  onIgnored?: (route: Route, packet: DecodedPacket, reason: string) => void
  onError?: (who: string, err: unknown) => void
  onVerified?: (route: Route, v: Verification) => void
  onDelivered?: (route: Route, d: Delivery) => void
  onRejected?: (route: Route, agent: 'dvn' | 'executor', r: RejectedPacket) => void
}

export type LayerZeroAgents = {
  /** By route, `from→to`. */
  dvns: ReadonlyMap<string, LocalDvn>
  executors: ReadonlyMap<string, LocalExecutor>
  /** Polls every agent once, DVNs first (tests and tools; the background loops keep running). */
  pollAll(): Promise<{ dvns: Map<string, PacketPollResult<Verification>>; executors: Map<string, PacketPollResult<Delivery>> }>
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** Starts the agents (polling in the background) until `stop()`. */
export function startLayerZeroAgents(cfg: LayerZeroAgentsConfig): LayerZeroAgents {
  const onError =
    cfg.onError ??
    ((who, err) => componentLogger('relay', { messenger: 'layerzero', agent: who }).warn(err instanceof Error ? err.message : String(err)))
  const locks = new Map<string, SerialLock>()
  const lockFor = (chain: LayerZeroAgentChain, client: SertnClient) => {
    const key = `${chain.core.eid}:${client.account.address.toLowerCase()}`
    let lock = locks.get(key)
    if (!lock) {
      lock = createSerialLock()
      locks.set(key, lock)
    }
    return lock
  }
  const store = (name: string) => (cfg.dir ? new FilePacketCursorStore(cfg.dir, name) : new MemoryPacketCursorStore())
  const common = {
    pollingIntervalMs: cfg.pollingIntervalMs,
    maxAttempts: cfg.maxAttempts,
    retryBackoffMs: cfg.retryBackoffMs,
    maxRetryBackoffMs: cfg.maxRetryBackoffMs,
    errorAbi: cfg.errorAbi,
  }
  const dvns = new Map<string, LocalDvn>()
  const executors = new Map<string, LocalExecutor>()
  for (const from of cfg.chains) {
    for (const to of cfg.chains) {
      if (from === to) continue
      const route = { from: from.name, to: to.name }
      const key = `${from.name}→${to.name}`
      const ids = `${from.core.eid}-${to.core.eid}`
      const origin = { client: from.dvnClient, endpoint: from.core.endpoint, eid: from.core.eid }
      const fromBlock = from.fromBlock ?? from.core.deployBlock
      const accept = cfg.accept ? { accept: (p: DecodedPacket) => cfg.accept!(route, p) } : {}
      const range = from.maxBlockRange !== undefined ? { maxBlockRange: from.maxBlockRange } : {}
      const executor = createLocalExecutor({
        ...common,
        ...accept,
        ...range,
        origin: { ...origin, client: from.executorClient },
        destination: { client: to.executorClient, endpoint: to.core.endpoint, eid: to.core.eid },
        cursorStore: store(`executor-${ids}.json`),
        fromBlock,
        maxGas: cfg.maxGas,
        lock: lockFor(to, to.executorClient),
        onError: (e) => onError(`executor ${key}`, e),
        onDelivered: (d) => cfg.onDelivered?.(route, d),
        onRejected: (r) => cfg.onRejected?.(route, 'executor', r),
        onBacklog: (b) => reportBacklog('layerzero', `${key} executor`, b),
      })
      const dvn = createLocalDvn({
        ...common,
        ...accept,
        ...range,
        onIgnored: (p, reason) => cfg.onIgnored?.(route, p, reason),
        origin,
        destination: {
          client: to.dvnClient,
          endpoint: to.core.endpoint,
          receiveUln: to.core.receiveUln,
          dvn: to.core.dvn,
          eid: to.core.eid,
        },
        signers: cfg.dvnSigners,
        cursorStore: store(`dvn-${ids}.json`),
        fromBlock,
        lock: lockFor(to, to.dvnClient),
        onError: (e) => onError(`dvn ${key}`, e),
        onVerified: (v) => {
          executor.wake()
          cfg.onVerified?.(route, v)
        },
        onRejected: (r) => cfg.onRejected?.(route, 'dvn', r),
        onBacklog: (b) => reportBacklog('layerzero', `${key} dvn`, b),
      })
      dvns.set(key, dvn)
      executors.set(key, executor)
    }
  }
  for (const a of [...dvns.values(), ...executors.values()]) a.start()
  const agents: LayerZeroAgents = {
    dvns,
    executors,
    async pollAll() {
      const d = new Map<string, PacketPollResult<Verification>>()
      const e = new Map<string, PacketPollResult<Delivery>>()
      for (const [k, a] of dvns) d.set(k, await a.poll())
      for (const [k, a] of executors) e.set(k, await a.poll())
      return { dvns: d, executors: e }
    },
    async stop() {
      await Promise.all([...dvns.values(), ...executors.values()].map((a) => a[Symbol.asyncDispose]()))
    },
    [Symbol.asyncDispose]: () => agents.stop(),
  }
  return agents
}
