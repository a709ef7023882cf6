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
 *   the rest (at most `keeper.maxReceiptTopUpEth`; the surplus comes back).
 *
 * The hub's InferenceMarket has no refund of its own: its records of spoke requests are closed by
 * those spokes' receipts (Refunded after the spoke's refund), so the keeper serves the market by
 * refunding on the spokes and by sending their deferred receipts.
 *
 * Finding them: the gateway's events, read in bounded `eth_getLogs` ranges (the chain's
 * `logRangeBlocks`) up to `confirmations` blocks below the head, from a cursor kept with the open
 * requests in `<dataDir>/keeper/<chain>-<gateway>.json` (written atomically; a snapshot is always
 * consistent, so the worst a stale write can do is make a later round read blocks again).
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
 * await runKeeper(config, { signal }) // what the chain-io worker does, every keeper.intervalMs
 */
import { join, resolve } from 'node:path'
import { encodeFunctionData, formatEther, getAbiItem, getAddress, parseEther, type Account, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { SpokeGateway } from '../../../contracts/artifacts/index.ts'
import type { SertnConfig } from '../../../core/config.ts'
import { ConfigError, SertnError } from '../../../core/errors.ts'
import { readTextIfExists, writeJsonAtomic } from '../../../core/files.ts'
import { componentLogger, type Logger } from '../../../core/log.ts'
import { runPollLoop } from '../../../core/loop.ts'
import { metrics } from '../../../core/metrics.ts'
import { REQUEST_STATUSES, requestKey } from '../../../core/types.ts'
import { connectEvm, sendAndWait, type EvmConnection } from './connection.ts'
import { settleGasLimit } from './evm-chain.ts'
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
}

export interface Keeper {
  /** One pass over every chain; never throws for a chain's failure (see each report's `errors`). */
  round(): Promise<KeeperChainReport[]>
}

export type EvmKeeperOptions = {
  config: SertnConfig
  /** The account that pays the refunds (default: the node's key from the configuration). */
  account?: Account
  /** Where each gateway's state is kept (default `<dataDir>/keeper`). */
  stateDir?: string
  /** Default: the `keeper` component logger. */
  logger?: Logger
}

/** The node's account as the configuration gives it; a ConfigError naming the field when it has none. */
function nodeAccount(config: SertnConfig): Account {
  const key = config.node.privateKey
  if (!key) throw new ConfigError('keeper: no node key to pay refunds with (node.privateKey, or the secrets file)')
  return privateKeyToAccount(key as Hex)
}

const fileOf = (dir: string, chain: string, gateway: Address) => join(dir, `${chain}-${gateway.toLowerCase()}.json`)

async function loadState(path: string): Promise<KeeperState | undefined> {
  const text = await readTextIfExists(path)
  if (text === undefined) return undefined
  let s: KeeperState
  try {
    s = JSON.parse(text) as KeeperState
  } catch (err) {
    throw new ConfigError(`${path}: not JSON (delete it to rescan from the chain's startBlock)`, { cause: err })
  }
  if (typeof s?.nextBlock !== 'string' || !/^\d+$/.test(s.nextBlock) || !Array.isArray(s.open))
    throw new ConfigError(`${path}: not a keeper state (delete it to rescan from the chain's startBlock)`)
  return { nextBlock: s.nextBlock, open: s.open, receipts: s.receipts ?? [] }
}

/** A failure of one call, said in one line: the contract's error when it reverted. */
function reasonOf(err: unknown): string {
  const r = decodedRevertOf(err)
  if (r) return `${r.errorName}(${r.args.map(String).join(', ')})`
  if (err instanceof SertnError) return err.shortMessage
  return err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err)
}

type ChainKeeper = { round(): Promise<KeeperChainReport> }

/** The keeper of one chain's gateway. */
function gatewayKeeper(o: { config: SertnConfig; chainName: string; account: Account; stateDir: string; logger: Logger }): ChainKeeper {
  const c = o.config.chains[o.chainName]!
  const gateway = getAddress(c.gateway)
  const spoke = c.hub !== undefined
  const log = o.logger.child({ chain: o.chainName })
  const conn: EvmConnection = connectEvm({
    chainName: o.chainName,
    chainId: c.chainId,
    rpcUrl: c.rpcUrl,
    account: o.account,
    pollingIntervalMs: c.pollingIntervalMs,
  })
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

/** The keeper of every configured chain's gateway. */
export function evmKeeper(options: EvmKeeperOptions): Keeper {
  const { config } = options
  const account = options.account ?? nodeAccount(config)
  const stateDir = options.stateDir ?? join(resolve(config.dataDir), 'keeper')
  const logger = options.logger ?? componentLogger('keeper')
  const chains = Object.keys(config.chains).map((chainName) => gatewayKeeper({ config, chainName, account, stateDir, logger }))
  return {
    async round() {
      const rounds = await Promise.allSettled(chains.map((k) => k.round()))
      return rounds.map((r, i) => {
        if (r.status === 'fulfilled') return r.value
        const chain = Object.keys(config.chains)[i]!
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
    },
  }
}

/**
 * Runs the keeper every `keeper.intervalMs` until `signal` aborts (what the chain-io worker starts);
 * resolves at once when `keeper.enabled` is off. Never rejects: failures are logged and retried.
 */
export async function runKeeper(config: SertnConfig, o: { signal: AbortSignal; account?: Account; logger?: Logger }): Promise<void> {
  const logger = o.logger ?? componentLogger('keeper')
  if (!config.keeper.enabled || o.signal.aborted) return
  let keeper: Keeper
  try {
    keeper = evmKeeper({ config, logger, ...(o.account ? { account: o.account } : {}) })
  } catch (err) {
    logger.error({ err: reasonOf(err) }, 'the keeper cannot start: expired requests are not refunded by this worker')
    return
  }
  logger.info({ intervalMs: config.keeper.intervalMs, chains: Object.keys(config.chains) }, 'keeper running')
  const loop = runPollLoop(
    async () => {
      await keeper.round()
    },
    {
      intervalMs: config.keeper.intervalMs,
      signal: o.signal,
      onError: (err) => logger.warn({ err: reasonOf(err) }, 'keeper round failed'),
    },
  )
  await loop.done
}
