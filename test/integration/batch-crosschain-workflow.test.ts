/**
 * Batching across chains on the local network (a hub, a spoke over Hyperlane and one over
 * LayerZero V2, their real contracts and local agents, the node's workers in this process with the
 * native prover and `batching.enabled`): a burst from both spokes ends in every callback exactly
 * once, each spoke's requests proven in one batch, submitted to the hub market in one transaction,
 * delivered to their spoke in one message (one verification there) and settled on the hub by one
 * receipt; each request's status names its batch and every hop.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { parseEventLogs, type Address } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { LOCAL_CHAINS } from '../../chains/local.ts'
import { InferenceMarket, RecordingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { deploySpokeConsumer, requestOnSpoke, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, DEMO_INPUT_SCALE, startWorkers, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

/** Requests per spoke. */
const BURST = 4
/** The batch window: long enough for a spoke's burst to join one batch. */
const WINDOW_MS = 6000
const SETTLED = 4
const FULFILLED = 2

let stack: CrossChainStack
let workers: InProcessWorkers
const consumers = new Map<string, Address>()

beforeAll(async () => {
  stack = await startCrossChainStack({ spokes: [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz] })
  const config = {
    ...stack.config,
    prover: { ...stack.config.prover, plugin: 'ezkl-native' as const },
    batching: { enabled: true, windowMs: WINDOW_MS },
  }
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  for (const s of stack.network.spokes) consumers.set(s.name, await deploySpokeConsumer(stack, s.name))
}, 300_000)

afterAll(async () => {
  if (process.env.SERTN_TEST_LOGS) console.log(workers?.logs.join('\n'))
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

/** A distinct input per request, inside the demo's bound for k below 8. */
const inputOf = (k: number) => [0.5 * k - 1, 1 - 0.25 * k, 0.125 * k, -0.75].map((x) => quantize(x, DEMO_INPUT_SCALE))

describe('batching across chains', () => {
  test('a burst from a Hyperlane spoke and a LayerZero spoke: every callback exactly once, each spoke’s requests in one batch, one message and one receipt', async () => {
    const spokes = stack.network.spokes
    expect(spokes.map((s) => s.messenger.kind).sort()).toEqual(['hyperlane', 'layerzero'])
    const made = []
    // Interleaved, so that both batches fill at once.
    for (let i = 0; i < BURST; i++)
      for (const s of spokes)
        made.push({
          spoke: s,
          ...(await requestOnSpoke(stack, consumers.get(s.name)!, { spoke: s.name, input: inputOf(i), modelId: s.models[0]!.modelId })),
        })
    const outcomes = await Promise.all(made.map((m) => waitForOutcome(stack.client, m.key, 240_000)))
    for (const o of outcomes) expect(o.stage).toBe('fulfilled')

    for (const s of spokes) {
      const client = stack.spokes[s.name]!.user
      const mine = made.map((m, i) => ({ m, o: outcomes[i]! })).filter(({ m }) => m.spoke.name === s.name)
      // Exactly one fulfilment of each request, all in one delivery (one message, one verification).
      const events = await Promise.all(
        mine.map(({ m }) =>
          client.getContractEvents({
            address: s.spoke.gateway,
            abi: SpokeGateway.abi,
            eventName: 'InferenceFulfilled',
            args: { requestId: m.id },
            fromBlock: 0n,
          }),
        ),
      )
      for (const e of events) expect(e).toHaveLength(1)
      expect(new Set(events.map((e) => e[0]!.transactionHash)).size).toBe(1)
      const delivery = await client.getTransactionReceipt({ hash: events[0]![0]!.transactionHash })
      const [receipt] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'BatchReceiptSent', logs: delivery.logs })
      expect(receipt?.args.status).toBe(FULFILLED)
      expect([...receipt!.args.requestIds!].sort()).toEqual(mine.map(({ m }) => m.id).sort())
      // One batch per spoke, submitted to the hub in one transaction; each status names it and the hops.
      const batches = new Set(mine.map(({ o }) => o.batch?.id))
      expect(batches.size).toBe(1)
      expect(new Set(mine.map(({ o }) => o.batch?.transactionHash)).size).toBe(1)
      for (const { m, o } of mine) {
        expect(o.batch).toMatchObject({ size: 16, rows: BURST })
        expect(o.hub).toMatchObject({ status: 'Settled', settlement: 'Fulfilled' })
        const market = await stack.hub.user.readContract({
          address: stack.network.hub.market,
          abi: InferenceMarket.abi,
          functionName: 'getRequest',
          args: [BigInt(o.hub!.marketRequestId!)],
        })
        expect(market).toMatchObject({ status: SETTLED, settlement: FULFILLED })
        const output = await client.readContract({
          address: consumers.get(s.name)!,
          abi: RecordingConsumer.abi,
          functionName: 'outputOf',
          args: [m.id],
        })
        expect(output.map(String)).toEqual(o.output)
      }
    }
  }, 400_000)
})
