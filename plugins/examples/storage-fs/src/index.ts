/**
 * A content-addressed storage plugin on the local filesystem: an artifact's id is the base64url of
 * its sha256, so a put of the same bytes is the same artifact (puts are idempotent: a retried
 * activity finds its earlier write without a search), and every read is checked against the id.
 * The id is also the 32 bytes a gateway records on chain (core/storage-ref.ts maps 43-character
 * base64url ids one to one), so a request whose input is stored here by its hash can be read back
 * by that hash (`getById`).
 *
 * Written as a plugin outside the repository would be: it imports only `sertn/…` entry points.
 *
 * @example
 * // sertn.config.json
 * { "storage": { "plugin": "sertn-plugin-storage-fs", "options": { "dir": ".data/artifacts" } } }
 */
import { createHash, randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { ConfigError, IntegrityError, PluginError } from 'sertn/errors'
import { defineStoragePlugin, type PutOptions, type StoragePlugin } from 'sertn/plugins'
import type { StoredArtifact } from 'sertn/types'

/** This plugin's name: `StoragePlugin.name`, `StoredArtifact.storage` and the prefix of its errors. */
export const PLUGIN_NAME = 'fs'

/** Options of the filesystem storage plugin (the configuration's `storage.options`). */
export interface FsStorageOptions {
  /** The folder holding the artifacts, created on first write; relative to the working directory. */
  readonly dir: string
}

/** An artifact id: the base64url of a sha256 (43 characters). */
const ID = /^[A-Za-z0-9_-]{43}$/

/**
 * Creates the plugin. Flags: persistent (a fresh instance on the same folder reads every earlier
 * write), not searchable (content addressing makes `find` unnecessary: a retried put is the same
 * artifact).
 *
 * @throws {ConfigError} when `options.dir` is not a non-empty string
 */
export function createFsStorage(options: FsStorageOptions): StoragePlugin {
  const raw: unknown = (options as Partial<FsStorageOptions> | undefined)?.dir
  if (typeof raw !== 'string' || raw === '')
    throw new ConfigError(`${PLUGIN_NAME} storage: options.dir must be a folder path, e.g. { "dir": ".data/artifacts" }`)
  const root = resolve(raw)
  let disposed = false

  const alive = (op: string) => {
    if (disposed) throw new PluginError(PLUGIN_NAME, `${op}: the plugin was disposed; create a new instance`)
  }
  // Two levels of fan-out keep folders small: <dir>/<id[0..2]>/<id>.
  const pathOf = (id: string) => join(root, id.slice(0, 2), id)
  const checkId = (id: string) => {
    // The id comes from chain data or a caller: never let it name a path outside the folder.
    if (!ID.test(id))
      throw new PluginError(PLUGIN_NAME, `not an ${PLUGIN_NAME} artifact id (43 base64url characters): ${JSON.stringify(id)}`)
  }
  const read = async (id: string): Promise<Buffer> => {
    try {
      return await readFile(pathOf(id))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        // Retryable: another process may still be writing it, or a copy may be on its way.
        throw new PluginError(PLUGIN_NAME, `artifact ${id} not found in ${root}`, { retryable: true, cause: err })
      throw new PluginError(PLUGIN_NAME, `cannot read artifact ${id} in ${root}`, { retryable: true, cause: err })
    }
  }
  /** The file must hash to its own id: a corrupted file is never served. */
  const checkContent = (id: string, data: Uint8Array) => {
    if (idOf(data) !== id) throw new IntegrityError(`${PLUGIN_NAME}: artifact ${id} in ${root} is corrupted (its bytes hash to another id)`)
  }

  return {
    kind: 'storage',
    name: PLUGIN_NAME,
    flags: { persistent: true, searchable: false },

    async put(data: Uint8Array, _options: PutOptions): Promise<StoredArtifact> {
      alive('put')
      const sha256 = createHash('sha256').update(data).digest()
      const id = sha256.toString('base64url')
      const file = pathOf(id)
      const exists = await stat(file).then(
        (s) => s.size === data.byteLength,
        () => false,
      )
      if (!exists) {
        // Write aside, then rename: a reader never sees half a file, and concurrent puts of the same bytes both succeed.
        const tmp = join(dirname(file), `.${id}.${randomUUID()}.tmp`)
        try {
          await mkdir(dirname(file), { recursive: true })
          await writeFile(tmp, data)
          await rename(tmp, file)
        } catch (err) {
          await rm(tmp, { force: true })
          throw new PluginError(PLUGIN_NAME, `cannot write to ${root}: check that the folder is writable and the disk not full`, {
            retryable: true,
            cause: err,
          })
        }
      }
      return { storage: PLUGIN_NAME, id, sha256: sha256.toString('hex'), bytes: data.byteLength }
    },

    async get(ref: StoredArtifact): Promise<Uint8Array> {
      alive('get')
      if (ref.storage !== PLUGIN_NAME) throw new PluginError(PLUGIN_NAME, `cannot read an artifact of storage '${ref.storage}'`)
      checkId(ref.id)
      const data = await read(ref.id)
      checkContent(ref.id, data)
      const sha256 = createHash('sha256').update(data).digest('hex')
      if (sha256 !== ref.sha256)
        throw new IntegrityError(`${PLUGIN_NAME}: artifact ${ref.id} hashes to ${sha256}, the ref records ${ref.sha256}`)
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    },

    async getById(id: string, { maxBytes }: { maxBytes: number }): Promise<Uint8Array> {
      alive('getById')
      checkId(id)
      const size = await stat(pathOf(id)).then(
        (s) => s.size,
        () => undefined,
      )
      if (size !== undefined && size > maxBytes)
        throw new PluginError(PLUGIN_NAME, `artifact ${id} holds ${size} bytes, more than the ${maxBytes} expected`)
      const data = await read(id)
      checkContent(id, data)
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    },

    async dispose(): Promise<void> {
      disposed = true
    },
  }
}

/** The id of some bytes: the base64url of their sha256. */
export function idOf(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url')
}

/** The plugin's factory, the module's default export: what a configuration naming this module gets. */
export default defineStoragePlugin((options: FsStorageOptions) => createFsStorage(options))
