/**
 * Deploys Sertn's contracts on an EVM chain and registers models from their manifests:
 * the reusable Halo2 verifier, one verifying-key artifact (VKA) per model, the ModelRegistry, the
 * NodeRegistry (./nodes.ts: the pools of nodes that requests are assigned to) and the
 * InferenceGateway.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { keccak256, parseEther, parseGwei, zeroHash, type Address, type Hex } from 'viem'
import {
  Halo2VerifierReusable,
  InferenceGateway,
  ModelRegistry,
  SertnAIOracle,
  SertnInfernetCoordinator,
} from '../../contracts/artifacts/index.ts'
import { assertSrsAllowed, modelDir, parseManifest, sha256Hex, type ModelManifest } from '../../core/manifest.ts'
import { localArtifactRefs, type ArtifactRefs } from '../../core/artifacts.ts'
import { modelIdOf } from '../../core/models.ts'
import type { SertnClient } from './clients.ts'
import { allowMarket, deployNodeRegistry, type NodePoolParameters } from './nodes.ts'
import { confirm, deployContract, writeWithMargin } from './transactions.ts'

export type GatewayConfig = {
  requestTimeout: number
  maxCallbackGasLimit: number
  fulfillGasOverhead: number
  gasPrice: bigint
  /** Gas a batch delivery spends beyond its rows (its one verification included), shared by its rows; 0: no batch pricing. */
  batchGasOverhead: number
  /** Gas each row of a batch adds beyond its callback. */
  batchRowGasOverhead: number
}

/**
 * A gateway's defaults. The batch figures are above what the demo's batches measured: a 64-row
 * delivery's verification, calldata and messenger check come to about 1.3M gas, and each row adds
 * about 35k beyond its callback (see the README's figures).
 */
export const DEFAULT_GATEWAY_CONFIG: GatewayConfig = {
  requestTimeout: 3600,
  maxCallbackGasLimit: 2_000_000,
  fulfillGasOverhead: 750_000,
  gasPrice: parseGwei('1'),
  batchGasOverhead: 1_500_000,
  batchRowGasOverhead: 40_000,
}

export const DEFAULT_REGISTRATION_FEE = parseEther('0.01')

/** The default price per compute unit (wei): a 1-unit model (the demo) costs 0.001 of the chain's native token per inference, beyond gas. */
export const DEFAULT_UNIT_PRICE = parseEther('0.001')

export { modelIdOf }

/** The transaction helpers (./transactions.ts), for the modules that deploy with this one. */
export { confirm, deployContract, writeWithMargin }

export type CoreDeployment = {
  verifier: Address
  registry: Address
  /** The pools of nodes the gateway's requests are assigned to (the gateway is one of its markets). */
  nodeRegistry: Address
  gateway: Address
}

export type DeployCoreParameters = {
  registrationFee?: bigint
  /**
   * The registry's default price (wei) per compute unit: a model's fee per inference is its compute
   * units times this (or the price the registry owner sets for its pool). Default {@link DEFAULT_UNIT_PRICE}.
   */
  unitPrice?: bigint
  gatewayConfig?: Partial<GatewayConfig>
  /** How the node registry runs its pools (default: DEFAULT_NODE_POOL of ./nodes.ts). */
  pool?: Partial<NodePoolParameters>
  /** Let the registry accept circuits set up with a locally generated SRS (local chains and tests only). */
  allowInsecureSrs?: boolean
}

/** Deploys the verifier and a registry pinning it (owned by the client's account, the protocol). */
export async function deployRegistry(
  client: SertnClient,
  params: Pick<DeployCoreParameters, 'registrationFee' | 'unitPrice' | 'allowInsecureSrs'> = {},
): Promise<{ verifier: Address; registry: Address }> {
  const verifier = await deployContract(client, Halo2VerifierReusable)
  const registry = await deployContract(client, ModelRegistry, [
    client.account.address,
    params.registrationFee ?? DEFAULT_REGISTRATION_FEE,
    params.unitPrice ?? DEFAULT_UNIT_PRICE,
    verifier,
    params.allowInsecureSrs ?? false,
  ])
  return { verifier, registry }
}

/**
 * Deploys the verifier, the registry, the node registry and the gateway (owned by the client's
 * account), the gateway allowed to open jobs in the node registry. No pool has nodes yet: see
 * ./nodes.ts (`setPoolMinimumStake`, `joinPool`).
 */
export async function deployCore(client: SertnClient, params: DeployCoreParameters = {}): Promise<CoreDeployment> {
  const { verifier, registry } = await deployRegistry(client, params)
  const nodeRegistry = await deployNodeRegistry(client, { registry, ...(params.pool ? { pool: params.pool } : {}) })
  const gateway = await deployGateway(client, {
    registry,
    nodeRegistry,
    ...(params.gatewayConfig ? { gatewayConfig: params.gatewayConfig } : {}),
  })
  return { verifier, registry, nodeRegistry, gateway }
}

/**
 * Deploys the hub's InferenceGateway over a registry and a node registry (owned by the client's
 * account) and allows it to open jobs in the node registry.
 */
export async function deployGateway(
  client: SertnClient,
  params: { registry: Address; nodeRegistry: Address; gatewayConfig?: Partial<GatewayConfig> | undefined },
): Promise<Address> {
  const config = { ...DEFAULT_GATEWAY_CONFIG, ...params.gatewayConfig }
  const gateway = await deployContract(client, InferenceGateway, [client.account.address, params.registry, params.nodeRegistry, config])
  await allowMarket(client, params.nodeRegistry, gateway)
  return gateway
}

/** The drop-in oracle facades on a chain (see the README, "Drop-in oracle interfaces"). */
export type FacadeDeployment = {
  /** `SertnAIOracle`: ORA's `IAIOracle` over the chain's gateway. */
  ora: Address
  /** `SertnInfernetCoordinator`: Ritual Infernet's registry and coordinator over the chain's gateway. */
  infernet: Address
}

/** What a model is called by the other oracles' consumers. */
export type FacadeIds = {
  /** Its ORA model id (`requestCallback`'s `modelId`). */
  oraModelId: bigint
  /** Its Infernet container id (`_requestCompute`'s `containerId`). */
  infernetContainerId: string
}

/** Gas an Infernet consumer's `rawReceiveCompute` gets by default (the facade's per-container setting). */
export const DEFAULT_INFERNET_CALLBACK_GAS = 500_000

/**
 * The ids a network's facades give its models, in the order the models are registered: ORA model
 * ids 1, 2, … and each model's registry name as its Infernet container id (the local stack's demo
 * model, registered first: ORA model id 1, container `sertn-mlp-demo`).
 */
export function facadeIdsOf(models: readonly Pick<RegisteredModel, 'name'>[]): FacadeIds[] {
  return models.map((m, i) => ({ oraModelId: BigInt(i + 1), infernetContainerId: m.name }))
}

/**
 * Deploys the drop-in oracle facades over `gateway` (owned by the client's account) and maps each
 * model to its ids from {@link facadeIdsOf}: ORA's `IAIOracle` and Infernet's coordinator, each a
 * Sertn consumer of the gateway that calls back only with verified results.
 */
export async function deployFacades(
  client: SertnClient,
  params: { gateway: Address; models: readonly Pick<RegisteredModel, 'name' | 'modelId'>[]; infernetCallbackGas?: number },
): Promise<FacadeDeployment> {
  const owner = client.account.address
  const ora = await deployContract(client, SertnAIOracle, [owner, params.gateway])
  const infernet = await deployContract(client, SertnInfernetCoordinator, [owner, params.gateway])
  const ids = facadeIdsOf(params.models)
  for (const [i, m] of params.models.entries()) {
    const id = ids[i]!
    await confirm(
      client,
      await client.writeContract({ address: ora, abi: SertnAIOracle.abi, functionName: 'setModel', args: [id.oraModelId, m.modelId] }),
    )
    await confirm(
      client,
      await client.writeContract({
        address: infernet,
        abi: SertnInfernetCoordinator.abi,
        functionName: 'setContainer',
        args: [id.infernetContainerId, m.modelId, params.infernetCallbackGas ?? DEFAULT_INFERNET_CALLBACK_GAS],
      }),
    )
  }
  return { ora, infernet }
}

/** The creation bytecode of a model's verifying-key artifact (`<dir>/vka.json`, written by `sertn model build`; a bare name: `circuits/<name>`). */
export function vkaBytecode(nameOrDir: string): Hex {
  return (JSON.parse(readFileSync(join(modelDirOf(nameOrDir), 'vka.json'), 'utf8')) as { bytecode: Hex }).bytecode
}

/** A model directory: `circuits/<name>` for a bare name, else the path itself. */
export function modelDirOf(nameOrDir: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(nameOrDir) ? modelDir(nameOrDir) : resolve(nameOrDir)
}

/** Reads `<dir>/manifest.json` (a bare name: `circuits/<name>`) and its content hash (sha256 of the file, as bytes32). */
export function readManifest(nameOrDir: string): { manifest: ModelManifest; artifactsHash: Hex } {
  const path = join(modelDirOf(nameOrDir), 'manifest.json')
  const bytes = readFileSync(path)
  return { manifest: parseManifest(path, bytes), artifactsHash: `0x${sha256Hex(bytes)}` }
}

export type RegisteredModel = {
  /** The registry's name for it. */
  name: string
  modelId: Hex
  vka: Address
  manifest: ModelManifest
  artifacts: ArtifactRefs
  /** Its batch circuits' VKAs on this chain, by size (see `ModelManifest.batches`). */
  batches: readonly BatchCircuitParams[]
}

/** A batch circuit as the registry takes it (`CircuitParams.batches`). */
export type BatchCircuitParams = { size: number; vka: Address; vkaCodeHash: Hex }

export type RegisterModelParameters = {
  registry: Address
  /** The model directory, or a bare name for `circuits/<name>`. */
  model: string
  /** The registry name (default: the manifest's name). The id is derived from it and the registering account. */
  name?: string
  /** Where the artifacts are stored (from `publishModelArtifacts`); default: not uploaded ({@link localArtifactRefs}). */
  artifacts?: ArtifactRefs
  /**
   * Default: the manifest's, derived from the circuit's size (at least 1). The fee per inference is
   * this times the pool's unit price, which the registry owner sets.
   */
  computeUnits?: number
  /** Use this VKA instead of deploying the model's own. */
  vka?: Address
  /** Register a circuit set up with a locally generated SRS: local dev chains and tests only. */
  allowInsecureSrs?: boolean
}

const VISIBILITY = { public: 0, hashed: 1 } as const

/**
 * Deploys the model's VKA (unless given) and registers the model under
 * `modelIdOf(account, name)`, paying the registration fee. Idempotent for a model already
 * registered by this account with the same artifacts (its record is returned).
 */
export async function registerModel(client: SertnClient, params: RegisterModelParameters): Promise<RegisteredModel> {
  const dir = modelDirOf(params.model)
  const { manifest } = readManifest(dir)
  assertSrsAllowed(manifest, { allowInsecureSrs: params.allowInsecureSrs ?? false })
  const name = params.name ?? manifest.name
  const artifacts = params.artifacts ?? (await localArtifactRefs(dir))
  const modelId = modelIdOf(client.account.address, name)
  const existing = await client.readContract({
    address: params.registry,
    abi: ModelRegistry.abi,
    functionName: 'tryGetRequestTerms',
    args: [modelId],
  })
  if (existing.version !== 0 && existing.artifactsHash.toLowerCase() === artifacts.manifestHash.toLowerCase())
    return registeredModelOf(client, params.registry, modelId, { name, manifest, artifacts })
  const { vka, batches, circuit } = await deployCircuit(client, dir, manifest, artifacts, params.vka)
  const registrationFee = await client.readContract({ address: params.registry, abi: ModelRegistry.abi, functionName: 'registrationFee' })
  await confirm(
    client,
    await client.writeContract({
      address: params.registry,
      abi: ModelRegistry.abi,
      functionName: 'registerModel',
      value: registrationFee,
      args: [
        name,
        {
          circuit,
          computeUnits: params.computeUnits ?? manifest.computeUnits,
        },
      ],
    }),
  )
  return { name, modelId, vka, manifest, artifacts, batches }
}

/**
 * Deploys a model build's VKA (unless given) and its batch circuits' VKAs on a chain: the
 * registry's `CircuitParams` for it there (for `registerModel` or `updateCircuit`).
 */
export async function deployCircuit(
  client: SertnClient,
  dir: string,
  manifest: ModelManifest,
  artifacts: ArtifactRefs,
  vka?: Address,
): Promise<{ vka: Address; batches: BatchCircuitParams[]; circuit: ReturnType<typeof circuitParamsOf> }> {
  const at = vka ?? (await deployContract(client, { abi: [], bytecode: vkaBytecode(dir) }))
  const code = await client.getCode({ address: at })
  if (!code) throw new Error(`no code at VKA ${at}`)
  const batches = await deployBatchVkas(client, dir, manifest)
  return { vka: at, batches, circuit: circuitParamsOf(manifest, artifacts, at, keccak256(code), batches) }
}

/**
 * A model's current registration on a chain (its VKA and its batch circuits' VKAs there), as
 * {@link registerModel} returns it, for a circuit the registry already has (`manifest`'s build).
 */
export async function registeredModelOf(
  client: SertnClient,
  registry: Address,
  modelId: Hex,
  model: { name: string; manifest: ModelManifest; artifacts: ArtifactRefs },
): Promise<RegisteredModel> {
  const [m, sizes] = await Promise.all([
    client.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [modelId] }),
    client.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'getBatchSizes', args: [modelId] }),
  ])
  const batches = await Promise.all(
    sizes.map(async (size) => {
      const t = await client.readContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: 'tryGetBatchVerificationTerms',
        args: [modelId, size],
      })
      return { size, vka: t.vka, vkaCodeHash: model.manifest.batches?.find((b) => b.size === size)?.vka.codeHash ?? zeroHash }
    }),
  )
  return { ...model, modelId, vka: m.vka, batches }
}

/**
 * Deploys the VKA of each batch circuit the manifest lists (`<dir>/batch-<N>/vka.json`), checking
 * that its code hashes to what the manifest pins.
 */
export async function deployBatchVkas(client: SertnClient, dir: string, manifest: ModelManifest): Promise<BatchCircuitParams[]> {
  const out: BatchCircuitParams[] = []
  for (const b of manifest.batches ?? []) {
    const vka = await deployContract(client, { abi: [], bytecode: vkaBytecode(join(dir, b.dir)) })
    const code = await client.getCode({ address: vka })
    const vkaCodeHash = code ? keccak256(code) : zeroHash
    if (vkaCodeHash !== b.vka.codeHash)
      throw new Error(
        `${manifest.name}: the VKA of its batch of ${b.size} has code hash ${vkaCodeHash}, its manifest pins ${b.vka.codeHash}`,
      )
    out.push({ size: b.size, vka, vkaCodeHash })
  }
  return out
}

/** A manifest as the registry's `CircuitParams` (with its batch circuits' VKAs on that chain, if any). */
export function circuitParamsOf(
  manifest: ModelManifest,
  artifacts: ArtifactRefs,
  vka: Address,
  vkaCodeHash: Hex,
  batches: readonly BatchCircuitParams[] = [],
) {
  return {
    vka,
    vkaCodeHash,
    artifacts,
    inputShape: manifest.inputShape.map(Number),
    outputShape: manifest.outputShape.map(Number),
    inputScale: manifest.inputScale,
    outputScale: manifest.outputScale,
    maxAbsInput: BigInt(manifest.maxAbsInput),
    inputVisibility: VISIBILITY[manifest.visibility.input],
    outputVisibility: VISIBILITY[manifest.visibility.output],
    insecureSrs: manifest.srs.insecure,
    batches: batches.map((b) => ({ size: b.size, vka: b.vka, vkaCodeHash: b.vkaCodeHash })),
  }
}
