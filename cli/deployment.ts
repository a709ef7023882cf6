/**
 * The local stack's contracts: the hub and its spokes, each joined to it by its messenger (the
 * local network module's `deployLocalNetwork`), reused from `deployment.json` when every (persisted)
 * chain still has every recorded contract and they were built from the same code, deployed afresh
 * on every chain otherwise. Then the example dApps: an ExampleClassifier on each chain (the hub's
 * own gateway is a requester too).
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { formatEther, getAddress, type Address } from 'viem'
import { deployContract, readManifest, registerModel, vkaBytecode, type RegisteredModel } from '../chains/evm/deploy.ts'
import type { SertnClient } from '../chains/evm/clients.ts'
import { connectSpoke } from '../chains/evm/crosschain.ts'
import type { NetworkSpoke, SertnNetwork } from '../chains/evm/network.ts'
import { allowMarket, DEFAULT_NODE_POOL, isActiveIn, joinPool, mineToNextEpoch, setPoolMinimumStake } from '../chains/evm/nodes.ts'
import { deployLocalNetwork } from '../chains/local.ts'
import {
  ExampleClassifier,
  Halo2VerifierReusable,
  InferenceGateway,
  InferenceMarket,
  ModelRegistry,
  NodeRegistry,
  SertnAIOracle,
  SertnInfernetCoordinator,
  SpokeGateway,
} from '../contracts/artifacts/index.ts'
import type { ArtifactRefs } from '../core/artifacts.ts'
import { modelIdOf } from '../core/models.ts'
import { SertnError } from '../core/errors.ts'
import type { MessengerDeployment } from '../core/plugins.ts'
import { loadMessengers } from '../plugins/messengers/index.ts'
import {
  DEPLOYMENT_VERSION,
  readJson,
  UPGRADABLE_DEPLOYMENT_VERSIONS,
  shown,
  STACK_CHAIN_SPECS,
  STACK_CHAINS,
  STACK_SPOKES,
  type ChainDeployment,
  type Deployment,
  type StackChain,
} from './common.ts'

const hash = (...parts: string[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p).update('\n')
  return h.digest('hex').slice(0, 32)
}

/** The network's code: the verifier, the registry, the node registry, both gateways, the market, the oracle facades and each messenger's contracts. */
export const networkFingerprint = async () =>
  hash(
    ...[
      Halo2VerifierReusable,
      ModelRegistry,
      NodeRegistry,
      InferenceGateway,
      InferenceMarket,
      SpokeGateway,
      SertnAIOracle,
      SertnInfernetCoordinator,
    ].map((a) => a.bytecode),
    ...Object.values(await loadMessengers(STACK_SPOKES.map((s) => STACK_CHAIN_SPECS[s].messenger))).map((m) => m.fingerprint),
  )
/** A model's circuit: its VKA and its manifest. */
export const modelFingerprint = (name: string) => hash(vkaBytecode(name), readManifest(name).artifactsHash)
export const dappFingerprint = () => hash(ExampleClassifier.bytecode)

/** Clients on one chain: 0 owns, 1 is the (first operator's) node, 2 the dApps' user; `nodes`: every operator's node (1, then 5). */
export type ChainClients = { owner: SertnClient; node: SertnClient; nodes: SertnClient[]; user: SertnClient }
export type StackClients = Record<StackChain, ChainClients>

export type EnsureDeploymentResult = {
  deployment: Deployment
  /** What was done: nothing (`reused`), everything (`deployed`, with the reason), or some of it. */
  action: 'reused' | 'deployed' | 'updated'
  notes: string[]
}

const hasCode = async (client: SertnClient, address: Address) => ((await client.getCode({ address })) ?? '0x').length > 2

/** A messenger deployment's contracts: its address-valued fields. */
const messengerContracts = (m: MessengerDeployment): [string, Address][] =>
  Object.entries(m)
    .filter((e): e is [string, Address] => typeof e[1] === 'string' && /^0x[0-9a-fA-F]{40}$/.test(e[1]))
    .map(([field, a]) => [`${m.kind} ${field}`, a])

/** The recorded contracts of one chain that have no code there (names for messages; `all` when none has). */
async function missingCode(
  client: SertnClient,
  chain: ChainDeployment & { market?: Address; nodeRegistry?: Address },
): Promise<string[] | 'all'> {
  const expected: [string, Address][] = [
    ['verifier', chain.verifier],
    ['registry', chain.registry],
    ['gateway', chain.gateway],
    ...(chain.market ? [['market', chain.market] as [string, Address]] : []),
    ...(chain.nodeRegistry ? [['node registry', chain.nodeRegistry] as [string, Address]] : []),
    ...chain.messengers.flatMap(messengerContracts),
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
  const version = recorded.version as number | undefined
  const known = version === DEPLOYMENT_VERSION || (version !== undefined && UPGRADABLE_DEPLOYMENT_VERSIONS.includes(version))
  if (!known || STACK_CHAINS.some((c) => !recorded[c]) || !recorded.hub?.nodeRegistry)
    return 'the recorded deployment is from an older stack (other chains, no node registry, or another record format)'
  for (const chain of STACK_CHAINS) {
    const id = clients[chain].owner.chain.id
    if (recorded[chain]!.chainId !== id) return `the recorded ${chain} is chain ${recorded[chain]!.chainId}, this ${chain} is chain ${id}`
  }
  for (const spoke of STACK_SPOKES) {
    const kinds = recorded[spoke]!.messengers.map((m) => m.kind).join(', ')
    if (kinds !== STACK_CHAIN_SPECS[spoke].messenger) return `the recorded ${spoke} is joined to the hub by ${kinds || 'nothing'}`
  }
  if (recorded.fingerprint !== (await networkFingerprint())) return 'the contracts changed since they were deployed'
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

/** The record of a freshly deployed network. */
async function recordOf(
  network: SertnNetwork,
  startBlocks: Record<StackChain, number>,
  accounts: { owner: Address; node: Address; nodes: Address[]; validator: Address },
): Promise<Deployment> {
  const vkasOf = (models: RegisteredModel[]) => Object.fromEntries(models.map((m) => [m.name, m.vka]))
  const batchVkasOf = (models: RegisteredModel[]) => Object.fromEntries(models.map((m) => [m.name, [...m.batches]]))
  const spoke = (name: string): ChainDeployment => {
    const s = network.spokes.find((x) => x.name === name)!
    return {
      chainId: s.chainId,
      deployedAtBlock: startBlocks[name as StackChain],
      ...s.spoke,
      messengers: [s.messenger],
      vkas: vkasOf(s.models),
      batchVkas: batchVkasOf(s.models),
      dapps: {},
      ...(s.facades ? { facades: s.facades } : {}),
    }
  }
  return {
    version: DEPLOYMENT_VERSION,
    fingerprint: await networkFingerprint(),
    ...accounts,
    hub: {
      chainId: network.hub.chainId,
      deployedAtBlock: startBlocks.hub,
      ...network.hub.core,
      market: network.hub.market,
      messengers: Object.values(network.hub.messengers),
      vkas: vkasOf(network.hub.models),
      batchVkas: batchVkasOf(network.hub.models),
      dapps: {},
      ...(network.hub.facades ? { facades: network.hub.facades } : {}),
    },
    spoke: spoke('spoke'),
    spokelz: spoke('spokelz'),
    models: Object.fromEntries(
      network.hub.models.map((m) => [m.name, { modelId: m.modelId, fingerprint: modelFingerprint(m.name), artifacts: m.artifacts }]),
    ),
    dappFingerprint: dappFingerprint(),
  }
}

/** The network a deployment record describes, as `networkChainsConfig` takes it. */
export function networkOf(d: Deployment): SertnNetwork {
  const models = (c: ChainDeployment): RegisteredModel[] =>
    Object.entries(c.vkas).map(([name, vka]) => ({
      name,
      vka,
      modelId: d.models[name]!.modelId,
      manifest: readManifest(name).manifest,
      artifacts: d.models[name]!.artifacts,
      batches: c.batchVkas?.[name] ?? [],
    }))
  return {
    hub: {
      name: 'hub',
      chainId: d.hub.chainId,
      core: { verifier: d.hub.verifier, registry: d.hub.registry, nodeRegistry: d.hub.nodeRegistry, gateway: d.hub.gateway },
      market: d.hub.market,
      messengers: Object.fromEntries(d.hub.messengers.map((m) => [m.kind, m])),
      models: models(d.hub),
      ...(d.hub.facades ? { facades: d.hub.facades } : {}),
    },
    spokes: STACK_SPOKES.map(
      (name): NetworkSpoke => ({
        name,
        chainId: d[name].chainId,
        spoke: { verifier: d[name].verifier, registry: d[name].registry, gateway: d[name].gateway },
        messenger: d[name].messengers[0]!,
        models: models(d[name]),
        ...(d[name].facades ? { facades: d[name].facades } : {}),
      }),
    ),
  }
}

/**
 * Reuses the network recorded in `file` when every chain has its contracts and they were built from
 * the current code (registering missing models and having every operator join their pools as
 * needed; a record of an older, upgradable format is brought up to date), otherwise deploys it
 * afresh on every chain with `deployLocalNetwork`: each spoke's messenger on it and on the hub
 * (trusting the local attester), the hub's verifier, registry, node registry, gateway and market
 * (every operator's node staked in every model's pool, active), each spoke's verifier,
 * registry and SpokeGateway, `models` registered on all, and the routes between them. Then makes
 * sure an ExampleClassifier for `dappModel` runs on each chain.
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
  const { hub } = clients
  const recorded = readJson<Partial<Deployment>>(file)
  const notes: string[] = []
  const reason = await whyRedeploy(recorded, clients, opts)

  let deployment: Deployment
  if (reason === undefined) {
    deployment = structuredClone(recorded as Deployment)
    deployment.version = DEPLOYMENT_VERSION // an upgradable record gains what it lacks (`nodes`) below
    for (const name of opts.models)
      if (!deployment.models[name]) notes.push(await registerOnAll(file, deployment, clients, name, await opts.publish(name)))
    notes.push(...(await joinNodes(deployment, clients)))
    // Idempotent: re-enrols the routes and the spokes' model deployments on the hub where missing.
    const network = networkOf(deployment)
    for (const s of network.spokes) await connectToHub(deployment, clients, s)
  } else {
    const startBlocks = Object.fromEntries(
      await Promise.all(STACK_CHAINS.map(async (c) => [c, Number(await clients[c].owner.getBlockNumber({ cacheTime: 0 })) + 1] as const)),
    ) as Record<StackChain, number>
    const artifacts: Record<string, ArtifactRefs> = {}
    for (const name of opts.models) {
      opts.log?.(`${name}: uploading its artifacts`)
      artifacts[name] = await opts.publish(name)
    }
    const chains = Object.fromEntries(STACK_CHAINS.map((c) => [c, { spec: STACK_CHAIN_SPECS[c], ...clients[c] }]))
    const network = await deployLocalNetwork(
      chains,
      STACK_CHAINS.map((c) => STACK_CHAIN_SPECS[c]),
      { models: opts.models, artifacts, ...(opts.log ? { log: opts.log } : {}) },
    )
    deployment = await recordOf(network, startBlocks, {
      owner: hub.owner.account.address,
      node: hub.node.account.address,
      nodes: hub.nodes.map((n) => n.account.address),
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

/**
 * Makes the recorded hub serve every operator's requests where it does not yet (notes for what was
 * done): the gateway and the market allowed to open jobs in the node registry, each recorded
 * model's minimum stake set, each operator's node staked and in every model's pool, and (a local
 * chain) mined to the next epoch when one is not active yet. Records the operators' accounts.
 */
async function joinNodes(d: Deployment, clients: StackClients): Promise<string[]> {
  const { owner, nodes } = clients.hub
  const registry = d.hub.nodeRegistry
  const notes: string[] = []
  if (await allowMarket(owner, registry, d.hub.gateway)) notes.push(`allowed the hub gateway to open jobs in the node registry`)
  if (await allowMarket(owner, registry, d.hub.market)) notes.push(`allowed the hub market to open jobs in the node registry`)
  const models = Object.entries(d.models)
  for (const [name, m] of models)
    if (await setPoolMinimumStake(owner, registry, m.modelId, DEFAULT_NODE_POOL.minimumStake))
      notes.push(`set the minimum stake of ${name}'s pool to ${formatEther(DEFAULT_NODE_POOL.minimumStake)} ETH`)
  const nameOf = new Map(models.map(([name, m]) => [m.modelId.toLowerCase(), name]))
  const inactive: string[] = []
  for (const [i, node] of nodes.entries()) {
    const who = node.account.address
    const operator = `operator ${i + 1} (${who})`
    // joinPool's notes name the node and the model id: here, the operator and the model's name.
    for (const note of await joinPool(node, registry, { models: models.map(([, m]) => m.modelId) }))
      notes.push(
        note
          .replace(`node ${who}`, operator)
          .replace(/the pool of model (0x[0-9a-fA-F]{64})/, (all, id: string) =>
            nameOf.has(id.toLowerCase()) ? `${nameOf.get(id.toLowerCase())}'s pool` : all,
          ),
      )
    const waiting: string[] = []
    for (const [name, m] of models) if (!(await isActiveIn(owner, registry, who, m.modelId))) waiting.push(name)
    if (waiting.length) inactive.push(`operator ${i + 1} serves ${waiting.join(', ')}`)
  }
  if (inactive.length) {
    const epoch = await mineToNextEpoch(owner, registry)
    notes.push(`mined the hub to epoch ${epoch}, where ${inactive.join(' and ')}`)
  }
  d.node = nodes[0]!.account.address
  d.nodes = nodes.map((n) => n.account.address)
  return notes
}

/** Joins a recorded spoke to the hub (routes, the spoke's verifier and model deployments on the hub). Idempotent. */
async function connectToHub(d: Deployment, clients: StackClients, s: NetworkSpoke): Promise<void> {
  const name = s.name as StackChain
  const kind = s.messenger.kind
  const hubPort = d.hub.messengers.find((m) => m.kind === kind)?.port
  if (!hubPort) throw new SertnError(`the recorded hub has no ${kind} messenger for the ${name}; run \`sertn start --reset\``)
  await connectSpoke({
    hub: { client: clients.hub.owner, domain: d.hub.chainId, market: d.hub.market, registry: d.hub.registry, port: hubPort },
    spoke: {
      client: clients[name].owner,
      domain: d[name].chainId,
      gateway: d[name].gateway,
      verifier: d[name].verifier,
      registry: d[name].registry,
      port: s.messenger.port,
    },
    models: s.models,
  })
}

/** Registers `name` on every chain's registry and records the spokes' deployments on the hub. */
async function registerOnAll(file: string, d: Deployment, clients: StackClients, name: string, artifacts: ArtifactRefs): Promise<string> {
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
    d[chain].batchVkas = { ...d[chain].batchVkas, [name]: [...m.batches] }
    registered[chain] = m
  }
  d.models[name] = { modelId, fingerprint: modelFingerprint(name), artifacts }
  for (const s of networkOf(d).spokes) await connectToHub(d, clients, { ...s, models: [registered[s.name as StackChain]!] })
  saveDeployment(file, d)
  return `registered ${name} on every chain`
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
