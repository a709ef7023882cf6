/**
 * Batches for spokes, on the local network (a hub, a spoke over Hyperlane and one over LayerZero
 * V2, their real contracts and local agents; no workers) with real EZKL proofs of the demo's batch
 * circuit of 16 rows and the real verifier on every chain. The hub market verifies a batch of one
 * spoke's requests with the hub's batch VKA and sends it in one message; the spoke verifies it once
 * with its own batch VKA, binds each row to its request, pays the node once, calls each consumer
 * back in isolation (a reverting one harms no other row) and sends one receipt, which settles every
 * row on the hub. Rejected on the hub, changing nothing: a tampered row, a row bound to another
 * request, a padding row claiming a request, rows of two spokes, a second submission. On the
 * spoke, from its authenticated hub route: a batch its verifier refuses fails every pending row
 * (refund, InvalidResult callback, one Failed receipt); a row settled before the batch arrives is
 * left alone while the others settle.
 */
import { encodeAbiParameters, encodePacked, parseAbiParameters, parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { addressAsBytes32 } from '../../chains/evm/crosschain.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { batchRebateOf } from '../../chains/evm/pricing.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { LOCAL_CHAINS } from '../../chains/local.ts'
import { InferenceMarket, ModelRegistry, RecordingConsumer, RevertingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { loadBatchArtifacts, loadModelArtifacts, modelDir, type ModelArtifacts } from '../../core/manifest.ts'
import type { ProverPlugin } from '../../core/plugins.ts'
import { NO_STORAGE_REF } from '../../core/storage-ref.ts'
import { ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { DEV_ONLY } from '../support/artifacts.ts'
import { expectRevert, waitUntil } from '../support/chain.ts'
import {
  deployHubDispatcher,
  fromHubRoute,
  requestOnSpoke,
  startCrossChainStack,
  type CrossChainStack,
  type SpokeRequest,
} from '../support/crosschain.ts'
import { boundedTeardown } from '../support/stack.ts'

const SIZE = 16
const S = { Pending: 1, Fulfilled: 2, Failed: 3 } as const
const M = { Open: 1, ResultSent: 2, Settled: 4 } as const
const CALLBACK = { Succeeded: 0, Failed: 1 } as const
const INVALID_RESULT = 6
const NO_REFS = { output: NO_STORAGE_REF, proof: NO_STORAGE_REF }
const HL = LOCAL_CHAINS.spoke.name
const LZ = LOCAL_CHAINS.spokelz.name

let stack: CrossChainStack
let demo: ModelArtifacts
let batch: ModelArtifacts
let prover: ProverPlugin
const consumers: Record<string, { recording: Address; reverting: Address }> = {}

beforeAll(async () => {
  ;[stack, demo] = await Promise.all([
    startCrossChainStack({ spokes: [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz] }),
    loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY),
  ])
  batch = await loadBatchArtifacts(demo, SIZE, DEV_ONLY)
  prover = ezklNativeProver()
  for (const s of stack.network.spokes) {
    const user = stack.spokes[s.name]!.user
    consumers[s.name] = {
      recording: await deployContract(user, RecordingConsumer, [s.spoke.gateway]),
      reverting: await deployContract(user, RevertingConsumer, [s.spoke.gateway]),
    }
  }
}, 300_000)

afterAll(async () => {
  await prover?.dispose()
  await boundedTeardown([() => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const hub = () => stack.hub.user
const node = (): SertnClient => stack.local.chains[stack.network.hub.name]!.node
const market = () => stack.network.hub.market
const spokeOf = (name: string) => stack.network.spokes.find((s) => s.name === name)!
const modelId = () => stack.network.hub.models[0]!.modelId

/** A distinct input per request (k below 112), inside the demo's bound. */
const inputOf = (k: number) =>
  [0.5 * (k % 7) - 1.5, 0.25 * (k % 16) - 2, 1 - 0.125 * (k % 16), (-1) ** k * 0.75].map((x) => quantize(x, demo.manifest.inputScale))
const PADDING = [0n, 0n, 0n, 0n]

type Made = SpokeRequest & { spoke: string; input: bigint[]; mid: bigint; consumer: Address }

/** `n` requests on spoke `name` (the first `reverts` from a consumer that reverts in its callback), each recorded on the hub. */
async function requests(name: string, n: number, from: number, reverts = 0): Promise<Made[]> {
  const made: (SpokeRequest & { input: bigint[]; consumer: Address })[] = []
  for (let i = 0; i < n; i++) {
    const input = inputOf(from + i)
    const consumer = i < reverts ? consumers[name]!.reverting : consumers[name]!.recording
    made.push({ ...(await requestOnSpoke(stack, consumer, { spoke: name, input, modelId: modelId() })), input, consumer })
  }
  const s = spokeOf(name)
  return Promise.all(
    made.map(async (m) => ({
      ...m,
      spoke: name,
      mid: await waitUntil(
        `the hub's record of ${name} request ${m.id}`,
        async () => {
          const mid = await hub().readContract({
            address: market(),
            abi: InferenceMarket.abi,
            functionName: 'marketRequestIdOf',
            args: [s.chainId, addressAsBytes32(s.spoke.gateway), m.id],
          })
          return mid > 0n ? mid : undefined
        },
        60_000,
        100,
      ),
    })),
  )
}

/** `values` as PackedInts packs them: each the low `width` bytes of its two's complement, big-endian. */
function packed(values: readonly bigint[], width: number): Hex {
  const mask = (1n << BigInt(8 * width)) - 1n
  return `0x${values.map((v) => (BigInt.asUintN(256, v) & mask).toString(16).padStart(2 * width, '0')).join('')}`
}

type Batch = { mids: bigint[]; ids: bigint[]; inputs: bigint[]; outputs: bigint[]; proof: Hex }

/** Proves `rows` (padding rows after them) with the 16-row circuit. */
async function proveBatch(rows: { mid: bigint; id: bigint; input: bigint[] }[]): Promise<Batch> {
  const padded = [...rows, ...Array.from({ length: SIZE - rows.length }, () => ({ mid: 0n, id: 0n, input: PADDING }))]
  const inputs = padded.flatMap((r) => r.input)
  const p = await prover.proveInference(batch, inputs)
  return { mids: padded.map((r) => r.mid), ids: padded.map((r) => r.id), inputs, outputs: p.output, proof: p.proof }
}

const batchArgs = (b: Batch) => [SIZE, b.mids, b.inputs, b.outputs, b.proof, NO_REFS] as const

/** The node submits `b` to the market (paying the quote); returns the receipt. */
async function submitBatch(b: Batch) {
  const value = await hub().readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'quoteBatch', args: batchArgs(b) })
  return confirm(
    node(),
    await node().writeContract({ address: market(), abi: InferenceMarket.abi, functionName: 'submitBatch', args: batchArgs(b), value }),
  )
}

const simulateSubmit = (b: Batch, value = 10n ** 17n) =>
  node().simulateContract({ address: market(), abi: InferenceMarket.abi, functionName: 'submitBatch', args: batchArgs(b), value })

const marketRequest = (mid: bigint) =>
  hub().readContract({ address: market(), abi: InferenceMarket.abi, functionName: 'getRequest', args: [mid] })

const spokeRequest = (m: Pick<Made, 'spoke' | 'id'>) =>
  stack.spokes[m.spoke]!.user.readContract({
    address: spokeOf(m.spoke).spoke.gateway,
    abi: SpokeGateway.abi,
    functionName: 'getRequest',
    args: [m.id],
  })

/** The spoke gateway's InferenceFulfilled events of request `m`. */
const fulfilments = async (m: Pick<Made, 'spoke' | 'id'>) =>
  stack.spokes[m.spoke]!.user.getContractEvents({
    address: spokeOf(m.spoke).spoke.gateway,
    abi: SpokeGateway.abi,
    eventName: 'InferenceFulfilled',
    args: { requestId: m.id },
    fromBlock: 0n,
  })

const settledOnHub = (made: readonly Made[], settlement: number) =>
  waitUntil(
    `the hub's settlement of ${made.length} request(s)`,
    async () => {
      const rs = await Promise.all(made.map((m) => marketRequest(m.mid)))
      return rs.every((r) => r.status === M.Settled && r.settlement === settlement) || undefined
    },
    60_000,
    100,
  )

describe.each([
  ['hyperlane', HL, 0],
  ['layerzero', LZ, 40],
])('a batch for a spoke over %s', (messenger, name, from) => {
  test("verified on the hub, sent in one message, verified once on the spoke: every row fulfilled and called back once (a reverting consumer harms no other row), the node paid once less the rows' rebates, one receipt settles every row on the hub, one release pays each requester its rebate and the rest of its reserve", async () => {
    expect(spokeOf(name).messenger.kind).toBe(messenger)
    const made = await requests(name, 5, from, 1)
    const spokeClient = stack.spokes[name]!.user
    const nodeAddress = node().account.address
    const nodeBefore = await spokeClient.getBalance({ address: nodeAddress })
    const gateway = spokeOf(name).spoke.gateway
    const reserveOf = (m: Made) =>
      spokeClient.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'receiptReserve', args: [m.id] })
    const reservesBefore = await Promise.all(made.map(reserveOf))
    const b = await proveBatch(made)
    const receipt = await submitBatch(b)
    const [dispatched] = parseEventLogs({ abi: InferenceMarket.abi, eventName: 'BatchDispatched', logs: receipt.logs })
    expect(dispatched?.args).toMatchObject({ node: nodeAddress, size: SIZE, marketRequestIds: b.mids })
    for (const m of made) expect(await marketRequest(m.mid)).toMatchObject({ status: M.ResultSent, node: nodeAddress })

    // One delivery on the spoke settles every row.
    const events = await waitUntil(
      'the batch on the spoke',
      async () => {
        const es = await Promise.all(made.map(fulfilments))
        return es.every((e) => e.length === 1) ? es.map((e) => e[0]!) : undefined
      },
      60_000,
      100,
    )
    expect(new Set(events.map((e) => e.transactionHash)).size).toBe(1)
    const delivery = await spokeClient.getTransactionReceipt({ hash: events[0]!.transactionHash })
    console.log(`${messenger} spoke delivery of ${made.length} rows in ${SIZE}: ${delivery.gasUsed} gas`)
    const outLen = b.outputs.length / SIZE
    for (const [i, m] of made.entries()) {
      expect((await spokeRequest(m)).status).toBe(S.Fulfilled)
      const e = events[i]!.args
      expect(e.output).toEqual(b.outputs.slice(i * outLen, (i + 1) * outLen))
      expect(e.node).toBe(nodeAddress)
      expect(e.callbackStatus).toBe(i === 0 ? CALLBACK.Failed : CALLBACK.Succeeded)
      if (i > 0) {
        const out = await spokeClient.readContract({
          address: m.consumer,
          abi: RecordingConsumer.abi,
          functionName: 'outputOf',
          args: [m.id],
        })
        expect(out).toEqual(e.output)
      }
    }
    // Paid once: the escrows together, less each row's rebate (the verification shared by 5 rows).
    const config = await spokeClient.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'config' })
    const rebate = batchRebateOf(config, made.length)
    expect(rebate).toBeGreaterThan(0n)
    const escrows = made.reduce((sum, m) => sum + m.escrow, 0n)
    expect(await spokeClient.getBalance({ address: nodeAddress })).toBe(nodeBefore + escrows - rebate * BigInt(made.length))
    const [rebated] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'BatchRebate', logs: delivery.logs })
    expect(rebated?.args).toEqual({ requestIds: made.map((m) => m.id), rebate })
    // The quote says so: a request settled with 4 others ends up paying quoteBatched(5).
    const [single, batched] = await Promise.all([
      spokeClient.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'quote', args: [modelId(), 200_000] }),
      spokeClient.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'quoteBatched', args: [modelId(), 200_000, 5] }),
    ])
    expect(single - batched).toBe(rebate)
    const [sent] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'BatchReceiptSent', logs: delivery.logs })
    expect(sent?.args).toMatchObject({ status: S.Fulfilled, requestIds: made.map((m) => m.id) })
    expect(parseEventLogs({ abi: SpokeGateway.abi, eventName: 'ReceiptSent', logs: delivery.logs })).toEqual([])

    // The receipt settles every row on the hub.
    await settledOnHub(made, S.Fulfilled)

    // The batch left the reserves in place; releasing pays each requester its rebate and its
    // reserve less its share of the one receipt's fee (in proportion, rounded up), once.
    expect(await Promise.all(made.map(reserveOf))).toEqual(reservesBefore)
    const total = reservesBefore.reduce((a, r) => a + r, 0n)
    const fee = sent!.args.fee!
    const release = (ids = made.map((m) => m.id)) =>
      spokeClient.simulateContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'releaseBatch', args: [ids] })
    // Other ids (a subset) name no batch.
    expect((await expectRevert(release(made.slice(1).map((m) => m.id)))).errorName).toBe('GatewayNoBatchClaim')
    const owedTo = new Map<Address, bigint>()
    for (const [i, m] of made.entries()) {
      const r = reservesBefore[i]!
      const rest = total === 0n ? 0n : r - (fee * r + total - 1n) / total
      owedTo.set(m.consumer, (owedTo.get(m.consumer) ?? 0n) + rebate + rest)
    }
    const before = await Promise.all([...owedTo.keys()].map((a) => spokeClient.getBalance({ address: a })))
    await confirm(spokeClient, await spokeClient.writeContract((await release()).request))
    for (const [i, [a, owed]] of [...owedTo].entries()) expect(await spokeClient.getBalance({ address: a })).toBe(before[i]! + owed)
    for (const m of made) expect(await reserveOf(m)).toBe(0n)
    expect((await expectRevert(release())).errorName).toBe('GatewayNoBatchClaim')
  }, 300_000)
})

describe('batches the hub market refuses (changing nothing)', () => {
  let made: Made[]
  let good: Batch

  beforeAll(async () => {
    made = await requests(HL, 3, 80)
    good = await proveBatch(made)
  }, 300_000)

  test('a tampered row: ResultInvalidProof', async () => {
    const outputs = good.outputs.map((v, i) => (i === 0 ? v + 1n : v))
    expect(await expectRevert(simulateSubmit({ ...good, outputs }))).toEqual({ errorName: 'ResultInvalidProof', args: [made[0]!.mid] })
  })

  test('rows swapped (each bound to the other request): ResultInputMismatch', async () => {
    const mids = [made[1]!.mid, made[0]!.mid, ...good.mids.slice(2)]
    expect(await expectRevert(simulateSubmit({ ...good, mids }))).toEqual({ errorName: 'ResultInputMismatch', args: [made[1]!.mid] })
  })

  test('a padding row claiming a request: ResultInputMismatch', async () => {
    const mids = [0n, ...good.mids.slice(1, SIZE - 1), made[0]!.mid]
    expect(await expectRevert(simulateSubmit({ ...good, mids }))).toEqual({ errorName: 'ResultInputMismatch', args: [made[0]!.mid] })
  })

  test('rows of two spokes: MarketBatchMixesRequests', async () => {
    const [other] = await requests(LZ, 1, 90)
    const b = await proveBatch([made[0]!, other!])
    expect(await expectRevert(simulateSubmit(b))).toEqual({ errorName: 'MarketBatchMixesRequests', args: [other!.mid] })
  })

  test('the wrong size for its rows, and no row naming a request: MarketBatchShapeMismatch', async () => {
    expect(await expectRevert(simulateSubmit({ ...good, mids: good.mids.slice(0, 8) }))).toEqual({
      errorName: 'MarketBatchShapeMismatch',
      args: [SIZE, 8n],
    })
    expect(await expectRevert(simulateSubmit({ ...good, mids: good.mids.map(() => 0n) }))).toEqual({
      errorName: 'MarketBatchShapeMismatch',
      args: [SIZE, 0n],
    })
  })

  test('nothing changed; the genuine batch then goes, and a second submission reverts MarketRequestNotOpen', async () => {
    for (const m of made) expect((await marketRequest(m.mid)).status).toBe(M.Open)
    await submitBatch(good)
    expect(await expectRevert(simulateSubmit(good))).toEqual({ errorName: 'MarketRequestNotOpen', args: [made[0]!.mid, M.ResultSent] })
    await settledOnHub(made, S.Fulfilled)
  }, 120_000)
})

describe("batches from the spoke's authenticated hub route that the spoke's own checks decide", () => {
  /** A TestHubDispatcher on the hub that the hub's port lets send; the spoke's owner points its hub route at it. */
  let dispatcher: Address

  beforeAll(async () => {
    dispatcher = await deployHubDispatcher(stack)
  })

  /** Sends `body` from the dispatcher to the HL spoke's gateway while the gateway's hub route points at it. */
  async function fromRoute(body: Hex, gas: bigint): Promise<void> {
    expect(await fromHubRoute(stack, dispatcher, HL, body, gas)).toBe(true)
  }

  /** A RESULT_BATCH body as the market encodes it: the rows packed at 8 bytes per element. */
  const batchBody = (b: Batch) =>
    encodePacked(
      ['uint8', 'bytes'],
      [
        6,
        encodeAbiParameters(
          parseAbiParameters(
            '(uint16 size, uint256[] requestIds, uint8 width, bytes inputs, bytes outputs, bytes proof, (bytes32 output, bytes32 proof) refs, address node)',
          ),
          [
            {
              size: SIZE,
              requestIds: b.ids,
              width: 8,
              inputs: packed(b.inputs, 8),
              outputs: packed(b.outputs, 8),
              proof: b.proof,
              refs: NO_REFS,
              node: node().account.address,
            },
          ],
        ),
      ],
    )

  test('a batch the spoke’s verifier refuses fails every pending row: refunded, called back with InvalidResult, one Failed receipt settles them on the hub', async () => {
    const made = await requests(HL, 2, 100)
    const b = await proveBatch(made)
    const tampered = { ...b, outputs: b.outputs.map((v, i) => (i === 1 ? v + 1n : v)) }
    await fromRoute(batchBody(tampered), 4_000_000n)
    for (const m of made) {
      expect((await spokeRequest(m)).status).toBe(S.Failed)
      const code = await stack.spokes[HL]!.user.readContract({
        address: m.consumer,
        abi: RecordingConsumer.abi,
        functionName: 'errorCodePlusOne',
        args: [m.id],
      })
      expect(code).toBe(BigInt(INVALID_RESULT + 1))
    }
    await settledOnHub(made, S.Failed)
  }, 300_000)

  test('a row whose request was settled before the batch arrived is left alone; the other rows settle', async () => {
    const [first, second] = await requests(HL, 2, 104)
    // The first is answered alone through the market.
    await submitBatch(await proveBatch([first!]))
    await waitUntil('the first settled', async () => ((await spokeRequest(first!)).status === S.Fulfilled ? true : undefined), 60_000, 100)
    // A batch naming both arrives from the route: only the second settles.
    await fromRoute(batchBody(await proveBatch([first!, second!])), 4_000_000n)
    expect((await spokeRequest(second!)).status).toBe(S.Fulfilled)
    expect(await fulfilments(first!)).toHaveLength(1)
    expect(await fulfilments(second!)).toHaveLength(1)
  }, 300_000)
})

describe('the registry records batch circuits per spoke', () => {
  test('every spoke has the hub’s batch circuits recorded for the current version, with VKAs of the same code', async () => {
    const sizes = await hub().readContract({
      address: stack.network.hub.core.registry,
      abi: ModelRegistry.abi,
      functionName: 'getBatchSizes',
      args: [modelId()],
    })
    expect(sizes).toEqual([16, 64])
    const version = (
      await hub().readContract({
        address: stack.network.hub.core.registry,
        abi: ModelRegistry.abi,
        functionName: 'getModel',
        args: [modelId()],
      })
    ).version
    for (const s of stack.network.spokes)
      for (const size of sizes) {
        const [vka, recorded] = await hub().readContract({
          address: stack.network.hub.core.registry,
          abi: ModelRegistry.abi,
          functionName: 'getBatchChainDeployment',
          args: [modelId(), s.chainId, size],
        })
        expect(recorded).toBe(version)
        expect(vka).toBe(s.models[0]!.batches.find((b) => b.size === size)!.vka)
      }
  })
})
