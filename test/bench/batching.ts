/**
 * Bench, part 6: batching across chains (the local network: a hub, a spoke over Hyperlane and one
 * over LayerZero V2 with their local agents, the Temporal dev server, arlocal, the workers in this
 * process with the native prover). The example dApp on each spoke requests the demo model, the
 * spokes taking turns, at a steady rate. Each run is a fresh network: batching off (batch 1: one
 * proof, one hub transaction, one message and one verification per request), then batches of at
 * most 16 and of at most 64 rows (the batch window long enough for a spoke's batch to fill at the
 * rate). Per run:
 *
 * - spoke.<messenger>.allInGasPerRequest: the gas of every spoke transaction that delivered the
 *   run's results (the messenger's delivery: its security check, the verification, binding,
 *   settlement, the dApp's callbacks and the receipt's send), over the requests it delivered: the
 *   all-in gas per fulfilled request on the spoke;
 * - spoke.<messenger>.verificationPerRequest: the verifier's own gas for each delivered proof on the spoke
 *   (measured by calling the spoke's verifier with the proof and the spoke's VKA, less the call's
 *   intrinsic gas), over the requests: the verification's share of the all-in figure;
 * - hub.gasPerRequest: the gas of every hub transaction of the run's requests (recording each
 *   request message, the node's submission with the hub's verification, the receipts' settlement),
 *   over the requests;
 * - latencyMs p50/p95: the request's receipt on its spoke → the bench sees its InferenceFulfilled
 *   there (polled every 100 ms): request to verified callback;
 * - deliveriesPerSecond: the requests over the time from the first request to the last verified
 *   callback; spokeTransactions (deliveries) and rowsPerTransaction beside it.
 *
 * BENCH_BATCHING_TRACE=1 also prints each batch workflow's activities in time (see `traceBatches`);
 * BENCH_BATCHING_POLLING_MS sets the stack's polling interval (default 200 ms).
 */
import type { Client } from '@temporalio/client'
import { optionalTsToMs } from '@temporalio/common/lib/time.js'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { decodeFunctionData, encodeFunctionData, type Address, type Hex } from 'viem'
import { addressAsBytes32 } from '../../chains/evm/crosschain.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import type { NetworkSpoke } from '../../chains/evm/network.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { LOCAL_CHAINS } from '../../chains/local.ts'
import { ExampleClassifier, Halo2VerifierReusable, InferenceMarket, ModelRegistry, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { toFelt } from '../../core/field.ts'
import { requestKey } from '../../core/types.ts'
import { getRequestStatus } from '../../workflows/client.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { startCrossChainStack } from '../support/crosschain.ts'
import { startWorkers } from '../support/stack.ts'
import { classify } from './dapp.ts'
import { log, p50p95 } from './stats.ts'

export type BatchRun = {
  /** The most rows per batch (1: batching off). */
  maxRows: number
  requests: number
  /** Requests per second the dApps sent, all spokes together. */
  rate: number
  /** The batch window (ms; 0: batching off). */
  windowMs: number
  /**
   * Per messenger: the all-in gas per fulfilled request on the spoke, and the verifier's share of
   * it (named without "gas" so that no check mistakes it for the all-in figure).
   */
  spoke: Record<string, { allInGasPerRequest: number; verificationPerRequest: number }>
  hub: { gasPerRequest: number }
  latencyMs: { p50: number; p95: number }
  deliveriesPerSecond: number
  /** Spoke transactions that delivered the results, and their rows on average. */
  spokeTransactions: number
  rowsPerTransaction: number
}

export type BatchingBench = { batching: { batch1: BatchRun; batch16: BatchRun; batch64: BatchRun } }

/** Intrinsic gas of a call with `data` (21 000 and 4 or 16 per calldata byte). */
function intrinsicGas(data: Hex): bigint {
  let gas = 21_000n
  for (let i = 2; i < data.length; i += 2) gas += data.slice(i, i + 2) === '00' ? 4n : 16n
  return gas
}

async function run(maxRows: 1 | 16 | 64, requests: number, rate: number): Promise<BatchRun> {
  const spokeSpecs = [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz]
  // Half as long again as a spoke's batch takes to fill at its share of the rate, and a margin: a
  // batch closes as soon as it is full, so the window only bounds the wait of a batch that is not.
  const fillMs = ((maxRows * spokeSpecs.length) / rate) * 1000
  const windowMs = maxRows === 1 ? 0 : Math.max(4000, Math.ceil(fillMs * 1.5) + 2000)
  // The chains, the agents and the hops poll every 200 ms (BENCH_BATCHING_POLLING_MS): at 50 ms the
  // three chains' polling took the prover's CPU on two shared cores (4.26 and 4.31 deliveries a
  // second at 64 rows, against 4.42 at 200 ms, with a lower p95).
  const pollingIntervalMs = Number(process.env.BENCH_BATCHING_POLLING_MS ?? 200)
  const stack = await startCrossChainStack({ spokes: spokeSpecs, pollingIntervalMs })
  const config = {
    ...stack.config,
    prover: { ...stack.config.prover, plugin: 'ezkl-native' as const },
    batching: maxRows === 1 ? { enabled: false, windowMs: 2000 } : { enabled: true, windowMs, maxSize: maxRows },
  }
  const workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  try {
    const spokes = await Promise.all(
      stack.network.spokes.map(async (s) => {
        const { user } = stack.spokes[s.name]!
        const dapp = await deployContract(user, ExampleClassifier, [s.spoke.gateway, s.models[0]!.modelId])
        const price = await user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'price' })
        return { s, user, dapp, price, messenger: s.messenger.kind }
      }),
    )
    type Spoke = (typeof spokes)[number]
    const fulfilled = (sp: Spoke, fromBlock: bigint, toBlock?: bigint) =>
      sp.user.getContractEvents({
        address: sp.s.spoke.gateway,
        abi: SpokeGateway.abi,
        eventName: 'InferenceFulfilled',
        fromBlock,
        ...(toBlock !== undefined ? { toBlock } : {}),
      })
    const request = async (sp: Spoke, i: number) => {
      const { id, receipt } = await classify(sp.user, sp.dapp, sp.price, i)
      return { sp, id, at: Date.now(), block: receipt.blockNumber }
    }

    // Warm-up: the workers, the model and its proving keys (the batch circuits' on their first batch).
    for (const sp of spokes) {
      const warm = await request(sp, -1)
      await sp.user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
      for (let n = 0; !(await fulfilled(sp, warm.block)).some((e) => e.args.requestId === warm.id); n++) {
        if (n > 3000) throw new Error(`the warm-up request on ${sp.s.name} was never fulfilled`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }

    log(
      `batching: ${requests} requests at ${rate}/s across ${spokes.length} spokes, at most ${maxRows} row(s) per proof, window ${windowMs} ms`,
    )
    // Verified callbacks, watched from the first request on (each poll reads only the blocks after
    // the last one it read, so the bench's own load stays flat), keyed by spoke and request.
    const done = new Map<string, { at: number; tx: Hex }>()
    const keyOf = (sp: Spoke, id: bigint) => `${sp.s.name}:${id}`
    const nextBlock = new Map<Spoke, bigint>()
    for (const sp of spokes) nextBlock.set(sp, (await sp.user.getBlockNumber()) + 1n)
    const pollOnce = async () => {
      for (const sp of spokes) {
        const head = await sp.user.getBlockNumber()
        const from = nextBlock.get(sp)!
        if (head < from) continue
        for (const e of await fulfilled(sp, from, head)) {
          const k = keyOf(sp, e.args.requestId!)
          if (!done.has(k)) done.set(k, { at: Date.now(), tx: e.transactionHash })
        }
        nextBlock.set(sp, head + 1n)
      }
    }
    let sending = true
    const watching = (async () => {
      while (sending) {
        await pollOnce()
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    const made: Awaited<ReturnType<typeof request>>[] = []
    const t0 = Date.now()
    try {
      for (let i = 0; i < requests; i++) {
        const due = t0 + (i * 1000) / rate
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()))
        made.push(await request(spokes[i % spokes.length]!, i))
      }
    } finally {
      sending = false
      await watching
    }
    for (const sp of spokes) await sp.user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never }) // the last ones' confirmation
    const wanted = new Set(made.map((m) => keyOf(m.sp, m.id)))
    const pending = () => made.filter((m) => !done.has(keyOf(m.sp, m.id))).length
    const maxPolls = Number(process.env.BENCH_BATCHING_MAX_POLLS ?? 6000)
    for (let n = 0; pending() > 0; n++) {
      if (n > maxPolls) {
        const stuck = made.find((m) => !done.has(keyOf(m.sp, m.id)))!
        const status = await getRequestStatus(stack.client, requestKey(stuck.sp.s.chainId, stuck.sp.s.spoke.gateway, stuck.id)).catch(
          (err: unknown) => String(err),
        )
        log(`worker logs (last 40 lines):\n${workers.logs.slice(-40).join('\n')}`)
        // The batch workflows' pending activities and their last failures.
        for await (const w of stack.client.workflow.list({ query: 'WorkflowType = "batchWorkflow"' })) {
          const d = await stack.client.workflow.getHandle(w.workflowId, w.runId).describe()
          const pending = d.raw.pendingActivities?.map((a) => ({
            type: a.activityType?.name,
            attempt: a.attempt,
            failure: a.lastFailure?.message,
          }))
          log(`${w.workflowId} ${d.status.name}: ${JSON.stringify(pending)}`)
        }
        if (process.env.BENCH_BATCHING_TRACE) await traceBatches(stack.client, t0)
        throw new Error(`${pending()} of ${made.length} requests never fulfilled; the first: ${JSON.stringify(status)}`)
      }
      await pollOnce()
      await new Promise((r) => setTimeout(r, 100))
    }
    const last = Math.max(...made.map((m) => done.get(keyOf(m.sp, m.id))!.at))
    if (process.env.BENCH_BATCHING_TRACE) {
      await traceBatches(stack.client, t0)
      await traceStages(
        stack.client,
        made.map((m) => requestKey(m.sp.s.chainId, m.sp.s.spoke.gateway, m.id)),
      )
    }

    // Gas on each spoke: its delivery transactions, and the verifier's share of them.
    const spokeFigures: BatchRun['spoke'] = {}
    let deliveries = 0
    for (const sp of spokes) {
      const mine = made.filter((m) => m.sp === sp)
      const txs = [...new Set(mine.map((m) => done.get(keyOf(sp, m.id))!.tx))]
      deliveries += txs.length
      let gas = 0n
      for (const hash of txs) gas += (await sp.user.getTransactionReceipt({ hash })).gasUsed
      const verified = await verificationGas(stack.hub.user, sp.user, stack.network.hub.market, sp.s, mine)
      spokeFigures[sp.messenger] = {
        allInGasPerRequest: Math.round(Number(gas) / mine.length),
        verificationPerRequest: Math.round(Number(verified) / mine.length),
      }
    }

    // Gas on the hub: every transaction of the run's requests there.
    const hubTxs = new Set<Hex>()
    const hub = stack.hub.user
    const market = stack.network.hub.market
    const hubFrom = await firstHubBlock(hub, market, made[0]!.sp.s.chainId, made[0]!.id)
    const recorded = await hub.getContractEvents({
      address: market,
      abi: InferenceMarket.abi,
      eventName: 'RequestRecorded',
      fromBlock: hubFrom,
    })
    const ours = new Set<bigint>()
    for (const e of recorded) {
      const sp = spokes.find((x) => x.s.chainId === e.args.origin)
      if (sp && wanted.has(keyOf(sp, e.args.spokeRequestId!))) {
        ours.add(e.args.marketRequestId!)
        hubTxs.add(e.transactionHash)
      }
    }
    for (const eventName of ['ResultDispatched', 'RequestSettled'] as const)
      for (const e of await hub.getContractEvents({ address: market, abi: InferenceMarket.abi, eventName, fromBlock: hubFrom }))
        if (ours.has(e.args.marketRequestId!)) hubTxs.add(e.transactionHash)
    for (const e of await hub.getContractEvents({
      address: market,
      abi: InferenceMarket.abi,
      eventName: 'BatchDispatched',
      fromBlock: hubFrom,
    }))
      if (e.args.marketRequestIds!.some((id) => ours.has(id))) hubTxs.add(e.transactionHash)
    let hubGas = 0n
    for (const hash of hubTxs) hubGas += (await hub.getTransactionReceipt({ hash })).gasUsed

    const r: BatchRun = {
      maxRows,
      requests,
      rate,
      windowMs,
      spoke: spokeFigures,
      hub: { gasPerRequest: Math.round(Number(hubGas) / requests) },
      latencyMs: p50p95(made.map((m) => done.get(keyOf(m.sp, m.id))!.at - m.at)),
      deliveriesPerSecond: Math.round((requests / ((last - t0) / 1000)) * 100) / 100,
      spokeTransactions: deliveries,
      rowsPerTransaction: Math.round((requests / deliveries) * 10) / 10,
    }
    log(
      `batching: ≤${maxRows} rows: per request on the spokes ${JSON.stringify(r.spoke)}, on the hub ${r.hub.gasPerRequest} gas; ` +
        `${r.spokeTransactions} deliveries of ${r.rowsPerTransaction} rows on average; latency p50 ${r.latencyMs.p50} ms p95 ${r.latencyMs.p95} ms, ` +
        `${r.deliveriesPerSecond} verified deliveries/s`,
    )
    return r
  } finally {
    await workers.stop()
    await stack.stop()
  }
}

/**
 * BENCH_BATCHING_TRACE=1: each batch workflow's activities, in seconds from the first request
 * (scheduled, started, closed) with their attempts: where a batch's time goes.
 */
async function traceBatches(client: Client, t0: number): Promise<void> {
  const at = (t: Parameters<typeof optionalTsToMs>[0]) => ((optionalTsToMs(t) ?? Number.NaN) - t0) / 1000
  for await (const w of client.workflow.list({ query: 'WorkflowType = "batchWorkflow"' })) {
    const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory()
    const scheduled = new Map<string, { type: string; at: number; started?: number; attempt?: number }>()
    const lines: string[] = []
    const joins: number[] = []
    for (const e of history.events ?? []) {
      const id = String(e.eventId)
      if (e.workflowExecutionSignaledEventAttributes) joins.push(at(e.eventTime))
      if (e.activityTaskScheduledEventAttributes)
        scheduled.set(id, { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at: at(e.eventTime) })
      const started = e.activityTaskStartedEventAttributes
      if (started) {
        const s = scheduled.get(String(started.scheduledEventId))
        if (s) Object.assign(s, { started: at(e.eventTime), attempt: started.attempt ?? 1 })
      }
      const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes
      if (closed) {
        const s = scheduled.get(String(closed.scheduledEventId))
        if (s)
          lines.push(
            `${s.type} ${s.at.toFixed(1)}→${(s.started ?? Number.NaN).toFixed(1)}→${at(e.eventTime).toFixed(1)} s (attempt ${s.attempt ?? '?'})`,
          )
      }
    }
    // When every 64th member had joined.
    const joined = joins.filter((_, i) => (i + 1) % 64 === 0).map((t) => `${t.toFixed(1)} s`)
    log(
      `${w.workflowId.split(':').slice(0, 2).join(':')} run ${w.runId.slice(0, 8)}: ${lines.join('; ')}; joins 64, 128, …: ${joined.join(', ')}`,
    )
  }
}

/** BENCH_BATCHING_TRACE=1: each timed stage of the requests' workflows, p50/p95 (ms) and its count. */
async function traceStages(client: Client, keys: readonly string[]): Promise<void> {
  const byStage = new Map<string, number[]>()
  for (const key of keys) {
    const status = await getRequestStatus(client, key).catch(() => undefined)
    for (const [stage, t] of Object.entries(status?.timings ?? {})) {
      if (t?.ms === undefined) continue
      byStage.set(stage, [...(byStage.get(stage) ?? []), t.ms])
    }
  }
  const parts = [...byStage].map(([stage, ms]) => {
    const { p50, p95 } = p50p95(ms)
    return `${stage} ${p50}/${p95} (${ms.length})`
  })
  log(`stages p50/p95 ms: ${parts.join(', ')}`)
}

/** The hub block where the market recorded spoke request `id` of `origin` (where the run's hub events start). */
async function firstHubBlock(hub: SertnClient, market: Address, origin: number, id: bigint): Promise<bigint> {
  const [e] = await hub.getContractEvents({
    address: market,
    abi: InferenceMarket.abi,
    eventName: 'RequestRecorded',
    args: { origin, spokeRequestId: id },
    fromBlock: 0n,
  })
  if (!e) throw new Error(`no RequestRecorded for request ${id} of ${origin}`)
  return e.blockNumber
}

/**
 * The verifier's gas on the spoke for every proof that answered `mine`: each proof (read from the
 * node's hub submission) verified by the spoke's verifier with the spoke's VKA for its circuit, less
 * the call's intrinsic gas.
 */
async function verificationGas(
  hub: SertnClient,
  spoke: SertnClient,
  market: Address,
  s: NetworkSpoke,
  mine: readonly { id: bigint }[],
): Promise<bigint> {
  const modelId = s.models[0]!.modelId
  const registry = s.spoke.registry
  const batches = await hub.getContractEvents({ address: market, abi: InferenceMarket.abi, eventName: 'BatchDispatched', fromBlock: 0n })
  const submissions = new Set<Hex>()
  for (const m of mine) {
    const mid = await hub.readContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName: 'marketRequestIdOf',
      args: [s.chainId, addressAsBytes32(s.spoke.gateway), m.id],
    })
    const b = batches.find((e) => e.args.marketRequestIds!.includes(mid))
    if (b) {
      submissions.add(b.transactionHash)
      continue
    }
    const [single] = await hub.getContractEvents({
      address: market,
      abi: InferenceMarket.abi,
      eventName: 'ResultDispatched',
      args: { marketRequestId: mid },
      fromBlock: 0n,
    })
    if (!single) throw new Error(`no submission for market request ${mid}`)
    submissions.add(single.transactionHash)
  }
  let total = 0n
  for (const hash of submissions) {
    const tx = await hub.getTransaction({ hash })
    const call = decodeFunctionData({ abi: InferenceMarket.abi, data: tx.input })
    let proof: Hex
    let felts: bigint[]
    let terms: { verifier: Address; vka: Address }
    if (call.functionName === 'submitBatch') {
      const [size, , inputs, outputs, p] = call.args
      proof = p
      felts = [...inputs, ...outputs].map(toFelt)
      terms = await spoke.readContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: 'tryGetBatchVerificationTerms',
        args: [modelId, size],
      })
    } else if (call.functionName === 'submitResult') {
      const [, input, output, p] = call.args
      proof = p
      felts = [...input, ...output].map(toFelt)
      terms = await spoke.readContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: 'tryGetVerificationTerms',
        args: [modelId],
      })
    } else throw new Error(`unexpected hub submission ${call.functionName}`)
    const ok = await spoke.readContract({
      address: terms.verifier,
      abi: Halo2VerifierReusable.abi,
      functionName: 'verifyProof',
      args: [terms.vka, proof, felts],
    })
    if (!ok) throw new Error(`the spoke's verifier refuses the proof of ${hash} (the bench rebuilt its instances wrongly)`)
    const data = encodeFunctionData({ abi: Halo2VerifierReusable.abi, functionName: 'verifyProof', args: [terms.vka, proof, felts] })
    total += (await spoke.estimateGas({ to: terms.verifier, data })) - intrinsicGas(data)
  }
  return total
}

export async function benchBatching({
  requests,
  baselineRequests,
  rate,
  sizes = [1, 16, 64],
}: {
  /** Requests of the batched runs. */
  requests: number
  /** Requests of the run without batching (one proof each: slow, so fewer). */
  baselineRequests: number
  rate: number
  /** Which runs (for tuning; all three by default). */
  sizes?: readonly (1 | 16 | 64)[]
}): Promise<Partial<BatchingBench['batching']>> {
  Runtime.install({ logger: new DefaultLogger('WARN') })
  await ensureNativeEzkl()
  const out: Partial<BatchingBench['batching']> = {}
  for (const size of sizes) out[`batch${size}`] = await run(size, size === 1 ? baselineRequests : requests, rate)
  return out
}
