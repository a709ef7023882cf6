/**
 * The messenger plugins, found by folder: `plugins/messengers/<kind>/plugin.ts` default-exports a
 * {@link MessengerPlugin}. A chain's `messenger: { kind, … }` section names one; a new messaging
 * network is a new folder here (with its port contract) and nothing else.
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
import { messengersOf, type SertnConfig } from '../../core/config.ts'
import { ConfigError } from '../../core/errors.ts'
import type { MessengerAgentEvent, MessengerAgents, MessengerEndpoint, MessengerPlugin } from '../../core/plugins.ts'

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
  for (const [name, c] of Object.entries(config.chains)) {
    const sections = messengersOf(c)
    for (const [i, s] of sections.entries()) {
      const path = `chains.${name}.messenger${Array.isArray(c.messenger) ? `.${i}` : ''}`
      const plugin = await loadMessenger(s.kind, `${path}.kind`)
      const deployment = plugin.parseDeployment(s, path)
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
  options: { dir?: string; log?: (line: string) => void; onEvent?: (kind: string, e: MessengerAgentEvent) => void },
): Promise<RunningMessengerAgents> {
  const attesterKey = config.relay.validatorKey
  if (!attesterKey) throw new ConfigError('relay.validatorKey: not set; the local agents need a signing key (SERTN__RELAY__VALIDATOR_KEY)')
  // Every messenger's agents pay from this account on each chain, each from its own loop, and all
  // of them send through the account's one queue in this process (`clientSender`): no two sends take
  // one nonce. Another process paying from the same account still can (see layerzero/send.ts).
  const payer = privateKeyToAccount((config.relay.relayerKey ?? config.node.privateKey) as Hex)
  const log = options.log ?? ((l: string) => console.error(l))
  const byKind = new Map<string, MessengerAgents>()
  const configured = await configuredMessengers(config)
  if (![...configured.values()].some((m) => m.chains.length >= 2))
    throw new ConfigError('messenger: the relay needs two chains or more with the same messenger kind')
  for (const [kind, { plugin, chains }] of configured) {
    if (chains.length < 2) continue
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
        // Sertn's applications' errors, to name a rejected message's reason.
        errorAbi: [...SpokeGateway.abi, ...InferenceMarket.abi].filter((x) => x.type === 'error'),
        pollingIntervalMs: config.relay.pollingIntervalMs,
        onError: (who, err) => log(`[relay ${kind}] ${who}: ${err instanceof Error ? err.message : String(err)}`),
        onEvent: (e) => {
          log(
            `[relay ${kind}] ${e.route}: message ${e.messageId} ${e.type}` +
              (e.transactionHash ? ` in ${e.transactionHash}` : '') +
              (e.gasUsed !== undefined ? `, gas ${e.gasUsed}` : '') +
              (e.reason ? `: ${e.reason}` : ''),
          )
          options.onEvent?.(kind, e)
        },
      }),
    )
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
      await Promise.all([...byKind.values()].map((a) => a.stop()))
    },
  }
}
