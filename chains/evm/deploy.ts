/**
 * Deploys Sertn's contracts on an EVM chain and registers models from their manifests:
 * the reusable Halo2 verifier, one verifying-key artifact (VKA) per model, the ModelRegistry and
 * the InferenceGateway.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { getAddress, keccak256, parseEther, parseGwei, type Abi, type Address, type Hex } from 'viem'
import { Halo2VerifierReusable, InferenceGateway, ModelRegistry, vkas } from '../../contracts/artifacts/index.ts'
import { assertSrsAllowed, modelDir, sha256Hex, type ModelManifest } from '../../core/manifest.ts'
import { modelIdOf } from '../../core/models.ts'
import type { SertnClient } from './clients.ts'

export type GatewayConfig = {
  requestTimeout: number
  maxCallbackGasLimit: number
  fulfillGasOverhead: number
  gasPrice: bigint
}

export const DEFAULT_GATEWAY_CONFIG: GatewayConfig = {
  requestTimeout: 3600,
  maxCallbackGasLimit: 2_000_000,
  fulfillGasOverhead: 750_000,
  gasPrice: parseGwei('1'),
}

export const DEFAULT_REGISTRATION_FEE = parseEther('0.01')

export { modelIdOf }

/** Deploys a contract and waits for its receipt; returns its address. */
export async function deployContract(
  client: SertnClient,
  artifact: { abi: Abi | readonly unknown[]; bytecode: Hex | string },
  args: readonly unknown[] = [],
): Promise<Address> {
  const hash = await client.deployContract({
    abi: artifact.abi as Abi,
    bytecode: artifact.bytecode as Hex,
    args: args as unknown[],
  })
  const receipt = await client.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deployment reverted (${hash})`)
  return getAddress(receipt.contractAddress)
}

/** Waits for a transaction and throws if it reverted. */
export async function confirm(client: SertnClient, hash: Hex) {
  const receipt = await client.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') throw new Error(`transaction reverted (${hash})`)
  return receipt
}

export type CoreDeployment = {
  verifier: Address
  registry: Address
  gateway: Address
}

export type DeployCoreParameters = {
  registrationFee?: bigint
  gatewayConfig?: Partial<GatewayConfig>
  /** Accounts authorised to fulfil and fail requests. */
  nodes?: Address[]
}

/** Deploys the verifier, the registry and the gateway (owned by the client's account). */
export async function deployCore(client: SertnClient, params: DeployCoreParameters = {}): Promise<CoreDeployment> {
  const owner = client.account.address
  const verifier = await deployContract(client, Halo2VerifierReusable)
  const registry = await deployContract(client, ModelRegistry, [owner, params.registrationFee ?? DEFAULT_REGISTRATION_FEE])
  const config = { ...DEFAULT_GATEWAY_CONFIG, ...params.gatewayConfig }
  const gateway = await deployContract(client, InferenceGateway, [owner, registry, config])
  for (const node of params.nodes ?? []) {
    await confirm(
      client,
      await client.writeContract({ address: gateway, abi: InferenceGateway.abi, functionName: 'setNode', args: [node, true] }),
    )
  }
  return { verifier, registry, gateway }
}

/** Reads `circuits/<name>/manifest.json` and its content hash (sha256 of the file, as bytes32). */
export function readManifest(name: string): { manifest: ModelManifest; artifactsHash: Hex } {
  const bytes = readFileSync(join(modelDir(name), 'manifest.json'))
  return { manifest: JSON.parse(bytes.toString('utf8')) as ModelManifest, artifactsHash: `0x${sha256Hex(bytes)}` }
}

export type RegisteredModel = {
  name: string
  modelId: Hex
  vka: Address
  manifest: ModelManifest
}

export type RegisterModelParameters = {
  registry: Address
  verifier: Address
  /** The model's directory name under circuits/. */
  name: string
  fee?: bigint
  computeUnits?: number
  /** Register under this id instead of {@link modelIdOf}(name). */
  modelId?: Hex
  /** Use this VKA instead of deploying the model's own. */
  vka?: Address
  /** Register a circuit set up with a locally generated SRS: local dev chains and tests only. */
  allowInsecureSrs?: boolean
}

/** Deploys the model's VKA (unless given) and registers the model, paying the registration fee. */
export async function registerModel(client: SertnClient, params: RegisterModelParameters): Promise<RegisteredModel> {
  const { manifest, artifactsHash } = readManifest(params.name)
  assertSrsAllowed(manifest, { allowInsecureSrs: params.allowInsecureSrs ?? false })
  const vkaArtifact = (vkas as Record<string, { bytecode: string }>)[params.name]
  if (!params.vka && !vkaArtifact) throw new Error(`no compiled VKA for ${params.name}: run \`npm run build:contracts\``)
  const vka = params.vka ?? (await deployContract(client, { abi: [], bytecode: vkaArtifact!.bytecode }))
  const code = await client.getCode({ address: vka })
  if (!code) throw new Error(`no code at VKA ${vka}`)
  const modelId = params.modelId ?? modelIdOf(params.name)
  const registrationFee = await client.readContract({ address: params.registry, abi: ModelRegistry.abi, functionName: 'registrationFee' })
  await confirm(
    client,
    await client.writeContract({
      address: params.registry,
      abi: ModelRegistry.abi,
      functionName: 'registerModel',
      value: registrationFee,
      args: [
        modelId,
        {
          circuit: {
            verifier: params.verifier,
            vka,
            vkaCodeHash: keccak256(code),
            artifactsHash,
            inputShape: manifest.inputShape.map(Number),
            outputShape: manifest.outputShape.map(Number),
            inputScale: manifest.inputScale,
            outputScale: manifest.outputScale,
            maxAbsInput: BigInt(manifest.maxAbsInput),
          },
          computeUnits: params.computeUnits ?? 1,
          fee: params.fee ?? parseEther('0.001'),
        },
      ],
    }),
  )
  return { name: params.name, modelId, vka, manifest }
}
