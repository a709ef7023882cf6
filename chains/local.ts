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
import { Connection } from '@temporalio/client'
import { keccak256, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import type { ArtifactRefs } from '../core/artifacts.ts'
import { parseConfig, type SertnConfig, type SertnConfigInput } from '../core/config.ts'
import { ConfigError } from '../core/errors.ts'
import type { MessengerAgentEvent, MessengerPlugin } from '../core/plugins.ts'
import { loadMessengers, startMessengerAgentsFromConfig, type RunningMessengerAgents } from '../plugins/messengers/index.ts'
import { loadOrCreateLocalWallet, startArlocal, type ArlocalInstance } from '../plugins/storage/arweave/index.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../workflows/worker/temporal-dev-server.ts'
import { startAnvil, type AnvilInstance } from './anvil.ts'
import { anvilPrivateKey, createSertnClient, type SertnClient } from './evm/clients.ts'
import { deploySertnNetwork, networkChainsConfig, type SertnNetwork } from './evm/network.ts'

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
export const LOCAL_ACCOUNTS = { owner: 0, node: 1, user: 2, relayer: 3, stranger: 4 } as const

export type LocalChain = {
  spec: LocalChainSpec
  anvil: AnvilInstance
  rpcUrl: string
  /** Deploys and owns every contract. */
  owner: SertnClient
  /** The node's account. */
  node: SertnClient
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
  log?: (line: string) => void
  onAgentEvent?: (kind: string, e: MessengerAgentEvent) => void
}

export type LocalNetwork = {
  chains: Readonly<Record<string, LocalChain>>
  hub: LocalChain
  network: SertnNetwork
  messengers: Readonly<Record<string, MessengerPlugin<SertnClient>>>
  config: SertnConfig
  services: LocalServices | undefined
  /** The running agents (undefined while stopped). */
  agents(): RunningMessengerAgents | undefined
  /** Starts the agents from their saved state (a restart after {@link LocalNetwork.stopAgents} resumes). */
  startAgents(): Promise<void>
  /** Stops the agents as a crash would: their stores stay. */
  stopAgents(): Promise<void>
  processGroups(): number[]
  stop(): Promise<void>
}

/** Clients for the local roles on one anvil. */
export function localClients(anvil: AnvilInstance): Pick<LocalChain, 'owner' | 'node' | 'user' | 'stranger'> {
  const client = (i: number) => createSertnClient(anvil.chain, privateKeyToAccount(anvilPrivateKey(i)))
  return {
    owner: client(LOCAL_ACCOUNTS.owner),
    node: client(LOCAL_ACCOUNTS.node),
    user: client(LOCAL_ACCOUNTS.user),
    stranger: client(LOCAL_ACCOUNTS.stranger),
  }
}

/** Starts the Temporal dev server and arlocal (with a funded wallet) under `dataDir`, pushing their stops onto `stops`. */
export async function startLocalServices(
  dataDir: string,
  stops: (() => Promise<void>)[],
  ports: { temporalPort?: number; temporalUiPort?: number; arlocalPort?: number } = {},
): Promise<LocalServices> {
  mkdirSync(dataDir, { recursive: true })
  const dbFile = join(dataDir, 'temporal.db')
  const temporalOptions = {
    dbFile,
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
  const connection = await Connection.connect({ address: temporal.address })
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

/** Starts one chain's anvil (on its state file, if any) with clients for the local roles. */
export async function startLocalChain(spec: LocalChainSpec, options: { echo?: boolean } = {}): Promise<LocalChain> {
  const anvil = await startAnvil({
    chainId: spec.chainId,
    ...(spec.port !== undefined ? { port: spec.port } : {}),
    ...(spec.blockTime !== undefined ? { blockTime: spec.blockTime } : {}),
    ...(spec.stateFile !== undefined ? { stateFile: spec.stateFile, stateIntervalSeconds: 10 } : {}),
    ...(options.echo !== undefined ? { echo: options.echo } : {}),
  })
  return { spec, anvil, rpcUrl: anvil.rpcUrl, ...localClients(anvil) }
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
 * node authorised; the local attester is the messengers' only signer.
 */
export async function deployLocalNetwork(
  chains: Readonly<Record<string, Pick<LocalChain, 'spec' | 'owner' | 'node'>>>,
  specs: readonly LocalChainSpec[],
  o: {
    models: readonly string[]
    artifacts?: Readonly<Record<string, ArtifactRefs>>
    /** The spokes' messenger plugins (default: loaded by name). */
    messengers?: Readonly<Record<string, MessengerPlugin<SertnClient>>>
    log?: (line: string) => void
  },
): Promise<SertnNetwork> {
  const { hub, spokes } = checkLocalChains(specs)
  const messengers = o.messengers ?? (await loadMessengers([...new Set(spokes.map((s) => s.messenger!))]))
  const hubChain = chains[hub.name]!
  return deploySertnNetwork({
    hub: { name: hub.name, client: hubChain.owner },
    spokes: spokes.map((s) => ({ name: s.name, client: chains[s.name]!.owner, messenger: s.messenger! })),
    messengers,
    attesters: [LOCAL_ATTESTER],
    threshold: 1,
    submitters: [privateKeyToAccount(anvilPrivateKey(LOCAL_ACCOUNTS.relayer)).address],
    models: o.models,
    ...(o.artifacts ? { artifacts: o.artifacts } : {}),
    nodes: [hubChain.node.account.address],
    allowInsecureSrs: true, // local chains
    ...(o.log ? { log: o.log } : {}),
  })
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
  let agents: RunningMessengerAgents | undefined
  const stopAll = async () => {
    await agents?.stop().catch(() => {})
    agents = undefined
    for (const s of stops.splice(0).reverse()) await s().catch(() => {})
  }
  try {
    const messengers = await loadMessengers([...new Set(spokeSpecs.map((s) => s.messenger!))])
    const chains: Record<string, LocalChain> = {}
    await Promise.all(
      o.chains.map(async (spec) => {
        const chain = await startLocalChain(spec)
        stops.push(() => chain.anvil.stop())
        chains[spec.name] = chain
      }),
    )
    const hub = chains[hubSpec.name]!
    const services = o.services ? await startLocalServices(o.dataDir, stops, o.services === true ? {} : o.services) : undefined

    const network = await deployLocalNetwork(chains, o.chains, { models: o.models ?? ['sertn-mlp-demo'], messengers, log })

    const config = localNetworkConfig({
      network,
      rpcUrls: Object.fromEntries(Object.values(chains).map((c) => [c.spec.name, c.rpcUrl])),
      dataDir: o.dataDir,
      ...(services ? { services } : {}),
      ...(o.pollingIntervalMs !== undefined ? { pollingIntervalMs: o.pollingIntervalMs } : {}),
      ...(o.confirmations !== undefined ? { confirmations: o.confirmations } : {}),
      agentConfirmations: o.agentConfirmations ?? (o.chains.every((c) => c.blockTime !== undefined) ? 1 : 0),
      ...(o.config ? { overrides: o.config } : {}),
    })

    const startAgents = async () => {
      if (agents) return
      agents = await startMessengerAgentsFromConfig(config, {
        dir: join(o.dataDir, 'relay'),
        log,
        ...(o.onAgentEvent ? { onEvent: o.onAgentEvent } : {}),
      })
    }
    if (o.agents ?? spokeSpecs.length > 0) await startAgents()

    return {
      chains,
      hub,
      network,
      messengers,
      config,
      services,
      agents: () => agents,
      startAgents,
      async stopAgents() {
        await agents?.stop()
        agents = undefined
      },
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
