/**
 * A local Sertn network, assembled in one place for the CLI (`sertn start`, the demo), the tests and
 * the bench: anvil chains (a hub, and spokes each joined to the hub by the messenger it names), the
 * contracts deployed and connected by {@link deploySertnNetwork} (or a recorded deployment reused),
 * the messengers' local agents, the node's services (the Temporal dev server, arlocal with a funded
 * wallet) when asked for, and the node configuration that points at all of it.
 *
 * The keys are local development keys (anvil's well-known accounts, an attester key derived from a
 * public label): insecure by design, for local chains only.
 *
 * `stop()` stops everything it started, agents first, in reverse order; so does a failure while
 * starting. `processGroups()` lists the child processes' groups for a last-resort kill.
 */
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Connection } from '@temporalio/client'
import { keccak256, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { publishModelArtifacts, type ArtifactRefs } from '../core/artifacts.ts'
import { modelDir } from '../core/manifest.ts'
import { parseConfig, type SertnConfig, type SertnConfigInput } from '../core/config.ts'
import { ConfigError } from '../core/errors.ts'
import type { MessengerAgentEvent, MessengerPlugin } from '../core/plugins.ts'
import { loadMessengers, startMessengerAgentsFromConfig, type RunningMessengerAgents } from '../plugins/messengers/index.ts'
import { arweaveStorage, loadOrCreateLocalWallet, startArlocal, type ArlocalInstance } from '../plugins/storage/arweave/index.ts'
import { connectTemporalClient } from '../workflows/connection.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../workflows/worker/temporal-dev-server.ts'
import { startAnvil, type AnvilInstance } from './anvil.ts'
import { anvilPrivateKey, createSertnClient, type SertnClient } from './evm/clients.ts'
import { deploySertnNetwork, networkChainsConfig, type SertnNetwork } from './evm/network.ts'
import { mineToNextEpoch, type NodePoolParameters } from './evm/nodes.ts'

const CIRCUITS = resolve(fileURLToPath(new URL('../circuits', import.meta.url)))

/** One chain of a local network. */
export type LocalChainSpec = {
  /** Its name in the configuration (lowercase letters and digits). */
  name: string
  chainId: number
  /** A spoke: the messenger that joins it to the hub. The hub (the first chain) has none. */
  messenger?: string
  /** anvil's port (default: a free one). */
  port?: number
  /** anvil's `--state` file: the chain is loaded from it and written to it. */
  stateFile?: string
  /** Seconds between blocks (default: a block per transaction). */
  blockTime?: number
  /**
   * Old blocks' states anvil keeps on disk for calls and traces at past blocks (anvil's
   * `--max-persisted-states`; its default keeps a few thousand blocks).
   */
  historyStates?: number
}

/** The local stack's chains: the hub, a spoke over Hyperlane and a spoke over LayerZero. */
export const LOCAL_CHAINS = {
  hub: { name: 'hub', chainId: 31337 },
  spoke: { name: 'spoke', chainId: 31338, messenger: 'hyperlane' },
  spokelz: { name: 'spokelz', chainId: 31339, messenger: 'layerzero' },
} as const satisfies Record<string, LocalChainSpec>

/** The label the local attester key (validator, DVN signer) is derived from: public, so the key is no secret. */
export const LOCAL_ATTESTER_LABEL = 'sertn local stack validator (insecure, local only)'
export const LOCAL_ATTESTER_KEY: Hex = keccak256(toHex(LOCAL_ATTESTER_LABEL))
export const LOCAL_ATTESTER: Address = privateKeyToAccount(LOCAL_ATTESTER_KEY).address

/** The anvil accounts of the local roles. */
export const LOCAL_ACCOUNTS = { owner: 0, node: 1, user: 2, relayer: 3, stranger: 4, node2: 5 } as const

/** The anvil accounts of the local operators, in order: the first is the node (`LOCAL_ACCOUNTS.node`). */
export const LOCAL_OPERATOR_ACCOUNTS = [LOCAL_ACCOUNTS.node, LOCAL_ACCOUNTS.node2, 6, 7] as const

export type LocalChain = {
  spec: LocalChainSpec
  anvil: AnvilInstance
  rpcUrl: string
  /** Deploys and owns every contract. */
  owner: SertnClient
  /** The node's account (the first operator's). */
  node: SertnClient
  /** Every operator's account (the first is `node`): each joins the hub's pools. */
  nodes: SertnClient[]
  /** A dApp user. */
  user: SertnClient
  /** An account with no role. */
  stranger: SertnClient
}

export type LocalServices = {
  /** The Temporal server's database (a restart reuses it). */
  dbFile: string
  /** The running Temporal server; {@link LocalServices.restartTemporal} replaces it. */
  temporal: TemporalDevServer
  arlocal: ArlocalInstance
  walletFile: string
  connection: Connection
  /** Restarts the Temporal server on the same port and database. */
  restartTemporal(): Promise<void>
}

export type LocalNetworkOptions = {
  /** The chains; the first is the hub. */
  chains: readonly LocalChainSpec[]
  /** Where services and agents keep their state. */
  dataDir: string
  /** Models (folders under circuits/) registered on every chain (default: the demo model). */
  models?: readonly string[]
  /** Start the Temporal dev server and arlocal (default: no). */
  services?: boolean | { temporalPort?: number; temporalUiPort?: number; arlocalPort?: number }
  /**
   * With services: upload each model's artifacts to arlocal and register the models with their
   * storage refs, as `npm start` and `sertn model register` do, so that anyone can fetch a model
   * from storage and re-verify its proofs (default: no; the node reads the repository's circuits).
   */
  publishArtifacts?: boolean
  /** Run the messengers' agents in this process (default: when there are spokes). */
  agents?: boolean
  /** The node's watchers and the agents. */
  pollingIntervalMs?: number
  confirmations?: number
  /**
   * Blocks on top of a message before the agents attest it. Default: 1 when the chains mine on an
   * interval, 0 when they mine a block per transaction (no block would ever come on top of a
   * message that nothing follows).
   */
  agentConfirmations?: number
  /** Configuration sections merged over the generated ones (prover, models, …). */
  config?: Partial<SertnConfigInput>
  /**
   * Node operators joining the hub's pools (default 1, at most {@link LOCAL_OPERATOR_ACCOUNTS}'s
   * length): operator i uses anvil account `LOCAL_OPERATOR_ACCOUNTS[i]`; the node configuration is the first's.
   */
  operators?: number
  /** How the hub's node registry runs its pools (default: DEFAULT_NODE_POOL of chains/evm/nodes.ts). */
  pool?: Partial<NodePoolParameters>
  /** Compute units per epoch each operator commits to each model (default: DEFAULT_NODE_CAPACITY of chains/evm/nodes.ts). */
  nodeCapacity?: bigint
  log?: (line: string) => void
  onAgentEvent?: (kind: string, e: MessengerAgentEvent) => void
}

/** One node operator of a local network: its account on the hub and its node's configuration. */
export type LocalOperator = {
  /** The operator's node account on the hub. */
  client: SertnClient
  /**
   * Its node's configuration: its own key, Temporal namespace (`default` for the first,
   * `operator-<n>` for the others) and data directory (the first: the network's; the others:
   * `<dataDir>/operator-<n>`); chains, storage and models as the network's.
   */
  config: SertnConfig
}

export type LocalNetwork = {
  chains: Readonly<Record<string, LocalChain>>
  hub: LocalChain
  network: SertnNetwork
  messengers: Readonly<Record<string, MessengerPlugin<SertnClient>>>
  /** The first operator's node configuration (see {@link LocalNetwork.operators}). */
  config: SertnConfig
  /** Every operator, the first with {@link LocalNetwork.config}. */
  operators: readonly LocalOperator[]
  services: LocalServices | undefined
  /** The running agents (undefined while none runs). */
  agents(): RunningMessengerAgents | undefined
  /**
   * Starts the agents from their saved state (a restart after {@link LocalNetwork.stopAgents}
   * resumes): every messenger's, or one messenger's (`hyperlane`, `layerzero`).
   */
  startAgents(messenger?: string): Promise<void>
  /** Stops the agents as a crash would (their stores stay): every messenger's, or one messenger's. */
  stopAgents(messenger?: string): Promise<void>
  processGroups(): number[]
  stop(): Promise<void>
}

/**
 * Who operator `i` (from 0) of a local network is and where it keeps its state: its anvil account,
 * its Temporal namespace, its data directory (the network's for the first, `<dataDir>/operator-<n>`
 * for the others) and, for all but the first (whose key is the configuration's own), its node key.
 */
export function localOperator(
  i: number,
  dataDir: string,
): { account: number; namespace: string; dataDir: string; node?: { privateKey: Hex } } {
  const account = LOCAL_OPERATOR_ACCOUNTS[i]
  if (account === undefined) throw new ConfigError(`a local network has at most ${LOCAL_OPERATOR_ACCOUNTS.length} operators`)
  const namespace = operatorNamespace(i)
  if (i === 0) return { account, namespace, dataDir }
  return { account, namespace, dataDir: join(dataDir, namespace), node: { privateKey: anvilPrivateKey(account) } }
}

/** The Temporal namespace of operator `i` (from 0) of a local network: `default` for the first. */
export function operatorNamespace(i: number): string {
  return i === 0 ? 'default' : `operator-${i + 1}`
}

/** The anvil accounts of `operators` local operators (see {@link LOCAL_OPERATOR_ACCOUNTS}). */
export function localOperatorAccounts(operators = 1): number[] {
  if (!Number.isInteger(operators) || operators < 1 || operators > LOCAL_OPERATOR_ACCOUNTS.length)
    throw new ConfigError(`operators: a local network has 1 to ${LOCAL_OPERATOR_ACCOUNTS.length} node operators, not ${operators}`)
  return LOCAL_OPERATOR_ACCOUNTS.slice(0, operators)
}

/** Clients for the local roles on one anvil (`operators` node operators, default 1). */
export function localClients(anvil: AnvilInstance, operators = 1): Pick<LocalChain, 'owner' | 'node' | 'nodes' | 'user' | 'stranger'> {
  const client = (i: number) => createSertnClient(anvil.chain, privateKeyToAccount(anvilPrivateKey(i)))
  const nodes = localOperatorAccounts(operators).map(client)
  return {
    owner: client(LOCAL_ACCOUNTS.owner),
    node: nodes[0]!,
    nodes,
    user: client(LOCAL_ACCOUNTS.user),
    stranger: client(LOCAL_ACCOUNTS.stranger),
  }
}

/** Starts the Temporal dev server and arlocal (with a funded wallet) under `dataDir`, pushing their stops onto `stops`. */
export async function startLocalServices(
  dataDir: string,
  stops: (() => Promise<void>)[],
  ports: { temporalPort?: number; temporalUiPort?: number; arlocalPort?: number } = {},
  /** Temporal namespaces beside `default` (one per operator after the first). */
  extraNamespaces: readonly string[] = [],
): Promise<LocalServices> {
  mkdirSync(dataDir, { recursive: true })
  const dbFile = join(dataDir, 'temporal.db')
  const temporalOptions = {
    dbFile,
    extraNamespaces,
    ...(ports.temporalPort !== undefined ? { port: ports.temporalPort } : {}),
    ...(ports.temporalUiPort !== undefined ? { uiPort: ports.temporalUiPort } : {}),
  }
  const temporal = await startTemporalDevServer(temporalOptions)
  const services = { dbFile, temporal } as LocalServices
  stops.push(() => services.temporal.stop())
  const arlocal = await startArlocal({ persistDir: join(dataDir, 'arlocal'), ...(ports.arlocalPort ? { port: ports.arlocalPort } : {}) })
  stops.push(() => arlocal.stop())
  const walletFile = join(dataDir, 'arweave-wallet.json')
  await loadOrCreateLocalWallet(arlocal.url, walletFile)
  const connection = await connectTemporalClient({ address: temporal.address })
  stops.push(() => connection.close())
  return Object.assign(services, {
    arlocal,
    walletFile,
    connection,
    async restartTemporal() {
      await services.temporal.stop()
      services.temporal = await startTemporalDevServer({ ...temporalOptions, port: services.temporal.port })
    },
  })
}

/** The configuration sections that point a node at local services and the repository's circuits. */
export function localServicesConfig(s: LocalServices) {
  return {
    temporal: { address: s.temporal.address },
    storage: { arweave: { url: s.arlocal.url, walletFile: s.walletFile } },
    models: { dir: CIRCUITS, allowInsecureSrs: true },
  }
}

/** Starts one chain's anvil (on its state file, if any) with clients for the local roles (`operators` nodes, default 1). */
export async function startLocalChain(spec: LocalChainSpec, options: { echo?: boolean; operators?: number } = {}): Promise<LocalChain> {
  const anvil = await startAnvil({
    chainId: spec.chainId,
    ...(spec.port !== undefined ? { port: spec.port } : {}),
    ...(spec.blockTime !== undefined ? { blockTime: spec.blockTime } : {}),
    ...(spec.historyStates !== undefined ? { maxPersistedStates: spec.historyStates } : {}),
    ...(spec.stateFile !== undefined ? { stateFile: spec.stateFile, stateIntervalSeconds: 10 } : {}),
    ...(options.echo !== undefined ? { echo: options.echo } : {}),
  })
  return { spec, anvil, rpcUrl: anvil.rpcUrl, ...localClients(anvil, options.operators) }
}

/** Checks a local network's chains: the first is the hub, which names no messenger; every other names one. */
export function checkLocalChains(chains: readonly LocalChainSpec[]): { hub: LocalChainSpec; spokes: LocalChainSpec[] } {
  const [hub, ...spokes] = chains
  if (!hub) throw new ConfigError('a local network needs a hub chain')
  if (hub.messenger !== undefined) throw new ConfigError(`chain ${hub.name}: the hub (the first chain) names no messenger`)
  for (const s of spokes) if (!s.messenger) throw new ConfigError(`chain ${s.name}: a spoke names the messenger that joins it to the hub`)
  return { hub, spokes }
}

/**
 * Deploys a network on started local chains: Sertn on every chain, each spoke's messenger on it and
 * the hub, the routes, `models` registered everywhere (with their storage refs when given), the
 * hub's nodes (`nodes`, default the `node`) staked and in every model's pool, and the hub mined to
 * the next epoch so that they are active; the local attester is the messengers' only signer.
 */
export async function deployLocalNetwork(
  chains: Readonly<Record<string, Pick<LocalChain, 'spec' | 'owner' | 'node'> & Partial<Pick<LocalChain, 'nodes'>>>>,
  specs: readonly LocalChainSpec[],
  o: {
    models: readonly string[]
    artifacts?: Readonly<Record<string, ArtifactRefs>>
    /** The spokes' messenger plugins (default: loaded by name). */
    messengers?: Readonly<Record<string, MessengerPlugin<SertnClient>>>
    pool?: Partial<NodePoolParameters>
    nodeCapacity?: bigint
    log?: (line: string) => void
  },
): Promise<SertnNetwork> {
  const { hub, spokes } = checkLocalChains(specs)
  const messengers = o.messengers ?? (await loadMessengers([...new Set(spokes.map((s) => s.messenger!))]))
  const hubChain = chains[hub.name]!
  const network = await deploySertnNetwork({
    hub: { name: hub.name, client: hubChain.owner },
    spokes: spokes.map((s) => ({ name: s.name, client: chains[s.name]!.owner, messenger: s.messenger! })),
    messengers,
    attesters: [LOCAL_ATTESTER],
    threshold: 1,
    submitters: [privateKeyToAccount(anvilPrivateKey(LOCAL_ACCOUNTS.relayer)).address],
    models: o.models,
    ...(o.artifacts ? { artifacts: o.artifacts } : {}),
    nodes: hubChain.nodes ?? [hubChain.node],
    ...(o.pool ? { pool: o.pool } : {}),
    ...(o.nodeCapacity !== undefined ? { nodeCapacity: o.nodeCapacity } : {}),
    allowInsecureSrs: true, // local chains
    ...(o.log ? { log: o.log } : {}),
  })
  const epoch = await mineToNextEpoch(hubChain.owner, network.hub.core.nodeRegistry)
  o.log?.(`hub ${hub.name}: mined to epoch ${epoch}, where the nodes are active`)
  return network
}

/**
 * The node configuration of a local network (checked, defaults filled in): every chain from the
 * network, the local keys (node, relayer, attester), the services when running, the repository's
 * circuits; `overrides` are merged over the top level.
 */
export function localNetworkConfig(p: {
  network: SertnNetwork
  rpcUrls: Readonly<Record<string, string>>
  dataDir: string
  services?: LocalServices
  pollingIntervalMs?: number
  confirmations?: number
  agentConfirmations: number
  /** Per chain, where a watcher with no cursor starts (default 0). */
  startBlocks?: Readonly<Record<string, number>>
  overrides?: Partial<SertnConfigInput>
}): SertnConfig {
  const chains = networkChainsConfig(p.network, p.rpcUrls, {
    confirmations: p.confirmations ?? 1,
    pollingIntervalMs: p.pollingIntervalMs ?? 50,
  })
  for (const [name, c] of Object.entries(chains)) c.startBlock = p.startBlocks?.[name] ?? 0
  return parseConfig(
    {
      dataDir: p.dataDir,
      node: { privateKey: anvilPrivateKey(LOCAL_ACCOUNTS.node) },
      chains,
      relay: {
        validatorKey: LOCAL_ATTESTER_KEY,
        relayerKey: anvilPrivateKey(LOCAL_ACCOUNTS.relayer),
        pollingIntervalMs: p.pollingIntervalMs ?? 50,
        confirmations: p.agentConfirmations,
      },
      ...(p.services ? localServicesConfig(p.services) : { models: { dir: CIRCUITS, allowInsecureSrs: true } }),
      ...p.overrides,
    },
    'the local network configuration',
  )
}

/** Starts a local network (see the module's notes). */
export async function startLocalNetwork(o: LocalNetworkOptions): Promise<LocalNetwork> {
  const { hub: hubSpec, spokes: spokeSpecs } = checkLocalChains(o.chains)
  const log = o.log ?? (() => {})
  const stops: (() => Promise<void>)[] = []
  /** The running agents, by messenger: each messenger's can be stopped and started alone. */
  const agents = new Map<string, RunningMessengerAgents>()
  const stopAgents = async (messenger?: string) => {
    const stopping = [...agents].filter(([kind]) => messenger === undefined || kind === messenger)
    for (const [kind] of stopping) agents.delete(kind)
    // Each messenger's agents stop even when another's stop fails; the first failure is thrown after.
    const results = await Promise.allSettled(stopping.map(([, a]) => a.stop()))
    const failed = results.find((r) => r.status === 'rejected')
    if (failed) throw failed.reason
  }
  const stopAll = async () => {
    await stopAgents().catch(() => {})
    for (const s of stops.splice(0).reverse()) await s().catch(() => {})
  }
  try {
    const messengers = await loadMessengers([...new Set(spokeSpecs.map((s) => s.messenger!))])
    const chains: Record<string, LocalChain> = {}
    await Promise.all(
      o.chains.map(async (spec) => {
        const chain = await startLocalChain(spec, { operators: o.operators ?? 1 })
        stops.push(() => chain.anvil.stop())
        chains[spec.name] = chain
      }),
    )
    const hub = chains[hubSpec.name]!
    const namespaces = hub.nodes.slice(1).map((_, i) => operatorNamespace(i + 1))
    const services = o.services ? await startLocalServices(o.dataDir, stops, o.services === true ? {} : o.services, namespaces) : undefined

    const models = o.models ?? ['sertn-mlp-demo']
    let artifacts: Record<string, ArtifactRefs> | undefined
    if (o.publishArtifacts) {
      if (!services) throw new ConfigError('publishArtifacts needs the local services (arlocal)')
      const publisher = arweaveStorage({
        host: '127.0.0.1',
        port: Number(new URL(services.arlocal.url).port),
        protocol: 'http',
        wallet: services.walletFile,
      })
      try {
        artifacts = {}
        for (const m of models) artifacts[m] = (await publishModelArtifacts(publisher, modelDir(m))).refs
      } finally {
        await publisher.dispose()
      }
    }
    const network = await deployLocalNetwork(chains, o.chains, {
      models,
      ...(artifacts ? { artifacts } : {}),
      messengers,
      log,
      ...(o.pool ? { pool: o.pool } : {}),
      ...(o.nodeCapacity !== undefined ? { nodeCapacity: o.nodeCapacity } : {}),
    })

    const configOf = (dataDir: string, overrides: Partial<SertnConfigInput>) =>
      localNetworkConfig({
        network,
        rpcUrls: Object.fromEntries(Object.values(chains).map((c) => [c.spec.name, c.rpcUrl])),
        dataDir,
        ...(services ? { services } : {}),
        ...(o.pollingIntervalMs !== undefined ? { pollingIntervalMs: o.pollingIntervalMs } : {}),
        ...(o.confirmations !== undefined ? { confirmations: o.confirmations } : {}),
        agentConfirmations: o.agentConfirmations ?? (o.chains.every((c) => c.blockTime !== undefined) ? 1 : 0),
        overrides,
      })
    const config = configOf(o.dataDir, o.config ?? {})
    const operators: LocalOperator[] = hub.nodes.map((client, i) => {
      if (i === 0) return { client, config }
      const op = localOperator(i, o.dataDir)
      return {
        client,
        config: configOf(op.dataDir, {
          ...o.config,
          ...(op.node ? { node: op.node } : {}),
          ...(services ? { temporal: { address: services.temporal.address, namespace: op.namespace } } : {}),
        }),
      }
    })

    const relayed = [...new Set(spokeSpecs.map((s) => s.messenger!))]
    const startAgents = async (messenger?: string) => {
      if (messenger !== undefined && !relayed.includes(messenger))
        throw new ConfigError(`no spoke uses messenger ${messenger}; the local network's messengers are ${relayed.join(', ')}`)
      for (const kind of messenger === undefined ? relayed : [messenger]) {
        if (agents.has(kind)) continue
        agents.set(
          kind,
          await startMessengerAgentsFromConfig(config, {
            dir: join(o.dataDir, 'relay'),
            log,
            kinds: [kind],
            ...(o.onAgentEvent ? { onEvent: o.onAgentEvent } : {}),
          }),
        )
      }
    }
    if (o.agents ?? spokeSpecs.length > 0) await startAgents()

    return {
      chains,
      hub,
      network,
      messengers,
      config,
      operators,
      services,
      agents: () => combineAgents([...agents.values()]),
      startAgents,
      stopAgents,
      processGroups: () => [
        ...Object.values(chains).map((c) => c.anvil.process.pid),
        ...(services ? [services.temporal.process.pid, services.arlocal.process.pid] : []),
      ],
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}

/** Several messengers' running agents as one (undefined for none). */
function combineAgents(all: readonly RunningMessengerAgents[]): RunningMessengerAgents | undefined {
  if (all.length === 0) return undefined
  if (all.length === 1) return all[0]
  return {
    byKind: new Map(all.flatMap((a) => [...a.byKind])),
    ready: Promise.all(all.map((a) => a.ready)).then(() => undefined),
    async requeue(ids) {
      let n = 0
      for (const a of all) n += await a.requeue(ids)
      return n
    },
    async stop() {
      await Promise.all(all.map((a) => a.stop()))
    },
  }
}
