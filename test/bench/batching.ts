/**
 * Bench, part 6: batching on the hub (anvil, the Temporal dev server, arlocal, the workers in this
 * process with the native prover). The example dApp requests the demo model at a steady rate. Each
 * run is a fresh stack: batching off (batch 1: one proof and one transaction per request), then
 * batches of at most 16 and of at most 64 rows. Per run:
 *
 * - gasPerRequest: the gas of every transaction that fulfilled the run's requests (`fulfill` or
 *   `fulfillBatch`: verification, binding, settlement and the dApp's callback), over the requests;
 * - latencyMs p50/p95: the request's receipt → the bench sees its InferenceFulfilled event (polled
 *   every 100 ms);
 * - deliveriesPerSecond: the requests over the time from the first request to the last fulfilment.
 *
 * Hub only: batches from spokes and their delivery over the messengers are not built yet.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import type { Hex } from 'viem'
import { deployContract } from '../../chains/evm/deploy.ts'
import { ExampleClassifier, InferenceGateway } from '../../contracts/artifacts/index.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { startTestStack, startWorkers } from '../support/stack.ts'
import { classify } from './dapp.ts'
import { log, p50p95 } from './stats.ts'

export type BatchRun = {
  /** The most rows per batch (1: batching off). */
  maxRows: number
  requests: number
  /** Requests per second the dApp sent. */
  rate: number
  gasPerRequest: number
  latencyMs: { p50: number; p95: number }
  deliveriesPerSecond: number
  /** Transactions that fulfilled the requests. */
  transactions: number
}

export type BatchingBench = { batching: { hub: { batch1: BatchRun; batch16: BatchRun; batch64: BatchRun } } }

async function run(maxRows: 1 | 16 | 64, requests: number, rate: number): Promise<BatchRun> {
  const stack = await startTestStack({ pollingIntervalMs: 50 })
  const config = {
    ...stack.config,
    prover: { ...stack.config.prover, plugin: 'ezkl-native' as const },
    batching: maxRows === 1 ? { enabled: false, windowMs: 2000 } : { enabled: true, windowMs: 4000, maxSize: maxRows },
  }
  const workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  try {
    const { user, core, demo } = stack.chain
    const dapp = await deployContract(user, ExampleClassifier, [core.gateway, demo.modelId])
    const price = await user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'price' })
    const request = async (i: number): Promise<{ id: bigint; at: number; block: bigint }> => {
      const { id, receipt } = await classify(user, dapp, price, i)
      return { id, at: Date.now(), block: receipt.blockNumber }
    }
    const fulfilled = async (fromBlock: bigint) =>
      user.getContractEvents({ address: core.gateway, abi: InferenceGateway.abi, eventName: 'InferenceFulfilled', fromBlock })

    // Warm-up: the workers, the model and its proving keys (the batch circuits' on their first batch).
    const warm = await request(-1)
    await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    for (let n = 0; !(await fulfilled(warm.block)).some((e) => e.args.requestId === warm.id); n++) {
      if (n > 3000) throw new Error('the warm-up request was never fulfilled')
      await new Promise((r) => setTimeout(r, 100))
    }

    log(`batching: ${requests} requests at ${rate}/s, at most ${maxRows} row(s) per proof`)
    const made: { id: bigint; at: number; block: bigint }[] = []
    const t0 = Date.now()
    for (let i = 0; i < requests; i++) {
      const due = t0 + (i * 1000) / rate
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()))
      made.push(await request(i))
    }
    await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never }) // the last one's confirmation
    const done = new Map<bigint, { at: number; tx: Hex }>()
    const ids = new Set(made.map((m) => m.id))
    for (let n = 0; done.size < made.length; n++) {
      if (n > 6000) throw new Error(`${made.length - done.size} of ${made.length} requests never fulfilled`)
      for (const e of await fulfilled(made[0]!.block))
        if (ids.has(e.args.requestId!) && !done.has(e.args.requestId!))
          done.set(e.args.requestId!, { at: Date.now(), tx: e.transactionHash })
      await new Promise((r) => setTimeout(r, 100))
    }
    const last = Math.max(...[...done.values()].map((d) => d.at))
    const txs = [...new Set([...done.values()].map((d) => d.tx))]
    let gas = 0n
    for (const hash of txs) gas += (await user.getTransactionReceipt({ hash })).gasUsed
    const r: BatchRun = {
      maxRows,
      requests,
      rate,
      gasPerRequest: Math.round(Number(gas) / requests),
      latencyMs: p50p95(made.map((m) => done.get(m.id)!.at - m.at)),
      deliveriesPerSecond: Math.round((requests / ((last - t0) / 1000)) * 100) / 100,
      transactions: txs.length,
    }
    log(
      `batching: ≤${maxRows} rows: ${r.gasPerRequest} gas per request over ${r.transactions} transaction(s), ` +
        `latency p50 ${r.latencyMs.p50} ms p95 ${r.latencyMs.p95} ms, ${r.deliveriesPerSecond} deliveries/s`,
    )
    return r
  } finally {
    await workers.stop()
    await stack.stop()
  }
}

export async function benchBatching({ requests, rate }: { requests: number; rate: number }): Promise<BatchingBench> {
  Runtime.install({ logger: new DefaultLogger('WARN') })
  await ensureNativeEzkl()
  const batch1 = await run(1, requests, rate)
  const batch16 = await run(16, requests, rate)
  const batch64 = await run(64, requests, rate)
  return { batching: { hub: { batch1, batch16, batch64 } } }
}
