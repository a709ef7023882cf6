/**
 * Runs the local Hyperlane agents for a set of connected chains: one validator per origin chain
 * (signing that chain's merkle tree checkpoints) and one relayer per ordered chain pair, with file
 * stores under `dir` (or in memory) so that a restarted set resumes where it stopped.
 */
import { join } from 'node:path'
import type { Hex, LocalAccount } from 'viem'
import { evmChainOf } from '../../../chains/evm/chain.ts'
import { privateKeyToAccount } from 'viem/accounts'
import { createSertnClient, type SertnClient } from '../../../chains/evm/clients.ts'
import type { SertnConfig } from '../../../core/config.ts'
import { ConfigError } from '../../../core/errors.ts'
import { createLocalRelayer, type Delivery, type LocalRelayer } from './relayer.ts'
import {
  FileCheckpointStore,
  FileRelayerCursorStore,
  MemoryCheckpointStore,
  MemoryRelayerCursorStore,
  type CheckpointStore,
} from './stores.ts'
import { createLocalValidator, type LocalValidator } from './validator.ts'

export type AgentChain = {
  /** A short name for logs and store folders. */
  name: string
  domain: number
  /** Reads this chain, and pays for `process` of messages delivered to it. */
  client: SertnClient
  mailbox: `0x${string}`
  merkleTreeHook: `0x${string}`
  /** Where the agents start scanning without saved state (the mailbox's deployment block). */
  fromBlock?: bigint
}

export type LocalAgentsConfig = {
  chains: readonly AgentChain[]
  /** The validator key; the chains' ISMs must list it. */
  validator: LocalAccount
  /** Folder for checkpoint stores and relayer cursors; in memory when absent. */
  dir?: string
  pollingIntervalMs?: number
  confirmations?: number
  onError?: (who: string, err: unknown) => void
  onDelivered?: (route: { from: string; to: string }, d: Delivery) => void
}

export type LocalAgents = {
  /** Settles once every relayer has loaded the SDK (failures are reported to `onError` and retried on delivery). */
  ready: Promise<void>
  validators: ReadonlyMap<string, LocalValidator>
  /** By route, `from→to`. */
  relayers: ReadonlyMap<string, LocalRelayer>
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** Starts the agents (polling in the background) until `stop()`. */
export function startLocalAgents(cfg: LocalAgentsConfig): LocalAgents {
  const onError = cfg.onError ?? ((who, err) => console.warn(`[hyperlane ${who}]`, err instanceof Error ? err.message : err))
  const stores = new Map<string, CheckpointStore>()
  const validators = new Map<string, LocalValidator>()
  const relayers = new Map<string, LocalRelayer>()
  for (const chain of cfg.chains) {
    const store = cfg.dir
      ? new FileCheckpointStore(join(cfg.dir, `checkpoints-${chain.domain}`), cfg.validator.address)
      : new MemoryCheckpointStore(cfg.validator.address)
    stores.set(chain.name, store)
    validators.set(
      chain.name,
      createLocalValidator({
        client: chain.client,
        domain: chain.domain,
        merkleTreeHook: chain.merkleTreeHook,
        account: cfg.validator,
        store,
        fromBlock: chain.fromBlock,
        confirmations: cfg.confirmations,
        pollingIntervalMs: cfg.pollingIntervalMs,
        onError: (e) => onError(`validator ${chain.name}`, e),
      }),
    )
  }
  for (const from of cfg.chains) {
    for (const to of cfg.chains) {
      if (from === to) continue
      const route = `${from.name}→${to.name}`
      relayers.set(
        route,
        createLocalRelayer({
          origin: { client: from.client, mailbox: from.mailbox, merkleTreeHook: from.merkleTreeHook, domain: from.domain },
          destination: { client: to.client, mailbox: to.mailbox, domain: to.domain },
          checkpointStores: [stores.get(from.name)!],
          cursorStore: cfg.dir
            ? new FileRelayerCursorStore(cfg.dir, `relayer-${from.domain}-${to.domain}.json`)
            : new MemoryRelayerCursorStore(),
          fromBlock: from.fromBlock,
          confirmations: cfg.confirmations,
          pollingIntervalMs: cfg.pollingIntervalMs,
          onError: (e) => onError(`relayer ${route}`, e),
          onDelivered: (d) => cfg.onDelivered?.({ from: from.name, to: to.name }, d),
        }),
      )
    }
  }
  for (const v of validators.values()) v.start()
  for (const r of relayers.values()) r.start()
  const ready = Promise.all([...relayers].map(([route, r]) => r.prepare().catch((err: unknown) => onError(`relayer ${route}`, err)))).then(
    () => undefined,
  )
  const agents: LocalAgents = {
    ready,
    validators,
    relayers,
    async stop() {
      await Promise.all([...validators.values(), ...relayers.values()].map((a) => a[Symbol.asyncDispose]()))
    },
    [Symbol.asyncDispose]: () => agents.stop(),
  }
  return agents
}

/**
 * The agents for every configured chain that has a Hyperlane core (`chains.<name>.hyperlane`), from
 * the node's configuration: the validator signs with `relay.validatorKey`, relayers pay with
 * `relay.relayerKey` (default: the node's key).
 */
export function startAgentsFromConfig(
  config: SertnConfig,
  options: { dir: string; log?: (line: string) => void; onDelivered?: LocalAgentsConfig['onDelivered'] },
): LocalAgents {
  const validatorKey = config.relay.validatorKey
  if (!validatorKey)
    throw new ConfigError('relay.validatorKey is not set: the local validator needs a signing key (SERTN__RELAY__VALIDATOR_KEY)')
  const payer = privateKeyToAccount((config.relay.relayerKey ?? config.node.privateKey) as Hex)
  const chains: AgentChain[] = []
  for (const [name, c] of Object.entries(config.chains)) {
    if (!c.hyperlane) continue
    const chain = evmChainOf(c.chainId, name, c.rpcUrl)
    chains.push({
      name,
      domain: c.hyperlane.domain,
      client: createSertnClient(chain, payer, { pollingInterval: config.relay.pollingIntervalMs }),
      mailbox: c.hyperlane.mailbox as Hex,
      merkleTreeHook: c.hyperlane.merkleTreeHook as Hex,
      fromBlock: BigInt(c.hyperlane.deployBlock),
    })
  }
  if (chains.length < 2) throw new ConfigError(`the relay needs at least two chains with a hyperlane section, found ${chains.length}`)
  const log = options.log ?? ((l: string) => console.error(l))
  return startLocalAgents({
    chains,
    validator: privateKeyToAccount(validatorKey as Hex),
    dir: options.dir,
    pollingIntervalMs: config.relay.pollingIntervalMs,
    confirmations: config.relay.confirmations,
    onError: (who, err) => log(`[relay] ${who}: ${err instanceof Error ? err.message : String(err)}`),
    onDelivered: (route, d) => {
      log(
        `[relay] ${route.from}→${route.to}: message ${d.messageId} (index ${d.index}) delivered in ${d.transactionHash}, gas ${d.gasUsed}`,
      )
      options.onDelivered?.(route, d)
    },
  })
}
