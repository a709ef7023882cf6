/**
 * Plugins named by module in the configuration (core/plugin-modules.ts): the example storage plugin
 * loaded by path and used through the container, and the errors for a module that is missing,
 * exports no factory, or makes something that is not a plugin of its kind. The bad modules are real
 * files written to a temporary folder.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../core/config.ts'
import { TOKENS } from '../../core/di.ts'
import { ConfigError, PluginError } from '../../core/errors.ts'
import { importSpecifierOf, loadPluginModule, loadPluginModules, namesModule } from '../../core/plugin-modules.ts'
import type { StoragePlugin } from '../../core/plugins.ts'
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
