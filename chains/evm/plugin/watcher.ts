/**
 * The request watcher: a polling loop over `InferenceRequested` logs of one gateway.
 *
 * Confirmations: a block B is read only once `confirmations` blocks have been mined on top of it,
 * i.e. when `head - B >= confirmations` (the request's own block does not count; 0 means the head
 * block itself is read). Blocks that are not yet confirmed are never read, so a reorg shallower
 * than or as deep as `confirmations` is invisible to consumers.
 *
 * Delivery is at-least-once and in chain order (block, then log index), one `onRequest` at a time.
 * The cursor (the last fully processed block, `-1` before block 0, and the hashes of recently
 * processed blocks) is persisted only after `onRequest` has resolved for every request up to it:
 * after each block that held requests, and at the end of each scanned range (at most
 * `maxBlockRange` blocks). So after a crash, a throwing `onRequest` (which ends the watch with that
 * error) or an abort in the middle of a block, a restart re-delivers exactly the requests of the
 * block that was being delivered (those already delivered included) and nothing before it. An abort
 * lets the running `onRequest` finish and its cursor write complete; once `watchRequests` has
 * resolved nothing more is delivered or written. Transient failures (RPC, store) are reported to
 * `onError` and retried with backoff (at most 10 s between tries).
 *
 * Reorgs deeper than the confirmations: every poll compares the stored hash of the cursor block with
 * the chain. If it differs, the newest stored block that still matches (binary search over the
 * remembered hashes) is the common ancestor: the cursor rewinds to it and the blocks after it are
 * scanned again. Requests in the new branch are delivered again with the same key (consumers dedupe
 * by key); a request whose transaction vanished is not delivered again. If no remembered hash
 * matches (a reorg deeper than `reorgDepth` blocks, or a cursor from another chain) the cursor
 * rewinds to just before the oldest remembered block and `onReorg` says so. Remembered: the hash of
 * every scanned block within `reorgDepth` of the head when it was scanned, of every block that held
 * a request and of the end of every range; the newest `reorgDepth` of them are kept.
 * Caveats for consumers: a request replayed into a later block may carry a different `deadline`
 * (block time + timeout) and always a different `seenAt`; and once a request's transaction is
 * dropped, its id is free again, so the next request on the new branch gets the same id and key
 * with other contents (compare `seenAt.transactionHash` or `input` to tell them apart).
 *
 * Start: the saved cursor if there is one; otherwise `fromBlock`; otherwise the first block that
 * is not yet confirmed at start (the head itself when confirmations ≤ 1), so that nothing that
 * becomes deliverable after the start is skipped. The starting cursor is saved at once, so a
 * restart before the first request does not move the start forward.
 */
import { resolve } from 'node:path'
import { getAbiItem, getAddress, type Address, type Chain, type Hex, type PublicClient, type Transport } from 'viem'
import { InferenceGateway } from '../../../contracts/artifacts/index.ts'
import { ChainTransientError, PluginError, SertnError } from '../../../core/errors.ts'
import { reportChain } from '../../../core/health.ts'
import { metrics } from '../../../core/metrics.ts'
import type { WatchCursor, WatchOptions } from '../../../core/plugins.ts'
import { requestKey, type ChainId, type InferenceRequest, type ModelId, type RequestId } from '../../../core/types.ts'
import { FileCursorStore, type CursorStore } from './cursor-store.ts'

const REQUESTED = getAbiItem({ abi: InferenceGateway.abi, name: 'InferenceRequested' })

/** What the watcher reports when it rewinds after a reorg. */
export type ReorgInfo = {
  /** The cursor block before the rewind. */
  readonly from: bigint
  /** The cursor block after it: the last block that is still on the chain (the common ancestor). */
  readonly to: bigint
  /** False when no remembered hash matched (a reorg deeper than `reorgDepth`): `to` is a best guess. */
  readonly commonAncestorFound: boolean
}

export type WatcherConfig = {
  client: PublicClient<Transport, Chain>
  /**
   * The chain's configured name: each poll reports the last scanned block, the head and the lag
   * under it (core/health.ts, `sertn_watcher_*` metrics), and each failure as its last error.
   */
  chainName?: string
  chainId: ChainId
  gateway: Address
  confirmations: bigint
  pollingIntervalMs: number
  maxBlockRange: bigint
  reorgDepth: number
  store: CursorStore
  key: string
  /** Transient failures the loop retries (RPC down, a cursor store that failed to write). */
  onError: (err: unknown) => void
  onReorg: (info: ReorgInfo) => void
  /** Checks once that the RPC serves the configured chain; throws ConfigError otherwise. */
  assertChain: () => Promise<void>
}

type Cursor = { block: bigint; hashes: { number: bigint; hash: Hex }[] }

const toWire = (c: Cursor): WatchCursor => ({
  blockNumber: c.block.toString(),
  recentHashes: c.hashes.map((h) => ({ number: h.number.toString(), hash: h.hash })),
})
const fromWire = (c: WatchCursor): Cursor => ({
  block: BigInt(c.blockNumber),
  hashes: c.recentHashes.map((h) => ({ number: BigInt(h.number), hash: h.hash })),
})

/** An `onRequest` failure: ends the watch (the cursor stays before the failed request's block). */
class DeliveryError extends Error {
  constructor(readonly original: unknown) {
    super('onRequest failed')
  }
}

/** The chain changed between our reads (a reorg in progress): retry the poll. */
class InconsistentReadError extends ChainTransientError {
  override name = 'InconsistentReadError'
}

const ABORTED = Symbol('aborted')

/** `p`, or a rejection with ABORTED as soon as `signal` aborts. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined)
    return Promise.reject(ABORTED)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(ABORTED)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

const MAX_BACKOFF_MS = 10_000

/** Runs the watch loop until `options.signal` aborts (resolves) or `onRequest` throws (rejects with its error). */
export async function runWatcher(cfg: WatcherConfig, options: WatchOptions): Promise<void> {
  const { signal, onRequest } = options
  const { client, confirmations } = cfg
  const guard = <T>(p: Promise<T>) => abortable(p, signal)

  const hashAt = async (n: bigint): Promise<Hex | undefined> => {
    try {
      return (await guard(client.getBlock({ blockNumber: n }))).hash
    } catch (err) {
      if (err instanceof Error && err.name === 'BlockNotFoundError') return undefined
      throw err
    }
  }

  // Saves are never abandoned on abort: once watchRequests has resolved, no write is still under way.
  const save = (c: Cursor) => cfg.store.save(cfg.key, toWire(c))

  const toRequest = (log: Log): InferenceRequest => {
    const a = log.args
    return {
      key: requestKey(cfg.chainId, cfg.gateway, a.requestId),
      chainId: cfg.chainId,
      gateway: cfg.gateway,
      requestId: a.requestId.toString() as RequestId,
      modelId: a.modelId as ModelId,
      modelVersion: Number(a.modelVersion),
      requester: getAddress(a.requester),
      input: a.input.map((x) => x.toString()),
      ...(BigInt(a.inputRef) !== 0n ? { inputRef: a.inputRef } : {}),
      callbackGasLimit: Number(a.callbackGasLimit),
      escrow: a.escrow.toString(),
      deadline: Number(a.deadline),
      seenAt: {
        blockNumber: log.blockNumber.toString(),
        blockHash: log.blockHash,
        transactionHash: log.transactionHash,
        logIndex: log.logIndex,
      },
    }
  }

  /** The cursor moved to `block`, remembering the hashes of `known` blocks in (old cursor, block]. */
  const advance = (c: Cursor, block: bigint, known: Map<bigint, Hex>): Cursor => {
    const added = [...known.entries()]
      .filter(([n]) => n > c.block && n <= block)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([number, hash]) => ({ number, hash }))
    return { block, hashes: [...c.hashes.filter((h) => h.number <= c.block), ...added].slice(-cfg.reorgDepth) }
  }

  const initialCursor = async (head: bigint): Promise<Cursor> => {
    // Default: the first block that is not yet confirmed now (the head when confirmations ≤ 1), so
    // nothing that becomes deliverable after the start is skipped.
    let start = options.fromBlock ?? head - confirmations + 1n
    if (options.fromBlock === undefined && start > head) start = head
    if (start < 0n) start = 0n
    const block = start - 1n
    const hash = block >= 0n && block <= head ? await hashAt(block) : undefined
    const c: Cursor = { block, hashes: hash ? [{ number: block, hash }] : [] }
    await save(c)
    return c
  }

  /** Rewinds `c` to the common ancestor if the chain no longer has its blocks. */
  const checkReorg = async (c: Cursor): Promise<Cursor> => {
    const last = c.hashes.at(-1)
    if (!last || (await hashAt(last.number)) === last.hash) return c
    // Binary search for the newest remembered block still on the chain (if block n is, so are all
    // blocks before it).
    let lo = 0
    let hi = c.hashes.length - 2
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const h = c.hashes[mid]!
      if ((await hashAt(h.number)) === h.hash) {
        found = mid
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    const rewound: Cursor =
      found >= 0
        ? { block: c.hashes[found]!.number, hashes: c.hashes.slice(0, found + 1) }
        : { block: c.hashes[0]!.number - 1n, hashes: [] }
    await save(rewound)
    cfg.onReorg({ from: c.block, to: rewound.block, commonAncestorFound: found >= 0 })
    return rewound
  }

  /** Scans (c.block, to], delivering requests; returns the cursor at `to`. */
  const scan = async (c: Cursor, to: bigint, head: bigint): Promise<Cursor> => {
    const from = c.block + 1n
    // Remember the hashes of the blocks that a reorg could still reach (and always of `to`).
    const windowStart = head - BigInt(cfg.reorgDepth) + 1n
    const hashFrom = from > windowStart ? from : windowStart < to ? windowStart : to
    const numbers: bigint[] = []
    for (let n = hashFrom; n <= to; n++) numbers.push(n)
    const headers = await guard(Promise.all(numbers.map((n) => client.getBlock({ blockNumber: n }))))
    const known = new Map<bigint, Hex>()
    headers.forEach((h, i) => {
      if (i > 0 && h.parentHash !== headers[i - 1]!.hash) throw new InconsistentReadError('the chain changed while it was read')
      known.set(numbers[i]!, h.hash)
    })
    const last = c.hashes.at(-1)
    if (hashFrom === from && last && last.number === c.block && headers[0]!.parentHash !== last.hash) {
      throw new InconsistentReadError('the chain changed since the reorg check')
    }

    const logs = (await guard(
      client.getLogs({ address: cfg.gateway, event: REQUESTED, fromBlock: from, toBlock: to, strict: true }),
    )) as Log[]
    logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1))
    for (const log of logs) {
      if (log.blockNumber < from || log.blockNumber > to)
        throw new InconsistentReadError(`a log from block ${log.blockNumber} outside ${from}..${to}`)
      const expected = known.get(log.blockNumber)
      if (expected !== undefined && expected !== log.blockHash) throw new InconsistentReadError('the chain changed while it was read')
      known.set(log.blockNumber, log.blockHash)
    }

    let cursor = c
    for (let i = 0; i < logs.length; ) {
      const block = logs[i]!.blockNumber
      for (; i < logs.length && logs[i]!.blockNumber === block; i++) {
        if (signal.aborted) return cursor
        try {
          await onRequest(toRequest(logs[i]!))
        } catch (err) {
          throw new DeliveryError(err)
        }
      }
      cursor = advance(cursor, block, known)
      await save(cursor)
    }
    cursor = advance(cursor, to, known)
    await save(cursor)
    return cursor
  }

  /** A successful poll: the cursor (last scanned block) against the head. */
  const report = (block: bigint, head: bigint) => {
    if (cfg.chainName === undefined || block < 0n) return
    const lag = head > block ? Number(head - block) : 0
    reportChain(cfg.chainName, { lastScannedBlock: block, head, lagBlocks: lag, lastScanAt: Date.now(), error: undefined })
    metrics.watcherBlock.set({ chain: cfg.chainName }, Number(block))
    metrics.watcherLag.set({ chain: cfg.chainName }, lag)
  }
  const reportError = (err: unknown) => {
    if (cfg.chainName !== undefined) reportChain(cfg.chainName, { error: err instanceof Error ? err.message : String(err) })
  }

  let cursor: Cursor | undefined
  let failures = 0
  let loaded = false
  while (!signal.aborted) {
    let more = false
    try {
      await guard(cfg.assertChain())
      if (!loaded) {
        const saved = await guard(cfg.store.load(cfg.key))
        cursor = saved && fromWire(saved)
        loaded = true
      }
      const head = await guard(client.getBlockNumber({ cacheTime: 0 }))
      cursor ??= await initialCursor(head)
      if (cursor.block > head) {
        if (cursor.hashes.length > 0) {
          cfg.onError(
            new ChainTransientError(
              `[${cfg.key}] the chain's head ${head} is behind the watch cursor ${cursor.block}: a lagging RPC, or a cursor saved for another chain (delete it)`,
            ),
          )
        }
      } else {
        cursor = await checkReorg(cursor)
        const safe = head - confirmations
        if (safe > cursor.block) {
          const end = cursor.block + cfg.maxBlockRange
          // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.min does not take
          const to = end < safe ? end : safe
          cursor = await scan(cursor, to, head)
          more = to < safe
        }
      }
      failures = 0
      report(cursor.block, head)
    } catch (err) {
      if (err === ABORTED || signal.aborted) break
      if (err instanceof DeliveryError) {
        reportError(err.original)
        throw err.original
      }
      if (err instanceof SertnError && !err.retryable) {
        reportError(err)
        throw err
      }
      if (err instanceof InconsistentReadError) {
        // A reorg is under way: the next poll's check will see it.
      } else {
        failures++
        reportError(err)
        cfg.onError(err)
      }
    }
    if (!more) {
      const backoff = Math.min(cfg.pollingIntervalMs * 2 ** Math.min(failures, 16), Math.max(MAX_BACKOFF_MS, cfg.pollingIntervalMs))
      await sleep(failures > 0 ? backoff : cfg.pollingIntervalMs, signal)
    }
  }
}

type Log = {
  blockNumber: bigint
  blockHash: Hex
  transactionHash: Hex
  logIndex: number
  args: {
    requestId: bigint
    modelId: Hex
    requester: Address
    input: readonly bigint[]
    inputRef: Hex
    modelVersion: number
    callbackGasLimit: number
    escrow: bigint
    deadline: number
  }
}

/** Process-wide guard: two loops on one cursor (same store, same key) would overwrite each other's progress. */
const activeByStore = new WeakMap<CursorStore, Set<string>>()
const activeFiles = new Set<string>()

/** Runs `fn` holding `key` in `store`; throws PluginError if another watcher in this process holds it. */
export async function withWatchKey<T>(plugin: string, store: CursorStore, key: string, fn: () => Promise<T>): Promise<T> {
  // File stores on the same directory are the same cursor, whichever instance reads them.
  const file = store instanceof FileCursorStore ? resolve(store.pathOf(key)) : undefined
  let held = file === undefined ? activeByStore.get(store) : activeFiles
  if (!held) {
    held = new Set()
    activeByStore.set(store, held)
  }
  const id = file ?? key
  if (held.has(id)) throw new PluginError(plugin, `a watcher on cursor ${file ?? key} is already running in this process`)
  held.add(id)
  try {
    return await fn()
  } finally {
    held.delete(id)
  }
}
