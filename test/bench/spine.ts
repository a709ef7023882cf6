/**
 * Bench, part 2: the durable spine on the local stack (anvil, Temporal dev server, arlocal, workers
 * in this process): `requests` sequential requests from the example dApp, each timed by stage.
 *
 * Per request, with wall-clock times on this machine:
 * - watch: the confirmation block is mined → the request's workflow has started;
 * - inference, witness, prove, store, fulfil: the workflow's stage timings (work as measured by the
 *   activity for inference/witness/prove; scheduling included for store and fulfil);
 * - callback: the node read the fulfil receipt (the callback ran inside that transaction) → the dApp's
 *   stored result is seen by its own poll (every 5 ms); 0 when the dApp saw it no later than the node;
 * - e2e: the request transaction's receipt → the dApp's result is readable;
 * - overhead: e2e − (inference + witness + prove + block waits), block waits being the time to mine
 *   the confirmation block and the fulfil transaction's inclusion (submitted → receipt).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { deployContract } from '../../chains/evm/deploy.ts'
import { ExampleClassifier } from '../../contracts/artifacts/index.ts'
import { requestKey } from '../../core/types.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { runWorkers } from '../../workflows/worker/index.ts'
import { startTestStack, workflowBundle } from '../support/stack.ts'
import { classify } from './dapp.ts'
import { log, p50p95 } from './stats.ts'

export const SPINE_STAGES = ['watch', 'inference', 'witness', 'prove', 'store', 'fulfil', 'callback'] as const
type SpineStage = (typeof SPINE_STAGES)[number]

export type SpineBench = {
  stages: Record<SpineStage, { p50: number; p95: number }>
  e2eMs: { p50: number; p95: number }
  overheadMs: { p50: number; p95: number }
}

export async function benchSpine({ requests, prover }: { requests: number; prover: 'ezkl-wasm' | 'ezkl-native' }): Promise<SpineBench> {
  Runtime.install({ logger: new DefaultLogger('WARN') })
  if (prover === 'ezkl-native') await ensureNativeEzkl()
  // Watch anvil as a local node would: it mines at once, so poll often (real chains poll per block).
  const stack = await startTestStack({ pollingIntervalMs: 20 })
  const stop = new AbortController()
  const config = { ...stack.config, prover: { ...stack.config.prover, plugin: prover } }
  const workers = runWorkers({
    config,
    roles: ['chain-io', 'inference', 'prover'],
    signal: stop.signal,
    workflowBundle: await workflowBundle(),
    log: () => {},
  })
  try {
    const { user, core, demo, anvil } = stack.chain
    const dapp = await deployContract(user, ExampleClassifier, [core.gateway, demo.modelId])
    const price = await user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'price' })
    const samples: Record<SpineStage | 'e2e' | 'overhead', number[]> = {
      watch: [],
      inference: [],
      witness: [],
      prove: [],
      store: [],
      fulfil: [],
      callback: [],
      e2e: [],
      overhead: [],
    }

    const one = async (i: number) => {
      const { id } = await classify(user, dapp, price, i)
      const tReceipt = Date.now()
      await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
      const tMined = Date.now()
      const key = requestKey(anvil.chain.id, core.gateway, id)
      // The dApp's view: poll its stored result (every 5 ms) until the callback has landed.
      for (let n = 0; ; n++) {
        const c = await user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'classification', args: [id] })
        if (c.status === 2) break
        if (n > 12_000) throw new Error(`the dApp never saw request ${id}'s result`)
        await new Promise((r) => setTimeout(r, 5))
      }
      const tDone = Date.now()
      const outcome = await waitForOutcome(stack.client, key)
      if (outcome.stage !== 'fulfilled') throw new Error(`request ${key} ended ${outcome.stage}: ${JSON.stringify(outcome.error)}`)
      const t = outcome.timings
      // The node read the fulfil receipt (the callback had run) at receiptAt, on this machine's clock.
      const fulfilledAt = t.fulfil!.receiptAt ?? tDone
      const stage = {
        watch: outcome.startedAt - tMined,
        inference: t.inference?.workMs ?? t.inference!.ms,
        witness: t.witness!.workMs ?? t.witness!.ms,
        prove: t.prove!.workMs ?? t.prove!.ms,
        store: t.store!.ms,
        fulfil: t.fulfil!.ms,
        callback: Math.max(0, tDone - fulfilledAt),
      }
      const e2e = tDone - tReceipt
      // Block waits: mining the confirmation block, and the fulfil transaction's inclusion.
      const blockWaits = tMined - tReceipt + (t.fulfil!.inclusionMs ?? 0)
      const overhead = e2e - (stage.inference + stage.witness + stage.prove + blockWaits)
      return { stage, e2e, overhead }
    }

    log(`spine: warming up (${prover})`)
    await one(1000)
    for (let i = 0; i < requests; i++) {
      const r = await one(i)
      for (const s of SPINE_STAGES) samples[s].push(r.stage[s])
      samples.e2e.push(r.e2e)
      samples.overhead.push(r.overhead)
      log(`spine ${i + 1}/${requests}: e2e ${r.e2e} ms (prove ${Math.round(r.stage.prove)}, overhead ${Math.round(r.overhead)})`)
    }
    return {
      stages: Object.fromEntries(SPINE_STAGES.map((s) => [s, p50p95(samples[s])])) as SpineBench['stages'],
      e2eMs: p50p95(samples.e2e),
      overheadMs: p50p95(samples.overhead),
    }
  } finally {
    stop.abort()
    await workers.catch(() => {})
    await stack.stop()
  }
}
