/**
 * Configuration: one JSON file (default `sertn.config.json`) plus environment overrides, checked
 * by a zod schema whose errors name the field.
 *
 * Environment overrides use `SERTN__` and `__` between path segments, segments in SCREAMING_SNAKE
 * case: `SERTN__TEMPORAL__ADDRESS=127.0.0.1:7233`, `SERTN__CHAINS__LOCAL__RPC_URL=…`,
 * `SERTN__PROVER__PLUGIN=ezkl-native`. Values that parse as JSON (numbers, booleans, arrays) are
 * taken as such.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { ConfigError } from './errors.ts'
import { chainId, type Address, type SpokeRoute } from './types.ts'

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed 20-byte address')
/** An address field of a plugin's configuration section, typed as one. */
export const addressField = z.custom<Address>(
  (v) => typeof v === 'string' && /^0x[0-9a-fA-F]{40}$/.test(v),
  'expected a 0x-prefixed 20-byte address',
)
const privateKey = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected a 0x-prefixed 32-byte private key')

/** A `messenger` section as core sees it: the plugin named by `kind` checks the rest. */
export const messengerSectionSchema = z.looseObject({
  kind: z.string().regex(/^[a-z][a-z0-9-]*$/, 'a messenger plugin name (lowercase letters, digits, dashes)'),
  /** Sertn's port of this network on the chain. */
  port: address,
  /** Where agents with no saved state start scanning. */
  deployBlock: z.number().int().min(0).default(0),
  /**
   * The module of a messenger plugin that is not built in (an npm package, or a path to its file):
   * its default export is the factory, given `options` as they are; the plugin's name is `kind`.
   * Absent: the built-in plugin of that kind (plugins/messengers/<kind>).
   */
  plugin: z.string().min(1, 'an npm package or a path to a messenger plugin module').optional(),
  /** The module plugin's options (the same on every section of its kind). */
  options: z.record(z.string(), z.unknown()).optional(),
})

export type MessengerSection = z.infer<typeof messengerSectionSchema>

/** The chain plugins built into this repository: a chain's `plugin` naming another is a module. */
export const BUILTIN_CHAIN_PLUGINS = ['evm'] as const

export const chainConfigSchema = z.object({
  /**
   * The chain plugin serving this chain: `evm` (built in), or a module whose default export is a
   * chain plugin factory (`defineChainPlugin`), given `options` as they are and the chain's
   * settings (core/plugin-modules.ts).
   */
  plugin: z
    .string()
    .min(1, `a built-in chain plugin (${BUILTIN_CHAIN_PLUGINS.join(', ')}), an npm package or a path to a module`)
    .default(BUILTIN_CHAIN_PLUGINS[0]),
  /** A module chain plugin's options, given to its factory as they are (the built-in evm plugin takes none). */
  options: z.record(z.string(), z.unknown()).optional(),
  chainId: z.number().int().positive(),
  rpcUrl: z.url(),
  gateway: address,
  registry: address.optional(),
  /** Blocks on top of a request's block before it is served. */
  confirmations: z.number().int().min(0).default(1),
  pollingIntervalMs: z.number().int().positive().default(1000),
  /** Where a watcher with no saved cursor starts (default: the current block). */
  startBlock: z.number().int().min(0).optional(),
  /**
   * More RPC endpoints for this chain, tried in order when the ones before fail (viem's
   * `fallback` transport): a node keeps serving through an outage of its primary provider.
   */
  fallbackRpcUrls: z.array(z.url()).default([]),
  /** The most blocks one `eth_getLogs` asks for (watchers, keeper): providers cap it, often at 1,000 to 10,000. */
  logRangeBlocks: z.number().int().positive().default(2000),
  /** How the node pays for and replaces its transactions on this chain. */
  fees: z
    .object({
      /** The most the node pays per gas, in gwei (default: no cap). A transaction above it waits instead. */
      maxFeePerGasGwei: z.number().positive().optional(),
      /** A transaction not mined after this long is sent again with the same nonce and a higher fee. */
      replaceAfterMs: z.number().int().positive().default(60_000),
      /** How much a replacement raises the fee, in percent (nodes require at least 10). */
      bumpPercent: z.number().int().min(10).max(1000).default(25),
    })
    .prefault({}),
  /** Warn (log and `sertn_account_balance_low`) when a signing account holds less than this, in ether. */
  balanceAlarmEth: z.number().min(0).optional(),
  /**
   * The chain's SertnInfernetCoordinator (the Infernet drop-in facade; a deployment records it as the
   * chain's `facades.infernet`): the keeper dispatches the subscriptions its consumers create, as an
   * Infernet node would. Absent: the facade is not watched (someone must call its `dispatch`).
   */
  infernetCoordinator: address.optional(),
  /** On the hub: its InferenceMarket, which serves the spokes' requests. */
  market: address.optional(),
  /** On a spoke: the name of the hub chain (`gateway` is then a SpokeGateway). */
  hub: z.string().optional(),
  /**
   * The messaging networks this chain is reached by: each a `{ kind, port, deployBlock, … }` section
   * that the messenger plugin named by `kind` checks (plugins/messengers/<kind>). A spoke has one
   * (the network that joins it to its hub); the hub has one per network its spokes use.
   */
  messenger: z.union([messengerSectionSchema, z.array(messengerSectionSchema).min(1)]).optional(),
})

/**
 * The plugins built into this repository, by kind: a `plugin` field naming another is a module
 * (an npm package, or a path to a file) loaded at start (core/plugin-modules.ts).
 */
export const BUILTIN_PLUGINS = {
  runtime: ['onnx'],
  prover: ['ezkl-wasm', 'ezkl-native'],
  storage: ['arweave'],
} as const satisfies Record<string, readonly [string, ...string[]]>

/**
 * A `plugin` field: a built-in plugin's name (the first is the default), or a module that
 * default-exports the plugin's factory: an npm package name (`@acme/sertn-storage-s3`) or a path
 * to its file (`./plugins/my-storage.ts`, relative to the working directory).
 */
const pluginField = (kind: keyof typeof BUILTIN_PLUGINS) =>
  z
    .string()
    .min(1, `a built-in ${kind} plugin (${BUILTIN_PLUGINS[kind].join(', ')}), an npm package or a path to a module`)
    .default(BUILTIN_PLUGINS[kind][0])

/** A module plugin's options, given to its factory as they are (the plugin checks them). */
const pluginOptions = z.record(z.string(), z.unknown()).optional()

/** `options` only configure a plugin loaded from a module; built-in plugins have their own fields. */
const builtinTakesNoOptions =
  (kind: keyof typeof BUILTIN_PLUGINS) =>
  (section: { plugin: string; options?: Record<string, unknown> | undefined }, ctx: z.RefinementCtx) => {
    if (section.options !== undefined && (BUILTIN_PLUGINS[kind] as readonly string[]).includes(section.plugin))
      ctx.addIssue({
        code: 'custom',
        path: ['options'],
        message: `the built-in ${kind} plugin ${section.plugin} takes no options here (only a plugin loaded from a module does)`,
      })
  }

export const configSchema = z.object({
  /** Cursors, the Temporal database, arlocal data. */
  dataDir: z.string().default('.data'),
  /**
   * The node's account, which fulfils requests and pays their gas: its key is a keystore named in the
   * secrets file (`node`). A raw `privateKey` here is for local development only (a warning at
   * start-up). Roles that never sign (prover, inference) need no key at all.
   */
  node: z
    .object({
      /** Local development only: the node's raw key. */
      privateKey: privateKey.optional(),
    })
    .prefault({}),
  /**
   * The secrets file (default: `SERTN_SECRETS`, else none): the keystores of the node, the relayer
   * and the validator with their password files, and the Temporal API key. Kept apart from this
   * file so that the configuration can be shared and versioned; paths in it are relative to it.
   */
  secretsFile: z.string().optional(),
  /** Logs, metrics and health. */
  observability: z
    .object({
      logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      /** `json` for collectors, `pretty` for a terminal, `auto`: pretty when standard error is a terminal. */
      logFormat: z.enum(['json', 'pretty', 'auto']).default('auto'),
      /**
       * The worker's HTTP endpoint: `/metrics` (Prometheus, with Temporal's SDK metrics), `/healthz`
       * and `/readyz`. Off unless a port is set (0: any free port, logged at start-up).
       */
      http: z
        .object({
          host: z.string().default('127.0.0.1'),
          port: z.number().int().min(0).max(65535).optional(),
        })
        .prefault({}),
      /** `/readyz` reports not ready while a watcher is more blocks than this behind its chain's head. */
      maxLagBlocks: z.number().int().min(0).default(64),
    })
    .prefault({}),
  /**
   * Refunds of expired requests, sending of deferred receipts and dispatch of Infernet subscriptions
   * (chains with `infernetCoordinator`, every `pollingIntervalMs`), run by the chain-io worker.
   */
  keeper: z
    .object({
      enabled: z.boolean().default(true),
      intervalMs: z.number().int().positive().default(30_000),
      /**
       * The most the keeper adds, in ether, to a deferred receipt's reserve when the messenger's
       * fee rose above it (SpokeGateway.sendReceipt: the caller pays the difference; any surplus
       * comes back). A receipt that needs more waits, with a warning, for an operator.
       */
      maxReceiptTopUpEth: z.number().min(0).default(0.01),
    })
    .prefault({}),
  chains: z
    .record(z.string().regex(/^[a-z][a-z0-9]*$/, 'chain names are lowercase letters and digits'), chainConfigSchema)
    .refine((c) => Object.keys(c).length > 0, 'configure at least one chain')
    .superRefine((chains, ctx) => {
      for (const [name, c] of Object.entries(chains))
        if (c.options !== undefined && (BUILTIN_CHAIN_PLUGINS as readonly string[]).includes(c.plugin))
          ctx.addIssue({
            code: 'custom',
            path: [name, 'options'],
            message: `the built-in chain plugin ${c.plugin} takes no options here (only a plugin loaded from a module does)`,
          })
      for (const [name, c] of Object.entries(chains)) {
        if (c.hub === undefined) continue
        const hub = chains[c.hub]
        if (!hub) ctx.addIssue({ code: 'custom', path: [name, 'hub'], message: `no chain named ${c.hub} is configured` })
        else if (!hub.market)
          ctx.addIssue({ code: 'custom', path: [c.hub, 'market'], message: `the hub of ${name} needs its market address` })
        const own = messengersOf(c)
        if (own.length !== 1) {
          ctx.addIssue({
            code: 'custom',
            path: [name, 'messenger'],
            message: own.length === 0 ? 'a spoke needs the messenger that joins it to its hub' : 'a spoke has one messenger',
          })
        } else if (hub && !messengersOf(hub).some((m) => m.kind === own[0]!.kind)) {
          ctx.addIssue({
            code: 'custom',
            path: [name, 'messenger', 'kind'],
            message: `no route: the hub ${c.hub} has no ${own[0]!.kind} messenger`,
          })
        }
      }
    }),
  /** The local messenger agents (`sertn relay`): a validator signing every chain's checkpoints, and relayers. */
  relay: z
    .object({
      /** The validator's signing key (the chains' ISMs list its address). */
      validatorKey: privateKey.optional(),
      /** The account that pays for delivering messages (default: the node's). */
      relayerKey: privateKey.optional(),
      pollingIntervalMs: z.number().int().positive().default(50),
      /** Blocks on top of a message before the agents attest it (local automining chains: 0). */
      confirmations: z.number().int().min(0).default(1),
      /**
       * The most gas the agents pay for one delivery. A batch's message asks for every row's
       * callback gas (up to ~24M: the hub market refuses more); the default covers it.
       */
      maxGas: z.number().int().positive().default(25_000_000),
      /** Failed deliveries of a message after which the agents give up on it (see `sertn relay rejected`). */
      maxAttempts: z.number().int().positive().default(8),
      /** The wait after a message's first failed delivery (ms), doubled after each further one. */
      retryBackoffMs: z.number().int().positive().default(1000),
      /** The longest wait between two deliveries of a message (ms). */
      maxRetryBackoffMs: z.number().int().positive().default(300_000),
    })
    .prefault({}),
  temporal: z
    .object({
      address: z.string().default('127.0.0.1:7233'),
      namespace: z.string().default('default'),
      /**
       * TLS to the Temporal frontend: `true` for server TLS with the system's roots (Temporal Cloud
       * with an API key, from the secrets file's `temporal.apiKey` or `TEMPORAL_API_KEY`), or files
       * for a private CA and mTLS client certificates (Temporal Cloud's mTLS, a self-hosted cluster).
       */
      tls: z
        .union([
          z.boolean(),
          z.object({
            serverNameOverride: z.string().optional(),
            serverRootCaCertFile: z.string().optional(),
            clientCertFile: z.string().optional(),
            clientKeyFile: z.string().optional(),
          }),
        ])
        .optional(),
      taskQueues: z
        .object({
          chainIo: z.string().default('sertn-chain-io'),
          inference: z.string().default('sertn-inference'),
          /** Provers of the CPU class poll this queue. */
          prover: z.string().default('sertn-prover-cpu'),
          /** Provers of the GPU class poll this queue. */
          proverGpu: z.string().default('sertn-prover-gpu'),
          /**
           * The batch workflows and their storage and delivery (a chain-io worker polls it too): a
           * queue of their own, so that a batch's steps and its members' joins never wait behind
           * the request workflows' tasks and hops.
           */
          batch: z.string().default('sertn-batch'),
        })
        .prefault({}),
      /**
       * Activities a chain-io worker runs at once. Most are hops waiting on another chain (the
       * request's record on the hub, its assignment, the result's delivery): they poll with
       * back-off and hold a slot while they wait, a few seconds each, several per request. A
       * batch's storage and delivery run on the same worker, so the slots must outnumber the
       * waiting hops: at 6 requests a second, 16 slots left a batch's delivery queued behind them.
       */
      chainIoConcurrency: z.number().int().min(1).default(256),
    })
    .prefault({}),
  /**
   * Batching (latency against gas): requests of a model with batch circuits are proven and
   * delivered together, a batch going once it is full or `windowMs` after its first request.
   */
  batching: z
    .object({
      enabled: z.boolean().default(false),
      windowMs: z.number().int().positive().default(2000),
      /** The most rows per batch (default: the model's largest batch circuit). */
      maxSize: z.number().int().min(2).optional(),
    })
    .prefault({}),
  runtime: z
    .object({ plugin: pluginField('runtime'), options: pluginOptions })
    .superRefine(builtinTakesNoOptions('runtime'))
    .prefault({}),
  prover: z
    .object({
      plugin: pluginField('prover'),
      options: pluginOptions,
      /** Concurrent proofs per prover worker. */
      poolSize: z.number().int().min(1).default(1),
      /**
       * The hardware class this node's prover workers declare (`sertn worker --role prover`): they
       * poll that class's queue (`temporal.taskQueues.prover` or `proverGpu`).
       */
      hardware: z.enum(['cpu', 'gpu']).default('cpu'),
      /**
       * The most memory one proof may take on this worker, in bytes (default: 80% of this machine's
       * memory, shared by poolSize proofs). A proof whose circuit needs more is refused with a
       * message naming the setting; routing should have sent it elsewhere.
       */
      memoryBytes: z.number().int().positive().optional(),
      /**
       * Where this node's workflows send each proof. Every proof goes to the CPU class's queue
       * unless `gpu` is on: then a circuit that needs more memory than `cpuMemoryBytes` (its
       * manifest's `proving.memoryBytes`, or the most a prover has measured for it) goes to the
       * GPU class's queue. `pin` names a class outright for a model (`"<name>"`) or for one of
       * its batch sizes (`"<name>@<rows>"`).
       */
      routing: z
        .object({
          gpu: z.boolean().default(false),
          /** Default: 80% of this machine's memory. */
          cpuMemoryBytes: z.number().int().positive().optional(),
          pin: z.record(z.string(), z.enum(['cpu', 'gpu'])).default({}),
        })
        .prefault({}),
    })
    .superRefine(builtinTakesNoOptions('prover'))
    .prefault({}),
  storage: z
    .object({
      plugin: pluginField('storage'),
      options: pluginOptions,
      arweave: z
        .object({
          url: z.url().default('http://127.0.0.1:1984'),
          /**
           * The JWK wallet that pays for uploads (default: <dataDir>/arweave-wallet.json). `sertn start`
           * makes a funded one on its arlocal; on a real network, use a funded wallet of your own.
           */
          walletFile: z.string().optional(),
        })
        .prefault({}),
    })
    .superRefine(builtinTakesNoOptions('storage'))
    .prefault({}),
  models: z
    .object({
      /**
       * Directory holding one folder per model (manifest.json and artifacts): a model whose
       * manifest hashes to the registered artifacts hash is served from here.
       */
      dir: z.string().default('circuits'),
      /** Where models fetched from storage are kept (default: <dataDir>/models). */
      cacheDir: z.string().optional(),
      /** Accept circuits set up with a locally generated SRS (local chains and tests only). */
      allowInsecureSrs: z.boolean().default(false),
    })
    .prefault({}),
})

export type SertnConfig = z.infer<typeof configSchema>
export type ChainConfig = z.infer<typeof chainConfigSchema>

/** The messaging networks a chain is reached by (its `messenger` section, as a list). */
export function messengersOf(chain: Pick<ChainConfig, 'messenger'>): MessengerSection[] {
  const m = chain.messenger
  return m === undefined ? [] : Array.isArray(m) ? m : [m]
}

/** The route of requests made on spoke chain `name` (undefined for a chain that is not a spoke). */
export function spokeRouteOf(config: SertnConfig, name: string): SpokeRoute | undefined {
  const c = config.chains[name]
  if (!c?.hub) return undefined
  const hub = config.chains[c.hub]!
  return { hubChain: c.hub, hubChainId: chainId(hub.chainId), market: hub.market as Address, originDomain: c.chainId }
}
export type SertnConfigInput = z.input<typeof configSchema>

const ENV_PREFIX = 'SERTN__'

/** SCREAMING_SNAKE → camelCase, for one path segment. */
function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

/** Applies `SERTN__A__B_C=value` overrides onto `base` (a plain object), returning a new object. */
export function applyEnvOverrides(base: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out = structuredClone(base)
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith(ENV_PREFIX) || raw === undefined) continue
    const path = key.slice(ENV_PREFIX.length).split('__').map(camel)
    let node: Record<string, unknown> = out
    for (const seg of path.slice(0, -1)) {
      const next = node[seg]
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[seg] = {}
      node = node[seg] as Record<string, unknown>
    }
    node[path[path.length - 1]!] = parseValue(raw)
  }
  return out
}

/** Checks a plugin's configuration section at `path` (e.g. `chains.hub.messenger`): a ConfigError naming the first bad field. */
export function parseConfigSection<T>(schema: z.ZodType<T>, section: unknown, path: string): T {
  const r = schema.safeParse(section)
  if (r.success) return r.data
  const i = r.error.issues[0]!
  throw new ConfigError(`${[path, ...i.path].join('.')}: ${i.message}`)
}

/** Checks a configuration object, throwing a ConfigError that names every bad field. */
export function parseConfig(input: unknown, source = 'configuration'): SertnConfig {
  const result = configSchema.safeParse(input)
  if (result.success) return result.data
  const lines = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
  if (lines.length === 1) throw new ConfigError(`invalid ${source}: ${lines[0]}`)
  throw new ConfigError(`invalid ${source}`, { details: `\n${lines.map((l) => `  ${l}`).join('\n')}` })
}

/** Reads `file` (if it exists), applies environment overrides, and checks the result. */
export function loadConfig(file = process.env.SERTN_CONFIG ?? 'sertn.config.json', env: NodeJS.ProcessEnv = process.env): SertnConfig {
  let base: Record<string, unknown> = {}
  try {
    base = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') throw new ConfigError(`cannot read ${file}`, { cause: err, details: String(err) })
  }
  return parseConfig(applyEnvOverrides(base, env), `${file} (with SERTN__* overrides)`)
}
