/**
 * Plugins that live outside the repository: a configuration's `runtime.plugin`, `prover.plugin` or
 * `storage.plugin` that is not a built-in name is a module (an npm package name, or a path to a
 * file starting with `./`, `../` or `/`, relative to the working directory) whose default export is
 * the plugin's factory (`export default defineStoragePlugin((options: MyOptions) => …)`). The
 * factory gets the section's `options` as they are; the plugin checks them.
 *
 * @example
 * // sertn.config.json
 * { "storage": { "plugin": "@acme/sertn-storage-s3", "options": { "bucket": "proofs" } } }
 *
 * Modules are imported when a worker starts (a missing module or a wrong export is a ConfigError
 * then, before any work is taken); the plugin itself is made on first use, like a built-in one.
 */
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BUILTIN_PLUGINS, type SertnConfig } from './config.ts'
import { ConfigError, SertnError } from './errors.ts'
import type { ProverPlugin, RuntimePlugin, StoragePlugin } from './plugins.ts'

/** The kinds a configuration chooses one plugin of, by name or by module. */
export type ConfiguredPluginKind = keyof typeof BUILTIN_PLUGINS

interface PluginOfKind {
  runtime: RuntimePlugin
  prover: ProverPlugin
  storage: StoragePlugin
}

/** Factories of the plugins a configuration names by module, for `buildContainer`. */
export type PluginModules = { [K in ConfiguredPluginKind]?: () => PluginOfKind[K] }

/** The methods each kind's plugin must have (the optional ones are checked by the conformance suites). */
const REQUIRED_METHODS: { [K in ConfiguredPluginKind]: readonly (keyof PluginOfKind[K])[] } = {
  runtime: ['run', 'dispose'],
  prover: ['witness', 'prove', 'verify', 'proveInference', 'dispose'],
  storage: ['put', 'get', 'dispose'],
}

const DEFINE: Record<ConfiguredPluginKind, string> = {
  runtime: 'defineRuntimePlugin',
  prover: 'defineProverPlugin',
  storage: 'defineStoragePlugin',
}

/** Whether the configured `plugin` of `kind` names a module rather than a built-in plugin. */
export function namesModule(kind: ConfiguredPluginKind, plugin: string): boolean {
  return !(BUILTIN_PLUGINS[kind] as readonly string[]).includes(plugin)
}

/** What a module specifier from the configuration is imported as: a file URL for a path, the name itself for a package. */
export function importSpecifierOf(specifier: string, cwd: string = process.cwd()): string {
  if (specifier.startsWith('file:')) return specifier
  if (specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier)) return pathToFileURL(resolve(cwd, specifier)).href
  return specifier
}

/**
 * Imports the module `specifier` and checks that it default-exports a factory; returns a function
 * that makes the plugin with `options` and checks that it is a `kind` plugin.
 *
 * @throws {ConfigError} naming `<kind>.plugin` when the module cannot be imported or exports no factory
 */
export async function loadPluginModule<K extends ConfiguredPluginKind>(
  kind: K,
  specifier: string,
  options: unknown,
  { cwd = process.cwd() }: { cwd?: string } = {},
): Promise<() => PluginOfKind[K]> {
  const path = `${kind}.plugin`
  const builtins = BUILTIN_PLUGINS[kind].join(', ')
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
  return () => {
    let plugin: unknown
    try {
      plugin = (factory as (options: unknown) => unknown)(options)
    } catch (err) {
      const message = err instanceof SertnError ? err.shortMessage : err instanceof Error ? err.message : String(err)
      throw new ConfigError(`${path}: "${specifier}" could not make its plugin from ${kind}.options: ${message}`, { cause: err })
    }
    return checkPlugin(kind, plugin, `${path}: "${specifier}"`)
  }
}

/** The plugins `config` names by module for `kinds` (default: every kind), imported and checked. */
export async function loadPluginModules(
  config: Pick<SertnConfig, ConfiguredPluginKind>,
  kinds: readonly ConfiguredPluginKind[] = ['runtime', 'prover', 'storage'],
  { cwd = process.cwd() }: { cwd?: string } = {},
): Promise<PluginModules> {
  const out: PluginModules = {}
  for (const kind of kinds) {
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
function checkPlugin<K extends ConfiguredPluginKind>(kind: K, value: unknown, who: string): PluginOfKind[K] {
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
  return value as PluginOfKind[K]
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'undefined (no default export)'
  if (v === null) return 'null'
  if (typeof v === 'object') return typeof (v as { then?: unknown }).then === 'function' ? 'a promise' : 'an object'
  return `a ${typeof v}`
}
