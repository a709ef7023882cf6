/**
 * The scanning, resuming and retrying shared by the local LayerZero agents (DVN and executor) of
 * one route, origin → destination. An agent follows the origin endpoint's `PacketSent` logs, keeps
 * the packets for the destination eid as pending in its cursor store, and hands each pending
 * packet that is due to its `handle` step once per poll:
 *
 * - `done`: handled now (a transaction on the destination); the packet leaves the cursor.
 * - `already`: the destination shows it handled (by this agent before a crash, or anyone else).
 * - `waiting`: not possible yet (not verified, not enough confirmations): not an attempt.
 * - `ignored`: not this agent's job (e.g. its DVN is not in the receiver's ULN config); dropped.
 * - a throw: a failed attempt, unless the RPC node was unreachable (then retried next poll
 *   without counting) or a fresh look at the destination shows it handled after all. Failed
 *   attempts back off exponentially (`retryBackoffMs` · 2^(attempts−1), capped at
 *   `maxRetryBackoffMs`), persisted per packet (`attempts`, `nextAttemptAt`, `lastError`); after
 *   `maxAttempts` the packet moves to the cursor's `rejected` list, is reported through the poll
 *   result and `onRejected`, and is kept there (an operator can {@link PacketAgent.requeue} it).
 *
 * The cursor is saved after every scan and after every handled or failed packet, so a restarted
 * agent with the same store neither misses nor repeats a packet. Scans, handling and requeues are
 * serialised; each poll scans at most `maxBlockRange` blocks.
 *
 * A scan also checks each path's nonces (a path's packets are numbered 1, 2, 3, … on the origin
 * endpoint). A node can answer `eth_getLogs` for its newest block before it has indexed that
 * block's logs (geth and anvil have both been seen to), so a scan up to the head may miss a
 * packet; the next one on its path then shows a gap. The scan is then dropped and the cursor goes
 * back to the block of the path's last packet seen, to read the missing ones again; a packet
 * whose nonce is not above its path's last one is one seen before, and is skipped.
 */
import { getAbiItem, getAddress, type Abi, type Address, type Hex } from 'viem'
import { EndpointV2 } from '../../../contracts/artifacts/layerzero/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { componentLogger } from '../../../core/log.ts'
import { AgentDisposedError, failureReason, isTransportError } from './errors.ts'
import { runWakeablePollLoop, type WakeablePollLoop } from './loop.ts'
import { decodePacket, type DecodedPacket } from './packet.ts'
import type { PacketCursor, PacketCursorStore, PathMark, PendingPacket, RejectedPacket } from './stores.ts'

export const PACKET_SENT = getAbiItem({ abi: EndpointV2.abi, name: 'PacketSent' })

export type AgentOrigin = {
  client: Pick<SertnClient, 'getBlockNumber' | 'getLogs'>
  /** The origin chain's EndpointV2. */
  endpoint: Address
  eid: number
}

/** The settings every local LayerZero agent takes. */
export type PacketAgentOptions = {
  cursorStore: PacketCursorStore
  /** First origin block to scan without a saved cursor (e.g. the endpoint's deployment block). */
  fromBlock: bigint
  /** Origin blocks on top of a `PacketSent` before the agent scans it (default 0). */
  confirmations?: number
  /** Most origin blocks one scan reads (default 1000). */
  maxBlockRange?: bigint
  /** Pause between polls when started (default 50 ms). */
  pollingIntervalMs?: number
  /** Failed attempts after which a packet is rejected (default 8). */
  maxAttempts?: number
  /** Wait after the first failed attempt, doubled after each further one (default 1000 ms). */
  retryBackoffMs?: number
  /** Longest wait between two attempts (default 300000 ms). */
  maxRetryBackoffMs?: number
  /** Only packets to these receivers (default: every receiver on the destination eid). */
  receivers?: readonly Address[]
  /**
   * Which packets to serve (e.g. only those between enrolled ports): `true`, or the reason to
   * ignore one. An ignored packet is reported to `onIgnored` and never handled (no transaction).
   * A lookup that throws is a failed scan, retried.
   */
  accept?: (packet: DecodedPacket) => Promise<true | string>
  /** A packet `accept` turned down. */
  onIgnored?: (packet: DecodedPacket, reason: string) => void
  /** Custom errors the destination contracts may revert with, to name them in `lastError`. */
  errorAbi?: Abi
  /** The clock for backoff deadlines (ms since the epoch; default `Date.now`). */
  now?: () => number
  onError?: (err: unknown) => void
  /** A packet given up on after `maxAttempts` failed attempts. */
  onRejected?: (r: RejectedPacket) => void
  /** After each round: the packets still pending and those rejected (metrics, health). */
  onBacklog?: (b: { pending: number; rejected: number }) => void
}

export type HandleOutcome<D> =
  | { kind: 'done'; result: D }
  | { kind: 'already' }
  | { kind: 'waiting'; reason?: string }
  | { kind: 'ignored'; reason: string }

export type HandleContext = {
  /** The origin head seen by the latest scan. */
  originHead: bigint
  /** Failed attempts so far for this packet. */
  attempts: number
}

export type PacketAgentCore<D> = PacketAgentOptions & {
  /** For messages: `dvn`, `executor`. */
  name: string
  origin: AgentOrigin
  dstEid: number
  handle(p: PendingPacket, packet: DecodedPacket, ctx: HandleContext): Promise<HandleOutcome<D>>
  /** Whether the destination shows the packet handled (asked after a failed attempt). */
  isHandled(packet: DecodedPacket): Promise<boolean>
  onDone?: (d: D) => void
}

export type PacketPollResult<D> = {
  /** Packets newly seen for the destination in this poll. */
  seen: number
  /** Packets handled in this poll. */
  completed: D[]
  /** Guids found already handled (by anyone) and dropped. */
  alreadyCompleted: Hex[]
  /** Guids dropped as not this agent's job. */
  ignored: Hex[]
  /** Packets rejected in this poll (their `maxAttempts`-th attempt failed). */
  rejected: RejectedPacket[]
  /** Packets still pending (waiting, or backing off after a failed attempt). */
  pending: number
}

export type PacketAgent<D> = {
  /** Scans the next bounded range of origin blocks and records the packets for the destination. */
  scan(): Promise<number>
  /** Handles every pending packet that is due, once. */
  process(): Promise<Omit<PacketPollResult<D>, 'seen'>>
  /** `scan()` then `process()`. */
  poll(): Promise<PacketPollResult<D>>
  /** The packets still pending (from the cursor). */
  pending(): Promise<PendingPacket[]>
  /** The packets given up on so far (from the cursor). */
  rejected(): Promise<RejectedPacket[]>
  /**
   * Moves rejected packets (all, or those with these guids) back to pending with a fresh attempt
   * count, to be tried on the next poll; returns how many moved.
   */
  requeue(guids?: readonly Hex[]): Promise<number>
  /** Polls every `pollingIntervalMs` in the background until `stop()` or `signal` aborts. */
  start(signal?: AbortSignal): void
  /** Polls now instead of after the interval (when started). */
  wake(): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export function createPacketAgent<D>(cfg: PacketAgentCore<D>): PacketAgent<D> {
  const originEndpoint = getAddress(cfg.origin.endpoint)
  const receivers = cfg.receivers && new Set(cfg.receivers.map((r) => getAddress(r)))
  const confirmations = BigInt(cfg.confirmations ?? 0)
  const maxBlockRange = cfg.maxBlockRange ?? 1000n
  const maxAttempts = cfg.maxAttempts ?? 8
  const retryBackoffMs = cfg.retryBackoffMs ?? 1_000
  const maxRetryBackoffMs = cfg.maxRetryBackoffMs ?? 300_000
  const now = cfg.now ?? Date.now
  const onError =
    cfg.onError ??
    ((e: unknown) => componentLogger('relay', { messenger: 'layerzero', agent: cfg.name }).warn(e instanceof Error ? e.message : String(e)))
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new Error(`maxAttempts must be a positive integer, got ${maxAttempts}`)
  if (maxBlockRange < 1n) throw new Error(`maxBlockRange must be positive, got ${maxBlockRange}`)
  let controller: AbortController | undefined
  let loop: WakeablePollLoop | undefined
  let disposed = false
  let chain: Promise<unknown> = Promise.resolve()
  let originHead = -1n

  /** Runs `fn` after every earlier operation: scans and handling never interleave. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    if (disposed) return Promise.reject(new AgentDisposedError(`layerzero ${cfg.name} disposed`))
    const run = chain.catch(() => undefined).then(fn)
    chain = run
    return run
  }

  async function loadCursor(): Promise<PacketCursor> {
    const saved = await cfg.cursorStore.load()
    if (saved) return { ...saved, rejected: saved.rejected ?? [], paths: saved.paths ?? {} }
    return { nextBlock: cfg.fromBlock.toString(), pending: [], rejected: [], paths: {} }
  }

  async function scanOnce(): Promise<number> {
    const cursor = await loadCursor()
    const next = BigInt(cursor.nextBlock)
    const head = await cfg.origin.client.getBlockNumber({ cacheTime: 0 })
    originHead = head
    const safe = head - confirmations
    if (safe < next) return 0
    const to = next + maxBlockRange - 1n < safe ? next + maxBlockRange - 1n : safe
    const logs = await cfg.origin.client.getLogs({
      address: originEndpoint,
      event: PACKET_SENT,
      fromBlock: next,
      toBlock: to,
      strict: true,
    })
    const known = new Set([...cursor.pending, ...cursor.rejected].map((p) => p.guid))
    const saved = cursor.paths ?? {}
    const paths: Record<string, PathMark> = { ...saved }
    const added: PendingPacket[] = []
    let seen = 0
    logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : Number(a.blockNumber - b.blockNumber)))
    for (const log of logs) {
      let packet: DecodedPacket
      try {
        packet = decodePacket(log.args.encodedPayload)
      } catch (err) {
        onError(new Error(`skipping an undecodable PacketSent in origin tx ${log.transactionHash}`, { cause: err }))
        continue
      }
      if (packet.srcEid !== cfg.origin.eid || packet.dstEid !== cfg.dstEid) continue
      if (receivers && !receivers.has(packet.receiver)) continue
      const path = `${packet.sender.toLowerCase()}|${packet.receiver.toLowerCase()}`
      const last = paths[path]
      if (last !== undefined && packet.nonce <= BigInt(last.nonce)) continue // seen before (a block read again)
      if (last !== undefined && packet.nonce > BigInt(last.nonce) + 1n) {
        // Packets of this path were not in the logs: read again from the block of its last one seen.
        const back = saved[path] ? BigInt(saved[path].block) : next
        onError(
          new Error(
            `path ${path}: packet ${packet.nonce} follows ${last.nonce} (blocks ${next}–${to} read without the ones between); reading again from block ${back}`,
          ),
        )
        await cfg.cursorStore.save({ ...cursor, nextBlock: (back < next ? back : next).toString() })
        return 0
      }
      paths[path] = { nonce: packet.nonce.toString(), block: log.blockNumber.toString() }
      if (known.has(packet.guid)) continue
      const verdict = cfg.accept ? await cfg.accept(packet) : true
      if (verdict !== true) {
        known.add(packet.guid)
        cfg.onIgnored?.(packet, verdict)
        continue
      }
      known.add(packet.guid)
      added.push({
        guid: packet.guid,
        nonce: packet.nonce.toString(),
        encodedPacket: log.args.encodedPayload,
        options: log.args.options,
        blockNumber: log.blockNumber.toString(),
        txHash: log.transactionHash,
      })
      seen += 1
    }
    await cfg.cursorStore.save({ ...cursor, pending: [...cursor.pending, ...added], paths, nextBlock: (to + 1n).toString() })
    return seen
  }

  async function processOnce(): Promise<Omit<PacketPollResult<D>, 'seen'>> {
    const cursor = await loadCursor()
    const rejected = cursor.rejected
    const completed: D[] = []
    const alreadyCompleted: Hex[] = []
    const ignored: Hex[] = []
    const newlyRejected: RejectedPacket[] = []
    const gone = new Set<Hex>()
    const save = () => cfg.cursorStore.save({ ...cursor, pending: cursor.pending.filter((p) => !gone.has(p.guid)), rejected })
    const drop = async (p: PendingPacket, into: Hex[]) => {
      gone.add(p.guid)
      into.push(p.guid)
      await save()
    }
    if (originHead < 0n) originHead = await cfg.origin.client.getBlockNumber({ cacheTime: 0 })
    for (const p of cursor.pending) {
      if (disposed) break
      if (p.nextAttemptAt !== undefined && now() < p.nextAttemptAt) continue // backing off
      let packet: DecodedPacket | undefined
      try {
        packet = decodePacket(p.encodedPacket)
        const outcome = await cfg.handle(p, packet, { originHead, attempts: p.attempts ?? 0 })
        if (outcome.kind === 'waiting') continue
        if (outcome.kind === 'already') {
          await drop(p, alreadyCompleted)
          continue
        }
        if (outcome.kind === 'ignored') {
          onError(new Error(`packet ${p.guid} (nonce ${p.nonce}) dropped: ${outcome.reason}`))
          await drop(p, ignored)
          continue
        }
        gone.add(p.guid)
        completed.push(outcome.result)
        await save()
        cfg.onDone?.(outcome.result)
      } catch (err) {
        try {
          if (isTransportError(err)) {
            onError(
              new Error(`packet ${p.guid} (nonce ${p.nonce}): the RPC node failed (not counted as an attempt); will retry`, { cause: err }),
            )
            continue
          }
          if (packet && (await cfg.isHandled(packet).catch(() => false))) {
            await drop(p, alreadyCompleted)
            continue
          }
          const attempts = (p.attempts ?? 0) + 1
          const lastError = failureReason(err, cfg.errorAbi)
          if (attempts >= maxAttempts) {
            const { attempts: _a, nextAttemptAt: _n, lastError: _l, ...rest } = p
            const r: RejectedPacket = { ...rest, attempts, lastError, rejectedAt: now() }
            rejected.push(r)
            gone.add(p.guid)
            newlyRejected.push(r)
            await save()
            onError(
              new Error(`packet ${p.guid} (nonce ${p.nonce}) rejected after ${attempts} failed attempts: ${lastError}`, { cause: err }),
            )
            cfg.onRejected?.(r)
          } else {
            const wait = Math.min(maxRetryBackoffMs, retryBackoffMs * 2 ** (attempts - 1))
            Object.assign(p, { attempts, lastError, nextAttemptAt: now() + wait })
            await save()
            onError(
              new Error(
                `packet ${p.guid} (nonce ${p.nonce}) failed (attempt ${attempts} of ${maxAttempts}): ${lastError}; retrying in ${wait} ms`,
                { cause: err },
              ),
            )
          }
        } catch (saveErr) {
          onError(new Error(`recording the failed attempt on packet ${p.guid} failed`, { cause: saveErr }))
        }
      }
    }
    cfg.onBacklog?.({ pending: cursor.pending.length - gone.size, rejected: rejected.length })
    return { completed, alreadyCompleted, ignored, rejected: newlyRejected, pending: cursor.pending.length - gone.size }
  }

  async function requeueOnce(guids?: readonly Hex[]): Promise<number> {
    const cursor = await loadCursor()
    const wanted = guids && new Set(guids.map((g) => g.toLowerCase()))
    const back = cursor.rejected.filter((r) => !wanted || wanted.has(r.guid.toLowerCase()))
    if (back.length === 0) return 0
    const moved = new Set(back.map((r) => r.guid))
    const pending: PendingPacket[] = back.map(({ attempts: _a, rejectedAt: _r, ...rest }) => rest)
    await cfg.cursorStore.save({
      ...cursor,
      pending: [...cursor.pending, ...pending],
      rejected: cursor.rejected.filter((r) => !moved.has(r.guid)),
    })
    return back.length
  }

  const agent: PacketAgent<D> = {
    scan: () => serial(scanOnce),
    process: () => serial(processOnce),
    async poll() {
      const seen = await agent.scan()
      return { seen, ...(await agent.process()) }
    },
    pending: () => serial(async () => (await loadCursor()).pending),
    rejected: () => serial(async () => (await loadCursor()).rejected),
    requeue: (guids) => serial(() => requeueOnce(guids)),
    start(signal) {
      if (disposed) throw new AgentDisposedError(`layerzero ${cfg.name} disposed`)
      if (controller) throw new Error(`layerzero ${cfg.name} already started`)
      controller = new AbortController()
      const sig = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal
      loop = runWakeablePollLoop(
        async () => {
          await agent.poll()
        },
        { intervalMs: cfg.pollingIntervalMs ?? 50, signal: sig, onError },
      )
    },
    wake() {
      loop?.wake()
    },
    async stop() {
      controller?.abort()
      await loop?.done
      await chain.catch(() => undefined)
      controller = undefined
      loop = undefined
    },
    async [Symbol.asyncDispose]() {
      await agent.stop()
      disposed = true
    },
  }
  return agent
}
