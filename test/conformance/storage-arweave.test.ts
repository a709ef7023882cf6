import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { testStoragePlugin } from '../../core/conformance/storage.ts'
import { IntegrityError, PluginError } from '../../core/errors.ts'
import {
  type ArlocalInstance,
  type ArweaveStorageOptions,
  arweaveStorage,
  createArweaveStorage,
  createFundedWallet,
  type JWKInterface,
  loadOrCreateLocalWallet,
  startArlocal,
} from '../../plugins/storage/arweave/index.ts'

// One arlocal (a child process on 127.0.0.1, temporary database) for the whole file.
let arlocal: ArlocalInstance | undefined
let wallet: JWKInterface
const started = () => arlocal as ArlocalInstance

beforeAll(async () => {
  arlocal = await startArlocal()
  wallet = (await createFundedWallet(undefined, arlocal.url)).jwk
})
afterAll(async () => {
  await arlocal?.stop()
})

testStoragePlugin({
  name: 'arweave',
  create: () => arweaveStorage({ port: started().port, wallet, timeoutMs: 20_000 }),
})

describe('arweave specifics', () => {
  const opened: { dispose(): Promise<void> }[] = []
  const storage = (options: Partial<ArweaveStorageOptions> = {}) => {
    const s = createArweaveStorage({ port: started().port, wallet, timeoutMs: 20_000, ...options })
    opened.push(s)
    return s
  }
  afterAll(async () => {
    await Promise.allSettled(opened.map((s) => s.dispose()))
  })

  test('behavior: prepare fixes the id before anything is sent; upload makes it readable, and again is a success', async () => {
    const s = storage()
    const data = randomBytes(3072)
    const prepared = await s.prepare!(data, { ...bin, tags: { 'Sertn-Request': randomUUID() } })
    expect(prepared.artifact).toMatchObject({ storage: 'arweave', bytes: 3072 })
    expect(prepared.artifact.id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    await expect(s.get(prepared.artifact)).rejects.toMatchObject({ name: 'PluginError', retryable: true })
    expect(await s.upload!(prepared)).toEqual(prepared.artifact)
    expect(Buffer.from(await s.get(prepared.artifact)).equals(data)).toBe(true)
    expect(await s.upload!(prepared)).toEqual(prepared.artifact)
  })

  test('error: upload refuses a payload that is not the prepared artifact', async () => {
    const s = storage()
    const a = await s.prepare!(randomBytes(10), { ...bin, tags: {} })
    const b = await s.prepare!(randomBytes(10), { ...bin, tags: {} })
    await expect(s.upload!({ artifact: a.artifact, payload: b.payload })).rejects.toThrow(/not /)
  })

  test('behavior: data over maxInlineBytes goes up in 256 KiB chunks and reads back', async () => {
    const s = storage({ maxInlineBytes: 64 * 1024 })
    const data = randomBytes(700_000)
    const ref = await s.put(data, { ...bin, tags: {} })
    expect(Buffer.from(await s.get(ref)).equals(data)).toBe(true)
  })

  test('behavior: the transaction carries Content-Type, App-Name, Sertn-Sha256 and the tags', async () => {
    const s = storage()
    const request = randomUUID()
    const ref = await s.put(randomBytes(10), { contentType: 'application/json', tags: { 'Sertn-Request': request } })
    const tx = (await (await fetch(`${started().url}/tx/${ref.id}`)).json()) as { tags: { name: string; value: string }[] }
    const tags = Object.fromEntries(tx.tags.map((t) => [b64(t.name), b64(t.value)]))
    expect(tags).toEqual({ 'Content-Type': 'application/json', 'App-Name': 'Sertn', 'Sertn-Sha256': ref.sha256, 'Sertn-Request': request })
  })

  test('behavior: mineAfterPost puts the write in a block at once', async () => {
    const status = async (id: string) => (await fetch(`${started().url}/tx/${id}/status`)).text()
    const pending = await storage().put(randomBytes(10), { ...bin, tags: {} })
    expect(await status(pending.id)).toBe('Pending')
    const mined = await storage({ mineAfterPost: true }).put(randomBytes(10), { ...bin, tags: {} })
    expect(JSON.parse(await status(mined.id))).toMatchObject({
      block_indep_hash: expect.any(String),
      number_of_confirmations: expect.any(Number),
    })
  })

  test("behavior: find ignores another wallet's transactions with the same tags", async () => {
    const mine = storage()
    const theirs = storage({ wallet: (await createFundedWallet(undefined, started().url)).jwk })
    const tags = { 'Sertn-Request': randomUUID() }
    const ours = await mine.put(randomBytes(10), { ...bin, tags })
    const other = await theirs.put(randomBytes(10), { ...bin, tags })
    expect(await mine.find(tags)).toEqual([ours])
    expect(await theirs.find(tags)).toEqual([other])
    expect((await storage({ owners: [mine.address, theirs.address] }).find(tags)).map((r) => r.id).sort()).toEqual(
      [ours.id, other.id].sort(),
    )
  })

  test('behavior: arlocal listens on 127.0.0.1 only', async () => {
    expect((await fetch(`${started().url}/info`)).ok).toBe(true)
    await expect(fetch(`http://127.0.0.2:${started().port}/info`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow()
  })

  test('error: empty, reserved or oversized tags are refused (not retryable)', async () => {
    const s = storage()
    const bad: Record<string, string>[] = [
      { '': 'x' },
      { 'Sertn-X': '' },
      { 'Sertn-Sha256': 'f'.repeat(64) },
      { 'content-type': 'text/plain' },
      { 'Sertn-X': 'y'.repeat(3000) },
    ]
    for (const tags of bad) {
      const err = await s.put(randomBytes(4), { ...bin, tags }).catch((e: unknown) => e)
      expect(err, JSON.stringify(Object.keys(tags))).toBeInstanceOf(PluginError)
      expect(err).toMatchObject({ plugin: 'arweave', retryable: false })
    }
    await expect(s.put(randomBytes(4), { contentType: '', tags: {} })).rejects.toMatchObject({ retryable: false })
  })

  test('error: a wallet without funds is refused (not retryable)', async () => {
    const poor = storage({ wallet: (await createFundedWallet(undefined, started().url, 0n)).jwk })
    await expect(poor.put(randomBytes(5000), { ...bin, tags: {} })).rejects.toMatchObject({ name: 'PluginError', retryable: false })
  })

  test('error: a wallet that is not an RSA private JWK fails at creation', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sertn-wallet-'))
    try {
      writeFileSync(join(dir, 'bad.json'), JSON.stringify({ kty: 'RSA', n: 'x', e: 'AQAB' }))
      expect(() => arweaveStorage({ wallet: join(dir, 'bad.json') })).toThrow(/lacks d/)
      expect(() => arweaveStorage({ wallet: join(dir, 'missing.json') })).toThrow(PluginError)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('error: a ref of another storage is refused, a malformed id too', async () => {
    const s = storage()
    const ref = await s.put(randomBytes(3), { ...bin, tags: {} })
    await expect(s.get({ ...ref, storage: 'ipfs' })).rejects.toMatchObject({ retryable: false })
    await expect(s.get({ ...ref, id: '../info' })).rejects.toMatchObject({ retryable: false })
  })
})

describe('arlocal with persistDir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sertn-arlocal-persist-'))
  let local: ArlocalInstance | undefined
  afterAll(async () => {
    await local?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('behavior: data, index and wallet survive a restart; reads fail retryably while it is down', async () => {
    local = await startArlocal({ persistDir: dir })
    const walletPath = join(dir, 'wallet.json')
    const first = await loadOrCreateLocalWallet(local.url, walletPath)
    expect(first.created).toBe(true)
    let s = createArweaveStorage({ port: local.port, wallet: walletPath, timeoutMs: 5000 })
    const data = randomBytes(2048)
    const tags = { 'Sertn-Request': randomUUID() }
    const ref = await s.put(data, { ...bin, tags })
    const port = local.port
    await local.stop()

    const down = await s.get(ref).catch((e: unknown) => e)
    expect(down).toBeInstanceOf(PluginError)
    expect(down).toMatchObject({ retryable: true })
    expect(down).not.toBeInstanceOf(IntegrityError)
    await s.dispose()

    local = await startArlocal({ persistDir: dir, port })
    const again = await loadOrCreateLocalWallet(local.url, walletPath)
    expect(again).toMatchObject({ created: false, address: first.address })
    s = createArweaveStorage({ port: local.port, wallet: walletPath })
    expect(Buffer.from(await s.get(ref)).equals(data)).toBe(true)
    expect(await s.find(tags)).toEqual([ref])
    const more = randomBytes(10)
    expect(Buffer.from(await s.get(await s.put(more, { ...bin, tags: {} }))).equals(more)).toBe(true)
    await s.dispose()
  })
})

const bin = { contentType: 'application/octet-stream' }

function b64(s: string): string {
  return Buffer.from(s, 'base64url').toString('utf8')
}
