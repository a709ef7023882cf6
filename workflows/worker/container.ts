/**
 * The composition root's container: plugins chosen by configuration, built lazily (a prover worker
 * never opens an RPC connection; a chain-io worker never loads the prover), one instance each.
 */
import 'reflect-metadata'
import { join, resolve } from 'node:path'
import { totalmem } from 'node:os'
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { evmChain, evmMarket, feePolicyOf, FileCursorStore } from '../../chains/evm/plugin/index.ts'
import { type BUILTIN_PLUGINS, messengersOf, spokeRouteOf, type SertnConfig } from '../../core/config.ts'
import { TOKENS } from '../../core/di.ts'
import { ConfigError } from '../../core/errors.ts'
import { howToConfigure, type Signers } from '../../core/secrets.ts'
import { createModelStore, type ModelStore } from '../../core/models.ts'
import { type ContainerPluginKind, loadPluginModules, type PluginModules } from '../../core/plugin-modules.ts'
import type { ChainPlugin, ChainPluginContext, MarketPlugin, ProverPlugin, RuntimePlugin, StoragePlugin } from '../../core/plugins.ts'
import { chainId } from '../../core/types.ts'
import { ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { ezklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'
import { onnxRuntime } from '../../plugins/runtimes/onnx/index.ts'
import { arweaveStorage } from '../../plugins/storage/arweave/index.ts'
import type { ActivityDeps } from '../activities/index.ts'

/** Prover plugins by configured name. */
const PROVERS: Record<(typeof BUILTIN_PLUGINS)['prover'][number], (c: SertnConfig) => ProverPlugin> = {
  'ezkl-wasm': (c) => ezklWasmProver({ poolSize: c.prover.poolSize }),
  'ezkl-native': (c) => ezklNativeProver({ poolSize: c.prover.poolSize }),
}

/** Runtime plugins by configured name. */
const RUNTIMES: Record<(typeof BUILTIN_PLUGINS)['runtime'][number], (c: SertnConfig) => RuntimePlugin> = {
  onnx: () => onnxRuntime(),
}

/** Storage plugins by configured name. */
const STORAGES: Record<(typeof BUILTIN_PLUGINS)['storage'][number], (c: SertnConfig) => StoragePlugin> = {
  arweave: (c) => {
    const url = new URL(c.storage.arweave.url)
    const wallet = c.storage.arweave.walletFile ?? join(resolve(c.dataDir), 'arweave-wallet.json')
    return arweaveStorage({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      protocol: url.protocol === 'https:' ? 'https' : 'http',
      wallet,
    })
  },
}

export type ContainerOverrides = Partial<{
  runtime: RuntimePlugin
  prover: ProverPlugin
  storage: StoragePlugin
  chains: ChainPlugin[]
  markets: MarketPlugin[]
  models: ModelStore
  /** The resolved signers (`resolveSigners`): the chains and markets sign as `node`. */
  signers: Signers
  /** The plugins the configuration names by module (`loadPluginModules`), imported beforehand. */
  modules: PluginModules
}>

export type SertnContainer = {
  container: DependencyContainer
  /** Disposes every plugin the container built (not the overrides, which belong to the caller). */
  dispose(): Promise<void>
}

/** A child container holding the config and lazily built plugins (or the given overrides). */
export function buildContainer(config: SertnConfig, overrides: ContainerOverrides = {}): SertnContainer {
  const c = rootContainer.createChildContainer()
  const built: { dispose(): Promise<void> }[] = []
  c.register(TOKENS.Config, { useValue: config })
  const lazy = <T>(token: symbol, given: T | undefined, make: () => T) => {
    if (given !== undefined) {
      c.register<T>(token, { useValue: given })
      return
    }
    c.register<T>(token, {
      useFactory: instanceCachingFactory<T>(() => {
        const made = make()
        for (const p of Array.isArray(made) ? made : [made]) if (p && typeof p === 'object' && 'dispose' in p) built.push(p as never)
        return made
      }),
    })
  }
  lazy(TOKENS.Models, overrides.models, () =>
    createModelStore({
      dirs: [config.models.dir],
      cacheDir: config.models.cacheDir ?? join(resolve(config.dataDir), 'models'),
      storage: () => c.resolve<StoragePlugin>(TOKENS.Storage),
      allowInsecureSrs: config.models.allowInsecureSrs,
    }),
  )
  /** The configured plugin of `kind`: built in, else made by the module's factory (imported beforehand). */
  const choose = <K extends 'runtime' | 'prover' | 'storage', P>(kind: K, builtins: Record<string, (c: SertnConfig) => P>): P => {
    const name = config[kind].plugin
    const builtin = Object.hasOwn(builtins, name) ? builtins[name] : undefined
    if (builtin) return builtin(config)
    const made = overrides.modules?.[kind]
    if (!made)
      throw new ConfigError(
        `${kind}.plugin names the module "${name}", which was not imported: call loadPluginModules(config) and pass its result as modules to buildContainer`,
      )
    return made() as P
  }
  lazy(TOKENS.Runtime, overrides.runtime, () => choose('runtime', RUNTIMES))
  lazy(TOKENS.Prover, overrides.prover, () => choose('prover', PROVERS))
  lazy(TOKENS.Storage, overrides.storage, () => choose('storage', STORAGES))
  lazy(TOKENS.Chains, overrides.chains, () => {
    const signer = () => nodeAccountOf(config, overrides.signers)
    const cursors = new FileCursorStore(join(resolve(config.dataDir), 'cursors'))
    return Object.entries(config.chains).map(([chainName, ch]) => {
      if (ch.plugin !== 'evm') {
        // A chain plugin from a module, made with the chain's settings.
        const made = overrides.modules?.chains?.[chainName]
        if (!made)
          throw new ConfigError(
            `chains.${chainName}.plugin names the module "${ch.plugin}", which was not imported: call loadPluginModules(config) and pass its result as modules to buildContainer`,
          )
        const route = spokeRouteOf(config, chainName)
        const context: ChainPluginContext = {
          chainName,
          chainId: chainId(ch.chainId),
          rpcUrl: ch.rpcUrl,
          fallbackRpcUrls: ch.fallbackRpcUrls,
          gateway: ch.gateway as `0x${string}`,
          confirmations: ch.confirmations,
          pollingIntervalMs: ch.pollingIntervalMs,
          logRangeBlocks: ch.logRangeBlocks,
          ...(route ? { route } : {}),
          stateDir: join(resolve(config.dataDir), 'chains', chainName),
          signer,
        }
        return made(context)
      }
      return evmChain({
        chainName,
        chainId: ch.chainId,
        rpcUrl: ch.rpcUrl,
        fallbackRpcUrls: ch.fallbackRpcUrls,
        fees: feePolicyOf(ch.fees),
        maxBlockRange: ch.logRangeBlocks,
        gateway: ch.gateway as `0x${string}`,
        confirmations: ch.confirmations,
        pollingIntervalMs: ch.pollingIntervalMs,
        cursorStore: cursors,
        route: spokeRouteOf(config, chainName),
        account: signer(),
      })
    })
  })
  lazy(TOKENS.Markets, overrides.markets, () => {
    const account = nodeAccountOf(config, overrides.signers)
    return Object.entries(config.chains)
      .filter(([, ch]) => ch.market)
      .map(([chainName, ch]) =>
        evmMarket({
          chainName,
          chainId: ch.chainId,
          rpcUrl: ch.rpcUrl,
          fallbackRpcUrls: ch.fallbackRpcUrls,
          fees: feePolicyOf(ch.fees),
          market: ch.market as `0x${string}`,
          account,
          pollingIntervalMs: ch.pollingIntervalMs,
          // The market's records start once its messengers were deployed.
          fromBlock: BigInt(marketStartBlock(ch)),
        }),
      )
  })
  return {
    container: c,
    async dispose() {
      await Promise.allSettled(built.splice(0).map((p) => p.dispose()))
    },
  }
}

/**
 * {@link buildContainer} after importing the plugins of `kinds` that the configuration names by
 * module (a ConfigError when one is missing or exports no factory): for commands that use plugins
 * outside a worker.
 */
export async function buildContainerWithModules(
  config: SertnConfig,
  kinds: readonly ContainerPluginKind[],
  overrides: ContainerOverrides = {},
): Promise<SertnContainer> {
  return buildContainer(config, { ...overrides, modules: overrides.modules ?? (await loadPluginModules(config, kinds)) })
}

/**
 * The account the chains and markets sign with: the resolved node signer, else (a caller that
 * resolved none: tests, tools) the configuration's raw `node.privateKey`; a ConfigError saying what
 * to configure when there is neither.
 */
function nodeAccountOf(config: SertnConfig, signers: Signers | undefined): PrivateKeyAccount {
  if (signers?.node) return signers.node.account
  if (config.node.privateKey) return privateKeyToAccount(config.node.privateKey as `0x${string}`)
  throw new ConfigError(`the chains sign as the node, but no node key is configured: add ${howToConfigure('node')}`)
}

/** What a node may give proving of this machine's memory, by default: 80%. */
export const provingShareOfMemory = (): number => Math.floor(totalmem() * 0.8)

/** The most memory one proof may take on this node's prover worker (`prover.memoryBytes`). */
export function proverMemoryOf(config: SertnConfig): number {
  return config.prover.memoryBytes ?? Math.floor(provingShareOfMemory() / config.prover.poolSize)
}

/** Activity dependencies that resolve from the container on first use. */
export function lazyActivityDeps(c: DependencyContainer): ActivityDeps {
  return {
    get chains() {
      return c.resolve<ChainPlugin[]>(TOKENS.Chains)
    },
    get markets() {
      return c.resolve<MarketPlugin[]>(TOKENS.Markets)
    },
    /** Hops are looked for as often as the chains are polled. */
    get hopPollMs() {
      const chains = Object.values(c.resolve<SertnConfig>(TOKENS.Config).chains)
      return Math.min(...chains.map((ch) => ch.pollingIntervalMs))
    },
    get runtime() {
      return c.resolve<RuntimePlugin>(TOKENS.Runtime)
    },
    get prover() {
      return c.resolve<ProverPlugin>(TOKENS.Prover)
    },
    get storage() {
      return c.resolve<StoragePlugin>(TOKENS.Storage)
    },
    get models() {
      return c.resolve<ModelStore>(TOKENS.Models)
    },
    get allowInsecureSrs() {
      return c.resolve<SertnConfig>(TOKENS.Config).models.allowInsecureSrs
    },
    get proverWorker() {
      const config = c.resolve<SertnConfig>(TOKENS.Config)
      return { hardware: config.prover.hardware, memoryBytes: proverMemoryOf(config) }
    },
  }
}

/** Where the market's watcher starts without a cursor: its messengers' first deployment, else the chain's start block. */
function marketStartBlock(ch: SertnConfig['chains'][string]): number {
  const deployed = messengersOf(ch).map((m) => m.deployBlock)
  return deployed.length > 0 ? Math.min(...deployed) : (ch.startBlock ?? 0)
}
