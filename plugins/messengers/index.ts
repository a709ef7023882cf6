/**
 * The messenger plugins, found by folder: `plugins/messengers/<kind>/plugin.ts` default-exports a
 * {@link MessengerPlugin}. A chain's `messenger: { kind, … }` section names one; a new messaging
 * network is a new folder here (with its port contract) and nothing else. A section with a
 * `plugin` names a module instead (an npm package or a path), whose default export is a
 * `defineMessengerPlugin` factory given the section's `options` (core/plugin-modules.ts).
 */
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { evmChainOf } from '../../chains/evm/chain.ts'
import { createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { feePolicyOf } from '../../chains/evm/plugin/sender.ts'
import { InferenceMarket, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { type MessengerSection, messengersOf, type SertnConfig } from '../../core/config.ts'
import { ConfigError } from '../../core/errors.ts'
import { loadPluginModule } from '../../core/plugin-modules.ts'
import { componentLogger, type Logger } from '../../core/log.ts'
import { metrics } from '../../core/metrics.ts'
import type { MessengerAgentEvent, MessengerAgents, MessengerEndpoint, MessengerPlugin, RejectedRelayMessage } from '../../core/plugins.ts'
import { pendingRetryRequests, serveRetryRequests, writeRetryRequest } from './retry.ts'

const here = dirname(fileURLToPath(import.meta.url))

/** The messenger plugins installed (their folder names). */
export function knownMessengers(): string[] {
  return readdirSync(here, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(here, e.name, 'plugin.ts')))
    .map((e) => e.name)
    .sort()
}

/** Loads the messenger plugin `kind`; a ConfigError naming `path` if there is none. */
export async function loadMessenger(kind: string, path = 'messenger.kind'): Promise<MessengerPlugin<SertnClient>> {
  const known = knownMessengers()
  if (!known.includes(kind)) throw new ConfigError(`${path}: unknown messenger kind "${kind}" (known: ${known.join(', ')})`)
  const mod = (await import(`./${kind}/plugin.ts`)) as { default: MessengerPlugin<SertnClient> }
  return mod.default
}

/** Every installed messenger plugin, by name. */
export async function loadMessengers(kinds: readonly string[] = knownMessengers()): Promise<Record<string, MessengerPlugin<SertnClient>>> {
  const out: Record<string, MessengerPlugin<SertnClient>> = {}
  for (const kind of kinds) out[kind] = await loadMessenger(kind)
  return out
}

/**
 * The plugin a messenger section names: its module's (`plugin`), made once per kind with its
 * `options`, else the built-in plugin of its `kind`. A ConfigError naming the field when the module
 * is missing, exports no factory, makes no messenger plugin named `kind`, or when two sections of a
 * kind name different modules or options.
 */
async function messengerOfSection(
  s: MessengerSection,
  path: string,
  modules: Map<string, { plugin: MessengerPlugin<SertnClient>; module: string; options: string; path: string }>,
): Promise<MessengerPlugin<SertnClient>> {
  if (s.plugin === undefined) {
    if (s.options !== undefined)
      throw new ConfigError(
        `${path}.options: the built-in messenger plugin ${s.kind} takes no options (only a plugin loaded from a module does)`,
      )
    return loadMessenger(s.kind, `${path}.kind`)
  }
  const known = knownMessengers()
  if (known.includes(s.kind))
    throw new ConfigError(
      `${path}.kind: "${s.kind}" is a built-in messenger; a messenger plugin from a module (${path}.plugin) needs a kind of its own, its plugin's name`,
    )
  const options = JSON.stringify(s.options ?? null)
  const seen = modules.get(s.kind)
  if (seen) {
    if (seen.module !== s.plugin || seen.options !== options)
      throw new ConfigError(
        `${path}.plugin: the ${s.kind} messenger is "${seen.module}" with other options at ${seen.path}; give every ${s.kind} section the same plugin and options`,
      )
    return seen.plugin
  }
  const make = await loadPluginModule('messenger', s.plugin, s.options, { path: `${path}.plugin`, builtins: known })
  const plugin = make() as MessengerPlugin<SertnClient>
  if (plugin.name !== s.kind)
    throw new ConfigError(
      `${path}.plugin: "${s.plugin}" made the messenger plugin ${JSON.stringify(plugin.name)}, not ${s.kind}: a section's kind is its plugin's name`,
    )
  modules.set(s.kind, { plugin, module: s.plugin, options, path: `${path}.plugin` })
  return plugin
}

/** The configured chains' messenger sections, grouped by kind and checked by their plugins (ConfigError naming the field). */
export async function configuredMessengers(
  config: Pick<SertnConfig, 'chains'>,
): Promise<
  Map<string, { plugin: MessengerPlugin<SertnClient>; chains: { name: string; section: MessengerEndpoint<SertnClient>['deployment'] }[] }>
> {
  const out = new Map<
    string,
    { plugin: MessengerPlugin<SertnClient>; chains: { name: string; section: MessengerEndpoint<SertnClient>['deployment'] }[] }
  >()
  const modules = new Map<string, { plugin: MessengerPlugin<SertnClient>; module: string; options: string; path: string }>()
  for (const [name, c] of Object.entries(config.chains)) {
    const sections = messengersOf(c)
    for (const [i, s] of sections.entries()) {
      const path = `chains.${name}.messenger${Array.isArray(c.messenger) ? `.${i}` : ''}`
      const plugin = await messengerOfSection(s, path, modules)
      // The plugin checks its network's fields; which plugin serves the section is the node's.
      const { plugin: _module, options: _options, ...section } = s
      const deployment = plugin.parseDeployment(section, path)
      const entry = out.get(s.kind) ?? { plugin, chains: [] }
      entry.chains.push({ name, section: deployment })
      out.set(s.kind, entry)
    }
  }
  return out
}

export type RunningMessengerAgents = MessengerAgents & {
  /** The agents by messenger kind. */
  readonly byKind: ReadonlyMap<string, MessengerAgents>
}

/**
 * Starts the local agents of every messaging network configured on two chains or more: attestations
 * signed with `relay.validatorKey`, deliveries paid by `relay.relayerKey` (default: the node's key),
 * state under `<dir>/<kind>`.
 */
export async function startMessengerAgentsFromConfig(
  config: SertnConfig,
  options: {
    dir?: string
    /** Where the agents log (default: the root logger's `relay` component). */
    logger?: Logger
    /** Instead of `logger`: each record as a line, `[relay kind] …` (tests read them). */
    log?: (line: string) => void
    onEvent?: (kind: string, e: MessengerAgentEvent) => void
    /** Only these messengers' agents (default: every messenger configured on two chains or more). */
    kinds?: readonly string[]
  },
): Promise<RunningMessengerAgents> {
  const attesterKey = config.relay.validatorKey
  if (!attesterKey) throw new ConfigError('relay.validatorKey: not set; the local agents need a signing key (SERTN__RELAY__VALIDATOR_KEY)')
  // Every messenger's agents pay from this account on each chain, each from its own loop, and all
  // of them send through the account's one queue in this process (`clientSender`): no two sends take
  // one nonce. Another process paying from the same account still can (see layerzero/send.ts).
  const payer = privateKeyToAccount((config.relay.relayerKey ?? config.node.privateKey) as Hex)
  const relayLog = options.logger ?? componentLogger('relay')
  const byKind = new Map<string, MessengerAgents>()
  /** Stops the loops that apply `sertn relay retry`'s requests. */
  const retries = new AbortController()
  const retryLoops: Promise<void>[] = []
  const configured = await configuredMessengers(config)
  if (![...configured.values()].some((m) => m.chains.length >= 2))
    throw new ConfigError('messenger: the relay needs two chains or more with the same messenger kind')
  for (const [kind, { plugin, chains }] of configured) {
    if (chains.length < 2 || (options.kinds && !options.kinds.includes(kind))) continue
    const endpoints = chains.map(({ name, section }) => {
      const c = config.chains[name]!
      return {
        chain: {
          name,
          domain: c.chainId,
          client: createSertnClient(evmChainOf(c.chainId, name, c.rpcUrl), payer, {
            pollingInterval: config.relay.pollingIntervalMs,
            fallbackRpcUrls: c.fallbackRpcUrls,
            fees: feePolicyOf(c.fees),
          }),
          logRangeBlocks: c.logRangeBlocks,
        },
        deployment: section,
      }
    })
    byKind.set(
      kind,
      plugin.startAgents({
        endpoints,
        ...(options.dir !== undefined ? { dir: join(options.dir, kind) } : {}),
        attesterKey: attesterKey as Hex,
        confirmations: config.relay.confirmations,
        maxGas: BigInt(config.relay.maxGas),
        maxAttempts: config.relay.maxAttempts,
        retryBackoffMs: config.relay.retryBackoffMs,
        maxRetryBackoffMs: config.relay.maxRetryBackoffMs,
        // Sertn's applications' errors, to name a rejected message's reason.
        errorAbi: [...SpokeGateway.abi, ...InferenceMarket.abi].filter((x) => x.type === 'error'),
        pollingIntervalMs: config.relay.pollingIntervalMs,
        onError: (who, err) => {
          const text = err instanceof Error ? err.message : String(err)
          if (options.log) options.log(`[relay ${kind}] ${who}: ${text}`)
          else relayLog.warn({ messenger: kind, agent: who, err: text }, `${who}: ${text}`)
        },
        onEvent: (e) => {
          const line =
            `${e.route}: message ${e.messageId} ${e.type}` +
            (e.transactionHash ? ` in ${e.transactionHash}` : '') +
            (e.gasUsed !== undefined ? `, gas ${e.gasUsed}` : '') +
            (e.reason ? `: ${e.reason}` : '')
          if (options.log) options.log(`[relay ${kind}] ${line}`)
          else
            relayLog[e.type === 'rejected' ? 'warn' : 'info'](
              {
                messenger: kind,
                route: e.route,
                messageId: e.messageId,
                event: e.type,
                ...(e.transactionHash ? { transactionHash: e.transactionHash } : {}),
                ...(e.gasUsed !== undefined ? { gasUsed: Number(e.gasUsed) } : {}),
                ...(e.inclusionMs !== undefined ? { inclusionMs: Math.round(e.inclusionMs) } : {}),
                ...(e.reason ? { reason: e.reason } : {}),
              },
              line,
            )
          // The agents' deliveries, paid by the relay account on the destination.
          if (e.type === 'delivered' && e.gasUsed !== undefined)
            metrics.gasUsed.inc({ chain: e.route.split('→')[1] ?? e.route, operation: `${kind} delivery` }, Number(e.gasUsed))
          options.onEvent?.(kind, e)
        },
      }),
    )
    if (options.dir !== undefined) {
      // `sertn relay retry` from another process: its requests are applied through the agents' own requeue.
      const agents = byKind.get(kind)!
      const loop = serveRetryRequests(join(options.dir, kind), (ids) => agents.requeue(ids), {
        signal: retries.signal,
        onApplied: (ids, moved) => {
          const line = `retry requested for ${ids.length} message(s): ${moved} moved back to pending`
          if (options.log) options.log(`[relay ${kind}] ${line}`)
          else relayLog.info({ messenger: kind, messageIds: ids, moved }, line)
        },
        onError: (err) => {
          const text = err instanceof Error ? err.message : String(err)
          if (options.log) options.log(`[relay ${kind}] retry requests: ${text}`)
          else relayLog.warn({ messenger: kind, err: text }, `retry requests: ${text}`)
        },
      })
      retryLoops.push(loop.done)
    }
  }
  return {
    byKind,
    ready: Promise.all([...byKind.values()].map((a) => a.ready)).then(() => undefined),
    async requeue(ids) {
      let n = 0
      for (const a of byKind.values()) n += await a.requeue(ids)
      return n
    },
    async stop() {
      retries.abort()
      await Promise.all(retryLoops)
      await Promise.all([...byKind.values()].map((a) => a.stop()))
    },
  }
}

/** The configured messengers whose local agents keep state in `<relayDir>/<kind>` (two chains or more), with those chains. */
async function relayedMessengers(config: Pick<SertnConfig, 'chains'>) {
  const out: {
    kind: string
    plugin: MessengerPlugin<SertnClient>
    chains: { name: string; deployment: MessengerEndpoint<SertnClient>['deployment'] }[]
  }[] = []
  for (const [kind, { plugin, chains }] of await configuredMessengers(config))
    if (chains.length >= 2) out.push({ kind, plugin, chains: chains.map((c) => ({ name: c.name, deployment: c.section })) })
  return out
}

/**
 * The messages the local agents of every configured messenger gave up on, from their state under
 * `relayDir` (`<dataDir>/relay` for `sertn relay`), oldest first; each with whether a retry of it
 * was requested and not yet taken by a relay.
 */
export async function listRejectedMessages(
  config: Pick<SertnConfig, 'chains'>,
  relayDir: string,
): Promise<(RejectedRelayMessage & { retryRequested: boolean })[]> {
  const out: (RejectedRelayMessage & { retryRequested: boolean })[] = []
  for (const { kind, plugin, chains } of await relayedMessengers(config)) {
    if (!plugin.rejectedMessages) continue
    const dir = join(relayDir, kind)
    const requested = new Set((await pendingRetryRequests(dir)).flatMap((r) => r.request.ids.map((id) => id.toLowerCase())))
    for (const m of await plugin.rejectedMessages({ dir, chains }))
      out.push({ ...m, retryRequested: requested.has(m.messageId.toLowerCase()) })
  }
  return out.sort((a, b) => a.rejectedAt - b.rejectedAt)
}

/**
 * Asks the relay whose state is under `relayDir` to move these rejected messages back to pending
 * (see retry.ts: a request file it applies within a poll, or at its next start). `ids` must be
 * rejected messages of {@link listRejectedMessages}; returns the request files, by messenger.
 */
export async function requestRelayRetry(
  relayDir: string,
  messages: readonly Pick<RejectedRelayMessage, 'messenger' | 'messageId'>[],
): Promise<Map<string, string>> {
  const byKind = new Map<string, Hex[]>()
  for (const m of messages) byKind.set(m.messenger, [...(byKind.get(m.messenger) ?? []), m.messageId])
  const files = new Map<string, string>()
  for (const [kind, ids] of byKind) files.set(kind, await writeRetryRequest(join(relayDir, kind), [...new Set(ids)]))
  return files
}

/** The retry requests under `relayDir` not yet taken by a relay (by messenger). */
export async function pendingRelayRetries(config: Pick<SertnConfig, 'chains'>, relayDir: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  for (const { kind } of await relayedMessengers(config)) {
    const files = (await pendingRetryRequests(join(relayDir, kind))).map((r) => r.path)
    if (files.length > 0) out.set(kind, files)
  }
  return out
}
