/**
 * `sertn deploy --network network.json`: brings a Sertn network up on any EVM RPCs (a hub and its
 * spokes, each joined to the hub by the messenger it names), through the one deployment routine
 * (chains/evm/network.ts `deploySertnNetwork`), in named steps recorded in a deployment record.
 *
 * Before anything is sent it checks each RPC's chain id against the file, the deployer's balance
 * per chain and, for a resume, the code at every recorded address; then it runs the whole deployment
 * against a local fork of every chain (`anvil --fork-url`, as `forge script` simulates before it
 * broadcasts), measures the gas each chain's transactions use, and prints what the deployment will
 * spend per chain at the current fee. `--dry-run` stops there; otherwise it asks (a TTY) or takes
 * `--yes`, and sends. The record is written after every step: a rerun skips the deploy steps it
 * records (their contracts still have code) and runs the configuration steps, which read the chains
 * first and send only what is missing, so a rerun of a finished deployment sends nothing and an
 * interrupted one finishes. Last, it writes the node configuration operators start workers with.
 *
 * Nothing here is a local-stack shortcut: no anvil_* method is called on the chains, no well-known
 * key is used (the fork is a private simulation, started and stopped here).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { createInterface } from 'node:readline/promises'
import {
  createPublicClient,
  createWalletClient,
  formatEther,
  formatGwei,
  http,
  publicActions,
  type Account,
  type Address,
  type Hex,
  type HttpTransport,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import { startAnvil, type AnvilInstance } from '../chains/anvil.ts'
import { evmChainOf } from '../chains/evm/chain.ts'
import type { SertnClient } from '../chains/evm/clients.ts'
import type { GatewayConfig } from '../chains/evm/deploy.ts'
import {
  deploySertnNetwork,
  networkChainsConfig,
  networkStepNames,
  type NetworkJournal,
  type NetworkStep,
  type SertnNetwork,
} from '../chains/evm/network.ts'
import type { NodePoolParameters } from '../chains/evm/nodes.ts'
import { parseConfig, parseConfigSection } from '../core/config.ts'
import { ConfigError, SertnError } from '../core/errors.ts'
import { loadMessengers } from '../plugins/messengers/index.ts'
import { shown, UsageError } from './common.ts'

// ─────────────────────────────── the network file ───────────────────────────────

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 20-byte address')
/** A wei amount or other big integer: a JSON number (safe integer) or a decimal string. */
const bigInteger = z.union([z.number().int().min(0), z.string().regex(/^\d+$/, 'a decimal integer (as a string for big values)')])
const chainName = z.string().regex(/^[a-z][a-z0-9]*$/, 'lowercase letters and digits, starting with a letter')

const chainSchema = z.strictObject({
  /** Its name in the node's configuration. */
  name: chainName,
  chainId: z.number().int().positive(),
  rpcUrl: z.url(),
  /** Blocks a node's watcher waits on top of a request (the node configuration's `confirmations`). */
  confirmations: z.number().int().min(0).default(2),
  /** How often the deployment and the node poll this chain (ms). */
  pollingIntervalMs: z.number().int().positive().default(2000),
})

const spokeSchema = chainSchema.extend({ messenger: z.enum(['hyperlane', 'layerzero']) })

/** `sertn deploy`'s network file (see examples/network.example.json). */
export const networkFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    /** A label for the deployment (printed, recorded). */
    name: z.string().default('sertn'),
    hub: chainSchema,
    spokes: z.array(spokeSchema).default([]),
    messaging: z
      .strictObject({
        /** The addresses the messengers' security trusts (Hyperlane validators, LayerZero DVN signers). */
        attesters: z.array(address).min(1),
        /** How many of them must sign. */
        threshold: z.number().int().min(1),
        /** Origin blocks before a message is attested, where the network records it on chain (LayerZero). */
        confirmations: z.number().int().min(0).default(2),
        /** The accounts the messengers' agents submit from, where the network's contracts must admit them. */
        submitters: z.array(address).default([]),
        /** A messenger's protocol fee per message (wei), by messenger name. */
        fees: z.partialRecord(z.enum(['hyperlane', 'layerzero']), bigInteger).default({}),
      })
      .refine((m) => m.threshold <= m.attesters.length, {
        message: 'threshold must not exceed the number of attesters',
        path: ['threshold'],
      }),
    /** Model directories (`sertn model build` output) registered on every chain. */
    models: z.array(z.string().min(1)).default([]),
    /** How the hub's node registry runs its pools (chains/evm/nodes.ts DEFAULT_NODE_POOL where absent). */
    pool: z
      .strictObject({
        epochLength: bigInteger.optional(),
        unbondingEpochs: bigInteger.optional(),
        minimumStake: bigInteger.optional(),
        missPenalty: bigInteger.optional(),
        requesterShareBps: bigInteger.optional(),
        window: bigInteger.optional(),
        maxMissesPerEpoch: bigInteger.optional(),
        maxOpenJobs: bigInteger.optional(),
      })
      .default({}),
    /** Every gateway's configuration (chains/evm/deploy.ts DEFAULT_GATEWAY_CONFIG where absent). */
    gateway: z
      .strictObject({
        requestTimeout: z.number().int().positive().optional(),
        maxCallbackGasLimit: z.number().int().positive().optional(),
        fulfillGasOverhead: z.number().int().min(0).optional(),
        gasPrice: bigInteger.optional(),
        batchGasOverhead: z.number().int().min(0).optional(),
        batchRowGasOverhead: z.number().int().min(0).optional(),
      })
      .default({}),
    /**
     * Let the registries accept circuits set up with a locally generated SRS: refused unless every
     * chain is a development chain ({@link DEVELOPMENT_CHAIN_IDS}).
     */
    allowInsecureSrs: z.boolean().default(false),
    /** Sections of the node configuration written for operators (temporal, storage, models, …), merged over the defaults. */
    nodeConfig: z.record(z.string(), z.unknown()).default({}),
  })
  .superRefine((f, ctx) => {
    const names = [f.hub.name, ...f.spokes.map((s) => s.name)]
    const ids = [f.hub.chainId, ...f.spokes.map((s) => s.chainId)]
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i)
        ctx.addIssue({
          code: 'custom',
          message: `chain name "${n}" is used twice`,
          path: i === 0 ? ['hub', 'name'] : ['spokes', i - 1, 'name'],
        })
      if (ids.indexOf(ids[i]!) !== i)
        ctx.addIssue({
          code: 'custom',
          message: `chain id ${ids[i]} is used twice`,
          path: i === 0 ? ['hub', 'chainId'] : ['spokes', i - 1, 'chainId'],
        })
    })
  })

export type NetworkFile = z.output<typeof networkFileSchema>

/** Chain ids of development chains (anvil and Hardhat 31337, Ganache and geth --dev 1337, the local stack's spokes). */
export const DEVELOPMENT_CHAIN_IDS: readonly number[] = [31337, 1337, 31338, 31339]

/** Reads and checks a network file: a ConfigError names the file and the field at fault. */
export function readNetworkFile(file: string): NetworkFile {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(`cannot read the network file ${shown(file)}: ${err instanceof Error ? err.message : String(err)}`)
  }
  const f = parseConfigSection(networkFileSchema, raw, shown(file))
  if (f.allowInsecureSrs) {
    const public_ = [f.hub, ...f.spokes].filter((c) => !DEVELOPMENT_CHAIN_IDS.includes(c.chainId))
    if (public_.length)
      throw new ConfigError(
        `${shown(file)}: allowInsecureSrs is refused on ${public_.map((c) => `${c.name} (chain ${c.chainId})`).join(', ')}: not a development chain`,
        {
          details:
            'A circuit set up with a locally generated SRS can be proven false by anyone who knows the secret that SRS was drawn with: ' +
            'a registry that accepts such circuits accepts forged results. Build the models with a public ceremony SRS, and remove allowInsecureSrs.',
        },
      )
  }
  return f
}

function poolOf(f: NetworkFile): Partial<NodePoolParameters> {
  const out: Partial<NodePoolParameters> = {}
  for (const [k, v] of Object.entries(f.pool)) if (v !== undefined) out[k as keyof NodePoolParameters] = BigInt(v)
  return out
}

function gatewayOf(f: NetworkFile): Partial<GatewayConfig> {
  const { gasPrice, ...rest } = f.gateway
  const out: Partial<GatewayConfig> = {}
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) (out as Record<string, number>)[k] = v
  if (gasPrice !== undefined) out.gasPrice = BigInt(gasPrice)
  return out
}

// ─────────────────────────────── the deployer's key ───────────────────────────────

export type DeployerKeyOptions = {
  /** A raw key (local development: it shows in the shell's history and the process list). */
  privateKey?: string | undefined
  /** An encrypted JSON keystore (`cast wallet new`, geth, ethers), with its password in a file. */
  keystore?: string | undefined
  passwordFile?: string | undefined
}

/**
 * The deployer's account from a keystore (`--keystore FILE --password-file FILE`, as cast takes
 * them) or a raw key (`--private-key`, with a warning). The one place this command loads a key.
 */
export async function loadDeployerAccount(o: DeployerKeyOptions, warn: (line: string) => void): Promise<Account> {
  if (o.privateKey !== undefined && o.keystore !== undefined) throw new UsageError('pass --private-key or --keystore, not both')
  if (o.keystore !== undefined) {
    // The one keystore reader (core/keys.ts, as `sertn node` and `sertn model` use it): the password
    // from --password-file, else a prompt on a terminal; a wrong one is one line naming the file.
    const { keyFromOptions } = await import('./accounts.ts')
    return privateKeyToAccount((await keyFromOptions({ keystore: o.keystore, passwordFile: o.passwordFile }))!)
  }
  if (o.privateKey !== undefined) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(o.privateKey)) throw new UsageError('--private-key must be a 0x-prefixed 32-byte hex key')
    warn('--private-key: the key shows in the shell history and the process list; for local development only (use --keystore)')
    return privateKeyToAccount(o.privateKey as Hex)
  }
  throw new UsageError(
    'the deployer signs every transaction: pass --keystore FILE --password-file FILE (or --private-key 0x… on a development chain)',
  )
}

// ─────────────────────────────── the deployment record ───────────────────────────────

/** One recorded step: its result (addresses), the transactions it sent per chain and the block it ended at. */
export type RecordedStep = {
  kind: NetworkStep['kind']
  chains: readonly string[]
  result: unknown
  transactions: { chain: string; hash: Hex }[]
  /** Per chain, the block of its last transaction (or the head when it sent none). */
  blocks: Record<string, number>
  at: string
}

/** `sertn deploy`'s record (deployment.json): what each step did, and the network once complete. */
export type DeploymentRecord = {
  kind: 'sertn-deployment'
  version: 1
  name: string
  deployer: Address
  /** Per chain name: its chain id, and the block before its first step (where the node's watchers start). */
  chains: Record<string, { chainId: number; startBlock: number }>
  steps: Record<string, RecordedStep>
  /**
   * The network file's parameters of the deployed contracts (messaging, pool, gateway, SRS policy)
   * when their first step ran: a rerun with others warns that deployed contracts keep theirs.
   */
  parameters?: string
  /** Once every step ran: the network (as `networkChainsConfig` takes it) and the models' ids by name. */
  network?: SertnNetwork
  models?: Record<string, Hex>
  complete: boolean
  updatedAt: string
}

const jsonText = (v: unknown) => `${JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`

/** Writes a file whole or not at all (a crash mid-write leaves the previous record). */
function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp`
  writeFileSync(tmp, text)
  renameSync(tmp, file)
}

/** Reads a deployment record (undefined when there is none). */
export function readDeploymentRecord(file: string): DeploymentRecord | undefined {
  if (!existsSync(file)) return undefined
  let r: DeploymentRecord
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as DeploymentRecord
  } catch (err) {
    throw new SertnError(`cannot read the deployment record ${shown(file)}: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (r.kind !== 'sertn-deployment' || r.version !== 1)
    throw new SertnError(`${shown(file)} is not a record of \`sertn deploy\``, {
      details: "Pass --record with a `sertn deploy` record (or a new file); the local stack's deployment.json is another format.",
    })
  return r
}

/** The 0x addresses in a step's result (where a resume checks for code). */
function addressesIn(v: unknown, out: Address[] = []): Address[] {
  if (typeof v === 'string' && /^0x[0-9a-fA-F]{40}$/.test(v)) out.push(v as Address)
  else if (Array.isArray(v)) for (const x of v) addressesIn(x, out)
  else if (v && typeof v === 'object') for (const x of Object.values(v)) addressesIn(x, out)
  return out
}

/** Thrown by the journal after the step SERTN_DEPLOY_STOP_AFTER names (tests of an interrupted run). */
class StoppedAfterStep extends SertnError {
  override name = 'StoppedAfterStep'
}

/** A chain as the deployment reaches it: its client and the hashes of the transactions it sent. */
type DeployChain = { name: string; client: SertnClient; sent: Hex[] }

/**
 * A client whose transport notes the hash of every transaction it sends (into `sent`), so that a
 * step's record names its transactions and a fork run can add up their gas.
 */
function recordingClient(chainId: number, name: string, rpcUrl: string, account: Account, pollingInterval: number): DeployChain {
  const sent: Hex[] = []
  const base = http(rpcUrl, { retryCount: 2 })
  const transport = ((opts: Parameters<HttpTransport>[0]) => {
    const t = base(opts)
    return {
      ...t,
      request: async (args: { method: string; params?: unknown }) => {
        const r = await t.request(args as never)
        if (args.method === 'eth_sendRawTransaction' || args.method === 'eth_sendTransaction') sent.push(r as Hex)
        return r
      },
    }
  }) as HttpTransport
  const client = createWalletClient({ chain: evmChainOf(chainId, name, rpcUrl), account, pollingInterval, transport }).extend(publicActions)
  return { name, client: client as SertnClient, sent }
}

/**
 * The journal of a deployment: a deploy step recorded in `record` is skipped (its result
 * returned); every other step runs and is recorded with its transactions and blocks, the record
 * saved after each when `file` is given.
 */
function recordJournal(
  record: DeploymentRecord,
  chains: Record<string, DeployChain>,
  o: { file?: string; stopAfter?: string; log: (line: string) => void },
): NetworkJournal {
  return {
    async step<T>(step: NetworkStep, run: () => Promise<T>): Promise<T> {
      const recorded = record.steps[step.name]
      if (step.kind === 'deploy' && recorded) {
        o.log(`  ${step.name}: recorded, skipped`)
        return recorded.result as T
      }
      const before = Object.fromEntries(step.chains.map((c) => [c, chains[c]!.sent.length]))
      const result = await run()
      const transactions = step.chains.flatMap((c) => chains[c]!.sent.slice(before[c]).map((hash) => ({ chain: c, hash })))
      const blocks: Record<string, number> = {}
      for (const c of step.chains) {
        const last = transactions.filter((t) => t.chain === c).at(-1)
        const client = chains[c]!.client
        blocks[c] = Number(
          last ? (await client.getTransactionReceipt({ hash: last.hash })).blockNumber : await client.getBlockNumber({ cacheTime: 0 }),
        )
      }
      record.steps[step.name] = { kind: step.kind, chains: step.chains, result, transactions, blocks, at: new Date().toISOString() }
      record.updatedAt = new Date().toISOString()
      if (o.file) writeAtomically(o.file, jsonText(record))
      o.log(`  ${step.name}: ${transactions.length ? `${transactions.length} transaction(s)` : 'nothing to send'}`)
      if (o.stopAfter === step.name) throw new StoppedAfterStep(`stopped after step ${step.name} (SERTN_DEPLOY_STOP_AFTER)`)
      return result
    },
  }
}

// ─────────────────────────────── the command ───────────────────────────────

export type DeployCommandParameters = DeployerKeyOptions & {
  network: string
  /** Default: `deployment.json`. */
  record?: string | undefined
  /** Default: `sertn.config.json`. */
  configOut?: string | undefined
  dryRun?: boolean | undefined
  yes?: boolean | undefined
}

type ChainFile = NetworkFile['hub'] & { messenger?: string }

/** What one chain's part of the deployment spends, measured on its fork. */
type Estimate = { chain: string; transactions: number; gas: bigint; value: bigint; feePerGas: bigint; cost: bigint; balance: bigint }

export async function deployCommand(p: DeployCommandParameters): Promise<number> {
  const log = (line: string) => console.log(line)
  const warn = (line: string) => console.error(`warning: ${line}`)
  const file = readNetworkFile(p.network)
  const recordFile = resolve(p.record ?? 'deployment.json')
  const configFile = resolve(p.configOut ?? 'sertn.config.json')
  const account = await loadDeployerAccount(p, warn)
  const chainsOf: ChainFile[] = [file.hub, ...file.spokes]
  const messengers = await loadMessengers([...new Set(file.spokes.map((s) => s.messenger))])
  if (file.allowInsecureSrs)
    warn(
      `allowInsecureSrs: the registries accept circuits set up with a locally generated SRS (development chains only: anyone who knows its secret can forge proofs)`,
    )

  // 1. Each RPC answers the chain id the file names (one line naming the chain and both ids otherwise).
  const ids = await Promise.all(
    chainsOf.map(async (c) => {
      try {
        return await createPublicClient({ transport: http(c.rpcUrl, { retryCount: 1 }) }).getChainId()
      } catch (err) {
        throw new SertnError(`chain ${c.name}: cannot reach ${c.rpcUrl}`, { cause: err, details: 'Check rpcUrl in the network file.' })
      }
    }),
  )
  chainsOf.forEach((c, i) => {
    if (ids[i] !== c.chainId)
      throw new SertnError(`chain ${c.name}: the RPC answers chain id ${ids[i]}, the network file says ${c.chainId}`)
  })
  log(`${file.name}: deployer ${account.address}`)
  const live = Object.fromEntries(chainsOf.map((c) => [c.name, recordingClient(c.chainId, c.name, c.rpcUrl, account, c.pollingIntervalMs)]))
  const balances = Object.fromEntries(
    await Promise.all(chainsOf.map(async (c) => [c.name, await live[c.name]!.client.getBalance({ address: account.address })] as const)),
  )
  for (const c of chainsOf) log(`  ${c.name.padEnd(10)} chain ${c.chainId}, balance ${formatEther(balances[c.name]!)} ETH`)

  // 2. The record: the same deployer and chains; every recorded contract still has code.
  const record = readDeploymentRecord(recordFile) ?? newRecord(file, account.address)
  await checkRecord(record, file, account.address, live, recordFile, warn)

  const parameters = parametersOf(file)
  if (record.parameters !== undefined && record.parameters !== parameters && Object.values(record.steps).some((s) => s.kind === 'deploy'))
    warn(
      `the network file's messaging, pool, gateway or allowInsecureSrs differ from those the recorded contracts were deployed with: ` +
        'recorded contracts keep theirs (change them on chain as their owner, or deploy afresh with another --record)',
    )
  record.parameters ??= parameters

  // 3. The whole deployment on a fork of every chain: what it will send and spend.
  const stopAfter = process.env.SERTN_DEPLOY_STOP_AFTER
  if (stopAfter && !networkStepNames(file.hub.name, file.spokes).includes(stopAfter))
    throw new UsageError(`SERTN_DEPLOY_STOP_AFTER names no step: ${stopAfter}`)
  log('simulating the deployment on a fork of each chain (anvil --fork-url)')
  const estimates = await simulate(file, record, account, balances, messengers)
  printEstimates(estimates, log)
  const short = estimates.filter((e) => e.cost > e.balance)
  const sends = estimates.reduce((a, e) => a + e.transactions, 0)
  if (p.dryRun) {
    log(sends ? `dry run: ${sends} transaction(s) would be sent; nothing sent` : 'dry run: the deployment is up to date; nothing to send')
    for (const e of short)
      warn(`${e.chain}: the deployer has ${formatEther(e.balance)} ETH, the deployment needs about ${formatEther(e.cost)} ETH`)
    return 0
  }
  if (short.length)
    throw new SertnError(
      short
        .map(
          (e) => `chain ${e.chain}: the deployer has ${formatEther(e.balance)} ETH, the deployment needs about ${formatEther(e.cost)} ETH`,
        )
        .join('; '),
      { details: `Fund ${account.address} on those chains and run the command again.` },
    )
  if (sends > 0 && !p.yes) {
    if (!process.stdin.isTTY) throw new UsageError('not a terminal: pass --yes to send these transactions (or --dry-run to see them only)')
    const rl = createInterface({ input: process.stdin, output: process.stdout })
    const answer = await rl.question(`send ${sends} transaction(s)? [y/N] `)
    rl.close()
    if (!/^y(es)?$/i.test(answer.trim())) {
      log('nothing sent')
      return 1
    }
  }

  // 4. The deployment, recorded step by step.
  if (sends === 0) log('the deployment is up to date: nothing to send')
  for (const c of chainsOf) {
    record.chains[c.name] ??= { chainId: c.chainId, startBlock: Number(await live[c.name]!.client.getBlockNumber({ cacheTime: 0 })) + 1 }
  }
  const journal = recordJournal(record, live, { file: recordFile, log, ...(stopAfter ? { stopAfter } : {}) })
  const network = await deploySertnNetwork({ ...networkParams(file, live, messengers), journal, log: (line) => log(line) })
  record.network = network
  record.models = Object.fromEntries(network.hub.models.map((m) => [m.name, m.modelId]))
  record.complete = true
  record.updatedAt = new Date().toISOString()
  writeAtomically(recordFile, jsonText(record))
  writeAtomically(configFile, jsonText(nodeConfigOf(file, network, record)))
  log(`deployment recorded in ${shown(recordFile)}; node configuration in ${shown(configFile)}`)
  log(
    `  hub ${network.hub.name}: gateway ${network.hub.core.gateway}, market ${network.hub.market}, node registry ${network.hub.core.nodeRegistry}`,
  )
  for (const s of network.spokes) log(`  spoke ${s.name}: gateway ${s.spoke.gateway} (${s.messenger.kind} port ${s.messenger.port})`)
  return 0
}

/** The parameters a deployed contract keeps (see {@link DeploymentRecord.parameters}). */
function parametersOf(f: NetworkFile): string {
  return JSON.stringify({ messaging: f.messaging, pool: f.pool, gateway: f.gateway, allowInsecureSrs: f.allowInsecureSrs })
}

function newRecord(file: NetworkFile, deployer: Address): DeploymentRecord {
  return {
    kind: 'sertn-deployment',
    version: 1,
    name: file.name,
    deployer,
    chains: {},
    steps: {},
    complete: false,
    updatedAt: new Date().toISOString(),
  }
}

/**
 * Refuses a record of another deployer or other chains, and one whose contracts are partly gone;
 * forgets the steps of a chain that has none of them any more (a development chain reset), with a
 * warning: they run again.
 */
async function checkRecord(
  record: DeploymentRecord,
  file: NetworkFile,
  deployer: Address,
  live: Record<string, DeployChain>,
  recordFile: string,
  warn: (line: string) => void,
): Promise<void> {
  const fix = `Pass another --record to deploy afresh, or correct the network file.`
  if (record.deployer.toLowerCase() !== deployer.toLowerCase())
    throw new SertnError(`${shown(recordFile)} was written by the deployer ${record.deployer}, this key is ${deployer}`, {
      details: `The contracts are owned by the recorded deployer: sign with its key. ${fix}`,
    })
  for (const c of [file.hub, ...file.spokes]) {
    const r = record.chains[c.name]
    if (r && r.chainId !== c.chainId)
      throw new SertnError(`${shown(recordFile)} records ${c.name} as chain ${r.chainId}, the network file says ${c.chainId}`, {
        details: fix,
      })
  }
  const byChain = new Map<string, { step: string; address: Address; code: boolean }[]>()
  for (const [name, s] of Object.entries(record.steps)) {
    if (s.kind !== 'deploy') continue
    const chain = s.chains[0]!
    const client = live[chain]?.client
    if (!client)
      throw new SertnError(`${shown(recordFile)} records step ${name} on chain ${chain}, which the network file does not name`, {
        details: fix,
      })
    for (const a of addressesIn(s.result)) {
      const code = await client.getCode({ address: a })
      const list = byChain.get(chain) ?? []
      list.push({ step: name, address: a, code: !!code && code !== '0x' })
      byChain.set(chain, list)
    }
  }
  for (const [chain, list] of byChain) {
    const missing = list.filter((x) => !x.code)
    if (!missing.length) continue
    if (missing.length === list.length) {
      warn(`chain ${chain} has none of the recorded contracts (a new or reset chain): its steps run again`)
      for (const [name, s] of Object.entries(record.steps)) if (s.chains.includes(chain)) delete record.steps[name]
      delete record.chains[chain]
      record.complete = false
      continue
    }
    throw new SertnError(
      `chain ${chain}: no code at ${missing.map((m) => `${m.address} (step ${m.step})`).join(', ')}, recorded in ${shown(recordFile)}`,
      { details: `The chain lost part of the deployment (a reorg, or another chain behind the RPC). ${fix}` },
    )
  }
}

/** The parameters of `deploySertnNetwork` for a network file on these chains (no node joins: operators do, with `sertn node register`). */
function networkParams(
  file: NetworkFile,
  chains: Record<string, Pick<DeployChain, 'client'>>,
  messengers: Awaited<ReturnType<typeof loadMessengers>>,
) {
  const fees: Record<string, bigint> = {}
  for (const [k, v] of Object.entries(file.messaging.fees)) if (v !== undefined) fees[k] = BigInt(v)
  const pool = poolOf(file)
  return {
    hub: { name: file.hub.name, client: chains[file.hub.name]!.client },
    spokes: file.spokes.map((s) => ({ name: s.name, client: chains[s.name]!.client, messenger: s.messenger })),
    messengers,
    attesters: file.messaging.attesters as Address[],
    threshold: file.messaging.threshold,
    confirmations: file.messaging.confirmations,
    submitters: file.messaging.submitters as Address[],
    fees,
    models: file.models,
    nodes: [],
    ...(Object.keys(pool).length ? { pool } : {}),
    gatewayConfig: gatewayOf(file),
    allowInsecureSrs: file.allowInsecureSrs,
  }
}

/**
 * Runs the deployment (from the record's state) on a fork of every chain and measures what each
 * chain's transactions use; prices them at the real chain's current fee.
 */
async function simulate(
  file: NetworkFile,
  record: DeploymentRecord,
  account: Account,
  balances: Record<string, bigint>,
  messengers: Awaited<ReturnType<typeof loadMessengers>>,
): Promise<Estimate[]> {
  const chainsOf: ChainFile[] = [file.hub, ...file.spokes]
  const forks: AnvilInstance[] = []
  try {
    const forked: Record<string, DeployChain> = {}
    await Promise.all(
      chainsOf.map(async (c) => {
        const fork = await startAnvil({ forkUrl: c.rpcUrl })
        forks.push(fork)
        forked[c.name] = recordingClient(c.chainId, c.name, fork.rpcUrl, account, 50)
      }),
    )
    const copy = structuredClone(record)
    try {
      await deploySertnNetwork({ ...networkParams(file, forked, messengers), journal: recordJournal(copy, forked, { log: () => {} }) })
    } catch (err) {
      const m = err instanceof Error ? err.message : String(err)
      throw new SertnError(`the deployment fails on a fork of the chains: ${m.split('\n')[0]}`, {
        cause: err,
        details: /insufficient funds|exceeds the balance/i.test(m)
          ? `The deployer ${account.address} cannot pay for it: fund it on every chain and run the command again.`
          : 'Nothing was sent. Fix the cause above (SERTN_DEBUG=1 shows more) and run the command again.',
      })
    }
    return await Promise.all(
      chainsOf.map(async (c) => {
        const { client, sent } = forked[c.name]!
        let gas = 0n
        let value = 0n
        for (const hash of sent) {
          const [receipt, tx] = await Promise.all([client.getTransactionReceipt({ hash }), client.getTransaction({ hash })])
          gas += receipt.gasUsed
          value += tx.value
        }
        const real = createPublicClient({ transport: http(c.rpcUrl, { retryCount: 1 }) })
        const feePerGas = await real
          .estimateFeesPerGas()
          .then((f) => f.maxFeePerGas ?? f.gasPrice ?? 0n)
          .catch(() => real.getGasPrice())
        return {
          chain: c.name,
          transactions: sent.length,
          gas,
          value,
          feePerGas,
          cost: gas * feePerGas + value,
          balance: balances[c.name]!,
        }
      }),
    )
  } finally {
    await Promise.all(forks.map((f) => f.stop().catch(() => {})))
  }
}

function printEstimates(estimates: readonly Estimate[], log: (line: string) => void): void {
  log('what the deployment will send (measured on the forks, priced at the current fee):')
  for (const e of estimates)
    log(
      `  ${e.chain.padEnd(10)} ${String(e.transactions).padStart(3)} transaction(s), ${e.gas.toLocaleString('en-US')} gas × ${formatGwei(e.feePerGas)} gwei` +
        `${e.value ? ` + ${formatEther(e.value)} ETH in fees to the registries` : ''} = ${formatEther(e.cost)} ETH (balance ${formatEther(e.balance)} ETH)`,
    )
}

/**
 * The node configuration for a deployed network: its `chains` (networkChainsConfig: addresses,
 * messengers, RPC URLs, each chain's confirmations and polling, the block its watchers start at),
 * Temporal's defaults, the models' directory, the relay's confirmations (`messaging.confirmations`),
 * and the file's `nodeConfig` over the top. No key: each operator adds its node key (a keystore) to
 * its copy.
 */
export function nodeConfigOf(file: NetworkFile, network: SertnNetwork, record: DeploymentRecord): Record<string, unknown> {
  const chainsOf: ChainFile[] = [file.hub, ...file.spokes]
  const chains = networkChainsConfig(network, Object.fromEntries(chainsOf.map((c) => [c.name, c.rpcUrl])))
  for (const c of chainsOf) {
    Object.assign(chains[c.name]!, {
      confirmations: c.confirmations,
      pollingIntervalMs: c.pollingIntervalMs,
      startBlock: record.chains[c.name]?.startBlock ?? 0,
    })
  }
  const modelDirs = [...new Set(file.models.map((m) => dirname(resolve(m))))]
  const config: Record<string, unknown> = {
    dataDir: '.data',
    chains,
    temporal: { address: '127.0.0.1:7233', namespace: 'default' },
    models: { ...(modelDirs.length === 1 ? { dir: modelDirs[0] } : {}), allowInsecureSrs: file.allowInsecureSrs },
    // `sertn relay`'s agents attest a message after the network's confirmations, as its other attesters do.
    relay: { confirmations: file.messaging.confirmations },
    ...file.nodeConfig,
  }
  parseConfig(config, 'the node configuration written by sertn deploy')
  return config
}
