/**
 * Sends transactions from one account without nonce collisions: one serialized queue per account
 * (per chain and RPC endpoint, per process). The queue only signs and submits; receipts are awaited
 * by the callers outside it, so many transactions can be in flight in the same block.
 *
 * The local nonce counter starts from the account's `pending` transaction count and is re-read
 * after any failed submission (a nonce error, or an error that leaves it unknown whether the node
 * accepted the transaction); a nonce error is retried a few times with the fresh nonce.
 *
 * Fees ({@link FeePolicy}, from the chain's `fees` configuration): no transaction is signed above
 * `maxFeePerGas` (the cap). A transaction not mined `replaceAfterMs` after it was sent is sent again
 * with the same nonce and its fees raised by `bumpPercent` (or to the chain's current estimate, if
 * higher), up to the cap; at the cap it is broadcast again unchanged (a pool that dropped it takes it
 * back) and waits, with one warning naming `fees.maxFeePerGasGwei`. Each replacement counts in
 * `sertn_transactions_replaced_total`. {@link AccountSender.wait} resolves with the receipt of
 * whichever of a nonce's transactions was mined (exactly one is).
 *
 * Nonce gaps: a reorg can drop a mined transaction for good (a mempool usually takes a reorg's
 * transactions back; one that evicts it, or an RPC provider that never spread it, does not), and
 * then the account's nonce falls back below the local counter: every later transaction waits in
 * the pool behind the gap. So a mined transaction is kept until it is `reorgDepth` blocks deep, and
 * a watch (every `watchMs` while anything is kept or in flight) reads the account's `pending`
 * nonce: a kept transaction whose nonce is free again is sent again (and watched as in flight,
 * replaced if it does not get in); a free nonce below transactions in flight that this sender holds
 * no copy of (another process sent it, e.g. this worker before a restart) is filled with an empty
 * transfer to self once two watches in a row saw it. Each fill counts in
 * `sertn_transaction_nonce_gaps_total` and logs a warning.
 */
import {
  BaseError,
  parseGwei,
  type TransactionReceipt,
  type WaitForTransactionReceiptParameters,
  Eip1559FeesNotSupportedError,
  keccak256,
  NonceTooHighError,
  NonceTooLowError,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type Transport,
  type PublicClient,
  type WalletClient,
} from 'viem'
import { componentLogger } from '../../../core/log.ts'
import { metrics } from '../../../core/metrics.ts'
import type { SertnClient } from '../clients.ts'

export type TxRequest = { to: Address; data: Hex; gas: bigint; value?: bigint }

type Fees = { type: 'eip1559'; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { type: 'legacy'; gasPrice: bigint }

/** Whether `err` says the nonce we used was wrong (taken, or ahead of the account). */
export function isNonceError(err: unknown): boolean {
  if (err instanceof BaseError && err.walk((e) => e instanceof NonceTooLowError || e instanceof NonceTooHighError)) return true
  const text = err instanceof BaseError ? `${err.shortMessage} ${err.details}` : String(err)
  return /nonce too low|nonce too high|invalid nonce|nonce has already been used|replacement transaction underpriced|already known|known transaction/i.test(
    text,
  )
}

/** Whether the node already has exactly this transaction (a resubmission of ours). */
function isAlreadyKnown(err: unknown): boolean {
  const text = err instanceof BaseError ? `${err.shortMessage} ${err.details}` : String(err)
  return /already known|known transaction|already imported/i.test(text)
}

const MAX_NONCE_RETRIES = 3

/** How an account pays for its transactions on one chain and replaces the stuck ones. */
export type FeePolicy = {
  /** The most it pays per gas, in wei (default: no cap). */
  maxFeePerGas?: bigint
  /** A transaction not mined after this long is sent again with higher fees. Default 60 000 ms. */
  replaceAfterMs: number
  /** How much a replacement raises the fees, in percent (nodes want at least 10). Default 25. */
  bumpPercent: number
}

/** The policy of a chain's `fees` configuration section (`maxFeePerGasGwei`, `replaceAfterMs`, `bumpPercent`). */
export function feePolicyOf(
  fees: { maxFeePerGasGwei?: number | undefined; replaceAfterMs?: number; bumpPercent?: number } = {},
): FeePolicy {
  return {
    ...(fees.maxFeePerGasGwei !== undefined ? { maxFeePerGas: parseGwei(String(fees.maxFeePerGasGwei)) } : {}),
    replaceAfterMs: fees.replaceAfterMs ?? 60_000,
    bumpPercent: fees.bumpPercent ?? 25,
  }
}

export const DEFAULT_FEE_POLICY: FeePolicy = feePolicyOf()

/** Nodes refuse a replacement that raises the fees by less than this (geth's default price bump). */
const MIN_BUMP_PERCENT = 10n

export type SenderOptions = {
  /** The chain's configured name (the `chain` label of metrics and logs). Default: the client's chain name. */
  chainName?: string
  fees?: FeePolicy
  /** Blocks a mined transaction is kept for, to be sent again if a reorg drops it. Default 64. */
  reorgDepth?: number
  /** How often the account's nonce is checked for gaps while transactions are kept or in flight. Default: `replaceAfterMs`, at most 5 000 ms. */
  watchMs?: number
}

/** Mined transactions kept at most (the oldest go first), whatever their depth. */
const MAX_KEPT = 512

/** A transaction in flight: its nonce, and every version of it sent (the first one's hash is the caller's handle). */
type InFlight = {
  tx: TxRequest
  nonce: number
  fees: Fees
  hashes: Hex[]
  /** The last signed version (local accounts), broadcast again while it waits at the cap. */
  serialized?: Hex
  /** Callbacks of waits, told about each replacement's hash. */
  listeners: Set<(hash: Hex) => void>
  warnedAtCap: boolean
  timer?: ReturnType<typeof setTimeout>
  /** Checks in a row whose RPC call failed (the endpoint down, or gone with its chain). */
  unanswered: number
}

/**
 * Checks in a row that the RPC may fail before a transaction is no longer watched: an endpoint
 * gone for good (a chain shut down) must not keep a replacement loop alive for the process's life.
 * A later send re-reads the nonce from the node after any error.
 */
const MAX_UNANSWERED_CHECKS = 5

export type WaitOptions = {
  /** Blocks on top of the transaction's block, its own included (as viem's `confirmations`). Default 1. */
  confirmations?: number
  pollingIntervalMs?: number
  /** Default 120 000 ms. */
  timeoutMs?: number
  /** Called when another transaction (not one of this sender's versions) took the nonce. */
  onReplaced?: WaitForTransactionReceiptParameters['onReplaced']
}

/** One account's send queue. */
export class AccountSender {
  private nonce: number | undefined
  private tail: Promise<unknown> = Promise.resolve()
  /** Transactions this queue submitted (for tests and metrics). */
  submitted = 0
  /** Replacements sent (same nonce, higher fees). */
  replaced = 0
  private readonly inflight = new Map<Hex, InFlight>()
  /** Mined transactions by nonce, with the block they were seen in (the head when it was not known), until `reorgDepth` deep. */
  private readonly kept = new Map<number, { entry: InFlight; block?: bigint }>()
  private watchTimer: ReturnType<typeof setTimeout> | undefined
  private watchUnanswered = 0
  /** A free nonce below transactions in flight, with no copy kept, seen by the last watch. */
  private gapSeen: number | undefined
  /** A turn of the queue is signing or submitting (its nonce is in no map yet). */
  private submitting = false
  /** Nonce gaps filled (a kept transaction sent again, or an empty transfer). */
  gapsFilled = 0
  readonly chainName: string
  readonly policy: FeePolicy
  readonly reorgDepth: number
  private readonly watchMs: number

  constructor(
    private readonly publicClient: PublicClient<Transport, Chain>,
    private readonly walletClient: WalletClient<Transport, Chain, Account>,
    options: SenderOptions = {},
  ) {
    this.chainName = options.chainName ?? walletClient.chain.name
    this.policy = options.fees ?? DEFAULT_FEE_POLICY
    this.reorgDepth = options.reorgDepth ?? 64
    this.watchMs = options.watchMs ?? Math.min(this.policy.replaceAfterMs, 5_000)
  }

  get address(): Address {
    return this.walletClient.account.address
  }

  private get log() {
    return componentLogger('sender', { chain: this.chainName, address: this.address })
  }

  private cachedFees: { at: number; fees: Promise<Fees> } | undefined

  /**
   * Fees for a transaction sent now (read outside the queue), reused for a second: viem's estimate
   * leaves twice the base fee as headroom, so a second-old estimate still lands.
   */
  private fees(): Promise<Fees> {
    const now = Date.now()
    if (this.cachedFees && now - this.cachedFees.at < 1000) return this.cachedFees.fees
    const fees = this.readFees()
    this.cachedFees = { at: now, fees }
    fees.catch(() => {
      if (this.cachedFees?.fees === fees) this.cachedFees = undefined
    })
    return fees
  }

  private async readFees(): Promise<Fees> {
    try {
      const { maxFeePerGas, maxPriorityFeePerGas } = await this.publicClient.estimateFeesPerGas({ type: 'eip1559' })
      return this.capped({ type: 'eip1559', maxFeePerGas, maxPriorityFeePerGas })
    } catch (err) {
      if (err instanceof Eip1559FeesNotSupportedError)
        return this.capped({ type: 'legacy', gasPrice: await this.publicClient.getGasPrice() })
      throw err
    }
  }

  /** `fees` held to the cap (a tip never above the fee cap). */
  private capped(fees: Fees): Fees {
    const cap = this.policy.maxFeePerGas
    const min = (a: bigint, b: bigint | undefined) => (b !== undefined && b < a ? b : a)
    if (fees.type === 'legacy') return { type: 'legacy', gasPrice: min(fees.gasPrice, cap) }
    const maxFeePerGas = min(fees.maxFeePerGas, cap)
    return { type: 'eip1559', maxFeePerGas, maxPriorityFeePerGas: min(fees.maxPriorityFeePerGas, maxFeePerGas) }
  }

  /**
   * The fees of a replacement of a transaction sent with `old`: raised by `bumpPercent`, or to the
   * chain's estimate `now` if higher, held to the cap; undefined when the cap leaves no room for the
   * smallest raise nodes accept.
   */
  private bumped(old: Fees, now: Fees): Fees | undefined {
    const pct = BigInt(this.policy.bumpPercent)
    const up = (v: bigint) => v + (v * pct + 99n) / 100n
    const enough = (next: bigint, prev: bigint) => next * 100n >= prev * (100n + MIN_BUMP_PERCENT) && next > prev
    const max = (a: bigint, b: bigint) => (a > b ? a : b)
    if (old.type === 'legacy') {
      const gasPrice = this.capped({ type: 'legacy', gasPrice: max(up(old.gasPrice), now.type === 'legacy' ? now.gasPrice : 0n) })
      return gasPrice.type === 'legacy' && enough(gasPrice.gasPrice, old.gasPrice) ? gasPrice : undefined
    }
    const next = this.capped({
      type: 'eip1559',
      maxFeePerGas: max(up(old.maxFeePerGas), now.type === 'eip1559' ? now.maxFeePerGas : 0n),
      maxPriorityFeePerGas: max(up(old.maxPriorityFeePerGas), now.type === 'eip1559' ? now.maxPriorityFeePerGas : 0n),
    })
    if (next.type !== 'eip1559') return undefined
    return enough(next.maxFeePerGas, old.maxFeePerGas) && enough(next.maxPriorityFeePerGas, old.maxPriorityFeePerGas) ? next : undefined
  }

  /** Signs and submits `tx` in this account's turn; resolves with its hash once the node accepted it. */
  async send(tx: TxRequest): Promise<Hex> {
    const fees = await this.fees()
    const turn = this.tail.then(() => this.submit(tx, fees))
    this.tail = turn.catch(() => undefined)
    return turn
  }

  /** Transactions sent and not yet known to be mined (watched for replacement). */
  get tracked(): number {
    return this.inflight.size
  }

  /**
   * Every version of the transaction first sent as `hash` (the first, then each replacement), while
   * its nonce is not used yet; just `[hash]` for one not (or no longer) in flight.
   */
  versionsOf(hash: Hex): readonly Hex[] {
    return this.inflight.get(hash)?.hashes.slice() ?? [hash]
  }

  /** Mined transactions kept in case a reorg drops them (for tests and metrics). */
  get keptCount(): number {
    return this.kept.size
  }

  /**
   * Stops replacing the transaction first sent as `hash` (its receipt is known: nothing to
   * replace); it is kept until it is `reorgDepth` blocks deep, in `receipt`'s block if given.
   */
  mined(hash: Hex, receipt?: TransactionReceipt): void {
    const entry = this.inflight.get(hash)
    if (entry) this.settle(entry, receipt?.blockNumber)
  }

  /** `entry`'s nonce is used: no longer replaced; kept until deep enough. */
  private settle(entry: InFlight, block?: bigint) {
    clearTimeout(entry.timer)
    this.inflight.delete(entry.hashes[0]!)
    this.kept.delete(entry.nonce)
    this.kept.set(entry.nonce, block !== undefined ? { entry, block } : { entry })
    if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value!)
    this.watch()
  }

  /** {@link send}, then {@link wait}. */
  async sendAndWait(tx: TxRequest, o: WaitOptions = {}): Promise<{ hash: Hex; receipt: TransactionReceipt }> {
    return this.wait(await this.send(tx), o)
  }

  /**
   * The receipt of the transaction sent as `hash` or of a replacement of it that this sender sent
   * (whichever was mined), with that transaction's hash. Another account's transaction that took
   * the nonce is reported to `onReplaced`, and its receipt returned (viem's behaviour).
   */
  wait(hash: Hex, o: WaitOptions = {}): Promise<{ hash: Hex; receipt: TransactionReceipt }> {
    const entry = this.inflight.get(hash)
    const timeoutMs = o.timeoutMs ?? 120_000
    const deadline = performance.now() + timeoutMs
    const controller = new AbortController()
    const forget = (receipt: TransactionReceipt) => this.mined(hash, receipt)
    const ours = (h: Hex) => entry?.hashes.some((x) => x.toLowerCase() === h.toLowerCase()) ?? h.toLowerCase() === hash.toLowerCase()
    return new Promise((resolve, reject) => {
      let running = 0
      let done = false
      const finish = (fn: () => void) => {
        if (done) return
        done = true
        entry?.listeners.delete(watch)
        controller.abort()
        fn()
      }
      function watch(this: void, h: Hex) {
        running++
        waitOne(h).then(
          (receipt) =>
            finish(() => {
              forget(receipt)
              resolve({ hash: receipt.transactionHash, receipt })
            }),
          (err) => {
            running--
            if (running === 0 && !controller.signal.aborted) finish(() => reject(err))
          },
        )
      }
      const waitOne = (h: Hex) =>
        this.publicClient.waitForTransactionReceipt({
          hash: h,
          ...(o.confirmations !== undefined ? { confirmations: o.confirmations } : {}),
          ...(o.pollingIntervalMs !== undefined ? { pollingInterval: o.pollingIntervalMs } : {}),
          timeout: Math.max(1, Math.round(deadline - performance.now())),
          signal: controller.signal,
          onReplaced: (r) => {
            if (!ours(r.transaction.hash)) o.onReplaced?.(r)
          },
        })
      if (entry) {
        entry.listeners.add(watch)
        for (const h of entry.hashes) watch(h)
      } else watch(hash)
    })
  }

  private async submit(tx: TxRequest, fees: Fees): Promise<Hex> {
    this.submitting = true
    try {
      return await this.submitNext(tx, fees)
    } finally {
      this.submitting = false
    }
  }

  private async submitNext(tx: TxRequest, fees: Fees): Promise<Hex> {
    for (let attempt = 0; ; attempt++) {
      this.nonce ??= await this.publicClient.getTransactionCount({ address: this.address, blockTag: 'pending' })
      const nonce = this.nonce
      try {
        const sent = await this.submitWithNonce(tx, fees, nonce)
        this.nonce = nonce + 1
        this.submitted++
        this.track(inFlight(tx, nonce, fees, sent))
        return sent.hash
      } catch (err) {
        // Whatever happened, the next turn re-reads the nonce from the node.
        this.nonce = undefined
        if (attempt < MAX_NONCE_RETRIES && isNonceError(err)) continue
        throw err
      }
    }
  }

  /** Watches a transaction until its nonce is used: every `replaceAfterMs` without that, it is replaced. */
  private track(entry: InFlight) {
    this.inflight.set(entry.hashes[0]!, entry)
    this.watch()
    const schedule = () => {
      entry.timer = setTimeout(() => void check(), this.policy.replaceAfterMs)
      entry.timer.unref?.()
    }
    const forget = () => this.inflight.delete(entry.hashes[0]!)
    const settle = () => {
      if (this.inflight.get(entry.hashes[0]!) === entry) this.settle(entry)
    }
    const check = async () => {
      let mined: number
      try {
        mined = await this.publicClient.getTransactionCount({ address: this.address, blockTag: 'latest' })
        entry.unanswered = 0
      } catch (err) {
        if (++entry.unanswered >= MAX_UNANSWERED_CHECKS) {
          forget()
          this.log.warn(
            { err, nonce: entry.nonce, hash: entry.hashes.at(-1), checks: entry.unanswered },
            `stopped watching a transaction: the RPC failed ${entry.unanswered} checks in a row`,
          )
          return
        }
        // One warning for the first failed check in a row; the rest at debug (the last one, or a
        // recovery, ends the run), so that an RPC gone for good costs a few lines, not one a check.
        const line = { err, nonce: entry.nonce, hash: entry.hashes.at(-1), checks: entry.unanswered }
        if (entry.unanswered === 1) this.log.warn(line, 'checking a transaction failed; trying again')
        else this.log.debug(line, 'checking a transaction failed; trying again')
        return schedule()
      }
      try {
        if (mined > entry.nonce) return settle()
        await this.replace(entry)
      } catch (err) {
        const fields = { err, nonce: entry.nonce, hash: entry.hashes.at(-1) }
        if (/underpriced/i.test(String(err instanceof BaseError ? `${err.shortMessage} ${err.details}` : err)))
          this.log.warn(
            { ...fields, setting: 'fees.bumpPercent' },
            'the node refused the replacement as underpriced: raise fees.bumpPercent',
          )
        // Another nonce error: most likely mined meanwhile (the next check sees it and stops).
        else if (isNonceError(err)) this.log.debug(fields, 'replacing a stuck transaction failed: mined meanwhile?')
        else this.log.warn(fields, 'replacing a stuck transaction failed; trying again')
      }
      schedule()
    }
    schedule()
  }

  /** Starts the nonce watch unless it runs; it stops by itself once nothing is kept or in flight. */
  private watch() {
    if (this.watchTimer) return
    this.watchTimer = setTimeout(() => {
      void this.watchOnce().finally(() => {
        this.watchTimer = undefined
        if (this.kept.size > 0 || this.inflight.size > 0) this.watch()
      })
    }, this.watchMs)
    this.watchTimer.unref?.()
  }

  /**
   * One nonce watch: kept transactions whose nonce is free again are sent again; a free nonce with
   * transactions in flight above it and no copy kept is filled (the second watch in a row that sees
   * it); kept transactions `reorgDepth` deep are let go.
   */
  private async watchOnce() {
    let pending: number
    let head: bigint
    try {
      ;[pending, head] = await Promise.all([
        this.publicClient.getTransactionCount({ address: this.address, blockTag: 'pending' }),
        this.publicClient.getBlockNumber({ cacheTime: 0 }),
      ])
      this.watchUnanswered = 0
    } catch (err) {
      if (++this.watchUnanswered >= MAX_UNANSWERED_CHECKS) {
        // The endpoint is gone (or down for long): nothing kept can be checked; a later send starts again.
        this.log.debug({ err, kept: this.kept.size, checks: this.watchUnanswered }, 'stopped watching the nonce: the RPC failed')
        this.kept.clear()
        this.watchUnanswered = 0
      }
      return
    }
    const inflight = [...this.inflight.values()]
    const held = (nonce: number) => inflight.some((e) => e.nonce === nonce)
    let resent = false
    for (const [nonce, kept] of [...this.kept]) {
      if (nonce >= pending && !held(nonce)) {
        this.kept.delete(nonce)
        resent = true
        await this.inQueue(() => this.resend(kept.entry, pending))
      } else if (kept.block === undefined) kept.block = head
      else if (head - kept.block >= BigInt(this.reorgDepth)) this.kept.delete(nonce)
    }
    // (After a resend, `pending` and the snapshot are stale: the next watch looks again.)
    const gap = !resent && !this.submitting && !held(pending) && !this.kept.has(pending) && inflight.some((e) => e.nonce > pending)
    if (!gap) this.gapSeen = undefined
    else if (this.gapSeen !== pending) this.gapSeen = pending
    else {
      this.gapSeen = undefined
      await this.inQueue(() => this.fill(pending))
    }
  }

  /** Runs `fn` in the queue's turn (no submission between its reads and its send). */
  private inQueue(fn: () => Promise<void>): Promise<void> {
    const turn = this.tail.then(fn)
    this.tail = turn.catch(() => undefined)
    return turn.catch((err: unknown) => this.log.warn({ err }, 'filling a nonce gap failed; the next watch tries again'))
  }

  /** Sends a kept transaction again (a reorg dropped it), watched as in flight from now on. */
  private async resend(entry: InFlight, pending: number) {
    const fields = { nonce: entry.nonce, hash: entry.hashes.at(-1), pending }
    try {
      if (entry.serialized) await this.broadcast(entry.serialized)
      else await this.submitWithNonce(entry.tx, entry.fees, entry.nonce)
    } catch (err) {
      // Mined again meanwhile (a lagging endpoint answered the watch): keep it as it was.
      if (isNonceError(err)) {
        this.log.debug({ ...fields, err }, 'a kept transaction was not sent again: its nonce is used')
        this.kept.set(entry.nonce, { entry })
        return
      }
      this.kept.set(entry.nonce, { entry })
      throw err
    }
    this.gapsFilled++
    metrics.nonceGaps.inc({ chain: this.chainName, how: 'resent' })
    this.log.warn(fields, 'a mined transaction is gone from the chain (a reorg dropped it): sent again')
    this.track({ ...entry, listeners: new Set(), warnedAtCap: false, unanswered: 0 })
  }

  /** Fills free nonce `nonce` (below transactions in flight, no copy kept) with an empty transfer to self. */
  private async fill(nonce: number) {
    const [pending, fees] = await Promise.all([
      this.publicClient.getTransactionCount({ address: this.address, blockTag: 'pending' }),
      this.fees(),
    ])
    if (pending !== nonce || this.inflight.size === 0) return
    const tx: TxRequest = { to: this.address, data: '0x', gas: 21_000n, value: 0n }
    const sent = await this.submitWithNonce(tx, fees, nonce)
    this.gapsFilled++
    metrics.nonceGaps.inc({ chain: this.chainName, how: 'filled' })
    this.log.warn(
      { nonce, hash: sent.hash, waiting: this.inflight.size },
      'nonce free below transactions in flight (one sent elsewhere was dropped): filled with an empty transfer to self',
    )
    this.track(inFlight(tx, nonce, fees, sent))
  }

  /** Sends `entry` again with higher fees (or, at the cap, the same transaction again). */
  private async replace(entry: InFlight) {
    const next = this.bumped(entry.fees, await this.readFeesUncapped())
    if (!next) {
      if (!entry.warnedAtCap) {
        entry.warnedAtCap = true
        this.log.warn(
          { nonce: entry.nonce, hash: entry.hashes.at(-1), fees: feeFields(entry.fees), setting: 'fees.maxFeePerGasGwei' },
          `transaction not mined after ${this.policy.replaceAfterMs} ms and its fees are at the cap (fees.maxFeePerGasGwei): waiting; raise the cap to have it replaced`,
        )
      }
      if (entry.serialized) await this.broadcast(entry.serialized)
      return
    }
    const { hash, serialized } = await this.submitWithNonce(entry.tx, next, entry.nonce)
    const from = entry.hashes.at(-1)
    entry.fees = next
    if (serialized) entry.serialized = serialized
    entry.hashes.push(hash)
    this.replaced++
    metrics.transactionsReplaced.inc({ chain: this.chainName })
    this.log.info(
      { nonce: entry.nonce, replaced: from, hash, fees: feeFields(next) },
      `transaction not mined after ${this.policy.replaceAfterMs} ms: sent again with higher fees`,
    )
    for (const l of entry.listeners) l(hash)
  }

  /** The chain's fee estimate now, not held to the cap (the replacement holds it). */
  private async readFeesUncapped(): Promise<Fees> {
    try {
      const { maxFeePerGas, maxPriorityFeePerGas } = await this.publicClient.estimateFeesPerGas({ type: 'eip1559' })
      return { type: 'eip1559', maxFeePerGas, maxPriorityFeePerGas }
    } catch (err) {
      if (err instanceof Eip1559FeesNotSupportedError) return { type: 'legacy', gasPrice: await this.publicClient.getGasPrice() }
      throw err
    }
  }

  private async broadcast(serialized: Hex) {
    try {
      await this.publicClient.sendRawTransaction({ serializedTransaction: serialized })
    } catch (err) {
      if (!isAlreadyKnown(err)) throw err
    }
  }

  private async submitWithNonce(tx: TxRequest, fees: Fees, nonce: number): Promise<{ hash: Hex; serialized?: Hex }> {
    const account = this.walletClient.account
    const chain = this.walletClient.chain
    if (account.type === 'local') {
      const serialized = await account.signTransaction(
        fees.type === 'eip1559'
          ? {
              chainId: chain.id,
              type: 'eip1559',
              to: tx.to,
              data: tx.data,
              gas: tx.gas,
              value: tx.value,
              nonce,
              maxFeePerGas: fees.maxFeePerGas,
              maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
            }
          : { chainId: chain.id, type: 'legacy', to: tx.to, data: tx.data, gas: tx.gas, value: tx.value, nonce, gasPrice: fees.gasPrice },
      )
      const hash = keccak256(serialized)
      try {
        return { hash: await this.publicClient.sendRawTransaction({ serializedTransaction: serialized }), serialized }
      } catch (err) {
        if (isAlreadyKnown(err)) return { hash, serialized }
        throw err
      }
    }
    const hash = await this.walletClient.sendTransaction({
      account,
      chain,
      to: tx.to,
      data: tx.data,
      gas: tx.gas,
      value: tx.value,
      nonce,
      ...fees,
    })
    return { hash }
  }
}

/** A transaction just sent with `nonce` and `fees` (as `sent`), to be watched until its nonce is used. */
function inFlight(tx: TxRequest, nonce: number, fees: Fees, sent: { hash: Hex; serialized?: Hex }): InFlight {
  return {
    tx,
    nonce,
    fees,
    hashes: [sent.hash],
    ...(sent.serialized ? { serialized: sent.serialized } : {}),
    listeners: new Set(),
    warnedAtCap: false,
    unanswered: 0,
  }
}

/** Fees as log fields (gwei strings). */
function feeFields(f: Fees): Record<string, string> {
  const gwei = (v: bigint) => `${Number(v) / 1e9} gwei`
  return f.type === 'eip1559'
    ? { maxFeePerGas: gwei(f.maxFeePerGas), maxPriorityFeePerGas: gwei(f.maxPriorityFeePerGas) }
    : { gasPrice: gwei(f.gasPrice) }
}

const senders = new Map<string, AccountSender>()

/**
 * The process-wide send queue of `account` on chain `chainId` through `rpcUrl` (the primary
 * endpoint). The first caller's `make` builds it: its fee policy holds for every later caller.
 */
export function accountSender(key: { chainId: number; rpcUrl: string; address: Address }, make: () => AccountSender): AccountSender {
  const k = `${key.chainId}|${key.rpcUrl}|${key.address.toLowerCase()}`
  let s = senders.get(k)
  if (!s) {
    s = make()
    senders.set(k, s)
  }
  return s
}

/**
 * The process-wide send queue of a client's account. Every sender from one account in a process
 * (the node, each messenger's agents) goes through it: two loops that each read the account's
 * nonce would give two transactions one nonce, and the one with the higher fee replaces the other
 * in the node's pool while its sender waits for a receipt that never comes.
 */
export function clientSender(client: SertnClient, options: SenderOptions = {}): AccountSender {
  return accountSender(
    { chainId: client.chain.id, rpcUrl: client.rpcUrl ?? client.transport.url ?? `client ${client.uid}`, address: client.account.address },
    () =>
      new AccountSender(client as unknown as PublicClient<Transport, Chain>, client, {
        ...(client.feePolicy ? { fees: client.feePolicy } : {}),
        ...options,
      }),
  )
}
