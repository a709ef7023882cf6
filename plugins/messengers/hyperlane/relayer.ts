/**
 * A local Hyperlane relayer for one origin → destination route and MessageIdMultisigIsm security.
 * It follows the origin mailbox's `Dispatch` logs for the destination domain (pairing each with the
 * MerkleTreeHook's `InsertedIntoTree` log to learn its tree index and keeping the dispatch tx hash),
 * and delivers each message through `@hyperlane-xyz/sdk`'s `HyperlaneRelayer.relayMessage`, whose
 * multisig metadata builder reads the validators' signed checkpoints from our `CheckpointStore`s
 * instead of their S3 buckets (see `sdk-relay.ts`; the SDK is imported lazily, on the first
 * delivery, because it costs seconds and hundreds of MB).
 *
 * Scanning, the cursor and idempotency are ours: every attempt first checks `delivered(messageId)`
 * (viem), and a message found delivered after a failure (another relayer was faster) counts as
 * done. The cursor (next origin block to scan, the messages seen but not yet delivered, and the
 * rejected ones) is saved after every scan and every delivery or failed attempt, so a restarted
 * relayer with the same cursor store neither misses nor repeats a message. Each poll scans at most
 * `maxBlockRange` blocks and tries each due pending message once.
 *
 * Failed attempts (the destination rejects `process`: the recipient reverts, the ISM refuses the
 * metadata, …) are retried with exponential backoff (`retryBackoffMs` · 2^(attempts−1), capped at
 * `maxRetryBackoffMs`), persisted per message in the cursor (`attempts`, `nextAttemptAt`,
 * `lastError`); after `maxAttempts` the message moves to the cursor's `rejected` list with its last
 * error, is reported through the poll result and `onRejected`, and is not tried again. Not
 * attempts: waiting for validator signatures, and RPC transport failures (node unreachable or
 * timing out: the message is retried next poll without being counted), nor a failure to load the
 * SDK.
 *
 * Not handled: reorgs deeper than `confirmations`, gas payment (IGP) checks, ISM types the SDK's
 * metadata builder cannot build with local checkpoints (merkle-root multisig, CCIP-read, …).
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  getAbiItem,
  getAddress,
  HttpRequestError,
  isHex,
  keccak256,
  TimeoutError,
  type Abi,
  type Address,
  type Hex,
} from 'viem'
import { Mailbox, MerkleTreeHook } from '../../../contracts/artifacts/hyperlane/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { runPollLoop } from './loop.ts'
import { parseMessage } from './message.ts'
import type { SdkLogLevel, SdkRelay } from './sdk-relay.ts'
import type { CheckpointStore, PendingMessage, RejectedMessage, RelayerCursor, RelayerCursorStore } from './stores.ts'

const DISPATCH = getAbiItem({ abi: Mailbox.abi, name: 'Dispatch' })
const INSERTED = getAbiItem({ abi: MerkleTreeHook.abi, name: 'InsertedIntoTree' })

export type RelayerOrigin = {
  client: Pick<SertnClient, 'getBlockNumber' | 'getLogs' | 'readContract'>
  mailbox: Address
  merkleTreeHook: Address
  domain: number
  /** JSON-RPC URL for the SDK's ethers provider (default: the client's http transport URL or its chain's). */
  rpcUrl?: string
}

export type RelayerDestination = {
  /** Sends the `process` transactions (through the SDK, signed by this client's account). */
  client: SertnClient
  mailbox: Address
  domain: number
  /** JSON-RPC URL for the SDK's ethers provider (default: the client's http transport URL or its chain's). */
  rpcUrl?: string
}

export type LocalRelayerConfig = {
  origin: RelayerOrigin
  destination: RelayerDestination
  /** Validator checkpoint stores (by the validator each belongs to). */
  checkpointStores: readonly CheckpointStore[]
  cursorStore: RelayerCursorStore
  /**
   * The validator set and threshold to build metadata for. By default the SDK reads them per
   * message from the recipient's ISM (`recipientIsm` → `validatorsAndThreshold`), as real relayers do.
   */
  validators?: readonly Address[]
  threshold?: number
  /** First origin block to scan without a saved cursor (default: the mailbox's `deployedBlock()`). */
  fromBlock?: bigint
  confirmations?: number
  maxBlockRange?: bigint
  pollingIntervalMs?: number
  /** Failed attempts after which a message is rejected (default 8). */
  maxAttempts?: number
  /** Wait after the first failed attempt, doubled after each further one (default 1000 ms). */
  retryBackoffMs?: number
  /** Longest wait between two attempts (default 300000 ms). */
  maxRetryBackoffMs?: number
  /** Custom errors recipients or ISMs may revert with, to name them in `lastError` (else their raw data). */
  errorAbi?: Abi
  /** The clock for backoff deadlines (ms since the epoch; default `Date.now`). */
  now?: () => number
  /** Level of the SDK's own logs (pino JSON on stdout; default `warn`). */
  sdkLogLevel?: SdkLogLevel
  onError?: (err: unknown) => void
  onDelivered?: (d: Delivery) => void
  /** A message given up on after `maxAttempts` failed attempts. */
  onRejected?: (r: RejectedMessage) => void
}

export type Delivery = {
  messageId: Hex
  index: number
  transactionHash: Hex
  gasUsed: bigint
  /** Milliseconds from submitting `process` to its receipt: the destination chain's inclusion wait. */
  inclusionMs: number
}

export type RelayerPollResult = {
  /** Messages newly seen for the destination in this poll. */
  seen: number
  delivered: Delivery[]
  /** Message ids found already delivered (by anyone) and dropped. */
  alreadyDelivered: Hex[]
  /** Messages rejected in this poll (their last attempt failed and was the `maxAttempts`-th). */
  rejected: RejectedMessage[]
  /** Messages still waiting (for signatures, or for their next attempt after a failed one). */
  pending: number
}

export type LocalRelayer = {
  /** Scans the next bounded range of origin blocks and records the messages for the destination. */
  scan(): Promise<number>
  /** Tries to deliver every pending message that is due once. */
  deliver(): Promise<Omit<RelayerPollResult, 'seen'>>
  /** `scan()` then `deliver()`. */
  poll(): Promise<RelayerPollResult>
  /** The messages given up on so far (from the cursor). */
  rejected(): Promise<RejectedMessage[]>
  /**
   * Loads and builds the SDK relay now instead of on the first delivery (importing the SDK takes
   * seconds): a long-lived relayer calls it at start so that its first message is not delayed.
   */
  prepare(): Promise<void>
  start(signal?: AbortSignal): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** The revert reason of a failed simulation, if viem decoded one. */
export function revertReason(err: unknown): string | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
  return reverted instanceof ContractFunctionRevertedError ? reverted.reason : undefined
}

/** The errors an error wraps (`cause`, and ethers v5's `error`), depth first, itself included. */
function errorChain(err: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = []
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number) => {
    if (typeof e !== 'object' || e === null || seen.has(e) || depth > 8) return
    seen.add(e)
    const r = e as Record<string, unknown>
    out.push(r)
    visit(r.cause, depth + 1)
    visit(r.error, depth + 1)
  }
  visit(err, 0)
  return out
}

/** Decodes revert data: `Error(string)`, `Panic(uint256)`, a custom error of `abi`, or the raw data. */
function decodeRevertData(data: Hex, abi: Abi): string {
  if (data === '0x') return 'reverted without a reason'
  try {
    const { errorName, args } = decodeErrorResult({ abi, data })
    return errorName === 'Error' ? String(args?.[0]) : `${errorName}(${(args ?? []).map(String).join(', ')})`
  } catch {
    return `custom error ${data.length > 138 ? `${data.slice(0, 138)}…` : data}`
  }
}

/**
 * Why a delivery attempt failed, for the cursor and the operator: the revert reason when the
 * destination rejected `process` (from viem or ethers v5 errors), else the error's first line.
 */
export function failureReason(err: unknown, errorAbi: Abi = []): string {
  const viemReason = revertReason(err)
  if (viemReason) return viemReason
  for (const e of errorChain(err)) {
    // ethers v5 (CALL_EXCEPTION, UNPREDICTABLE_GAS_LIMIT) and JSON-RPC errors carry the revert data.
    if (typeof e.data === 'string' && isHex(e.data) && (e.data === '0x' || e.data.length >= 10)) return decodeRevertData(e.data, errorAbi)
  }
  for (const e of errorChain(err)) {
    if (typeof e.reason === 'string' && e.reason) return e.reason.replace(/^execution reverted: /, '')
  }
  const message = err instanceof Error ? err.message : String(err)
  return (message.split('\n')[0] ?? message).slice(0, 500)
}

const TRANSPORT_CODES = new Set([
  'NETWORK_ERROR',
  'TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EPIPE',
])

/** Whether `err` is the RPC node being unreachable (not the chain rejecting anything). */
export function isTransportError(err: unknown): boolean {
  if (err instanceof BaseError && err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError)) return true
  return errorChain(err).some(
    (e) =>
      (typeof e.code === 'string' && TRANSPORT_CODES.has(e.code)) ||
      // ethers v5: a request that got no JSON-RPC response at all
      (e.code === 'SERVER_ERROR' && e.reason === 'missing response'),
  )
}

/** A failure that is not the message's fault (the SDK could not be loaded or set up). */
class RelayUnavailableError extends Error {
  override readonly name = 'RelayUnavailableError'
}

/** The http URL a viem client talks to, if it shows one. */
function clientRpcUrl(client: unknown): string | undefined {
  const c = client as { transport?: { url?: unknown }; chain?: { rpcUrls?: { default?: { http?: readonly unknown[] } } } }
  const url = c.transport?.url ?? c.chain?.rpcUrls?.default?.http?.[0]
  return typeof url === 'string' ? url : undefined
}

async function chainIdOf(client: unknown, rpcUrl: string): Promise<number> {
  const id = (client as { chain?: { id?: unknown } }).chain?.id
  if (typeof id === 'number') return id
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
  })
  const body = (await res.json()) as { result?: string }
  if (!body.result) throw new Error(`${rpcUrl}: no eth_chainId`)
  return Number(BigInt(body.result))
}

export function createLocalRelayer(cfg: LocalRelayerConfig): LocalRelayer {
  const origin = { ...cfg.origin, mailbox: getAddress(cfg.origin.mailbox), merkleTreeHook: getAddress(cfg.origin.merkleTreeHook) }
  const dest = { ...cfg.destination, mailbox: getAddress(cfg.destination.mailbox) }
  const stores = new Map(cfg.checkpointStores.map((s) => [getAddress(s.validator), s]))
  const confirmations = BigInt(cfg.confirmations ?? 0)
  const maxBlockRange = cfg.maxBlockRange ?? 1000n
  const maxAttempts = cfg.maxAttempts ?? 8
  const retryBackoffMs = cfg.retryBackoffMs ?? 1_000
  const maxRetryBackoffMs = cfg.maxRetryBackoffMs ?? 300_000
  const now = cfg.now ?? Date.now
  const onError = cfg.onError ?? ((e: unknown) => console.warn('[hyperlane-relayer]', e))
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new Error(`maxAttempts must be a positive integer, got ${maxAttempts}`)
  if ((cfg.validators === undefined) !== (cfg.threshold === undefined)) throw new Error('validators and threshold go together')
  let controller: AbortController | undefined
  let loop: Promise<void> | undefined
  let disposed = false
  let chain: Promise<unknown> = Promise.resolve()
  let sdkRelay: Promise<SdkRelay> | undefined

  /** Runs `fn` after every earlier operation: scans and deliveries never interleave. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    if (disposed) return Promise.reject(new Error('relayer disposed'))
    const run = chain.catch(() => undefined).then(fn)
    chain = run
    return run
  }

  /** The SDK-backed relay, imported and built on first use (and again after a failed try). */
  function relay(): Promise<SdkRelay> {
    sdkRelay ??= (async () => {
      try {
        const originUrl = cfg.origin.rpcUrl ?? clientRpcUrl(cfg.origin.client)
        const destUrl = cfg.destination.rpcUrl ?? clientRpcUrl(cfg.destination.client)
        if (!originUrl || !destUrl) throw new Error('the relayer needs the origin and destination RPC URLs (rpcUrl, or an http client)')
        const [originChainId, destChainId, { createSdkRelay }] = await Promise.all([
          chainIdOf(cfg.origin.client, originUrl),
          chainIdOf(cfg.destination.client, destUrl),
          import('./sdk-relay.ts'),
        ])
        return createSdkRelay({
          origin: {
            domain: origin.domain,
            chainId: originChainId,
            rpcUrl: originUrl,
            mailbox: origin.mailbox,
            merkleTreeHook: origin.merkleTreeHook,
          },
          destination: { domain: dest.domain, chainId: destChainId, rpcUrl: destUrl, mailbox: dest.mailbox, account: dest.client.account },
          stores,
          ...(cfg.validators && cfg.threshold !== undefined
            ? { validatorSet: { validators: cfg.validators.map((v) => getAddress(v)), threshold: cfg.threshold } }
            : {}),
          pollingIntervalMs: cfg.pollingIntervalMs ?? 100,
          ...(cfg.sdkLogLevel ? { logLevel: cfg.sdkLogLevel } : {}),
          onInvalidCheckpoint: onError,
        })
      } catch (err) {
        sdkRelay = undefined
        throw new RelayUnavailableError('could not set up the Hyperlane SDK relayer', { cause: err })
      }
    })()
    return sdkRelay
  }

  async function loadCursor(): Promise<RelayerCursor> {
    const saved = await cfg.cursorStore.load()
    if (saved) return saved
    const from =
      cfg.fromBlock ?? (await origin.client.readContract({ address: origin.mailbox, abi: Mailbox.abi, functionName: 'deployedBlock' }))
    return { nextBlock: from.toString(), pending: [], rejected: [] }
  }

  async function scanOnce(): Promise<number> {
    const cursor = await loadCursor()
    const next = BigInt(cursor.nextBlock)
    const head = (await origin.client.getBlockNumber({ cacheTime: 0 })) - confirmations
    if (head < next) return 0
    const to = next + maxBlockRange - 1n < head ? next + maxBlockRange - 1n : head
    const [dispatches, insertions] = await Promise.all([
      origin.client.getLogs({
        address: origin.mailbox,
        event: DISPATCH,
        args: { destination: dest.domain },
        fromBlock: next,
        toBlock: to,
        strict: true,
      }),
      origin.client.getLogs({ address: origin.merkleTreeHook, event: INSERTED, fromBlock: next, toBlock: to, strict: true }),
    ])
    const indexOf = new Map(insertions.map((l) => [l.args.messageId, l.args.index]))
    const known = new Set([...cursor.pending, ...(cursor.rejected ?? [])].map((p) => p.messageId))
    let seen = 0
    for (const log of dispatches) {
      const message = log.args.message
      const id = keccak256(message)
      const index = indexOf.get(id)
      if (index === undefined) {
        onError(
          new Error(
            `message ${id} was not inserted into merkle tree hook ${origin.merkleTreeHook}: cannot relay it with a message-id multisig ISM`,
          ),
        )
        continue
      }
      if (known.has(id)) continue
      known.add(id)
      cursor.pending.push({ message, messageId: id, index, blockNumber: log.blockNumber.toString(), dispatchTx: log.transactionHash })
      seen += 1
    }
    cursor.pending.sort((a, b) => a.index - b.index)
    await cfg.cursorStore.save({ ...cursor, nextBlock: (to + 1n).toString() })
    return seen
  }

  const isDelivered = (id: Hex) =>
    dest.client.readContract({ address: dest.mailbox, abi: Mailbox.abi, functionName: 'delivered', args: [id] })

  async function deliverOnce(): Promise<Omit<RelayerPollResult, 'seen'>> {
    const cursor = await loadCursor()
    const rejected = cursor.rejected ?? []
    const delivered: Delivery[] = []
    const alreadyDelivered: Hex[] = []
    const newlyRejected: RejectedMessage[] = []
    const done = new Set<Hex>()
    const save = () =>
      cfg.cursorStore.save({ nextBlock: cursor.nextBlock, pending: cursor.pending.filter((p) => !done.has(p.messageId)), rejected })
    const dropDelivered = async (p: PendingMessage) => {
      done.add(p.messageId)
      alreadyDelivered.push(p.messageId)
      await save()
    }
    for (const p of cursor.pending) {
      if (disposed) break
      if (p.nextAttemptAt !== undefined && now() < p.nextAttemptAt) continue // backing off
      try {
        if (await isDelivered(p.messageId)) {
          await dropDelivered(p)
          continue
        }
        const m = parseMessage(p.message)
        if (m.origin !== origin.domain || m.destination !== dest.domain)
          throw new Error(`message ${p.messageId} is for route ${m.origin}→${m.destination}`)
        const outcome = await (await relay()).relay(p)
        if (outcome.kind === 'awaiting-signatures') continue // not an attempt
        if (outcome.kind === 'already-delivered') {
          await dropDelivered(p)
          continue
        }
        done.add(p.messageId)
        const d = {
          messageId: p.messageId,
          index: p.index,
          transactionHash: outcome.transactionHash,
          gasUsed: outcome.gasUsed,
          inclusionMs: outcome.inclusionMs,
        }
        delivered.push(d)
        await save()
        cfg.onDelivered?.(d)
      } catch (err) {
        try {
          if (err instanceof RelayUnavailableError || isTransportError(err)) {
            onError(
              new Error(`delivering message ${p.messageId} (index ${p.index}) failed (not counted as an attempt); will retry`, {
                cause: err,
              }),
            )
            continue
          }
          // Another relayer may have delivered it meanwhile (`process` then reverts "already delivered").
          if (await isDelivered(p.messageId).catch(() => false)) {
            await dropDelivered(p)
            continue
          }
          const attempts = (p.attempts ?? 0) + 1
          const lastError = failureReason(err, cfg.errorAbi)
          if (attempts >= maxAttempts) {
            const { attempts: _a, nextAttemptAt: _n, lastError: _l, ...msg } = p
            const r: RejectedMessage = { ...msg, attempts, lastError, rejectedAt: now() }
            rejected.push(r)
            done.add(p.messageId)
            newlyRejected.push(r)
            await save()
            onError(
              new Error(`message ${p.messageId} (index ${p.index}) rejected after ${attempts} failed attempts: ${lastError}`, {
                cause: err,
              }),
            )
            cfg.onRejected?.(r)
          } else {
            const wait = Math.min(maxRetryBackoffMs, retryBackoffMs * 2 ** (attempts - 1))
            Object.assign(p, { attempts, lastError, nextAttemptAt: now() + wait })
            await save()
            onError(
              new Error(
                `delivering message ${p.messageId} (index ${p.index}) failed (attempt ${attempts} of ${maxAttempts}): ${lastError}; retrying in ${wait} ms`,
                { cause: err },
              ),
            )
          }
        } catch (saveErr) {
          onError(new Error(`recording the failed delivery of message ${p.messageId} failed`, { cause: saveErr }))
        }
      }
    }
    return { delivered, alreadyDelivered, rejected: newlyRejected, pending: cursor.pending.length - done.size }
  }

  const relayer: LocalRelayer = {
    scan: () => serial(scanOnce),
    deliver: () => serial(deliverOnce),
    async poll() {
      const seen = await relayer.scan()
      return { seen, ...(await relayer.deliver()) }
    },
    rejected: () => serial(async () => (await loadCursor()).rejected ?? []),
    prepare: async () => {
      await relay()
    },
    start(signal) {
      if (controller) throw new Error('relayer already started')
      controller = new AbortController()
      const sig = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal
      loop = runPollLoop(
        async () => {
          await relayer.poll()
        },
        { intervalMs: cfg.pollingIntervalMs ?? 100, signal: sig, onError },
      ).done
    },
    async stop() {
      controller?.abort()
      await loop
      await chain.catch(() => undefined)
      controller = undefined
      loop = undefined
    },
    async [Symbol.asyncDispose]() {
      await relayer.stop()
      disposed = true
      const r = sdkRelay
      sdkRelay = undefined
      ;(await r?.catch(() => undefined))?.close()
    },
  }
  return relayer
}
