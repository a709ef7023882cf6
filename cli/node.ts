/**
 * `sertn node …`: what a node operator runs against the hub's NodeRegistry.
 *
 *   sertn node register [--model NAME|ID …] [--capacity N] [--stake ETH]   stake and join the models' pools
 *   sertn node status [--node ADDRESS]                                      the node's epoch view
 *   sertn node leave [--model NAME|ID …]                                   leave pools at the next epoch boundary
 *   sertn node withdraw                                                     the whole stake, once unbonded
 *   sertn node claim                                                        slash shares credited to the account
 *
 * The hub chain, the node's key and the hub gateway come from the configuration (`--config FILE`, as
 * `sertn deploy` writes it, or `<data-dir>/sertn.config.json` as `sertn start` writes it), the
 * models' names and their owner from `--deployment FILE` (a `sertn deploy` record) or the local
 * stack's deployment.json (with `--data-dir`); `--rpc-url` (with `--registry` or
 * `--gateway`, and `--private-key` or `--node`) reaches a hub without one. The NodeRegistry is the
 * hub gateway's `nodes()` unless `--registry` names it. Every transaction is simulated first: a
 * refusal by the registry (unbonding, still registered, nothing to withdraw, unknown model…) is one
 * line saying why and when it becomes possible, and exit code 1. `--json` prints the outcome as JSON
 * on stdout.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  formatEther,
  http,
  parseEventLogs,
  zeroAddress,
  type Account,
  type Address,
  type Hex,
  type TransactionReceipt,
} from 'viem'
import { resolve } from 'node:path'
import { privateKeyToAccount } from 'viem/accounts'
import { evmChainOf } from '../chains/evm/chain.ts'
import { createSertnClient, type SertnClient } from '../chains/evm/clients.ts'
import { InferenceGateway, InferenceMarket, ModelRegistry, NodeRegistry } from '../contracts/artifacts/index.ts'
import { SertnError } from '../core/errors.ts'
import { modelIdOf } from '../core/models.ts'
import { resolveSigners } from '../core/secrets.ts'
import { OWNER_ACCOUNT, anvilPrivateKey, keyFromOptions } from './accounts.ts'
import { readDeploymentRecord } from './deploy.ts'
import { DEMO_MODEL, openStack, shown, UsageError, type RunningStack } from './common.ts'
import { Progress } from './progress.ts'
import { out } from './ui.ts'

/** How every `sertn node` command reaches the hub and its NodeRegistry. */
export type NodeConnectionOptions = {
  /** The local stack's data directory (its `sertn.config.json` and `deployment.json`). */
  dataDir?: string | undefined
  /** The node configuration (default `<data-dir>/sertn.config.json`). */
  config?: string | undefined
  /** The hub chain's RPC (default: the configuration's hub chain); without --config/--data-dir, no configuration is read. */
  rpcUrl?: string | undefined
  /** The NodeRegistry (default: the hub gateway's `nodes()`). */
  registry?: Address | undefined
  /** The hub's InferenceGateway (default: the configuration's hub chain's gateway). */
  gateway?: Address | undefined
  /** The node's key (default: the configuration's node key: its secrets file, else `node.privateKey`). */
  privateKey?: Hex | undefined
  /** The node's keystore instead (`--keystore`, as cast), decrypted with `passwordFile` or a prompt. */
  keystore?: string | undefined
  passwordFile?: string | undefined
  /**
   * A `sertn deploy` record (its deployment.json): the models' names and who registered them.
   * Default: none with --config, the local stack's deployment.json with --data-dir.
   */
  deployment?: string | undefined
  json?: boolean | undefined
}

/** Models named on the command line: a 0x id, or a name registered by `owner`. */
export type NodeModelOptions = {
  /** Model names or 0x ids (default: the local stack's models, else the demo model). */
  models?: string[] | undefined
  /** Who registered the named models (default: the local stack's owner). */
  owner?: Address | undefined
}

export type NodeRegisterParameters = NodeConnectionOptions &
  NodeModelOptions & {
    /** Compute units per epoch committed to each model (default {@link DEFAULT_CAPACITY}). */
    capacity?: bigint | undefined
    /** The stake (wei) to hold: only the difference to the current stake is sent (default: the models' minimum). */
    stake?: bigint | undefined
  }

export type NodeStatusParameters = NodeConnectionOptions & {
  /** The node (default: the key's account). */
  node?: Address | undefined
}

export type NodeLeaveParameters = NodeConnectionOptions & NodeModelOptions

/** Compute units per epoch a node commits to each model by default. */
export const DEFAULT_CAPACITY = 1000n

/** A membership's `activeUntil` while the node is not leaving. */
const FOREVER = 2n ** 64n - 1n

/** Blocks per log query (public RPCs limit a query's range). */
const LOG_RANGE = 10_000n

const eth = (wei: bigint) => `${formatEther(wei)} ETH`
const json = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x))

/** The hub as a node command sees it. */
type Hub = {
  client: SertnClient
  chainId: number
  rpcUrl: string
  registry: Address
  /** The hub's InferenceGateway (where hub requests pay their node), if known. */
  gateway: Address | undefined
  /** The node's account (a signing one when a key is known). */
  account: Account
  stack: RunningStack | undefined
  /** Who registered the network's models (the deployer, or the local stack's owner), if known. */
  owner: Address | undefined
  /** Known model names, by id (for display). */
  names: Map<string, string>
}

const at = (h: Hub) => ({ address: h.registry, abi: NodeRegistry.abi }) as const

/** The hub chain of a configuration: the chain with a market (else the one that is no spoke). */
function hubChainOf(stack: RunningStack) {
  const entries = Object.entries(stack.config.chains)
  const hub = entries.find(([, c]) => c.market !== undefined) ?? entries.find(([, c]) => c.hub === undefined)
  if (!hub)
    throw new SertnError(`no hub chain in ${shown(stack.configFile)}`, {
      details: 'The hub is the chain with a `market` address; pass --rpc-url and --registry to reach one without a configuration.',
    })
  return { name: hub[0], ...hub[1] }
}

async function openHub(p: NodeConnectionOptions & { node?: Address | undefined }, signs: boolean): Promise<Hub> {
  const standalone = p.rpcUrl !== undefined && p.config === undefined && p.dataDir === undefined
  const stack = standalone ? undefined : openStack({ dataDir: p.dataDir, config: p.config })
  const chain = stack ? hubChainOf(stack) : undefined
  const rpcUrl = p.rpcUrl ?? chain!.rpcUrl
  // The key: --private-key or --keystore, else the configuration's node key (not decrypted for a read that names --node).
  const key =
    (await keyFromOptions(p)) ?? (stack && (signs || !p.node) ? (await resolveSigners(stack.config, ['node'])).node?.privateKey : undefined)
  if (signs && !key)
    throw new UsageError('this command signs as the node: pass --private-key 0x… or --keystore FILE (or a configuration with a node key)')
  let account: Account
  if (signs || (key && !p.node)) account = privateKeyToAccount(key!)
  else if (p.node) account = { address: p.node, type: 'json-rpc' }
  else throw new UsageError('which node? pass --node ADDRESS, --private-key 0x…, --keystore FILE, or a configuration with a node key')
  let chainId = chain?.chainId
  try {
    chainId ??= await createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }).getChainId()
  } catch (err) {
    throw unreachable(rpcUrl, err)
  }
  const client = createSertnClient(evmChainOf(chainId, chain?.name ?? 'hub', rpcUrl), account, {
    pollingInterval: Math.min(chain?.pollingIntervalMs ?? 250, 250),
    // A configured chain's fallbacks (not for a given --rpc-url).
    ...(chain && p.rpcUrl === undefined ? { fallbackRpcUrls: chain.fallbackRpcUrls } : {}),
  })
  const gateway = p.gateway ?? (chain?.gateway as Address | undefined)
  let registry = p.registry
  if (!registry) {
    if (!gateway && !chain?.market)
      throw new UsageError(
        'no hub gateway to read the NodeRegistry from: pass --registry ADDRESS (or --gateway ADDRESS, or a configuration)',
      )
    registry = await registryOf(client, rpcUrl, gateway, chain?.market as Address | undefined)
  }
  const code = await client.getCode({ address: registry }).catch((err: unknown) => {
    throw unreachable(rpcUrl, err)
  })
  if (!code || code === '0x')
    throw new SertnError(`no contract at the NodeRegistry address ${registry} on ${rpcUrl}`, {
      details: 'Check --registry (or the configuration), or start the local stack again (`npm start`).',
    })
  const { owner, names } = knownModels(p, stack)
  return { client, chainId, rpcUrl, registry, gateway, account, stack, owner, names }
}

/**
 * The network's models by id and who registered them: from a `sertn deploy` record (--deployment),
 * else the local stack's deployment.json when its data directory is used (not with --config alone:
 * a configuration of another network must not pick up the stack's names).
 */
function knownModels(
  p: NodeConnectionOptions,
  stack: RunningStack | undefined,
): { owner: Address | undefined; names: Map<string, string> } {
  const names = new Map<string, string>()
  if (p.deployment !== undefined) {
    const record = readDeploymentRecord(resolve(p.deployment))
    if (!record)
      throw new UsageError(`no deployment record at ${shown(resolve(p.deployment))} (pass the --record file of \`sertn deploy\`)`)
    for (const [name, id] of Object.entries(record.models ?? {})) names.set(id.toLowerCase(), name)
    return { owner: record.deployer, names }
  }
  const local = stack && (p.dataDir !== undefined || p.config === undefined) ? stack.deployment : undefined
  for (const [name, m] of Object.entries(local?.models ?? {})) names.set(m.modelId.toLowerCase(), name)
  return { owner: local?.owner, names }
}

function unreachable(rpcUrl: string, err: unknown): SertnError {
  return new SertnError(`cannot reach the hub chain at ${rpcUrl}`, {
    cause: err,
    details: 'Is the local stack running? Start it with `npm start`, or pass the hub RPC with --rpc-url URL.',
  })
}

/** The NodeRegistry the hub gateway (else the market) assigns its requests with. */
async function registryOf(client: SertnClient, rpcUrl: string, gateway: Address | undefined, market: Address | undefined) {
  const tries: [string, () => Promise<Address>][] = []
  if (gateway)
    tries.push([`gateway ${gateway}`, () => client.readContract({ address: gateway, abi: InferenceGateway.abi, functionName: 'nodes' })])
  if (market)
    tries.push([`market ${market}`, () => client.readContract({ address: market, abi: InferenceMarket.abi, functionName: 'nodes' })])
  const failed: string[] = []
  for (const [what, read] of tries) {
    try {
      const r = await read()
      if (r !== zeroAddress) return r
      failed.push(`the ${what} has no node registry`)
    } catch (err) {
      if (!(err instanceof BaseError) || /fetch failed|ECONNREFUSED|HTTP request failed/i.test(err.message)) throw unreachable(rpcUrl, err)
      failed.push(`cannot read nodes() from the ${what}`)
    }
  }
  throw new SertnError(`no NodeRegistry on the hub: ${failed.join('; ')}`, {
    details:
      'Pass its address with --registry ADDRESS, or start the local stack again (`npm start`) to deploy this version of the contracts.',
  })
}

/**
 * Who registered a model named without --owner or a deployment record: the local stack's dev owner
 * (anvil account 0), on a loopback RPC only; elsewhere a UsageError that says what to pass.
 */
function localStackOwner(h: Hub): Address {
  if (!/^https?:\/\/(127\.0\.0\.1|localhost)(:|\/|$)/.test(h.rpcUrl))
    throw new UsageError('which account registered the model? pass --owner ADDRESS or --deployment deployment.json (or the model id, 0x…)')
  return privateKeyToAccount(anvilPrivateKey(OWNER_ACCOUNT)).address
}

/** Model ids from names (registered by `owner`) or 0x ids; recorded in `h.names` for display. */
function modelIds(h: Hub, p: NodeModelOptions): Hex[] {
  const owner = p.owner ?? h.owner ?? localStackOwner(h)
  const wanted = p.models?.length ? p.models : h.names.size ? [...h.names.values()] : [DEMO_MODEL]
  const ids: Hex[] = []
  for (const m of wanted) {
    const id = /^0x[0-9a-fA-F]{64}$/.test(m) ? (m as Hex) : modelIdOf(owner, m)
    if (!/^0x[0-9a-fA-F]{64}$/.test(m)) h.names.set(id.toLowerCase(), m)
    if (!ids.some((x) => x.toLowerCase() === id.toLowerCase())) ids.push(id)
  }
  return ids
}

const modelLabel = (h: Hub, id: Hex) => {
  const name = h.names.get(id.toLowerCase())
  return name ? `${name} (${id.slice(0, 10)}…)` : id
}

type Revert = { errorName: string; args: readonly unknown[] }

/** The custom error a simulated or sent call reverted with, decoded against the NodeRegistry ABI. */
function revertOf(err: unknown): Revert | undefined {
  if (!(err instanceof BaseError)) return undefined
  const r = err.walk((e) => e instanceof ContractFunctionRevertedError)
  if (!(r instanceof ContractFunctionRevertedError) || !r.data) return undefined
  return { errorName: r.data.errorName, args: r.data.args ?? [] }
}

/** Runs `fn`; a revert with a custom error comes back as such, anything else is thrown. */
async function attempt<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; revert: Revert }> {
  try {
    return { ok: true, value: await fn() }
  } catch (err) {
    const revert = revertOf(err)
    if (revert) return { ok: false, revert }
    throw err
  }
}

async function mined(h: Hub, hash: Hex): Promise<TransactionReceipt> {
  const receipt = await h.client.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success')
    throw new SertnError(`transaction ${hash} reverted`, { details: 'Run the command again: it reads the state first.' })
  return receipt
}

/** "epoch 7 (block 140, in 12 blocks)" or "(block 140, reached)". */
async function epochAt(h: Hub, e: bigint, head?: bigint): Promise<{ text: string; block: bigint }> {
  const [block, now] = await Promise.all([
    h.client.readContract({ ...at(h), functionName: 'epochStartBlock', args: [e] }),
    head ?? h.client.getBlockNumber({ cacheTime: 0 }),
  ])
  return { block, text: `epoch ${e} (block ${block}${block > now ? `, in ${block - now} blocks` : ', reached'})` }
}

/** One line that says why the registry refused, and what to do or when it becomes possible. */
async function explain(h: Hub, r: Revert, action: 'register' | 'leave' | 'withdraw' | 'claim'): Promise<string> {
  const a = r.args
  switch (r.errorName) {
    case 'NodeRegistryUnbonding': {
      const until = await epochAt(h, a[1] as bigint)
      return `the stake of ${a[0]} is unbonding: it can be withdrawn from ${until.text}`
    }
    case 'NodeRegistryStillRegistered': {
      const epochs = await h.client.readContract({ ...at(h), functionName: 'unbondingEpochs' })
      return `${a[0]} still serves ${a[1]} pool(s): leave them first (\`sertn node leave\`); the stake can be withdrawn ${epochs} epoch(s) after the last one ends`
    }
    case 'NodeRegistryNothingToWithdraw':
      return action === 'claim'
        ? `nothing to claim: no slash shares are credited to ${a[0]}`
        : `nothing to withdraw: ${a[0]} has no stake (never staked, or withdrawn already)`
    case 'NodeRegistryUnknownModel':
      return unknownModelLine(h, a[0] as Hex)
    case 'NodeRegistryStakeBelowMinimum':
      return `model ${modelLabel(h, a[0] as Hex)} requires a stake of ${eth(a[1] as bigint)}, the node has ${eth(a[2] as bigint)}: pass --stake with at least that`
    case 'NodeRegistryAlreadyRegistered':
      return `${a[0]} is registered for model ${modelLabel(h, a[1] as Hex)} already (or leaving it: it can register again once it has left)`
    case 'NodeRegistryNotRegistered':
      return `${a[0]} is not in the pool of model ${modelLabel(h, a[1] as Hex)} (never registered, or leaving it already)`
    case 'NodeRegistryZeroCapacity':
      return 'a node must commit some capacity: pass --capacity N (compute units per epoch, at least 1)'
    case 'NodeRegistryPoolFull':
      return `the pool of model ${modelLabel(h, a[0] as Hex)} is full (${a[1]} nodes): it takes no new node`
    case 'NodeRegistryTransferFailed':
      return `the registry could not send ${eth(a[1] as bigint)} to ${a[0]}: the account refuses ether`
    case 'NodeRegistryInvalidParameter':
      return action === 'register' ? 'the registry refused the stake (zero amount)' : 'the registry refused the call (invalid parameter)'
    default:
      return `the NodeRegistry refused ${action}: ${r.errorName}(${a.map(String).join(', ')})`
  }
}

function unknownModelLine(h: Hub, id: Hex): string {
  return `unknown model ${modelLabel(h, id)}: the hub's model registry has no such model; register it first (\`sertn model register <dir>\`), or check the name and --owner`
}

/** Prints a refusal (stderr, or JSON on stdout) and returns exit code 1. */
function refuse(p: NodeConnectionOptions, line: string, extra: Record<string, unknown> = {}): number {
  if (p.json) console.log(json({ ok: false, error: line, ...extra }))
  else console.error(`error: ${line}`)
  return 1
}

function printRows(title: string, rows: [string, string][]): void {
  console.log(`${out.bold(title)}\n${rows.map(([k, v]) => `  ${k.padEnd(12)}${v}`).join('\n')}`)
}

/**
 * `sertn node register`: stakes up to the target (only the difference is sent) and registers the
 * node for each model it is not registered for, active from the next epoch. A model already
 * registered (and not leaving) is reported, not registered again.
 */
export async function nodeRegisterCommand(p: NodeRegisterParameters): Promise<number> {
  const h = await openHub(p, true)
  const node = h.account.address
  const ids = modelIds(h, p)
  const capacity = p.capacity ?? DEFAULT_CAPACITY
  if (capacity <= 0n || capacity >= FOREVER) throw new UsageError('--capacity must be a positive number of compute units per epoch')
  const progress = new Progress()
  const modelRegistry = await h.client.readContract({ ...at(h), functionName: 'registry' })
  const epoch = await h.client.readContract({ ...at(h), functionName: 'epoch' })
  const models = await Promise.all(
    ids.map(async (modelId) => {
      const [terms, minimum, m] = await Promise.all([
        h.client.readContract({ address: modelRegistry, abi: ModelRegistry.abi, functionName: 'tryGetRequestTerms', args: [modelId] }),
        h.client.readContract({ ...at(h), functionName: 'minimumStake', args: [modelId] }),
        h.client.readContract({ ...at(h), functionName: 'membershipOf', args: [node, modelId] }),
      ])
      return { modelId, known: terms.version !== 0, minimum, membership: m }
    }),
  )
  const unknown = models.filter((m) => !m.known)
  if (unknown.length)
    return refuse(p, unknown.map((m) => unknownModelLine(h, m.modelId)).join('\n       '), { unknown: unknown.map((m) => m.modelId) })

  // The stake: --stake, else the highest minimum; never less than what is staked already.
  const staked = await h.client.readContract({ ...at(h), functionName: 'stakeOf', args: [node] })
  let required = 0n // bigints: no Math.max
  for (const m of models) if (m.minimum > required) required = m.minimum
  if (p.stake !== undefined && p.stake < required) {
    const worst = models.find((m) => m.minimum === required)!
    return refuse(
      p,
      `--stake ${formatEther(p.stake)} is below the ${eth(required)} that model ${modelLabel(h, worst.modelId)} requires of its nodes`,
    )
  }
  const target = p.stake ?? required
  if (target === 0n && staked === 0n)
    return refuse(p, 'these pools set no minimum stake, but a node must stake something to register: pass --stake ETH')
  const result: {
    node: Address
    registry: Address
    chainId: number
    staked: { sent: bigint; total: bigint; required: bigint }
    models: {
      modelId: Hex
      name?: string
      status: 'registered' | 'already-registered' | 'leaving' | 'refused'
      capacity: bigint
      activeFrom?: bigint
      activeFromBlock?: bigint
      reason?: string
    }[]
  } = { node, registry: h.registry, chainId: h.chainId, staked: { sent: 0n, total: staked, required }, models: [] }
  if (staked < target) {
    const step = progress.begin(`staking ${eth(target - staked)}`, { announce: true })
    const r = await attempt(async () => {
      const { request } = await h.client.simulateContract({ ...at(h), functionName: 'stake', value: target - staked, account: h.account })
      return mined(h, await h.client.writeContract(request))
    })
    if (!r.ok) {
      step.fail()
      progress.pause()
      return refuse(p, await explain(h, r.revert, 'register'), { revert: r.revert.errorName })
    }
    step.done()
    result.staked = { sent: target - staked, total: target, required }
  }

  let failed = false
  for (const m of models) {
    const name = h.names.get(m.modelId.toLowerCase())
    const base = { modelId: m.modelId, ...(name ? { name } : {}) }
    const ms = m.membership
    if (ms.capacity !== 0n && ms.activeUntil > epoch) {
      if (ms.activeUntil === FOREVER) {
        result.models.push({ ...base, status: 'already-registered', capacity: ms.capacity, activeFrom: ms.activeFrom })
      } else {
        failed = true
        result.models.push({
          ...base,
          status: 'leaving',
          capacity: ms.capacity,
          reason: `leaving this pool at the start of epoch ${ms.activeUntil}: it can register again from then`,
        })
      }
      continue
    }
    const step = progress.begin(`registering for model ${modelLabel(h, m.modelId)}`, { announce: true })
    const r = await attempt(async () => {
      const { request } = await h.client.simulateContract({
        ...at(h),
        functionName: 'register',
        args: [m.modelId, capacity],
        account: h.account,
      })
      return mined(h, await h.client.writeContract(request))
    })
    if (!r.ok) {
      step.fail()
      failed = true
      result.models.push({ ...base, status: 'refused', capacity, reason: await explain(h, r.revert, 'register') })
      continue
    }
    step.done()
    const [event] = parseEventLogs({ abi: NodeRegistry.abi, logs: r.value.logs, eventName: 'Registered' })
    const activeFrom = event?.args.activeFrom ?? epoch + 1n
    const activeFromBlock = await h.client.readContract({ ...at(h), functionName: 'epochStartBlock', args: [activeFrom] })
    result.models.push({ ...base, status: 'registered', capacity, activeFrom, activeFromBlock })
  }
  progress.pause()

  if (p.json) console.log(json({ ok: !failed, ...result }))
  else {
    const s = result.staked
    const rows: [string, string][] = [
      [
        'stake',
        s.sent
          ? `staked ${eth(s.sent)}: ${eth(s.total)} in all${s.required ? ` (the pools require ${eth(s.required)})` : ''}`
          : `${eth(s.total)} staked already${s.required ? ` (the pools require ${eth(s.required)})` : ''}; nothing sent`,
      ],
    ]
    for (const m of result.models) {
      const line =
        m.status === 'registered'
          ? `registered with ${m.capacity} compute units per epoch: active from epoch ${m.activeFrom} (block ${m.activeFromBlock})`
          : m.status === 'already-registered'
            ? `registered already with ${m.capacity} compute units per epoch, active from epoch ${m.activeFrom}${m.capacity !== capacity && p.capacity !== undefined ? ' (the capacity stays: leave and register again to change it)' : ''}`
            : `not registered: ${m.reason}`
      rows.push(['model', `${modelLabel(h, m.modelId)}: ${line}`])
    }
    printRows(`node ${node} · NodeRegistry ${h.registry} (chain ${h.chainId})`, rows)
    for (const m of result.models) if (m.reason) console.error(`error: model ${modelLabel(h, m.modelId)}: ${m.reason}`)
  }
  return failed ? 1 : 0
}

/** The most blocks one log query of the hub spans: its configured `logRangeBlocks`, else {@link LOG_RANGE}. */
const logRangeOf = (h: Hub): bigint => (h.stack ? BigInt(hubChainOf(h.stack).logRangeBlocks) : LOG_RANGE)

/** `[from, to]` split into ranges of at most `range` blocks, queried one after another. */
async function inRanges<T>(range: bigint, from: bigint, to: bigint, query: (from: bigint, to: bigint) => Promise<T[]>): Promise<T[]> {
  const all: T[] = []
  for (let start = from; start <= to; start += range) {
    const end = start + range - 1n < to ? start + range - 1n : to
    all.push(...(await query(start, end)))
  }
  return all
}

/** The models `node` ever registered for (from its Registered events). */
async function registeredModels(h: Hub, node: Address, from: bigint, to: bigint): Promise<Hex[]> {
  const logs = await inRanges(logRangeOf(h), from, to, (fromBlock, toBlock) =>
    h.client.getContractEvents({ ...at(h), eventName: 'Registered', args: { node }, fromBlock, toBlock, strict: true }),
  )
  const ids: Hex[] = []
  for (const l of logs) if (!ids.some((x) => x.toLowerCase() === l.args.modelId.toLowerCase())) ids.push(l.args.modelId)
  return ids
}

/**
 * `sertn node status`: the node's epoch view: the epoch and the blocks left in it, its stake, each
 * pool it registered for (capacity, used and remaining this epoch, active from/until, active now),
 * its misses this epoch, unbonding, credits, its earnings on the hub gateway and its jobs.
 */
export async function nodeStatusCommand(p: NodeStatusParameters): Promise<number> {
  const h = await openHub(p, false)
  const node = p.node ?? h.account.address
  const head = await h.client.getBlockNumber({ cacheTime: 0 })
  const read = { ...at(h), blockNumber: head } as const
  const epoch = await h.client.readContract({ ...read, functionName: 'epoch' })
  const [genesis, epochStart, nextStart, epochLength, stake, pools, misses, maxMisses, missPenalty, window, unbondingUntil, credits] =
    await Promise.all([
      h.client.readContract({ ...read, functionName: 'epochStartBlock', args: [0n] }),
      h.client.readContract({ ...read, functionName: 'epochStartBlock', args: [epoch] }),
      h.client.readContract({ ...read, functionName: 'epochStartBlock', args: [epoch + 1n] }),
      h.client.readContract({ ...read, functionName: 'epochLength' }),
      h.client.readContract({ ...read, functionName: 'stakeOf', args: [node] }),
      h.client.readContract({ ...read, functionName: 'poolsOf', args: [node] }),
      h.client.readContract({ ...read, functionName: 'missesOf', args: [node, epoch] }),
      h.client.readContract({ ...read, functionName: 'maxMissesPerEpoch' }),
      h.client.readContract({ ...read, functionName: 'missPenalty' }),
      h.client.readContract({ ...read, functionName: 'window' }),
      h.client.readContract({ ...read, functionName: 'unbondingUntil', args: [node] }),
      h.client.readContract({ ...read, functionName: 'creditOf', args: [node] }),
    ])
  modelIds(h, { models: [...h.names.values()] }) // names of the local stack's models, for display
  const ids = await registeredModels(h, node, genesis, head)
  const memberships = await Promise.all(
    ids.map(async (modelId) => {
      const [m, active, remaining, used, minimumStake] = await Promise.all([
        h.client.readContract({ ...read, functionName: 'membershipOf', args: [node, modelId] }),
        h.client.readContract({ ...read, functionName: 'isActive', args: [node, modelId] }),
        h.client.readContract({ ...read, functionName: 'remainingCapacity', args: [node, modelId] }),
        h.client.readContract({ ...read, functionName: 'usedCapacity', args: [node, modelId, epoch] }),
        h.client.readContract({ ...read, functionName: 'minimumStake', args: [modelId] }),
      ])
      const name = h.names.get(modelId.toLowerCase())
      return {
        modelId,
        ...(name ? { name } : {}),
        capacity: m.capacity,
        used,
        remaining,
        /** Jobs assigned to the node and not answered yet (the registry draws the less busy of two nodes). */
        backlog: m.open,
        activeFrom: m.activeFrom,
        activeUntil: m.activeUntil === FOREVER ? null : m.activeUntil,
        active,
        minimumStake,
      }
    }),
  )

  // Earnings: the escrow of each request the hub gateway paid this node on fulfilment.
  let earnings: { gateway: Address | null; fulfilled: number; amount: bigint; counted: string }
  if (h.gateway) {
    const gateway = h.gateway
    const fulfilled = await inRanges(logRangeOf(h), genesis, head, (fromBlock, toBlock) =>
      h.client.getContractEvents({
        address: gateway,
        abi: InferenceGateway.abi,
        eventName: 'InferenceFulfilled',
        args: { node },
        fromBlock,
        toBlock,
        strict: true,
      }),
    )
    const escrows = await Promise.all(
      fulfilled.map((l) =>
        h.client.readContract({ address: gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [l.args.requestId] }),
      ),
    )
    earnings = {
      gateway,
      fulfilled: fulfilled.length,
      amount: escrows.reduce((a, r) => a + r.escrow, 0n),
      counted:
        "each request the hub gateway paid this node for (an InferenceFulfilled naming it), at its escrow: the model fee plus the fulfilment gas charged to the requester; spoke gateways' payments are not counted",
    }
  } else {
    earnings = { gateway: null, fulfilled: 0, amount: 0n, counted: 'not counted: no hub gateway known (pass --gateway ADDRESS)' }
  }

  // Jobs: from the registry's events naming this node.
  const events = async (eventName: 'JobAssigned' | 'JobClosed' | 'JobReassigned' | 'Slashed') =>
    inRanges(logRangeOf(h), genesis, head, (fromBlock, toBlock) =>
      h.client.getContractEvents({
        ...at(h),
        eventName,
        args: eventName === 'JobReassigned' ? { missed: node } : { node },
        fromBlock,
        toBlock,
        strict: true,
      }),
    )
  const [assigned, closed, reassigned, slashes] = await Promise.all([
    events('JobAssigned'),
    events('JobClosed'),
    events('JobReassigned'),
    events('Slashed'),
  ])
  const slashed = slashes.reduce((a, l) => a + ((l.args as { amount?: bigint }).amount ?? 0n), 0n)
  const jobs = { assigned: assigned.length, closed: closed.length, reassignedAway: reassigned.length, slashed }
  const unbonding = unbondingUntil > 0n ? { epoch: unbondingUntil, block: genesis + unbondingUntil * epochLength } : null
  const withdrawable = stake > 0n && pools === 0n && epoch >= unbondingUntil
  const status = {
    node,
    registry: h.registry,
    chainId: h.chainId,
    block: head,
    epoch,
    epochLength,
    epochStartBlock: epochStart,
    nextEpochStartBlock: nextStart,
    stake,
    pools,
    memberships,
    misses,
    maxMissesPerEpoch: maxMisses,
    missPenalty,
    window,
    unbondingUntil: unbonding,
    withdrawable,
    credits,
    earnings,
    jobs,
  }
  if (p.json) {
    console.log(json(status))
    return 0
  }
  const rows: [string, string][] = [
    ['block', `${head} (chain ${h.chainId})`],
    [
      'epoch',
      `${epoch}: blocks ${epochStart}–${nextStart - 1n} (${epochLength} per epoch); the next starts at block ${nextStart}, in ${nextStart - head} block(s)`,
    ],
    ['stake', `${eth(stake)}${withdrawable ? ' (withdrawable: `sertn node withdraw`)' : ''}`],
    ['pools', `${pools} served or joining${memberships.length ? '' : ' (never registered: `sertn node register`)'}`],
  ]
  for (const m of memberships) {
    const until = m.activeUntil === null ? 'not leaving' : `leaving: active until epoch ${m.activeUntil}`
    rows.push([
      '',
      `model ${modelLabel(h, m.modelId)}: ${m.active ? out.green('active now') : 'not active now'}; active from epoch ${m.activeFrom}, ${until}\n` +
        `${' '.repeat(16)}capacity ${m.capacity} compute units per epoch: used ${m.used}, remaining ${m.remaining} this epoch; ${m.backlog} job(s) open; minimum stake ${eth(m.minimumStake)}`,
    ])
  }
  rows.push(
    [
      'misses',
      `${misses} this epoch${maxMisses ? ` (suspended for the rest of the epoch at ${maxMisses})` : ' (no suspension limit)'}; ${eth(missPenalty)} slashed per missed window of ${window} s`,
    ],
    [
      'unbonding',
      unbonding
        ? `until epoch ${unbonding.epoch} (block ${unbonding.block})${epoch >= unbonding.epoch ? ', ended' : ''}${pools ? `; ${pools} pool(s) still served` : ''}`
        : pools
          ? `not started: the stake unbonds once every pool is left (\`sertn node leave\`)`
          : 'none',
    ],
    ['credits', `${eth(credits)}${credits ? ' (slash shares: `sertn node claim`)' : ''}`],
    [
      'earnings',
      earnings.gateway
        ? `${eth(earnings.amount)} for ${earnings.fulfilled} fulfilled request(s) on the hub gateway ${earnings.gateway}\n${' '.repeat(14)}counted: ${earnings.counted}`
        : earnings.counted,
    ],
    [
      'jobs',
      `${jobs.assigned} assigned, ${jobs.closed} closed (served), ${jobs.reassignedAway} reassigned away after a missed window${slashed ? ` (${eth(slashed)} slashed)` : ''}`,
    ],
  )
  printRows(`node ${node} · NodeRegistry ${h.registry}`, rows)
  return 0
}

/**
 * `sertn node leave`: leaves the models' pools (default: every pool the node serves) at the next
 * epoch boundary, and says when the stake unbonds.
 */
export async function nodeLeaveCommand(p: NodeLeaveParameters): Promise<number> {
  const h = await openHub(p, true)
  const node = h.account.address
  const head = await h.client.getBlockNumber({ cacheTime: 0 })
  const genesis = await h.client.readContract({ ...at(h), functionName: 'epochStartBlock', args: [0n] })
  modelIds(h, { models: [...h.names.values()] }) // names, for display
  const ids = p.models?.length ? modelIds(h, p) : await registeredModels(h, node, genesis, head)
  const progress = new Progress()
  const left: {
    modelId: Hex
    name?: string
    status: 'leaving' | 'not-registered' | 'left-already'
    activeUntil?: bigint
    activeUntilBlock?: bigint
  }[] = []
  const epoch = await h.client.readContract({ ...at(h), functionName: 'epoch' })
  for (const modelId of ids) {
    const name = h.names.get(modelId.toLowerCase())
    const base = { modelId, ...(name ? { name } : {}) }
    const m = await h.client.readContract({ ...at(h), functionName: 'membershipOf', args: [node, modelId] })
    if (m.capacity === 0n) {
      left.push({ ...base, status: 'not-registered' })
      continue
    }
    if (m.activeUntil !== FOREVER) {
      const block = await h.client.readContract({ ...at(h), functionName: 'epochStartBlock', args: [m.activeUntil] })
      left.push({ ...base, status: 'left-already', activeUntil: m.activeUntil, activeUntilBlock: block })
      continue
    }
    const step = progress.begin(`leaving the pool of model ${modelLabel(h, modelId)}`, { announce: true })
    const r = await attempt(async () => {
      const { request } = await h.client.simulateContract({ ...at(h), functionName: 'leave', args: [modelId], account: h.account })
      return mined(h, await h.client.writeContract(request))
    })
    if (!r.ok) {
      step.fail()
      progress.pause()
      return refuse(p, await explain(h, r.revert, 'leave'), { revert: r.revert.errorName })
    }
    step.done()
    const [event] = parseEventLogs({ abi: NodeRegistry.abi, logs: r.value.logs, eventName: 'Left' })
    const activeUntil = event?.args.activeUntil ?? epoch + 1n
    const block = await h.client.readContract({ ...at(h), functionName: 'epochStartBlock', args: [activeUntil] })
    left.push({ ...base, status: 'leaving', activeUntil, activeUntilBlock: block })
  }
  progress.pause()
  const [pools, unbondingUntil, stake] = await Promise.all([
    h.client.readContract({ ...at(h), functionName: 'poolsOf', args: [node] }),
    h.client.readContract({ ...at(h), functionName: 'unbondingUntil', args: [node] }),
    h.client.readContract({ ...at(h), functionName: 'stakeOf', args: [node] }),
  ])
  const unbondsAt =
    pools === 0n && stake > 0n
      ? await h.client.readContract({ ...at(h), functionName: 'epochStartBlock', args: [unbondingUntil] })
      : undefined
  if (p.json) {
    console.log(
      json({
        ok: true,
        node,
        registry: h.registry,
        models: left,
        pools,
        stake,
        withdrawableFrom: unbondsAt !== undefined ? { epoch: unbondingUntil, block: unbondsAt } : null,
      }),
    )
    return 0
  }
  const rows: [string, string][] = left.map((m) => [
    'model',
    `${modelLabel(h, m.modelId)}: ${
      m.status === 'leaving'
        ? `leaves the pool at the end of this epoch: active until epoch ${m.activeUntil} (block ${m.activeUntilBlock})`
        : m.status === 'left-already'
          ? `left already: active until epoch ${m.activeUntil} (block ${m.activeUntilBlock})`
          : 'not in this pool'
    }`,
  ])
  if (!rows.length) rows.push(['model', 'no pool to leave: the node never registered (`sertn node register`)'])
  rows.push([
    'stake',
    stake === 0n
      ? 'no stake to unbond'
      : pools > 0n
        ? `${eth(stake)} stays bonded: ${pools} pool(s) still served (leave them too to unbond it)`
        : `${eth(stake)} unbonds: it can be withdrawn from epoch ${unbondingUntil} (block ${unbondsAt}) with \`sertn node withdraw\``,
  ])
  printRows(`node ${node} · NodeRegistry ${h.registry}`, rows)
  return 0
}

/**
 * `sertn node withdraw`: the node's whole stake, once it serves no pool and its unbonding ended;
 * otherwise one line saying why and when it becomes possible.
 */
export async function nodeWithdrawCommand(p: NodeConnectionOptions): Promise<number> {
  const h = await openHub(p, true)
  const r = await attempt(async () => {
    const { request } = await h.client.simulateContract({ ...at(h), functionName: 'withdraw', account: h.account })
    return mined(h, await h.client.writeContract(request))
  })
  if (!r.ok) return refuse(p, await explain(h, r.revert, 'withdraw'), { revert: r.revert.errorName, args: r.revert.args })
  const [event] = parseEventLogs({ abi: NodeRegistry.abi, logs: r.value.logs, eventName: 'Withdrawn' })
  const amount = event?.args.amount ?? 0n
  if (p.json) console.log(json({ ok: true, node: h.account.address, registry: h.registry, withdrawn: amount, tx: r.value.transactionHash }))
  else console.log(`withdrew ${eth(amount)} of stake to ${h.account.address} (tx ${r.value.transactionHash})`)
  return 0
}

/** `sertn node claim`: the slash shares credited to the account (as a requester whose job a node missed). */
export async function nodeClaimCommand(p: NodeConnectionOptions): Promise<number> {
  const h = await openHub(p, true)
  const r = await attempt(async () => {
    const { request } = await h.client.simulateContract({ ...at(h), functionName: 'claim', account: h.account })
    return mined(h, await h.client.writeContract(request))
  })
  if (!r.ok) return refuse(p, await explain(h, r.revert, 'claim'), { revert: r.revert.errorName, args: r.revert.args })
  const [event] = parseEventLogs({ abi: NodeRegistry.abi, logs: r.value.logs, eventName: 'Claimed' })
  const amount = event?.args.amount ?? 0n
  if (p.json)
    console.log(json({ ok: true, account: h.account.address, registry: h.registry, claimed: amount, tx: r.value.transactionHash }))
  else console.log(`claimed ${eth(amount)} of slash shares to ${h.account.address} (tx ${r.value.transactionHash})`)
  return 0
}
