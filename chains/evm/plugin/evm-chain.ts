/**
 * The EVM chain plugin: watches a gateway's `InferenceRequested` events (confirmations, a durable
 * cursor, reorg rewinds) and settles requests (`fulfill`, `fail`) from one node account with
 * process-wide nonce management and idempotent retries.
 *
 * @example
 * const chain = evmChain({
 *   chainName: 'local', chainId: 31337, rpcUrl: anvil.rpcUrl, gateway, account,
 *   cursorStore: new FileCursorStore('.data/cursors'),
 * })
 * const stop = new AbortController()
 * void chain.watchRequests({ signal: stop.signal, onRequest: async (r) => startWorkflow(r.key, r) })
 * await chain.fulfill(request, result) // { transactionHash, status: 'Fulfilled', alreadySettled: false }
 *
 * Settling (`fulfill`, `fail`): simulate (eth_call); estimate gas and add room for the callback
 * ({@link settleGasLimit}); sign and submit in the account's queue; await the receipt outside it.
 * - Already done → `{ status, alreadySettled: true }` and nothing is sent: Fulfilled for `fulfill`;
 *   Failed or Refunded for `fail` (the requester has its refund either way).
 * - Settled the other way (`fulfill` of a Failed/Refunded request, `fail` of a Fulfilled one) →
 *   {@link RequestSettledError}; a rejected result → {@link InvalidProofError},
 *   {@link InvalidResultError}, {@link ModelVersionChangedError}, {@link RequestExpiredError};
 *   all non-retryable, with the decoded gateway error in the message and the code the request is
 *   failed with: every revert is classified by the table of contract rejections (./rejections.ts).
 * - Unknown request (status None: an RPC behind the watcher's, or a reorg), RPC and network
 *   failures, receipt timeouts → {@link ChainTransientError} (retryable).
 * - Our transaction reverted because another transaction settled the request first → the status is
 *   re-read and reported as `alreadySettled`.
 * Concurrent calls for the same request and operation share one attempt (one transaction).
 * `fail` truncates its reason to the gateway's 256 bytes.
 */
import { encodeFunctionData, encodePacked, getAbiItem, getAddress, isAddress, keccak256, type Account, type Address, type Hex } from 'viem'
import { InferenceGateway } from '../../../contracts/artifacts/index.ts'
import { ChainTransientError, ConfigError, PluginError } from '../../../core/errors.ts'
import { componentLogger } from '../../../core/log.ts'
import { storageRefOf } from '../../../core/storage-ref.ts'
import {
  defineChainPlugin,
  type BatchOutcome,
  type BatchRowOutcome,
  type ChainPlugin,
  type ProvenBatch,
  type RequestState,
  type Settlement,
  type TxOutcome,
  type WatchOptions,
} from '../../../core/plugins.ts'
import {
  chainId as toChainId,
  INFERENCE_ERROR_CODES,
  REQUEST_STATUSES,
  type InferenceErrorCode,
  type InferenceRequest,
  type ProvenResult,
  type RequestId,
  type RequestStatus,
  type SpokeRoute,
} from '../../../core/types.ts'
import type { CursorStore } from './cursor-store.ts'
import { copyFinder } from './copies.ts'
import { RequestSettledError, RequestSupersededError, transient } from './errors.ts'
import { revertedRow } from './batch-rows.ts'
import { rejectionFor, rejectionOf, revertOrThrow } from './rejections.ts'
import { jobBook } from './assignment.ts'
import { checkFeePolicy, connectEvm, estimateOnce, joinInflight, sendAndWait } from './connection.ts'
import type { FeePolicy } from './sender.ts'
import { registeredModels, TRUSTED_VERIFIER_CODE_HASH } from './registry.ts'
import { recordGas } from './gas-metrics.ts'
import { runWatcher, withWatchKey, type ReorgInfo } from './watcher.ts'

export type EvmChainOptions = {
  /** The configured name of the chain (a key of the `chains` config). */
  chainName: string
  /** The chain id the RPC must report; checked before the first watch or send. */
  chainId: number
  rpcUrl: string
  /** More RPC endpoints, tried in order when the ones before fail (the chain's `fallbackRpcUrls`). */
  fallbackRpcUrls?: readonly string[]
  /**
   * How the node account pays for and replaces its transactions on this chain (`feePolicyOf(chain.fees)`):
   * the fee cap, and when and by how much a stuck transaction is replaced. Default: no cap, replaced after 60 s, +25%.
   */
  fees?: FeePolicy
  gateway: Address
  /** The node account that fulfils and fails requests (a local account signs in-process). */
  account: Account
  /**
   * Blocks that must be mined on top of a request's block before it is delivered: a request in
   * block B is delivered once the head is at least B + confirmations (its own block does not count;
   * 0 delivers from the head block). Default 1 (suits local chains; use the chain's reorg depth, e.g.
   * 12 or more, on public ones). On an automining anvil without other traffic, a request with
   * confirmations ≥ 1 waits until some later transaction or `anvil_mine` makes a new block.
   */
  confirmations?: number
  /** Milliseconds between polls of the chain (watcher and receipts). Default 250. */
  pollingIntervalMs?: number
  /** Keeps the watcher's cursor. Use a {@link FileCursorStore} for a node that must resume after a restart. */
  cursorStore: CursorStore
  /** The most blocks one `eth_getLogs` call spans (the chain's `logRangeBlocks`). Default 2000. */
  maxBlockRange?: number
  /** How many recent block hashes the cursor remembers (the deepest reorg that rewinds exactly). Default 64. */
  reorgDepth?: number
  /** The cursor's key in the store. Default `evm-<chainId>-<gateway lowercase>`. */
  watcherKey?: string
  /** Transient watcher failures that the loop retries with backoff. Default: a warning of the `watcher` logger (core/log.ts). */
  onWatchError?: (err: unknown) => void
  /** Called when the watcher rewinds its cursor after a reorg. */
  onReorg?: (info: ReorgInfo) => void
  /** How long `fulfill`/`fail` wait for their receipt before a retryable error. Default 120 000 ms. */
  receiptTimeoutMs?: number
  /** Blocks on top of a settling transaction's block to wait for before reporting success. Default 0. */
  settleConfirmations?: number
  /**
   * Set when the gateway is a SpokeGateway: its requests are served by this hub market (they are
   * reported with this `route`), and results arrive through the messenger, not from this plugin.
   */
  route?: SpokeRoute
}

const SETTLEMENT_EVENTS = {
  Fulfilled: getAbiItem({ abi: InferenceGateway.abi, name: 'InferenceFulfilled' }),
  Failed: getAbiItem({ abi: InferenceGateway.abi, name: 'InferenceFailed' }),
  Refunded: getAbiItem({ abi: InferenceGateway.abi, name: 'InferenceRefunded' }),
} as const

/** The longest `fail` reason the gateway accepts, in bytes (longer reasons are truncated). */
export const MAX_REASON_BYTES = 256
/** Gas the gateway keeps back beyond a callback's limit (CALLBACK_GAS_RESERVE). */
const CALLBACK_GAS_RESERVE = 10_000n

/** `reason` cut to at most `max` UTF-8 bytes on a character boundary (with an ellipsis when cut). */
export function truncateReason(reason: string, max = MAX_REASON_BYTES): string {
  const enc = new TextEncoder()
  if (enc.encode(reason).length <= max) return reason
  let out = ''
  let bytes = 0
  const budget = max - 3 // '…' is 3 bytes
  for (const ch of reason) {
    const n = enc.encode(ch).length
    if (bytes + n > budget) break
    out += ch
    bytes += n
  }
  return `${out}…`
}

/**
 * The gas limit for a settling call: the estimate plus a fifth, plus the callback's own gas and the
 * 1/63 and reserve the gateway insists on being available (so that a callback whose gas use varies
 * between estimation and execution cannot make the gateway revert GatewayInsufficientGasForCallback).
 */
export function settleGasLimit(estimate: bigint, callbackGasLimit: number): bigint {
  const cb = BigInt(callbackGasLimit)
  return estimate + estimate / 5n + cb + cb / 63n + CALLBACK_GAS_RESERVE
}

function checkOptions(o: EvmChainOptions) {
  const int = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < min))
      throw new ConfigError(`evm chain ${o.chainName}: ${name} must be an integer ≥ ${min} (got ${v})`)
  }
  if (!o.chainName) throw new ConfigError('evm chain: chainName is required')
  int('chainId', o.chainId, 1)
  if (!o.rpcUrl) throw new ConfigError(`evm chain ${o.chainName}: rpcUrl is required`)
  checkFeePolicy(`evm chain ${o.chainName}`, o.fees)
  if (!isAddress(o.gateway, { strict: false })) throw new ConfigError(`evm chain ${o.chainName}: gateway ${o.gateway} is not an address`)
  if (!o.account) throw new ConfigError(`evm chain ${o.chainName}: account is required`)
  if (!o.cursorStore) throw new ConfigError(`evm chain ${o.chainName}: cursorStore is required`)
  int('confirmations', o.confirmations, 0)
  int('pollingIntervalMs', o.pollingIntervalMs, 1)
  int('maxBlockRange', o.maxBlockRange, 1)
  int('reorgDepth', o.reorgDepth, 1)
  int('receiptTimeoutMs', o.receiptTimeoutMs, 1)
  int('settleConfirmations', o.settleConfirmations, 0)
}

/** An EVM chain with an InferenceGateway. */
export const evmChain = defineChainPlugin((options: EvmChainOptions): ChainPlugin => {
  checkOptions(options)
  const name = 'evm'
  const pluginId = `evm:${options.chainName}`
  const watchLog = componentLogger('watcher', { chain: options.chainName })
  const id = toChainId(options.chainId)
  const gateway = getAddress(options.gateway)
  const pollingIntervalMs = options.pollingIntervalMs ?? 250
  const conn = connectEvm({ ...options, pollingIntervalMs })
  const { publicClient } = conn
  const estimate = estimateOnce(conn)
  const watcherKey = options.watcherKey ?? `evm-${options.chainId}-${gateway.toLowerCase()}`
  const jobs = jobBook({
    conn,
    market: gateway,
    account: options.account,
    pluginId,
    chainName: options.chainName,
    pollingIntervalMs,
    ...(options.receiptTimeoutMs !== undefined ? { receiptTimeoutMs: options.receiptTimeoutMs } : {}),
  })

  let disposed = false
  const models = registeredModels(publicClient, { address: gateway, abi: InferenceGateway.abi, what: 'gateway' }, pluginId)
  const watchers = new Set<{ controller: AbortController; done: Promise<void> }>()
  const join = joinInflight<TxOutcome>()
  const joinBatch = joinInflight<BatchOutcome>()
  /** Settlements read so far (immutable once made). */
  const settlements = new Map<string, Settlement>()
  const copies = copyFinder(publicClient, gateway, pluginId)

  const live = () => {
    if (disposed) throw new PluginError(pluginId, 'used after dispose()')
  }

  let chainChecked: Promise<void> | undefined
  const assertChain = () => {
    chainChecked ??= (async () => {
      let actual: number
      try {
        actual = await publicClient.getChainId()
      } catch (err) {
        chainChecked = undefined
        throw transient(`${pluginId}: reading the chain id from ${options.rpcUrl}`, err)
      }
      if (actual !== options.chainId) {
        throw new ConfigError(`${pluginId}: ${options.rpcUrl} serves chain ${actual}, not the configured ${options.chainId}`)
      }
    })()
    return chainChecked
  }

  async function getRequestState(requestId: RequestId | string | bigint): Promise<RequestState> {
    live()
    try {
      const r = await publicClient.readContract({
        address: gateway,
        abi: InferenceGateway.abi,
        functionName: 'getRequest',
        args: [BigInt(requestId)],
      })
      return { status: REQUEST_STATUSES[r.status] ?? 'None', requester: getAddress(r.requester), deadline: Number(r.deadline) }
    } catch (err) {
      throw transient(`${pluginId}: reading request ${String(requestId)}`, err)
    }
  }

  /**
   * Throws RequestSupersededError when the pending request under `request`'s id is not the one its
   * event announced (another requester, or another input commitment: keccak256(modelId, version,
   * input), as the gateway stores it): after a reorg deeper than the confirmations, a new request
   * may take a dropped one's id, and the dropped one's workflow must not fail it.
   */
  async function assertSameRequest(request: InferenceRequest): Promise<void> {
    let r: { status: number; requester: Address; inputHash: Hex }
    try {
      r = await publicClient.readContract({
        address: gateway,
        abi: InferenceGateway.abi,
        functionName: 'getRequest',
        args: [BigInt(request.requestId)],
      })
    } catch (err) {
      throw transient(`${pluginId}: reading request ${request.requestId}`, err)
    }
    if (REQUEST_STATUSES[r.status] !== 'Pending') return // settled or unknown: the simulation says which
    const expected = keccak256(
      encodePacked(['bytes32', 'uint256', 'int256[]'], [request.modelId, BigInt(request.modelVersion), request.input.map(BigInt)]),
    )
    if (getAddress(r.requester) !== getAddress(request.requester) || r.inputHash.toLowerCase() !== expected.toLowerCase())
      throw new RequestSupersededError(
        `${pluginId}: request ${request.requestId} now names another request (requester ${getAddress(r.requester)}): ` +
          `the event of ${request.key} was dropped by a reorg; nothing is sent for it`,
      )
  }

  type Op = 'fulfill' | 'fail'
  /** The statuses in which `op` has nothing left to do (it counts as done). */
  const doneStatuses: Record<Op, readonly RequestStatus[]> = { fulfill: ['Fulfilled'], fail: ['Failed', 'Refunded'] }

  /**
   * Maps a revert (or any failure) of `op` to an outcome or the right error, by the table of
   * contract rejections. A request that is not pending (GatewayRequestNotPending(requestId, status))
   * is done already, settled the other way, or not visible to this RPC yet.
   */
  function settledOrThrow(op: Op, what: string, err: unknown): TxOutcome {
    const revert = revertOrThrow(what, err)
    if (rejectionFor(revert.errorName).error !== RequestSettledError) throw rejectionOf(what, revert, err)
    const status = REQUEST_STATUSES[Number(revert.args[1])] ?? 'None'
    if (status === 'None') {
      throw new ChainTransientError(`${what}: the gateway has no such request (not yet visible to this RPC, or removed by a reorg)`, {
        cause: err,
      })
    }
    if (doneStatuses[op].includes(status)) return { status, alreadySettled: true }
    throw new RequestSettledError(what, revert, { cause: err, status })
  }

  async function settle(op: Op, request: InferenceRequest, args: readonly unknown[]): Promise<TxOutcome> {
    live()
    if (request.chainId !== id || request.gateway.toLowerCase() !== gateway.toLowerCase()) {
      throw new PluginError(
        pluginId,
        `${op}: request ${request.key} belongs to chain ${request.chainId} gateway ${request.gateway}, not this plugin's`,
      )
    }
    const what = `${op} ${request.key}`
    await assertChain()
    // A `fail` settles whatever request holds the id now: make sure it is still this event's. (A
    // `fulfill` is bound to the request's input by the contract itself.)
    if (op === 'fail') await assertSameRequest(request)
    const call = { address: gateway, abi: InferenceGateway.abi, functionName: op, args, account: options.account } as const
    const simulate = () => publicClient.simulateContract(call as never)

    // 1. Simulate: a request already settled (our earlier try) or a rejected result sends nothing.
    try {
      await simulate()
    } catch (err) {
      return settledOrThrow(op, what, err)
    }
    // 2. An explicit gas limit with room for the callback. Verification costs the same for every
    //    request of a model version, so a `fulfill` estimate (a dozen executions of the verifier on
    //    the node) is made once per model version. A `fail` costs what its requester makes it cost
    //    (a refund held for a contract that refuses ETH is a new storage slot; an error callback may
    //    burn its gas): it is estimated for each transaction, or a cheap requester's estimate would
    //    leave a costly one's every try short. The callback's own limit is added on top.
    let gasEstimate: bigint
    try {
      gasEstimate =
        op === 'fail'
          ? await publicClient.estimateContractGas(call as never)
          : await estimate(`${op}:${request.modelId}:${request.modelVersion}`, call)
    } catch (err) {
      return settledOrThrow(op, what, err)
    }
    const gas = settleGasLimit(gasEstimate, request.callbackGasLimit)
    // 3. Send in this account's turn; 4. await the receipt outside the queue.
    const { hash, receipt, inclusionMs, receiptAt } = await sendAndWait(
      conn,
      { to: gateway, data: encodeFunctionData(call as never), gas },
      {
        what,
        confirmations: options.settleConfirmations ?? 0,
        pollingIntervalMs,
        receiptTimeoutMs: options.receiptTimeoutMs,
      },
    )
    recordGas(options.chainName, op, receipt)
    const done: TxOutcome = {
      transactionHash: hash,
      gasUsed: receipt.gasUsed.toString(),
      blockNumber: receipt.blockNumber.toString(),
      status: op === 'fulfill' ? 'Fulfilled' : 'Failed',
      alreadySettled: false,
      inclusionMs,
      receiptAt,
    }
    if (receipt.status === 'success') return done
    // Reverted: most likely someone settled it between our simulation and our transaction.
    const state = await getRequestState(request.requestId)
    if (doneStatuses[op].includes(state.status)) return { status: state.status, alreadySettled: true }
    try {
      await simulate()
    } catch (err) {
      return settledOrThrow(op, `${what} (transaction ${hash} reverted)`, err)
    }
    throw new ChainTransientError(
      `${what}: transaction ${hash} reverted with gas limit ${gas} (used ${receipt.gasUsed}) although the call passes now`,
    )
  }

  /**
   * Sends a batch: simulates it, turns each row whose request was settled meanwhile (or whose job
   * moved to another node) into a padding row of the same proof, and sends what is left.
   */
  async function settleBatch(batch: ProvenBatch): Promise<BatchOutcome> {
    live()
    const what = `fulfillBatch of ${batch.rows.filter(Boolean).length} request(s) in ${batch.size} rows`
    if (batch.rows.length !== batch.size) throw new PluginError(pluginId, `${what}: ${batch.rows.length} rows given`)
    for (const r of batch.rows)
      if (r && (r.chainId !== id || r.gateway.toLowerCase() !== gateway.toLowerCase()))
        throw new PluginError(pluginId, `${what}: request ${r.key} belongs to chain ${r.chainId} gateway ${r.gateway}, not this plugin's`)
    await assertChain()
    const rows: Record<string, BatchRowOutcome> = {}
    const ids = batch.rows.map((r) => (r ? BigInt(r.requestId) : 0n))
    const keyOf = (requestId: bigint) => batch.rows.find((r) => r && BigInt(r.requestId) === requestId)?.key
    const refs = { output: storageRefOf(batch.storage?.output), proof: storageRefOf(batch.storage?.proof) }
    for (let round = 0; round <= batch.size + 1; round++) {
      if (ids.every((x) => x === 0n)) return { rows }
      const call = {
        address: gateway,
        abi: InferenceGateway.abi,
        functionName: 'fulfillBatch',
        args: [batch.size, [...ids], batch.inputs.map(BigInt), batch.outputs.map(BigInt), batch.proof, refs],
        account: options.account,
      } as const
      let gasEstimate: bigint
      try {
        await publicClient.simulateContract(call as never)
        gasEstimate = await publicClient.estimateGas({ account: options.account, to: gateway, data: encodeFunctionData(call as never) })
      } catch (err) {
        const revert = revertOrThrow(what, err)
        const r = revertedRow(revert, ids, keyOf, rows)
        if (!r) throw rejectionOf(what, revert, err)
        if (r.kind === 'moved') {
          rows[r.key] = r.outcome
        } else {
          const status = REQUEST_STATUSES[Number(revert.args[1])] ?? 'None'
          if (status === 'None' || status === 'Pending')
            throw new ChainTransientError(
              `${what}: the gateway has no such request ${r.id} (not yet visible to this RPC, or removed by a reorg)`,
              { cause: err },
            )
          rows[r.key] = { status, alreadySettled: true }
        }
        ids[r.row] = 0n // the same proof answers the rest; this row binds to nothing now
        continue
      }
      const callbacks = batch.rows.reduce(
        (n, r) => n + (r && ids.includes(BigInt(r.requestId)) ? settleGasLimit(0n, r.callbackGasLimit) : 0n),
        0n,
      )
      const gas = gasEstimate + gasEstimate / 5n + callbacks
      const { hash, receipt, inclusionMs, receiptAt } = await sendAndWait(
        conn,
        { to: gateway, data: encodeFunctionData(call as never), gas },
        { what, confirmations: options.settleConfirmations ?? 0, pollingIntervalMs, receiptTimeoutMs: options.receiptTimeoutMs },
      )
      recordGas(options.chainName, 'fulfillBatch', receipt)
      if (receipt.status !== 'success') continue // settled in between, most likely: simulate again
      for (const r of batch.rows) if (r && ids.includes(BigInt(r.requestId))) rows[r.key] = { status: 'Fulfilled', alreadySettled: false }
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

  /** Joins a call already in flight for the same request and operation. */
  function once(op: Op, request: InferenceRequest, run: () => Promise<TxOutcome>): Promise<TxOutcome> {
    return join(`${op}:${request.key}`, run)
  }

  const plugin: ChainPlugin = {
    kind: 'chain',
    name,
    flags: { reorgSafe: true },
    chainName: options.chainName,
    chainId: id,
    gateway,

    getAssignment(requestId: string) {
      live()
      return jobs.getAssignment(requestId)
    },

    advanceAssignment(requestId: string) {
      live()
      return jobs.advanceAssignment(requestId)
    },

    async watchRequests(watch: WatchOptions): Promise<void> {
      live()
      const controller = new AbortController()
      const onAbort = () => controller.abort()
      if (watch.signal.aborted) return
      watch.signal.addEventListener('abort', onAbort, { once: true })
      let settleDone!: () => void
      const entry = { controller, done: new Promise<void>((r) => (settleDone = r)) }
      watchers.add(entry)
      const route = options.route
      const onRequest = route ? (r: InferenceRequest) => watch.onRequest({ ...r, route }) : watch.onRequest
      try {
        await withWatchKey(pluginId, options.cursorStore, watcherKey, () =>
          runWatcher(
            {
              client: publicClient,
              chainName: options.chainName,
              chainId: id,
              gateway,
              confirmations: BigInt(options.confirmations ?? 1),
              pollingIntervalMs,
              maxBlockRange: BigInt(options.maxBlockRange ?? 2000),
              reorgDepth: options.reorgDepth ?? 64,
              store: options.cursorStore,
              key: watcherKey,
              onError:
                options.onWatchError ??
                ((err) => watchLog.warn({ err: err instanceof Error ? err.message : String(err) }, 'watch failed; retrying')),
              onReorg: options.onReorg ?? (() => undefined),
              assertChain,
            },
            { ...watch, onRequest, signal: controller.signal },
          ),
        )
      } finally {
        watch.signal.removeEventListener('abort', onAbort)
        watchers.delete(entry)
        settleDone()
      }
    },

    getRequestState: (requestId) => getRequestState(requestId),

    trustedVerifierCodeHash: TRUSTED_VERIFIER_CODE_HASH,

    async getModel(modelId) {
      live()
      return models(modelId)
    },

    findCopy(origin, from, requestId, fromBlock) {
      live()
      return copies(origin, from, requestId, fromBlock)
    },

    async findSettlement(requestId, fromBlock) {
      live()
      const known = settlements.get(requestId)
      if (known) return known
      const state = await getRequestState(requestId)
      if (state.status === 'None' || state.status === 'Pending') return undefined
      try {
        const args = { requestId: BigInt(requestId) }
        const range = {
          address: gateway,
          args,
          fromBlock: fromBlock ? BigInt(fromBlock) : 0n,
          toBlock: 'latest' as const,
          strict: true as const,
        }
        const event = SETTLEMENT_EVENTS[state.status]
        const [log] = await publicClient.getLogs({ ...range, event })
        if (!log)
          throw new Error(`request ${requestId} is ${state.status} but no ${event.name} log was found from block ${range.fromBlock}`)
        const receipt = await publicClient.getTransactionReceipt({ hash: log.transactionHash })
        const a = log.args as { node?: Address }
        const s: Settlement = {
          status: state.status,
          transactionHash: log.transactionHash,
          blockNumber: log.blockNumber.toString(),
          gasUsed: receipt.gasUsed.toString(),
          ...(a.node ? { node: getAddress(a.node) } : {}),
          observedAt: Date.now(),
        }
        settlements.set(requestId, s)
        return s
      } catch (err) {
        throw transient(`${pluginId}: reading the settlement of request ${requestId}`, err)
      }
    },

    async fulfill(request: InferenceRequest, result: ProvenResult): Promise<TxOutcome> {
      live()
      return once('fulfill', request, () =>
        settle('fulfill', request, [
          BigInt(request.requestId),
          request.input.map(BigInt),
          result.output.map(BigInt),
          result.proof,
          { output: storageRefOf(result.storage?.output), proof: storageRefOf(result.storage?.proof) },
        ]),
      )
    },

    async fulfillBatch(batch: ProvenBatch): Promise<BatchOutcome> {
      live()
      return joinBatch(batch.proof, () => settleBatch(batch))
    },

    async fail(request: InferenceRequest, code: InferenceErrorCode, reason: string): Promise<TxOutcome> {
      live()
      const index = INFERENCE_ERROR_CODES.indexOf(code)
      if (index < 0) throw new PluginError(pluginId, `fail: unknown error code ${code}`)
      return once('fail', request, () => settle('fail', request, [BigInt(request.requestId), index, truncateReason(reason)]))
    },

    async head() {
      live()
      try {
        return { blockNumber: await publicClient.getBlockNumber({ cacheTime: 0 }) }
      } catch (err) {
        throw transient(`${pluginId}: reading the head`, err)
      }
    },

    async dispose() {
      if (disposed) return
      disposed = true
      for (const w of watchers) w.controller.abort()
      await Promise.all([...watchers].map((w) => w.done))
    },
  }
  return plugin
})
