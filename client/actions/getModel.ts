import type { Address, Hex } from 'viem'
import { readContract } from 'viem/actions'
import { InferenceGateway, ModelRegistry } from '../../contracts/artifacts/index.ts'
import type { ArtifactRefs } from '../../core/artifacts.ts'
import type { Visibility } from '../../core/manifest.ts'
import { base64UrlIdOf } from '../../core/storage-ref.ts'
import { rethrowCall, type ModelNotFoundError } from '../errors.ts'
import type { ReadClient } from '../internal.ts'

export type GetModelParameters = {
  /** The model (bytes32). */
  modelId: Hex
} & (
  | {
      /** The chain's ModelRegistry. */
      registry: Address
    }
  | {
      /** A gateway on the chain: its registry is read. */
      gateway: Address
    }
)

/** A model as the chain's registry records it. */
export type SertnModel = {
  modelId: Hex
  name: string
  owner: Address
  /** Bumped by every circuit change; requests carry the version they were made against. */
  version: number
  /** Whether new requests are accepted. */
  active: boolean
  inputShape: number[]
  outputShape: number[]
  /** A real input x is sent as round(x · 2^inputScale). */
  inputScale: number
  outputScale: number
  /** The largest |input element| at the input scale. */
  maxAbsInput: bigint
  /** Elements a request's input carries (the input's size, or 1 for a hashed input's commitment). */
  inputLength: number
  /** Elements a result's output carries. */
  outputLength: number
  inputVisibility: Visibility
  outputVisibility: Visibility
  /** Whether the circuit's SRS was generated locally (its secret not destroyed): dev and tests only. */
  insecureSrs: boolean
  /** The verifying-key artifact the gateway verifies with, and the code hash the registry pins. */
  vka: Address
  vkaCodeHash: Hex
  /** Where the artifacts are stored and their pinned sha256 hashes. */
  artifacts: ArtifactRefs
  /** The artifact index's storage id (an Arweave transaction id). */
  artifactIndexId: string
  /** Price terms: compute units per inference, the pool's price per unit, the fee (their product, wei, before gas). */
  pricing: { computeUnits: number; unitPrice: bigint; fee: bigint }
  /** Batch circuit sizes of the current version. */
  batchSizes: number[]
  registry: Address
}

export type GetModelReturnType = SertnModel

export type GetModelErrorType = ModelNotFoundError

const VISIBILITY: readonly Visibility[] = ['public', 'hashed']

/**
 * Reads a model from the chain's registry: name, version, shapes, scales, visibility, artifact
 * refs and price terms.
 *
 * @throws {ModelNotFoundError} when the registry has no such model
 *
 * @example
 * const model = await getModel(client, { gateway, modelId })
 * console.log(model.name, model.inputShape, model.pricing.fee)
 */
export async function getModel(client: ReadClient, params: GetModelParameters): Promise<GetModelReturnType> {
  const { modelId } = params
  try {
    const registry =
      'registry' in params
        ? params.registry
        : await readContract(client, { address: params.gateway, abi: InferenceGateway.abi, functionName: 'registry' })
    const at = { address: registry, abi: ModelRegistry.abi } as const
    const m = await readContract(client, { ...at, functionName: 'getModel', args: [modelId] })
    const [name, [inputShape, outputShape], artifacts, unitPrice, batchSizes] = await Promise.all([
      readContract(client, { ...at, functionName: 'nameOf', args: [modelId] }),
      readContract(client, { ...at, functionName: 'getShapes', args: [modelId] }),
      readContract(client, { ...at, functionName: 'getArtifacts', args: [modelId] }),
      readContract(client, { ...at, functionName: 'unitPriceOf', args: [modelId] }),
      readContract(client, { ...at, functionName: 'getBatchSizes', args: [modelId] }),
    ])
    return {
      modelId,
      name,
      owner: m.owner,
      version: m.version,
      active: m.active,
      inputShape: [...inputShape],
      outputShape: [...outputShape],
      inputScale: m.inputScale,
      outputScale: m.outputScale,
      maxAbsInput: m.maxAbsInput,
      inputLength: m.inputLength,
      outputLength: m.outputLength,
      inputVisibility: VISIBILITY[m.inputVisibility] ?? 'public',
      outputVisibility: VISIBILITY[m.outputVisibility] ?? 'public',
      insecureSrs: m.insecureSrs,
      vka: m.vka,
      vkaCodeHash: m.vkaCodeHash,
      artifacts: { ...artifacts },
      artifactIndexId: base64UrlIdOf(artifacts.index),
      pricing: { computeUnits: m.computeUnits, unitPrice, fee: BigInt(m.computeUnits) * unitPrice },
      batchSizes: [...batchSizes],
      registry,
    }
  } catch (err) {
    rethrowCall(`getModel(${modelId})`, err)
  }
}
