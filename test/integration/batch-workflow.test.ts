/**
 * Batching on the real local stack (anvil, the Temporal dev server, arlocal, the workers in this
 * process with the native prover), with `batching.enabled`: a burst of requests of the demo model
 * joins its batch workflow, is proven in one proof of the smallest batch circuit that fits, and is
 * delivered in one transaction; each request's workflow reports its batch. A request alone in its
 * window goes on alone (the single circuit, its own transaction).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { getAddress } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { InferenceGateway, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { getRequestStatus, waitForOutcome } from '../../workflows/client.ts'
import { waitUntil } from '../support/chain.ts'
import {
  boundedTeardown,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  type InProcessWorkers,
  type MadeRequest,
  type TestStack,
} from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const BURST = 5
/** The batch window: long enough for the burst to join one batch. */
const WINDOW_MS = 4000

let stack: TestStack
let workers: InProcessWorkers
let consumer: `0x${string}`

beforeAll(async () => {
  stack = await startTestStack()
  const config = {
    ...stack.config,
    prover: { ...stack.config.prover, plugin: 'ezkl-native' as const },
    batching: { enabled: true, windowMs: WINDOW_MS },
  }
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
}, 300_000)

afterAll(async () => {
  if (process.env.SERTN_TEST_LOGS) console.log(workers?.logs.join('\n'))
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

/** A distinct input per request, inside the demo's bound for k below 8. */
const inputOf = (k: number) => [0.5 * k - 1, 1 - 0.25 * k, 0.125 * k, -0.75].map((x) => quantize(x, 10))

async function burst(n: number, from = 0): Promise<MadeRequest[]> {
  const made: MadeRequest[] = []
  for (let i = 0; i < n; i++) made.push(await requestFromConsumer({ chain: stack.chain }, consumer, { input: inputOf(from + i) }))
  await stack.chain.owner.request({ method: 'anvil_mine' as never, params: ['0x1'] as never }) // one confirmation
  return made
}

const fulfilment = async (id: bigint) =>
  (
    await stack.chain.user.getContractEvents({
      address: stack.chain.core.gateway,
      abi: InferenceGateway.abi,
      eventName: 'InferenceFulfilled',
      args: { requestId: id },
      fromBlock: 0n,
    })
  ).map((e) => ({ tx: e.transactionHash, node: getAddress(e.args.node!), output: e.args.output! }))

describe('batch workflow', () => {
  test('a burst is proven in one batch and delivered in one transaction; every request fulfilled once, its status naming its batch', async () => {
    const made = await burst(BURST)
    const outcomes = await Promise.all(made.map((m) => waitForOutcome(stack.client, m.key, 120_000)))
    for (const o of outcomes) expect(o.stage).toBe('fulfilled')
    const events = await Promise.all(made.map((m) => fulfilment(m.id)))
    for (const e of events) expect(e).toHaveLength(1)
    const txs = new Set(events.map((e) => e[0]!.tx))
    expect(txs.size).toBe(1)
    for (const [i, o] of outcomes.entries()) {
      expect(o.batch).toMatchObject({ size: 16, rows: BURST, transactionHash: [...txs][0] })
      expect(o.output).toEqual(events[i]![0]!.output.map(String))
      expect(events[i]![0]!.node).toBe(getAddress(stack.chain.node.account.address))
    }
    const status = await getRequestStatus(stack.client, made[0]!.key)
    expect(status.batch?.id).toMatch(/^batch:/)
  }, 300_000)

  test('a request alone in its window goes on alone: the single circuit, its own transaction', async () => {
    const [m] = await burst(1, 7)
    const o = await waitForOutcome(stack.client, m!.key, 120_000)
    expect(o.stage).toBe('fulfilled')
    expect(o.batch).toBeUndefined()
    await waitUntil('its fulfilment', async () => (await fulfilment(m!.id)).length === 1 || undefined)
  }, 300_000)
})
