/**
 * Plugins that live outside the repository: a configuration's `runtime.plugin`, `prover.plugin`,
 * `storage.plugin` or `chains.<name>.plugin` that is not a built-in name, or a chain's
 * `messenger.plugin`, is a module (an npm package name, or a path to a file starting with `./`,
 * `../` or `/`, relative to the working directory) whose default export is the plugin's factory
 * (`export default defineStoragePlugin((options: MyOptions) => …)`). The factory gets the
 * section's `options` as they are (a chain plugin's also gets the chain's settings, a
 * {@link ChainPluginContext}); the plugin checks them.
 *
 * @example
 * // sertn.config.json
 * { "storage": { "plugin": "@acme/sertn-storage-s3", "options": { "bucket": "proofs" } } }
 *
 * Modules are imported when a worker starts (a missing module or a wrong export is a ConfigError
 * then, before any work is taken); the plugin itself is made on first use, like a built-in one.
 * Messenger modules are imported and made where the messengers are resolved
 * (plugins/messengers/index.ts `configuredMessengers`: the worker's start-up check and the relay).
 */
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BUILTIN_CHAIN_PLUGINS, BUILTIN_PLUGINS, type SertnConfig } from './config.ts'
import { ConfigError, SertnError } from './errors.ts'
import type { ChainPlugin, ChainPluginContext, MessengerPlugin, ProverPlugin, RuntimePlugin, StoragePlugin } from './plugins.ts'

/** The kinds a configuration chooses one plugin of, by name or by module. */
export type ConfiguredPluginKind = keyof typeof BUILTIN_PLUGINS

/** The kinds a worker's container makes from modules (messengers are made where they are resolved). */
export type ContainerPluginKind = ConfiguredPluginKind | 'chain'

/** Every kind a module can provide: one plugin of each configured kind, a plugin per chain, a plugin per messenger kind. */
export type ModulePluginKind = ConfiguredPluginKind | 'chain' | 'messenger'

interface PluginOfKind {
  runtime: RuntimePlugin
  prover: ProverPlugin
  storage: StoragePlugin
  chain: ChainPlugin
  messenger: MessengerPlugin
}

/** What the factory of a module of each kind is called with, besides its options. */
interface ContextOfKind {
  runtime: undefined
  prover: undefined
  storage: undefined
  chain: ChainPluginContext
  messenger: undefined
}

/** Makes the plugin of a loaded module (`context`: what a chain plugin gets besides its options). */
export type MakePlugin<K extends ModulePluginKind> = ContextOfKind[K] extends undefined
  ? () => PluginOfKind[K]
  : (context: ContextOfKind[K]) => PluginOfKind[K]

/** Factories of the plugins a configuration names by module, for `buildContainer`. */
export type PluginModules = { [K in ConfiguredPluginKind]?: MakePlugin<K> } & {
  /** By chain name: the chains whose `plugin` is a module. */
  chains?: Record<string, MakePlugin<'chain'>>
}

/** The methods each kind's plugin must have (the optional ones are checked by the conformance suites). */
const REQUIRED_METHODS: { [K in ModulePluginKind]: readonly (keyof PluginOfKind[K])[] } = {
  runtime: ['run', 'dispose'],
  prover: ['witness', 'prove', 'verify', 'proveInference', 'dispose'],
  storage: ['put', 'get', 'dispose'],
  chain: [
    'watchRequests',
    'getRequestState',
    'getModel',
    'fulfill',
    'fail',
    'fulfillBatch',
    'head',
    'findSettlement',
    'getAssignment',
    'advanceAssignment',
    'findCopy',
    'dispose',
  ],
  messenger: ['parseDeployment', 'deploy', 'connect', 'allowApp', 'quote', 'startAgents', 'dispose'],
}

const DEFINE: Record<ModulePluginKind, string> = {
  runtime: 'defineRuntimePlugin',
  prover: 'defineProverPlugin',
  storage: 'defineStoragePlugin',
  chain: 'defineChainPlugin',
  messenger: 'defineMessengerPlugin',
}

/** Where a module of `kind` is named in the configuration, and the built-in plugins of its kind. */
export interface ModuleSite {
  /** The field naming the module (default `<kind>.plugin`), e.g. `chains.base.plugin`. */
  readonly path?: string
  /** The built-in plugins of the kind, for the messages (default: `BUILTIN_PLUGINS[kind]`). */
  readonly builtins?: readonly string[]
  /** The field holding the options (default: `path` with `options` for `plugin`). */
  readonly optionsPath?: string
}

const builtinsOf = (kind: ModulePluginKind): readonly string[] =>
  kind === 'chain' ? BUILTIN_CHAIN_PLUGINS : kind === 'messenger' ? [] : BUILTIN_PLUGINS[kind]

/** Whether the configured `plugin` of `kind` names a module rather than a built-in plugin. */
export function namesModule(kind: ConfiguredPluginKind | 'chain', plugin: string): boolean {
  return !builtinsOf(kind).includes(plugin)
}

/** What a module specifier from the configuration is imported as: a file URL for a path, the name itself for a package. */
export function importSpecifierOf(specifier: string, cwd: string = process.cwd()): string {
  if (specifier.startsWith('file:')) return specifier
  if (specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier)) return pathToFileURL(resolve(cwd, specifier)).href
  return specifier
}

/**
 * Imports the module `specifier` and checks that it default-exports a factory; returns a function
 * that makes the plugin with `options` (and, for a chain, its context) and checks that it is a
 * `kind` plugin (a chain plugin: one serving the context's chain).
 *
 * @throws {ConfigError} naming `<kind>.plugin` (or `site.path`) when the module cannot be imported or exports no factory
 */
export async function loadPluginModule<K extends ModulePluginKind>(
  kind: K,
  specifier: string,
  options: unknown,
  { cwd = process.cwd(), ...site }: { cwd?: string } & ModuleSite = {},
): Promise<MakePlugin<K>> {
  const path = site.path ?? `${kind}.plugin`
  const optionsPath = site.optionsPath ?? path.replace(/plugin$/, 'options')
  const known = site.builtins ?? builtinsOf(kind)
  const builtins = known.length > 0 ? known.join(', ') : 'none'
  let mod: Record<string, unknown>
  try {
    mod = (await import(importSpecifierOf(specifier, cwd))) as Record<string, unknown>
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    const missing =
      (err as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' || /cannot find (module|package)|failed to load url/i.test(message)
    throw new ConfigError(
      missing
        ? `${path}: "${specifier}" is not a built-in ${kind} plugin (${builtins}) and no module of that name is installed: ` +
            `install the package next to sertn (npm install ${specifier}) or give a path to the module's file (./…, relative to ${cwd})`
        : `${path}: the module "${specifier}" failed to load; fix the module, or name a built-in ${kind} plugin (${builtins})`,
      { details: message, cause: err },
    )
  }
  const factory = mod.default
  if (typeof factory !== 'function')
    throw new ConfigError(
      `${path}: the module "${specifier}" must default-export a ${kind} plugin factory ` +
        `(export default ${DEFINE[kind]}((options) => …)); its default export is ${describeValue(factory)}`,
    )
  const make = (context?: ChainPluginContext) => {
    let plugin: unknown
    try {
      plugin = (factory as (options: unknown, context?: unknown) => unknown)(options, context)
    } catch (err) {
      const message = err instanceof SertnError ? err.shortMessage : err instanceof Error ? err.message : String(err)
      throw new ConfigError(`${path}: "${specifier}" could not make its plugin from ${optionsPath}: ${message}`, { cause: err })
    }
    const checked = checkPlugin(kind, plugin, `${path}: "${specifier}"`)
    if (context) checkServesChain(checked as ChainPlugin, context, `${path}: "${specifier}"`)
    return checked
  }
  return make as MakePlugin<K>
}

/**
 * The plugins `config` names by module for `kinds` (default: runtime, prover, storage and the
 * chains'), imported and checked. Messengers are loaded where they are resolved
 * (`configuredMessengers`).
 */
export async function loadPluginModules(
  config: Pick<SertnConfig, ConfiguredPluginKind | 'chains'>,
  kinds: readonly ContainerPluginKind[] = ['runtime', 'prover', 'storage', 'chain'],
  { cwd = process.cwd() }: { cwd?: string } = {},
): Promise<PluginModules> {
  const out: PluginModules = {}
  for (const kind of kinds) {
    if (kind === 'chain') {
      for (const [name, chain] of Object.entries(config.chains)) {
        if (!namesModule('chain', chain.plugin)) continue
        out.chains ??= {}
        out.chains[name] = await loadPluginModule('chain', chain.plugin, chain.options, { cwd, path: `chains.${name}.plugin` })
      }
      continue
    }
    const { plugin, options } = config[kind]
    if (!namesModule(kind, plugin)) continue
    // One assignment per kind keeps each factory's type.
    if (kind === 'runtime') out.runtime = await loadPluginModule('runtime', plugin, options, { cwd })
    else if (kind === 'prover') out.prover = await loadPluginModule('prover', plugin, options, { cwd })
    else out.storage = await loadPluginModule('storage', plugin, options, { cwd })
  }
  return out
}

/** `value` as a plugin of `kind`, or a ConfigError that says what is wrong with it. */
function checkPlugin<K extends ModulePluginKind>(kind: K, value: unknown, who: string): PluginOfKind[K] {
  if (typeof value !== 'object' || value === null || typeof (value as { then?: unknown }).then === 'function')
    throw new ConfigError(
      `${who}'s factory returned ${describeValue(value)}, not a ${kind} plugin: it must return the plugin object itself (synchronously)`,
    )
  const p = value as Record<string, unknown>
  if (p.kind !== kind) throw new ConfigError(`${who} made a plugin of kind ${JSON.stringify(p.kind)}, not a ${kind} plugin`)
  if (typeof p.name !== 'string' || p.name === '') throw new ConfigError(`${who} made a ${kind} plugin without a name`)
  if (typeof p.flags !== 'object' || p.flags === null) throw new ConfigError(`${who} made a ${kind} plugin without flags`)
  const missing = (REQUIRED_METHODS[kind] as readonly string[]).filter((m) => typeof p[m] !== 'function')
  if (missing.length > 0) throw new ConfigError(`${who} made a ${kind} plugin without ${missing.map((m) => `${m}()`).join(', ')}`)
  if (kind === 'messenger' && (typeof p.fingerprint !== 'string' || p.fingerprint === ''))
    throw new ConfigError(`${who} made a messenger plugin without a fingerprint (a hash of the code its deploy() deploys)`)
  return value as PluginOfKind[K]
}

/** The workflows find a request's chain plugin by its chain id and gateway: a module's plugin must serve the chain it was made for. */
function checkServesChain(p: ChainPlugin, c: ChainPluginContext, who: string): void {
  const gateway = typeof p.gateway === 'string' ? p.gateway.toLowerCase() : p.gateway
  if (p.chainName !== c.chainName || p.chainId !== c.chainId || gateway !== c.gateway.toLowerCase())
    throw new ConfigError(
      `${who} made a chain plugin for ${JSON.stringify(p.chainName)} (chain id ${p.chainId}, gateway ${String(p.gateway)}), ` +
        `not for ${c.chainName} (chain id ${c.chainId}, gateway ${c.gateway}): take chainName, chainId and gateway from the factory's context`,
    )
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'undefined (no default export)'
  if (v === null) return 'null'
  if (typeof v === 'object') return typeof (v as { then?: unknown }).then === 'function' ? 'a promise' : 'an object'
  return `a ${typeof v}`
}
