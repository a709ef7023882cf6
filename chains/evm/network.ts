/**
 * A Sertn network on EVM chains: the hub (registry, node registry, its own gateway, the
 * InferenceMarket, and the nodes' pools for its models) and spoke
 * chains (registry, SpokeGateway), the drop-in oracle facades over every gateway, each spoke joined to the hub over the messaging network it names
 * (any messenger plugin: Hyperlane, LayerZero, …), whose core contracts and ports this deploys on
 * both ends and joins. The one place that deploys and connects a network, for the local stack, the
 * tests, the bench and the demo; {@link networkChainsConfig} writes the node's `chains`
 * configuration for it.
 */
import type { Address } from 'viem'
import type { ArtifactRefs } from '../../core/artifacts.ts'
import type { ChainConfig } from '../../core/config.ts'
import { ConfigError } from '../../core/errors.ts'
import type { MessengerDeployment, MessengerEndpoint, MessengerPlugin } from '../../core/plugins.ts'
import type { SertnClient } from './clients.ts'
import { connectSpoke, deployMarket, deploySpoke, type SpokeDeployment } from './crosschain.ts'
import {
  deployFacades,
  deployGateway,
  deployRegistry,
  registerModel,
  type CoreDeployment,
  type FacadeDeployment,
  type GatewayConfig,
  type RegisteredModel,
} from './deploy.ts'
import {
  DEFAULT_NODE_CAPACITY,
  DEFAULT_NODE_POOL,
  deployNodeRegistry,
  joinPool,
  setPoolMinimumStake,
  type NodePoolParameters,
} from './nodes.ts'

export type NetworkChainInput = {
  /** The chain's name in the node's configuration (lowercase letters and digits). */
  name: string
  /** Deploys and owns everything on the chain. */
  client: SertnClient
}

export type NetworkSpokeInput = NetworkChainInput & {
  /** The messaging network that joins it to the hub (a messenger plugin's name). */
  messenger: string
}

export type DeploySertnNetworkParameters = {
  hub: NetworkChainInput
  spokes: readonly NetworkSpokeInput[]
  /** The messenger plugins, by name; each spoke's `messenger` must be one of them. */
  messengers: Readonly<Record<string, MessengerPlugin<SertnClient>>>
  /** The addresses every messaging network's security trusts (validators, DVN signers), and how many must sign. */
  attesters: readonly Address[]
  threshold: number
  /** Origin blocks before a message is attested, where the network records it on chain (default 0). */
  confirmations?: number
  /** The accounts the messengers' local agents submit from. */
  submitters?: readonly Address[]
  /** A messenger's protocol fee per message (wei), by messenger name; 0 by default. */
  fees?: Readonly<Record<string, bigint>>
  /** Models (folders under circuits/, or directories) to register on every chain. */
  models: readonly string[]
  /** Where each model's artifacts are stored, by entry of `models` (from `publishModelArtifacts`); default: not uploaded. */
  artifacts?: Readonly<Record<string, ArtifactRefs>>
  /**
   * The nodes (hub clients of their accounts, funded): each stakes and joins the pool of every hub
   * model, active from the epoch after this deployment (a local chain gets there with `mineToNextEpoch`).
   */
  nodes: readonly SertnClient[]
  /** Compute units per epoch each node commits to each model (default {@link DEFAULT_NODE_CAPACITY}). */
  nodeCapacity?: bigint
  /** How the hub's node registry runs its pools (default {@link DEFAULT_NODE_POOL}). */
  pool?: Partial<NodePoolParameters>
  allowInsecureSrs?: boolean
  gatewayConfig?: Partial<GatewayConfig>
  /** Progress lines. */
  log?: (line: string) => void
  /** Records each step and skips those recorded (default: every step runs, nothing is recorded). */
  journal?: NetworkJournal
}

export type NetworkHub = {
  name: string
  /** Its Sertn domain (the chain id). */
  chainId: number
  core: CoreDeployment
  market: Address
  /** Each messaging network's deployment on the hub, by messenger name (those its spokes use). */
  messengers: Record<string, MessengerDeployment>
  models: RegisteredModel[]
  /** The drop-in oracle facades over its gateway (absent in networks recorded before them). */
  facades?: FacadeDeployment
}

export type NetworkSpoke = {
  name: string
  chainId: number
  spoke: SpokeDeployment
  /** The messaging network that joins it to the hub, and its deployment on the spoke. */
  messenger: MessengerDeployment
  models: RegisteredModel[]
  /** The drop-in oracle facades over its gateway (absent in networks recorded before them). */
  facades?: FacadeDeployment
}

export type SertnNetwork = { hub: NetworkHub; spokes: NetworkSpoke[] }

/** The messenger plugin `name`, or a ConfigError naming `path`. */
export function messengerNamed(
  messengers: Readonly<Record<string, MessengerPlugin<SertnClient>>>,
  name: string,
  path: string,
): MessengerPlugin<SertnClient> {
  const m = messengers[name]
  if (!m) throw new ConfigError(`${path}: unknown messenger "${name}" (known: ${Object.keys(messengers).sort().join(', ') || 'none'})`)
  return m
}

/**
 * What a step of {@link deploySertnNetwork} does: `deploy` creates contracts (a journal reuses its
 * recorded result while the contracts still have code), `configure` reads the chains' state and
 * sends only what is missing (routes, allow-lists, registrations, pools), so it is run every time.
 */
export type NetworkStepKind = 'deploy' | 'configure'

/** One named step of a network's deployment. */
export type NetworkStep = {
  /** Unique in a deployment: `hub.registry`, `spoke.<name>.messenger`, … */
  name: string
  /** The chains it sends on, by name (the first is where its contracts are, for a deploy step). */
  chains: readonly string[]
  kind: NetworkStepKind
}

/**
 * Runs the steps of a deployment. A journal records each step's result (and skips a `deploy` step
 * whose result is recorded) so that a rerun is a no-op and an interrupted run finishes; without
 * one, every step runs ({@link RUN_EVERY_STEP}).
 */
export interface NetworkJournal {
  step<T>(step: NetworkStep, run: () => Promise<T>): Promise<T>
}

/** The journal of a deployment that records nothing: every step runs. */
export const RUN_EVERY_STEP: NetworkJournal = { step: (_step, run) => run() }

/**
 * The names of a network's steps, in order (what {@link deploySertnNetwork} runs for these chains
 * and messengers): for the operator's view of a deployment and for tests that stop after one.
 */
export function networkStepNames(hub: string, spokes: readonly { name: string; messenger: string }[]): string[] {
  const messengers = [...new Set(spokes.map((s) => s.messenger))]
  return [
    `${hub}.registry`,
    `${hub}.nodeRegistry`,
    `${hub}.gateway`,
    `${hub}.models`,
    `${hub}.market`,
    `${hub}.pools`,
    `${hub}.facades`,
    ...messengers.flatMap((m) => [`${hub}.messenger.${m}`, `${hub}.messenger.${m}.allow`]),
    ...spokes.flatMap((s) => [`${s.name}.messenger`, `${s.name}.contracts`, `${s.name}.models`, `${s.name}.connect`, `${s.name}.facades`]),
  ]
}

/**
 * Deploys the hub and the spokes, each messaging network's contracts where it is used, and connects
 * them, in named steps (see {@link networkStepNames}) run through `p.journal` when given.
 */
export async function deploySertnNetwork(p: DeploySertnNetworkParameters): Promise<SertnNetwork> {
  const log = p.log ?? (() => undefined)
  const journal = p.journal ?? RUN_EVERY_STEP
  const plugins = p.spokes.map((s) => messengerNamed(p.messengers, s.messenger, `spoke ${s.name}: messenger`))
  const names = new Set([p.hub.name, ...p.spokes.map((s) => s.name)])
  if (names.size !== p.spokes.length + 1) throw new ConfigError('the hub and the spokes need distinct names')
  const allowInsecureSrs = p.allowInsecureSrs ?? false
  const register = async (client: SertnClient, registry: Address) => {
    const out: RegisteredModel[] = []
    for (const model of p.models) {
      const artifacts = p.artifacts?.[model]
      out.push(await registerModel(client, { registry, model, allowInsecureSrs, ...(artifacts ? { artifacts } : {}) }))
    }
    return out
  }
  const deployOf = (m: MessengerPlugin<SertnClient>, c: NetworkChainInput) =>
    m.deploy(
      { name: c.name, domain: c.client.chain.id, client: c.client },
      { attesters: p.attesters, threshold: p.threshold, submitters: p.submitters ?? [], fee: p.fees?.[m.name] ?? 0n },
    )
  const hubName = p.hub.name
  const hubClient = p.hub.client
  const onHub = (name: string, kind: NetworkStepKind): NetworkStep => ({ name: `${hubName}.${name}`, chains: [hubName], kind })

  log(`hub ${hubName}: verifier, registry, node registry, gateway, market`)
  const { verifier, registry } = await journal.step(onHub('registry', 'deploy'), () => deployRegistry(hubClient, { allowInsecureSrs }))
  const { nodeRegistry } = await journal.step(onHub('nodeRegistry', 'deploy'), async () => ({
    nodeRegistry: await deployNodeRegistry(hubClient, { registry, ...(p.pool ? { pool: p.pool } : {}) }),
  }))
  const { gateway } = await journal.step(onHub('gateway', 'deploy'), async () => ({
    gateway: await deployGateway(hubClient, { registry, nodeRegistry, gatewayConfig: p.gatewayConfig }),
  }))
  const core: CoreDeployment = { verifier, registry, nodeRegistry, gateway }
  const hubModels = await journal.step(onHub('models', 'configure'), () => register(hubClient, registry))
  const { market } = await journal.step(onHub('market', 'deploy'), async () => ({
    market: await deployMarket(hubClient, { registry, nodeRegistry }),
  }))
  log(`hub ${hubName}: ${p.nodes.length} node(s) join the pools of ${hubModels.length} model(s)`)
  await journal.step(onHub('pools', 'configure'), async () => {
    const minimumStake = p.pool?.minimumStake ?? DEFAULT_NODE_POOL.minimumStake
    for (const m of hubModels) await setPoolMinimumStake(hubClient, nodeRegistry, m.modelId, minimumStake)
    const notes: string[] = []
    for (const node of p.nodes) {
      notes.push(
        ...(await joinPool(node, nodeRegistry, {
          models: hubModels.map((m) => m.modelId),
          capacity: p.nodeCapacity ?? DEFAULT_NODE_CAPACITY,
        })),
      )
    }
    return { minimumStake: minimumStake.toString(), notes }
  })
  const hubFacades = await journal.step(onHub('facades', 'deploy'), () => deployFacades(hubClient, { gateway, models: hubModels }))
  const hubChain = { name: hubName, domain: hubClient.chain.id, client: hubClient }
  const hubMessengers: Record<string, MessengerDeployment> = {}
  for (const m of new Set(plugins)) {
    log(`hub ${hubName}: ${m.name} core and port`)
    hubMessengers[m.name] = await journal.step(onHub(`messenger.${m.name}`, 'deploy'), () => deployOf(m, p.hub))
    await journal.step(onHub(`messenger.${m.name}.allow`, 'configure'), async () => {
      await m.allowApp({ chain: hubChain, deployment: hubMessengers[m.name]! }, market)
      return { app: market }
    })
  }
  const hub: NetworkHub = {
    name: hubName,
    chainId: hubClient.chain.id,
    core,
    market,
    messengers: hubMessengers,
    models: hubModels,
    facades: hubFacades,
  }

  const spokes: NetworkSpoke[] = []
  for (const [i, s] of p.spokes.entries()) {
    const m = plugins[i]!
    const onSpoke = (name: string, kind: NetworkStepKind, chains = [s.name]): NetworkStep => ({ name: `${s.name}.${name}`, chains, kind })
    log(`spoke ${s.name}: ${m.name} core and port, verifier, registry, spoke gateway`)
    const chain = { name: s.name, domain: s.client.chain.id, client: s.client }
    const messenger = await journal.step(onSpoke('messenger', 'deploy'), () => deployOf(m, s))
    const spoke = await journal.step(onSpoke('contracts', 'deploy'), () =>
      deploySpoke(s.client, { gatewayConfig: p.gatewayConfig, allowInsecureSrs }),
    )
    const models = await journal.step(onSpoke('models', 'configure'), () => register(s.client, spoke.registry))
    log(`spoke ${s.name}: ${m.name} route to and from the hub market, model deployments recorded on the hub`)
    await journal.step(onSpoke('connect', 'configure', [s.name, hubName]), async () => {
      const spokeEnd: MessengerEndpoint<SertnClient> = { chain, deployment: messenger }
      const hubEnd: MessengerEndpoint<SertnClient> = { chain: hubChain, deployment: hubMessengers[m.name]! }
      await m.allowApp(spokeEnd, spoke.gateway)
      await m.connect(hubEnd, spokeEnd, { confirmations: p.confirmations ?? 0 })
      await connectSpoke({
        hub: { client: hubClient, domain: hub.chainId, market, registry, port: hubEnd.deployment.port },
        spoke: {
          client: s.client,
          domain: chain.domain,
          gateway: spoke.gateway,
          verifier: spoke.verifier,
          registry: spoke.registry,
          port: messenger.port,
        },
        models,
      })
      return { hubPort: hubEnd.deployment.port, spokePort: messenger.port }
    })
    const facades = await journal.step(onSpoke('facades', 'deploy'), () => deployFacades(s.client, { gateway: spoke.gateway, models }))
    spokes.push({ name: s.name, chainId: chain.domain, spoke, messenger, models, facades })
  }
  return { hub, spokes }
}

/** The node's `chains` configuration for a network (RPC URLs by chain name). */
export function networkChainsConfig(
  network: SertnNetwork,
  rpcUrls: Readonly<Record<string, string>>,
  extra: Partial<Pick<ChainConfig, 'confirmations' | 'pollingIntervalMs' | 'startBlock'>> = {},
): Record<string, Record<string, unknown>> {
  const rpc = (name: string) => {
    const url = rpcUrls[name]
    if (!url) throw new ConfigError(`no RPC URL for chain ${name}`)
    return url
  }
  const { hub } = network
  const hubMessengers = Object.values(hub.messengers)
  const chains: Record<string, Record<string, unknown>> = {
    [hub.name]: {
      chainId: hub.chainId,
      rpcUrl: rpc(hub.name),
      gateway: hub.core.gateway,
      registry: hub.core.registry,
      market: hub.market,
      ...(hub.facades ? { infernetCoordinator: hub.facades.infernet } : {}),
      ...(hubMessengers.length > 0 ? { messenger: hubMessengers.length === 1 ? hubMessengers[0] : hubMessengers } : {}),
      ...extra,
    },
  }
  for (const s of network.spokes) {
    chains[s.name] = {
      chainId: s.chainId,
      rpcUrl: rpc(s.name),
      gateway: s.spoke.gateway,
      registry: s.spoke.registry,
      hub: hub.name,
      messenger: s.messenger,
      ...(s.facades ? { infernetCoordinator: s.facades.infernet } : {}),
      ...extra,
    }
  }
  return chains
}
