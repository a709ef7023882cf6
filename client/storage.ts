/**
 * Read-only access to the storage where nodes keep results and model creators keep artifacts, for
 * {@link verifyResult}: an Arweave gateway's URL (arlocal in tests, https://arweave.net in
 * production), or a function that returns an artifact's bytes by its id. Reads go through the
 * Arweave plugin's HTTP client (time limits, typed failures); nothing is ever written.
 */
import { createHash } from 'node:crypto'
import { IntegrityError, PluginError } from '../core/errors.ts'
import type { StoragePlugin } from '../core/plugins.ts'
import type { StoredArtifact } from '../core/types.ts'
import { Gateway } from '../plugins/storage/arweave/http.ts'

/** Where the client reads stored artifacts from. */
export type StorageOption =
  | {
      /** An Arweave gateway, e.g. `https://arweave.net` or arlocal's `http://127.0.0.1:1984`. */
      gatewayUrl: string
      /** Time limit of each read (default 30 000 ms). */
      timeoutMs?: number
    }
  | {
      /** Returns the bytes stored under `id` (an Arweave transaction id, base64url). */
      fetch: (id: string) => Promise<Uint8Array>
    }

const NAME = 'client-storage'

/** A read-only StoragePlugin over {@link StorageOption} (`put` refuses). */
export function storageReader(option: StorageOption): StoragePlugin {
  const lifetime = new AbortController()
  const read: (id: string) => Promise<Uint8Array> =
    'fetch' in option
      ? option.fetch
      : (() => {
          const gateway = new Gateway({
            plugin: NAME,
            baseUrl: option.gatewayUrl.replace(/\/+$/, ''),
            timeoutMs: option.timeoutMs ?? 30_000,
            disposed: lifetime.signal,
          })
          return async (id: string) => {
            if (!/^[A-Za-z0-9_-]{43}$/.test(id)) throw new PluginError(NAME, `not an Arweave transaction id: ${JSON.stringify(id)}`)
            const { status, body } = await gateway.request(`/${id}`, { what: `read ${id}`, accept: [404] })
            if (status === 404) throw new PluginError(NAME, `${id} not found at ${option.gatewayUrl}`, { retryable: true })
            return status === 204 ? new Uint8Array(0) : body
          }
        })()
  return {
    kind: 'storage',
    name: NAME,
    flags: { persistent: true, searchable: false },
    async put() {
      throw new PluginError(NAME, 'the client only reads storage')
    },
    async get(ref: StoredArtifact) {
      const data = await read(ref.id)
      const actual = createHash('sha256').update(data).digest('hex')
      if (actual !== ref.sha256.toLowerCase())
        throw new IntegrityError(`[${NAME}] ${ref.id} does not match its recorded hash`, {
          details: `expected sha256 ${ref.sha256}, read ${actual} (${data.byteLength} bytes)`,
        })
      return data
    },
    async getById(id: string, { maxBytes }: { maxBytes: number }) {
      const data = await read(id)
      if (data.byteLength > maxBytes)
        throw new PluginError(NAME, `${id} holds ${data.byteLength} bytes, more than the ${maxBytes} expected`)
      return data
    },
    async dispose() {
      lifetime.abort()
    },
  }
}
