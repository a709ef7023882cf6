/**
 * The keeper: nothing a requester is owed waits for a person to click. On every configured chain it
 *
 * - refunds expired requests: a gateway (InferenceGateway on the hub, SpokeGateway on a spoke)
 *   request still Pending after its deadline is refunded with `refund(requestId)`, which pays the
 *   requester its escrow back and calls it back with `Timeout`; on a spoke the refund also sends
 *   the settlement receipt that closes the request's record in the hub market (and its job in the
 *   node registry);
 * - sends deferred receipts (spokes): a settlement whose receipt the messenger refused when it
 *   settled (its fee rose above the receipt's reserve, say) emits `ReceiptDeferred` and waits in
 *   `pendingReceipt`; `sendReceipt(requestId)` sends it, the reserve paying first and the caller
 *   the rest (at most `keeper.maxReceiptTopUpEth`; the surplus comes back);
 * - dispatches Infernet subscriptions (chains with `infernetCoordinator`): an infernet-sdk
 *   `CallbackConsumer` creates a one-time subscription at the facade (SertnInfernetCoordinator) and
 *   only then stores its inputs, so the facade cannot request inside `createSubscription`; as an
 *   Infernet node picks subscriptions up from `SubscriptionCreated`, the keeper calls
 *   `dispatch(subscriptionId)` for each one still waiting (`Created`) once the consumer's inputs are
 *   readable (the call's simulation reads them). It watches the facade every chain's
 *   `pollingIntervalMs` (not every `keeper.intervalMs`), so that a consumer waits about a block for
 *   its request, as it would for an Infernet node. A subscription dispatched or cancelled by someone
 *   else is done; one whose dispatch reverts (inputs missing or of the wrong shape, a fee that rose
 *   above what was reserved) is retried with backoff a bounded number of times, then left with a
 *   warning that says what its owner can do (anyone may still call `dispatch`).
 *
 * The hub's InferenceMarket has no refund of its own: its records of spoke requests are closed by
 * those spokes' receipts (Refunded after the spoke's refund), so the keeper serves the market by
 * refunding on the spokes and by sending their deferred receipts.
 *
 * Finding them: the gateway's events, read in bounded `eth_getLogs` ranges (the chain's
 * `logRangeBlocks`) up to `confirmations` blocks below the head, from a cursor kept with the open
 * requests in `<dataDir>/keeper/<chain>-<gateway>.json` (written atomically; a snapshot is always
 * consistent, so the worst a stale write can do is make a later round read blocks again); the
 * facade's subscriptions likewise in `<dataDir>/keeper/<chain>-infernet-<coordinator>.json`, with
 * each waiting one's failed attempts (a restart does not reset the bound).
 * `InferenceRequested` adds a request with its deadline, a settlement event removes it,
 * `ReceiptDeferred` / `ReceiptSent` add and remove receipts. Without saved state a chain starts at
 * its `startBlock`, else at the head (older requests are not looked at: set `startBlock`).
 *
 * Several nodes may keep the same gateway: each call is checked first (the request's state, then a
 * simulation), and a request someone else refunded meanwhile (`GatewayRequestNotPending`, or a
 * reverted transaction after which the request is no longer pending) counts as done, not as an
 * error. Transactions go through the node account's process-wide queue (`sender.ts`), which the
 * chain plugins share. Expiry is judged by the chain's clock (the latest block's timestamp).
 *
 * @example
 * const keeper = evmKeeper({ config })
 * const report = await keeper.round() // [{ chain: 'spoke', refunded: ['req:31338:0x…:7'], … }]
 * const dispatched = await keeper.dispatch() // [{ chain: 'spoke', coordinator: '0x…', dispatched: [3], … }]
 * await runKeeper(config, { signal }) // what the chain-io worker does, every keeper.intervalMs
 */
import { join, resolve } from 'node:path'
import {
  encodeFunctionData,
  formatEther,
  getAbiItem,
  getAddress,
  parseEther,
  parseEventLogs,
  type Account,
  type Address,
  type Hex,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { SertnInfernetCoordinator, SpokeGateway } from '../../../contracts/artifacts/index.ts'
import type { SertnConfig } from '../../../core/config.ts'
import { ConfigError, SertnError } from '../../../core/errors.ts'
import { readTextIfExists, writeJsonAtomic } from '../../../core/files.ts'
import { componentLogger, type Logger } from '../../../core/log.ts'
import { createSerialLock, runPollLoop } from '../../../core/loop.ts'
import { metrics } from '../../../core/metrics.ts'
import { REQUEST_STATUSES, requestKey } from '../../../core/types.ts'
import { connectEvm, sendAndWait, type EvmConnection } from './connection.ts'
import { settleGasLimit } from './evm-chain.ts'
import { feePolicyOf } from './sender.ts'
import { isRevert } from './errors.ts'
import { decodedRevertOf } from './rejections.ts'

/** SpokeGateway's ABI: InferenceGateway's and the spoke's receipts (a hub gateway never emits those). */
const ABI = SpokeGateway.abi
const EVENTS = {
  requested: getAbiItem({ abi: ABI, name: 'InferenceRequested' }),
  fulfilled: getAbiItem({ abi: ABI, name: 'InferenceFulfilled' }),
  failed: getAbiItem({ abi: ABI, name: 'InferenceFailed' }),
  refunded: getAbiItem({ abi: ABI, name: 'InferenceRefunded' }),
  deferred: getAbiItem({ abi: ABI, name: 'ReceiptDeferred' }),
  sent: getAbiItem({ abi: ABI, name: 'ReceiptSent' }),
} as const

/** Ranges of `logRangeBlocks` one round reads at most per chain (a long catch-up spans rounds). */
const MAX_RANGES_PER_ROUND = 25

/** A keeper's state for one gateway: where its scan resumes, and what may still need it. */
export type KeeperState = {
  /** The next block to read (decimal). */
  nextBlock: string
  /** Requests seen and not seen settled, with their deadlines (unix seconds). */
  open: { id: string; deadline: number }[]
  /** Spoke requests whose receipt was deferred and not seen sent. */
  receipts: string[]
}

/** What one round did on one chain. */
export type KeeperChainReport = {
  chain: string
  gateway: Address
  /** The block the scan reached (the next round reads from the one after it). */
  scannedTo: string
  /** Request keys refunded by this keeper now. */
  refunded: string[]
  /** Request keys found settled by someone else (a node, another keeper) when they were due. */
  alreadySettled: string[]
  /** Request keys whose deferred receipt this keeper sent. */
  receiptsSent: string[]
  /** Requests seen and still pending. */
  open: number
  /** The earliest deadline among them (unix seconds), if any. */
  nextDeadline?: number
  /** What failed (retried next round). */
  errors: string[]
  /** The Infernet facade's subscriptions (chains with `infernetCoordinator`). */
  infernet?: InfernetDispatchReport
}

/** A keeper's state for one Infernet facade: where its scan resumes, and the subscriptions waiting for dispatch. */
export type InfernetDispatchState = {
  /** The next block to read (decimal). */
  nextBlock: string
  /** Subscriptions seen created and not seen dispatched or cancelled. */
  waiting: {
    id: number
    /** Dispatch attempts that reverted so far. */
    attempts: number
    /** Not tried again before this time (unix ms), after a failed attempt. */
    retryAt?: number
    /** Why the last attempt failed. */
    lastError?: string
  }[]
}

/** What one dispatch pass did on one chain's Infernet facade (subscription ids). */
export type InfernetDispatchReport = {
  chain: string
  coordinator: Address
  /** The block the scan reached. */
  scannedTo: string
  /** Dispatched by this keeper now. */
  dispatched: number[]
  /** Found dispatched (or ended) by someone else when they were due. */
  alreadyDispatched: number[]
  /** Found cancelled by their owner. */
  cancelled: number[]
  /** Given up on: their dispatch kept reverting (see the warning logged for each). */
  undispatchable: number[]
  /** Still waiting (created, or retried after a failed attempt). */
  waiting: number
  /** What failed and is retried (a failed attempt's revert, an RPC failure). */
  errors: string[]
}

/** How often the keeper tries to dispatch a subscription whose dispatch reverts, and how long it waits between tries. */
export type DispatchRetry = {
  /** Attempts before giving up (default 5). */
  attempts: number
  /** The wait after the first failed attempt, doubled after each (default 2 s: about 30 s in all). */
  backoffMs: number
}

export const DEFAULT_DISPATCH_RETRY: DispatchRetry = { attempts: 5, backoffMs: 2_000 }

export interface Keeper {
  /**
   * One pass over every chain (refunds, deferred receipts and, where configured, Infernet
   * dispatches); never throws for a chain's failure (see each report's `errors`).
   */
  round(): Promise<KeeperChainReport[]>
  /**
   * One dispatch pass over the Infernet facade of every chain that has one (`chain`: only that
   * chain's); never throws for a chain's failure (see each report's `errors`).
   */
  dispatch(chain?: string): Promise<InfernetDispatchReport[]>
}

export type EvmKeeperOptions = {
  config: SertnConfig
  /** The account that pays the refunds (default: the node's key from the configuration). */
  account?: Account
  /** Where each gateway's state is kept (default `<dataDir>/keeper`). */
  stateDir?: string
  /** Default: the `keeper` component logger. */
  logger?: Logger
  /** Retries of a subscription whose dispatch reverts (default {@link DEFAULT_DISPATCH_RETRY}). */
  dispatchRetry?: DispatchRetry
}

/** The node's account as the configuration gives it; a ConfigError naming the field when it has none. */
function nodeAccount(config: SertnConfig): Account {
  const key = config.node.privateKey
  if (!key) throw new ConfigError('keeper: no node key to pay refunds with (node.privateKey, or the secrets file)')
  return privateKeyToAccount(key as Hex)
}

const fileOf = (dir: string, chain: string, gateway: Address) => join(dir, `${chain}-${gateway.toLowerCase()}.json`)

/**
 * A keeper state file (undefined when there is none yet), parsed as JSON and checked to hold a
 * `nextBlock` and the array `list` names; a broken one stops the keeper with what to do.
 */
async function readKeeperFile<T extends { nextBlock: string }>(path: string, what: string, list: keyof T): Promise<T | undefined> {
  const text = await readTextIfExists(path)
  if (text === undefined) return undefined
  let s: T
  try {
    s = JSON.parse(text) as T
  } catch (err) {
    throw new ConfigError(`${path}: not JSON (delete it to rescan from the chain's startBlock)`, { cause: err })
  }
  if (typeof s?.nextBlock !== 'string' || !/^\d+$/.test(s.nextBlock) || !Array.isArray(s[list]))
    throw new ConfigError(`${path}: not a ${what} (delete it to rescan from the chain's startBlock)`)
  return s
}

async function loadState(path: string): Promise<KeeperState | undefined> {
  const s = await readKeeperFile<KeeperState>(path, 'keeper state', 'open')
  return s && { nextBlock: s.nextBlock, open: s.open, receipts: s.receipts ?? [] }
}

/** A failure of one call, said in one line: the contract's error when it reverted. */
function reasonOf(err: unknown): string {
  const r = decodedRevertOf(err)
  if (r) return `${r.errorName}(${r.args.map(String).join(', ')})`
  if (err instanceof SertnError) return err.shortMessage
  return err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err)
}

type ChainKeeper = { round(): Promise<KeeperChainReport> }

/** The keeper's clients for one chain; its transactions go through the account's process-wide send queue. */
function chainConnection(config: SertnConfig, chainName: string, account: Account): EvmConnection {
  const c = config.chains[chainName]!
  return connectEvm({
    chainName,
    chainId: c.chainId,
    rpcUrl: c.rpcUrl,
    fallbackRpcUrls: c.fallbackRpcUrls,
    account,
    pollingIntervalMs: c.pollingIntervalMs,
    fees: feePolicyOf(c.fees),
  })
}

/** The keeper of one chain's gateway. */
function gatewayKeeper(o: {
  config: SertnConfig
  chainName: string
  account: Account
  conn: EvmConnection
  stateDir: string
  logger: Logger
}): ChainKeeper {
  const c = o.config.chains[o.chainName]!
  const gateway = getAddress(c.gateway)
  const spoke = c.hub !== undefined
  const log = o.logger.child({ chain: o.chainName })
  const { conn } = o
  const { publicClient } = conn
  const path = fileOf(o.stateDir, o.chainName, gateway)
  const maxTopUp = parseEther(String(o.config.keeper.maxReceiptTopUpEth))
  const keyOf = (id: string) => requestKey(c.chainId, gateway, id)
  let checked = false

  async function initialState(): Promise<KeeperState> {
    if (c.startBlock !== undefined) return { nextBlock: String(c.startBlock), open: [], receipts: [] }
    const head = await publicClient.getBlockNumber({ cacheTime: 0 })
    log.warn(
      { block: head.toString() },
      `no keeper state: starting at the head; requests made before it are not looked at (set chains.${o.chainName}.startBlock to the gateway's deployment block to cover them)`,
    )
    return { nextBlock: head.toString(), open: [], receipts: [] }
  }

  /** Reads the next ranges of events into `state`, saving after each. */
  async function scan(state: KeeperState): Promise<bigint> {
    const head = await publicClient.getBlockNumber({ cacheTime: 0 })
    const safe = head - BigInt(c.confirmations)
    const range = BigInt(c.logRangeBlocks)
    const events = spoke ? Object.values(EVENTS) : [EVENTS.requested, EVENTS.fulfilled, EVENTS.failed, EVENTS.refunded]
    for (let i = 0; i < MAX_RANGES_PER_ROUND; i++) {
      const from = BigInt(state.nextBlock)
      if (from > safe) break
      const to = from + range - 1n < safe ? from + range - 1n : safe
      const logs = await publicClient.getLogs({ address: gateway, events, fromBlock: from, toBlock: to, strict: true })
      logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : Number(a.blockNumber - b.blockNumber)))
      const open = new Map(state.open.map((r) => [r.id, r]))
      const receipts = new Set(state.receipts)
      for (const l of logs) {
        const args = l.args as { requestId: bigint; deadline?: bigint | number }
        const id = args.requestId.toString()
        switch (l.eventName) {
          case 'InferenceRequested':
            open.set(id, { id, deadline: Number(args.deadline) })
            break
          case 'InferenceFulfilled':
          case 'InferenceFailed':
          case 'InferenceRefunded':
            open.delete(id)
            break
          case 'ReceiptDeferred':
            receipts.add(id)
            break
          case 'ReceiptSent':
            receipts.delete(id)
            break
        }
      }
      state.open = [...open.values()]
      state.receipts = [...receipts]
      state.nextBlock = (to + 1n).toString()
      await writeJsonAtomic(path, state)
    }
    return BigInt(state.nextBlock) - 1n
  }

  type Done = 'refunded' | 'settled' | 'waiting'

  async function refund(id: string, now: bigint): Promise<Done> {
    const key = keyOf(id)
    const r = await publicClient.readContract({ address: gateway, abi: ABI, functionName: 'getRequest', args: [BigInt(id)] })
    const status = REQUEST_STATUSES[r.status] ?? 'None'
    if (status !== 'Pending') return 'settled'
    if (BigInt(r.deadline) >= now) return 'waiting'
    const call = { address: gateway, abi: ABI, functionName: 'refund', args: [BigInt(id)], account: o.account } as const
    let estimate: bigint
    try {
      estimate = await publicClient.estimateContractGas(call)
    } catch (err) {
      const revert = decodedRevertOf(err)
      if (revert?.errorName === 'GatewayRequestNotPending') return 'settled'
      if (revert?.errorName === 'GatewayRequestNotExpired') return 'waiting'
      throw err
    }
    const { hash, receipt } = await sendAndWait(
      conn,
      { to: gateway, data: encodeFunctionData(call), gas: settleGasLimit(estimate, r.callbackGasLimit) },
      { what: `refund ${key}`, pollingIntervalMs: c.pollingIntervalMs },
    )
    if (receipt.status !== 'success') {
      // Most likely another keeper's refund (or the node's answer) was mined first.
      const after = await publicClient.readContract({ address: gateway, abi: ABI, functionName: 'getRequest', args: [BigInt(id)] })
      if (after.status !== r.status) {
        log.info({ requestKey: key, transactionHash: hash }, 'expired request settled by someone else first; our refund reverted')
        return 'settled'
      }
      throw new SertnError(`refund ${key}: transaction ${hash} reverted (gas used ${receipt.gasUsed}); retried next round`)
    }
    metrics.keeperRefunds.inc({ chain: o.chainName })
    metrics.gasUsed.inc({ chain: o.chainName, operation: 'refund' }, Number(receipt.gasUsed))
    log.info(
      {
        requestKey: key,
        requester: r.requester,
        escrowWei: r.escrow.toString(),
        deadline: r.deadline,
        transactionHash: hash,
        gasUsed: receipt.gasUsed.toString(),
      },
      `refunded an expired request (${formatEther(r.escrow)} back to its requester)`,
    )
    return 'refunded'
  }

  async function sendReceipt(id: string): Promise<Done> {
    const key = keyOf(id)
    const p = await publicClient.readContract({ address: gateway, abi: ABI, functionName: 'pendingReceipt', args: [BigInt(id)] })
    if (p.status === 0) return 'settled'
    const callWith = (value: bigint) =>
      ({ address: gateway, abi: ABI, functionName: 'sendReceipt', args: [BigInt(id)], account: o.account, value }) as const
    let value = 0n
    let estimate: bigint
    try {
      estimate = await publicClient.estimateContractGas(callWith(0n))
    } catch (err) {
      const revert = decodedRevertOf(err)
      if (revert?.errorName === 'SpokeNoPendingReceipt') return 'settled'
      if (revert?.errorName !== 'MessengerInsufficientFee') throw err
      const [required, available] = revert.args as [bigint, bigint]
      const missing = required - available
      // A fifth more than the fee asks now, in case it rises again before inclusion: the surplus comes back.
      value = missing + required / 5n
      if (value > maxTopUp) {
        log.warn(
          {
            requestKey: key,
            feeWei: required.toString(),
            reserveWei: available.toString(),
            maxTopUpEth: o.config.keeper.maxReceiptTopUpEth,
          },
          `a deferred receipt needs ${formatEther(value)} on top of its reserve, more than keeper.maxReceiptTopUpEth: send it with \`cast send ${gateway} "sendReceipt(uint256)" ${id} --value …\` or raise the limit`,
        )
        return 'waiting'
      }
      estimate = await publicClient.estimateContractGas(callWith(value))
    }
    const { hash, receipt } = await sendAndWait(
      conn,
      { to: gateway, data: encodeFunctionData(callWith(value)), gas: estimate + estimate / 5n, value },
      { what: `sendReceipt ${key}`, pollingIntervalMs: c.pollingIntervalMs },
    )
    if (receipt.status !== 'success') {
      const after = await publicClient.readContract({ address: gateway, abi: ABI, functionName: 'pendingReceipt', args: [BigInt(id)] })
      if (after.status === 0) return 'settled'
      throw new SertnError(`sendReceipt ${key}: transaction ${hash} reverted (gas used ${receipt.gasUsed}); retried next round`)
    }
    metrics.keeperReceipts.inc({ chain: o.chainName })
    log.info(
      { requestKey: key, topUpWei: value.toString(), transactionHash: hash, gasUsed: receipt.gasUsed.toString() },
      'sent a deferred settlement receipt to the hub',
    )
    return 'refunded'
  }

  return {
    async round() {
      const report: KeeperChainReport = {
        chain: o.chainName,
        gateway,
        scannedTo: '',
        refunded: [],
        alreadySettled: [],
        receiptsSent: [],
        open: 0,
        errors: [],
      }
      if (!checked) {
        const actual = await publicClient.getChainId()
        if (actual !== c.chainId) throw new ConfigError(`keeper ${o.chainName}: ${c.rpcUrl} serves chain ${actual}, not ${c.chainId}`)
        checked = true
      }
      const state = (await loadState(path)) ?? (await initialState())
      report.scannedTo = (await scan(state)).toString()
      const now = (await publicClient.getBlock({ blockTag: 'latest' })).timestamp
      const keep: KeeperState['open'] = []
      for (const r of state.open) {
        if (BigInt(r.deadline) >= now) {
          keep.push(r)
          continue
        }
        try {
          const done = await refund(r.id, now)
          if (done === 'waiting') keep.push(r)
          else (done === 'refunded' ? report.refunded : report.alreadySettled).push(keyOf(r.id))
        } catch (err) {
          keep.push(r)
          report.errors.push(`refund ${keyOf(r.id)}: ${reasonOf(err)}`)
          log.warn({ requestKey: keyOf(r.id), err: reasonOf(err) }, 'refunding an expired request failed; retried next round')
        }
      }
      const receipts: string[] = []
      for (const id of state.receipts) {
        try {
          const done = await sendReceipt(id)
          if (done === 'waiting') receipts.push(id)
          else if (done === 'refunded') report.receiptsSent.push(keyOf(id))
        } catch (err) {
          receipts.push(id)
          report.errors.push(`sendReceipt ${keyOf(id)}: ${reasonOf(err)}`)
          log.warn({ requestKey: keyOf(id), err: reasonOf(err) }, 'sending a deferred receipt failed; retried next round')
        }
      }
      await writeJsonAtomic(path, { nextBlock: state.nextBlock, open: keep, receipts } satisfies KeeperState)
      report.open = keep.length
      if (keep.length > 0) report.nextDeadline = Math.min(...keep.map((r) => r.deadline))
      return report
    },
  }
}

// ─────────────────────────────── Infernet dispatch ───────────────────────────────

const INFERNET_ABI = SertnInfernetCoordinator.abi
const INFERNET_EVENTS = [
  getAbiItem({ abi: INFERNET_ABI, name: 'SubscriptionCreated' }),
  getAbiItem({ abi: INFERNET_ABI, name: 'SubscriptionCancelled' }),
  getAbiItem({ abi: INFERNET_ABI, name: 'InfernetSubscriptionDispatched' }),
]
/** SertnInfernetCoordinator.Status, by value. */
const SUBSCRIPTION_STATUSES = ['None', 'Created', 'Requested', 'Fulfilled', 'Failed', 'Cancelled'] as const
type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number]

/** What became of one subscription in a pass (the `outcome` label of `sertn_keeper_dispatches_total`). */
type DispatchOutcome = 'dispatched' | 'already_dispatched' | 'cancelled' | 'retrying' | 'undispatchable'

const dispatchFileOf = (dir: string, chain: string, coordinator: Address) =>
  join(dir, `${chain}-infernet-${coordinator.toLowerCase()}.json`)

async function loadDispatchState(path: string): Promise<InfernetDispatchState | undefined> {
  const s = await readKeeperFile<InfernetDispatchState>(path, 'keeper dispatch state', 'waiting')
  return s && { nextBlock: s.nextBlock, waiting: s.waiting }
}

/** What the owner of a subscription whose dispatch keeps reverting with `errorName` can do. */
function dispatchAdvice(coordinator: Address, id: number, errorName: string | undefined): string {
  const either = `then anyone may call dispatch(${id}) on ${coordinator}, or the consumer cancels the subscription (cancelSubscription(${id}): the fee goes back to its deposit)`
  switch (errorName) {
    case 'SertnInfernetInvalidInput':
    case 'SertnInfernetInputShapeMismatch':
      return `the consumer's getContainerInputs(${id}, 1, timestamp, ${coordinator}) must return abi.encode(int256[]) with the model's number of inputs: store them, ${either}`
    case 'GatewayInsufficientPayment':
      return `the gateway's fee rose above the one reserved when the subscription was created: the consumer cancels it (cancelSubscription(${id}): the fee goes back to its deposit), deposits more and requests again`
    case 'SertnFacadeModelUnsupported':
    case 'GatewayUnknownModel':
    case 'GatewayModelInactive':
      return `the container's model cannot be served on this chain now: its owner maps the container to a registered model (setContainer), ${either}`
    default:
      return `the facade's dispatch reverts: find out why with \`cast call ${coordinator} "dispatch(uint32)" ${id}\`, ${either}`
  }
}

type ChainDispatcher = { readonly chainName: string; dispatch(): Promise<InfernetDispatchReport> }

/** The dispatcher of one chain's Infernet facade (see the module's notes). */
function infernetDispatcher(o: {
  config: SertnConfig
  chainName: string
  account: Account
  conn: EvmConnection
  stateDir: string
  logger: Logger
  retry: DispatchRetry
}): ChainDispatcher {
  const c = o.config.chains[o.chainName]!
  const coordinator = getAddress(c.infernetCoordinator!)
  const gateway = getAddress(c.gateway)
  const { conn } = o
  const { publicClient } = conn
  const log = o.logger.child({ chain: o.chainName, coordinator })
  const path = dispatchFileOf(o.stateDir, o.chainName, coordinator)
  const count = (outcome: DispatchOutcome) => metrics.keeperDispatches.inc({ chain: o.chainName, outcome })
  // One pass at a time per facade in this process (the poll loop and `round` may both ask).
  const serial = createSerialLock()
  let state: InfernetDispatchState | undefined
  let saved = ''

  const save = async (s: InfernetDispatchState) => {
    const text = JSON.stringify(s)
    if (text === saved) return
    await writeJsonAtomic(path, s)
    saved = text
  }

  async function initialState(): Promise<InfernetDispatchState> {
    if (c.startBlock !== undefined) return { nextBlock: String(c.startBlock), waiting: [] }
    const head = await publicClient.getBlockNumber({ cacheTime: 0 })
    log.warn(
      { block: head.toString() },
      `no keeper dispatch state: starting at the head; Infernet subscriptions created before it are not dispatched (set chains.${o.chainName}.startBlock to cover them)`,
    )
    return { nextBlock: head.toString(), waiting: [] }
  }

  /**
   * Reads the facade's next ranges of events into `s`, saving after each; a waiting subscription
   * seen cancelled or dispatched by someone else is done (counted in `report`).
   */
  async function scan(s: InfernetDispatchState, report: InfernetDispatchReport): Promise<bigint> {
    const head = await publicClient.getBlockNumber({ cacheTime: 0 })
    const safe = head - BigInt(c.confirmations)
    const range = BigInt(c.logRangeBlocks)
    for (let i = 0; i < MAX_RANGES_PER_ROUND; i++) {
      const from = BigInt(s.nextBlock)
      if (from > safe) break
      const to = from + range - 1n < safe ? from + range - 1n : safe
      const logs = await publicClient.getLogs({ address: coordinator, events: INFERNET_EVENTS, fromBlock: from, toBlock: to, strict: true })
      logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : Number(a.blockNumber - b.blockNumber)))
      const waiting = new Map(s.waiting.map((w) => [w.id, w]))
      const created = new Set<number>()
      for (const l of logs) {
        const id = Number((l.args as { id: number }).id)
        if (l.eventName === 'SubscriptionCreated') {
          waiting.set(id, waiting.get(id) ?? { id, attempts: 0 })
          created.add(id)
          continue
        }
        // One this keeper dispatched, or created and ended within these blocks (never due to it).
        if (!waiting.delete(id) || created.has(id)) continue
        const outcome = l.eventName === 'SubscriptionCancelled' ? 'cancelled' : 'already_dispatched'
        count(outcome)
        ;(outcome === 'cancelled' ? report.cancelled : report.alreadyDispatched).push(id)
        log.debug({ subscriptionId: id, outcome }, 'Infernet subscription no longer waiting for dispatch')
      }
      s.waiting = [...waiting.values()]
      s.nextBlock = (to + 1n).toString()
      await save(s)
    }
    return BigInt(s.nextBlock) - 1n
  }

  const statusOf = async (id: number): Promise<SubscriptionStatus> => {
    const sub = await publicClient.readContract({ address: coordinator, abi: INFERNET_ABI, functionName: 'getSubscription', args: [id] })
    return SUBSCRIPTION_STATUSES[sub.status] ?? 'None'
  }
  /** A subscription that is not (or no longer) waiting: cancelled, or dispatched (and maybe ended) by someone else. */
  const notOpen = (status: SubscriptionStatus): 'already_dispatched' | 'cancelled' =>
    status === 'Cancelled' ? 'cancelled' : 'already_dispatched'

  type Attempt =
    | { outcome: 'dispatched' | 'already_dispatched' | 'cancelled' }
    | { outcome: 'reverted'; reason: string; errorName?: string }

  /** One try at dispatching subscription `id`; throws only for what is not the contract's answer (an RPC failure). */
  async function attempt(id: number): Promise<Attempt> {
    const status = await statusOf(id)
    if (status !== 'Created') return { outcome: notOpen(status) }
    const call = { address: coordinator, abi: INFERNET_ABI, functionName: 'dispatch', args: [id], account: o.account } as const
    let estimate: bigint
    try {
      // The simulation reads the consumer's inputs as the facade will: it fails while they are not readable.
      estimate = await publicClient.estimateContractGas(call)
    } catch (err) {
      const revert = decodedRevertOf(err)
      if (revert?.errorName === 'SertnInfernetSubscriptionNotOpen') {
        const now = await statusOf(id)
        if (now !== 'Created') return { outcome: notOpen(now) }
      }
      if (revert) return { outcome: 'reverted', reason: reasonOf(err), errorName: revert.errorName }
      if (isRevert(err)) return { outcome: 'reverted', reason: reasonOf(err) }
      throw err
    }
    const { hash, receipt } = await sendAndWait(
      conn,
      { to: coordinator, data: encodeFunctionData(call), gas: estimate + estimate / 5n },
      { what: `dispatch Infernet subscription ${id} on ${o.chainName}`, pollingIntervalMs: c.pollingIntervalMs },
    )
    if (receipt.status !== 'success') {
      // Most likely another keeper's dispatch (or the owner's cancel) was mined first.
      const now = await statusOf(id)
      if (now !== 'Created') {
        log.info(
          { subscriptionId: id, transactionHash: hash, status: now },
          'subscription dispatched or cancelled by someone else first; our dispatch reverted',
        )
        return { outcome: notOpen(now) }
      }
      return { outcome: 'reverted', reason: `transaction ${hash} reverted (gas used ${receipt.gasUsed})` }
    }
    const [event] = parseEventLogs({ abi: INFERNET_ABI, logs: receipt.logs, eventName: 'InfernetSubscriptionDispatched' })
    metrics.gasUsed.inc({ chain: o.chainName, operation: 'dispatch' }, Number(receipt.gasUsed))
    log.info(
      {
        subscriptionId: id,
        ...(event ? { requestKey: requestKey(c.chainId, gateway, event.args.requestId.toString()) } : {}),
        transactionHash: hash,
        gasUsed: receipt.gasUsed.toString(),
      },
      `dispatched Infernet subscription ${id}${event ? ` as request ${event.args.requestId}` : ''}`,
    )
    return { outcome: 'dispatched' }
  }

  async function pass(): Promise<InfernetDispatchReport> {
    const report: InfernetDispatchReport = {
      chain: o.chainName,
      coordinator,
      scannedTo: '',
      dispatched: [],
      alreadyDispatched: [],
      cancelled: [],
      undispatchable: [],
      waiting: 0,
      errors: [],
    }
    const s = state ?? (await loadDispatchState(path)) ?? (await initialState())
    state = s
    report.scannedTo = (await scan(s, report)).toString()
    const keep: InfernetDispatchState['waiting'] = []
    for (const w of s.waiting) {
      if (w.retryAt !== undefined && w.retryAt > Date.now()) {
        keep.push(w)
        continue
      }
      let result: Attempt
      try {
        result = await attempt(w.id)
      } catch (err) {
        // Not the facade's answer (the RPC, the send queue): retried after a wait, not counted as an attempt.
        keep.push({ ...w, retryAt: Date.now() + o.retry.backoffMs })
        report.errors.push(`dispatch ${w.id}: ${reasonOf(err)}`)
        log.warn(
          { subscriptionId: w.id, err: reasonOf(err), retryInMs: o.retry.backoffMs },
          'dispatching an Infernet subscription failed (not a revert); retried',
        )
        continue
      }
      if (result.outcome !== 'reverted') {
        count(result.outcome)
        if (result.outcome === 'dispatched') report.dispatched.push(w.id)
        else if (result.outcome === 'cancelled') report.cancelled.push(w.id)
        else report.alreadyDispatched.push(w.id)
        if (result.outcome !== 'dispatched')
          log.debug({ subscriptionId: w.id, outcome: result.outcome }, 'Infernet subscription no longer waiting for dispatch')
        continue
      }
      const attempts = w.attempts + 1
      report.errors.push(`dispatch ${w.id}: ${result.reason}`)
      if (attempts >= o.retry.attempts) {
        count('undispatchable')
        report.undispatchable.push(w.id)
        log.warn(
          { subscriptionId: w.id, attempts, err: result.reason },
          `Infernet subscription ${w.id} cannot be dispatched (${result.reason}); the keeper gave up after ${attempts} attempts: ${dispatchAdvice(coordinator, w.id, result.errorName)}`,
        )
        continue
      }
      const backoff = o.retry.backoffMs * 2 ** (attempts - 1)
      count('retrying')
      keep.push({ id: w.id, attempts, retryAt: Date.now() + backoff, lastError: result.reason })
      log.info(
        { subscriptionId: w.id, attempts, retryInMs: backoff, err: result.reason },
        `dispatching Infernet subscription ${w.id} reverted (attempt ${attempts} of ${o.retry.attempts}); retried in ${backoff} ms`,
      )
    }
    s.waiting = keep
    await save(s)
    report.waiting = keep.length
    return report
  }

  return {
    chainName: o.chainName,
    dispatch: () =>
      serial(async () => {
        try {
          return await pass()
        } catch (err) {
          // Reload from the file next time: what was saved is consistent.
          state = undefined
          saved = ''
          throw err
        }
      }),
  }
}

/** The keeper of every configured chain's gateway (and Infernet facade, where one is configured). */
export function evmKeeper(options: EvmKeeperOptions): Keeper {
  const { config } = options
  const account = options.account ?? nodeAccount(config)
  const stateDir = options.stateDir ?? join(resolve(config.dataDir), 'keeper')
  const logger = options.logger ?? componentLogger('keeper')
  const retry = options.dispatchRetry ?? DEFAULT_DISPATCH_RETRY
  const names = Object.keys(config.chains)
  const conns = Object.fromEntries(names.map((chainName) => [chainName, chainConnection(config, chainName, account)]))
  const chains = names.map((chainName) => gatewayKeeper({ config, chainName, account, conn: conns[chainName]!, stateDir, logger }))
  const dispatchers = names
    .filter((chainName) => config.chains[chainName]!.infernetCoordinator !== undefined)
    .map((chainName) => infernetDispatcher({ config, chainName, account, conn: conns[chainName]!, stateDir, logger, retry }))

  async function dispatchOn(d: ChainDispatcher): Promise<InfernetDispatchReport> {
    try {
      return await d.dispatch()
    } catch (err) {
      const why = reasonOf(err)
      logger.warn({ chain: d.chainName, err: why }, 'Infernet dispatch pass failed; retried next pass')
      return {
        chain: d.chainName,
        coordinator: getAddress(config.chains[d.chainName]!.infernetCoordinator!),
        scannedTo: '',
        dispatched: [],
        alreadyDispatched: [],
        cancelled: [],
        undispatchable: [],
        waiting: 0,
        errors: [why],
      }
    }
  }

  return {
    async round() {
      const rounds = await Promise.allSettled(chains.map((k) => k.round()))
      const reports = rounds.map((r, i): KeeperChainReport => {
        if (r.status === 'fulfilled') return r.value
        const chain = names[i]!
        const why = reasonOf(r.reason)
        logger.warn({ chain, err: why }, 'keeper round failed; retried next round')
        return {
          chain,
          gateway: getAddress(config.chains[chain]!.gateway),
          scannedTo: '',
          refunded: [],
          alreadySettled: [],
          receiptsSent: [],
          open: 0,
          errors: [why],
        }
      })
      const dispatched = await Promise.all(dispatchers.map(dispatchOn))
      for (const d of dispatched) {
        const r = reports.find((x) => x.chain === d.chain)!
        r.infernet = d
        r.errors.push(...d.errors)
      }
      return reports
    },
    async dispatch(chain) {
      return Promise.all(dispatchers.filter((d) => chain === undefined || d.chainName === chain).map(dispatchOn))
    },
  }
}

/**
 * Runs the keeper every `keeper.intervalMs`, and its Infernet dispatch every chain's
 * `pollingIntervalMs` (a consumer waits for it), until `signal` aborts (what the chain-io worker
 * starts); resolves at once when `keeper.enabled` is off. Never rejects: failures are logged and retried.
 */
export async function runKeeper(
  config: SertnConfig,
  o: { signal: AbortSignal; account?: Account; logger?: Logger; dispatchRetry?: DispatchRetry },
): Promise<void> {
  const logger = o.logger ?? componentLogger('keeper')
  if (!config.keeper.enabled || o.signal.aborted) return
  let keeper: Keeper
  try {
    keeper = evmKeeper({
      config,
      logger,
      ...(o.account ? { account: o.account } : {}),
      ...(o.dispatchRetry ? { dispatchRetry: o.dispatchRetry } : {}),
    })
  } catch (err) {
    logger.error({ err: reasonOf(err) }, 'the keeper cannot start: expired requests are not refunded by this worker')
    return
  }
  const facades = Object.entries(config.chains).filter(([, c]) => c.infernetCoordinator !== undefined)
  logger.info(
    { intervalMs: config.keeper.intervalMs, chains: Object.keys(config.chains), infernet: facades.map(([name]) => name) },
    'keeper running',
  )
  const loops = [
    runPollLoop(
      async () => {
        await keeper.round()
      },
      {
        intervalMs: config.keeper.intervalMs,
        signal: o.signal,
        onError: (err) => logger.warn({ err: reasonOf(err) }, 'keeper round failed'),
      },
    ),
    ...facades.map(([name, c]) =>
      runPollLoop(
        async () => {
          const [report] = await keeper.dispatch(name)
          // A pass that failed as a whole (already logged): the loop backs off before the next.
          if (report && report.scannedTo === '') throw new SertnError(`Infernet dispatch on ${name}: ${report.errors.join('; ')}`)
        },
        {
          intervalMs: c.pollingIntervalMs,
          signal: o.signal,
          onError: (err) => logger.debug({ chain: name, err: reasonOf(err) }, 'Infernet dispatch pass failed; backing off'),
        },
      ),
    ),
  ]
  await Promise.all(loops.map((l) => l.done))
}
