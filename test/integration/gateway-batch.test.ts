/**
 * Batch fulfilment on the hub gateway, on anvil with real EZKL proofs of the demo model's batch
 * circuit of 16 rows (built by `npm run circuits:build`, registered with the model) and the real
 * Halo2 verifier: one proof answers every request it names, each row bound to its request's own
 * input, padding rows bound to none; every request is paid and called back once, in isolation;
 * a tampered row, a row bound to another request, a padding row claiming a request, a request
 * named twice, a replayed batch and a batch from a node the requests are not assigned to are
 * rejected, changing nothing.
 */
import { parseEventLogs, type Address } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { batchRebateOf } from '../../chains/evm/pricing.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { InferenceGateway, ModelRegistry, RecordingConsumer, RevertingConsumer } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { loadBatchArtifacts, loadModelArtifacts, modelDir, type ModelArtifacts } from '../../core/manifest.ts'
import type { ChainPlugin, InferenceProof, ProverPlugin } from '../../core/plugins.ts'
import { requestKey, type ChainId, type InferenceRequest, type ModelId, type RequestId } from '../../core/types.ts'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { evmChain, MemoryCursorStore } from '../../chains/evm/plugin/index.ts'
import { INFERENCE_ERROR_CODES } from '../../core/types.ts'
import { NO_STORAGE_REF } from '../../core/storage-ref.ts'
import { ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { DEV_ONLY } from '../support/artifacts.ts'
import { balanceOf, expectRevert, increaseTime, startTestChain, type TestChain } from '../support/chain.ts'
import { requestFromConsumer, type MadeRequest } from '../support/stack.ts'

const SIZE = 16
const FULFILLED = 2
const PENDING = 1
const CALLBACK = { Succeeded: 0, Failed: 1 } as const
const NO_REFS = { output: NO_STORAGE_REF, proof: NO_STORAGE_REF }

let t: TestChain
let demo: ModelArtifacts
let batch: ModelArtifacts
let prover: ProverPlugin
let recording: Address
let reverting: Address

/** A batch's rows: the requests it answers (0 for padding), and its inputs and outputs, flattened row after row. */
type Batch = { ids: bigint[]; inputs: bigint[]; outputs: bigint[]; proof: InferenceProof }

beforeAll(async () => {
  ;[t, demo] = await Promise.all([startTestChain(), loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)])
  batch = await loadBatchArtifacts(demo, SIZE, DEV_ONLY)
  prover = ezklNativeProver()
  recording = await deployContract(t.user, RecordingConsumer, [t.core.gateway])
  reverting = await deployContract(t.user, RevertingConsumer, [t.core.gateway])
}, 300_000)

afterAll(async () => {
  await prover?.dispose()
  await t?.stop()
})

const stack = () => ({ chain: t })
/** A distinct input per request (k below 112): a point of a small grid inside the model's bound. */
const inputOf = (k: number) =>
  [0.5 * (k % 7) - 1.5, 0.25 * (k % 16) - 2, 1 - 0.125 * (k % 16), (-1) ** k * 0.75].map((x) => quantize(x, demo.manifest.inputScale))
const PADDING = [0n, 0n, 0n, 0n]

/** `n` requests (the first `reverting` of them from a consumer that reverts in its callback), each with its own input. */
async function requests(n: number, reverts = 0, from = 0): Promise<{ made: MadeRequest[]; inputs: bigint[][] }> {
  const made: MadeRequest[] = []
  const inputs: bigint[][] = []
  for (let i = 0; i < n; i++) {
    const input = inputOf(from + i)
    inputs.push(input)
    made.push(await requestFromConsumer(stack(), i < reverts ? reverting : recording, { input }))
  }
  return { made, inputs }
}

/** Proves rows `rows` (a request id and its input; padding rows after them) with the batch circuit. */
async function proveBatch(rows: { id: bigint; input: bigint[] }[]): Promise<Batch> {
  const padded = [...rows, ...Array.from({ length: SIZE - rows.length }, () => ({ id: 0n, input: PADDING }))]
  const inputs = padded.flatMap((r) => r.input)
  const proof = await prover.proveInference(batch, inputs)
  return { ids: padded.map((r) => r.id), inputs, outputs: proof.output, proof }
}

function fulfilBatch(node: SertnClient, b: Batch, over: Partial<Pick<Batch, 'ids' | 'inputs' | 'outputs'>> & { size?: number } = {}) {
  return node.simulateContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'fulfillBatch',
    args: [over.size ?? SIZE, over.ids ?? b.ids, over.inputs ?? b.inputs, over.outputs ?? b.outputs, b.proof.proof, NO_REFS],
    account: node.account,
    gas: 12_000_000n,
  })
}

const statusOf = async (id: bigint) =>
  (await t.owner.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [id] })).status

describe('InferenceGateway.fulfillBatch', () => {
  let made: MadeRequest[]
  let good: Batch
  let rebate = 0n

  beforeAll(async () => {
    const r = await requests(10, 2)
    made = r.made
    good = await proveBatch(made.map((m, i) => ({ id: m.id, input: r.inputs[i]! })))
  }, 300_000)

  test('the registry lists the model’s batch circuits, each with its own pinned VKA', async () => {
    const sizes = await t.owner.readContract({
      address: t.core.registry,
      abi: ModelRegistry.abi,
      functionName: 'getBatchSizes',
      args: [t.demo.modelId],
    })
    expect([...sizes]).toEqual(demo.manifest.batches!.map((b) => b.size))
    const terms = await t.owner.readContract({
      address: t.core.registry,
      abi: ModelRegistry.abi,
      functionName: 'tryGetBatchVerificationTerms',
      args: [t.demo.modelId, SIZE],
    })
    expect(terms.vka).not.toBe(t.demo.vka)
    expect(await t.owner.getCode({ address: terms.vka }).then((c) => c && c.length > 2)).toBe(true)
  })

  test('error: a tampered row (one output changed) fails the proof; nothing changes', async () => {
    const outputs = [...good.outputs]
    outputs[3] = outputs[3]! + 1n
    expect(await expectRevert(fulfilBatch(t.node, good, { outputs }))).toEqual({ errorName: 'ResultInvalidProof', args: [made[0]!.id] })
  })

  test('error: rows bound to other requests (two ids swapped) are refused: each row must be its request’s own input', async () => {
    const ids = [...good.ids]
    ;[ids[0], ids[1]] = [ids[1]!, ids[0]!]
    expect(await expectRevert(fulfilBatch(t.node, good, { ids }))).toEqual({ errorName: 'ResultInputMismatch', args: [ids[0]] })
  })

  test('error: a padding row claiming a request is refused (its row is not that request’s input)', async () => {
    const extra = await requests(1, 0, 40)
    const ids = [...good.ids]
    ids[SIZE - 1] = extra.made[0]!.id
    expect(await expectRevert(fulfilBatch(t.node, good, { ids }))).toEqual({ errorName: 'ResultInputMismatch', args: [extra.made[0]!.id] })
  })

  test('error: the wrong batch size, or a node the requests are not assigned to, is refused', async () => {
    expect(await expectRevert(fulfilBatch(t.node, good, { size: 8 }))).toEqual({
      errorName: 'GatewayBatchShapeMismatch',
      args: [8n, BigInt(SIZE)],
    })
    const other = t.stranger
    expect(await expectRevert(fulfilBatch(other, good))).toMatchObject({ errorName: 'NodeRegistryNotAssigned' })
  })

  test('every request of the batch is fulfilled once, paid to the node less its rebate, and called back in isolation (a reverting consumer harms no other row)', async () => {
    const before = await balanceOf(t.owner, t.node.account.address)
    const { request } = await fulfilBatch(t.node, good)
    const hash = await t.node.writeContract(request)
    const receipt = await t.node.waitForTransactionReceipt({ hash })
    expect(receipt.status).toBe('success')
    const events = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceFulfilled' })
    expect(events.map((e) => e.args.requestId)).toEqual(made.map((m) => m.id))
    for (const [i, e] of events.entries()) {
      expect(e.args.node).toBe(t.node.account.address)
      expect(e.args.output).toEqual(good.outputs.slice(i * 3, i * 3 + 3))
      expect(e.args.callbackStatus).toBe(i < 2 ? CALLBACK.Failed : CALLBACK.Succeeded)
    }
    for (const [i, m] of made.entries()) {
      expect(await statusOf(m.id)).toBe(FULFILLED)
      if (i >= 2)
        expect(
          await t.owner.readContract({ address: recording, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [m.id] }),
        ).toEqual(good.outputs.slice(i * 3, i * 3 + 3))
    }
    // The node gets the escrows less each row's rebate: the verification is shared by the 10 rows.
    const config = await t.owner.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'config' })
    rebate = batchRebateOf(config, made.length)
    expect(rebate).toBeGreaterThan(0n)
    const paid = made.reduce((a, m) => a + m.escrow, 0n) - rebate * BigInt(made.length)
    const gas = receipt.gasUsed * receipt.effectiveGasPrice
    expect(await balanceOf(t.owner, t.node.account.address)).toBe(before + paid - gas)
    const [rebated] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'BatchRebate' })
    expect(rebated?.args).toEqual({ requestIds: made.map((m) => m.id), rebate })
    console.log(
      `batch of ${made.length} requests in ${SIZE} rows: ${receipt.gasUsed} gas, ${receipt.gasUsed / BigInt(made.length)} per request`,
    )
  })

  test('the quote says what a batched request ends up paying; one release pays each requester its rebate, once', async () => {
    const batched = (rows: number) =>
      t.owner.readContract({
        address: t.core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'quoteBatched',
        args: [t.demo.modelId, 200_000, rows],
      })
    const single = await t.owner.readContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'quote',
      args: [t.demo.modelId, 200_000],
    })
    expect(single - (await batched(made.length))).toBe(rebate)
    // Larger batches share more; a lone row saves nothing.
    expect(await batched(64)).toBeLessThan(await batched(16))
    expect(await batched(1)).toBe(single)
    const release = (ids: bigint[]) =>
      t.owner.simulateContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'releaseBatch', args: [ids] })
    expect((await expectRevert(release(made.slice(1).map((m) => m.id)))).errorName).toBe('GatewayNoBatchClaim')
    // Each consumer's due: a refusing one (the reverting consumer) is owed it, to withdraw.
    const due = async (a: Address) =>
      (await balanceOf(t.owner, a)) +
      (await t.owner.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'owed', args: [a] }))
    const before = { reverting: await due(reverting), recording: await due(recording) }
    await t.owner.waitForTransactionReceipt({ hash: await t.owner.writeContract((await release(made.map((m) => m.id))).request) })
    expect(await due(reverting)).toBe(before.reverting + 2n * rebate)
    expect(await due(recording)).toBe(before.recording + 8n * rebate)
    expect((await expectRevert(release(made.map((m) => m.id)))).errorName).toBe('GatewayNoBatchClaim')
  })

  test('error: the same batch again is a replay: its requests are no longer pending', async () => {
    expect(await expectRevert(fulfilBatch(t.node, good))).toMatchObject({
      errorName: 'GatewayRequestNotPending',
      args: [made[0]!.id, FULFILLED],
    })
  })

  test('error: a request named on two rows is refused whole (its second row finds it settled); nothing changes', async () => {
    const r = await requests(2, 0, 20)
    const b = await proveBatch([
      { id: r.made[0]!.id, input: r.inputs[0]! },
      { id: r.made[0]!.id, input: r.inputs[0]! },
      { id: r.made[1]!.id, input: r.inputs[1]! },
    ])
    expect(await expectRevert(fulfilBatch(t.node, b))).toMatchObject({
      errorName: 'GatewayRequestNotPending',
      args: [r.made[0]!.id, FULFILLED],
    })
    for (const m of r.made) expect(await statusOf(m.id)).toBe(PENDING)
  })

  test('error: a batch naming no request is refused', async () => {
    const b = await proveBatch([])
    expect(await expectRevert(fulfilBatch(t.node, b))).toEqual({ errorName: 'GatewayBatchShapeMismatch', args: [BigInt(SIZE), 0n] })
  })
})

describe('the EVM chain plugin’s fulfillBatch', () => {
  let chain: ChainPlugin

  beforeAll(() => {
    chain = evmChain({
      chainName: 'anvil',
      chainId: t.anvil.chain.id,
      rpcUrl: t.anvil.rpcUrl,
      gateway: t.core.gateway,
      account: anvilAccount(1), // t.node's account
      cursorStore: new MemoryCursorStore(),
      pollingIntervalMs: 20,
    })
  })

  afterAll(async () => {
    await chain?.dispose()
  })

  /** The request as the watcher would hand it over. */
  const requestOf = (m: MadeRequest, input: bigint[]): InferenceRequest => ({
    key: requestKey(t.anvil.chain.id as ChainId, t.core.gateway, m.id),
    chainId: t.anvil.chain.id as ChainId,
    gateway: t.core.gateway,
    requestId: m.id.toString() as RequestId,
    modelId: t.demo.modelId as ModelId,
    modelVersion: 1,
    requester: recording,
    input: input.map(String),
    callbackGasLimit: 200_000,
    escrow: m.escrow.toString(),
    deadline: 2 ** 40,
    seenAt: { blockNumber: m.block.toString(), blockHash: '0x', transactionHash: m.hash, logIndex: 0 },
  })

  test('a request settled another way meanwhile goes as a padding row of the same proof; the rest are fulfilled once; a retry sends nothing', async () => {
    const r = await requests(3, 0, 60)
    const b = await proveBatch(r.made.map((m, i) => ({ id: m.id, input: r.inputs[i]! })))
    const rows = [...r.made.map((m, i) => requestOf(m, r.inputs[i]!)), ...Array.from({ length: SIZE - 3 }, () => undefined)]
    const batchOf = { size: SIZE, rows, inputs: b.inputs.map(String), outputs: b.outputs.map(String), proof: b.proof.proof }
    // The node fails the second request (its job is this node's) before the batch lands.
    const failed = await t.node.writeContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'fail',
      args: [r.made[1]!.id, INFERENCE_ERROR_CODES.indexOf('ModelFailed'), 'settled before the batch'],
    })
    await t.node.waitForTransactionReceipt({ hash: failed })
    const outcome = await chain.fulfillBatch(batchOf)
    expect(outcome.transactionHash).toMatch(/^0x/)
    expect(outcome.rows).toEqual({
      [rows[0]!.key]: { status: 'Fulfilled', alreadySettled: false },
      [rows[1]!.key]: { status: 'Failed', alreadySettled: true },
      [rows[2]!.key]: { status: 'Fulfilled', alreadySettled: false },
    })
    expect(await statusOf(r.made[0]!.id)).toBe(FULFILLED)
    expect(await statusOf(r.made[2]!.id)).toBe(FULFILLED)
    // A retry (a worker restarted after sending) finds every row settled and sends nothing.
    const again = await chain.fulfillBatch(batchOf)
    expect(again.transactionHash).toBeUndefined()
    expect(again.rows).toEqual({
      [rows[0]!.key]: { status: 'Fulfilled', alreadySettled: true },
      [rows[1]!.key]: { status: 'Failed', alreadySettled: true },
      [rows[2]!.key]: { status: 'Fulfilled', alreadySettled: true },
    })
  })

  test('a request whose deadline passed before the batch landed goes as a padding row; the rest are fulfilled', async () => {
    // The first request gets a short deadline (the owner shortens the timeout for it, then restores it).
    const config = await t.owner.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'config' })
    const setTimeout_ = async (requestTimeout: number) =>
      t.owner.waitForTransactionReceipt({
        hash: await t.owner.writeContract({
          address: t.core.gateway,
          abi: InferenceGateway.abi,
          functionName: 'setConfig',
          args: [{ ...config, requestTimeout }],
        }),
      })
    await setTimeout_(30)
    const short = await requests(1, 0, 80)
    await setTimeout_(config.requestTimeout)
    const rest = await requests(2, 0, 81)
    const made = [...short.made, ...rest.made]
    const inputs = [...short.inputs, ...rest.inputs]
    const b = await proveBatch(made.map((m, i) => ({ id: m.id, input: inputs[i]! })))
    await increaseTime(t.owner, 60)
    const rows = [...made.map((m, i) => requestOf(m, inputs[i]!)), ...Array.from({ length: SIZE - 3 }, () => undefined)]
    const outcome = await chain.fulfillBatch({
      size: SIZE,
      rows,
      inputs: b.inputs.map(String),
      outputs: b.outputs.map(String),
      proof: b.proof.proof,
    })
    expect(outcome.rows).toEqual({
      [rows[0]!.key]: { status: 'Pending', alreadySettled: false, expired: true },
      [rows[1]!.key]: { status: 'Fulfilled', alreadySettled: false },
      [rows[2]!.key]: { status: 'Fulfilled', alreadySettled: false },
    })
    expect(await statusOf(made[0]!.id)).toBe(PENDING)
    expect(await statusOf(made[1]!.id)).toBe(FULFILLED)
  })

  test('error: a tampered output is a non-retryable rejection', async () => {
    const r = await requests(1, 0, 70)
    const b = await proveBatch([{ id: r.made[0]!.id, input: r.inputs[0]! }])
    const outputs = b.outputs.map(String)
    outputs[0] = String(BigInt(outputs[0]!) + 1n)
    const rows = [requestOf(r.made[0]!, r.inputs[0]!), ...Array.from({ length: SIZE - 1 }, () => undefined)]
    const err = await chain
      .fulfillBatch({ size: SIZE, rows, inputs: b.inputs.map(String), outputs, proof: b.proof.proof })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'InvalidProofError', retryable: false })
    expect(await statusOf(r.made[0]!.id)).toBe(PENDING)
  })
})
