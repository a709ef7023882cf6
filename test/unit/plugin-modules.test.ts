/**
 * Plugins named by module in the configuration (core/plugin-modules.ts): the example storage plugin
 * loaded by path and used through the container, a chain's plugin made by the container with the
 * chain's settings, messenger sections resolved to a module's plugin, and the errors for a module
 * that is missing, exports no factory, or makes something that is not a plugin of its kind (or, for
 * a chain, not for its chain). The bad modules are real
 * files written to a temporary folder.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseConfig, type SertnConfig } from '../../core/config.ts'
import { TOKENS } from '../../core/di.ts'
import { ConfigError, PluginError } from '../../core/errors.ts'
import { importSpecifierOf, loadPluginModule, loadPluginModules, namesModule } from '../../core/plugin-modules.ts'
import type { ChainPlugin, ChainPluginContext, StoragePlugin } from '../../core/plugins.ts'
import { chainId } from '../../core/types.ts'
import { configuredMessengers } from '../../plugins/messengers/index.ts'
import { buildContainer, buildContainerWithModules } from '../../workflows/worker/container.ts'

const tmp = mkdtempSync(join(tmpdir(), 'sertn-plugin-modules-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const EXAMPLE = './plugins/examples/storage-fs/src/index.ts'
const chains = { local: { chainId: 31337, rpcUrl: 'http://127.0.0.1:8545', gateway: `0x${'11'.repeat(20)}` } }
const bin = { contentType: 'application/octet-stream', tags: {} }

/** A module file in the temporary folder; returns its absolute path. */
function moduleFile(name: string, source: string): string {
  const file = join(tmp, name)
  writeFileSync(file, source)
  return file
}

const errorOf = async (p: Promise<unknown> | (() => unknown)): Promise<unknown> => {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    return e
  }
  throw new Error('expected an error')
}

describe('configuration', () => {
  it('default: built-in plugins by default; another name is a module, with its options', () => {
    const c = parseConfig({ chains })
    expect([c.runtime.plugin, c.prover.plugin, c.storage.plugin]).toEqual(['onnx', 'ezkl-wasm', 'arweave'])
    expect(namesModule('storage', c.storage.plugin)).toBe(false)
    const m = parseConfig({ chains, storage: { plugin: '@acme/sertn-storage-s3', options: { bucket: 'proofs' } } })
    expect(m.storage).toMatchObject({ plugin: '@acme/sertn-storage-s3', options: { bucket: 'proofs' } })
    expect(namesModule('storage', m.storage.plugin)).toBe(true)
  })

  it('error: options given to a built-in plugin name the field', () => {
    expect(() => parseConfig({ chains, storage: { plugin: 'arweave', options: { dir: 'x' } } })).toThrow(/storage\.options: the built-in/)
  })

  it('behavior: paths are file URLs from the working directory; package names stay bare', () => {
    expect(importSpecifierOf('./a/b.ts', '/srv/node')).toBe('file:///srv/node/a/b.ts')
    expect(importSpecifierOf('/opt/p.mjs', '/srv/node')).toBe('file:///opt/p.mjs')
    expect(importSpecifierOf('@acme/sertn-storage-s3', '/srv/node')).toBe('@acme/sertn-storage-s3')
  })
})

describe('loading', () => {
  it('behavior: the example storage plugin, named by path, is what the container resolves, and stores', async () => {
    const dir = join(tmp, 'artifacts')
    const config = parseConfig({ chains, storage: { plugin: EXAMPLE, options: { dir } } })
    const { container, dispose } = await buildContainerWithModules(config, ['storage'])
    try {
      const storage = container.resolve<StoragePlugin>(TOKENS.Storage)
      expect(storage).toMatchObject({ kind: 'storage', name: 'fs', flags: { persistent: true } })
      const ref = await storage.put(new Uint8Array([1, 2, 3]), bin)
      expect(Array.from(await storage.get(ref))).toEqual([1, 2, 3])
      // Its `sertn/errors` is this process's core/errors.ts (one module): the host's instanceof checks hold.
      await expect(storage.get({ ...ref, storage: 'arweave' })).rejects.toBeInstanceOf(PluginError)
    } finally {
      await dispose()
    }
  })

  it('behavior: only the kinds asked for are imported (a prover module need not be installed on a storage-only machine)', async () => {
    const config = parseConfig({
      chains,
      prover: { plugin: '@acme/not-installed-prover' },
      storage: { plugin: EXAMPLE, options: { dir: tmp } },
    })
    expect(Object.keys(await loadPluginModules(config, ['storage']))).toEqual(['storage'])
    await expect(loadPluginModules(config, ['storage', 'prover'])).rejects.toThrow(/prover\.plugin/)
  })

  it('error: a package that is not installed says to install it and lists the built-ins', async () => {
    const err = await errorOf(loadPluginModule('storage', '@acme/sertn-storage-missing', {}))
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).shortMessage).toMatch(
      /^storage\.plugin: "@acme\/sertn-storage-missing" is not a built-in storage plugin \(arweave\).*npm install @acme\/sertn-storage-missing/,
    )
  })

  it('error: a path to no file is a ConfigError naming the path', async () => {
    const err = await errorOf(loadPluginModule('runtime', './nowhere/runtime.ts', {}))
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).shortMessage).toMatch(/runtime\.plugin: "\.\/nowhere\/runtime\.ts"/)
  })

  it('error: a module whose default export is not a factory says what to export', async () => {
    for (const [name, source, what] of [
      ['none.mjs', 'export const storage = () => ({})\n', 'undefined \\(no default export\\)'],
      ['number.mjs', 'export default 42\n', 'a number'],
      ['object.mjs', "export default { kind: 'storage' }\n", 'an object'],
    ] as const) {
      const err = await errorOf(loadPluginModule('storage', moduleFile(name, source), {}))
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).message).toMatch(
        new RegExp(`export default defineStoragePlugin\\(\\(options\\) => …\\)\\); its default export is ${what}`),
      )
    }
  })

  it('error: a module that throws while loading is a ConfigError with its message', async () => {
    const err = await errorOf(loadPluginModule('storage', moduleFile('throws.mjs', "throw new Error('boom at load')\n"), {}))
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).shortMessage).toMatch(/failed to load/)
    expect((err as ConfigError).details).toMatch(/boom at load/)
  })

  it('error: a factory that makes another kind, a plugin without a method, or a promise is refused when the plugin is made', async () => {
    const cases = [
      [
        'runtime.mjs',
        "export default () => ({ kind: 'runtime', name: 'r', flags: {}, run() {}, async dispose() {} })",
        /made a plugin of kind "runtime", not a storage plugin/,
      ],
      [
        'noget.mjs',
        "export default () => ({ kind: 'storage', name: 's', flags: {}, put() {}, async dispose() {} })",
        /made a storage plugin without get\(\)/,
      ],
      ['async.mjs', "export default async () => ({ kind: 'storage' })", /returned a promise, not a storage plugin/],
      ['noname.mjs', "export default () => ({ kind: 'storage', flags: {}, put() {}, get() {}, dispose() {} })", /without a name/],
    ] as const
    for (const [name, source, message] of cases) {
      const make = await loadPluginModule('storage', moduleFile(name, source), {})
      const err = await errorOf(make)
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).message).toMatch(message)
    }
  })

  it("error: the plugin's own refusal of its options names storage.options", async () => {
    const make = await loadPluginModule('storage', EXAMPLE, {})
    const err = await errorOf(make)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).message).toMatch(
      /storage\.plugin: ".*" could not make its plugin from storage\.options: fs storage: options\.dir must be/,
    )
  })

  it('error: a container asked for a module plugin that was not imported says so', async () => {
    const config = parseConfig({ chains, storage: { plugin: EXAMPLE, options: { dir: tmp } } })
    const { container, dispose } = buildContainer(config)
    try {
      expect(() => container.resolve(TOKENS.Storage)).toThrow(/which was not imported: call loadPluginModules/)
    } finally {
      await dispose()
    }
  })
})

const CHAIN = './test/fixtures/outside-plugins/chain-memory.ts'
const MESSENGER = './test/fixtures/outside-plugins/messenger-wrapped-hyperlane.ts'
const addr = (n: number) => `0x${n.toString(16).padStart(40, '0')}`
/** A chain plugin module's source whose factory returns `body` (the context is `c`). */
const chainModule = (body: string) =>
  `const m = ['watchRequests','getRequestState','getModel','fulfill','fail','fulfillBatch','head','findSettlement','getAssignment','advanceAssignment','findCopy','dispose']
export default (options, c) => ({ kind: 'chain', name: 'x', flags: { reorgSafe: false }, chainName: c.chainName, chainId: c.chainId, gateway: c.gateway, ...Object.fromEntries(m.map((k) => [k, async () => {}])), ${body} })\n`

describe('chain plugins by module', () => {
  it('default: a chain is served by the built-in evm plugin; another name is a module, with its options; the evm plugin takes none', () => {
    expect(parseConfig({ chains }).chains.local!.plugin).toBe('evm')
    const m = parseConfig({ chains: { local: { ...chains.local, plugin: '@acme/sertn-chain-foo', options: { url: 'x' } } } })
    expect(m.chains.local).toMatchObject({ plugin: '@acme/sertn-chain-foo', options: { url: 'x' } })
    expect(namesModule('chain', 'evm')).toBe(false)
    expect(namesModule('chain', m.chains.local!.plugin)).toBe(true)
    expect(() => parseConfig({ chains: { local: { ...chains.local, options: { url: 'x' } } } })).toThrow(
      /chains\.local\.options: the built-in chain plugin evm takes no options/,
    )
  })

  it('error: a chain module that is not installed names chains.<name>.plugin, the built-in and the install', async () => {
    const config = parseConfig({ chains: { local: { ...chains.local, plugin: '@acme/sertn-chain-missing' } } })
    const err = await errorOf(loadPluginModules(config, ['chain']))
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).shortMessage).toMatch(
      /^chains\.local\.plugin: "@acme\/sertn-chain-missing" is not a built-in chain plugin \(evm\).*npm install @acme\/sertn-chain-missing/,
    )
  })

  it('error: a chain module whose default export is not a factory says to export defineChainPlugin', async () => {
    const err = await errorOf(
      loadPluginModule('chain', moduleFile('chain-object.mjs', "export default { kind: 'chain' }\n"), {}, { path: 'chains.local.plugin' }),
    )
    expect((err as ConfigError).message).toMatch(
      /^chains\.local\.plugin: .*export default defineChainPlugin\(\(options\) => …\)\); its default export is an object/,
    )
  })

  it("behavior: the container makes a chain module's plugin with the chain's options and settings; only chain-io imports it", async () => {
    const dataDir = join(tmp, 'data')
    const config = parseConfig({
      dataDir,
      node: { privateKey: `0x${'11'.repeat(32)}` },
      chains: {
        local: { ...chains.local, plugin: CHAIN, options: { network: 'unit' }, confirmations: 3 },
        other: { ...chains.local, chainId: 5 },
      },
    })
    expect(Object.keys(await loadPluginModules(config, ['storage']))).toEqual([])
    const { container, dispose } = await buildContainerWithModules(config, ['chain'])
    try {
      const [local, other] = container.resolve<ChainPlugin[]>(TOKENS.Chains)
      expect([local!.name, local!.chainName, local!.chainId, local!.gateway]).toEqual(['memory', 'local', 31337, chains.local.gateway])
      expect(other!.name).toBe('evm')
    } finally {
      await dispose()
    }
    // What the factory got: the chain's options as given, and its settings, a state folder of its own and the node's signer on demand.
    const spy = moduleFile(
      'chain-spy.mjs',
      chainModule('').replace(
        'export default (options, c) => (',
        'export default (options, c) => ((globalThis.sertnChainSpy = { options, c }), ',
      ),
    )
    const spied = { ...config, chains: { local: { ...config.chains.local!, plugin: spy, options: { a: 1 } } } }
    const built = await buildContainerWithModules(spied, ['chain'])
    try {
      built.container.resolve<ChainPlugin[]>(TOKENS.Chains)
      const got = (globalThis as { sertnChainSpy?: { options: unknown; c: ChainPluginContext } }).sertnChainSpy!
      expect(got.options).toEqual({ a: 1 })
      expect(got.c).toMatchObject({
        chainName: 'local',
        chainId: 31337,
        gateway: chains.local.gateway,
        confirmations: 3,
        stateDir: join(dataDir, 'chains', 'local'),
      })
      expect(got.c.signer().address).toMatch(/^0x[0-9a-fA-F]{40}$/)
    } finally {
      await built.dispose()
    }
  })

  it('error: a chain plugin for another chain, or without a method, is refused when it is made', async () => {
    const ctx = {
      chainName: 'local',
      chainId: chainId(31337),
      rpcUrl: 'http://127.0.0.1:8545',
      fallbackRpcUrls: [],
      gateway: chains.local.gateway as `0x${string}`,
      confirmations: 1,
      pollingIntervalMs: 1000,
      logRangeBlocks: 2000,
      stateDir: tmp,
      signer: () => {
        throw new Error('unused')
      },
    } satisfies ChainPluginContext
    const other = await loadPluginModule(
      'chain',
      moduleFile('chain-other.mjs', chainModule('chainId: 1')),
      {},
      { path: 'chains.local.plugin' },
    )
    expect(((await errorOf(() => other(ctx))) as ConfigError).message).toMatch(
      /^chains\.local\.plugin: ".*" made a chain plugin for "local" \(chain id 1, .*\), not for local \(chain id 31337/,
    )
    const nofail = await loadPluginModule(
      'chain',
      moduleFile('chain-nofail.mjs', chainModule('fail: undefined')),
      {},
      { path: 'chains.local.plugin' },
    )
    expect(((await errorOf(() => nofail(ctx))) as ConfigError).message).toMatch(/made a chain plugin without fail\(\)/)
  })

  it('error: a container asked for a chain module that was not imported says so', async () => {
    const config = parseConfig({ chains: { local: { ...chains.local, plugin: CHAIN, options: { network: 'unit' } } } })
    const { container, dispose } = buildContainer(config)
    try {
      expect(() => container.resolve(TOKENS.Chains)).toThrow(/chains\.local\.plugin names the module ".*", which was not imported/)
    } finally {
      await dispose()
    }
  })
})

describe('messenger plugins by module', () => {
  const hyperlane = { kind: 'hyperlane', domain: 1, mailbox: addr(1), merkleTreeHook: addr(2), port: addr(3) }
  const wrapped = { ...hyperlane, kind: 'wrapped-hyperlane', plugin: MESSENGER }
  const network = (hub: unknown, spoke: unknown) =>
    parseConfig({
      chains: {
        hub: { ...chains.local, market: addr(9), messenger: hub },
        spoke: { ...chains.local, chainId: 5, hub: 'hub', messenger: spoke },
      },
    })
  const line = async (config: Pick<SertnConfig, 'chains'>) => ((await errorOf(configuredMessengers(config))) as ConfigError).message

  it("behavior: sections naming a module resolve to its plugin, made once for the kind; its options and plugin fields are not the network's", async () => {
    const m = await configuredMessengers(network(wrapped, wrapped))
    const entry = m.get('wrapped-hyperlane')!
    expect(entry.plugin).toMatchObject({ kind: 'messenger', name: 'wrapped-hyperlane' })
    expect(entry.chains.map((c) => c.name)).toEqual(['hub', 'spoke'])
    expect(entry.chains[0]!.section).not.toHaveProperty('plugin')
    // Built-in kinds are unchanged.
    expect((await configuredMessengers(network(hyperlane, hyperlane))).get('hyperlane')!.plugin.name).toBe('hyperlane')
  })

  it("error: a messenger module that is not installed names the section's plugin field and the built-ins", async () => {
    const missing = { ...wrapped, plugin: '@acme/sertn-messenger-missing' }
    expect(await line(network(missing, missing))).toMatch(
      /^chains\.hub\.messenger\.plugin: "@acme\/sertn-messenger-missing" is not a built-in messenger plugin \(hyperlane, layerzero\).*npm install/,
    )
  })

  it('error: a wrong export, another kind, another name or a refusal of its options is refused, naming the field', async () => {
    const cases = [
      [
        'm-object.mjs',
        "export default { kind: 'messenger' }\n",
        /export default defineMessengerPlugin\(\(options\) => …\)\); its default export is an object/,
      ],
      [
        'm-storage.mjs',
        "export default () => ({ kind: 'storage', name: 'wrapped-hyperlane', flags: {}, put() {}, get() {}, async dispose() {} })\n",
        /made a plugin of kind "storage", not a messenger plugin/,
      ],
      [
        'm-noquote.mjs',
        "export default () => ({ kind: 'messenger', name: 'wrapped-hyperlane', fingerprint: 'f', flags: {}, parseDeployment() {}, deploy() {}, connect() {}, allowApp() {}, startAgents() {}, async dispose() {} })\n",
        /made a messenger plugin without quote\(\)/,
      ],
      [
        'm-name.mjs',
        `import m from '${join(process.cwd(), MESSENGER)}'\nexport default (o) => ({ ...m(o), name: 'pigeon' })\n`,
        /made the messenger plugin "pigeon", not wrapped-hyperlane/,
      ],
      [
        'm-refuses.mjs',
        "export default (o) => { throw new Error('options.url is required') }\n",
        /could not make its plugin from chains\.hub\.messenger\.options: options\.url is required/,
      ],
    ] as const
    for (const [name, source, message] of cases) {
      const s = { ...wrapped, plugin: moduleFile(name, source) }
      const text = await line(network(s, s))
      expect(text).toMatch(/^chains\.hub\.messenger\.plugin: /)
      expect(text).toMatch(message)
    }
  })

  it('error: a module under a built-in kind, options for a built-in, or two modules for one kind', async () => {
    expect(await line(network({ ...hyperlane, plugin: MESSENGER }, hyperlane))).toMatch(
      /^chains\.hub\.messenger\.kind: "hyperlane" is a built-in messenger; a messenger plugin from a module/,
    )
    expect(await line(network({ ...hyperlane, options: { a: 1 } }, hyperlane))).toMatch(
      /^chains\.hub\.messenger\.options: the built-in messenger plugin hyperlane takes no options/,
    )
    expect(await line(network(wrapped, { ...wrapped, options: { a: 1 } }))).toMatch(
      /^chains\.spoke\.messenger\.plugin: the wrapped-hyperlane messenger is ".*" with other options at chains\.hub\.messenger\.plugin/,
    )
  })
})
