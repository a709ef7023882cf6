/**
 * The cross-chain request workflow end to end, on one local network with two spokes: one joined to
 * the hub over Hyperlane, one over LayerZero V2 (real contracts of both, their local agents), the
 * node's workers in this process. Every test runs against each spoke.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { getAddress, parseEventLogs, type Address } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { LOCAL_CHAINS } from '../../chains/local.ts'
import { deployContract, registerModel } from '../../chains/evm/deploy.ts'
import { HyperlanePort, InferenceMarket, RecordingConsumer, RecordingCopyReceiver, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { waitFor } from '../../core/process.ts'
import { getRequestStatus, waitForOutcome } from '../../workflows/client.ts'
import { deploySpokeConsumer, requestOnSpoke, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, startWorkers, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

let stack: CrossChainStack
let workers: InProcessWorkers
const consumers = new Map<string, Address>()

beforeAll(async () => {
  stack = await startCrossChainStack({ spokes: [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz] })
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  for (const s of stack.network.spokes) consumers.set(s.name, await deploySpokeConsumer(stack, s.name))
}, 300_000)

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const market = () => stack.network.hub.market
const marketRequest = (id: string) =>
  stack.hub.user.readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'getRequest', args: [BigInt(id)] })
const bytes32 = (a: string) => `0x${a.slice(2).toLowerCase().padStart(64, '0')}`
const SETTLED = 4
const FULFILLED = 2
const FAILED = 3

describe.each([
  ['hyperlane', LOCAL_CHAINS.spoke.name],
  ['layerzero', LOCAL_CHAINS.spokelz.name],
])('cross-chain request workflow over %s', (messenger, name) => {
  const spoke = () => stack.network.spokes.find((s) => s.name === name)!
  const clients = () => stack.spokes[name]!
  const spokeGateway = () => spoke().spoke.gateway
  const consumer = () => consumers.get(name)!
  const request = (opts: Parameters<typeof requestOnSpoke>[2] = {}) => requestOnSpoke(stack, consumer(), { spoke: name, ...opts })
  /** The spoke port's hand-overs to the gateway (one per message delivered to it). */
  const handedToGateway = async (fromBlock: bigint) =>
    clients().user.getContractEvents({
      address: spoke().messenger.port,
      abi: HyperlanePort.abi, // IMessengerPort's events: the same in every port
      eventName: 'PortMessageReceived',
      args: { recipient: spokeGateway() },
      fromBlock,
    })

  test('default: a spoke request is recorded on the hub, proven, verified on the hub and the spoke, called back, and settled on the hub', async () => {
    expect(spoke().messenger.kind).toBe(messenger)
    const req = await request()
    const outcome = await waitForOutcome(stack.client, req.key)
    expect(outcome.stage).toBe('fulfilled')

    // The spoke verified the result and called the consumer back with it.
    const onSpoke = await clients().user.readContract({
      address: spokeGateway(),
      abi: SpokeGateway.abi,
      functionName: 'getRequest',
      args: [req.id],
    })
    expect(onSpoke.status).toBe(FULFILLED)
    const output = await clients().user.readContract({
      address: consumer(),
      abi: RecordingConsumer.abi,
      functionName: 'outputOf',
      args: [req.id],
    })
    expect(output.map(String)).toEqual(outcome.output)
    // It was delivered through the messenger's own entry point (mailbox, endpoint) to the spoke's
    // port, which handed it to the gateway as a message from the hub market.
    const settlementTx = outcome.timings.spokeSettle!.transactionHash as `0x${string}`
    const receipt = await clients().user.getTransactionReceipt({ hash: settlementTx })
    const entry = messenger === 'hyperlane' ? (spoke().messenger.mailbox as string) : (spoke().messenger.endpoint as string)
    expect(receipt.to?.toLowerCase()).toBe(entry.toLowerCase())
    const [handed] = parseEventLogs({ abi: HyperlanePort.abi, logs: receipt.logs, eventName: 'PortMessageReceived' })
    expect(handed!.args).toMatchObject({
      origin: stack.network.hub.chainId,
      recipient: getAddress(spokeGateway()),
      sender: bytes32(market()),
    })

    // The hub recorded it, sent the result, and the spoke's receipt settled it there.
    expect(outcome.hub).toMatchObject({ chainId: stack.network.hub.chainId, status: 'Settled', settlement: 'Fulfilled' })
    const onHub = await marketRequest(outcome.hub!.marketRequestId!)
    expect(onHub.status).toBe(SETTLED)
    expect(onHub.settlement).toBe(FULFILLED)
    expect(onHub.spokeRequestId).toBe(req.id)
    expect(onHub.origin).toBe(spoke().chainId)

    // The status shows every hop.
    const status = await getRequestStatus(stack.client, req.key)
    for (const hop of ['hubRecord', 'prove', 'store', 'submit', 'spokeSettle', 'hubSettle'] as const) {
      expect(status.timings[hop], hop).toBeDefined()
    }
    expect(Number(status.timings.submit!.gasUsed)).toBeGreaterThan(500_000) // verification on the hub
    expect(Number(status.timings.spokeSettle!.gasUsed)).toBeGreaterThan(500_000) // and again on the spoke
  })

  test('fan-out: a request naming the other spoke and the hub is proven once and submitted alone; the workflow follows each copy to its chain, where it is verified and its receiver called back once', async () => {
    const other = stack.network.spokes.find((s) => s.name !== name)!
    const receivers = {
      other: await deployContract(stack.spokes[other.name]!.user, RecordingCopyReceiver, [other.spoke.gateway]),
      hub: await deployContract(stack.hub.user, RecordingCopyReceiver, [market()]),
    }
    const destinations = [
      { domain: other.chainId, receiver: receivers.other, callbackGasLimit: 500_000 },
      { domain: stack.network.hub.chainId, receiver: receivers.hub, callbackGasLimit: 500_000 },
    ]
    const req = await request({ destinations })
    const outcome = await waitForOutcome(stack.client, req.key)
    expect(outcome.stage).toBe('fulfilled')
    expect(outcome.batch).toBeUndefined()
    expect(outcome.copies).toEqual([
      expect.objectContaining({ chainId: other.chainId, receiver: receivers.other, status: 'Copied', callback: 'Succeeded' }),
      expect.objectContaining({ chainId: stack.network.hub.chainId, receiver: receivers.hub, status: 'Copied', callback: 'Succeeded' }),
    ])
    // The hub's copy went with the submission; the other spoke's in its own delivery, verified there.
    expect(outcome.copies![1]!.transactionHash).toBe(outcome.timings.submit!.transactionHash)
    expect(Number(outcome.copies![0]!.gasUsed)).toBeGreaterThan(500_000)
    for (const [client, receiver] of [
      [stack.spokes[other.name]!.user, receivers.other],
      [stack.hub.user, receivers.hub],
    ] as const) {
      const copy = await client.readContract({
        address: receiver,
        abi: RecordingCopyReceiver.abi,
        functionName: 'copyOf',
        args: [spoke().chainId, bytes32(spokeGateway()) as `0x${string}`, req.id],
      })
      expect(copy.output.map(String)).toEqual(outcome.output)
      expect(copy.requester).toBe(consumer())
      expect(await client.readContract({ address: receiver, abi: RecordingCopyReceiver.abi, functionName: 'calls' })).toBe(1n)
    }
  })

  test('failure: a model the hub has no deployment of on the spoke ends failed on the hub, refunded and called back on the spoke', async () => {
    // The twin is registered on the spoke's registry only: the node refuses to serve it (the hub market would refuse its result).
    const twin = await registerModel(clients().owner, { registry: spoke().spoke.registry, model: 'sertn-mlp-twin', allowInsecureSrs: true })
    const before = await clients().user.getBalance({ address: consumer() })
    const req = await request({ modelId: twin.modelId })
    const outcome = await waitForOutcome(stack.client, req.key)
    expect(outcome.stage).toBe('failed')
    expect(outcome.error?.code).toBe('ModelUnavailable')
    expect(outcome.error?.reason).toMatch(/^the hub serves no model 0x/) // no pool: failed before any work
    const onSpoke = await clients().user.readContract({
      address: spokeGateway(),
      abi: SpokeGateway.abi,
      functionName: 'getRequest',
      args: [req.id],
    })
    expect(onSpoke.status).toBe(FAILED)
    // The error callback ran (code ModelUnavailable = 4) and the escrow came back.
    expect(
      await clients().user.readContract({
        address: consumer(),
        abi: RecordingConsumer.abi,
        functionName: 'errorCodePlusOne',
        args: [req.id],
      }),
    ).toBe(5n)
    expect(await clients().user.getBalance({ address: consumer() })).toBe(before + req.escrow)
    const onHub = await marketRequest(outcome.hub!.marketRequestId!)
    expect(onHub.status).toBe(SETTLED)
    expect(onHub.settlement).toBe(FAILED)
  })

  test('behavior: the agents crash while the result is on its way to the spoke; restarted from their stores, they deliver it exactly once', async () => {
    const fromBlock = await clients().user.getBlockNumber({ cacheTime: 0 })
    const req = await request()
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
    const stuck = await clients().user.readContract({
      address: spokeGateway(),
      abi: SpokeGateway.abi,
      functionName: 'getRequest',
      args: [req.id],
    })
    await new Promise((r) => setTimeout(r, 500))
    await stack.startAgents()
    const outcome = await waitForOutcome(stack.client, req.key)
    expect(outcome.stage).toBe('fulfilled')
    const delivered = (await handedToGateway(fromBlock)).filter((l) => l.blockNumber > req.block)
    expect(delivered).toHaveLength(1)
    // Whatever the crash interrupted, the request was pending or fulfilled once, never twice.
    expect([1, 2]).toContain(stuck.status)
    const fulfilled = await clients().user.getContractEvents({
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
