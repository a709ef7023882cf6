/**
 * The conformance suite of StoragePlugin: round trips of binary data (empty, small, about 1 MB),
 * the reported sha256 and size, integrity checks on read, search by tags (searchable plugins),
 * reads of unknown artifacts, persistence across instances (persistent plugins), and dispose.
 *
 * @example
 * // test/conformance/storage-arweave.test.ts
 * testStoragePlugin({ name: 'arweave', create: async () => arweaveStorage({ port, wallet }), cleanup: () => arlocal.stop() })
 *
 * Every run tags its writes with a fresh `Sertn-Conformance-Run` value, so that persistent stores
 * shared between runs do not disturb the search tests.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IntegrityError, PluginError } from '../errors.ts'
import type { PutOptions, StoragePlugin } from '../plugins.ts'
import type { StoredArtifact } from '../types.ts'

export interface StorageConformanceOptions {
  /** The plugin's name (`StoragePlugin.name` and `StoredArtifact.storage`), also the suite's title. */
  readonly name: string
  /** A fresh instance; the suite disposes every instance it creates. */
  readonly create: () => Promise<StoragePlugin> | StoragePlugin
  /** Runs after every instance is disposed, even when the suite failed. */
  readonly cleanup?: () => Promise<void>
  /**
   * A ref to an artifact the store has never held, made from one it holds (default: the same ref
   * with the first character of its id changed).
   */
  readonly unknownRef?: (written: StoredArtifact) => StoredArtifact
  /** Size of the large round trip, in bytes (default 1 MiB). */
  readonly largeBytes?: number
}

const RUN_TAG = 'Sertn-Conformance-Run'
const KIND_TAG = 'Sertn-Conformance-Kind'

/** Declares the suite (a vitest `describe`) for one storage plugin. */
export function testStoragePlugin(options: StorageConformanceOptions): void {
  describe(`StoragePlugin conformance: ${options.name}`, () => {
    const run = randomUUID()
    const created: StoragePlugin[] = []
    let storage: StoragePlugin
    const create = async (): Promise<StoragePlugin> => {
      const p = await options.create()
      created.push(p)
      return p
    }
    const put = (data: Uint8Array, tags: Record<string, string> = {}, contentType = 'application/octet-stream') =>
      storage.put(data, { contentType, tags: { [RUN_TAG]: run, ...tags } } satisfies PutOptions)
    const unknownRef =
      options.unknownRef ?? ((ref: StoredArtifact) => ({ ...ref, id: `${ref.id.startsWith('A') ? 'B' : 'A'}${ref.id.slice(1)}` }))

    beforeAll(async () => {
      storage = await create()
    })

    afterAll(async () => {
      try {
        await Promise.allSettled(created.map((p) => p.dispose()))
      } finally {
        await options.cleanup?.()
      }
    })

    it('default: put then get returns the same bytes, with sha256, size and storage name', async () => {
      const data = randomBytes(1000)
      const ref = await put(data)
      expect(ref).toMatchObject({ storage: options.name, sha256: sha256Hex(data), bytes: 1000 })
      expect(ref.id).toBeTypeOf('string')
      expect(ref.id.length).toBeGreaterThan(0)
      expect(Buffer.from(await storage.get(ref))).toEqual(data)
    })

    it('default: a storage plugin with boolean flags', () => {
      expect(storage.kind).toBe('storage')
      expect(storage.name).toBe(options.name)
      expect(storage.flags.persistent).toBeTypeOf('boolean')
      expect(storage.flags.searchable).toBeTypeOf('boolean')
      if (storage.flags.searchable) expect(storage.find).toBeTypeOf('function')
    })

    it('behavior: empty data round-trips', async () => {
      const ref = await put(new Uint8Array(0))
      expect(ref).toMatchObject({ sha256: sha256Hex(new Uint8Array(0)), bytes: 0 })
      expect((await storage.get(ref)).byteLength).toBe(0)
    })

    it('behavior: every byte value round-trips, as a Uint8Array', async () => {
      const data = Uint8Array.from({ length: 512 }, (_, i) => (i * 7 + 3) % 256)
      const ref = await put(data)
      const back = await storage.get(ref)
      expect(back).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true)
    })

    it('behavior: about 1 MB round-trips, with its sha256 and size', async () => {
      const size = options.largeBytes ?? 1024 * 1024
      const data = randomBytes(size)
      const ref = await put(data)
      expect(ref.bytes).toBe(size)
      expect(ref.sha256).toBe(sha256Hex(data))
      expect(Buffer.from(await storage.get(ref)).equals(data)).toBe(true)
    })

    it('behavior: the same bytes put twice read back from either ref', async () => {
      const data = randomBytes(64)
      const [a, b] = [await put(data), await put(data)]
      expect(a.sha256).toBe(b.sha256)
      expect(Buffer.from(await storage.get(a)).equals(data)).toBe(true)
      expect(Buffer.from(await storage.get(b)).equals(data)).toBe(true)
    })

    it('behavior: concurrent puts each read back their own bytes', async () => {
      const datas = [0, 1, 2, 3].map(() => randomBytes(2000))
      const refs = await Promise.all(datas.map((d) => put(d)))
      expect(new Set(refs.map((r) => r.id)).size).toBe(datas.length)
      for (const [i, ref] of refs.entries()) expect(Buffer.from(await storage.get(ref)).equals(datas[i] as Buffer)).toBe(true)
    })

    it('behavior: find returns exactly the artifacts carrying all the tags (skipped for plugins not flagged searchable)', async (ctx) => {
      if (!storage.flags.searchable || !storage.find) return ctx.skip()
      const find = storage.find.bind(storage)
      const search = randomUUID()
      const a = await put(randomBytes(10), { [KIND_TAG]: 'a', 'Sertn-Conformance-Search': search })
      const b = await put(randomBytes(20), { [KIND_TAG]: 'b', 'Sertn-Conformance-Search': search })
      const c = await put(randomBytes(30), { [KIND_TAG]: 'a', 'Sertn-Conformance-Search': search, 'Sertn-Conformance-Extra': '1' })
      const ids = async (tags: Record<string, string>) =>
        (await find({ [RUN_TAG]: run, 'Sertn-Conformance-Search': search, ...tags })).map((r) => r.id).sort()
      expect(await ids({})).toEqual([a.id, b.id, c.id].sort())
      expect(await ids({ [KIND_TAG]: 'a' })).toEqual([a.id, c.id].sort())
      expect(await ids({ [KIND_TAG]: 'b' })).toEqual([b.id])
      expect(await ids({ [KIND_TAG]: 'a', 'Sertn-Conformance-Extra': '1' })).toEqual([c.id])
      expect(await ids({ [KIND_TAG]: 'none' })).toEqual([])
      expect(await ids({ [KIND_TAG]: 'b', 'Sertn-Conformance-Extra': '1' })).toEqual([])
    })

    it('behavior: found artifacts have the sha256 and size of the put, and read back (skipped for plugins not flagged searchable)', async (ctx) => {
      if (!storage.flags.searchable || !storage.find) return ctx.skip()
      const data = randomBytes(333)
      const request = randomUUID()
      const ref = await put(data, { [KIND_TAG]: 'found', 'Sertn-Conformance-Request': request }, 'application/json')
      const found = await storage.find({ [RUN_TAG]: run, 'Sertn-Conformance-Request': request })
      expect(found).toEqual([ref])
      expect(Buffer.from(await storage.get(found[0] as StoredArtifact)).equals(data)).toBe(true)
    })

    it('behavior: getById reads an artifact by its id alone; an unknown id rejects retryably, a larger one than maxBytes rejects (skipped for plugins without getById)', async (ctx) => {
      if (!storage.getById) return ctx.skip()
      const data = randomBytes(700)
      const ref = await put(data)
      expect(Buffer.from(await storage.getById(ref.id, { maxBytes: 700 })).equals(data)).toBe(true)
      await expect(storage.getById(ref.id, { maxBytes: 699 })).rejects.toThrow(/699/)
      await expect(storage.getById(unknownRef(ref).id, { maxBytes: 1000 })).rejects.toMatchObject({ retryable: true })
    })

    it("behavior: a persistent store serves one instance's writes to a fresh instance (skipped for plugins not flagged persistent)", async (ctx) => {
      if (!storage.flags.persistent) return ctx.skip()
      const data = randomBytes(100)
      const ref = await put(data)
      const other = await create()
      expect(Buffer.from(await other.get(ref)).equals(data)).toBe(true)
    })

    it('error: a ref with a wrong sha256 throws IntegrityError (not retryable)', async () => {
      const data = randomBytes(50)
      const ref = await put(data)
      const wrong = { ...ref, sha256: sha256Hex(randomBytes(50)) }
      const err = await storage.get(wrong).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(IntegrityError)
      expect(err).toMatchObject({ retryable: false })
      // The artifact itself is fine.
      expect(Buffer.from(await storage.get(ref)).equals(data)).toBe(true)
    })

    it("error: another artifact's ref with this one's id throws IntegrityError", async () => {
      const [x, y] = [await put(randomBytes(40)), await put(randomBytes(41))]
      await expect(storage.get({ ...y, id: x.id })).rejects.toBeInstanceOf(IntegrityError)
    })

    it('error: an unknown artifact rejects with a retryable error', async () => {
      const ref = await put(randomBytes(16))
      const err = await storage.get(unknownRef(ref)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(Error)
      expect(err).not.toBeInstanceOf(IntegrityError)
      expect(err).toMatchObject({ retryable: true })
    })

    it('error: after dispose, put, get and find reject with PluginError; dispose is idempotent', async () => {
      const p = await create()
      const data = randomBytes(8)
      const ref = await p.put(data, { contentType: 'application/octet-stream', tags: { [RUN_TAG]: run } })
      await p.dispose()
      await expect(p.put(data, { contentType: 'application/octet-stream', tags: {} })).rejects.toBeInstanceOf(PluginError)
      await expect(p.get(ref)).rejects.toBeInstanceOf(PluginError)
      if (p.find) await expect(p.find({ [RUN_TAG]: run })).rejects.toBeInstanceOf(PluginError)
      await p.dispose()
      // Other instances are not affected.
      expect(Buffer.from(await storage.get(ref)).equals(data)).toBe(true)
    })
  })
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}
