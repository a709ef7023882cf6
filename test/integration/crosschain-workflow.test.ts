/**
 * Requests from a spoke chain served through the hub, end to end on the real local stack: two
 * anvils with real Hyperlane core contracts and the local validator and relayers, the Temporal dev
 * server, arlocal, and the workers (EZKL WASM prover) in this process. The request message reaches
 * the hub market, the result is verified on the hub and sent back, verified again on the spoke
 * before the consumer's callback, and the spoke's receipt settles the request on the hub.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { parseEventLogs } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { registerModel } from '../../chains/evm/deploy.ts'
import { InferenceMarket, RecordingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { Mailbox } from '../../contracts/artifacts/hyperlane/index.ts'
import { waitFor } from '../../core/process.ts'
import { getRequestStatus, waitForOutcome } from '../../workflows/client.ts'
import { deploySpokeConsumer, requestOnSpoke, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, startWorkers, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

let stack: CrossChainStack
let workers: InProcessWorkers
let consumer: `0x${string}`

beforeAll(async () => {
  stack = await startCrossChainStack()
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  consumer = await deploySpokeConsumer(stack)
})

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const spokeGateway = () => stack.network.spokes[0]!.spoke.gateway
const market = () => stack.network.hub.market
const marketRequest = (id: string) =>
  stack.hub.user.readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'getRequest', args: [BigInt(id)] })
const SETTLED = 4
const FULFILLED = 2
const FAILED = 3

/** The mailbox `Process` events on the spoke carrying messages from the hub market to the spoke gateway. */
async function processedOnSpoke(fromBlock: bigint) {
  const logs = await stack.spoke.user.getContractEvents({
    address: stack.network.spokes[0]!.hyperlane.mailbox,
    abi: Mailbox.abi,
    eventName: 'Process',
    fromBlock,
  })
  return logs.filter((l) => l.args.recipient?.toLowerCase() === spokeGateway().toLowerCase())
}

describe('cross-chain request workflow', () => {
  test('default: a spoke request is recorded on the hub, proven, verified on the hub and the spoke, called back, and settled on the hub', async () => {
    const req = await requestOnSpoke(stack, consumer)
    const outcome = await waitForOutcome(stack.client, req.key)
    expect(outcome.stage).toBe('fulfilled')

    // The spoke verified the result and called the consumer back with it.
    const onSpoke = await stack.spoke.user.readContract({
      address: spokeGateway(),
      abi: SpokeGateway.abi,
      functionName: 'getRequest',
      args: [req.id],
    })
    expect(onSpoke.status).toBe(FULFILLED)
    const output = await stack.spoke.user.readContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: 'outputOf',
      args: [req.id],
    })
    expect(output.map(String)).toEqual(outcome.output)
    // It was delivered by the messenger's `process` on the spoke, from the hub market.
    const settlementTx = outcome.timings.spokeSettle!.transactionHash as `0x${string}`
    const receipt = await stack.spoke.user.getTransactionReceipt({ hash: settlementTx })
    expect(receipt.to?.toLowerCase()).toBe(stack.network.spokes[0]!.hyperlane.mailbox.toLowerCase())
    const [processed] = parseEventLogs({ abi: Mailbox.abi, logs: receipt.logs, eventName: 'Process' })
    expect(processed!.args.origin).toBe(stack.network.hub.domain)
    expect(processed!.args.sender.toLowerCase()).toBe(`0x${market().slice(2).toLowerCase().padStart(64, '0')}`)

    // The hub recorded it, sent the result, and the spoke's receipt settled it there.
    expect(outcome.hub).toMatchObject({ chainId: stack.network.hub.chainId, status: 'Settled', settlement: 'Fulfilled' })
    const onHub = await marketRequest(outcome.hub!.marketRequestId!)
    expect(onHub.status).toBe(SETTLED)
    expect(onHub.settlement).toBe(FULFILLED)
    expect(onHub.spokeRequestId).toBe(req.id)
    expect(onHub.origin).toBe(stack.network.spokes[0]!.domain)

    // The status shows every hop.
    const status = await getRequestStatus(stack.client, req.key)
    for (const hop of ['hubRecord', 'prove', 'store', 'submit', 'spokeSettle', 'hubSettle'] as const) {
      expect(status.timings[hop], hop).toBeDefined()
    }
    expect(Number(status.timings.submit!.gasUsed)).toBeGreaterThan(500_000) // verification on the hub
    expect(Number(status.timings.spokeSettle!.gasUsed)).toBeGreaterThan(500_000) // and again on the spoke
  })

  test('failure: a model the hub has no deployment of on the spoke ends failed on the hub, refunded and called back on the spoke', async () => {
    // The twin is registered on the spoke's registry only: the node refuses to serve it (the hub market would refuse its result).
    const s = stack.network.spokes[0]!
    const twin = await registerModel(stack.spoke.owner, { registry: s.spoke.registry, model: 'sertn-mlp-twin', allowInsecureSrs: true })
    const before = await stack.spoke.user.getBalance({ address: consumer })
    const req = await requestOnSpoke(stack, consumer, { modelId: twin.modelId })
    const outcome = await waitForOutcome(stack.client, req.key)
    expect(outcome.stage).toBe('failed')
    expect(outcome.error?.code).toBe('ModelUnavailable')
    expect(outcome.error?.reason).toMatch(/^UnknownModelError: .*not registered on the hub/)
    const onSpoke = await stack.spoke.user.readContract({
      address: s.spoke.gateway,
      abi: SpokeGateway.abi,
      functionName: 'getRequest',
      args: [req.id],
    })
    expect(onSpoke.status).toBe(FAILED)
    // The error callback ran (code ModelUnavailable = 4) and the escrow came back.
    expect(
      await stack.spoke.user.readContract({
        address: consumer,
        abi: RecordingConsumer.abi,
        functionName: 'errorCodePlusOne',
        args: [req.id],
      }),
    ).toBe(5n)
    expect(await stack.spoke.user.getBalance({ address: consumer })).toBe(before + req.escrow)
    const onHub = await marketRequest(outcome.hub!.marketRequestId!)
    expect(onHub.status).toBe(SETTLED)
    expect(onHub.settlement).toBe(FAILED)
  })

  test('behavior: the agents crash while the result is on its way to the spoke; restarted from their stores, they deliver it exactly once', async () => {
    const fromBlock = await stack.spoke.user.getBlockNumber({ cacheTime: 0 })
    const req = await requestOnSpoke(stack, consumer)
    // Stop the agents as soon as the result has left the hub (the workflow is then waiting for the spoke).
    await waitFor(
      'the result to be submitted on the hub',
      async () => {
        const s = await getRequestStatus(stack.client, req.key).catch(() => undefined)
        return s?.stage === 'delivering' || s?.stage === 'settling' || s?.stage === 'fulfilled'
      },
      { timeoutMs: 90_000, intervalMs: 10 },
    )
    await stack.stopAgents()
    const stuck = await stack.spoke.user.readContract({
      address: spokeGateway(),
      abi: SpokeGateway.abi,
      functionName: 'getRequest',
      args: [req.id],
    })
    await new Promise((r) => setTimeout(r, 500))
    stack.startAgents()
    const outcome = await waitForOutcome(stack.client, req.key)
    expect(outcome.stage).toBe('fulfilled')
    const delivered = (await processedOnSpoke(fromBlock)).filter((l) => l.blockNumber > req.block)
    expect(delivered).toHaveLength(1)
    // Whatever the crash interrupted, the request was pending or fulfilled once, never twice.
    expect([1, 2]).toContain(stuck.status)
    const fulfilled = await stack.spoke.user.getContractEvents({
      address: spokeGateway(),
      abi: SpokeGateway.abi,
      eventName: 'InferenceFulfilled',
      args: { requestId: req.id },
      fromBlock: 0n,
    })
    expect(fulfilled).toHaveLength(1)
    expect((await marketRequest(outcome.hub!.marketRequestId!)).settlement).toBe(FULFILLED)
  })
})
