/**
 * Reads a model's registration from a chain's ModelRegistry, with the code hashes of its verifier
 * and VKA as they are on the chain now: what a node compares with its manifest before it serves a
 * request (`checkRegisteredCircuit`).
 */
import { getAddress, keccak256, type Address, type PublicClient } from 'viem'
import { Halo2VerifierReusable, ModelRegistry } from '../../../contracts/artifacts/index.ts'
import type { RegisteredCircuit } from '../../../core/registered.ts'
import type { Hex } from '../../../core/types.ts'
import { transient } from './errors.ts'

/** keccak256 of the reusable verifier's runtime code: the one verifier a node trusts. */
export const TRUSTED_VERIFIER_CODE_HASH: Hex = keccak256(Halo2VerifierReusable.deployedBytecode as Hex)

const VISIBILITIES = ['public', 'hashed'] as const
const EMPTY_CODE_HASH = keccak256('0x')

/** What reading a registration needs: contract reads and code (a public client, or a wallet client with public actions). */
export type RegistryReader = Pick<PublicClient, 'readContract' | 'getCode'>

/** keccak256 of the code at `address` (of empty code when there is none). */
async function codeHashAt(client: RegistryReader, address: Address): Promise<Hex> {
  const code = await client.getCode({ address })
  return code ? keccak256(code) : EMPTY_CODE_HASH
}

/**
 * Code hashes by address, read once. Code at an address cannot change once it is there (since
 * Cancun a contract cannot remove its code after the transaction that made it), and a registry
 * refuses a VKA without code, so a node re-reading a model per request need not fetch a VKA's
 * code (kilobytes) each time. An address without code is read again next time.
 */
export function codeHashCache(client: RegistryReader): (address: Address) => Promise<Hex> {
  const known = new Map<string, Promise<Hex>>()
  return (address) => {
    const key = address.toLowerCase()
    let p = known.get(key)
    if (!p) {
      p = codeHashAt(client, address)
      known.set(key, p)
      p.then(
        (h) => h === EMPTY_CODE_HASH && known.delete(key),
        () => known.delete(key),
      )
    }
    return p
  }
}

/**
 * The model `modelId` as `registry` records it, or undefined when it is not registered there.
 * @throws {ChainTransientError} on RPC failures
 */
export async function readRegisteredCircuit(
  client: RegistryReader,
  registry: Address,
  modelId: Hex,
  what: string,
  codeHashOf: (address: Address) => Promise<Hex> = (address) => codeHashAt(client, address),
): Promise<RegisteredCircuit | undefined> {
  try {
    const call = <F extends 'tryGetRequestTerms' | 'getModel' | 'getArtifacts' | 'getShapes' | 'nameOf'>(functionName: F) =>
      client.readContract({ address: registry, abi: ModelRegistry.abi, functionName, args: [modelId] } as never)
    const terms = (await call('tryGetRequestTerms')) as { version: number }
    if (terms.version === 0) return undefined
    const [m, artifacts, shapes, name, verifier] = await Promise.all([
      call('getModel') as Promise<{
        owner: Address
        version: number
        active: boolean
        vka: Address
        vkaCodeHash: Hex
        inputScale: number
        outputScale: number
        maxAbsInput: bigint
        inputVisibility: number
        outputVisibility: number
        insecureSrs: boolean
      }>,
      call('getArtifacts') as Promise<RegisteredCircuit['artifacts']>,
      call('getShapes') as Promise<readonly [readonly number[], readonly number[]]>,
      call('nameOf') as Promise<string>,
      client.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'verifier' }),
    ])
    const [verifierCodeHash, vkaCodeHashOnChain, batches] = await Promise.all([
      codeHashOf(verifier),
      codeHashOf(m.vka),
      readBatches(client, registry, modelId, codeHashOf),
    ])
    return {
      modelId,
      name,
      owner: getAddress(m.owner),
      version: m.version,
      active: m.active,
      verifier: getAddress(verifier),
      verifierCodeHash,
      vka: getAddress(m.vka),
      vkaCodeHash: m.vkaCodeHash,
      vkaCodeHashOnChain,
      artifacts: { ...artifacts },
      inputShape: [...shapes[0]],
      outputShape: [...shapes[1]],
      inputScale: m.inputScale,
      outputScale: m.outputScale,
      maxAbsInput: m.maxAbsInput.toString(),
      inputVisibility: VISIBILITIES[m.inputVisibility] ?? 'public',
      outputVisibility: VISIBILITIES[m.outputVisibility] ?? 'public',
      insecureSrs: m.insecureSrs,
      batches,
    }
  } catch (err) {
    throw transient(`${what}: reading model ${modelId} from registry ${registry}`, err)
  }
}

/** The current version's batch circuits as the registry records them, with the code hash at each VKA. */
async function readBatches(
  client: RegistryReader,
  registry: Address,
  modelId: Hex,
  codeHashOf: (address: Address) => Promise<Hex>,
): Promise<NonNullable<RegisteredCircuit['batches']>> {
  const sizes = (await client.readContract({
    address: registry,
    abi: ModelRegistry.abi,
    functionName: 'getBatchSizes',
    args: [modelId],
  } as never)) as readonly number[]
  return Promise.all(
    sizes.map(async (size) => {
      const terms = (await client.readContract({
        address: registry,
        abi: ModelRegistry.abi,
        functionName: 'tryGetBatchVerificationTerms',
        args: [modelId, size],
      } as never)) as { vka: Address }
      return { size, vka: getAddress(terms.vka), vkaCodeHashOnChain: await codeHashOf(terms.vka) }
    }),
  )
}

/**
 * `getModel` for a plugin whose contract (a gateway, the market) names its registry in an immutable
 * `registry()`: the address is read once (again after a failure), then each call reads the model.
 */
export function registeredModels(
  client: RegistryReader,
  holder: { address: Address; abi: readonly unknown[]; what: string },
  pluginId: string,
): (modelId: Hex) => Promise<RegisteredCircuit | undefined> {
  let registry: Promise<Address> | undefined
  const codeHashOf = codeHashCache(client)
  return async (modelId) => {
    registry ??= (
      client.readContract({ address: holder.address, abi: holder.abi as never, functionName: 'registry' } as never) as Promise<Address>
    ).catch((err: unknown) => {
      registry = undefined
      throw transient(`${pluginId}: reading the ${holder.what}'s registry`, err)
    })
    return readRegisteredCircuit(client, await registry, modelId, pluginId, codeHashOf)
  }
}
