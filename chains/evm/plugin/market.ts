/**
 * The EVM market plugin: the hub's InferenceMarket as the node sees it. It finds spoke requests the
 * market recorded, submits results (verified by the market on the hub, then sent to the spoke) and
 * failures, and reads when the spoke's receipt settled a request. Transactions go through the same
 * per-account send queue as the chain plugin's (one nonce sequence per account and chain).
 *
 * Submitting is idempotent like the gateway's `fulfill`: simulate first; a request this node
 * answered already (an earlier try) is `alreadySettled`; one answered the other way or settled by
 * the spoke is a {@link RequestSettledError}; rejections (invalid proof, wrong input, a model not
 * deployed on the spoke, an expired request) are non-retryable errors; RPC trouble is retryable.
 * Every revert is classified by the table of contract rejections (./rejections.ts).
 */
import { encodeFunctionData, getAbiItem, getAddress, type Account, type Address } from 'viem'
import { InferenceMarket } from '../../../contracts/artifacts/index.ts'
import { ChainTransientError, PluginError } from '../../../core/errors.ts'
import { storageRefOf } from '../../../core/storage-ref.ts'
import {
  defineMarketPlugin,
  type BatchOutcome,
  type BatchRowOutcome,
  type MarketEvent,
  type MarketPlugin,
  type MarketRecord,
  type MarketTxOutcome,
  type ProvenBatch,
} from '../../../core/plugins.ts'
import {
  chainId as toChainId,
  INFERENCE_ERROR_CODES,
  MARKET_STATUSES,
  REQUEST_STATUSES,
  type CopyDestination,
  type InferenceErrorCode,
  type InferenceRequest,
  type MarketStatus,
} from '../../../core/types.ts'
import { addressAsBytes32 } from '../crosschain.ts'
import { copyFinder } from './copies.ts'
import { RequestSettledError, transient } from './errors.ts'
import { revertedRow } from './batch-rows.ts'
import { rejectionFor, rejectionOf, revertOrThrow } from './rejections.ts'
import { jobBook } from './assignment.ts'
import { checkFeePolicy, connectEvm, estimateOnce, joinInflight, sendAndWait } from './connection.ts'
import { truncateReason, type EvmChainOptions } from './evm-chain.ts'
import { recordGas } from './gas-metrics.ts'
import type { FeePolicy } from './sender.ts'
import { registeredModels, TRUSTED_VERIFIER_CODE_HASH } from './registry.ts'

export type EvmMarketOptions = {
  /** The configured name of the hub chain. */
  chainName: string
  chainId: number
  rpcUrl: string
  /** More RPC endpoints, tried in order when the ones before fail (the chain's `fallbackRpcUrls`). */
  fallbackRpcUrls?: readonly string[]
  /** How the node account pays for and replaces its transactions on the hub (`feePolicyOf(chain.fees)`); see {@link EvmChainOptions.fees}. */
  fees?: FeePolicy
  market: Address
  /** The node account registered on the market. */
  account: Account
  /** Milliseconds between receipt polls. Default 250. */
  pollingIntervalMs?: number
  /** How long a submission waits for its receipt before a retryable error. Default 120 000 ms. */
  receiptTimeoutMs?: number
  /** The first block to search for the market's events (its deployment block). Default 0. */
  fromBlock?: bigint
}

const RECORDED = getAbiItem({ abi: InferenceMarket.abi, name: 'RequestRecorded' })
const SETTLED = getAbiItem({ abi: InferenceMarket.abi, name: 'RequestSettled' })

/** An InferenceMarket on an EVM hub chain. */
export const evmMarket = defineMarketPlugin((options: EvmMarketOptions): MarketPlugin => {
  const pluginId = `evm-market:${options.chainName}`
  checkFeePolicy(pluginId, options.fees)
  const market = getAddress(options.market)
  const pollingInterval = options.pollingIntervalMs ?? 250
  const conn = connectEvm({ ...options, pollingIntervalMs: pollingInterval })
  const { publicClient } = conn
  const estimate = estimateOnce(conn)
  const jobs = jobBook({
    conn,
    market,
    account: options.account,
    pluginId,
    chainName: options.chainName,
    pollingIntervalMs: pollingInterval,
    ...(options.receiptTimeoutMs !== undefined ? { receiptTimeoutMs: options.receiptTimeoutMs } : {}),
  })
  const events = new Map<string, MarketEvent>()
  /** How many other chains each request fans out to (fixed when it is recorded). */
  const copiesOf = new Map<string, number>()
  const findCopy = copyFinder(publicClient, market, pluginId)

  /** A fan-out request's other destinations, as the market recorded them. */
  async function destinationsOf(marketRequestId: string): Promise<CopyDestination[]> {
    try {
      const [, destinations] = await publicClient.readContract({
        address: market,
        abi: InferenceMarket.abi,
        functionName: 'destinationsOf',
        args: [BigInt(marketRequestId)],
      })
      return destinations.map((d) => ({
        chainId: toChainId(d.domain),
        receiver: getAddress(d.receiver),
        callbackGasLimit: d.callbackGasLimit,
      }))
    } catch (err) {
      throw transient(`${pluginId}: reading the destinations of market request ${marketRequestId}`, err)
    }
  }
  const join = joinInflight<MarketTxOutcome>()
  let disposed = false
  const live = () => {
    if (disposed) throw new PluginError(pluginId, 'used after dispose()')
  }

  async function getRequest(marketRequestId: string): Promise<MarketRecord> {
    live()
    try {
      const r = await publicClient.readContract({
        address: market,
        abi: InferenceMarket.abi,
        functionName: 'getRequest',
        args: [BigInt(marketRequestId)],
      })
      const node = getAddress(r.node)
      copiesOf.set(marketRequestId, r.copies)
      return {
        marketRequestId,
        status: MARKET_STATUSES[r.status] ?? 'None',
        settlement: REQUEST_STATUSES[r.settlement] ?? 'None',
        ...(BigInt(node) === 0n ? {} : { node }),
        copies: r.copies,
      }
    } catch (err) {
      throw transient(`${pluginId}: reading market request ${marketRequestId}`, err)
    }
  }

  /** The (cached) transaction that emitted `event` for the request. */
  async function eventOf(kind: 'recorded' | 'settled', marketRequestId: string): Promise<MarketEvent> {
    const key = `${kind}:${marketRequestId}`
    const known = events.get(key)
    if (known) return known
    try {
      const [log] = await publicClient.getLogs({
        address: market,
        event: kind === 'recorded' ? RECORDED : SETTLED,
        args: { marketRequestId: BigInt(marketRequestId) },
        fromBlock: options.fromBlock ?? 0n,
        toBlock: 'latest',
        strict: true,
      })
      if (!log) throw new ChainTransientError(`${pluginId}: no ${kind} log yet for market request ${marketRequestId}`)
      const receipt = await publicClient.getTransactionReceipt({ hash: log.transactionHash })
      const e: MarketEvent = {
        transactionHash: log.transactionHash,
        blockNumber: log.blockNumber.toString(),
        gasUsed: receipt.gasUsed.toString(),
        observedAt: Date.now(),
      }
      events.set(key, e)
      return e
    } catch (err) {
      throw transient(`${pluginId}: reading the ${kind} event of market request ${marketRequestId}`, err)
    }
  }

  type Op = 'submitResult' | 'failRequest'
  const doneStatuses: Record<Op, readonly MarketStatus[]> = { submitResult: ['ResultSent'], failRequest: ['FailureSent'] }

  /** Maps a revert (or any failure) of `op` to an outcome or the right error. */
  async function outcomeOrThrow(op: Op, marketRequestId: string, what: string, err: unknown): Promise<MarketTxOutcome> {
    const revert = revertOrThrow(what, err)
    // Only a request that is not open (MarketRequestNotOpen(marketRequestId, status)) needs a closer look.
    if (rejectionFor(revert.errorName).error !== RequestSettledError) throw rejectionOf(what, revert, err)
    const status = MARKET_STATUSES[Number(revert.args[1])] ?? 'None'
    if (status === 'None')
      throw new ChainTransientError(`${what}: the market has no such request (not yet visible to this RPC)`, { cause: err })
    if (doneStatuses[op].includes(status)) return { status, alreadySettled: true }
    // Answered the other way, or settled by the spoke (a refund after the deadline, say).
    const settlement =
      status === 'Settled' ? (await getRequest(marketRequestId)).settlement : status === 'ResultSent' ? 'Fulfilled' : 'Failed'
    throw new RequestSettledError(what, revert, { cause: err, status: settlement })
  }

  async function send(
    op: Op,
    marketRequestId: string,
    request: InferenceRequest,
    args: readonly unknown[],
    quote: () => Promise<bigint>,
  ): Promise<MarketTxOutcome> {
    live()
    const what = `${op} ${request.key} (market request ${marketRequestId})`
    let value: bigint
    try {
      value = await quote()
    } catch (err) {
      throw transient(`${what}: quoting the messenger fee`, err)
    }
    const call = { address: market, abi: InferenceMarket.abi, functionName: op, args, value, account: options.account } as const
    const simulate = () => publicClient.simulateContract(call as never)
    try {
      await simulate()
    } catch (err) {
      return outcomeOrThrow(op, marketRequestId, what, err)
    }
    // Verification costs the same for every request of a model version, and sending the same for every
    // request from one chain (its route's messenger): one estimate per model version, requesting chain
    // and operation (a fan-out request's result is sent to other chains as well: estimated on its own).
    let gas: bigint
    try {
      const fansOut = op === 'submitResult' && (copiesOf.get(marketRequestId) ?? (await getRequest(marketRequestId)).copies) > 0
      gas = fansOut
        ? await publicClient.estimateGas({ account: options.account, to: market, data: encodeFunctionData(call as never), value })
        : await estimate(marketEstimateKey(op, request), call)
    } catch (err) {
      return outcomeOrThrow(op, marketRequestId, what, err)
    }
    const { hash, receipt, inclusionMs, receiptAt } = await sendAndWait(
      conn,
      { to: market, data: encodeFunctionData(call as never), gas: gas + gas / 4n, value },
      { what, pollingIntervalMs: pollingInterval, receiptTimeoutMs: options.receiptTimeoutMs },
    )
    recordGas(options.chainName, op, receipt)
    if (receipt.status === 'success') {
      return {
        transactionHash: hash,
        gasUsed: receipt.gasUsed.toString(),
        blockNumber: receipt.blockNumber.toString(),
        status: doneStatuses[op][0]!,
        alreadySettled: false,
        inclusionMs,
        receiptAt,
      }
    }
    const now = await getRequest(marketRequestId)
    if (doneStatuses[op].includes(now.status)) return { status: now.status, alreadySettled: true }
    try {
      await simulate()
    } catch (err) {
      return outcomeOrThrow(op, marketRequestId, `${what} (transaction ${hash} reverted)`, err)
    }
    throw new ChainTransientError(`${what}: transaction ${hash} reverted although the call passes now`)
  }

  function once(op: Op, marketRequestId: string, run: () => Promise<MarketTxOutcome>) {
    return join(`${op}:${marketRequestId}`, run)
  }

  /** What became of a row the market refused as not open (see {@link MarketPlugin.submitBatch}). */
  async function rowNotOpen(marketRequestId: bigint, status: MarketStatus, what: string, err: unknown): Promise<BatchRowOutcome> {
    const away = { status: 'Pending', alreadySettled: false, reassigned: true } as const
    if (status === 'None')
      throw new ChainTransientError(`${what}: the market has no request ${marketRequestId} (not yet visible to this RPC)`, { cause: err })
    if (status === 'FailureSent') return { status: 'Failed', alreadySettled: true }
    const record = await getRequest(marketRequestId.toString())
    const mine = record.node !== undefined && record.node === getAddress(options.account.address)
    if (status === 'ResultSent') return mine ? { status: 'Fulfilled', alreadySettled: true } : away
    const settled = record.settlement
    if (settled === 'Fulfilled') return mine ? { status: 'Fulfilled', alreadySettled: true } : away
    if (settled === 'Failed' || settled === 'Refunded') return { status: settled, alreadySettled: true }
    return away
  }

  /**
   * Sends a batch: quotes and simulates it, turns each row that is no longer this node's to answer
   * into a padding row of the same proof, and sends what is left.
   */
  async function sendBatch(batch: ProvenBatch, marketRequestIds: readonly (string | undefined)[]): Promise<BatchOutcome> {
    live()
    const what = `submitBatch of ${batch.rows.filter(Boolean).length} request(s) in ${batch.size} rows`
    if (batch.rows.length !== batch.size || marketRequestIds.length !== batch.size)
      throw new PluginError(pluginId, `${what}: ${batch.rows.length} rows and ${marketRequestIds.length} market ids given`)
    batch.rows.forEach((r, i) => {
      if (Boolean(r) !== Boolean(marketRequestIds[i]))
        throw new PluginError(pluginId, `${what}: row ${i} has a request or a market id, not both`)
    })
    const rows: Record<string, BatchRowOutcome> = {}
    const ids = marketRequestIds.map((x) => (x ? BigInt(x) : 0n))
    const keyOf = (id: bigint) => batch.rows[marketRequestIds.findIndex((x) => x !== undefined && BigInt(x) === id)]?.key
    const refs = { output: storageRefOf(batch.storage?.output), proof: storageRefOf(batch.storage?.proof) }
    for (let round = 0; round <= batch.size + 1; round++) {
      if (ids.every((x) => x === 0n)) return { rows }
      const args = [batch.size, [...ids], batch.inputs.map(BigInt), batch.outputs.map(BigInt), batch.proof, refs] as const
      let value: bigint
      let gasEstimate: bigint
      const call = (v: bigint) =>
        ({ address: market, abi: InferenceMarket.abi, functionName: 'submitBatch', args, value: v, account: options.account }) as const
      try {
        value = await read<bigint>('quoteBatch', args)
        await publicClient.simulateContract(call(value) as never)
        gasEstimate = await publicClient.estimateGas({
          account: options.account,
          to: market,
          data: encodeFunctionData(call(value) as never),
          value,
        })
      } catch (err) {
        const revert = revertOrThrow(what, err)
        const r = revertedRow(revert, ids, keyOf, rows)
        if (!r) throw rejectionOf(what, revert, err)
        rows[r.key] = r.kind === 'moved' ? r.outcome : await rowNotOpen(r.id, MARKET_STATUSES[Number(revert.args[1])] ?? 'None', what, err)
        ids[r.row] = 0n // the same proof answers the rest; this row binds to nothing now
        continue
      }
      const { hash, receipt, inclusionMs, receiptAt } = await sendAndWait(
        conn,
        { to: market, data: encodeFunctionData(call(value) as never), gas: gasEstimate + gasEstimate / 4n, value },
        { what, pollingIntervalMs: pollingInterval, receiptTimeoutMs: options.receiptTimeoutMs },
      )
      recordGas(options.chainName, 'submitBatch', receipt)
      if (receipt.status !== 'success') continue // answered in between, most likely: quote and simulate again
      batch.rows.forEach((r, i) => {
        if (r && ids[i] !== 0n) rows[r.key] = { status: 'Fulfilled', alreadySettled: false }
      })
      return {
        transactionHash: hash,
        gasUsed: receipt.gasUsed.toString(),
        blockNumber: receipt.blockNumber.toString(),
        inclusionMs,
        receiptAt,
        rows,
      }
    }
    throw new ChainTransientError(`${what}: still reverting after every row was retried`)
  }
  const joinBatch = joinInflight<BatchOutcome>()

  const read = <T>(functionName: 'quoteResult' | 'quoteFailure' | 'quoteBatch', args: readonly unknown[]) =>
    publicClient.readContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName,
      args,
      account: options.account,
    } as never) as Promise<T>

  const models = registeredModels(publicClient, { address: market, abi: InferenceMarket.abi, what: 'market' }, pluginId)

  return {
    kind: 'market',
    name: 'evm-market',
    flags: {},
    chainName: options.chainName,
    chainId: toChainId(options.chainId),
    market,
    trustedVerifierCodeHash: TRUSTED_VERIFIER_CODE_HASH,

    getAssignment(marketRequestId) {
      live()
      return jobs.getAssignment(marketRequestId)
    },

    advanceAssignment(marketRequestId) {
      live()
      return jobs.advanceAssignment(marketRequestId)
    },

    async getModel(modelId) {
      live()
      return models(modelId)
    },

    async findRequest(route, gateway, spokeRequestId) {
      live()
      let id: bigint
      try {
        id = await publicClient.readContract({
          address: market,
          abi: InferenceMarket.abi,
          functionName: 'marketRequestIdOf',
          args: [route.originDomain, addressAsBytes32(gateway), BigInt(spokeRequestId)],
        })
      } catch (err) {
        throw transient(`${pluginId}: looking up spoke request ${spokeRequestId}`, err)
      }
      if (id === 0n) return undefined
      const [record, recorded] = await Promise.all([getRequest(id.toString()), eventOf('recorded', id.toString())])
      return { ...record, recorded, destinations: record.copies > 0 ? await destinationsOf(id.toString()) : [] }
    },

    async unservedDestination(marketRequestId) {
      live()
      let index: bigint
      try {
        index = await publicClient.readContract({
          address: market,
          abi: InferenceMarket.abi,
          functionName: 'unservedDestination',
          args: [BigInt(marketRequestId)],
        })
      } catch (err) {
        throw transient(`${pluginId}: checking the destinations of market request ${marketRequestId}`, err)
      }
      return index === 0n ? undefined : (await destinationsOf(marketRequestId))[Number(index) - 1]
    },

    findCopy(origin, gateway, requestId, fromBlock) {
      live()
      return findCopy(origin, gateway, requestId, fromBlock ?? (options.fromBlock ?? 0n).toString())
    },

    getRequest,

    async findSettlement(marketRequestId) {
      const record = await getRequest(marketRequestId)
      if (record.status !== 'Settled') return undefined
      return { ...record, settled: await eventOf('settled', marketRequestId) }
    },

    submitResult(marketRequestId, request, result) {
      const args = [
        BigInt(marketRequestId),
        request.input.map(BigInt),
        result.output.map(BigInt),
        result.proof,
        { output: storageRefOf(result.storage?.output), proof: storageRefOf(result.storage?.proof) },
      ] as const
      return once('submitResult', marketRequestId, () =>
        send('submitResult', marketRequestId, request, args, () => read<bigint>('quoteResult', args)),
      )
    },

    fail(marketRequestId, request, code: InferenceErrorCode, reason) {
      const index = INFERENCE_ERROR_CODES.indexOf(code)
      if (index < 0) throw new PluginError(pluginId, `fail: unknown error code ${code}`)
      const args = [BigInt(marketRequestId), index, truncateReason(reason)] as const
      return once('failRequest', marketRequestId, () =>
        send('failRequest', marketRequestId, request, args, () => read<bigint>('quoteFailure', args)),
      )
    },

    submitBatch(batch, marketRequestIds) {
      return joinBatch(batch.proof, () => sendBatch(batch, marketRequestIds))
    },

    async dispose() {
      disposed = true
    },
  }
})

/**
 * The key of the market's cached gas estimate for `op` on `request`: one per operation, model
 * version and requesting chain. A new version is a new circuit with its own verification cost, so
 * an estimate of the old one could leave the node's submission short of gas.
 */
export function marketEstimateKey(op: string, request: Pick<InferenceRequest, 'modelId' | 'modelVersion' | 'chainId'>): string {
  return `${op}:${request.modelId}:${request.modelVersion}:${request.chainId}`
}
