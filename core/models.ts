/**
 * The models a node serves, as the registries describe them ({@link ModelRef}): their artifacts
 * loaded once, every file checked against the hashes the registry pins.
 *
 * Where the files come from, in order: a local model directory whose manifest.json hashes to the
 * registered artifacts hash (the creator's own build, or a copy an operator keeps), the node's cache
 * of fetched models (`<cacheDir>/<artifacts hash>/`), or the storage plugin (the artifact index the
 * registry names, then each file), written to the cache once checked. A file whose bytes differ from
 * the registered hash is refused with an error that names the file and the model.
 */
import { existsSync, readdirSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { encodeAbiParameters, keccak256, type Address } from 'viem'
import { artifactHashesOf, fetchModelArtifacts, type ModelRef } from './artifacts.ts'
import { SertnError } from './errors.ts'
import { ArtifactHashMismatchError, loadModelArtifacts, readModelManifest, type ModelArtifacts } from './manifest.ts'
import type { StoragePlugin } from './plugins.ts'
import type { Hex } from './types.ts'

/**
 * The on-chain id of model `name` registered by `owner`: keccak256(abi.encode(owner, name)), as
 * `ModelRegistry.modelIdOf` computes it. Ids depend on the registering account, so nobody can take
 * a name another account uses.
 */
export function modelIdOf(owner: Address, name: string): Hex {
  return keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'string' }], [owner, name]))
}

/** A model the node cannot serve: no local copy and no storage to fetch it from, or no such registration. */
export class UnknownModelError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'UnknownModelError'
}

export type ModelStore = {
  /** The artifacts of a registered model, hash-checked against its registration. */
  get(ref: ModelRef): Promise<ModelArtifacts>
}

export type ModelStoreOptions = {
  /** Directories holding one folder per model (a creator's builds): used when a manifest hashes to the registered one. */
  dirs?: readonly string[]
  /** Where fetched models are kept (`<cacheDir>/<artifacts hash>/`); required to fetch from storage. */
  cacheDir?: string
  /** Where registered artifacts are fetched from when no local copy has them (a getter: built on first fetch). */
  storage?: StoragePlugin | (() => StoragePlugin)
  allowInsecureSrs?: boolean
}

export function createModelStore(options: ModelStoreOptions): ModelStore {
  const allowInsecureSrs = options.allowInsecureSrs ?? false
  const loaded = new Map<string, Promise<ModelArtifacts>>()
  let local: Promise<Map<string, string>> | undefined

  /** Local model directories by the sha256 of their manifest.json. */
  const localDirs = () =>
    (local ??= (async () => {
      const byHash = new Map<string, string>()
      for (const root of options.dirs ?? []) {
        const abs = resolve(root)
        if (!existsSync(abs)) continue
        for (const e of readdirSync(abs, { withFileTypes: true })) {
          if (!e.isDirectory() || !existsSync(join(abs, e.name, 'manifest.json'))) continue
          try {
            const { sha256 } = await readModelManifest(join(abs, e.name))
            byHash.set(sha256, join(abs, e.name))
          } catch {
            // Not a model of this format: skip it (it cannot match a registration).
          }
        }
      }
      return byHash
    })())

  /** The registry's hashes for the files it pins, checked against a loaded model's. */
  const checkRegistered = (ref: ModelRef, model: ModelArtifacts, manifestBytes: Uint8Array) => {
    const got = artifactHashesOf(model.manifest, manifestBytes)
    for (const [key, file] of [
      ['manifestHash', 'manifest.json'],
      ['compiledHash', 'model.compiled'],
      ['vkHash', 'vk.key'],
      ['settingsHash', 'settings.json'],
      ['srsHash', 'SRS'],
    ] as const) {
      if (got[key].toLowerCase() !== ref.artifacts[key].toLowerCase())
        throw new ArtifactHashMismatchError(file, ref.artifacts[key].slice(2), got[key].slice(2), ref.name)
    }
  }

  async function fromCache(ref: ModelRef, hash: string): Promise<ModelArtifacts | undefined> {
    if (!options.cacheDir) return undefined
    const dir = join(resolve(options.cacheDir), hash)
    if (!existsSync(join(dir, 'manifest.json'))) return undefined
    try {
      const model = await loadModelArtifacts(dir, { allowInsecureSrs, srsPath: join(dir, 'srs.bin') })
      checkRegistered(ref, model, new Uint8Array(await readFile(join(dir, 'manifest.json'))))
      return model
    } catch {
      // A damaged cache entry: fetch it again.
      await rm(dir, { recursive: true, force: true })
      return undefined
    }
  }

  async function fetch(ref: ModelRef, hash: string): Promise<ModelArtifacts> {
    if (!options.storage || !options.cacheDir)
      throw new UnknownModelError(
        `model ${ref.name} (${ref.modelId}): no local copy has artifacts ${ref.artifacts.manifestHash}, and this node has no storage to fetch them from`,
      )
    const storage = typeof options.storage === 'function' ? options.storage() : options.storage
    const fetched = await fetchModelArtifacts(storage, ref)
    const dir = join(resolve(options.cacheDir), hash)
    const tmp = `${dir}.${process.pid}.tmp`
    await rm(tmp, { recursive: true, force: true })
    await mkdir(tmp, { recursive: true })
    for (const [file, bytes] of fetched.files) await writeFile(join(tmp, file), bytes)
    await writeFile(join(tmp, 'srs.bin'), fetched.srs)
    await writeFile(join(tmp, 'manifest.json'), fetched.manifestBytes)
    // Each batch circuit in its directory (`batch-<size>`, as the manifest checked), its SRS beside it.
    for (const [batchDir, b] of fetched.batches) {
      await mkdir(join(tmp, batchDir), { recursive: true })
      for (const [file, bytes] of b.files) await writeFile(join(tmp, batchDir, file), bytes)
      await writeFile(join(tmp, batchDir, 'srs.bin'), b.srs)
      await writeFile(join(tmp, batchDir, 'manifest.json'), b.manifestBytes)
    }
    await rm(dir, { recursive: true, force: true })
    await rename(tmp, dir)
    return loadModelArtifacts(dir, { allowInsecureSrs, srsPath: join(dir, 'srs.bin') })
  }

  async function load(ref: ModelRef): Promise<ModelArtifacts> {
    const hash = ref.artifacts.manifestHash.slice(2).toLowerCase()
    const dir = (await localDirs()).get(hash)
    if (dir) {
      const model = await loadModelArtifacts(dir, { allowInsecureSrs })
      checkRegistered(ref, model, new Uint8Array(await readFile(join(dir, 'manifest.json'))))
      return model
    }
    return (await fromCache(ref, hash)) ?? (await fetch(ref, hash))
  }

  return {
    get(ref) {
      const key = ref.artifacts.manifestHash.toLowerCase()
      let p = loaded.get(key)
      if (!p) {
        p = load(ref)
        p.catch(() => loaded.delete(key))
        loaded.set(key, p)
      }
      return p
    },
  }
}
