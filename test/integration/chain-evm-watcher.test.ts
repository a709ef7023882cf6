/**
 * The EVM chain plugin's request watcher on a real anvil: confirmations, order, exactly-once
 * delivery in the steady state, and resuming from a file cursor after a stop or a failed delivery.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEventLogs, toHex, type Hex } from 'viem'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { evmChain, FileCursorStore, MemoryCursorStore, type CursorStore, type EvmChainOptions } from '../../chains/evm/plugin/index.ts'
import { PluginError } from '../../core/errors.ts'
import type { ChainPlugin } from '../../core/plugins.ts'
import { requestKey, type InferenceRequest } from '../../core/types.ts'
import { startTestChain, type TestChain, waitUntil } from '../support/chain.ts'

const GAS = 100_000
const INPUT = [1n, -2n, 3n, -4n]

let t: TestChain
let dir: string
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  t = await startTestChain()
  dir = await mkdtemp(join(tmpdir(), 'sertn-watcher-'))
})

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
  await setAutomine(true)
})

afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined)
  await t?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

// ─────────────────────────────── helpers ───────────────────────────────

const rpc = (method: string, params: unknown[]) => t.owner.request({ method: method as never, params: params as never })
const mine = (n = 1) => rpc('anvil_mine', [toHex(n)])
const setAutomine = async (on: boolean) => {
  if (t) await rpc('evm_setAutomine', [on])
}
const head = () => t.owner.getBlockNumber({ cacheTime: 0 })

function plugin(o: Partial<EvmChainOptions> & { cursorStore: CursorStore }): ChainPlugin {
  const p = evmChain({
    chainName: 'anvil',
    chainId: t.anvil.chain.id,
    rpcUrl: t.anvil.rpcUrl,
    gateway: t.core.gateway,
    account: anvilAccount(1),
    pollingIntervalMs: 20,
    onWatchError: (err) => console.warn('watch error', err),
    ...o,
  })
  cleanups.push(() => p.dispose())
  return p
}

/** Starts watching; returns the deliveries so far and a stop function that awaits the loop's end. */
function watch(p: ChainPlugin, opts: { fromBlock?: bigint; onRequest?: (r: InferenceRequest) => Promise<void> } = {}) {
  const seen: InferenceRequest[] = []
  const controller = new AbortController()
  const done = p.watchRequests({
    signal: controller.signal,
    fromBlock: opts.fromBlock,
    onRequest: async (r) => {
      seen.push(r)
      await opts.onRequest?.(r)
    },
  })
  done.catch(() => undefined)
  const stop = async () => {
    controller.abort()
    await done
  }
  cleanups.push(() => stop().catch(() => undefined))
  return { seen, done, stop }
}

const quote = () =>
  t.user.readContract({ address: t.core.gateway, abi: InferenceGateway.abi, functionName: 'quote', args: [t.demo.modelId, GAS] })

/** Sends a request from the user (an EOA); with automine on, waits for it and returns its id and block. */
async function sendRequest(input = INPUT): Promise<Hex> {
  return t.user.writeContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'requestInference',
    args: [t.demo.modelId, input, GAS],
    value: await quote(),
    gas: 500_000n,
  })
}

async function landed(hash: Hex): Promise<{ id: bigint; block: bigint; hash: Hex }> {
  const receipt = await t.user.waitForTransactionReceipt({ hash })
  expect(receipt.status).toBe('success')
  const [log] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  return { id: log!.args.requestId, block: receipt.blockNumber, hash }
}

const request = async (input = INPUT) => landed(await sendRequest(input))

const ids = (rs: InferenceRequest[]) => rs.map((r) => BigInt(r.requestId))

// ─────────────────────────────── tests ─────────────────────────────────

describe('confirmations and order', () => {
  test('behavior: a request is delivered only once `confirmations` blocks are mined on top of its block', async () => {
    const store = new MemoryCursorStore()
    const p = plugin({ cursorStore: store, confirmations: 2, watcherKey: 'confs' })
    // Start a few (empty) blocks back, so that the cursor visibly advances to B-2 first.
    const w = watch(p, { fromBlock: (await head()) - 3n })
    const cursor = () => BigInt(store.peek('confs')?.blockNumber ?? '-2')

    const r = await request([5n, 6n, -7n, 8n])
    // Head = B: B-2 is the newest confirmed block.
    await waitUntil('cursor at B-2', () => cursor() === r.block - 2n)
    await mine(1) // one block on top of B
    await waitUntil('cursor at B-1', () => cursor() === r.block - 1n)
    expect(w.seen).toEqual([])
    await mine(1) // two blocks on top of B
    await waitUntil('the delivery', () => w.seen.length === 1)
    await waitUntil('cursor at B', () => cursor() === r.block)

    const [got] = w.seen
    const block = await t.owner.getBlock({ blockNumber: r.block })
    const stored = await t.owner.readContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'getRequest',
      args: [r.id],
    })
    expect(got).toEqual({
      key: requestKey(t.anvil.chain.id, t.core.gateway, r.id),
      chainId: t.anvil.chain.id,
      gateway: t.core.gateway,
      requestId: r.id.toString(),
      modelId: t.demo.modelId,
      modelVersion: 1,
      requester: t.user.account.address,
      input: ['5', '6', '-7', '8'],
      callbackGasLimit: GAS,
      escrow: stored.escrow.toString(),
      deadline: Number(stored.deadline),
      seenAt: { blockNumber: r.block.toString(), blockHash: block.hash, transactionHash: r.hash, logIndex: 0 },
    })
    // The cursor remembers the hashes of the blocks it processed.
    expect(store.peek('confs')!.recentHashes.at(-1)).toEqual({ number: r.block.toString(), hash: block.hash })

    await mine(3)
    await waitUntil('cursor at head-2', async () => cursor() === (await head()) - 2n)
    expect(w.seen).toHaveLength(1)
    await w.stop()
  })

  test('behavior: many requests (several per block, across getLogs ranges) are delivered once each, in chain order', async () => {
    const start = (await head()) + 1n
    // 24 requests mined before the watcher starts: 1–5 per block, with empty blocks in between.
    await setAutomine(false)
    const hashes: Hex[] = []
    for (const perBlock of [1, 3, 5, 2, 4, 1, 5, 3]) {
      for (let i = 0; i < perBlock; i++) hashes.push(await sendRequest([BigInt(hashes.length), 0n, 0n, 0n]))
      await mine(1)
      if (perBlock % 3) await mine(perBlock % 3) // 0–2 empty blocks
    }
    await setAutomine(true)
    await mine(1) // confirms the last batch
    const before = await Promise.all(hashes.map(landed))

    const p = plugin({ cursorStore: new MemoryCursorStore(), confirmations: 1, maxBlockRange: 3, watcherKey: 'many' })
    const w = watch(p, { fromBlock: start })
    await waitUntil('the 24 earlier requests', () => w.seen.length >= 24)
    // 6 more while it watches.
    const live: { id: bigint }[] = []
    for (let i = 0; i < 6; i++) live.push(await request([100n + BigInt(i), 0n, 0n, 0n]))
    await mine(1)
    await waitUntil('all 30 requests', () => w.seen.length >= 30)
    await mine(2)
    await new Promise((r) => setTimeout(r, 200))
    await w.stop()

    expect(w.seen).toHaveLength(30)
    expect(ids(w.seen)).toEqual([...before, ...live].map((r) => r.id))
    expect(new Set(w.seen.map((r) => r.key)).size).toBe(30)
    expect(w.seen.slice(0, 24).map((r) => r.input[0])).toEqual(before.map((_, i) => String(i)))
    // Strictly increasing (block, logIndex).
    for (let i = 1; i < w.seen.length; i++) {
      const [a, b] = [w.seen[i - 1]!.seenAt, w.seen[i]!.seenAt]
      expect(BigInt(a.blockNumber) < BigInt(b.blockNumber) || (a.blockNumber === b.blockNumber && a.logIndex < b.logIndex)).toBe(true)
    }
    // Several per block really happened.
    expect(new Set(w.seen.slice(0, 24).map((r) => r.seenAt.blockNumber)).size).toBe(8)
  })

  test('behavior: with no cursor and no fromBlock it starts at the current head', async () => {
    const old = await request()
    await mine(2)
    const p = plugin({ cursorStore: new MemoryCursorStore(), confirmations: 1, watcherKey: 'from-head' })
    const w = watch(p)
    const fresh = await request()
    await mine(1)
    await waitUntil('the new request', () => w.seen.length >= 1)
    await mine(1)
    await new Promise((r) => setTimeout(r, 150))
    await w.stop()
    expect(ids(w.seen)).toEqual([fresh.id])
    expect(ids(w.seen)).not.toContain(old.id)
  })
})

describe('restarts', () => {
  test('behavior: a new watcher on the same FileCursorStore resumes after a stop and delivers only new requests', async () => {
    const store = new FileCursorStore(join(dir, 'resume'))
    const key = 'resume'
    const start = (await head()) + 1n
    const first = [await request(), await request(), await request()]
    await mine(1)

    const a = watch(plugin({ cursorStore: store, confirmations: 1, watcherKey: key }), { fromBlock: start })
    await waitUntil('the first three', () => a.seen.length === 3)
    await a.stop()
    expect(ids(a.seen)).toEqual(first.map((r) => r.id))

    // The cursor file: written atomically (no temp files left), at the last processed block.
    const files = await readdir(join(dir, 'resume'))
    expect(files).toEqual(['resume.cursor.json'])
    const saved = JSON.parse(await readFile(store.pathOf(key), 'utf8')) as {
      blockNumber: string
      recentHashes: { number: string; hash: Hex }[]
    }
    expect(BigInt(saved.blockNumber)).toBeGreaterThanOrEqual(first[2]!.block)
    const last = saved.recentHashes.at(-1)!
    expect(last.number).toBe(saved.blockNumber)
    expect(last.hash).toBe((await t.owner.getBlock({ blockNumber: BigInt(last.number) })).hash)
    expect(await store.load(key)).toEqual(saved)

    // While stopped: two more requests.
    const later = [await request(), await request()]
    await mine(1)

    // A fresh plugin (as after a process restart); the saved cursor wins over fromBlock.
    const b = watch(plugin({ cursorStore: new FileCursorStore(join(dir, 'resume')), confirmations: 1, watcherKey: key }), { fromBlock: 0n })
    await waitUntil('the later two', () => b.seen.length >= 2)
    await mine(1)
    await new Promise((r) => setTimeout(r, 150))
    await b.stop()
    expect(ids(b.seen)).toEqual(later.map((r) => r.id))
  })

  test('behavior: a failing onRequest ends the watch; a restart re-delivers the requests of that block only', async () => {
    const store = new FileCursorStore(join(dir, 'crash'))
    const key = 'crash'
    const start = (await head()) + 1n
    const r1 = await request()
    await setAutomine(false)
    const [h2, h3] = [await sendRequest(), await sendRequest()]
    await mine(1)
    await setAutomine(true)
    const [r2, r3] = [await landed(h2), await landed(h3)]
    expect(r2.block).toBe(r3.block)
    await mine(1)

    const boom = new Error('workflow service unavailable')
    const a = watch(plugin({ cursorStore: store, confirmations: 1, watcherKey: key }), {
      fromBlock: start,
      onRequest: async (r) => {
        if (BigInt(r.requestId) === r3.id) throw boom
      },
    })
    await expect(a.done).rejects.toBe(boom)
    expect(ids(a.seen)).toEqual([r1.id, r2.id, r3.id])
    // The cursor stopped after r1's block: r2 was delivered but its block was not finished.
    expect((await store.load(key))!.blockNumber).toBe(r1.block.toString())

    const b = watch(plugin({ cursorStore: store, confirmations: 1, watcherKey: key }))
    await waitUntil('the re-delivery', () => b.seen.length >= 2)
    await mine(1)
    await new Promise((r) => setTimeout(r, 150))
    await b.stop()
    expect(ids(b.seen)).toEqual([r2.id, r3.id])
  })
})

describe('lifecycle', () => {
  test('error: a second watcher on the same cursor key in one process is refused', async () => {
    const store = new MemoryCursorStore()
    const p = plugin({ cursorStore: store, watcherKey: 'dup' })
    const a = watch(p)
    await waitUntil('the first cursor', () => store.peek('dup') !== undefined)
    const b = watch(p)
    await expect(b.done).rejects.toBeInstanceOf(PluginError)
    // Another plugin instance on another store under the same key is fine…
    const c = watch(plugin({ cursorStore: new MemoryCursorStore(), watcherKey: 'dup' }))
    // …but two file stores on the same directory are one cursor.
    const d = watch(plugin({ cursorStore: new FileCursorStore(join(dir, 'dup')), watcherKey: 'dup' }))
    const e = watch(plugin({ cursorStore: new FileCursorStore(join(dir, 'dup')), watcherKey: 'dup' }))
    await expect(e.done).rejects.toBeInstanceOf(PluginError)
    await Promise.all([a.stop(), c.stop(), d.stop()])
  })

  test('behavior: dispose stops its watchers; later calls fail with PluginError', async () => {
    const store = new MemoryCursorStore()
    const p = plugin({ cursorStore: store, watcherKey: 'dispose' })
    const a = watch(p)
    await waitUntil('the first cursor', () => store.peek('dispose') !== undefined)
    await p.dispose()
    await a.done
    await expect(p.head()).rejects.toBeInstanceOf(PluginError)
    await expect(p.watchRequests({ signal: new AbortController().signal, onRequest: async () => undefined })).rejects.toBeInstanceOf(
      PluginError,
    )
  })

  test('error: an RPC that serves another chain id is a ConfigError', async () => {
    const p = evmChain({
      chainName: 'wrong',
      chainId: 1,
      rpcUrl: t.anvil.rpcUrl,
      gateway: t.core.gateway,
      account: anvilAccount(1),
      cursorStore: new MemoryCursorStore(),
      pollingIntervalMs: 20,
    })
    cleanups.push(() => p.dispose())
    await expect(p.watchRequests({ signal: new AbortController().signal, onRequest: async () => undefined })).rejects.toThrow(
      /serves chain 31337/,
    )
  })
})
