/**
 * Retry requests between `sertn relay retry` and the relay (plugins/messengers/retry.ts): a request
 * left while no relay runs waits, is applied once the relay serves requests (at once on start),
 * through the agents' requeue, and removed; a half-written request (a temp file) is never taken.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { pendingRetryRequests, retryDirOf, serveRetryRequests, writeRetryRequest } from '../../plugins/messengers/retry.ts'
import { waitUntil } from '../support/chain.ts'

const A = `0x${'aa'.repeat(32)}` as Hex
const B = `0x${'bb'.repeat(32)}` as Hex
let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-retry-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('retry requests', () => {
  test('default: a request left while no relay runs is applied when the relay starts serving, then removed', async () => {
    await writeRetryRequest(dir, [A])
    await writeRetryRequest(dir, [B, A])
    // A temp file of a write in progress is not a request.
    await writeFile(join(retryDirOf(dir), '1.json.123.abcd.tmp'), '{')
    expect((await pendingRetryRequests(dir)).map((r) => r.request.ids)).toEqual([[A], [B, A]])

    const calls: (readonly Hex[])[] = []
    const applied: [readonly Hex[], number][] = []
    const stop = new AbortController()
    const loop = serveRetryRequests(
      dir,
      async (ids) => {
        calls.push(ids)
        return ids.length
      },
      { signal: stop.signal, intervalMs: 20, onApplied: (ids, moved) => applied.push([ids, moved]) },
    )
    await waitUntil('both requests applied', () => applied.length === 2)
    expect(calls).toEqual([[A], [B, A]])
    expect(await pendingRetryRequests(dir)).toEqual([])
    expect(await readdir(retryDirOf(dir))).toEqual(['1.json.123.abcd.tmp'])

    // A request made while it runs is taken within a poll.
    await writeRetryRequest(dir, [B])
    await waitUntil('the new request applied', () => applied.length === 3)
    expect(calls.at(-1)).toEqual([B])
    stop.abort()
    await loop.done
  })

  test('behavior: a requeue that fails leaves the request for the next poll', async () => {
    await writeRetryRequest(dir, [A])
    let failures = 1
    const errors: unknown[] = []
    const stop = new AbortController()
    const loop = serveRetryRequests(
      dir,
      async (ids) => {
        if (failures-- > 0) throw new Error('agents busy')
        return ids.length
      },
      { signal: stop.signal, intervalMs: 20, onError: (e) => errors.push(e) },
    )
    await waitUntil('the request applied on the second try', async () => (await pendingRetryRequests(dir)).length === 0)
    expect(String(errors[0])).toMatch(/agents busy/)
    stop.abort()
    await loop.done
  })
})
