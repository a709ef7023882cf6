/**
 * The Arweave storage plugin: artifacts are data transactions signed by the node's wallet, tagged
 * with their SHA-256 and the caller's tags, read back through the gateway and checked against their
 * hash, and found again by tags through GraphQL.
 */
import { createHash } from 'node:crypto'
import Arweave from 'arweave'
import { IntegrityError, PluginError } from '../../../core/errors.ts'
import { defineStoragePlugin, type PreparedArtifact, type PutOptions, type StoragePlugin } from '../../../core/plugins.ts'
import type { StoredArtifact } from '../../../core/types.ts'
import { findTransactions } from './graphql.ts'
import { disposedError, Gateway } from './http.ts'
import { type JWKInterface, loadWallet, walletAddress } from './wallet.ts'

/** This plugin's name: `StoragePlugin.name`, `StoredArtifact.storage` and the prefix of its errors. */
export const PLUGIN_NAME = 'arweave'
/** The `App-Name` tag of every artifact this plugin writes. */
export const APP_NAME = 'Sertn'
/** Tags the plugin sets itself; callers' tags may not use these names. */
export const TAG_CONTENT_TYPE = 'Content-Type'
export const TAG_SHA256 = 'Sertn-Sha256'
export const TAG_APP_NAME = 'App-Name'
const RESERVED_TAGS = [TAG_CONTENT_TYPE, TAG_SHA256, TAG_APP_NAME].map((t) => t.toLowerCase())
/** Arweave's limit on the total size of a transaction's tag names and values, in bytes. */
export const MAX_TAG_BYTES = 2048

/**
 * Options of the Arweave storage plugin.
 *
 * - `host`: the node or gateway (default `'127.0.0.1'`)
 * - `port`: default 1984 (arlocal's and a node's port) for http, 443 for https
 * - `protocol`: `'http'` (default) or `'https'`
 * - `wallet`: the JWK that signs and pays for the transactions, or the path of a JSON file holding
 *   it (required; for arlocal see `createFundedWallet` / `loadOrCreateLocalWallet` in `./local.ts`)
 * - `mineAfterPost`: arlocal only: `GET /mine` after each put, so the write is in a block at once
 *   (default false; arlocal serves and indexes unmined transactions anyway)
 * - `timeoutMs`: time limit of each HTTP request (default 30 000)
 * - `maxInlineBytes`: data up to this size is posted inside the transaction, larger data in
 *   256 KiB chunks through `POST /chunk` (default 8 MiB; Arweave accepts up to 10 MiB inline, and
 *   arlocal's JSON limit is 15 MB after base64). arlocal 1.1.66 serves chunked data with identical
 *   256 KiB chunks merged into one, so repetitive data over this size reads back short there (get
 *   then throws IntegrityError); inline data is served as posted.
 * - `owners`: `find` returns only artifacts signed by these addresses (default: this wallet's), so
 *   that nobody else's transaction carrying the same tags is taken for an earlier write of ours
 * - `maxFindResults`: `find` returns at most this many artifacts, newest first (default 1000)
 */
export type ArweaveStorageOptions = {
  host?: string
  port?: number
  protocol?: 'http' | 'https'
  wallet: JWKInterface | string
  mineAfterPost?: boolean
  timeoutMs?: number
  maxInlineBytes?: number
  owners?: readonly string[]
  maxFindResults?: number
}

/** The Arweave StoragePlugin, plus the address that signs its writes. */
export interface ArweaveStorage extends StoragePlugin {
  readonly address: string
  /** Where it sends requests: `protocol://host:port`. */
  readonly url: string
  find(tags: Record<string, string>): Promise<StoredArtifact[]>
}

const TX_ID = /^[a-zA-Z0-9_-]{43}$/

/**
 * Creates an Arweave storage plugin. Flags: { persistent: true, searchable: true }.
 *
 * - put: @throws {PluginError} retryable on network failures, time-outs, 404/408/429/5xx answers;
 *   not retryable on bad options (empty or reserved tags, tags over 2048 bytes) or a refused
 *   transaction (e.g. arlocal's 410 for a wallet without funds)
 * - get: @throws {IntegrityError} (not retryable) when the bytes do not hash to `ref.sha256`;
 *   {PluginError} retryable when the data is not there (yet) or the gateway cannot be reached
 * - find: artifacts of this plugin (App-Name Sertn, signed by `owners`) carrying every tag
 * - after dispose(), every call rejects with a PluginError (not retryable); calls in flight abort
 *
 * @throws {PluginError} (not retryable) at creation when the wallet cannot be loaded
 */
export function createArweaveStorage(options: ArweaveStorageOptions): ArweaveStorage {
  const protocol = options.protocol ?? 'http'
  const host = options.host ?? '127.0.0.1'
  const port = options.port ?? (protocol === 'https' ? 443 : 1984)
  const timeoutMs = options.timeoutMs ?? 30_000
  const maxInlineBytes = options.maxInlineBytes ?? 8 * 1024 * 1024
  const maxFindResults = options.maxFindResults ?? 1000
  const jwk = loadWallet(PLUGIN_NAME, options.wallet)
  const address = walletAddress(jwk)
  const owners = options.owners ?? [address]
  const url = `${protocol}://${host.includes(':') ? `[${host}]` : host}:${port}`

  const lifetime = new AbortController()
  const gateway = new Gateway({ plugin: PLUGIN_NAME, baseUrl: url, timeoutMs, disposed: lifetime.signal })
  // Used only to build and sign transactions; all HTTP goes through `gateway`.
  const arweave = Arweave.init({ host, port, protocol })

  const live = () => {
    if (lifetime.signal.aborted) throw disposedError(PLUGIN_NAME)
  }

  // The anchor stays valid for 50 blocks and prices move slowly: reuse both for a few seconds
  // instead of asking before every write.
  const recent = new Map<string, { at: number; value: Promise<string> }>()
  const cached = (path: string, what: string): Promise<string> => {
    const hit = recent.get(path)
    if (hit && Date.now() - hit.at < 5_000) return hit.value
    const value = gateway.text(path, what)
    recent.set(path, { at: Date.now(), value })
    value.catch(() => recent.delete(path))
    if (recent.size > 256) recent.delete(recent.keys().next().value!)
    return value
  }

  /** A signed transaction for `data`: its id is fixed before anything is sent. */
  async function sign(data: Uint8Array, putOptions: PutOptions) {
    live()
    const tags = checkTags(putOptions)
    const sha256 = sha256Hex(data)
    const [anchor, reward] = await Promise.all([
      cached('/tx_anchor', 'get a transaction anchor'),
      cached(`/price/${data.byteLength}`, 'get the price of a write'),
    ])
    live()
    const tx = await arweave.createTransaction({ data, last_tx: anchor.trim(), reward: reward.trim() }, jwk)
    tx.addTag(TAG_CONTENT_TYPE, putOptions.contentType)
    tx.addTag(TAG_APP_NAME, APP_NAME)
    tx.addTag(TAG_SHA256, sha256)
    for (const [name, value] of tags) tx.addTag(name, value)
    await arweave.transactions.sign(tx, jwk)
    live()
    return { tx, artifact: { storage: PLUGIN_NAME, id: tx.id, sha256, bytes: data.byteLength } satisfies StoredArtifact }
  }

  /** Posts a signed inline transaction. */
  async function postInline(json: object, id: string, bytes: number): Promise<void> {
    await gateway.request('/tx', { method: 'POST', json, what: `post transaction ${id} (${bytes} bytes)` })
    if (options.mineAfterPost) await gateway.request('/mine', { what: `mine ${id} (arlocal)` })
  }

  async function put(data: Uint8Array, putOptions: PutOptions): Promise<StoredArtifact> {
    const { tx, artifact } = await sign(data, putOptions)
    const what = `post transaction ${tx.id} (${data.byteLength} bytes)`
    if (data.byteLength <= maxInlineBytes) {
      await postInline(tx.toJSON(), tx.id, data.byteLength)
      return artifact
    }
    await gateway.request('/tx', { method: 'POST', json: { ...tx.toJSON(), data: '' }, what })
    const chunkCount = tx.chunks?.chunks.length ?? 0
    for (let i = 0; i < chunkCount; i++) {
      await gateway.request('/chunk', {
        method: 'POST',
        json: tx.getChunk(i, data),
        what: `upload chunk ${i + 1}/${chunkCount} of ${tx.id}`,
      })
    }
    if (options.mineAfterPost) await gateway.request('/mine', { what: `mine ${tx.id} (arlocal)` })
    return artifact
  }

  async function prepare(data: Uint8Array, putOptions: PutOptions): Promise<PreparedArtifact> {
    if (data.byteLength > maxInlineBytes)
      throw new PluginError(PLUGIN_NAME, `prepare: ${data.byteLength} bytes is more than the ${maxInlineBytes} posted inline; use put`)
    const { tx, artifact } = await sign(data, putOptions)
    return { artifact, payload: JSON.stringify(tx.toJSON()) }
  }

  async function upload(prepared: PreparedArtifact): Promise<StoredArtifact> {
    live()
    if (prepared.artifact.storage !== PLUGIN_NAME)
      throw new PluginError(PLUGIN_NAME, `cannot upload an artifact of storage '${prepared.artifact.storage}'`)
    const json = JSON.parse(prepared.payload) as { id?: string }
    if (json.id !== prepared.artifact.id)
      throw new PluginError(PLUGIN_NAME, `upload: the payload is transaction ${String(json.id)}, not ${prepared.artifact.id}`)
    try {
      await postInline(json, prepared.artifact.id, prepared.artifact.bytes)
    } catch (err) {
      // Posting a transaction the gateway already has is refused by some (arlocal: 404): then it is there.
      const known = await gateway
        .request(`/tx/${prepared.artifact.id}`, { what: `look up ${prepared.artifact.id}`, accept: [404] })
        .catch(() => undefined)
      if (known?.status !== 200) throw err
    }
    return prepared.artifact
  }

  async function get(ref: StoredArtifact): Promise<Uint8Array> {
    live()
    if (ref.storage !== PLUGIN_NAME) throw new PluginError(PLUGIN_NAME, `cannot read an artifact of storage '${ref.storage}'`)
    if (!TX_ID.test(ref.id)) throw new PluginError(PLUGIN_NAME, `not an Arweave transaction id: ${JSON.stringify(ref.id)}`)
    const { status, body } = await gateway.request(`/${ref.id}`, { what: `read artifact ${ref.id}`, accept: [404] })
    let data = body
    if (status === 404 && ref.bytes === 0) {
      // Some gateways have no data to serve for an empty transaction; the transaction itself tells.
      const tx = await gateway.request(`/tx/${ref.id}`, { what: `read artifact ${ref.id}`, accept: [404] })
      if (tx.status === 404 || dataSize(tx.body) !== 0)
        throw new PluginError(PLUGIN_NAME, `artifact ${ref.id} not found (yet)`, {
          details: `GET ${gateway.baseUrl}/${ref.id} answered 404`,
          retryable: true,
        })
      data = new Uint8Array(0)
    } else if (status === 404) {
      throw new PluginError(PLUGIN_NAME, `artifact ${ref.id} not found (yet)`, {
        details: `GET ${gateway.baseUrl}/${ref.id} answered 404`,
        retryable: true,
      })
    } else if (status !== 200 && !(status === 204 && ref.bytes === 0)) {
      // 202 (pending) or 204 (arlocal's answer for empty data) where data is expected
      throw new PluginError(PLUGIN_NAME, `artifact ${ref.id} is not available yet (HTTP ${status})`, { retryable: true })
    }
    const actual = sha256Hex(data)
    if (actual !== ref.sha256 || data.byteLength !== ref.bytes)
      throw new IntegrityError(`[${PLUGIN_NAME}] artifact ${ref.id} does not match its recorded hash`, {
        details: `expected sha256 ${ref.sha256} (${ref.bytes} bytes), read sha256 ${actual} (${data.byteLength} bytes)`,
      })
    return data
  }

  async function getById(id: string, options: { maxBytes: number }): Promise<Uint8Array> {
    live()
    if (!TX_ID.test(id)) throw new PluginError(PLUGIN_NAME, `not an Arweave transaction id: ${JSON.stringify(id)}`)
    const { status, body } = await gateway.request(`/${id}`, { what: `read artifact ${id}`, accept: [404] })
    if (status === 404)
      throw new PluginError(PLUGIN_NAME, `artifact ${id} not found (yet)`, {
        details: `GET ${gateway.baseUrl}/${id} answered 404`,
        retryable: true,
      })
    if (status === 204) return new Uint8Array(0)
    if (status !== 200) throw new PluginError(PLUGIN_NAME, `artifact ${id} is not available yet (HTTP ${status})`, { retryable: true })
    if (body.byteLength > options.maxBytes)
      throw new PluginError(PLUGIN_NAME, `artifact ${id} holds ${body.byteLength} bytes, more than the ${options.maxBytes} expected`)
    return body
  }

  async function find(tags: Record<string, string>): Promise<StoredArtifact[]> {
    live()
    for (const [name, value] of Object.entries(tags))
      if (name === '' || value === '') throw new PluginError(PLUGIN_NAME, 'find: tag names and values must not be empty')
    const found = await findTransactions(gateway, {
      plugin: PLUGIN_NAME,
      tags: { ...tags, [TAG_APP_NAME]: APP_NAME },
      owners,
      limit: maxFindResults,
    })
    live()
    const artifacts: StoredArtifact[] = []
    for (const tx of found) {
      const sha256 = tx.tags.find((t) => t.name === TAG_SHA256)?.value
      if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256) || tx.size < 0) continue
      artifacts.push({ storage: PLUGIN_NAME, id: tx.id, sha256, bytes: tx.size })
    }
    return artifacts
  }

  return {
    kind: 'storage',
    name: PLUGIN_NAME,
    flags: { persistent: true, searchable: true, presigned: true },
    address,
    getById,
    url,
    put,
    prepare,
    upload,
    get,
    find,
    async dispose() {
      lifetime.abort()
    },
  }
}

/**
 * The Arweave storage plugin factory.
 *
 * @example
 * const arlocal = await startArlocal()
 * const { jwk } = await createFundedWallet(undefined, arlocal.url)
 * const storage = arweaveStorage({ port: arlocal.port, wallet: jwk })
 * const ref = await storage.put(bytes, { contentType: 'application/json', tags: { 'Sertn-Request': key } })
 */
export const arweaveStorage = defineStoragePlugin<ArweaveStorageOptions>(createArweaveStorage)

/** The caller's tags, checked: non-empty, not reserved, within Arweave's size limit. */
function checkTags(options: PutOptions): [string, string][] {
  if (typeof options.contentType !== 'string' || options.contentType === '')
    throw new PluginError(PLUGIN_NAME, 'put: contentType must be a non-empty string')
  const tags = Object.entries(options.tags)
  for (const [name, value] of tags) {
    if (typeof value !== 'string' || name === '' || value === '')
      throw new PluginError(PLUGIN_NAME, `put: tag ${JSON.stringify(name)} must have a non-empty name and string value`)
    if (RESERVED_TAGS.includes(name.toLowerCase())) throw new PluginError(PLUGIN_NAME, `put: tag ${name} is set by the plugin itself`)
  }
  const own: [string, string][] = [
    [TAG_CONTENT_TYPE, options.contentType],
    [TAG_APP_NAME, APP_NAME],
    [TAG_SHA256, '0'.repeat(64)],
  ]
  const size = [...own, ...tags].reduce((n, [name, value]) => n + Buffer.byteLength(name) + Buffer.byteLength(value), 0)
  if (size > MAX_TAG_BYTES) throw new PluginError(PLUGIN_NAME, `put: tags take ${size} bytes, more than Arweave's ${MAX_TAG_BYTES}`)
  return tags
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** `data_size` of a transaction's JSON, or -1. */
function dataSize(body: Uint8Array): number {
  try {
    const tx = JSON.parse(new TextDecoder().decode(body)) as { data_size?: unknown }
    const n = Number(tx.data_size)
    return Number.isSafeInteger(n) ? n : -1
  } catch {
    return -1
  }
}
