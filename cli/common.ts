/**
 * What the `sertn` subcommands share: the data directory's layout, argument checks that say what
 * to do, and connections to a running local stack (`sertn start`).
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client, type Connection } from '@temporalio/client'
import type { Address, Hex } from 'viem'
import { loadConfig, type ChainConfig, type SertnConfig } from '../core/config.ts'
import { SertnError } from '../core/errors.ts'
import { signerAddressHint } from '../core/secrets.ts'
import { connectTemporalClient, temporalConnectionOptions } from '../workflows/connection.ts'
import type { ArtifactRefs } from '../core/artifacts.ts'
import { LOCAL_CHAINS, localOperator } from '../chains/local.ts'
import type { MessengerDeployment } from '../core/plugins.ts'
import type { FacadeDeployment } from '../chains/evm/deploy.ts'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const SERTN_CLI = join(REPO_ROOT, 'cli', 'sertn.ts')
export const DEFAULT_DATA_DIR = '.data'
export const DEMO_MODEL = 'sertn-mlp-demo'
export const DEMO_FEATURES = '0.5,-1.25,2,0.75'
/**
 * The local stack's chains, by their names in the node's configuration: the hub (the market that
 * serves every chain's requests, and its own gateway) and two spokes (SpokeGateways whose requests
 * travel to the hub and whose results come back verified): `spoke` over Hyperlane, `spokelz` over
 * LayerZero V2.
 */
export const STACK_CHAINS = ['hub', 'spoke', 'spokelz'] as const
export type StackChain = (typeof STACK_CHAINS)[number]
/** The spokes. */
export const STACK_SPOKES = ['spoke', 'spokelz'] as const satisfies readonly StackChain[]
export type StackSpoke = (typeof STACK_SPOKES)[number]
/** The local chains (chain ids, the spokes' messengers), from the local network module. */
export const STACK_CHAIN_SPECS = { hub: LOCAL_CHAINS.hub, spoke: LOCAL_CHAINS.spoke, spokelz: LOCAL_CHAINS.spokelz } as const
/** Chain ids of the local anvils (their Sertn domains). */
export const STACK_CHAIN_IDS: Record<StackChain, number> = {
  hub: LOCAL_CHAINS.hub.chainId,
  spoke: LOCAL_CHAINS.spoke.chainId,
  spokelz: LOCAL_CHAINS.spokelz.chainId,
}
/**
 * The local stack's node operators: each its own key (anvil accounts LOCAL_OPERATOR_ACCOUNTS: 1,
 * then 5), Temporal namespace, configuration file and data directory (see {@link StackOperatorPaths}),
 * staked in every model's pool on the hub.
 */
export const STACK_OPERATORS = 2
/** Where `sertn request` and `sertn status <id>` go without --chain. */
export const DEFAULT_REQUEST_CHAIN: StackChain = 'spoke'

/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends SertnError {
  override name = 'UsageError'
}

/** The files of a local stack, all under one data directory. */
export type StackPaths = {
  dataDir: string
  /** Each anvil's `--state` file: the chain, loaded at start and written on exit. */
  chainState: Record<StackChain, string>
  /** The single chain's state file of stacks from before the hub and the spoke (no longer used). */
  legacyAnvilState: string
  /** Addresses of the deployed contracts and the fingerprint of their code. */
  deployment: string
  /** The node configuration the workers read (and `request`/`status`). */
  config: string
  /** The Temporal dev server's SQLite database. */
  temporalDb: string
  /** arlocal's database. */
  arlocal: string
  /** The funded arlocal wallet the node stores with. */
  arweaveWallet: string
  /** The chain watchers' cursors. */
  cursors: string
  /** The messengers' local agents' state (`sertn relay`), a folder per messenger. */
  relay: string
  /** The chains' last heads seen by the running stack (a chain below them lost blocks). */
  heads: string
  /** Who runs the stack now (pid, endpoints); removed on a clean stop. */
  stack: string
  /** Each node operator's files, the first's being the stack's own (`config`, `cursors`). */
  operators: StackOperatorPaths[]
}

/** One node operator of the local stack. */
export type StackOperatorPaths = {
  /** `operator 1`, `operator 2`: how the output names it. */
  name: string
  /** Its anvil account. */
  account: number
  /** Its Temporal namespace: `default` for the first, `operator-<n>` after (a workflow per request in each). */
  namespace: string
  /** Its node configuration: `sertn.config.json` for the first, `sertn.operator-<n>.config.json` after. */
  config: string
  /** Its configuration's data directory (watcher cursors, fetched models): the stack's for the first, `operator-<n>/` after. */
  dataDir: string
  /** Its watchers' cursors. */
  cursors: string
  /** Its node key, for all but the first (whose key is the configuration's own). */
  node?: { privateKey: `0x${string}` }
}

export function stackPaths(dataDir: string): StackPaths {
  const d = resolve(dataDir)
  return {
    dataDir: d,
    chainState: {
      hub: join(d, 'anvil-hub-state.json'),
      spoke: join(d, 'anvil-spoke-state.json'),
      spokelz: join(d, 'anvil-spokelz-state.json'),
    },
    legacyAnvilState: join(d, 'anvil-state.json'),
    deployment: join(d, 'deployment.json'),
    config: join(d, 'sertn.config.json'),
    temporalDb: join(d, 'temporal.db'),
    arlocal: join(d, 'arlocal'),
    arweaveWallet: join(d, 'arweave-wallet.json'),
    cursors: join(d, 'cursors'),
    relay: join(d, 'relay'),
    heads: join(d, 'heads.json'),
    stack: join(d, 'stack.json'),
    operators: Array.from({ length: STACK_OPERATORS }, (_, i) => {
      const { account, namespace, dataDir, node } = localOperator(i, d)
      return {
        name: `operator ${i + 1}`,
        account,
        namespace,
        config: i === 0 ? join(d, 'sertn.config.json') : join(d, `sertn.${namespace}.config.json`),
        dataDir,
        cursors: join(dataDir, 'cursors'),
        ...(node ? { node } : {}),
      }
    }),
  }
}

/** A path for messages: relative to the working directory when that is shorter. */
export function shown(path: string): string {
  const r = relative(process.cwd(), path)
  return r && !r.startsWith('..') && r.length < path.length ? r : path
}

/** What `sertn start` records about the running stack in `stack.json`. */
export type StackInfo = {
  pid: number
  startedAt: string
  rpcUrls: Record<StackChain, string>
  temporal: string
  temporalUi: string
  arlocal: string
  /** The first operator's namespace. */
  namespace: string
  /** Every node operator (absent in the records of older stacks). */
  operators?: { name: string; address: Address; namespace: string; config: string }[]
}

/**
 * The record format of `deployment.json`; records of other versions are deployed afresh, except
 * those of {@link UPGRADABLE_DEPLOYMENT_VERSIONS} (5: the hub's node registry; 6: every operator's address in `nodes`).
 */
export const DEPLOYMENT_VERSION = 6
/** Record versions brought up to date in place (5: `nodes` is added as the operators join the pools). */
export const UPGRADABLE_DEPLOYMENT_VERSIONS: readonly number[] = [5]

/** What is deployed on one chain of the local stack. */
export type ChainDeployment = {
  /** Its Sertn domain. */
  chainId: number
  /** The block of the chain's first deployment transaction (where a new watcher starts). */
  deployedAtBlock: number
  verifier: Address
  registry: Address
  /** The hub's InferenceGateway, or the spoke's SpokeGateway. */
  gateway: Address
  /** The messaging networks deployed here (a spoke: the one that joins it to the hub; the hub: one per spoke's kind). */
  messengers: MessengerDeployment[]
  /** Each registered model's verifying-key artifact on this chain. */
  vkas: Record<string, Address>
  /** Each registered model's batch circuits' VKAs on this chain (absent in records written before batch circuits). */
  batchVkas?: Record<string, { size: number; vka: Address; vkaCodeHash: Hex }[]>
  /** An ExampleClassifier per model name, requesting through this chain's gateway. */
  dapps: Record<string, Address>
  /** The drop-in oracle facades (ORA's IAIOracle, Infernet's coordinator) over this chain's gateway. */
  facades?: FacadeDeployment
}

/** The contracts of a local stack (`deployment.json`): a hub and its spokes, each joined to it by its messenger. */
export type Deployment = {
  version: typeof DEPLOYMENT_VERSION
  /**
   * A hash of the code of every contract of the network (verifier, registry, gateway, market,
   * spoke gateway, the Hyperlane core): the network is deployed afresh when it changes.
   */
  fingerprint: string
  owner: Address
  /** The first operator's node account. */
  node: Address
  /** Every operator's node account, in order (the first is `node`): each staked in every model's pool on the hub. */
  nodes: Address[]
  /** The local validator the chains' ISMs trust. */
  validator: Address
  /** The hub: also the InferenceMarket, and the NodeRegistry whose pools serve both it and the hub's gateway. */
  hub: ChainDeployment & { market: Address; nodeRegistry: Address }
  spoke: ChainDeployment
  spokelz: ChainDeployment
  /** Registered models (on both chains) by name, with a hash of their VKA and manifest. */
  /** Registered models by name: id (from the owner and the name), fingerprint, and where their artifacts are stored. */
  models: Record<string, { modelId: Hex; fingerprint: string; artifacts: ArtifactRefs }>
  /** A hash of the ExampleClassifier bytecode the dApps run. */
  dappFingerprint: string
}

export function readJson<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T
  } catch (err) {
    throw new SertnError(`cannot read ${shown(file)}: ${err instanceof Error ? err.message : String(err)}`, {
      details: 'The file is damaged; remove it (or run `sertn start --reset` to start the local stack afresh).',
    })
  }
}

/** Comma-separated numbers, or a UsageError naming the flag. */
export function parseFeatures(raw: string, flag = '--features'): number[] {
  const parts = raw.split(',').map((s) => s.trim())
  const xs = parts.map(Number)
  if (parts.some((p) => p === '') || xs.some((x) => !Number.isFinite(x)))
    throw new UsageError(`${flag} must be comma-separated numbers, like ${flag} ${DEMO_FEATURES}; got "${raw}"`)
  return xs
}

/** A TCP port (0 = any free one), or a UsageError naming the flag. */
export function parsePort(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${flag} must be a port number (0 for any free port), got "${raw}"`)
  return n
}

/** A `--chain` value, or a UsageError that lists the choices. */
export function parseStackChain(raw: string | undefined, flag = '--chain'): StackChain {
  if (raw === undefined) return DEFAULT_REQUEST_CHAIN
  if ((STACK_CHAINS as readonly string[]).includes(raw)) return raw as StackChain
  throw new UsageError(`${flag} must be one of ${STACK_CHAINS.join(', ')}, got "${raw}"`)
}

/** The local stack's configuration and deployment for `request` and `status`. */
export type RunningStack = {
  paths: StackPaths
  config: SertnConfig
  configFile: string
  deployment: Deployment | undefined
  info: StackInfo | undefined
}

/** Reads what a `sertn start` wrote under `dataDir` (or the given config file). */
export function openStack(opts: { dataDir?: string | undefined; config?: string | undefined }): RunningStack {
  const paths = stackPaths(opts.dataDir ?? DEFAULT_DATA_DIR)
  const configFile = resolve(opts.config ?? paths.config)
  if (!existsSync(configFile)) {
    throw new SertnError(`no configuration at ${shown(configFile)}`, {
      details: opts.config
        ? 'Pass the node configuration file the workers use (--config FILE).'
        : `Start the local stack first: \`npm start\` (or \`npx tsx cli/sertn.ts start\`) writes it; or pass --config FILE / --data-dir DIR.`,
    })
  }
  const config = loadConfig(configFile)
  return { paths, config, configFile, deployment: readJson<Deployment>(paths.deployment), info: readJson<StackInfo>(paths.stack) }
}

/** The configuration of the stack's chain `name`, or an error that says how to get one that has it. */
export function stackChainConfig(stack: RunningStack, name: StackChain): ChainConfig {
  const chain = stack.config.chains[name]
  if (chain) return chain
  throw new SertnError(`no chain named ${name} in ${shown(stack.configFile)} (chains: ${Object.keys(stack.config.chains).join(', ')})`, {
    details:
      `The local stack names its chains ${STACK_CHAINS.join(', ')}; a configuration with other names was written by an older ` +
      '`sertn start` or by hand. Start the stack again with `npm start` (it writes every chain), or pass --chain with one of the names above.',
  })
}

/** The stack's deployment record, or an error that says to start the stack (again). */
export function stackDeployment(stack: RunningStack): Deployment {
  const d = stack.deployment
  if (d?.version === DEPLOYMENT_VERSION) return d
  throw new SertnError(
    d ? `${shown(stack.paths.deployment)} is from an older local stack` : `no deployment recorded in ${shown(stack.paths.deployment)}`,
    {
      details:
        'Start the local stack (again): `npm start` (or `npx tsx cli/sertn.ts start`) deploys the hub and the spokes and records them.',
    },
  )
}

/** A node operator of the stack as `request` and `status` look for a request's workflow: its namespace, and its account when known. */
export type StackOperator = { name: string; namespace: string; address?: Address | undefined }

/**
 * The stack's node operators on the configuration's Temporal server, in order: the configuration's
 * own (`operator 1`), then each further operator of the data directory whose configuration file
 * points at the same server (else, from the deployment record, its default namespace and account).
 */
export function stackOperators(stack: RunningStack): StackOperator[] {
  const { config } = stack
  const operators: StackOperator[] = [
    { name: 'operator 1', namespace: config.temporal.namespace, address: signerAddressHint(config, 'node') },
  ]
  stack.paths.operators.slice(1).forEach((o, j) => {
    const i = j + 1
    let found: StackOperator | undefined
    if (existsSync(o.config)) {
      try {
        const c = loadConfig(o.config)
        if (c.temporal.address === config.temporal.address)
          found = { name: o.name, namespace: c.temporal.namespace, address: signerAddressHint(c, 'node') }
      } catch {
        // unreadable: fall back on the deployment record below
      }
    }
    found ??= stack.deployment?.nodes?.[i] ? { name: o.name, namespace: o.namespace, address: stack.deployment.nodes[i] } : undefined
    if (found && !operators.some((x) => x.namespace === found.namespace)) operators.push(found)
  })
  return operators
}

/** A Temporal client for the configuration's frontend and namespace, or an error that says the stack does not seem to be running. */
export async function connectTemporal(config: SertnConfig): Promise<Client> {
  const { address, namespace } = config.temporal
  // Outside the try: a missing certificate or secrets file is said as such, not as an unreachable server.
  const options = temporalConnectionOptions(config)
  let connection: Connection
  try {
    connection = await connectTemporalClient(options, { connectTimeoutMs: 3000 })
  } catch (err) {
    throw new SertnError(`cannot reach Temporal at ${address}`, {
      details: `${err instanceof Error ? err.message : String(err)}\nIs the local stack running? Start it with \`npm start\` (or \`npx tsx cli/sertn.ts start\`) and try again.`,
    })
  }
  return new Client({ connection, namespace })
}

/** A Temporal client per namespace of the stack's operators, on one connection (`close` closes it). */
export async function connectOperators(
  stack: RunningStack,
): Promise<{ operators: (StackOperator & { client: Client })[]; close: () => Promise<void> }> {
  const first = await connectTemporal(stack.config)
  const operators = stackOperators(stack).map((o, i) =>
    Object.assign(o, { client: i === 0 ? first : new Client({ connection: first.connection, namespace: o.namespace }) }),
  )
  return { operators, close: () => first.connection.close() }
}

/** Whether the process `pid` is alive (and, on Linux, a `sertn` command). */
export function isSertnProcess(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sertn')
  } catch {
    return true // no /proc: trust kill(0)
  }
}
