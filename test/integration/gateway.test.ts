/**
 * The inference gateway on anvil with real EZKL proofs and the real Halo2 verifier: a request is
 * fulfilled only with a proof for its own input and the delivered output, through the model's
 * pinned verifying key, at most once, by an authorised node; consumers cannot harm settlement.
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
  type RegisteredModel,
} from '../../chains/evm/deploy.ts'
import { localArtifactRefs } from '../../core/artifacts.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { dequantize, quantize } from '../../core/field.ts'
import { NO_STORAGE_REF } from '../../core/storage-ref.ts'
import { loadModelArtifacts, modelDir, type ModelArtifacts } from '../../core/manifest.ts'
import { createEzklWasmProver, type EzklWasmProver, type InferenceProof } from '../../plugins/provers/ezkl-wasm/index.ts'
import { createOnnxRuntime, type OnnxRuntime } from '../../plugins/runtimes/onnx/index.ts'
import { balanceOf, expectRevert, increaseTime, startTestChain, type TestChain } from '../support/chain.ts'

const PENDING = 1
const FULFILLED = 2
const FAILED = 3
const REFUNDED = 4
const CALLBACK = { Succeeded: 0, Failed: 1, Skipped: 2 } as const
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
    await confirm(t.user, await t.user.writeContract(request))
    const stored = await requestOf(id)
    expect(stored).toMatchObject({ status: PENDING, requester: classifier, modelId: t.demo.modelId, escrow: price })

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

  test('error: fulfilment by an unauthorised sender', async () => {
    const err = await expectRevert(simulateFulfil(t.stranger, id, inputA, proofA.output, proofA.proof))
    expect(err).toEqual({ errorName: 'GatewayUnauthorizedNode', args: [t.stranger.account.address] })
    await expectPending(id)
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

  test('error: only nodes fail requests', async () => {
    const id = await request(recording, inputA)
    const err = await expectRevert(
      t.stranger.simulateContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'fail', args: [id, 0, ''] }),
    )
    expect(err.errorName).toBe('GatewayUnauthorizedNode')
    await expectPending(id)
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
        functionName: 'setPricing',
        args: [model.modelId, 0n, 1],
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
    const params = (vkaCodeHash: Hex) => ({
      circuit: circuitParamsOf(demo.manifest, artifacts, m.vka, vkaCodeHash),
      computeUnits: 1,
      fee: 1n,
    })
    const register = (who: SertnClient, name: string, value: bigint, vkaCodeHash: Hex = m.vkaCodeHash) =>
      who.simulateContract({
        address: t.core.registry,
        abi: ModelRegistry.abi,
        functionName: 'registerModel',
        args: [name, params(vkaCodeHash)],
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
    // Another account's model of the same name is another model: names cannot be squatted.
    const { result } = await register(t.stranger, 'sertn-mlp-demo', fee)
    expect(result).toBe(modelIdOf(t.stranger.account.address, 'sertn-mlp-demo'))
    expect(result).not.toBe(t.demo.modelId)
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
