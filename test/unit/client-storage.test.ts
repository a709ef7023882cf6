/**
 * The client's small parts: log reads in bounded block ranges, and its read-only storage (by a
 * fetch function or an HTTP gateway), which checks recorded hashes and never writes.
 */
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readChunked } from '../../client/internal.ts'
import { storageReader } from '../../client/index.ts'
import { IntegrityError, PluginError } from '../../core/errors.ts'

const ID = 'A'.repeat(43)
const DATA = new TextEncoder().encode('proof bytes')
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe('readChunked', () => {
  test('default: [from, to] in ranges of at most `range` blocks, in order', async () => {
    const calls: [bigint, bigint][] = []
    const out = await readChunked(3n, 12n, 4n, async (a, b) => {
      calls.push([a, b])
      return [a]
    })
    expect(calls).toEqual([
      [3n, 6n],
      [7n, 10n],
      [11n, 12n],
    ])
    expect(out).toEqual([3n, 7n, 11n])
  })

  test('behavior: an empty span reads nothing; no range means the default', async () => {
    expect(await readChunked(5n, 4n, 10n, async () => [1])).toEqual([])
    const calls: bigint[] = []
    await readChunked(0n, 12_000n, undefined, async (a) => {
      calls.push(a)
      return []
    })
    expect(calls).toEqual([0n, 5_000n, 10_000n])
  })
})

describe('storageReader', () => {
  let server: Server
  let url: string
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === `/${ID}`) res.end(Buffer.from(DATA))
      else res.writeHead(404).end()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((r) => server.close(() => r())))

  test('default: reads by id from a gateway, checked against the recorded hash', async () => {
    const s = storageReader({ gatewayUrl: `${url}/` })
    expect(await s.get({ storage: 'arweave', id: ID, sha256: sha(DATA), bytes: DATA.length })).toEqual(new Uint8Array(DATA))
    expect(await s.getById!(ID, { maxBytes: 100 })).toEqual(new Uint8Array(DATA))
    await s.dispose()
  })

  test('error: wrong bytes, too many bytes, a missing id, a write', async () => {
    const s = storageReader({ fetch: async () => DATA })
    await expect(s.get({ storage: 'arweave', id: ID, sha256: sha(new Uint8Array([1])), bytes: 1 })).rejects.toBeInstanceOf(IntegrityError)
    await expect(s.getById!(ID, { maxBytes: 3 })).rejects.toThrow(/more than the 3 expected/)
    await expect(s.put(DATA, { contentType: 'x', tags: {} })).rejects.toBeInstanceOf(PluginError)
    const http = storageReader({ gatewayUrl: url })
    await expect(http.getById!('B'.repeat(43), { maxBytes: 100 })).rejects.toMatchObject({
      retryable: true,
      message: expect.stringMatching(/not found/),
    })
    await expect(http.getById!('not-an-id', { maxBytes: 100 })).rejects.toBeInstanceOf(PluginError)
  })
})
