/**
 * A local Hyperlane relayer for one origin → destination route and MessageIdMultisigIsm security.
 * It follows the origin mailbox's `Dispatch` logs for the destination domain (pairing each with the
 * MerkleTreeHook's `InsertedIntoTree` log to learn its tree index, and with the sending port's
 * `PortMessageSent` log, if any, to learn its gas limit) at least `confirmations` blocks deep, and
 * delivers each message itself, with viem: it reads the recipient's ISM (its validators and
 * threshold) from the destination mailbox, takes the validators' signed checkpoints from our
 * `CheckpointStore`s (checking each signature), builds the MessageIdMultisigIsm metadata
 * (`message.ts`) and sends `Mailbox.process` through the account's process-wide send queue
 * (`chains/evm/plugin/sender.ts`, shared with the node: no nonce races).
 *
 * Gas. A message from a Sertn port carries a hint: the port's `PortMessageSent(…, messageId, …,
 * gasLimit)` in the dispatch transaction, emitted by the message's sender itself, says what the
 * recipient's handling needs (the analogue of an interchain gas payment). Its first attempt is sent
 * at once, with no estimate and no simulation: gas = hint + the transaction's intrinsic (calldata)
 * gas + `processOverheadGas` (the mailbox, the message-id multisig ISM and the port; default
 * 100,000) + `gasReserve`, capped at `maxGas`; a hint above `maxGas` is rejected at once, without a
 * transaction. Every other attempt (a retry after a failed one, or a message without a hint) is
 * estimated first: the estimate + 1/5 + `gasReserve` (default 100,000), as the hub node gives its
 * settling call (a recipient running a consumer callback under a gas limit needs what the 63/64
 * rule withholds at each nested call), capped at `maxGas` (default 5,000,000); a message whose
 * estimate exceeds the cap is rejected at once, without a transaction. A hint is trusted only as far
 * as its sender is: a relayer that serves unknown senders should filter routes (`shouldRelay`).
 *
 * Which messages: `shouldRelay` (a route filter, e.g. {@link enrolledRoutes}) sees every message
 * before it is attempted; a message it turns down goes to the cursor's `ignored` list with the
 * reason, is reported through `onIgnored`, and costs the relayer nothing. Without a filter the
 * relayer pays for anything sent to its destination.
 *
 * Scanning, the cursor and idempotency: every attempt first checks `delivered(messageId)`, and a
 * message found delivered after a failure (another relayer was faster) counts as done. The cursor
 * (next origin block to scan and that block's hash, the messages seen but not yet delivered, the
 * rejected and the ignored ones) is saved after every scan and every delivery or failed attempt,
 * so a restarted relayer with the same cursor store neither misses nor repeats a message. Each
 * poll scans at most `maxBlockRange` blocks and then tries each due pending message once. A
 * checkpoint put in a store the relayer shares with a validator (in this process) wakes its loop:
 * the message goes out as soon as it is signed, not at the next poll.
 *
 * Origin reorgs: a scan first checks that the last block it scanned still has the hash it saw;
 * when it changed, the relayer drops the pending messages of the last `reorgDepth` blocks and
 * rescans them (a message still there comes back with its attempt count). A pending message is
 * also only sent while its dispatch block still has the hash it was seen in: an orphaned message
 * is never delivered, even when a validator had signed it (the check is read alongside the
 * delivered flag and the recipient's ISM, and skipped for a block whose hash a scan read less than
 * a polling interval ago).
 *
 * Latency: a checkpoint wakes the relayer, a message it sees wakes the validator (`agents.ts`); an
 * attempt reads the delivered flag, the block hash and the recipient's ISM in one round, checks the
 * stored signatures meanwhile, and caches each ISM's validator set for first attempts.
 *
 * Failed attempts (the destination rejects `process`: the recipient reverts, the ISM refuses the
 * metadata, …; or the mined transaction reverted) are retried with exponential backoff
 * (`retryBackoffMs` · 2^(attempts−1), capped at `maxRetryBackoffMs`), persisted per message in the
 * cursor (`attempts`, `nextAttemptAt`, `lastError`: for a mined revert, the reason replayed with
 * one `eth_call`, or that it ran out of gas); after `maxAttempts` the message moves to the
 * cursor's `rejected` list with its last error, is reported through the poll result and
 * `onRejected`, and is not tried again. Not attempts: waiting for validator signatures, and
 * failures that are not the message's (RPC transport errors, the route filter's lookup, the store,
 * submitting from the relayer's account, a receipt that does not come in time): the message is
 * retried next poll without being counted.
 *
 * Not handled: reorgs deeper than `reorgDepth` blocks that leave the last scanned block alone, gas
 * payment (IGP) checks, ISM types other than message-id multisig (routing, aggregation,
 * merkle-root multisig, CCIP-read).
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  encodeFunctionData,
  getAbiItem,
  getAddress,
  HttpRequestError,
  InsufficientFundsError,
  isHex,
  hexToBytes,
  keccak256,
  TimeoutError,
  TransactionReceiptNotFoundError,
  type Abi,
  type Address,
  type Hex,
  type TransactionReceipt,
} from 'viem'
import { Mailbox, MerkleTreeHook, StaticMessageIdMultisigIsm } from '../../../contracts/artifacts/hyperlane/index.ts'
import { HyperlanePort } from '../../../contracts/artifacts/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { componentLogger } from '../../../core/log.ts'
import { clientSender } from '../../../chains/evm/plugin/sender.ts'
import type { SertnErrorOptions } from '../../../core/errors.ts'
import { AgentDisposedError, HyperlaneAgentError, runPollLoop, sleep } from './loop.ts'

export { HyperlaneAgentError } from './loop.ts'
import { buildMessageIdMultisigMetadata, bytes32ToAddress, checkpointProblem, parseMessage, type SignedCheckpoint } from './message.ts'
import type { CheckpointStore, IgnoredMessage, PendingMessage, RejectedMessage, RelayerCursor, RelayerCursorStore } from './stores.ts'
import { blockHashAt } from './validator.ts'

const DISPATCH = getAbiItem({ abi: Mailbox.abi, name: 'Dispatch' })
const INSERTED = getAbiItem({ abi: MerkleTreeHook.abi, name: 'InsertedIntoTree' })
const PORT_MESSAGE_SENT = getAbiItem({ abi: HyperlanePort.abi, name: 'PortMessageSent' })
/** `IInterchainSecurityModule.Types.MESSAGE_ID_MULTISIG`. */
const MESSAGE_ID_MULTISIG = 5

/** What a route filter sees of a message (`sender` is the bytes32 of the origin's sender). */
export type RelayRoute = { origin: number; sender: Hex; destination: number; recipient: Address; id: Hex; body: Hex }

/** Whether to relay a message: `true`, or the reason to ignore it. */
export type RouteFilter = (m: RelayRoute) => Promise<true | string>

/**
 * A route filter that relays only messages to one of `recipients` whose (origin, sender) pair
 * `isEnrolled` accepts (e.g. an on-chain lookup of the recipient's enrolled peers).
 */
export function enrolledRoutes(o: {
  recipients: Iterable<Address>
  isEnrolled: (origin: number, sender: Hex, recipient: Address) => boolean | Promise<boolean>
}): RouteFilter {
  const recipients = new Set([...o.recipients].map((r) => getAddress(r)))
  return async (m) => {
    const recipient = getAddress(m.recipient)
    if (!recipients.has(recipient)) return `recipient ${recipient} is not an application this relayer serves`
    if (!(await o.isEnrolled(m.origin, m.sender, recipient)))
      return `sender ${m.sender} on domain ${m.origin} is not an enrolled peer of ${recipient}`
    return true
  }
}

export type RelayerOrigin = {
  client: Pick<SertnClient, 'getBlockNumber' | 'getBlock' | 'getLogs' | 'readContract'>
  mailbox: Address
  merkleTreeHook: Address
  domain: number
}

export type RelayerDestination = {
  /** Reads the destination and sends the `process` transactions (signed by this client's account). */
  client: SertnClient
  mailbox: Address
  domain: number
}

export type LocalRelayerConfig = {
  origin: RelayerOrigin
  destination: RelayerDestination
  /** Validator checkpoint stores (by the validator each belongs to). */
  checkpointStores: readonly CheckpointStore[]
  cursorStore: RelayerCursorStore
  /**
   * The validator set and threshold to build metadata for. By default they are read per message
   * from the recipient's ISM (`recipientIsm` → `validatorsAndThreshold`), as real relayers do.
   */
  validators?: readonly Address[]
  threshold?: number
  /** First origin block to scan without a saved cursor (default: the mailbox's `deployedBlock()`). */
  fromBlock?: bigint
  /** Blocks after a dispatch's own before it is relayed (default 1; validators sign at the same depth). */
  confirmations?: number
  maxBlockRange?: bigint
  /**
   * Between two polls (default 50 ms; half of it after a poll that found work, to stagger with the
   * validator); a checkpoint put in a store shared in this process wakes the relayer at once.
   */
  pollingIntervalMs?: number
  /** Origin blocks rescanned when the last scanned block's hash changed (a reorg; default 64). */
  reorgDepth?: bigint
  /** Which messages to relay (default: all). Messages it turns down are ignored: never attempted. */
  shouldRelay?: RouteFilter
  /** The most gas the relayer pays for one delivery (default 5,000,000): a larger estimate is rejected at once. */
  maxGas?: bigint
  /** Gas added to the estimate and its fifth (default 100,000), for what execution needs beyond the estimate. */
  gasReserve?: bigint
  /**
   * For a first attempt with the sending port's gas limit (no estimate): the gas of `process` beyond
   * the recipient's handling and the transaction's intrinsic gas (default 100,000), i.e. the mailbox,
   * the message-id multisig ISM and the port. Measured: 65,000 with 1 of 1 validators, 85,000 with
   * 3 of 5 and an 8 KB message. The limit is hint + intrinsic + this + `gasReserve`, capped at `maxGas`.
   */
  processOverheadGas?: bigint
  /** How long to wait for a `process` receipt before trying again (default 120 s; not an attempt). */
  receiptTimeoutMs?: number
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
  onError?: (err: unknown) => void
  onDelivered?: (d: Delivery) => void
  /** A message given up on (after `maxAttempts` failed attempts, or at once when it needs more than `maxGas`). */
  onRejected?: (r: RejectedMessage) => void
  /** A message the route filter turned down. */
  onIgnored?: (m: IgnoredMessage) => void
  /** The origin reorged: pending messages dropped (those still on chain come back when rescanned). */
  onReorg?: (r: RelayerReorg) => void
  /** After each delivery round: the messages still pending and those rejected (metrics, health). */
  onBacklog?: (b: { pending: number; rejected: number }) => void
  /** A scan found messages to deliver (e.g. to wake the origin's validator rather than wait for its next poll). */
  onSeen?: (messages: readonly PendingMessage[]) => void
  /**
   * A scan found messages for the destination it had not seen before, before the route filter
   * looked at them: e.g. to wake the origin's validator at once (it signs every message anyway).
   */
  onDispatched?: () => void
}

export type Delivery = {
  messageId: Hex
  index: number
  transactionHash: Hex
  gasUsed: bigint
  /** The sending port's gas limit for the recipient, when it gave one. */
  gasHint?: bigint
  /** The `process` gas estimate; absent when the gas came from `gasHint` (a first attempt: no estimate). */
  estimatedGas?: bigint
  /**
   * The limit sent: hint + intrinsic gas + `processOverheadGas` + `gasReserve` for a first attempt
   * with a hint, else estimate + 1/5 + `gasReserve`; at most `maxGas`.
   */
  gasLimit: bigint
  /** Milliseconds from the node accepting `process` to its receipt: the destination chain's inclusion wait. */
  inclusionMs: number
}

export type RelayerReorg = {
  reason: string
  /** The origin block the relayer rescans from. */
  fromBlock: bigint
  /** Pending messages dropped (orphaned, or rescanned). */
  dropped: Hex[]
}

export type RelayerPollResult = {
  /** Messages newly seen for the destination in this poll (and not ignored). */
  seen: number
  delivered: Delivery[]
  /** Message ids found already delivered (by anyone) and dropped. */
  alreadyDelivered: Hex[]
  /** Messages rejected in this poll (their last attempt failed and was the `maxAttempts`-th, or they need more than `maxGas`). */
  rejected: RejectedMessage[]
  /** Messages the route filter turned down in this poll. */
  ignored: IgnoredMessage[]
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
  /** The messages the route filter turned down so far (from the cursor). */
  ignored(): Promise<IgnoredMessage[]>
  /**
   * Moves rejected messages (all, or those with these ids) back to pending with no attempts, for an
   * operator who fixed what rejected them; resolves to how many were moved.
   */
  requeue(messageIds?: readonly Hex[]): Promise<number>
  /** Checks that both mailboxes answer and are the configured domains (a long-lived relayer calls it at start). */
  prepare(): Promise<void>
  start(signal?: AbortSignal): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/**
 * A failure that is not the message's fault (the RPC, a store, the route filter's lookup, the
 * relayer's own account, a late receipt): retried at the next poll, not counted as an attempt.
 */
export class RelayTransientError extends HyperlaneAgentError {
  override name = 'RelayTransientError'
  constructor(shortMessage: string, options: SertnErrorOptions = {}) {
    super(shortMessage, { retryable: true, ...options })
  }
}

/** Delivering a message would need more gas than the relayer pays for one (`maxGas`): it is rejected at once. */
export class GasCapExceededError extends HyperlaneAgentError {
  override name = 'GasCapExceededError'
  constructor(
    /** The estimate (or the sending port's gas limit); undefined when even the node's estimation limit was not enough. */
    readonly estimate: bigint | undefined,
    readonly maxGas: bigint,
    options: SertnErrorOptions = {},
    /** Where `estimate` came from: the node's estimate, or the sending port's gas limit for the recipient. */
    readonly source: 'estimate' | 'hint' = 'estimate',
  ) {
    super(
      estimate === undefined
        ? `delivery runs out of gas even at the node's estimation limit, above the relayer's cap of ${maxGas}`
        : source === 'hint'
          ? `the sender's delivery gas limit ${estimate} exceeds the relayer's cap of ${maxGas}`
          : `estimated delivery gas ${estimate} exceeds the relayer's cap of ${maxGas}`,
      options,
    )
  }
}

/** A transaction's intrinsic gas for `data` (21,000 plus 4 per zero and 16 per other calldata byte). */
export function intrinsicGas(data: Hex): bigint {
  let zeros = 0n
  const bytes = hexToBytes(data)
  for (const b of bytes) if (b === 0) zeros += 1n
  return 21_000n + 4n * zeros + 16n * (BigInt(bytes.length) - zeros)
}

/** The `process` transaction was mined and reverted. */
export class ProcessRevertedError extends HyperlaneAgentError {
  override name = 'ProcessRevertedError'
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
  if (err instanceof BaseError) {
    const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
    if (reverted instanceof ContractFunctionRevertedError) {
      if (reverted.reason) return reverted.reason
      if (reverted.data) return `${reverted.data.errorName}(${(reverted.data.args ?? []).map(String).join(', ')})`
      if (reverted.raw) return decodeRevertData(reverted.raw, errorAbi)
    }
  }
  for (const e of errorChain(err)) {
    // ethers v5 (CALL_EXCEPTION, UNPREDICTABLE_GAS_LIMIT) and JSON-RPC errors carry the revert data.
    if (typeof e.data === 'string' && isHex(e.data) && (e.data === '0x' || e.data.length >= 10)) return decodeRevertData(e.data, errorAbi)
  }
  for (const e of errorChain(err)) {
    if (typeof e.reason === 'string' && e.reason) return e.reason.replace(/^execution reverted: /, '')
  }
  const message = err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err)
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

/** Whether a failure is not the message's fault: retried without counting an attempt. */
function isNotAnAttempt(err: unknown): boolean {
  if (err instanceof RelayTransientError || isTransportError(err)) return true
  // The relayer's account cannot pay: not the message's fault either.
  return err instanceof BaseError && Boolean(err.walk((e) => e instanceof InsufficientFundsError))
}

/** Whether a gas estimate failed because the call ran out of gas at the node's limit. */
function isOutOfGas(err: unknown): boolean {
  if (!(err instanceof BaseError) || revertReason(err)) return false
  const text = errorChain(err)
    .map((e) => [e.shortMessage, e.details, e.message].filter((x) => typeof x === 'string').join(' '))
    .join(' ')
  return /out of gas|gas required exceeds allowance|exceeds block gas limit/i.test(text)
}

/** A validator's stored checkpoint for a message, and why it cannot serve (absent when it can). */
type StoredCheckpoint = { sc: SignedCheckpoint; problem?: string }

type Outcome =
  | { kind: 'delivered'; delivery: Delivery }
  | { kind: 'already-delivered' }
  | { kind: 'awaiting-signatures' }
  | { kind: 'orphaned' }

export function createLocalRelayer(cfg: LocalRelayerConfig): LocalRelayer {
  const origin = { ...cfg.origin, mailbox: getAddress(cfg.origin.mailbox), merkleTreeHook: getAddress(cfg.origin.merkleTreeHook) }
  const dest = { ...cfg.destination, mailbox: getAddress(cfg.destination.mailbox) }
  const stores = new Map(cfg.checkpointStores.map((s) => [getAddress(s.validator), s]))
  const confirmations = BigInt(cfg.confirmations ?? 1)
  const maxBlockRange = cfg.maxBlockRange ?? 1000n
  const reorgDepth = cfg.reorgDepth ?? 64n
  const maxGas = cfg.maxGas ?? 5_000_000n
  const gasReserve = cfg.gasReserve ?? 100_000n
  const processOverheadGas = cfg.processOverheadGas ?? 100_000n
  const receiptTimeoutMs = cfg.receiptTimeoutMs ?? 120_000
  const pollingIntervalMs = cfg.pollingIntervalMs ?? 50
  const maxAttempts = cfg.maxAttempts ?? 8
  const retryBackoffMs = cfg.retryBackoffMs ?? 1_000
  const maxRetryBackoffMs = cfg.maxRetryBackoffMs ?? 300_000
  const now = cfg.now ?? Date.now
  const onError =
    cfg.onError ??
    ((e: unknown) =>
      componentLogger('relay', { messenger: 'hyperlane', agent: 'relayer' }).warn(e instanceof Error ? e.message : String(e)))
  const errorAbi = (cfg.errorAbi ?? []) as Abi
  const processAbi = [...Mailbox.abi, ...errorAbi.filter((x) => x.type === 'error')] as Abi
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new HyperlaneAgentError(`maxAttempts must be a positive integer, got ${maxAttempts}`)
  if (confirmations < 0n) throw new HyperlaneAgentError(`confirmations must be ≥ 0, got ${confirmations}`)
  if (maxGas <= 0n || gasReserve < 0n || processOverheadGas < 0n || reorgDepth < 1n)
    throw new HyperlaneAgentError('maxGas and reorgDepth must be positive, gasReserve and processOverheadGas ≥ 0')
  if ((cfg.validators === undefined) !== (cfg.threshold === undefined))
    throw new HyperlaneAgentError('validators and threshold go together')
  const fixedSet =
    cfg.validators && cfg.threshold !== undefined
      ? { validators: cfg.validators.map((v) => getAddress(v)), threshold: cfg.threshold }
      : undefined
  const destClient = dest.client
  const sender = clientSender(destClient)
  let controller: AbortController | undefined
  let loop: Promise<void> | undefined
  let unsubscribe: (() => void)[] = []
  let disposed = false
  let chain: Promise<unknown> = Promise.resolve()
  /** Messages the route filter accepted (in this process): not asked again before each attempt. */
  const routeAccepted = new Set<Hex>()
  /** Attempt records of pending messages dropped by a reorg, restored when a rescan finds them again. */
  const carriedOver = new Map<Hex, Pick<PendingMessage, 'attempts' | 'nextAttemptAt' | 'lastError'>>()
  const carry = (p: PendingMessage) => {
    if (p.attempts === undefined) return
    carriedOver.set(p.messageId, {
      attempts: p.attempts,
      ...(p.nextAttemptAt !== undefined ? { nextAttemptAt: p.nextAttemptAt } : {}),
      ...(p.lastError !== undefined ? { lastError: p.lastError } : {}),
    })
  }
  /** The tree indices of the pending messages (as last saved): a checkpoint for one of them wakes a delivery without a scan. */
  let pendingIndices = new Set<number>()
  /** Invalid checkpoints reported already (each is reported once). */
  const reportedCheckpoints = new Set<string>()
  /** Validator sets of the message-id multisig ISMs read so far (static ISMs cannot change theirs), for first attempts. */
  const ismSets = new Map<Address, { validators: Address[]; threshold: number }>()
  /** The last block a scan read the hash of, and when (`performance.now()`): its messages need no second look before sending. */
  let scanned: { block: string; hash: Hex; at: number } | undefined
  /**
   * What an attempt that found too few signatures read of a message (not delivered, its block
   * unchanged, its validator set), and when it began reading: the next attempt within a polling
   * interval (woken by the checkpoint) sends without reading them again.
   */
  const awaitingReads = new Map<Hex, { at: number; set: { validators: Address[]; threshold: number } }>()

  /** Runs `fn` after every earlier operation: scans and deliveries never interleave. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    if (disposed) return Promise.reject(new AgentDisposedError('relayer disposed'))
    const run = chain.catch(() => undefined).then(fn)
    chain = run
    return run
  }

  async function loadCursor(): Promise<RelayerCursor> {
    const saved = await cfg.cursorStore.load()
    if (saved) return { ...saved, rejected: saved.rejected ?? [], ignored: saved.ignored ?? [] }
    const from =
      cfg.fromBlock ?? (await origin.client.readContract({ address: origin.mailbox, abi: Mailbox.abi, functionName: 'deployedBlock' }))
    return { nextBlock: from.toString(), pending: [], rejected: [], ignored: [] }
  }

  const routeOf = (p: Pick<PendingMessage, 'message' | 'messageId'>): RelayRoute => {
    const m = parseMessage(p.message)
    return {
      origin: m.origin,
      sender: m.sender,
      destination: m.destination,
      recipient: bytes32ToAddress(m.recipient),
      id: p.messageId,
      body: m.body,
    }
  }

  /**
   * The route filter's verdict: true, or the reason to ignore the message. Throws a
   * {@link RelayTransientError} when the filter itself failed (it is asked again before delivery).
   */
  async function checkRoute(p: Pick<PendingMessage, 'message' | 'messageId'>): Promise<true | string> {
    if (!cfg.shouldRelay || routeAccepted.has(p.messageId)) return true
    let route: RelayRoute
    try {
      route = routeOf(p)
    } catch (err) {
      return `cannot be delivered on this chain: ${err instanceof Error ? err.message : String(err)}`
    }
    let verdict: unknown
    try {
      verdict = await cfg.shouldRelay(route)
    } catch (err) {
      throw new RelayTransientError(`checking the route of message ${p.messageId} failed`, { cause: err })
    }
    if (verdict === true) {
      routeAccepted.add(p.messageId)
      return true
    }
    return typeof verdict === 'string' && verdict ? verdict : 'turned down by the route filter'
  }

  const ignoredEntry = (p: Omit<PendingMessage, 'attempts' | 'nextAttemptAt' | 'lastError'>, reason: string): IgnoredMessage => ({
    message: p.message,
    messageId: p.messageId,
    index: p.index,
    blockNumber: p.blockNumber,
    ...(p.dispatchTx ? { dispatchTx: p.dispatchTx } : {}),
    reason,
    ignoredAt: now(),
  })

  /** Drops the pending messages of the last `reorgDepth` blocks up to `last` and rescans from there. */
  function rewind(cursor: RelayerCursor, last: bigint, reason: string): RelayerReorg {
    const floor = cfg.fromBlock ?? 0n
    let from = last + 1n - reorgDepth
    if (from < floor) from = floor
    const dropped = cursor.pending.filter((p) => BigInt(p.blockNumber) >= from)
    for (const d of dropped) {
      carry(d)
      awaitingReads.delete(d.messageId)
    }
    cursor.pending = cursor.pending.filter((p) => BigInt(p.blockNumber) < from)
    if (BigInt(cursor.nextBlock) > from) cursor.nextBlock = from.toString()
    delete cursor.blockHash
    return { reason, fromBlock: from, dropped: dropped.map((d) => d.messageId) }
  }

  async function scanOnce(): Promise<{ seen: number; ignored: IgnoredMessage[] }> {
    const cursor = await loadCursor()
    let reorg: RelayerReorg | undefined
    const last = BigInt(cursor.nextBlock) - 1n
    const startedAt = performance.now()
    // The head block: its number, and (as its own or its parent's hash) the hash of the last block
    // to scan at one or no confirmation, without another round trip.
    const [head, lastHash] = await Promise.all([
      origin.client.getBlock({ blockTag: 'latest' }),
      cursor.blockHash !== undefined ? blockHashAt(origin.client, last) : undefined,
    ])
    const latest = head.number
    if (cursor.blockHash !== undefined && lastHash !== cursor.blockHash)
      reorg = rewind(cursor, last, `origin block ${last} is ${lastHash ? `now ${lastHash}` : 'gone'} (was ${cursor.blockHash})`)
    const report = async () => {
      if (!reorg) return
      await cfg.cursorStore.save(cursor)
      cfg.onReorg?.(reorg)
    }
    const next = BigInt(cursor.nextBlock)
    const confirmed = latest - confirmations
    if (confirmed < next) {
      await report()
      return { seen: 0, ignored: [] }
    }
    const to = next + maxBlockRange - 1n < confirmed ? next + maxBlockRange - 1n : confirmed
    // The last block's hash is read first: a reorg after it shows at the next scan.
    const toHash = to === latest ? head.hash : to === latest - 1n ? head.parentHash : await blockHashAt(origin.client, to)
    if (toHash === undefined) {
      await report()
      return { seen: 0, ignored: [] }
    }
    const [dispatches, insertions, portSends] = await Promise.all([
      origin.client.getLogs({
        address: origin.mailbox,
        event: DISPATCH,
        args: { destination: dest.domain },
        fromBlock: next,
        toBlock: to,
        strict: true,
      }),
      origin.client.getLogs({ address: origin.merkleTreeHook, event: INSERTED, fromBlock: next, toBlock: to, strict: true }),
      // From any contract: only those of a message's own sender, in its dispatch transaction, count.
      origin.client.getLogs({ event: PORT_MESSAGE_SENT, fromBlock: next, toBlock: to, strict: true }),
    ])
    const indexOf = new Map(insertions.map((l) => [l.args.messageId, l.args.index]))
    /** The gas limit each port gave, by `transaction|messageId|port`. */
    const hints = new Map<string, bigint>()
    for (const l of portSends) {
      const key = `${l.transactionHash}|${l.args.messageId.toLowerCase()}|${getAddress(l.address)}`
      if (!hints.has(key)) hints.set(key, l.args.gasLimit)
    }
    const known = new Set([...cursor.pending, ...(cursor.rejected ?? []), ...(cursor.ignored ?? [])].map((p) => p.messageId))
    const ignored: IgnoredMessage[] = []
    const seen: PendingMessage[] = []
    const ids = dispatches.map((l) => keccak256(l.args.message))
    if (ids.some((id) => !known.has(id))) cfg.onDispatched?.()
    for (const [n, log] of dispatches.entries()) {
      const message = log.args.message
      const id = ids[n]!
      const index = indexOf.get(id)
      if (index === undefined) {
        onError(
          new HyperlaneAgentError(
            `message ${id} was not inserted into merkle tree hook ${origin.merkleTreeHook}: cannot relay it with a message-id multisig ISM`,
          ),
        )
        continue
      }
      if (known.has(id)) continue
      known.add(id)
      const hint = hints.get(`${log.transactionHash}|${id.toLowerCase()}|${getAddress(log.args.sender)}`)
      const p: PendingMessage = {
        message,
        messageId: id,
        index,
        blockNumber: log.blockNumber.toString(),
        blockHash: log.blockHash,
        dispatchTx: log.transactionHash,
        ...(hint !== undefined ? { gasHint: hint.toString() } : {}),
      }
      let verdict: true | string = true
      try {
        verdict = await checkRoute(p)
      } catch (err) {
        onError(err) // asked again before delivery
      }
      if (verdict !== true) {
        const i = ignoredEntry(p, verdict)
        cursor.ignored = [...(cursor.ignored ?? []), i]
        ignored.push(i)
        continue
      }
      const carried = carriedOver.get(id)
      carriedOver.delete(id)
      const pending = carried ? { ...p, ...carried } : p
      cursor.pending.push(pending)
      seen.push(pending)
    }
    cursor.pending.sort((a, b) => a.index - b.index)
    // Before the save (a file store syncs to disk): the validator can sign meanwhile, and its
    // checkpoint then finds the message pending.
    pendingIndices = new Set(cursor.pending.map((p) => p.index))
    if (seen.length > 0) cfg.onSeen?.(seen)
    await cfg.cursorStore.save({ ...cursor, nextBlock: (to + 1n).toString(), blockHash: toHash })
    scanned = { block: to.toString(), hash: toHash, at: startedAt }
    if (reorg) cfg.onReorg?.(reorg)
    for (const i of ignored) cfg.onIgnored?.(i)
    return { seen: seen.length, ignored }
  }

  const isDelivered = (id: Hex) =>
    destClient.readContract({ address: dest.mailbox, abi: Mailbox.abi, functionName: 'delivered', args: [id] })

  /**
   * The recipient's validator set and threshold (from its ISM, which must be a message-id
   * multisig). The recipient's ISM is read every time; the ISM's set comes from `ismSets` when
   * `cached` (a first attempt: static ISMs never change it), and is read afresh for retries.
   */
  async function validatorSet(recipient: Address, message: Hex, cached: boolean): Promise<{ validators: Address[]; threshold: number }> {
    if (fixedSet) return fixedSet
    const ism = getAddress(
      await destClient.readContract({ address: dest.mailbox, abi: Mailbox.abi, functionName: 'recipientIsm', args: [recipient] }),
    )
    const known = cached ? ismSets.get(ism) : undefined
    if (known) return known
    const [type, [validators, threshold]] = await Promise.all([
      destClient.readContract({ address: ism, abi: StaticMessageIdMultisigIsm.abi, functionName: 'moduleType' }),
      destClient.readContract({
        address: ism,
        abi: StaticMessageIdMultisigIsm.abi,
        functionName: 'validatorsAndThreshold',
        args: [message],
      }),
    ])
    if (type !== MESSAGE_ID_MULTISIG)
      throw new HyperlaneAgentError(
        `the ISM ${ism} of ${recipient} is of module type ${type}: this relayer builds metadata for message-id multisig ISMs (type ${MESSAGE_ID_MULTISIG}) only`,
      )
    const set = { validators: validators.map((v) => getAddress(v)), threshold }
    ismSets.set(ism, set)
    return set
  }

  /**
   * Validator `v`'s checkpoint at `p`'s index from its store, with why it cannot serve as `v`'s
   * signature for `p` (another message, another tree, another signer), if it cannot.
   */
  async function storedCheckpoint(v: Address, store: CheckpointStore, p: PendingMessage): Promise<StoredCheckpoint | undefined> {
    let sc: SignedCheckpoint | undefined
    try {
      sc = await store.get(p.index)
    } catch (err) {
      throw new RelayTransientError(`reading validator ${v}'s checkpoint ${p.index} failed`, { cause: err })
    }
    if (!sc) return undefined
    const problem = await checkpointProblem(sc, {
      origin: origin.domain,
      merkleTreeHook: origin.merkleTreeHook,
      index: p.index,
      messageId: p.messageId,
      validator: v,
    })
    return problem === undefined ? { sc } : { sc, problem }
  }

  function reportCheckpoint(v: Address, sc: SignedCheckpoint, p: PendingMessage, problem: string) {
    const key = `${v}|${sc.index}|${sc.messageId}|${sc.signature}`
    if (reportedCheckpoints.has(key)) return
    reportedCheckpoints.add(key)
    onError(new HyperlaneAgentError(`validator ${v}: checkpoint ${p.index} ignored for message ${p.messageId}: ${problem}`))
  }

  async function estimateProcess(metadata: Hex, message: Hex): Promise<bigint> {
    try {
      return await destClient.estimateContractGas({
        address: dest.mailbox,
        abi: processAbi,
        functionName: 'process',
        args: [metadata, message],
        account: destClient.account,
      })
    } catch (err) {
      if (!isTransportError(err) && isOutOfGas(err)) throw new GasCapExceededError(undefined, maxGas, { cause: err })
      throw err
    }
  }

  /**
   * `process` replayed with one `eth_call` with `gas` on the state after block `blockNumber`:
   * 'passes', the revert reason, or undefined when the node could not say.
   */
  async function replay(data: Hex, gas: bigint, blockNumber: bigint): Promise<string | undefined> {
    try {
      await destClient.call({ account: destClient.account, to: dest.mailbox, data, gas, blockNumber })
      return 'passes'
    } catch (err) {
      return isTransportError(err) ? undefined : failureReason(err, errorAbi)
    }
  }

  /**
   * Polls for the receipt: soon at first (a local chain mines at once), then every polling interval;
   * of the transaction or of a replacement the send queue sent for it (a stuck one is repriced).
   */
  async function waitReceipt(hash: Hex): Promise<TransactionReceipt> {
    const deadline = performance.now() + receiptTimeoutMs
    const interval = Math.max(1, Math.min(destClient.pollingInterval, pollingIntervalMs))
    for (let wait = 2; ; wait = Math.min(interval, wait * 2)) {
      for (const version of sender.versionsOf(hash)) {
        try {
          return await destClient.getTransactionReceipt({ hash: version })
        } catch (err) {
          if (!(err instanceof TransactionReceiptNotFoundError)) throw err
        }
      }
      if (performance.now() >= deadline)
        throw new RelayTransientError(`no receipt for process transaction ${hash} after ${receiptTimeoutMs} ms`)
      if (disposed) throw new AgentDisposedError(`relayer disposed while waiting for process transaction ${hash}`)
      await sleep(wait)
    }
  }

  /**
   * One delivery attempt: checks, metadata, gas, `process`. Throws when it fails. A first attempt
   * with the sending port's gas limit sends at once; any other is estimated first.
   */
  async function attempt(p: PendingMessage): Promise<Outcome> {
    const m = parseMessage(p.message)
    if (m.origin !== origin.domain || m.destination !== dest.domain)
      throw new HyperlaneAgentError(`message ${p.messageId} is for route ${m.origin}→${m.destination}`)
    const gasHint = p.gasHint !== undefined && /^\d+$/.test(p.gasHint) ? BigInt(p.gasHint) : undefined
    const first = (p.attempts ?? 0) === 0
    /** The sender's gas limit, when this attempt goes by it (a first attempt; a zero limit says nothing). */
    const hint = first && gasHint !== undefined && gasHint > 0n ? gasHint : undefined
    if (hint !== undefined && hint > maxGas) throw new GasCapExceededError(hint, maxGas, {}, 'hint')
    const recipient = bytes32ToAddress(m.recipient)
    const readAt = performance.now()
    const recent = awaitingReads.get(p.messageId)
    awaitingReads.delete(p.messageId)
    // The stored checkpoints are read and their signatures checked while the chains answer.
    const checkpoints = Promise.all([...stores].map(async ([v, store]) => [v, await storedCheckpoint(v, store, p)] as const))
    checkpoints.catch(() => undefined)
    let set: { validators: Address[]; threshold: number }
    let readSince: number
    if (recent && readAt - recent.at <= pollingIntervalMs) {
      set = recent.set
      readSince = recent.at
    } else {
      // The dispatch block's hash was read by a scan less than a polling interval ago: as good as reading it again.
      const fresh =
        scanned !== undefined && scanned.block === p.blockNumber && scanned.hash === p.blockHash && readAt - scanned.at <= pollingIntervalMs
      const [delivered, blockHash, s] = await Promise.all([
        isDelivered(p.messageId),
        p.blockHash && !fresh ? blockHashAt(origin.client, BigInt(p.blockNumber)) : p.blockHash,
        validatorSet(recipient, p.message, first),
      ])
      if (delivered) return { kind: 'already-delivered' }
      if (p.blockHash && blockHash !== p.blockHash) return { kind: 'orphaned' }
      set = s
      readSince = readAt
    }
    const stored = new Map(await checkpoints)
    const checked = set.validators.map((v) => {
      const c = stored.get(v)
      if (c?.problem === undefined) return c?.sc
      reportCheckpoint(v, c.sc, p, c.problem)
      return undefined
    })
    const built = buildMessageIdMultisigMetadata(set.validators, set.threshold, checked)
    if (built.kind === 'awaiting-signatures') {
      awaitingReads.set(p.messageId, { at: readSince, set })
      return { kind: 'awaiting-signatures' }
    }
    const data = encodeFunctionData({ abi: Mailbox.abi, functionName: 'process', args: [built.metadata, p.message] })
    let estimatedGas: bigint | undefined
    let wanted: bigint
    if (hint !== undefined) {
      wanted = hint + intrinsicGas(data) + processOverheadGas + gasReserve
    } else {
      estimatedGas = await estimateProcess(built.metadata, p.message)
      if (estimatedGas > maxGas) throw new GasCapExceededError(estimatedGas, maxGas)
      wanted = estimatedGas + estimatedGas / 5n + gasReserve
    }
    const gasLimit = wanted < maxGas ? wanted : maxGas
    let hash: Hex
    try {
      hash = await sender.send({ to: dest.mailbox, data, gas: gasLimit })
    } catch (err) {
      throw new RelayTransientError(`submitting process of message ${p.messageId} from ${destClient.account.address} failed`, {
        cause: err,
      })
    }
    const sentAt = performance.now()
    const receipt = await waitReceipt(hash)
    const inclusionMs = performance.now() - sentAt
    if (receipt.status !== 'success') {
      // Why: replayed with the most gas the relayer pays, it passes when the transaction ran out of gas
      // (with a recipient two calls deep, it reverts having used less than 63/64 of its gas).
      const why = await replay(data, maxGas, receipt.blockNumber)
      const outOfGas = why === 'passes' ? gasLimit < maxGas : receipt.gasUsed * 64n >= gasLimit * 63n
      const reason = why !== undefined && why !== 'passes' && !outOfGas ? `: ${why}` : ''
      throw new ProcessRevertedError(
        `process transaction ${hash} reverted (gas used ${receipt.gasUsed} of ${gasLimit}${outOfGas ? ': out of gas' : ''})${reason}`,
      )
    }
    return {
      kind: 'delivered',
      delivery: {
        messageId: p.messageId,
        index: p.index,
        transactionHash: receipt.transactionHash,
        gasUsed: receipt.gasUsed,
        ...(gasHint !== undefined ? { gasHint } : {}),
        ...(estimatedGas !== undefined ? { estimatedGas } : {}),
        gasLimit,
        inclusionMs,
      },
    }
  }

  async function deliverOnce(): Promise<Omit<RelayerPollResult, 'seen'>> {
    for (const [id, r] of awaitingReads) if (performance.now() - r.at > pollingIntervalMs) awaitingReads.delete(id)
    const cursor = await loadCursor()
    const rejected = cursor.rejected ?? []
    const ignoredList = cursor.ignored ?? []
    const delivered: Delivery[] = []
    const alreadyDelivered: Hex[] = []
    const newlyRejected: RejectedMessage[] = []
    const newlyIgnored: IgnoredMessage[] = []
    const done = new Set<Hex>()
    const save = () =>
      cfg.cursorStore.save({ ...cursor, pending: cursor.pending.filter((p) => !done.has(p.messageId)), rejected, ignored: ignoredList })
    const dropDelivered = async (p: PendingMessage) => {
      done.add(p.messageId)
      alreadyDelivered.push(p.messageId)
      await save()
    }
    const reject = async (p: PendingMessage, attempts: number, lastError: string, err: unknown) => {
      const { attempts: _a, nextAttemptAt: _n, lastError: _l, blockHash: _b, ...msg } = p
      const r: RejectedMessage = { ...msg, attempts, lastError, rejectedAt: now() }
      rejected.push(r)
      done.add(p.messageId)
      newlyRejected.push(r)
      await save()
      onError(
        new HyperlaneAgentError(`message ${p.messageId} (index ${p.index}) rejected after ${attempts} failed attempts: ${lastError}`, {
          cause: err,
        }),
      )
      cfg.onRejected?.(r)
    }
    for (const p of cursor.pending) {
      if (disposed) break
      if (p.nextAttemptAt !== undefined && now() < p.nextAttemptAt) continue // backing off
      try {
        const verdict = await checkRoute(p)
        if (verdict !== true) {
          const i = ignoredEntry(p, verdict)
          ignoredList.push(i)
          newlyIgnored.push(i)
          done.add(p.messageId)
          await save()
          cfg.onIgnored?.(i)
          continue
        }
        const outcome = await attempt(p)
        if (outcome.kind === 'awaiting-signatures') continue // not an attempt
        if (outcome.kind === 'already-delivered') {
          await dropDelivered(p)
          continue
        }
        if (outcome.kind === 'orphaned') {
          // Its block was reorged away: drop it and rescan from there (it comes back if it was re-included).
          done.add(p.messageId)
          carry(p)
          if (BigInt(cursor.nextBlock) > BigInt(p.blockNumber)) cursor.nextBlock = p.blockNumber
          delete cursor.blockHash
          await save()
          cfg.onReorg?.({
            reason: `origin block ${p.blockNumber} of message ${p.messageId} changed`,
            fromBlock: BigInt(cursor.nextBlock),
            dropped: [p.messageId],
          })
          continue
        }
        done.add(p.messageId)
        delivered.push(outcome.delivery)
        await save()
        cfg.onDelivered?.(outcome.delivery)
      } catch (err) {
        if (err instanceof AgentDisposedError) break
        try {
          if (isNotAnAttempt(err)) {
            onError(
              new RelayTransientError(
                `delivering message ${p.messageId} (index ${p.index}) failed (not counted as an attempt); will retry`,
                {
                  cause: err,
                },
              ),
            )
            continue
          }
          // Another relayer may have delivered it meanwhile (`process` then reverts "already delivered").
          if (await isDelivered(p.messageId).catch(() => false)) {
            await dropDelivered(p)
            continue
          }
          const attempts = (p.attempts ?? 0) + 1
          const lastError = err instanceof HyperlaneAgentError ? err.shortMessage : failureReason(err, errorAbi)
          if (err instanceof GasCapExceededError || attempts >= maxAttempts) {
            await reject(p, attempts, lastError, err)
          } else {
            const wait = Math.min(maxRetryBackoffMs, retryBackoffMs * 2 ** (attempts - 1))
            Object.assign(p, { attempts, lastError, nextAttemptAt: now() + wait })
            await save()
            onError(
              new HyperlaneAgentError(
                `delivering message ${p.messageId} (index ${p.index}) failed (attempt ${attempts} of ${maxAttempts}): ${lastError}; retrying in ${wait} ms`,
                { cause: err },
              ),
            )
          }
        } catch (saveErr) {
          onError(new HyperlaneAgentError(`recording the failed delivery of message ${p.messageId} failed`, { cause: saveErr }))
        }
      }
    }
    pendingIndices = new Set(cursor.pending.filter((p) => !done.has(p.messageId)).map((p) => p.index))
    cfg.onBacklog?.({ pending: cursor.pending.length - done.size, rejected: rejected.length })
    return {
      delivered,
      alreadyDelivered,
      rejected: newlyRejected,
      ignored: newlyIgnored,
      pending: cursor.pending.length - done.size,
    }
  }

  const relayer: LocalRelayer = {
    scan: () => serial(async () => (await scanOnce()).seen),
    deliver: () => serial(deliverOnce),
    async poll() {
      const scanned = await serial(scanOnce)
      const d = await relayer.deliver()
      return { seen: scanned.seen, ...d, ignored: [...scanned.ignored, ...d.ignored] }
    },
    rejected: () => serial(async () => (await loadCursor()).rejected ?? []),
    ignored: () => serial(async () => (await loadCursor()).ignored ?? []),
    requeue: (ids) =>
      serial(async () => {
        const cursor = await loadCursor()
        const wanted = ids ? new Set(ids.map((i) => i.toLowerCase())) : undefined
        const back = (cursor.rejected ?? []).filter((r) => !wanted || wanted.has(r.messageId.toLowerCase()))
        if (back.length === 0) return 0
        const moved = new Set(back.map((r) => r.messageId))
        const pending = back.map(
          ({ attempts: _a, lastError: _e, rejectedAt: _t, ...m }): PendingMessage => ({ ...m, attempts: 0, nextAttemptAt: 0 }),
        )
        await cfg.cursorStore.save({
          ...cursor,
          pending: [...cursor.pending, ...pending],
          rejected: (cursor.rejected ?? []).filter((r) => !moved.has(r.messageId)),
        })
        return back.length
      }),
    async prepare() {
      const [o, d] = await Promise.all([
        origin.client.readContract({ address: origin.mailbox, abi: Mailbox.abi, functionName: 'localDomain' }),
        destClient.readContract({ address: dest.mailbox, abi: Mailbox.abi, functionName: 'localDomain' }),
      ])
      if (o !== origin.domain) throw new HyperlaneAgentError(`origin mailbox ${origin.mailbox} is domain ${o}, not ${origin.domain}`)
      if (d !== dest.domain) throw new HyperlaneAgentError(`destination mailbox ${dest.mailbox} is domain ${d}, not ${dest.domain}`)
    },
    start(signal) {
      if (controller) throw new HyperlaneAgentError('relayer already started')
      controller = new AbortController()
      const sig = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal
      /** Set when a checkpoint came in for a message already pending: the next poll only delivers. */
      let deliverOnly = false
      /** A checkpoint woke the loop since its last poll began. */
      let woken = false
      /** The next tick is skipped (the last poll found nothing to do). */
      let skipTick = false
      // Staggered polls: the loop ticks every half interval and skips the tick after an idle poll,
      // so it polls once an interval, half an interval after its last busy poll. A hop aligns the
      // validator with this relayer (each wakes the other), so its polls then fall between ours,
      // and a new message waits at most half an interval for the first of them, not a whole one.
      const l = runPollLoop(
        async () => {
          const wasWoken = woken
          woken = false
          if (skipTick && !wasWoken) {
            skipTick = false
            return
          }
          let busy = wasWoken
          if (deliverOnly) {
            deliverOnly = false
            await relayer.deliver()
          } else {
            const r = await relayer.poll()
            busy ||= r.seen > 0 || r.delivered.length > 0 || r.alreadyDelivered.length > 0
          }
          skipTick = !busy
        },
        { intervalMs: Math.max(1, pollingIntervalMs / 2), signal: sig, onError },
      )
      loop = l.done
      const onCheckpoint = (c: SignedCheckpoint) => {
        if (pendingIndices.has(c.index)) deliverOnly = true
        woken = true
        l.wake()
      }
      unsubscribe = cfg.checkpointStores.flatMap((s) => (s.subscribe ? [s.subscribe(onCheckpoint)] : []))
    },
    async stop() {
      for (const u of unsubscribe) u()
      unsubscribe = []
      controller?.abort()
      await loop
      await chain.catch(() => undefined)
      controller = undefined
      loop = undefined
    },
    async [Symbol.asyncDispose]() {
      await relayer.stop()
      disposed = true
    },
  }
  return relayer
}
