/**
 * Every model the repository builds from its own code (circuits/sources/make.py, then `sertn model
 * build`): registered on a hub and a spoke with `registerModelOnNetwork` (artifacts uploaded to
 * arlocal) and its pool opened on the hub, requested by a contract on the spoke, served by a node
 * that fetches the artifacts from storage (it has no local copy), proven natively, verified on the
 * hub and again on the spoke, the consumer called back with the output (or, for a hashed output,
 * its commitment and where it is stored). A convolutional model takes a hashed input stored on
 * Arweave. Then the refusals: a stored input that does not match its commitment, an artifact
 * altered in storage, an unregistered model, and a registry whose verifier is not the pinned one.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { formatEther, parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { keccak256 } from 'viem'
import { circuitParamsOf, confirm, deployContract, readManifest } from '../../chains/evm/deploy.ts'
import { recordChainDeployments } from '../../chains/evm/crosschain.ts'
import { openLocalPools } from '../../chains/evm/nodes.ts'
import { registerModelOnNetwork, type NetworkRegistration, type RegistrationChain } from '../../chains/evm/register-model.ts'
import { AcceptingVerifier, InferenceGateway, ModelRegistry, RecordingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { artifactTags, localArtifactRefs, type ArtifactIndex } from '../../core/artifacts.ts'
import { commitmentOf, encodeInputDocument, poseidonOf } from '../../core/commitment.ts'
import { dequantize, quantize } from '../../core/field.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import { createModelStore, modelIdOf } from '../../core/models.ts'
import { base64UrlIdOf, storageRefOf } from '../../core/storage-ref.ts'
import { INFERENCE_ERROR_CODES, requestKey, type RequestKey } from '../../core/types.ts'
import { createOnnxRuntime, type OnnxRuntime } from '../../plugins/runtimes/onnx/index.ts'
import { arweaveStorage } from '../../plugins/storage/arweave/index.ts'
import type { ProverPlugin, StoragePlugin } from '../../core/plugins.ts'
import { createEzklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'
import { publishBacktests, verifyBacktests } from '../../chains/evm/backtests.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { REPO_ROOT, SERTN_CLI } from '../../cli/common.ts'
import { startProcess } from '../../core/process.ts'
import { expectRevert } from '../support/chain.ts'
import { deploySpokeConsumer, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, CALLBACK_GAS, startWorkers, within, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

/** The models of circuits/models.json beyond the demo (which the stack registers itself). */
const ZOO = ['sertn-conv', 'sertn-linreg', 'sertn-trees', 'sertn-svm', 'sertn-svm-rbf', 'sertn-attention'] as const
const INVALID_INPUT = INFERENCE_ERROR_CODES.indexOf('InvalidInput')
const MODEL_UNAVAILABLE = INFERENCE_ERROR_CODES.indexOf('ModelUnavailable')
const FULFILLED = 2
const FAILED = 3

let stack: CrossChainStack
let workers: InProcessWorkers | undefined
let storage: StoragePlugin
let runtime: OnnxRuntime
let consumer: Address
let emptyDir: string
let chains: RegistrationChain[]
const registered = new Map<string, NetworkRegistration>()

const spokeGateway = () => stack.network.spokes[0]!.spoke.gateway
const spokeRegistry = () => stack.network.spokes[0]!.spoke.registry

beforeAll(async () => {
  stack = await startCrossChainStack()
  emptyDir = await mkdtemp(join(tmpdir(), 'sertn-no-models-'))
  const wallet = stack.config.storage.arweave.walletFile!
  storage = arweaveStorage({ host: '127.0.0.1', port: Number(new URL(stack.arlocal.url).port), protocol: 'http', wallet })
  runtime = createOnnxRuntime()
  // The node has no model directory: everything it serves comes from storage, checked against the registries.
  const config = {
    ...stack.config,
    prover: { ...stack.config.prover, plugin: 'ezkl-native' as const },
    models: { ...stack.config.models, dir: emptyDir, cacheDir: join(stack.dataDir, 'models') },
  }
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  consumer = await deploySpokeConsumer(stack)
  chains = [
    { name: 'hub', client: stack.hub.owner, registry: stack.network.hub.core.registry, hub: true },
    { name: 'spoke', client: stack.spoke.owner, registry: spokeRegistry() },
  ]
  for (const name of ZOO) registered.set(name, await registerModelOnNetwork({ model: name, chains, storage, allowInsecureSrs: true }))
  await openPools([...registered.values()].map((r) => r.modelId))
}, 600_000)

afterAll(async () => {
  await boundedTeardown(
    [
      () => workers?.stop(),
      () => storage?.dispose(),
      () => runtime?.dispose(),
      () => stack?.stop(),
      () => (emptyDir ? rm(emptyDir, { recursive: true, force: true }) : undefined),
    ],
    { processGroups: () => stack?.processGroups() ?? [] },
  )
})

/**
 * Opens the hub pools of models registered after the network was deployed: the stack's nodes join
 * them, active from the next epoch (mined to), so that their requests are assigned.
 */
async function openPools(modelIds: readonly Hex[]): Promise<void> {
  await openLocalPools(stack.local.hub.owner, stack.network.hub.core.nodeRegistry, { models: modelIds, nodes: stack.local.hub.nodes })
}

/** The model's sample input (circuits/<name>/input.json), quantised. */
async function sampleOf(name: string): Promise<bigint[]> {
  const { manifest } = readManifest(name)
  const json = JSON.parse(await readFile(join(modelDir(name), 'input.json'), 'utf8')) as { input_data: number[][] }
  return json.input_data.flat().map((x) => quantize(x, manifest.inputScale))
}

type Made = { id: bigint; key: RequestKey; escrow: bigint /** The consumer's balance once it paid. */; balance: bigint }

/** A request from the consumer on the spoke (with every option), then the confirmation block. */
async function request(params: { modelId: Hex; input: readonly bigint[]; inputRef?: Hex; gas?: number }): Promise<Made> {
  const { user } = stack.spoke
  const gas = params.gas ?? CALLBACK_GAS
  const value = await user.readContract({
    address: spokeGateway(),
    abi: SpokeGateway.abi,
    functionName: 'quote',
    args: [params.modelId, gas],
  })
  const { request: tx } = await user.simulateContract({
    address: consumer,
    abi: RecordingConsumer.abi,
    functionName: 'requestWith',
    args: [
      {
        modelId: params.modelId,
        input: [...params.input],
        inputRef: params.inputRef ?? `0x${'00'.repeat(32)}`,
        callbackGasLimit: gas,
        modelVersion: 0,
        artifactsHash: `0x${'00'.repeat(32)}`,
        failIfNoCapacity: false,
      },
    ],
    value,
  })
  const receipt = await confirm(user, await user.writeContract(tx))
  const balance = await user.getBalance({ address: consumer })
  const [log] = parseEventLogs({ abi: SpokeGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  if (!log) throw new Error('no InferenceRequested')
  await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
  return {
    id: log.args.requestId,
    key: requestKey(stack.spoke.anvil.chain.id, spokeGateway(), log.args.requestId),
    escrow: log.args.escrow,
    balance,
  }
}

/** Stores an input document for a hashed-input model; returns its storage ref. */
async function storeInput(inputQ: readonly bigint[]): Promise<Hex> {
  return storageRefOf(await storage.put(encodeInputDocument(inputQ), { contentType: 'application/json', tags: { 'Sertn-Kind': 'input' } }))
}

async function spokeStatus(id: bigint): Promise<number> {
  return (await stack.spoke.user.readContract({ address: spokeGateway(), abi: SpokeGateway.abi, functionName: 'getRequest', args: [id] }))
    .status
}

/** A request that must end failed with `code`: refunded and called back with the error on the spoke. */
async function expectFailedWithRefund(made: Made, code: number, reason: RegExp) {
  const outcome = await within(180_000, `${made.key}: the outcome`, waitForOutcome(stack.client, made.key, 120_000))
  expect(outcome.stage).toBe('failed')
  expect(outcome.error?.reason).toMatch(reason)
  expect(await spokeStatus(made.id)).toBe(FAILED)
  expect(
    await stack.spoke.user.readContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: 'errorCodePlusOne',
      args: [made.id],
    }),
  ).toBe(BigInt(code + 1))
  expect(outcome.hub?.settlement).toBe('Failed')
  expect(await stack.spoke.user.getBalance({ address: consumer })).toBe(made.balance + made.escrow)
}

describe('every model the repository builds, across chains', () => {
  test.each(ZOO)('%s: registered on the hub and the spoke, requested on the spoke, proven, verified on both, called back', async (name) => {
    const reg = registered.get(name)!
    const model = await loadModelArtifacts(modelDir(name), { allowInsecureSrs: true })
    const { manifest } = model
    const inputQ = await sampleOf(name)

    // Registered alike on both chains, the spoke's VKA recorded on the hub.
    for (const c of chains) {
      const m = await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [reg.modelId] })
      expect(m).toMatchObject({
        version: 1,
        insecureSrs: true,
        computeUnits: manifest.computeUnits,
        artifactsHash: reg.artifacts.manifestHash,
      })
    }
    const dep = await stack.hub.owner.readContract({
      address: chains[0]!.registry,
      abi: ModelRegistry.abi,
      functionName: 'getChainDeployment',
      args: [reg.modelId, stack.spoke.owner.chain.id],
    })
    expect(dep).toMatchObject({ vka: reg.chains.spoke!.vka, version: 1 })

    const hashedInput = manifest.visibility.input === 'hashed'
    // The consumer stores every output element: room for a fresh storage slot each.
    const gas = CALLBACK_GAS + 25_000 * manifest.instances.output
    const made = hashedInput
      ? await request({ modelId: reg.modelId, input: [commitmentOf(inputQ)], inputRef: await storeInput(inputQ), gas })
      : await request({ modelId: reg.modelId, input: inputQ, gas })
    const outcome = await within(240_000, `${name}: the outcome`, waitForOutcome(stack.client, made.key, 180_000))
    expect(outcome.stage).toBe('fulfilled')
    expect(outcome.hub?.settlement).toBe('Fulfilled')
    expect(outcome.model).toEqual({ name, version: 1, artifactsHash: reg.artifacts.manifestHash })
    if (hashedInput) expect(outcome.timings.input?.attempts).toBe(1)
    expect(await spokeStatus(made.id)).toBe(FULFILLED)

    // The delivered output is onnxruntime's, within the circuit's measured tolerance.
    const expected = (
      await runtime.run(
        model,
        inputQ.map((q) => dequantize(q, manifest.inputScale)),
      )
    ).output
    let outputQ: bigint[]
    if (manifest.visibility.output === 'hashed') {
      const r = await stack.spoke.user.readContract({
        address: consumer,
        abi: RecordingConsumer.abi,
        functionName: 'hashedResultOf',
        args: [made.id],
      })
      const doc = JSON.parse(new TextDecoder().decode(await storage.getById!(base64UrlIdOf(r.outputRef), { maxBytes: 1 << 20 }))) as {
        output: string[]
      }
      outputQ = doc.output.map(BigInt)
      expect(poseidonOf(outputQ)).toBe(r.commitment) // the stored output is the committed one
    } else {
      outputQ = [
        ...(await stack.spoke.user.readContract({
          address: consumer,
          abi: RecordingConsumer.abi,
          functionName: 'outputOf',
          args: [made.id],
        })),
      ]
    }
    expect(outputQ).toHaveLength(expected.length)
    for (const [i, q] of outputQ.entries())
      expect(Math.abs(dequantize(q, manifest.outputScale) - expected[i]!)).toBeLessThanOrEqual(manifest.fidelity.tolerance)

    // The spoke gateway counts the model's use.
    const usage = await stack.spoke.user.readContract({
      address: spokeGateway(),
      abi: SpokeGateway.abi,
      functionName: 'modelUsage',
      args: [reg.modelId],
    })
    expect(usage).toMatchObject({ requests: 1n, served: 1n, requesters: 1, repeatRequesters: 0 })
  })
})

describe('refusals', () => {
  test('error: a hashed-input request whose stored input does not match its commitment ends failed (InvalidInput), refunded and called back', async () => {
    const reg = registered.get('sertn-conv')!
    const inputQ = await sampleOf('sertn-conv')
    const other = inputQ.map((q, i) => (i === 0 ? q + 1n : q))
    const made = await request({ modelId: reg.modelId, input: [commitmentOf(inputQ)], inputRef: await storeInput(other) })
    await expectFailedWithRefund(made, INVALID_INPUT, /^InputCommitmentError: the stored input does not match the request's commitment/)
  })

  test('error: a hashed-input request whose stored input is missing ends failed (InvalidInput), refunded', async () => {
    const reg = registered.get('sertn-conv')!
    const inputQ = await sampleOf('sertn-conv')
    const made = await request({ modelId: reg.modelId, input: [commitmentOf(inputQ)], inputRef: `0x${'ab'.repeat(32)}` })
    await expectFailedWithRefund(made, INVALID_INPUT, /not found/)
  })

  test('error: an artifact altered in storage is refused by the node, naming the file and the model → failed (ModelUnavailable), refunded', async () => {
    // The twin (which this node has never served) registered with its genuine hashes, then pointed
    // at an index whose model.compiled entry is other bytes: the registry pins the genuine hashes.
    const dir = modelDir('sertn-mlp-twin')
    const genuine = await localArtifactRefs(dir)
    const reg = await registerModelOnNetwork({ model: dir, name: 'sertn-mlp-twin/altered', chains, storage, allowInsecureSrs: true })
    await openPools([reg.modelId])
    const index = JSON.parse(new TextDecoder().decode(await storage.getById!(reg.index, { maxBytes: 1 << 20 }))) as ArtifactIndex
    const compiled = new Uint8Array(await readFile(join(dir, 'model.compiled')))
    compiled[100] = compiled[100]! ^ 0x01
    const altered = await storage.put(compiled, {
      contentType: 'application/octet-stream',
      tags: artifactTags(genuine.manifestHash, 'model.compiled (altered)'),
    })
    const forged = await storage.put(
      new TextEncoder().encode(JSON.stringify({ ...index, files: { ...index.files, 'model.compiled': altered } })),
      {
        contentType: 'application/json',
        tags: { 'Sertn-Kind': 'altered-index' },
      },
    )
    // Point both registrations at the forged index (the owner updates the circuit's record).
    for (const c of chains) {
      const m = await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [reg.modelId] })
      const code = await c.client.getCode({ address: m.vka })
      await confirm(
        c.client,
        await c.client.writeContract({
          address: c.registry,
          abi: ModelRegistry.abi,
          functionName: 'updateCircuit',
          args: [
            reg.modelId,
            circuitParamsOf(readManifest(dir).manifest, { ...genuine, index: storageRefOf(forged) }, m.vka, keccak256(code!)),
          ],
        }),
      )
    }
    await recordChainDeployments({
      hub: { client: stack.hub.owner, registry: chains[0]!.registry },
      spoke: { client: stack.spoke.owner, domain: stack.spoke.owner.chain.id, registry: chains[1]!.registry },
      models: [reg.chains.spoke!],
    })
    const made = await request({ modelId: reg.modelId, input: await sampleOf('sertn-mlp-twin') })
    await expectFailedWithRefund(
      made,
      MODEL_UNAVAILABLE,
      /^ArtifactHashMismatchError: model sertn-mlp-twin\/altered: artifact model\.compiled has sha256 [0-9a-f]{64} but [0-9a-f]{64} is pinned/,
    )
  })

  test('error: a request for a model no registry has reverts on the spoke (GatewayUnknownModel) and starts nothing', async () => {
    const unknown = modelIdOf(stack.spoke.owner.account.address, 'never-registered')
    const err = await expectRevert(
      stack.spoke.user.simulateContract({
        address: spokeGateway(),
        abi: SpokeGateway.abi,
        functionName: 'requestInference',
        args: [unknown, [1n], CALLBACK_GAS],
        value: 10n ** 17n,
      }),
    )
    expect(err).toEqual({ errorName: 'GatewayUnknownModel', args: [unknown] })
  })

  test('error: a registry whose verifier is not the pinned one: the node refuses to serve (CircuitMismatchError) → failed (ModelUnavailable), refunded', async () => {
    const registry = spokeRegistry()
    const pinned = await stack.spoke.owner.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'verifier' })
    const accepting = await deployContract(stack.spoke.owner, AcceptingVerifier)
    await confirm(
      stack.spoke.owner,
      await stack.spoke.owner.writeContract({ address: registry, abi: ModelRegistry.abi, functionName: 'setVerifier', args: [accepting] }),
    )
    try {
      const made = await request({ modelId: registered.get('sertn-svm')!.modelId, input: await sampleOf('sertn-svm') })
      await expectFailedWithRefund(
        made,
        MODEL_UNAVAILABLE,
        /^CircuitMismatchError: model sertn-svm on chain 31338: its registered verifier is 0x[0-9a-fA-F]{40} \(code hash 0x[0-9a-f]{64}\), but the pinned reusable verifier/,
      )
    } finally {
      await confirm(
        stack.spoke.owner,
        await stack.spoke.owner.writeContract({ address: registry, abi: ModelRegistry.abi, functionName: 'setVerifier', args: [pinned] }),
      )
    }
  })

  test('error: only the registry owner (the protocol) sets the verifier; a model owner cannot', async () => {
    const err = await expectRevert(
      stack.spoke.user.simulateContract({
        address: spokeRegistry(),
        abi: ModelRegistry.abi,
        functionName: 'setVerifier',
        args: [spokeGateway()],
      }),
    )
    expect(err).toEqual({ errorName: 'OwnedUnauthorized', args: [stack.spoke.user.account.address] })
  })
})

describe('verified backtests', () => {
  let prover: ProverPlugin
  beforeAll(() => {
    prover = createEzklWasmProver()
  })
  afterAll(async () => {
    await prover?.dispose()
  })
  const models = () =>
    createModelStore({ dirs: [emptyDir], cacheDir: join(stack.dataDir, 'backtest-models'), storage, allowInsecureSrs: true })
  const verify = (modelId: Hex) =>
    verifyBacktests({ client: stack.hub.owner, registry: chains[0]!.registry, modelId, storage, models: models(), prover, where: 'hub' })

  test('default: the creator publishes proven pairs; anyone verifies every pair against the registered circuit, off-chain and on-chain', async () => {
    const name = 'sertn-svm'
    const reg = registered.get(name)!
    const model = await loadModelArtifacts(modelDir(name), { allowInsecureSrs: true })
    const samples = JSON.parse(await readFile(join(modelDir(name), 'samples.json'), 'utf8')) as { input_data: number[][] }
    const size = 6
    const inputs = Array.from({ length: 4 }, (_, i) =>
      samples.input_data[0]!.slice(i * size, (i + 1) * size).map((x) => quantize(x, model.manifest.inputScale)),
    )
    const published = await publishBacktests({ model, inputs, prover, storage, chains, modelId: reg.modelId })
    expect(published.pairs).toBe(4)
    for (const c of chains)
      expect(
        await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getBacktests', args: [reg.modelId] }),
      ).toEqual({
        ref: published.ref,
        contentHash: published.sha256,
        pairs: 4,
        version: 1,
      })
    const report = await verify(reg.modelId)
    expect(report).toMatchObject({ model: name, version: 1, provenVersion: 1, valid: 4 })
    expect(report.pairs.every((v) => v.bound && v.offChain && v.onChain)).toBe(true)
  })

  test('error: a published pair whose output is not what its proof proves is reported invalid (its instances are not bound to it)', async () => {
    const name = 'sertn-linreg'
    const reg = registered.get(name)!
    const model = await loadModelArtifacts(modelDir(name), { allowInsecureSrs: true })
    const inputQ = await sampleOf(name)
    const proof = await prover.proveInference(model, inputQ)
    const honest = {
      input: inputQ.map(String),
      output: proof.output.map(String),
      proof: JSON.parse(new TextDecoder().decode(proof.proofJson)) as unknown,
    }
    const lying = { ...honest, output: proof.output.map((q, i) => String(i === 0 ? q + 100n : q)) }
    const doc = {
      schema: 1,
      model: name,
      modelId: reg.modelId,
      version: 1,
      artifactsHash: reg.artifacts.manifestHash,
      pairs: [honest, lying],
    }
    const stored = await storage.put(new TextEncoder().encode(JSON.stringify(doc)), {
      contentType: 'application/json',
      tags: { 'Sertn-Backtests': reg.modelId },
    })
    await confirm(
      stack.hub.owner,
      await stack.hub.owner.writeContract({
        address: chains[0]!.registry,
        abi: ModelRegistry.abi,
        functionName: 'publishBacktests',
        args: [reg.modelId, storageRefOf(stored), `0x${stored.sha256}`, 2],
      }),
    )
    const report = await verify(reg.modelId)
    expect(report.valid).toBe(1)
    expect(report.pairs[0]).toMatchObject({ bound: true, offChain: true, onChain: true })
    expect(report.pairs[1]).toMatchObject({
      bound: false,
      offChain: true,
      onChain: true,
      reason: "the proof's instances are not the pair's input and output",
    })
  })

  test('error: only the model owner publishes backtests', async () => {
    const reg = registered.get('sertn-linreg')!
    const err = await expectRevert(
      stack.hub.user.simulateContract({
        address: chains[0]!.registry,
        abi: ModelRegistry.abi,
        functionName: 'publishBacktests',
        args: [reg.modelId, `0x${'01'.repeat(32)}`, `0x${'02'.repeat(32)}`, 1],
      }),
    )
    expect(err).toEqual({ errorName: 'ModelRegistryNotModelOwner', args: [reg.modelId, stack.hub.user.account.address] })
  })
})

describe('the sertn model commands on this network', () => {
  /** Runs `sertn model …` with the stack's configuration; resolves to its exit code and output. */
  async function sertn(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const configFile = join(stack.dataDir, 'cli.config.json')
    await writeFile(configFile, JSON.stringify(stack.config))
    let stdout = ''
    let stderr = ''
    const proc = startProcess({
      name: 'sertn-model',
      command: process.execPath,
      args: ['--import', 'tsx', SERTN_CLI, 'model', ...args, '--config', configFile],
      cwd: REPO_ROOT,
      onLine: (line, stream) => {
        if (stream === 'stdout') stdout += `${line}\n`
        else stderr += `${line}\n`
      },
    })
    const code = await proc.closed
    return { code, stdout, stderr }
  }

  type Pricing = { computeUnits: number; unitPrice: string; fee: string; symbol: string }
  const registryOf = (chain: string) => chains.find((c) => c.name === chain)!.registry
  /** The model's compute units, its pool's unit price and its fee on `client`'s registry `registry`. */
  async function pricingOn(client: (typeof chains)[number]['client'], registry: Address, modelId: Hex) {
    const [terms, unitPrice] = await Promise.all([
      client.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'tryGetRequestTerms', args: [modelId] }),
      client.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'unitPriceOf', args: [modelId] }),
    ])
    return { computeUnits: terms.computeUnits, unitPrice, fee: terms.fee }
  }

  test('default: sertn model register puts a build on every chain (reusing its uploads) at compute units × the pool’s unit price; sertn model show reads it back with its pricing and usage', async () => {
    const r = await sertn(['register', 'circuits/sertn-svm', '--name', 'sertn-svm/cli', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/local stack's dev owner key/)
    const reg = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      modelId: Hex
      uploaded: number
      reused: number
      chains: Record<string, { vka: Address }>
      pricing: Record<string, Pricing>
    }
    expect(reg.modelId).toBe(modelIdOf(stack.hub.owner.account.address, 'sertn-svm/cli'))
    expect(reg.uploaded).toBe(0) // the same build's files were uploaded before: found by tag
    expect(Object.keys(reg.chains).sort()).toEqual(['hub', 'spoke'])
    const show = await sertn(['show', 'sertn-svm/cli', '--json'])
    expect(show.code, show.stderr).toBe(0)
    const shown = JSON.parse(show.stdout.trim().split('\n').pop()!) as {
      chains: ({
        chain: string
        registered: boolean
        name: string
        version: number
        usage: { requests: string }
        quotes: { callbackGasLimit: number; single: string; batched: Record<string, string> }
      } & Pricing)[]
    }
    expect(shown.chains.map((c) => [c.chain, c.registered, c.name, c.version, c.usage.requests])).toEqual([
      ['hub', true, 'sertn-svm/cli', 1, '0'],
      ['spoke', true, 'sertn-svm/cli', 1, '0'],
    ])
    // On every chain the fee the registry quotes is the model's compute units (the manifest's) ×
    // its pool's unit price (the registry's default here), and both commands print it.
    const { manifest } = readManifest('sertn-svm')
    for (const c of chains) {
      const p = await pricingOn(c.client, c.registry, reg.modelId)
      expect(p.computeUnits).toBe(manifest.computeUnits)
      expect(p.unitPrice).toBe(
        await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'defaultUnitPrice' }),
      )
      expect(p.fee).toBe(BigInt(p.computeUnits) * p.unitPrice)
      const printed = { computeUnits: p.computeUnits, unitPrice: String(p.unitPrice), fee: String(p.fee), symbol: 'ETH' }
      expect(reg.pricing[c.name]).toEqual(printed)
      expect(shown.chains.find((x) => x.chain === c.name)).toMatchObject(printed)
      // And the gateway's quote for a request at 200k callback gas (no batch circuits: no batched quotes).
      const gateway = c.name === 'hub' ? stack.network.hub.core.gateway : spokeGateway()
      const quote = await c.client.readContract({
        address: gateway,
        abi: InferenceGateway.abi,
        functionName: 'quote',
        args: [reg.modelId, 200_000],
      })
      expect(shown.chains.find((x) => x.chain === c.name)?.quotes).toEqual({
        callbackGasLimit: 200_000,
        single: String(quote),
        batched: {},
      })
    }
  })

  test('error: sertn model register takes no --fee: the fee is compute units × the pool’s unit price, set by the registry owner', async () => {
    const r = await sertn(['register', 'circuits/sertn-svm', '--name', 'sertn-svm/fee', '--fee', '0.002'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /takes no --fee: a model's fee per inference is its compute units × its pool's unit price, set by the registry owner/,
    )
  })

  test('behavior: the spoke registry’s owner prices the model’s pool there and the spoke gateway’s quote follows; a stranger cannot', async () => {
    const modelId = modelIdOf(stack.hub.owner.account.address, 'sertn-svm/cli')
    const registry = registryOf('spoke')
    const quote = () =>
      stack.spoke.user.readContract({
        address: spokeGateway(),
        abi: SpokeGateway.abi,
        functionName: 'quote',
        args: [modelId, CALLBACK_GAS],
      })
    const setUnitPrice = (client: typeof stack.spoke.owner, price: bigint) =>
      client.simulateContract({ address: registry, abi: ModelRegistry.abi, functionName: 'setUnitPrice', args: [modelId, price] })
    const before = await pricingOn(stack.spoke.owner, registry, modelId)
    const hubBefore = await pricingOn(stack.hub.owner, registryOf('hub'), modelId)
    const quoted = await quote()
    const price = before.unitPrice * 3n

    expect(await expectRevert(setUnitPrice(stack.spoke.user, price))).toEqual({
      errorName: 'OwnedUnauthorized',
      args: [stack.spoke.user.account.address],
    })
    expect(await quote()).toBe(quoted)

    const { request } = await setUnitPrice(stack.spoke.owner, price)
    await confirm(stack.spoke.owner, await stack.spoke.owner.writeContract(request))
    try {
      expect(await pricingOn(stack.spoke.owner, registry, modelId)).toEqual({
        computeUnits: before.computeUnits,
        unitPrice: price,
        fee: BigInt(before.computeUnits) * price,
      })
      // The quote's fee part moved by the change; gas and messaging parts are as before.
      expect(await quote()).toBe(quoted + BigInt(before.computeUnits) * (price - before.unitPrice))
      // Prices are per chain: the hub's is untouched.
      expect(await pricingOn(stack.hub.owner, registryOf('hub'), modelId)).toEqual(hubBefore)
      const show = await sertn(['show', 'sertn-svm/cli'])
      expect(show.code, show.stderr).toBe(0)
      expect(show.stdout).toContain(
        `fee ${formatEther(BigInt(before.computeUnits) * price)} ETH per inference (${before.computeUnits} compute unit`,
      )
    } finally {
      const { request: reset } = await setUnitPrice(stack.spoke.owner, 0n)
      await confirm(stack.spoke.owner, await stack.spoke.owner.writeContract(reset))
    }
    expect(await quote()).toBe(quoted)
  })

  test('default: sertn model backtest verify checks the published pairs and exits 0 when all are valid', async () => {
    const r = await sertn(['backtest', 'verify', 'sertn-svm', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ model: 'sertn-svm', valid: 4 })
  })

  test('error: sertn model backtest verify exits 1 when a pair is invalid', async () => {
    const r = await sertn(['backtest', 'verify', 'sertn-linreg'])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/sertn-linreg: 1\/2 backtest pairs verified/)
    expect(r.stdout).toMatch(/#1 +INVALID/)
  })
})
