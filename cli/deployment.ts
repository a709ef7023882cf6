/**
 * The local stack's contracts: a hub and a spoke joined over Hyperlane (`deploySertnNetwork`),
 * reused from `deployment.json` when both (persisted) chains still have every recorded contract and
 * they were built from the same code, deployed afresh on both chains otherwise. Then the example
 * dApps: an ExampleClassifier on the spoke (the demo's) and one on the hub (the hub's own gateway
 * is a requester too).
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { getAddress, type Address } from 'viem'
import { confirm, deployContract, readManifest, registerModel, vkaBytecode, type RegisteredModel } from '../chains/evm/deploy.ts'
import type { SertnClient } from '../chains/evm/clients.ts'
import { connectSpoke } from '../chains/evm/crosschain.ts'
import {
  ExampleClassifier,
  Halo2VerifierReusable,
  InferenceGateway,
  InferenceMarket,
  ModelRegistry,
  SpokeGateway,
} from '../contracts/artifacts/index.ts'
import {
  Mailbox,
  MerkleTreeHook,
  ProtocolFee,
  StaticMessageIdMultisigIsm,
  StaticMessageIdMultisigIsmFactory,
  ValidatorAnnounce,
} from '../contracts/artifacts/hyperlane/index.ts'
import type { ArtifactRefs } from '../core/artifacts.ts'
import { modelIdOf } from '../core/models.ts'
import { SertnError } from '../core/errors.ts'
import { deploySertnNetwork, type HyperlaneCoreDeployment, type SertnNetwork } from '../plugins/messengers/hyperlane/index.ts'
import {
  DEPLOYMENT_VERSION,
  readJson,
  shown,
  STACK_CHAINS,
  type ChainDeployment,
  type Deployment,
  type HyperlaneRecord,
  type StackChain,
} from './common.ts'

const hash = (...parts: string[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p).update('\n')
  return h.digest('hex').slice(0, 32)
}

/**
 * The network's code: the verifier, the registry, both gateways, the market and the Hyperlane
 * core (mailbox, hooks, the ISM and its factory, the validator announcement).
 */
export const networkFingerprint = () =>
  hash(
    ...[Halo2VerifierReusable, ModelRegistry, InferenceGateway, InferenceMarket, SpokeGateway].map((a) => a.bytecode),
    ...[Mailbox, MerkleTreeHook, ProtocolFee, StaticMessageIdMultisigIsmFactory, StaticMessageIdMultisigIsm, ValidatorAnnounce].map(
      (a) => a.bytecode,
    ),
  )
/** A model's circuit: its VKA and its manifest. */
export const modelFingerprint = (name: string) => hash(vkaBytecode(name), readManifest(name).artifactsHash)
export const dappFingerprint = () => hash(ExampleClassifier.bytecode)

/** Clients on one chain: 0 owns, 1 is the node, 2 the dApps' user. */
export type ChainClients = { owner: SertnClient; node: SertnClient; user: SertnClient }
export type StackClients = Record<StackChain, ChainClients>

export type EnsureDeploymentResult = {
  deployment: Deployment
  /** What was done: nothing (`reused`), everything (`deployed`, with the reason), or some of it. */
  action: 'reused' | 'deployed' | 'updated'
  notes: string[]
}

const hasCode = async (client: SertnClient, address: Address) => ((await client.getCode({ address })) ?? '0x').length > 2

/** The recorded contracts of one chain that have no code there (names for messages; `all` when none has). */
async function missingCode(client: SertnClient, chain: ChainDeployment & { market?: Address }): Promise<string[] | 'all'> {
  const expected: [string, Address][] = [
    ['verifier', chain.verifier],
    ['registry', chain.registry],
    ['gateway', chain.gateway],
    ...(chain.market ? [['market', chain.market] as [string, Address]] : []),
    ['mailbox', chain.hyperlane.mailbox],
    ['merkle tree hook', chain.hyperlane.merkleTreeHook],
    ['protocol fee hook', chain.hyperlane.protocolFee],
    ['ISM', chain.hyperlane.ism],
    ...Object.entries(chain.vkas).map(([m, a]) => [`${m} VKA`, a] as [string, Address]),
  ]
  const missing: string[] = []
  for (const [what, address] of expected) if (!(await hasCode(client, address))) missing.push(what)
  return missing.length === expected.length ? 'all' : missing
}

/**
 * Why the recorded deployment cannot be reused on these chains (undefined when it can): no record,
 * a record of another format or other chains, code or keys that changed, or contracts that a
 * chain no longer has (a new chain).
 */
async function whyRedeploy(
  recorded: Partial<Deployment> | undefined,
  clients: StackClients,
  opts: { models: readonly string[]; validator: Address },
): Promise<string | undefined> {
  if (!recorded) return 'no deployment recorded yet'
  if (recorded.version !== DEPLOYMENT_VERSION || !recorded.hub || !recorded.spoke)
    return 'the recorded deployment is from an older, single-chain stack'
  for (const chain of STACK_CHAINS) {
    const id = clients[chain].owner.chain.id
    if (recorded[chain]!.chainId !== id) return `the recorded ${chain} is chain ${recorded[chain]!.chainId}, this ${chain} is chain ${id}`
  }
  if (recorded.fingerprint !== networkFingerprint()) return 'the contracts changed since they were deployed'
  if (getAddress(recorded.validator!) !== getAddress(opts.validator)) return 'the local validator key changed'
  if (opts.models.some((m) => recorded.models?.[m] && recorded.models[m]!.fingerprint !== modelFingerprint(m)))
    return 'a model circuit changed since it was registered'
  const gone: string[] = []
  for (const chain of STACK_CHAINS) {
    const missing = await missingCode(clients[chain].owner, recorded[chain]!)
    if (missing === 'all') gone.push(`the ${chain} has none of the recorded contracts (a new chain)`)
    else if (missing.length) gone.push(`the ${chain} has no code at the recorded ${missing.join(', ')}`)
  }
  return gone.length ? gone.join('; ') : undefined
}

const hyperlaneRecord = ({ domain: _domain, deployBlock, ...addresses }: HyperlaneCoreDeployment): HyperlaneRecord => ({
  ...addresses,
  deployBlock: Number(deployBlock),
})

/** The record of a freshly deployed network. */
function recordOf(
  network: SertnNetwork,
  startBlocks: Record<StackChain, number>,
  accounts: { owner: Address; node: Address; validator: Address },
): Deployment {
  const spoke = network.spokes[0]!
  const vkasOf = (models: RegisteredModel[]) => Object.fromEntries(models.map((m) => [m.name, m.vka]))
  return {
    version: DEPLOYMENT_VERSION,
    fingerprint: networkFingerprint(),
    ...accounts,
    hub: {
      chainId: network.hub.chainId,
      domain: network.hub.domain,
      deployedAtBlock: startBlocks.hub,
      ...network.hub.core,
      market: network.hub.market,
      hyperlane: hyperlaneRecord(network.hub.hyperlane),
      vkas: vkasOf(network.hub.models),
      dapps: {},
    },
    spoke: {
      chainId: spoke.chainId,
      domain: spoke.domain,
      deployedAtBlock: startBlocks.spoke,
      ...spoke.spoke,
      hyperlane: hyperlaneRecord(spoke.hyperlane),
      vkas: vkasOf(spoke.models),
      dapps: {},
    },
    models: Object.fromEntries(
      network.hub.models.map((m) => [m.name, { modelId: m.modelId, fingerprint: modelFingerprint(m.name), artifacts: m.artifacts }]),
    ),
    dappFingerprint: dappFingerprint(),
  }
}

/** The network a deployment record describes, as `networkChainsConfig` takes it. */
export function networkOf(d: Deployment): SertnNetwork {
  const hyperlane = (c: ChainDeployment): HyperlaneCoreDeployment => ({
    domain: c.domain,
    ...c.hyperlane,
    deployBlock: BigInt(c.hyperlane.deployBlock),
  })
  const models = (c: ChainDeployment): RegisteredModel[] =>
    Object.entries(c.vkas).map(([name, vka]) => ({
      name,
      vka,
      modelId: d.models[name]!.modelId,
      manifest: readManifest(name).manifest,
      artifacts: d.models[name]!.artifacts,
    }))
  return {
    hub: {
      name: 'hub',
      domain: d.hub.domain,
      chainId: d.hub.chainId,
      core: { verifier: d.hub.verifier, registry: d.hub.registry, gateway: d.hub.gateway },
      market: d.hub.market,
      hyperlane: hyperlane(d.hub),
      models: models(d.hub),
    },
    spokes: [
      {
        name: 'spoke',
        domain: d.spoke.domain,
        chainId: d.spoke.chainId,
        spoke: { verifier: d.spoke.verifier, registry: d.spoke.registry, gateway: d.spoke.gateway },
        hyperlane: hyperlane(d.spoke),
        models: models(d.spoke),
      },
    ],
  }
}

/**
 * Reuses the network recorded in `file` when both chains have its contracts and they were built
 * from the current code (authorising the node and registering missing models as needed);
 * otherwise deploys it afresh on both chains with `deploySertnNetwork`: the Hyperlane cores (the
 * ISMs trusting `validator`, domains = chain ids), the hub's verifier, registry, gateway and market
 * (with the node authorised), the spoke's verifier, registry and SpokeGateway, `models` registered
 * on both, and the routes between them. Then makes sure an ExampleClassifier for `dappModel` runs
 * on each chain.
 */
export async function ensureDeployment(
  file: string,
  clients: StackClients,
  opts: {
    models: readonly string[]
    dappModel: string
    validator: Address
    /** Uploads a model's artifacts to the stack's storage (they are registered with their storage ids). */
    publish: (model: string) => Promise<ArtifactRefs>
    log?: (line: string) => void
  },
): Promise<EnsureDeploymentResult> {
  const { hub, spoke } = clients
  const recorded = readJson<Partial<Deployment>>(file)
  const notes: string[] = []
  const reason = await whyRedeploy(recorded, clients, opts)

  let deployment: Deployment
  if (reason === undefined) {
    deployment = structuredClone(recorded as Deployment)
    notes.push(...(await authoriseNode(deployment, clients)))
    for (const name of opts.models)
      if (!deployment.models[name]) notes.push(await registerOnBoth(file, deployment, clients, name, await opts.publish(name)))
    // Idempotent: re-enrols the routes and the spoke's model deployments on the hub if either is missing.
    await connectSpoke({
      hub: { client: hub.owner, domain: deployment.hub.domain, market: deployment.hub.market, registry: deployment.hub.registry },
      spoke: {
        client: spoke.owner,
        domain: deployment.spoke.domain,
        gateway: deployment.spoke.gateway,
        verifier: deployment.spoke.verifier,
      },
      models: networkOf(deployment).spokes[0]!.models,
    })
  } else {
    const startBlocks = {
      hub: Number(await hub.owner.getBlockNumber({ cacheTime: 0 })) + 1,
      spoke: Number(await spoke.owner.getBlockNumber({ cacheTime: 0 })) + 1,
    }
    const artifacts: Record<string, ArtifactRefs> = {}
    for (const name of opts.models) {
      opts.log?.(`${name}: uploading its artifacts`)
      artifacts[name] = await opts.publish(name)
    }
    const network = await deploySertnNetwork({
      hub: { name: 'hub', client: hub.owner, domain: hub.owner.chain.id },
      spokes: [{ name: 'spoke', client: spoke.owner, domain: spoke.owner.chain.id }],
      validators: [opts.validator],
      threshold: 1,
      models: opts.models,
      artifacts,
      nodes: [hub.node.account.address],
      allowInsecureSrs: true, // local anvils
      ...(opts.log ? { log: opts.log } : {}),
    })
    deployment = recordOf(network, startBlocks, {
      owner: hub.owner.account.address,
      node: hub.node.account.address,
      validator: opts.validator,
    })
    notes.push(reason)
  }
  saveDeployment(file, deployment)

  for (const chain of STACK_CHAINS) {
    const before = deployment[chain].dapps[opts.dappModel]
    await ensureDapp(file, deployment, chain, clients[chain].user, opts.dappModel)
    if (reason === undefined && deployment[chain].dapps[opts.dappModel] !== before)
      notes.push(`deployed an ExampleClassifier for ${opts.dappModel} on the ${chain}`)
  }
  return { deployment, action: reason !== undefined ? 'deployed' : notes.length ? 'updated' : 'reused', notes }
}

/** Authorises the node on the hub's gateway and market where it is not (notes for what was done). */
async function authoriseNode(d: Deployment, clients: StackClients): Promise<string[]> {
  const { owner, node } = clients.hub
  const who = node.account.address
  const notes: string[] = []
  if (!(await owner.readContract({ address: d.hub.gateway, abi: InferenceGateway.abi, functionName: 'isNode', args: [who] }))) {
    await confirm(
      owner,
      await owner.writeContract({ address: d.hub.gateway, abi: InferenceGateway.abi, functionName: 'setNode', args: [who, true] }),
    )
    notes.push(`authorised node ${who} on the hub gateway`)
  }
  if (!(await owner.readContract({ address: d.hub.market, abi: InferenceMarket.abi, functionName: 'isNode', args: [who] }))) {
    await confirm(
      owner,
      await owner.writeContract({ address: d.hub.market, abi: InferenceMarket.abi, functionName: 'setNode', args: [who, true] }),
    )
    notes.push(`authorised node ${who} on the hub market`)
  }
  d.node = who
  return notes
}

/** Registers `name` on the hub's and the spoke's registries and records the spoke's deployment on the hub. */
async function registerOnBoth(file: string, d: Deployment, clients: StackClients, name: string, artifacts: ArtifactRefs): Promise<string> {
  const modelId = modelIdOf(clients.hub.owner.account.address, name)
  for (const chain of STACK_CHAINS) {
    const exists = await clients[chain].owner.readContract({
      address: d[chain].registry,
      abi: ModelRegistry.abi,
      functionName: 'exists',
      args: [modelId],
    })
    if (exists)
      throw new SertnError(
        `model ${name} is registered on the ${chain}'s registry ${d[chain].registry} but not recorded in ${shown(file)}`,
        {
          details: 'Run `sertn start --reset` to start the local stack afresh.',
        },
      )
  }
  const registered: Partial<Record<StackChain, RegisteredModel>> = {}
  for (const chain of STACK_CHAINS) {
    const m = await registerModel(clients[chain].owner, {
      registry: d[chain].registry,
      model: name,
      artifacts,
      allowInsecureSrs: true /* local anvils */,
    })
    d[chain].vkas[name] = m.vka
    registered[chain] = m
  }
  await connectSpoke({
    hub: { client: clients.hub.owner, domain: d.hub.domain, market: d.hub.market, registry: d.hub.registry },
    spoke: { client: clients.spoke.owner, domain: d.spoke.domain, gateway: d.spoke.gateway, verifier: d.spoke.verifier },
    models: [registered.spoke!],
  })
  d.models[name] = { modelId, fingerprint: modelFingerprint(name), artifacts }
  saveDeployment(file, d)
  return `registered ${name} on both chains`
}

/**
 * The ExampleClassifier for `model` on `chain` (deployed by `user` when absent or built from older
 * code), recorded in `file`. The model must be registered on that chain's registry.
 */
export async function ensureDapp(
  file: string,
  deployment: Deployment,
  chain: StackChain,
  user: SertnClient,
  model: string,
): Promise<Address> {
  if (deployment.dappFingerprint !== dappFingerprint()) {
    for (const c of STACK_CHAINS) deployment[c].dapps = {}
    deployment.dappFingerprint = dappFingerprint()
  }
  const on = deployment[chain]
  const known = on.dapps[model]
  if (known && (await hasCode(user, known))) return known
  const modelId = deployment.models[model]?.modelId ?? modelIdOf(deployment.owner, model)
  const exists = await user.readContract({ address: on.registry, abi: ModelRegistry.abi, functionName: 'exists', args: [modelId] })
  if (!exists) {
    throw new SertnError(`model ${model} is not registered on the local stack's ${chain} registry`, {
      details: `Registered: ${Object.keys(deployment.models).join(', ') || '(none)'}. Restart the stack with \`sertn start --model ${model}\` to register it.`,
    })
  }
  const dapp = await deployContract(user, ExampleClassifier, [on.gateway, modelId])
  on.dapps[model] = dapp
  saveDeployment(file, deployment)
  return dapp
}

export function saveDeployment(file: string, deployment: Deployment): void {
  try {
    writeFileSync(file, `${JSON.stringify(deployment, null, 2)}\n`)
  } catch (err) {
    throw new SertnError(`cannot write ${shown(file)}: ${err instanceof Error ? err.message : String(err)}`)
  }
}
