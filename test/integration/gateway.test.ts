/**
 * The inference gateway on anvil with real EZKL proofs and the real Halo2 verifier: a request is
 * fulfilled only with a proof for its own input and the delivered output, through the model's
 * pinned verifying key, at most once, by the node the node registry assigned it to (its job there
 * closed by the fulfilment, a failure or a refund); consumers cannot harm settlement.
 */
import { DEV_ONLY } from '../support/artifacts.ts'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { keccak256, parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  EthRefusingConsumer,
  ExampleClassifier,
  GasGuzzlerConsumer,
  InferenceGateway,
  ModelRegistry,
  NodeRegistry,
  RecordingConsumer,
  ReturnBombConsumer,
  RevertingConsumer,
} from '../../contracts/artifacts/index.ts'
import {
  circuitParamsOf,
  confirm,
  deployContract,
  modelIdOf,
  registerModel,
  vkaBytecode,
  writeWithMargin,
  type RegisteredModel,
} from '../../chains/evm/deploy.ts'
import { localArtifactRefs } from '../../core/artifacts.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { dequantize, quantize } from '../../core/field.ts'
import { NO_STORAGE_REF } from '../../core/storage-ref.ts'
import { loadModelArtifacts, modelDir, type ModelArtifacts } from '../../core/manifest.ts'
import { createEzklWasmProver, type EzklWasmProver, type InferenceProof } from '../../plugins/provers/ezkl-wasm/index.ts'
import { createOnnxRuntime, type OnnxRuntime } from '../../plugins/runtimes/onnx/index.ts'
import { balanceOf, expectRevert, increaseTime, joinPools, startTestChain, type TestChain } from '../support/chain.ts'

const PENDING = 1
const FULFILLED = 2
const FAILED = 3
const REFUNDED = 4
const CALLBACK = { Succeeded: 0, Failed: 1, Skipped: 2 } as const
/** A job's states in the node registry (NodeRegistry.JobState). */
const JOB = { Queued: 1, Assigned: 2, Closed: 3 } as const
const GAS = 200_000
const NO_REFS = { output: NO_STORAGE_REF, proof: NO_STORAGE_REF }

let t: TestChain
let demo: ModelArtifacts
let twin: ModelArtifacts
let prover: EzklWasmProver
let runtime: OnnxRuntime
let inputA: bigint[]
let inputB: bigint[]
let proofA: InferenceProof
let proofB: InferenceProof
let twinProofA: InferenceProof
let recording: Address

beforeAll(async () => {
  ;[t, demo, twin] = await Promise.all([
    startTestChain(),
    loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY),
    loadModelArtifacts(modelDir('sertn-mlp-twin'), DEV_ONLY),
  ])
  prover = createEzklWasmProver()
  runtime = createOnnxRuntime()
  const sample = JSON.parse(readFileSync(join(modelDir('sertn-mlp-demo'), 'input.json'), 'utf8')) as {
    input_data: number[][]
  }
  inputA = sample.input_data[0]!.map((x) => quantize(x, demo.manifest.inputScale))
  inputB = [1.5, -2.25, 0.125, 3].map((x) => quantize(x, demo.manifest.inputScale))
  proofA = await prover.proveInference(demo, inputA)
  proofB = await prover.proveInference(demo, inputB)
  twinProofA = await prover.proveInference(twin, inputA)
  recording = await deployContract(t.user, RecordingConsumer, [t.core.gateway])
})

afterAll(async () => {
  await prover?.dispose()
  await runtime?.dispose()
  await t?.stop()
})

// ─────────────────────────────── helpers ───────────────────────────────

async function quote(modelId: Hex = t.demo.modelId, gas = GAS): Promise<bigint> {
  return t.user.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'quote', args: [modelId, gas] })
}

/** Requests through a test consumer (deployed at `consumer`), paying the quote. */
async function request(consumer: Address, input: bigint[], opts: { gas?: number; modelId?: Hex; value?: bigint } = {}) {
  const value = opts.value ?? (await quote(opts.modelId, opts.gas))
  const { request, result } = await t.user.simulateContract({
    address: consumer,
    abi: RecordingConsumer.abi,
    functionName: 'request',
    args: [opts.modelId ?? t.demo.modelId, input, opts.gas ?? GAS],
    value,
  })
  await confirm(t.user, await t.user.writeContract(request))
  return result
}

function simulateFulfil(client: SertnClient, id: bigint, input: bigint[], output: bigint[], proof: Hex, gas?: bigint) {
  return client.simulateContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'fulfill',
    args: [id, input, output, proof, NO_REFS],
    ...(gas ? { gas } : {}),
  })
}

async function fulfil(id: bigint, input: bigint[], p: { output: bigint[]; proof: Hex }) {
  const { request } = await simulateFulfil(t.node, id, input, p.output, p.proof)
  const receipt = await confirm(t.node, await t.node.writeContract(request))
  const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceFulfilled' })
  return { receipt, event: event! }
}

async function requestOf(id: bigint) {
  return t.user.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [id] })
}

async function expectPending(id: bigint) {
  expect((await requestOf(id)).status).toBe(PENDING)
}

/** Request `id`'s job in the node registry (the gateway is its market). */
async function jobOf(id: bigint) {
  return t.user.readContract({ address: t.core.nodeRegistry, abi: NodeRegistry.abi, functionName: 'jobOf', args: [t.core.gateway, id] })
}

// ─────────────────────────────── tests ─────────────────────────────────

describe('fulfilment', () => {
  test('default: request → verified fulfilment → the example consumer holds onnxruntime’s output', async () => {
    const classifier = await deployContract(t.user, ExampleClassifier, [t.core.gateway, t.demo.modelId])
    const price = await t.user.readContract({ address: classifier, abi: ExampleClassifier.abi, functionName: 'price' })
    const { request, result: id } = await t.user.simulateContract({
      address: classifier,
      abi: ExampleClassifier.abi,
      functionName: 'classify',
      args: [inputA],
      value: price,
    })
    const requested = await writeWithMargin(t.user, request)
    // Sent with a fifth more gas than its estimate: an estimate is exact only for the state it ran on.
    expect((await t.user.getTransaction({ hash: requested.transactionHash })).gas).toBeGreaterThanOrEqual((requested.gasUsed * 6n) / 5n)
    const stored = await requestOf(id)
    expect(stored).toMatchObject({ status: PENDING, requester: classifier, modelId: t.demo.modelId, escrow: price })
    // The request is a job in the node registry, assigned to the demo pool's only node.
    expect(await jobOf(id)).toMatchObject({ state: JOB.Assigned, node: t.node.account.address, requester: classifier })

    const nodeBefore = await balanceOf(t.node, t.node.account.address)
    const { receipt, event } = await fulfil(id, inputA, proofA)
    const gasCost = receipt.gasUsed * receipt.effectiveGasPrice
    expect(await balanceOf(t.node, t.node.account.address)).toBe(nodeBefore + price - gasCost)
    expect(event.args).toMatchObject({
      requestId: id,
      node: t.node.account.address,
      output: proofA.output,
      callbackStatus: CALLBACK.Succeeded,
    })
    expect((await requestOf(id)).status).toBe(FULFILLED)
    expect((await jobOf(id)).state).toBe(JOB.Closed)

    const c = await t.user.readContract({ address: classifier, abi: ExampleClassifier.abi, functionName: 'classification', args: [id] })
    const argmax = proofA.output.reduce((best, v, i, a) => (v > a[best]! ? i : best), 0)
    expect(c).toEqual({ status: 2 /* Done */, label: argmax, score: proofA.output[argmax] })
    const [classified] = parseEventLogs({ abi: ExampleClassifier.abi, logs: receipt.logs, eventName: 'Classified' })
    expect(classified!.args).toEqual({ requestId: id, label: argmax, scores: proofA.output })

    // The verified output is the model's output: onnxruntime on the same input agrees within the
    // circuit's fixed-point error.
    const ort = await runtime.run(
      demo,
      inputA.map((q) => dequantize(q, demo.manifest.inputScale)),
    )
    const tolerance = 2 * demo.manifest.fidelity.maxAbsError + 2 ** -demo.manifest.outputScale
    for (const [i, x] of ort.output.entries())
      expect(Math.abs(dequantize(event.args.output[i]!, demo.manifest.outputScale) - x)).toBeLessThanOrEqual(tolerance)
  })

  test('behavior: an EOA requester is settled without a callback', async () => {
    const value = await quote()
    const { request, result: id } = await t.user.simulateContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'requestInference',
      args: [t.demo.modelId, inputB, GAS],
      value,
    })
    await confirm(t.user, await t.user.writeContract(request))
    const { event } = await fulfil(id, inputB, proofB)
    expect(event.args.callbackStatus).toBe(CALLBACK.Skipped)
    expect((await requestOf(id)).status).toBe(FULFILLED)
  })
})

describe('rejected results leave the request open', () => {
  let id: bigint
  beforeAll(async () => {
    id = await request(recording, inputA)
  })

  test('error: a tampered proof', async () => {
    const bytes = proofA.proof.slice(2)
    const flipped = (parseInt(bytes.slice(200, 202), 16) ^ 0x01).toString(16).padStart(2, '0')
    const tampered = `0x${bytes.slice(0, 200)}${flipped}${bytes.slice(202)}` as Hex
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, proofA.output, tampered))
    expect(err).toEqual({ errorName: 'ResultInvalidProof', args: [id] })
    await expectPending(id)
  })

  test('error: a valid proof for another input', async () => {
    // Claiming the other input's output for this request's input: the instances do not match.
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, proofB.output, proofB.proof))
    expect(err.errorName).toBe('ResultInvalidProof')
    // Sending the other input itself: it is not the request's input.
    const err2 = await expectRevert(simulateFulfil(t.node, id, inputB, proofB.output, proofB.proof))
    expect(err2).toEqual({ errorName: 'ResultInputMismatch', args: [id] })
    await expectPending(id)
  })

  test('error: a valid proof with a different claimed output', async () => {
    const forged = proofA.output.map((v, i) => (i === 0 ? v + 1n : v))
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, forged, proofA.proof))
    expect(err.errorName).toBe('ResultInvalidProof')
    await expectPending(id)
  })

  test('error: a proof from the same architecture with other weights', async () => {
    expect(twinProofA.output).not.toEqual(proofA.output)
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, twinProofA.output, twinProofA.proof))
    expect(err.errorName).toBe('ResultInvalidProof')
    await expectPending(id)
  })

  test('error: an output of the wrong shape', async () => {
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, proofA.output.slice(1), proofA.proof))
    expect(err).toEqual({ errorName: 'ResultOutputShapeMismatch', args: [3n, 2n] })
    await expectPending(id)
  })

  test('error: fulfilment by a sender the request is not assigned to (the node registry refuses it)', async () => {
    const err = await expectRevert(simulateFulfil(t.stranger, id, inputA, proofA.output, proofA.proof))
    expect(err).toEqual({
      errorName: 'NodeRegistryNotAssigned',
      args: [t.core.gateway, id, t.stranger.account.address, t.node.account.address],
    })
    await expectPending(id)
    expect(await jobOf(id)).toMatchObject({ state: JOB.Assigned, node: t.node.account.address })
  })

  test('error: too little gas to give the callback its limit', async () => {
    const big = await request(recording, inputA, { gas: 1_500_000 })
    const err = await expectRevert(simulateFulfil(t.node, big, inputA, proofA.output, proofA.proof, 1_200_000n))
    expect(err.errorName).toBe('GatewayInsufficientGasForCallback')
    await expectPending(big)
  })

  test('error: a second fulfilment', async () => {
    await fulfil(id, inputA, proofA)
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, proofA.output, proofA.proof))
    expect(err).toEqual({ errorName: 'GatewayRequestNotPending', args: [id, FULFILLED] })
    const outputs = await t.user.readContract({ address: recording, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [id] })
    expect(outputs).toEqual(proofA.output)
  })

  test('error: an unknown request id', async () => {
    const err = await expectRevert(simulateFulfil(t.node, 10_000n, inputA, proofA.output, proofA.proof))
    expect(err).toEqual({ errorName: 'GatewayRequestNotPending', args: [10_000n, 0] })
  })
})

describe('bad requests are refused', () => {
  async function refused(args: { modelId?: Hex; input?: bigint[]; value?: bigint; gas?: number }) {
    const value = args.value ?? (await quote(t.demo.modelId, args.gas ?? GAS))
    return expectRevert(
      t.user.simulateContract({
        address: t.core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'requestInference',
        args: [args.modelId ?? t.demo.modelId, args.input ?? inputA, args.gas ?? GAS],
        value,
      }),
    )
  }

  test('error: an unknown model', async () => {
    const unknown = modelIdOf(t.owner.account.address, 'no-such-model')
    expect(await refused({ modelId: unknown })).toEqual({ errorName: 'GatewayUnknownModel', args: [unknown] })
    expect((await expectRevert(quote(unknown))).errorName).toBe('GatewayUnknownModel')
  })

  test('error: a wrong input shape', async () => {
    expect(await refused({ input: inputA.slice(0, 3) })).toEqual({ errorName: 'GatewayInputShapeMismatch', args: [4n, 3n] })
    expect(await refused({ input: [...inputA, 1n] })).toEqual({ errorName: 'GatewayInputShapeMismatch', args: [4n, 5n] })
  })

  test('error: an oversized input', async () => {
    const huge = Array.from({ length: 1025 }, () => 1n)
    expect(await refused({ input: huge })).toEqual({ errorName: 'GatewayInputTooLarge', args: [1025n, 1024n] })
    const max = BigInt(demo.manifest.maxAbsInput)
    expect(await refused({ input: [inputA[0]!, max + 1n, 0n, 0n] })).toEqual({
      errorName: 'GatewayInputOutOfRange',
      args: [1n, max + 1n, max],
    })
    expect((await refused({ input: [0n, 0n, 0n, -max - 1n] })).errorName).toBe('GatewayInputOutOfRange')
  })

  test('error: an underpaid request', async () => {
    const price = await quote()
    expect(await refused({ value: price - 1n })).toEqual({ errorName: 'GatewayInsufficientPayment', args: [price, price - 1n] })
  })

  test('error: a callback gas limit above the maximum', async () => {
    expect((await refused({ gas: 3_000_000, value: 10n ** 18n })).errorName).toBe('GatewayCallbackGasLimitTooHigh')
  })

  test('error: a deactivated model', async () => {
    const reg = await registerModel(t.owner, {
      registry: t.core.registry,
      model: 'sertn-mlp-demo',
      name: 'sertn-mlp-demo/inactive',
      vka: t.demo.vka,
      allowInsecureSrs: true,
    })
    await confirm(
      t.owner,
      await t.owner.writeContract({
        address: t.core.registry,
        abi: ModelRegistry.abi,
        functionName: 'setActive',
        args: [reg.modelId, false],
      }),
    )
    expect(await refused({ modelId: reg.modelId })).toEqual({ errorName: 'GatewayModelInactive', args: [reg.modelId] })
  })
})

describe('hostile consumers cannot block settlement', () => {
  for (const [name, artifact] of [
    ['a reverting consumer', RevertingConsumer],
    ['a consumer that burns all its gas', GasGuzzlerConsumer],
    ['a return-data bomb', ReturnBombConsumer],
  ] as const) {
    test(`behavior: ${name} still leaves the request fulfilled and the node paid`, async () => {
      const consumer = await deployContract(t.user, artifact, [t.core.gateway])
      const id = await request(consumer, inputA)
      const { escrow } = await requestOf(id)
      const before = await balanceOf(t.node, t.node.account.address)
      const { receipt, event } = await fulfil(id, inputA, proofA)
      expect(event.args.callbackStatus).toBe(CALLBACK.Failed)
      expect((await requestOf(id)).status).toBe(FULFILLED)
      expect(await balanceOf(t.node, t.node.account.address)).toBe(before + escrow - receipt.gasUsed * receipt.effectiveGasPrice)
      if (artifact === GasGuzzlerConsumer) expect(event.args.callbackGasUsed).toBeGreaterThanOrEqual(BigInt(GAS))
    })
  }
})

describe('failure and refunds', () => {
  test('behavior: a node fails a request → error callback and full refund', async () => {
    const id = await request(recording, inputA)
    const { escrow } = await requestOf(id)
    const before = await balanceOf(t.user, recording)
    const { request: tx } = await t.node.simulateContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'fail',
      args: [id, 2, 'model failed: out of memory'],
    })
    const receipt = await confirm(t.node, await t.node.writeContract(tx))
    const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceFailed' })
    expect(event!.args).toMatchObject({ requestId: id, code: 2, callbackStatus: CALLBACK.Succeeded })
    expect(await balanceOf(t.user, recording)).toBe(before + escrow)
    expect((await requestOf(id)).status).toBe(FAILED)
    expect(
      await t.user.readContract({ address: recording, abi: RecordingConsumer.abi, functionName: 'errorCodePlusOne', args: [id] }),
    ).toBe(3n)
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, proofA.output, proofA.proof))
    expect(err).toEqual({ errorName: 'GatewayRequestNotPending', args: [id, FAILED] })
  })

  test('error: only the assigned node fails a request', async () => {
    const id = await request(recording, inputA)
    const err = await expectRevert(
      t.stranger.simulateContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'fail', args: [id, 0, ''] }),
    )
    expect(err).toEqual({
      errorName: 'NodeRegistryNotAssigned',
      args: [t.core.gateway, id, t.stranger.account.address, t.node.account.address],
    })
    await expectPending(id)
  })

  test('error: a request no node serves yet (its model’s pool is empty) is queued, and no one may answer it', async () => {
    const lonely = await registerModel(t.owner, {
      registry: t.core.registry,
      model: 'sertn-mlp-demo',
      name: 'sertn-mlp-demo/no-pool',
      vka: t.demo.vka,
      allowInsecureSrs: true,
    })
    const id = await request(recording, inputA, { modelId: lonely.modelId })
    expect(await jobOf(id)).toMatchObject({ state: JOB.Queued, node: '0x0000000000000000000000000000000000000000' })
    expect(await expectRevert(simulateFulfil(t.node, id, inputA, proofA.output, proofA.proof))).toEqual({
      errorName: 'NodeRegistryNotAssigned',
      args: [t.core.gateway, id, t.node.account.address, '0x0000000000000000000000000000000000000000'],
    })
    await expectPending(id)
    // A requester who chose to fail rather than wait is refused at once, paying nothing.
    const params = {
      modelId: lonely.modelId,
      input: inputA,
      inputRef: `0x${'00'.repeat(32)}` as Hex,
      callbackGasLimit: GAS,
      modelVersion: 0,
      artifactsHash: `0x${'00'.repeat(32)}` as Hex,
      failIfNoCapacity: true,
    }
    const value = await t.user.readContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'quote',
      args: [lonely.modelId, GAS],
    })
    expect(
      await expectRevert(
        t.user.simulateContract({
          address: t.core.gateway,
          abi: InferenceGateway.abi,
          functionName: 'requestInferenceWith',
          args: [params],
          value,
        }),
      ),
    ).toEqual({ errorName: 'GatewayNoCapacity', args: [lonely.modelId] })
    // With capacity (the demo's pool), the same choice is served as usual.
    const { result } = await t.user.simulateContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'requestInferenceWith',
      args: [{ ...params, modelId: t.demo.modelId }],
      value: await t.user.readContract({
        address: t.core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'quote',
        args: [t.demo.modelId, GAS],
      }),
    })
    expect(result).toBeGreaterThan(0n)
  })

  test('behavior: no refund before the deadline; anyone refunds after it, and fulfilment is then refused', async () => {
    const id = await request(recording, inputA)
    const { escrow, deadline } = await requestOf(id)
    const refund = (client: SertnClient) =>
      client.simulateContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'refund', args: [id] })
    expect(await expectRevert(refund(t.stranger))).toEqual({ errorName: 'GatewayRequestNotExpired', args: [id, BigInt(deadline)] })

    await increaseTime(t.owner, 3601)
    expect(await expectRevert(simulateFulfil(t.node, id, inputA, proofA.output, proofA.proof))).toEqual({
      errorName: 'GatewayRequestExpired',
      args: [id, BigInt(deadline)],
    })
    const before = await balanceOf(t.user, recording)
    const { request: tx } = await refund(t.stranger)
    await confirm(t.stranger, await t.stranger.writeContract(tx))
    expect(await balanceOf(t.user, recording)).toBe(before + escrow)
    expect((await requestOf(id)).status).toBe(REFUNDED)
    expect((await jobOf(id)).state).toBe(JOB.Closed) // nobody holds it any more
    expect(
      await t.user.readContract({ address: recording, abi: RecordingConsumer.abi, functionName: 'errorCodePlusOne', args: [id] }),
    ).toBe(6n) // Timeout
    expect(await expectRevert(refund(t.stranger))).toEqual({ errorName: 'GatewayRequestNotPending', args: [id, REFUNDED] })
  })

  test('behavior: a refund the requester refuses is held for withdrawal', async () => {
    const consumer = await deployContract(t.user, EthRefusingConsumer, [t.core.gateway])
    const id = await request(consumer, inputA)
    const { escrow } = await requestOf(id)
    const { request: tx } = await t.node.simulateContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'fail',
      args: [id, 1, 'bad input'],
    })
    await confirm(t.node, await t.node.writeContract(tx))
    expect(await t.user.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'owed', args: [consumer] })).toBe(
      escrow,
    )
    await confirm(t.user, await t.user.writeContract({ address: consumer, abi: EthRefusingConsumer.abi, functionName: 'pull' }))
    expect(await balanceOf(t.user, consumer)).toBe(escrow)
    expect(await t.user.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'owed', args: [consumer] })).toBe(
      0n,
    )
  })
})

describe('the registry pins the circuit', () => {
  let model: RegisteredModel
  beforeAll(async () => {
    model = await registerModel(t.owner, {
      registry: t.core.registry,
      model: 'sertn-mlp-demo',
      name: 'sertn-mlp-demo/versioned',
      allowInsecureSrs: true,
    })
    await joinPools(t, [model.modelId])
  })

  test('behavior: a request made before a circuit update cannot be fulfilled after it', async () => {
    const id = await request(recording, inputA, { modelId: model.modelId })
    const twinDir = modelDir('sertn-mlp-twin')
    const twinVka = await deployContract(t.owner, { abi: [], bytecode: vkaBytecode(twinDir) })
    const code = await t.owner.getCode({ address: twinVka })
    await confirm(
      t.owner,
      await t.owner.writeContract({
        address: t.core.registry,
        abi: ModelRegistry.abi,
        functionName: 'updateCircuit',
        args: [model.modelId, circuitParamsOf(twin.manifest, await localArtifactRefs(twinDir), twinVka, keccak256(code!))],
      }),
    )
    const err = await expectRevert(simulateFulfil(t.node, id, inputA, proofA.output, proofA.proof))
    expect(err).toEqual({ errorName: 'GatewayModelVersionChanged', args: [id, 1, 2] })
    await expectPending(id)
  })

  test('error: only the model owner updates it', async () => {
    const err = await expectRevert(
      t.stranger.simulateContract({
        address: t.core.registry,
        abi: ModelRegistry.abi,
        functionName: 'setComputeUnits',
        args: [model.modelId, 2],
      }),
    )
    expect(err).toEqual({ errorName: 'ModelRegistryNotModelOwner', args: [model.modelId, t.stranger.account.address] })
  })

  test('error: registration needs the fee, a name not taken by the same account, and the VKA code hash', async () => {
    const fee = await t.owner.readContract({ address: t.core.registry, abi: ModelRegistry.abi, functionName: 'registrationFee' })
    expect(fee).toBeGreaterThan(0n)
    const m = await t.owner.readContract({
      address: t.core.registry,
      abi: ModelRegistry.abi,
      functionName: 'getModel',
      args: [t.demo.modelId],
    })
    const artifacts = await localArtifactRefs(modelDir('sertn-mlp-demo'))
    const params = (vkaCodeHash: Hex, computeUnits: number) => ({
      circuit: circuitParamsOf(demo.manifest, artifacts, m.vka, vkaCodeHash),
      computeUnits,
    })
    const register = (who: SertnClient, name: string, value: bigint, vkaCodeHash: Hex = m.vkaCodeHash, computeUnits = 1) =>
      who.simulateContract({
        address: t.core.registry,
        abi: ModelRegistry.abi,
        functionName: 'registerModel',
        args: [name, params(vkaCodeHash, computeUnits)],
        value,
      })
    expect(await expectRevert(register(t.stranger, 'fresh', 0n))).toEqual({
      errorName: 'ModelRegistryWrongRegistrationFee',
      args: [fee, 0n],
    })
    expect(await expectRevert(register(t.owner, 'sertn-mlp-demo', fee))).toEqual({
      errorName: 'ModelRegistryModelExists',
      args: [t.demo.modelId],
    })
    expect((await expectRevert(register(t.stranger, 'fresh', fee, `0x${'11'.repeat(32)}`))).errorName).toBe(
      'ModelRegistryVkaCodeHashMismatch',
    )
    // A model costs at least one compute unit: a node's capacity is spent by them.
    expect(await expectRevert(register(t.stranger, 'fresh', fee, m.vkaCodeHash, 0))).toEqual({
      errorName: 'ModelRegistryZeroComputeUnits',
      args: [],
    })
    // Another account's model of the same name is another model: names cannot be squatted.
    const { result } = await register(t.stranger, 'sertn-mlp-demo', fee)
    expect(result).toBe(modelIdOf(t.stranger.account.address, 'sertn-mlp-demo'))
    expect(result).not.toBe(t.demo.modelId)
  })
})

describe('a model’s fee is its compute units × its pool’s unit price, set by the registry owner', () => {
  const UNITS = 3
  let priced: RegisteredModel
  let gasPart: (gas: number) => bigint
  const on = { address: () => t.core.registry, abi: ModelRegistry.abi }
  const setUnitPrice = (who: SertnClient, modelId: Hex, price: bigint) =>
    who.simulateContract({ address: on.address(), abi: on.abi, functionName: 'setUnitPrice', args: [modelId, price] })
  const setDefaultUnitPrice = (who: SertnClient, price: bigint) =>
    who.simulateContract({ address: on.address(), abi: on.abi, functionName: 'setDefaultUnitPrice', args: [price] })
  const setComputeUnits = (who: SertnClient, modelId: Hex, units: number) =>
    who.simulateContract({ address: on.address(), abi: on.abi, functionName: 'setComputeUnits', args: [modelId, units] })
  /** Sends a call the registry owner (who also owns the model) simulated. */
  const send = async (simulated: Promise<{ request: unknown }>) => {
    const { request } = await simulated
    await confirm(t.owner, await t.owner.writeContract(request as never))
  }
  const unitPriceOf = () => t.user.readContract({ address: on.address(), abi: on.abi, functionName: 'unitPriceOf', args: [priced.modelId] })
  const termsOf = () =>
    t.user.readContract({ address: on.address(), abi: on.abi, functionName: 'tryGetRequestTerms', args: [priced.modelId] })
  const defaultPrice = () => t.user.readContract({ address: on.address(), abi: on.abi, functionName: 'defaultUnitPrice' })

  beforeAll(async () => {
    priced = await registerModel(t.owner, {
      registry: t.core.registry,
      model: 'sertn-mlp-demo',
      name: 'sertn-mlp-demo/priced',
      vka: t.demo.vka,
      computeUnits: UNITS,
      allowInsecureSrs: true,
    })
    const config = await t.user.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'config' })
    gasPart = (gas) => (BigInt(config.fulfillGasOverhead) + BigInt(gas)) * config.gasPrice
  })

  test('default: the quote is computeUnits × the default unit price + (fulfilment overhead + callback gas) × gas price', async () => {
    const price = await defaultPrice()
    expect(price).toBe(10n ** 15n) // deployCore's default: the 1-unit demo model costs 0.001 ETH
    expect(await unitPriceOf()).toBe(price)
    expect(await termsOf()).toMatchObject({ computeUnits: UNITS, fee: BigInt(UNITS) * price })
    expect(await quote(priced.modelId, GAS)).toBe(BigInt(UNITS) * price + gasPart(GAS))
    expect(await quote(priced.modelId, 500_000)).toBe(BigInt(UNITS) * price + gasPart(500_000))
    expect(await quote(t.demo.modelId)).toBe(price + gasPart(GAS)) // the demo model: 1 unit
  })

  test('behavior: the registry owner prices the model’s pool (0: back to the default); the quote follows, and a request escrows it', async () => {
    const price = await defaultPrice()
    await send(setUnitPrice(t.owner, priced.modelId, 7n * 10n ** 14n))
    expect(await unitPriceOf()).toBe(7n * 10n ** 14n)
    expect(await quote(priced.modelId)).toBe(BigInt(UNITS) * 7n * 10n ** 14n + gasPart(GAS))
    expect(await quote(t.demo.modelId)).toBe(price + gasPart(GAS)) // other models keep the default
    const id = await request(recording, inputA, { modelId: priced.modelId })
    expect((await requestOf(id)).escrow).toBe(BigInt(UNITS) * 7n * 10n ** 14n + gasPart(GAS))

    await send(setUnitPrice(t.owner, priced.modelId, 0n))
    expect(await unitPriceOf()).toBe(price)
    expect(await quote(priced.modelId)).toBe(BigInt(UNITS) * price + gasPart(GAS))
  })

  test('behavior: the default unit price prices every pool without its own; the model owner’s compute units scale the fee', async () => {
    const price = await defaultPrice()
    try {
      await send(setDefaultUnitPrice(t.owner, 2n * price))
      expect(await quote(priced.modelId)).toBe(BigInt(UNITS) * 2n * price + gasPart(GAS))
      await send(setComputeUnits(t.owner, priced.modelId, UNITS + 2))
      expect(await quote(priced.modelId)).toBe(BigInt(UNITS + 2) * 2n * price + gasPart(GAS))
      expect(await termsOf()).toMatchObject({ computeUnits: UNITS + 2 })
    } finally {
      await send(setDefaultUnitPrice(t.owner, price))
      await send(setComputeUnits(t.owner, priced.modelId, UNITS))
    }
  })

  test('error: only the registry owner sets unit prices; only the model owner sets compute units, never 0; a fee past 96 bits reverts', async () => {
    const unauthorized = { errorName: 'OwnedUnauthorized', args: [t.stranger.account.address] }
    expect(await expectRevert(setUnitPrice(t.stranger, priced.modelId, 1n))).toEqual(unauthorized)
    expect(await expectRevert(setDefaultUnitPrice(t.stranger, 1n))).toEqual(unauthorized)
    expect(await expectRevert(setComputeUnits(t.stranger, priced.modelId, 1))).toEqual({
      errorName: 'ModelRegistryNotModelOwner',
      args: [priced.modelId, t.stranger.account.address],
    })
    expect(await expectRevert(setComputeUnits(t.owner, priced.modelId, 0))).toEqual({
      errorName: 'ModelRegistryZeroComputeUnits',
      args: [],
    })
    const unknown = modelIdOf(t.owner.account.address, 'no-such-model')
    expect(await expectRevert(setUnitPrice(t.owner, unknown, 1n))).toEqual({
      errorName: 'ModelRegistryUnknownModel',
      args: [unknown],
    })
    const max = 2n ** 96n - 1n
    await send(setUnitPrice(t.owner, priced.modelId, max))
    try {
      expect(await expectRevert(quote(priced.modelId))).toEqual({
        errorName: 'ModelRegistryFeeOverflow',
        args: [priced.modelId, BigInt(UNITS) * max],
      })
    } finally {
      await send(setUnitPrice(t.owner, priced.modelId, 0n))
    }
  })
})

describe('requests with every option: pins, hashed inputs, usage', () => {
  const ZERO: Hex = `0x${'00'.repeat(32)}`
  const paramsFor = (over: Partial<{ modelId: Hex; input: bigint[]; inputRef: Hex; modelVersion: number; artifactsHash: Hex }> = {}) => ({
    modelId: t.demo.modelId,
    input: inputA,
    inputRef: ZERO,
    callbackGasLimit: GAS,
    modelVersion: 0,
    artifactsHash: ZERO,
    failIfNoCapacity: false,
    ...over,
  })
  const requestWith = async (params: ReturnType<typeof paramsFor>, who: SertnClient = t.user) =>
    who.simulateContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'requestInferenceWith',
      args: [params],
      value: await quote(params.modelId),
    })

  test('behavior: a request pinning the current version and artifacts hash is accepted; the pins are checked', async () => {
    const m = await t.owner.readContract({
      address: t.core.registry,
      abi: ModelRegistry.abi,
      functionName: 'getModel',
      args: [t.demo.modelId],
    })
    const { request } = await requestWith(paramsFor({ modelVersion: m.version, artifactsHash: m.artifactsHash }))
    const receipt = await confirm(t.user, await t.user.writeContract(request))
    const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
    expect(event?.args).toMatchObject({ modelId: t.demo.modelId, modelVersion: m.version, inputRef: ZERO, input: inputA })
  })

  test('error: a request pinning another version or other artifacts reverts (GatewayModelVersionMismatch, GatewayModelArtifactsMismatch)', async () => {
    const m = await t.owner.readContract({
      address: t.core.registry,
      abi: ModelRegistry.abi,
      functionName: 'getModel',
      args: [t.demo.modelId],
    })
    expect(await expectRevert(requestWith(paramsFor({ modelVersion: m.version + 1 })))).toEqual({
      errorName: 'GatewayModelVersionMismatch',
      args: [m.version + 1, m.version],
    })
    const other: Hex = `0x${'12'.repeat(32)}`
    expect(await expectRevert(requestWith(paramsFor({ artifactsHash: other })))).toEqual({
      errorName: 'GatewayModelArtifactsMismatch',
      args: [other, m.artifactsHash],
    })
  })

  test('error: a hashed-input request needs a storage reference and a commitment in the field (GatewayMissingInputRef, GatewayInvalidInputCommitment); a public-input model takes its elements', async () => {
    // The conv model takes its input hashed: one commitment instead of 64 elements.
    const conv = await registerModel(t.owner, { registry: t.core.registry, model: 'sertn-conv', allowInsecureSrs: true })
    const ref: Hex = `0x${'cd'.repeat(32)}`
    expect((await expectRevert(requestWith(paramsFor({ modelId: conv.modelId, input: [5n] })))).errorName).toBe('GatewayMissingInputRef')
    const max = (21888242871839275222246405745257275088548364400416034343698204186575808495617n - 1n) / 2n
    expect(await expectRevert(requestWith(paramsFor({ modelId: conv.modelId, input: [max + 1n], inputRef: ref })))).toEqual({
      errorName: 'GatewayInvalidInputCommitment',
      args: [max + 1n],
    })
    expect(await expectRevert(requestWith(paramsFor({ modelId: conv.modelId, input: [1n, 2n], inputRef: ref })))).toEqual({
      errorName: 'GatewayInputShapeMismatch',
      args: [1n, 2n],
    })
    const { request } = await requestWith(paramsFor({ modelId: conv.modelId, input: [-max], inputRef: ref }))
    const receipt = await confirm(t.user, await t.user.writeContract(request))
    const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
    expect(event?.args).toMatchObject({ input: [-max], inputRef: ref })
    // The registry records the model as hashed-input: one instance for 64 elements.
    const m = await t.owner.readContract({
      address: t.core.registry,
      abi: ModelRegistry.abi,
      functionName: 'getModel',
      args: [conv.modelId],
    })
    expect(m).toMatchObject({ inputLength: 1, inputVisibility: 1, outputVisibility: 0, insecureSrs: true })
  })

  test('behavior: the gateway counts each model’s requests, served requests, distinct and repeat requesters in one call', async () => {
    const fresh = await registerModel(t.owner, {
      registry: t.core.registry,
      model: 'sertn-mlp-demo',
      name: 'sertn-mlp-demo/usage',
      vka: t.demo.vka,
      allowInsecureSrs: true,
    })
    const usage = () =>
      t.user.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'modelUsage', args: [fresh.modelId] })
    expect(await usage()).toEqual({ requests: 0n, served: 0n, requesters: 0, repeatRequesters: 0 })
    await joinPools(t, [fresh.modelId])
    const send = async (who: SertnClient) => {
      const { request, result } = await requestWith(paramsFor({ modelId: fresh.modelId }), who)
      await confirm(who, await who.writeContract(request))
      return result
    }
    const first = await send(t.user)
    await send(t.user)
    await send(t.user)
    await send(t.stranger)
    expect(await usage()).toEqual({ requests: 4n, served: 0n, requesters: 2, repeatRequesters: 1 })
    await fulfil(first, inputA, proofA)
    expect(await usage()).toMatchObject({ requests: 4n, served: 1n })
  })
})

describe('consumers', () => {
  test('error: only the gateway can deliver to a SertnConsumer', async () => {
    const err = await expectRevert(
      t.stranger.simulateContract({
        address: recording,
        abi: RecordingConsumer.abi,
        functionName: 'rawOnInferenceResult',
        args: [1n, proofA.output],
      }),
    )
    expect(err).toEqual({ errorName: 'SertnConsumerOnlyGateway', args: [t.stranger.account.address] })
  })
})
