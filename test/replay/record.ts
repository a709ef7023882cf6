/**
 * Records request workflow histories for the replay test (test/replay/request-workflow.replay.test.ts):
 * starts the local stack (anvil, Temporal dev server, arlocal), runs the workers in this process,
 * drives one request that ends fulfilled and one for a model the node has no artifacts for (ends
 * failed: ModelUnavailable, refunded), and writes each history as the JSON that Temporal's tools and
 * `Worker.runReplayHistory` read to test/fixtures/histories/<name>.json. With `crosschain`, it
 * records instead two requests made on a spoke chain (hub and spoke anvils over real Hyperlane):
 * one fulfilled through the hub, one failed on the hub (a model the hub has no deployment of).
 *
 *   npx tsx test/replay/record.ts [crosschain]
 *
 * Histories are named `resolved-*.json` since the workflow resolves each request's model from the
 * registry first (`patched('resolve-model')`); the histories recorded before that (`request-*.json`,
 * `spoke-request-*.json`) are kept, because workflows started before the change must still replay.
 *
 * Run it again (and commit the new fixtures) only when the request workflow changes on purpose in a
 * way that running workflows cannot replay (then old histories need a patch or a new workflow
 * version, not just new fixtures).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { keccak256, toHex } from 'viem'
import { deployContract, registerModel } from '../../chains/evm/deploy.ts'
import { localArtifactRefs } from '../../core/artifacts.ts'
import { modelDir } from '../../core/manifest.ts'
import { RecordingConsumer } from '../../contracts/artifacts/index.ts'
import type { RequestOutcome } from '../../workflows/messages.ts'
import { requestWorkflowHandle, waitForOutcome } from '../../workflows/client.ts'
import { deploySpokeConsumer, requestOnSpoke, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import {
  boundedTeardown,
  mine,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  within,
  type InProcessWorkers,
  type TestStack,
} from '../support/stack.ts'

const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/histories', import.meta.url))

async function writeHistory(client: TestStack['client'], key: string, name: string, outcome: RequestOutcome): Promise<void> {
  const history = await (await requestWorkflowHandle(client, key)).handle.fetchHistory()
  const file = join(HISTORIES_DIR, `${name}.json`)
  await mkdir(HISTORIES_DIR, { recursive: true })
  await writeFile(file, `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`)
  console.log(`${name}: ${outcome.stage}, ${history.events?.length ?? 0} events → ${file}`)
}

async function recordCrossChain(): Promise<void> {
  let stack: CrossChainStack | undefined
  let workers: InProcessWorkers | undefined
  try {
    stack = await startCrossChainStack()
    workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
    const s = stack
    const consumer = await deploySpokeConsumer(s)
    const spoke = s.network.spokes[0]!
    const twin = await registerModel(s.spoke.owner, { registry: spoke.spoke.registry, model: 'sertn-mlp-twin', allowInsecureSrs: true })
    const cases: { name: string; modelId: `0x${string}`; expect: (o: RequestOutcome) => boolean }[] = [
      {
        name: 'resolved-spoke-request-fulfilled',
        modelId: spoke.models[0]!.modelId,
        expect: (o) => o.stage === 'fulfilled' && o.hub?.settlement === 'Fulfilled',
      },
      {
        name: 'resolved-spoke-request-failed-on-hub',
        modelId: twin.modelId,
        expect: (o) => o.stage === 'failed' && o.hub?.settlement === 'Failed',
      },
    ]
    for (const c of cases) {
      const r = await requestOnSpoke(s, consumer, { modelId: c.modelId })
      const outcome = await within(120_000, `${c.name}: the outcome`, waitForOutcome(s.client, r.key, 30_000))
      if (!c.expect(outcome)) throw new Error(`${c.name}: unexpected outcome ${JSON.stringify(outcome)}`)
      await writeHistory(s.client, r.key, c.name, outcome)
    }
  } finally {
    await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') })
  if (process.argv[2] === 'crosschain') return recordCrossChain()
  let stack: TestStack | undefined
  let workers: InProcessWorkers | undefined
  try {
    stack = await startTestStack()
    workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
    const s = stack
    const consumer = await deployContract(s.chain.user, RecordingConsumer, [s.chain.core.gateway])
    // The demo's circuit, registered with artifacts that no model directory and no storage holds.
    const refs = await localArtifactRefs(modelDir('sertn-mlp-demo'))
    const unknown = await registerModel(s.chain.owner, {
      registry: s.chain.core.registry,
      model: 'sertn-mlp-demo',
      name: 'no-such-model',
      artifacts: { ...refs, manifestHash: keccak256(toHex('no such manifest')) },
      vka: s.chain.demo.vka,
      allowInsecureSrs: true,
    })

    const cases: { name: string; modelId: `0x${string}`; expect: (o: RequestOutcome) => boolean }[] = [
      { name: 'resolved-request-fulfilled', modelId: s.chain.demo.modelId, expect: (o) => o.stage === 'fulfilled' },
      {
        name: 'resolved-request-failed-unknown-model',
        modelId: unknown.modelId,
        expect: (o) => o.stage === 'failed' && o.error?.code === 'ModelUnavailable',
      },
    ]
    await mkdir(HISTORIES_DIR, { recursive: true })
    for (const c of cases) {
      const r = await requestFromConsumer(s, consumer, { modelId: c.modelId })
      await mine(s, 1)
      const outcome = await within(90_000, `${c.name}: the outcome`, waitForOutcome(s.client, r.key, 30_000))
      if (!c.expect(outcome)) throw new Error(`${c.name}: unexpected outcome ${JSON.stringify(outcome)}`)
      await writeHistory(s.client, r.key, c.name, outcome)
    }
  } finally {
    await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
