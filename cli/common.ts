/**
 * What the `sertn` subcommands share: the data directory's layout, argument checks that say what
 * to do, and connections to a running local stack (`sertn start`).
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client, Connection } from '@temporalio/client'
import type { Address, Hex } from 'viem'
import { loadConfig, type SertnConfig } from '../core/config.ts'
import { SertnError } from '../core/errors.ts'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const SERTN_CLI = join(REPO_ROOT, 'cli', 'sertn.ts')
export const DEFAULT_DATA_DIR = '.data'
export const DEMO_MODEL = 'sertn-mlp-demo'
export const DEMO_FEATURES = '0.5,-1.25,2,0.75'
/** The name of the local chain in the stack's configuration. */
export const LOCAL_CHAIN = 'local'

/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends SertnError {
  override name = 'UsageError'
}

/** The files of a local stack, all under one data directory. */
export type StackPaths = {
  dataDir: string
  /** anvil's `--state` file: the chain, loaded at start and written on exit. */
  anvilState: string
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
  /** Who runs the stack now (pid, endpoints); removed on a clean stop. */
  stack: string
}

export function stackPaths(dataDir: string): StackPaths {
  const d = resolve(dataDir)
  return {
    dataDir: d,
    anvilState: join(d, 'anvil-state.json'),
    deployment: join(d, 'deployment.json'),
    config: join(d, 'sertn.config.json'),
    temporalDb: join(d, 'temporal.db'),
    arlocal: join(d, 'arlocal'),
    arweaveWallet: join(d, 'arweave-wallet.json'),
    cursors: join(d, 'cursors'),
    stack: join(d, 'stack.json'),
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
  rpcUrl: string
  temporal: string
  temporalUi: string
  arlocal: string
  namespace: string
}

/** The contracts of a local stack (`deployment.json`). */
export type Deployment = {
  chainId: number
  /** A hash of the verifier's, the registry's and the gateway's bytecode: they are redeployed when it changes. */
  fingerprint: string
  /** The block of the first deployment transaction (where a new watcher starts). */
  deployedAtBlock: number
  owner: Address
  node: Address
  verifier: Address
  registry: Address
  gateway: Address
  /** Registered models by name, with a hash of their VKA and manifest. */
  models: Record<string, { modelId: Hex; vka: Address; fingerprint: string }>
  /** An ExampleClassifier per model name, and a hash of the ExampleClassifier bytecode they run. */
  dapps: Record<string, Address>
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

/** A Temporal client, or an error that says the stack does not seem to be running. */
export async function connectTemporal(address: string, namespace: string): Promise<Client> {
  let connection: Connection
  try {
    connection = await Connection.connect({ address, connectTimeout: 3000 })
  } catch (err) {
    throw new SertnError(`cannot reach Temporal at ${address}`, {
      details: `${err instanceof Error ? err.message : String(err)}\nIs the local stack running? Start it with \`npm start\` (or \`npx tsx cli/sertn.ts start\`) and try again.`,
    })
  }
  return new Client({ connection, namespace })
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
