/**
 * Registers a built model on a whole network, as `sertn model register` does: its artifacts
 * uploaded to storage (and read back by id, so that nodes will find them), its VKA deployed and the
 * model registered on every chain's registry (the same id everywhere: it is derived from the
 * creator's account and the name), and each spoke's deployment recorded on the hub. Idempotent: a
 * chain that already has this build registered is left as it is, uploads found by tag are reused.
 *
 * {@link upgradeModelOnNetwork} replaces a registered model's circuit with a new build the same
 * way (`sertn model upgrade`).
 */
import { getAddress, type Address } from 'viem'
import { ModelRegistry } from '../../contracts/artifacts/index.ts'
import { localArtifactRefs, publishModelArtifacts, type ArtifactRefs } from '../../core/artifacts.ts'
import { SertnError } from '../../core/errors.ts'
import { assertSrsAllowed } from '../../core/manifest.ts'
import { modelIdOf } from '../../core/models.ts'
import type { StoragePlugin } from '../../core/plugins.ts'
import { base64UrlIdOf } from '../../core/storage-ref.ts'
import type { Hex } from '../../core/types.ts'
import type { SertnClient } from './clients.ts'
import { recordChainDeployments } from './crosschain.ts'
import { confirm, deployCircuit, modelDirOf, readManifest, registeredModelOf, registerModel, type RegisteredModel } from './deploy.ts'

/** One chain of the network, as the model's creator reaches it. */
export type RegistrationChain = {
  /** The chain's name in the configuration. */
  name: string
  /** A client with the creator's account on the chain. */
  client: SertnClient
  /** The chain's ModelRegistry. */
  registry: Address
  /** Whether this is the hub (where spokes' deployments are recorded). */
  hub?: boolean
}

export type RegisterModelOnNetworkParameters = {
  /** The model directory (`sertn model build` output), or a bare name for `circuits/<name>`. */
  model: string
  /** The registry name (default: the manifest's name). */
  name?: string
  chains: readonly RegistrationChain[]
  /** Where the artifacts go; nodes fetch them from there. */
  storage: StoragePlugin
  /**
   * Default: the manifest's, derived from the circuit's size. The fee per inference on each chain is
   * this times the pool's unit price there, set by that registry's owner.
   */
  computeUnits?: number
  /** Register a circuit set up with a locally generated SRS (the registries must accept it too). */
  allowInsecureSrs?: boolean
  onProgress?: (step: 'upload' | 'register' | 'record', detail: string) => void
}

export type NetworkRegistration = {
  name: string
  modelId: Hex
  artifacts: ArtifactRefs
  /** Storage id of the artifact index. */
  index: string
  uploaded: number
  reused: number
  /** Per chain name. */
  chains: Record<string, RegisteredModel>
}

/** The model is too large for a registry, or registered already with other artifacts. */
export class ModelRegistrationError extends SertnError {
  override name = 'ModelRegistrationError'
}

export async function registerModelOnNetwork(p: RegisterModelOnNetworkParameters): Promise<NetworkRegistration> {
  const dir = modelDirOf(p.model)
  const { manifest, artifactsHash } = readManifest(dir)
  const name = p.name ?? manifest.name
  const owners = new Set(p.chains.map((c) => c.client.account.address.toLowerCase()))
  if (owners.size !== 1)
    throw new ModelRegistrationError('register a model with one account on every chain: its id is derived from the account and the name')
  const hubs = p.chains.filter((c) => c.hub)
  if (hubs.length > 1) throw new ModelRegistrationError(`one hub per network, got ${hubs.map((c) => c.name).join(', ')}`)
  const modelId = modelIdOf(p.chains[0]!.client.account.address, name)

  // Refuse before spending anything: a chain that has this name with another build.
  for (const c of p.chains) {
    const terms = await c.client.readContract({
      address: c.registry,
      abi: ModelRegistry.abi,
      functionName: 'tryGetRequestTerms',
      args: [modelId],
    })
    if (terms.version !== 0 && terms.artifactsHash.toLowerCase() !== artifactsHash.toLowerCase())
      throw new ModelRegistrationError(
        `${name} is registered on ${c.name} with other artifacts (${terms.artifactsHash}, version ${terms.version})`,
        {
          details: `A model id names one circuit at a time: replace it with this build (sertn model upgrade ${p.model}${p.name !== undefined ? ` --name ${p.name}` : ''}), or register this build under another --name.`,
        },
      )
  }

  p.onProgress?.('upload', `${Object.keys(manifest.files).length + 2} files to ${p.storage.name}`)
  const published = await publishModelArtifacts(p.storage, dir, (file, done, total) =>
    p.onProgress?.('upload', `${file} (${done + 1}/${total + 1})`),
  )
  // Nodes find the model by the index id alone: make sure it can be read back before registering.
  if (p.storage.getById) await p.storage.getById(published.index.id, { maxBytes: 1 << 20 })

  const chains: Record<string, RegisteredModel> = {}
  for (const c of p.chains) {
    p.onProgress?.('register', `${c.name}: VKA and registration`)
    chains[c.name] = await registerModel(c.client, {
      registry: c.registry,
      model: dir,
      name,
      artifacts: published.refs,
      allowInsecureSrs: p.allowInsecureSrs ?? false,
      ...(p.computeUnits !== undefined ? { computeUnits: p.computeUnits } : {}),
    })
  }
  const hub = hubs[0]
  if (hub) {
    for (const spoke of p.chains.filter((c) => !c.hub)) {
      const domain = spoke.client.chain.id // Sertn domains are chain ids
      p.onProgress?.('record', `${spoke.name}'s VKA on the hub (domain ${domain})`)
      await recordChainDeployments({
        hub: { client: hub.client, registry: hub.registry },
        spoke: { client: spoke.client, domain, registry: spoke.registry },
        models: [chains[spoke.name]!],
      })
    }
  }
  return {
    name,
    modelId,
    artifacts: published.refs,
    index: base64UrlIdOf(published.refs.index),
    uploaded: published.uploaded,
    reused: published.reused,
    chains,
  }
}

export type UpgradeModelOnNetworkParameters = {
  /** The new build's model directory (`sertn model build` output), or a bare name for `circuits/<name>`. */
  model: string
  /** The registered name (default: the new build's manifest name). */
  name?: string
  /**
   * The account the model id was derived from (its registering account): default the signer. A
   * model handed to the signer with `transferModelOwnership` keeps the id of its first owner.
   */
  owner?: Address
  chains: readonly RegistrationChain[]
  /** Where the artifacts go (nodes fetch them from there); without it, the refs of an unpublished directory (local nodes and tests). */
  storage?: StoragePlugin
  /** Accept a circuit set up with a locally generated SRS (the registries must accept it too). */
  allowInsecureSrs?: boolean
  onProgress?: (step: 'check' | 'upload' | 'update' | 'record', detail: string) => void
}

/** One chain's upgrade: the model's version there before and after (equal where it already had this build). */
export type ChainUpgrade = { before: number; after: number; updated: boolean; model: RegisteredModel }

export type NetworkUpgrade = {
  name: string
  modelId: Hex
  artifacts: ArtifactRefs
  /** Storage id of the artifact index (when published). */
  index?: string
  uploaded: number
  reused: number
  /** Per chain name. */
  chains: Record<string, ChainUpgrade>
}

/**
 * Replaces a registered model's circuit with a new build (new weights, keys or schema) on a whole
 * network: its artifacts uploaded, its VKA (and batch VKAs) deployed and `updateCircuit` sent on
 * every chain whose registry has another build (the version goes up by one there; requests pending
 * against the old version can then only be failed or refunded), then each spoke's new deployment
 * recorded on the hub, so that the hub's market serves the new version. Idempotent: a chain that
 * has this build already is skipped, and so is a deployment the hub has recorded for it. Refuses,
 * before sending anything, a model that is not registered on every chain or that the signer does
 * not own.
 */
export async function upgradeModelOnNetwork(p: UpgradeModelOnNetworkParameters): Promise<NetworkUpgrade> {
  const dir = modelDirOf(p.model)
  const { manifest, artifactsHash } = readManifest(dir)
  assertSrsAllowed(manifest, { allowInsecureSrs: p.allowInsecureSrs ?? false })
  const name = p.name ?? manifest.name
  const owners = new Set(p.chains.map((c) => c.client.account.address.toLowerCase()))
  if (owners.size !== 1) throw new ModelRegistrationError("upgrade a model with one account on every chain: the model owner's")
  const hubs = p.chains.filter((c) => c.hub)
  if (hubs.length > 1) throw new ModelRegistrationError(`one hub per network, got ${hubs.map((c) => c.name).join(', ')}`)
  const signer = p.chains[0]!.client.account.address
  const modelId = modelIdOf(p.owner ?? signer, name)

  // Refuse before spending anything: a chain where the model is not registered, or not the signer's.
  const before: Record<string, { version: number; current: boolean }> = {}
  for (const c of p.chains) {
    p.onProgress?.('check', c.name)
    const terms = await c.client.readContract({
      address: c.registry,
      abi: ModelRegistry.abi,
      functionName: 'tryGetRequestTerms',
      args: [modelId],
    })
    if (terms.version === 0)
      throw new ModelRegistrationError(
        `${name} is not registered on ${c.name} (model id ${modelId}, from ${p.owner ?? signer} and the name)`,
        {
          details: `Register it first: sertn model register ${p.model}${p.name !== undefined ? ` --name ${p.name}` : ''} (an upgrade replaces a registered model's circuit).`,
        },
      )
    const m = await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [modelId] })
    if (getAddress(m.owner) !== getAddress(signer))
      throw new ModelRegistrationError(`${name} on ${c.name} is owned by ${m.owner}, not by the signer ${signer}`, {
        details: "Only the model's owner can replace its circuit: sign with its key (--private-key, --keystore or SERTN_MODEL_OWNER_KEY).",
      })
    before[c.name] = { version: terms.version, current: terms.artifactsHash.toLowerCase() === artifactsHash.toLowerCase() }
  }

  let artifacts: ArtifactRefs
  let index: string | undefined
  let uploaded = 0
  let reused = 0
  if (p.storage) {
    p.onProgress?.('upload', `${Object.keys(manifest.files).length + 2} files to ${p.storage.name}`)
    const published = await publishModelArtifacts(p.storage, dir, (file, done, total) =>
      p.onProgress?.('upload', `${file} (${done + 1}/${total + 1})`),
    )
    // Nodes find the model by the index id alone: make sure it can be read back before updating.
    if (p.storage.getById) await p.storage.getById(published.index.id, { maxBytes: 1 << 20 })
    artifacts = published.refs
    index = base64UrlIdOf(published.refs.index)
    uploaded = published.uploaded
    reused = published.reused
  } else artifacts = await localArtifactRefs(dir)

  const chains: Record<string, ChainUpgrade> = {}
  for (const c of p.chains) {
    const was = before[c.name]!
    if (was.current) {
      chains[c.name] = {
        before: was.version,
        after: was.version,
        updated: false,
        model: await registeredModelOf(c.client, c.registry, modelId, { name, manifest, artifacts }),
      }
      continue
    }
    p.onProgress?.('update', `${c.name}: VKA and circuit (version ${was.version} → ${was.version + 1})`)
    const { vka, batches, circuit } = await deployCircuit(c.client, dir, manifest, artifacts)
    await confirm(
      c.client,
      await c.client.writeContract({
        address: c.registry,
        abi: ModelRegistry.abi,
        functionName: 'updateCircuit',
        args: [modelId, circuit],
      }),
    )
    const after = await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [modelId] })
    chains[c.name] = {
      before: was.version,
      after: after.version,
      updated: true,
      model: { name, modelId, vka, manifest, artifacts, batches },
    }
  }
  const hub = hubs[0]
  if (hub) {
    for (const spoke of p.chains.filter((c) => !c.hub)) {
      const domain = spoke.client.chain.id // Sertn domains are chain ids
      p.onProgress?.('record', `${spoke.name}'s VKA on the hub (domain ${domain}, version ${chains[spoke.name]!.after} there)`)
      await recordChainDeployments({
        hub: { client: hub.client, registry: hub.registry },
        spoke: { client: spoke.client, domain, registry: spoke.registry },
        models: [chains[spoke.name]!.model],
      })
    }
  }
  return { name, modelId, artifacts, ...(index !== undefined ? { index } : {}), uploaded, reused, chains }
}
