/**
 * Fan-out, on the local network (a hub, a spoke over Hyperlane and one over LayerZero V2, their real
 * contracts and local agents; no workers) with real EZKL proofs of the demo model and the real
 * verifier on every chain. A request on one spoke names other destination chains; its result is
 * proven once, verified on the hub, and delivered verified to the requesting spoke and to each
 * destination: the other spoke (over its own messenger), where its gateway verifies the copy with
 * its own VKA, and the hub, where the market calls the receiver straight after verifying. Each
 * copy goes at most once; a receiver that reverts harms nothing. Refused: destinations a gateway
 * cannot take, a fan-out request in a batch, a copy forged or replayed on the route, a tampered
 * copy (recorded as rejected, never delivered); a destination the hub cannot reach fails the
 * request with a refund.
 */
import {
  encodeAbiParameters,
  encodePacked,
  parseAbiParameters,
  parseEventLogs,
  toFunctionSelector,
  zeroAddress,
  type Address,
  type Hex,
} from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { addressAsBytes32 } from '../../chains/evm/crosschain.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { LOCAL_CHAINS } from '../../chains/local.ts'
import {
  CopyDelivery,
  InferenceMarket,
  ModelRegistry,
  RecordingConsumer,
  RecordingCopyReceiver,
  RevertingConsumer,
  SpokeGateway,
} from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { loadModelArtifacts, modelDir, type ModelArtifacts } from '../../core/manifest.ts'
import type { ProverPlugin } from '../../core/plugins.ts'
import { NO_STORAGE_REF } from '../../core/storage-ref.ts'
import { ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { DEV_ONLY } from '../support/artifacts.ts'
import { expectRevert, waitUntil } from '../support/chain.ts'
import { deployHubDispatcher, fromHubRoute, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown } from '../support/stack.ts'

const S = { Pending: 1, Fulfilled: 2, Failed: 3 } as const
const M = { Open: 1, ResultSent: 2, Settled: 4 } as const
const CALLBACK = { Succeeded: 0, Failed: 1 } as const
const MODEL_UNAVAILABLE = 4
const NO_REFS = { output: NO_STORAGE_REF, proof: NO_STORAGE_REF }
/** Storage refs a node names for a result (the copies carry the output's). */
const REFS = { output: `0x${'0a'.repeat(32)}` as Hex, proof: `0x${'0b'.repeat(32)}` as Hex }
const HL = LOCAL_CHAINS.spoke.name
const LZ = LOCAL_CHAINS.spokelz.name
const CALLBACK_GAS = 200_000
/** A receiver's callback gas (the recording receiver stores the whole copy). */
const RECEIVER_GAS = 500_000

let stack: CrossChainStack
let demo: ModelArtifacts
let prover: ProverPlugin
/** Per spoke: the requesting consumer, a receiver of copies, one that reverts. */
const on: Record<string, { consumer: Address; receiver: Address; reverting: Address }> = {}
/** A receiver of copies on the hub (called by the market). */
let hubReceiver: Address

beforeAll(async () => {
  ;[stack, demo] = await Promise.all([
    startCrossChainStack({ spokes: [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz] }),
    loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY),
  ])
  prover = ezklNativeProver()
  for (const s of stack.network.spokes) {
    const user = stack.spokes[s.name]!.user
    on[s.name] = {
      consumer: await deployContract(user, RecordingConsumer, [s.spoke.gateway]),
      receiver: await deployContract(user, RecordingCopyReceiver, [s.spoke.gateway]),
      reverting: await deployContract(user, RevertingConsumer, [s.spoke.gateway]),
    }
  }
  hubReceiver = await deployContract(stack.hub.user, RecordingCopyReceiver, [stack.network.hub.market])
}, 300_000)

afterAll(async () => {
  await prover?.dispose()
  await boundedTeardown([() => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const hub = () => stack.hub.user
const node = () => stack.local.chains[stack.network.hub.name]!.node
const market = () => stack.network.hub.market
const spokeOf = (name: string) => stack.network.spokes.find((s) => s.name === name)!
const clientOf = (name: string) => stack.spokes[name]!.user
const modelId = () => stack.network.hub.models[0]!.modelId

type Destination = { domain: number; receiver: Address; callbackGasLimit: number }

/** A distinct input per request, inside the demo's bound. */
const inputOf = (k: number) =>
  [0.5 * (k % 7) - 1.5, 0.25 * (k % 16) - 2, 1 - 0.125 * (k % 16), (-1) ** k * 0.75].map((x) => quantize(x, demo.manifest.inputScale))

const paramsOf = (input: bigint[]) => ({
  modelId: modelId(),
  input,
  inputRef: `0x${'0'.repeat(64)}` as Hex,
  callbackGasLimit: CALLBACK_GAS,
  modelVersion: 0,
  artifactsHash: `0x${'0'.repeat(64)}` as Hex,
  failIfNoCapacity: false,
})

const quoteFanOut = (name: string, destinations: readonly Destination[]) =>
  clientOf(name).readContract({
    address: spokeOf(name).spoke.gateway,
    abi: SpokeGateway.abi,
    functionName: 'quoteFanOut',
    args: [modelId(), CALLBACK_GAS, destinations],
  })

const requestFanOut = (name: string, input: bigint[], destinations: readonly Destination[], value: bigint) =>
  clientOf(name).simulateContract({
    address: on[name]!.consumer,
    abi: RecordingConsumer.abi,
    functionName: 'requestFanOut',
    args: [paramsOf(input), destinations],
    value,
  })

type Made = { spoke: string; id: bigint; mid: bigint; input: bigint[]; escrow: bigint }

/** A fan-out request from the consumer on spoke `name`, paying its quote, recorded on the hub. */
async function fanOut(name: string, k: number, destinations: readonly Destination[]): Promise<Made> {
  const input = inputOf(k)
  const user = clientOf(name)
  const value = await quoteFanOut(name, destinations)
  const receipt = await confirm(user, await user.writeContract((await requestFanOut(name, input, destinations, value)).request))
  const [log] = parseEventLogs({ abi: SpokeGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  const s = spokeOf(name)
  const id = log!.args.requestId
  const mid = await waitUntil(
    `the hub's record of ${name} request ${id}`,
    async () => {
      const x = await hub().readContract({
        address: market(),
        abi: InferenceMarket.abi,
        functionName: 'marketRequestIdOf',
        args: [s.chainId, addressAsBytes32(s.spoke.gateway), id],
      })
      return x > 0n ? x : undefined
    },
    60_000,
    100,
  )
  return { spoke: name, id, mid, input, escrow: log!.args.escrow }
}

const marketRequest = (mid: bigint) =>
  hub().readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'getRequest', args: [mid] })

const spokeRequest = (m: Made) =>
  clientOf(m.spoke).readContract({
    address: spokeOf(m.spoke).spoke.gateway,
    abi: SpokeGateway.abi,
    functionName: 'getRequest',
    args: [m.id],
  })

/** Waits until `m` is `status` on its spoke. */
const untilStatus = (m: Made, status: number, what: string) =>
  waitUntil(what, async () => ((await spokeRequest(m)).status === status ? true : undefined), 60_000, 100)

/** Proves `m`'s input with the demo circuit; the node submits it to the market paying its quote. */
async function submit(m: Made) {
  const p = await prover.proveInference(demo, m.input)
  const args = [m.mid, m.input, p.output, p.proof, REFS] as const
  const value = await hub().readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'quoteResult', args })
  const receipt = await confirm(
    node(),
    await node().writeContract({ address: market(), abi: InferenceMarket.abi, functionName: 'submitResult', args, value }),
  )
  return { receipt, output: p.output, proof: p.proof, value }
}

/** The InferenceCopied / CopyRejected events of request `m` on `name`'s gateway. */
const copyEvents = async (name: string, m: Made) => {
  const client = clientOf(name)
  const address = spokeOf(name).spoke.gateway
  const args = { origin: spokeOf(m.spoke).chainId, requestId: m.id }
  const [copied, rejected] = await Promise.all([
    client.getContractEvents({ address, abi: SpokeGateway.abi, eventName: 'InferenceCopied', args, fromBlock: 0n }),
    client.getContractEvents({ address, abi: SpokeGateway.abi, eventName: 'CopyRejected', args, fromBlock: 0n }),
  ])
  return { copied, rejected }
}

const arrived = (name: string, m: Made) =>
  clientOf(name).readContract({
    address: spokeOf(name).spoke.gateway,
    abi: SpokeGateway.abi,
    functionName: 'copyArrived',
    args: [spokeOf(m.spoke).chainId, addressAsBytes32(spokeOf(m.spoke).spoke.gateway), m.id],
  })

const copyAt = (client: ReturnType<typeof clientOf>, receiver: Address, m: Made) =>
  client.readContract({
    address: receiver,
    abi: RecordingCopyReceiver.abi,
    functionName: 'copyOf',
    args: [spokeOf(m.spoke).chainId, addressAsBytes32(spokeOf(m.spoke).spoke.gateway), m.id],
  })

describe.each([
  ['hyperlane', HL, LZ, 0],
  ['layerzero', LZ, HL, 20],
])('a fan-out request from the spoke over %s', (messenger, from, to, k) => {
  test('proven once, verified on the hub, on its spoke and on the other spoke (over that spoke’s messenger) and delivered to the hub’s receiver: each receiver called once with the request’s input and output; the copies’ delivery is in the quote and paid to the node', async () => {
    expect(spokeOf(from).messenger.kind).toBe(messenger)
    const destinations: Destination[] = [
      { domain: spokeOf(to).chainId, receiver: on[to]!.receiver, callbackGasLimit: RECEIVER_GAS },
      { domain: stack.network.hub.chainId, receiver: hubReceiver, callbackGasLimit: RECEIVER_GAS },
    ]
    // The quote covers each copy's delivery (its gas at the gateway's price) and the longer request message.
    const gateway = spokeOf(from).spoke.gateway
    const [single, fan, config] = await Promise.all([
      clientOf(from).readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'quote', args: [modelId(), CALLBACK_GAS] }),
      quoteFanOut(from, destinations),
      clientOf(from).readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'config' }),
    ])
    const copies = destinations.reduce((sum, d) => sum + BigInt(config.fulfillGasOverhead + d.callbackGasLimit) * config.gasPrice, 0n)
    expect(fan - single).toBeGreaterThanOrEqual(copies)
    expect(fan - single - copies).toBeLessThan(copies) // what is left is the request message's larger fee
    expect((await expectRevert(requestFanOut(from, inputOf(k), destinations, fan - 1n))).errorName).toBe('GatewayInsufficientPayment')

    const m = await fanOut(from, k, destinations)
    // Escrowed: what a single request escrows (the model's fee and the node's gas), and the copies' delivery.
    const terms = await clientOf(from).readContract({
      address: spokeOf(from).spoke.registry,
      abi: ModelRegistry.abi,
      functionName: 'tryGetRequestTerms',
      args: [modelId()],
    })
    expect(m.escrow).toBe(terms.fee + BigInt(config.fulfillGasOverhead + CALLBACK_GAS) * config.gasPrice + copies)
    expect((await spokeRequest(m)).escrow).toBe(m.escrow)
    // Recorded on the hub with its destinations and its requester.
    expect((await marketRequest(m.mid)).copies).toBe(2)
    const [requester, recorded] = await hub().readContract({
      address: market(),
      abi: InferenceMarket.abi,
      functionName: 'destinationsOf',
      args: [m.mid],
    })
    expect(requester).toBe(on[from]!.consumer)
    expect(recorded).toEqual(destinations)
    expect(
      await hub().readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'unservedDestination', args: [m.mid] }),
    ).toBe(0n)

    const nodeAddress = node().account.address
    const nodeBefore = await clientOf(from).getBalance({ address: nodeAddress })
    const { receipt, output } = await submit(m)
    // Verified on the hub once; a message to the requesting spoke and one to the other spoke; the hub's receiver called.
    const dispatched = parseEventLogs({ abi: InferenceMarket.abi, eventName: 'CopyDispatched', logs: receipt.logs })
    expect(dispatched.map((e) => e.args.destination)).toEqual([spokeOf(to).chainId])
    const [hubCopy] = parseEventLogs({ abi: InferenceMarket.abi, eventName: 'InferenceCopied', logs: receipt.logs })
    expect(hubCopy?.args).toMatchObject({
      origin: spokeOf(from).chainId,
      requestId: m.id,
      receiver: hubReceiver,
      output,
      callbackStatus: CALLBACK.Succeeded,
    })
    expect(await copyAt(hub(), hubReceiver, m)).toMatchObject({
      requester: on[from]!.consumer,
      input: m.input,
      output,
      modelId: modelId(),
      outputRef: REFS.output,
    })

    // The requesting spoke verifies and settles; the node is paid the whole escrow (the copies' delivery included).
    await untilStatus(m, S.Fulfilled, 'the requesting spoke’s settlement')
    expect(
      await clientOf(from).readContract({
        address: on[from]!.consumer,
        abi: RecordingConsumer.abi,
        functionName: 'outputOf',
        args: [m.id],
      }),
    ).toEqual(output)
    expect(await clientOf(from).getBalance({ address: nodeAddress })).toBe(nodeBefore + m.escrow)

    // The other spoke verifies the copy with its own VKA and calls its receiver, once.
    await waitUntil('the copy on the other spoke', async () => (await arrived(to, m)) || undefined, 60_000, 100)
    const { copied, rejected } = await copyEvents(to, m)
    expect(rejected).toEqual([])
    expect(copied).toHaveLength(1)
    expect(copied[0]!.args).toMatchObject({ receiver: on[to]!.receiver, node: nodeAddress, output, callbackStatus: CALLBACK.Succeeded })
    const there = await copyAt(clientOf(to), on[to]!.receiver, m)
    expect(there).toMatchObject({
      origin: spokeOf(from).chainId,
      gateway: addressAsBytes32(gateway),
      requestId: m.id,
      requester: on[from]!.consumer,
      modelId: modelId(),
      input: m.input,
      output,
      outputRef: REFS.output,
    })
    expect(await clientOf(to).readContract({ address: on[to]!.receiver, abi: RecordingCopyReceiver.abi, functionName: 'calls' })).toBe(1n)

    // The spoke's receipt settles the request on the hub.
    await waitUntil('the hub’s settlement', async () => ((await marketRequest(m.mid)).status === M.Settled ? true : undefined), 60_000, 100)
  }, 300_000)
})

describe('fan-out: what is refused, and what cannot harm', () => {
  test('error: destinations a gateway cannot take (none, this chain, a chain twice, no receiver, too much callback gas, more than the most): GatewayInvalidDestination with the index', async () => {
    const other = spokeOf(LZ).chainId
    const ok: Destination = { domain: other, receiver: on[LZ]!.receiver, callbackGasLimit: CALLBACK_GAS }
    const hubDest: Destination = { domain: stack.network.hub.chainId, receiver: hubReceiver, callbackGasLimit: RECEIVER_GAS }
    const config = await clientOf(HL).readContract({ address: spokeOf(HL).spoke.gateway, abi: SpokeGateway.abi, functionName: 'config' })
    const cases: [Destination[], bigint][] = [
      [[], 0n],
      [[{ ...ok, domain: spokeOf(HL).chainId }], 0n],
      [[ok, { ...ok, receiver: hubReceiver }], 1n],
      [[hubDest, { ...ok, receiver: zeroAddress }], 1n],
      [[ok, { ...hubDest, callbackGasLimit: config.maxCallbackGasLimit + 1 }], 1n],
      [[ok, hubDest, { ...ok, domain: 7 }, { ...ok, domain: 8 }, { ...ok, domain: 9 }], 4n],
    ]
    // No destination is quoted as a plain request, and refused as a fan-out request.
    expect(await quoteFanOut(HL, [])).toBe(
      await clientOf(HL).readContract({
        address: spokeOf(HL).spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'quote',
        args: [modelId(), CALLBACK_GAS],
      }),
    )
    expect(await expectRevert(requestFanOut(HL, inputOf(1), [], 10n ** 17n))).toEqual({
      errorName: 'GatewayInvalidDestination',
      args: [0n],
    })
    for (const [destinations, index] of cases.slice(1)) {
      const quoted = expectRevert(quoteFanOut(HL, destinations))
      expect(await quoted, JSON.stringify(destinations)).toEqual({ errorName: 'GatewayInvalidDestination', args: [index] })
      expect(await expectRevert(requestFanOut(HL, inputOf(1), destinations, 10n ** 17n))).toEqual({
        errorName: 'GatewayInvalidDestination',
        args: [index],
      })
    }
  })

  test('a destination the hub cannot reach (no route there): recorded without a job, failed by anyone, refunded on the spoke with ModelUnavailable; no copy leaves', async () => {
    const m = await fanOut(HL, 40, [{ domain: 424242, receiver: on[LZ]!.receiver, callbackGasLimit: CALLBACK_GAS }])
    expect(
      await hub().readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'unservedDestination', args: [m.mid] }),
    ).toBe(1n)
    // No job, and no route for the copy: a result cannot even be quoted; the failure is anyone's to send.
    expect((await expectRevert(submit(m))).errorName).toBe('MessengerNoRoute')
    const stranger = stack.hub.user
    const reason = 'destination chain 424242 is not served'
    const value = await stranger.readContract({
      address: market(),
      abi: InferenceMarket.abi,
      functionName: 'quoteFailure',
      args: [m.mid, MODEL_UNAVAILABLE, reason],
    })
    await confirm(
      stranger,
      await stranger.writeContract({
        address: market(),
        abi: InferenceMarket.abi,
        functionName: 'failRequest',
        args: [m.mid, MODEL_UNAVAILABLE, reason],
        value,
      }),
    )
    await untilStatus(m, S.Failed, 'the refund on the spoke')
    expect(
      await clientOf(HL).readContract({
        address: on[HL]!.consumer,
        abi: RecordingConsumer.abi,
        functionName: 'errorCodePlusOne',
        args: [m.id],
      }),
    ).toBe(BigInt(MODEL_UNAVAILABLE + 1))
  }, 300_000)

  test('error: a fan-out request named in a batch: MarketBatchFansOut (it is answered alone)', async () => {
    const m = await fanOut(HL, 41, [{ domain: spokeOf(LZ).chainId, receiver: on[LZ]!.receiver, callbackGasLimit: CALLBACK_GAS }])
    const size = 16
    const ids = [m.mid, ...Array.from({ length: size - 1 }, () => 0n)]
    const inputs = [...m.input, ...Array.from({ length: (size - 1) * m.input.length }, () => 0n)]
    const outputs = Array.from({ length: size * demo.manifest.outputShape.reduce((a, b) => a * b, 1) }, () => 0n)
    const err = await expectRevert(
      hub().readContract({
        address: market(),
        abi: InferenceMarket.abi,
        functionName: 'quoteBatch',
        args: [size, ids, inputs, outputs, '0x00', NO_REFS],
      }),
    )
    expect(err).toEqual({ errorName: 'MarketBatchFansOut', args: [m.mid] })
    // Answered alone, it goes (and its copy with it).
    await submit(m)
    await waitUntil('the copy on the other spoke', async () => (await arrived(LZ, m)) || undefined, 60_000, 100)
  }, 300_000)

  test('a receiver that reverts: its copy is verified and delivered (callback Failed), the request fulfilled on its spoke, nothing else harmed', async () => {
    const m = await fanOut(LZ, 42, [{ domain: spokeOf(HL).chainId, receiver: on[HL]!.reverting, callbackGasLimit: CALLBACK_GAS }])
    await submit(m)
    await waitUntil('the copy on the other spoke', async () => (await arrived(HL, m)) || undefined, 60_000, 100)
    const { copied } = await copyEvents(HL, m)
    expect(copied).toHaveLength(1)
    expect(copied[0]!.args).toMatchObject({ receiver: on[HL]!.reverting, callbackStatus: CALLBACK.Failed })
    await untilStatus(m, S.Fulfilled, 'the request’s settlement')
  }, 300_000)

  describe('copies on the route (the HL spoke’s hub route pointed at a test dispatcher)', () => {
    let dispatcher: Address

    beforeAll(async () => {
      dispatcher = await deployHubDispatcher(stack)
    })

    /** Sends `body` from the dispatcher to the HL spoke's gateway while its hub route points at it; the delivery's outcome. */
    const fromRoute = async (body: Hex) =>
      (await fromHubRoute(stack, dispatcher, HL, body, 2_000_000n, 10_000)) ? 'delivered' : 'reverted'

    /** A RESULT_COPY body as the market encodes it. */
    const copyBody = (c: {
      origin: number
      gateway: Address
      requestId: bigint
      input: bigint[]
      output: bigint[]
      proof: Hex
      receiver: Address
      version: number
    }) =>
      encodePacked(
        ['uint8', 'bytes'],
        [
          9,
          encodeAbiParameters(
            parseAbiParameters([
              'ResultCopy c',
              'struct ResultCopy { InferenceCopy copy; uint32 modelVersion; bytes proof; Refs refs; address node; address receiver; uint32 callbackGasLimit; }',
              'struct InferenceCopy { uint32 origin; bytes32 gateway; uint256 requestId; address requester; bytes32 modelId; int256[] input; int256[] output; bytes32 outputRef; }',
              'struct Refs { bytes32 output; bytes32 proof; }',
            ]),
            [
              {
                copy: {
                  origin: c.origin,
                  gateway: addressAsBytes32(c.gateway),
                  requestId: c.requestId,
                  requester: on[LZ]!.consumer,
                  modelId: modelId(),
                  input: c.input,
                  output: c.output,
                  outputRef: REFS.output,
                },
                modelVersion: c.version,
                proof: c.proof,
                refs: NO_REFS,
                node: node().account.address,
                receiver: c.receiver,
                callbackGasLimit: RECEIVER_GAS,
              },
            ],
          ),
        ],
      )

    test('a tampered copy is rejected by the spoke’s verification (CopyRejected, the receiver never called); a replay of a copy that arrived reverts CopyAlreadyDelivered; a genuine copy arrives once', async () => {
      const input = inputOf(50)
      const p = await prover.proveInference(demo, input)
      const { version } = await clientOf(HL).readContract({
        address: spokeOf(HL).spoke.registry,
        abi: ModelRegistry.abi,
        functionName: 'tryGetRequestTerms',
        args: [modelId()],
      })
      const base = {
        origin: spokeOf(LZ).chainId,
        gateway: spokeOf(LZ).spoke.gateway,
        input,
        proof: p.proof,
        receiver: on[HL]!.receiver,
        version,
      }
      const receiverCalls = () =>
        clientOf(HL).readContract({ address: on[HL]!.receiver, abi: RecordingCopyReceiver.abi, functionName: 'calls' })
      const callsBefore = await receiverCalls()

      // A forged output: the spoke's verifier refuses it; recorded as arrived, never delivered.
      const tampered = { ...base, requestId: 9_001n, output: p.output.map((v, i) => (i === 0 ? v + 1n : v)) }
      expect(await fromRoute(copyBody(tampered))).toBe('delivered')
      const bad = { spoke: LZ, id: tampered.requestId, mid: 0n, input, escrow: 0n }
      const { copied, rejected } = await copyEvents(HL, bad)
      expect(copied).toEqual([])
      expect(rejected).toHaveLength(1)
      expect(rejected[0]!.args.error).toBe(toFunctionSelector('ResultInvalidProof(uint256)'))
      expect(await arrived(HL, bad)).toBe(true)
      expect(await receiverCalls()).toBe(callsBefore)

      // A genuine copy arrives once; the same message again is refused.
      const genuine = { ...base, requestId: 9_002n, output: p.output }
      expect(await fromRoute(copyBody(genuine))).toBe('delivered')
      const good = { spoke: LZ, id: genuine.requestId, mid: 0n, input, escrow: 0n }
      expect((await copyEvents(HL, good)).copied).toHaveLength(1)
      expect(await receiverCalls()).toBe(callsBefore + 1n)
      // The same message from the route reverts at the gateway (asked as the port would call it), and the relayer cannot deliver it.
      const replay = clientOf(HL).simulateContract({
        account: spokeOf(HL).messenger.port,
        address: spokeOf(HL).spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'receiveMessage',
        args: [stack.network.hub.chainId, addressAsBytes32(market()), copyBody(genuine)],
      })
      expect(await expectRevert(replay)).toEqual({
        errorName: 'CopyAlreadyDelivered',
        args: [genuine.origin, addressAsBytes32(genuine.gateway), genuine.requestId],
      })
      expect(await fromRoute(copyBody(genuine))).toBe('reverted')
      expect((await copyEvents(HL, good)).copied).toHaveLength(1)
      expect(await receiverCalls()).toBe(callsBefore + 1n)
    }, 300_000)

    test('error: the copy code refuses to run other than in its gateway; the receiver base refuses callers other than its deliverer', async () => {
      const delivery = await clientOf(HL).readContract({
        address: spokeOf(HL).spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'copyDelivery',
      })
      const copy = {
        origin: 1,
        gateway: addressAsBytes32(spokeOf(LZ).spoke.gateway),
        requestId: 1n,
        requester: on[LZ]!.consumer,
        modelId: modelId(),
        input: [] as bigint[],
        output: [] as bigint[],
        outputRef: NO_STORAGE_REF,
      }
      const direct = clientOf(HL).simulateContract({
        address: delivery,
        abi: CopyDelivery.abi,
        functionName: 'deliverCopy',
        args: [{ copy, modelVersion: 1, proof: '0x', refs: NO_REFS, node: zeroAddress, receiver: on[HL]!.receiver, callbackGasLimit: 0 }],
      })
      expect((await expectRevert(direct)).errorName).toBe('CopyDeliveryNotDelegated')
      const forged = clientOf(HL).simulateContract({
        address: on[HL]!.receiver,
        abi: RecordingCopyReceiver.abi,
        functionName: 'rawOnInferenceCopy',
        args: [copy],
      })
      expect((await expectRevert(forged)).errorName).toBe('SertnCopyReceiverOnlyDeliverer')
    })
  })
})
