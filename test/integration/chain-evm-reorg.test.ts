/**
 * The EVM chain plugin's watcher across reorgs on a real anvil (`anvil_reorg`): a reorg within the
 * confirmations is invisible; a deeper one rewinds the cursor to the common ancestor and rescans, so
 * a request replayed into another block is delivered again under the same key and a request whose
 * transaction was dropped is not.
 *
 * anvil 1.7.1's `anvil_reorg` takes positional params `[depth, [[tx, blockOffset], …]]`: it drops
 * the newest `depth` blocks and mines `depth` new ones (the head number stays the same), putting each
 * listed transaction (raw signed bytes, or a JSON request that anvil signs) into new block
 * `head - depth + 1 + blockOffset`. Transactions of the dropped blocks that are not listed are gone
 * (not returned to the pool).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEventLogs, toHex, type Hex } from 'viem'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import { anvilAccount } from '../../chains/evm/clients.ts'
import {
  evmChain,
  FileCursorStore,
  MemoryCursorStore,
  type CursorStore,
  type EvmChainOptions,
  type ReorgInfo,
} from '../../chains/evm/plugin/index.ts'
import type { ChainPlugin, WatchCursor } from '../../core/plugins.ts'
import type { InferenceRequest } from '../../core/types.ts'
import { startTestChain, type TestChain, waitUntil } from '../support/chain.ts'

const GAS = 100_000

let t: TestChain
let dir: string
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  t = await startTestChain()
  dir = await mkdtemp(join(tmpdir(), 'sertn-reorg-'))
})

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined)
  await t?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

// ─────────────────────────────── helpers ───────────────────────────────

const rpc = <T = unknown>(method: string, params: unknown[]) =>
  t.owner.request({ method: method as never, params: params as never }) as Promise<T>
const mine = (n = 1) => rpc('anvil_mine', [toHex(n)])
const head = () => t.owner.getBlockNumber({ cacheTime: 0 })
const rawTx = (hash: Hex) => rpc<Hex>('eth_getRawTransactionByHash', [hash])
/** Replaces the newest `depth` blocks; `replay` puts raw transactions into the new blocks (offset 0 = the first new block). */
const reorg = (depth: number, replay: [Hex, number][] = []) => rpc('anvil_reorg', [depth, replay])
const blockHash = async (n: bigint) => (await t.owner.getBlock({ blockNumber: n })).hash

const settle = () => new Promise((r) => setTimeout(r, 200))

function plugin(o: Partial<EvmChainOptions> & { cursorStore: CursorStore; watcherKey: string }) {
  const reorgs: ReorgInfo[] = []
  const p: ChainPlugin = evmChain({
    chainName: 'anvil',
    chainId: t.anvil.chain.id,
    rpcUrl: t.anvil.rpcUrl,
    gateway: t.core.gateway,
    account: anvilAccount(1),
    pollingIntervalMs: 20,
    onReorg: (info) => reorgs.push(info),
    onWatchError: (err) => console.warn('watch error', err),
    ...o,
  })
  cleanups.push(() => p.dispose())
  return { p, reorgs }
}

function watch(p: ChainPlugin, fromBlock?: bigint) {
  const seen: InferenceRequest[] = []
  const controller = new AbortController()
  const done = p.watchRequests({ signal: controller.signal, fromBlock, onRequest: async (r) => void seen.push(r) })
  done.catch(() => undefined)
  const stop = async () => {
    controller.abort()
    await done
  }
  cleanups.push(() => stop().catch(() => undefined))
  return { seen, done, stop }
}

async function request(input: bigint[]): Promise<{ id: bigint; block: bigint; hash: Hex }> {
  const value = await t.user.readContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'quote',
    args: [t.demo.modelId, GAS],
  })
  const hash = await t.user.writeContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'requestInference',
    args: [t.demo.modelId, input, GAS],
    value,
    gas: 500_000n,
  })
  const receipt = await t.user.waitForTransactionReceipt({ hash })
  const [log] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  return { id: log!.args.requestId, block: receipt.blockNumber, hash }
}

/** Every remembered hash is the chain's hash at that height, and the newest is the cursor block's. */
async function expectCursorOnChain(cursor: WatchCursor | undefined) {
  expect(cursor).toBeDefined()
  expect(cursor!.recentHashes.at(-1)?.number).toBe(cursor!.blockNumber)
  for (const { number, hash } of cursor!.recentHashes) expect(hash).toBe(await blockHash(BigInt(number)))
}

// ─────────────────────────────── tests ─────────────────────────────────

describe('reorgs', () => {
  test('behavior: a reorg shallower than the confirmations is invisible: the request is delivered exactly once, from its new block', async () => {
    const store = new MemoryCursorStore()
    const { p, reorgs } = plugin({ cursorStore: store, confirmations: 3, watcherKey: 'shallow' })
    const w = watch(p, (await head()) - 3n) // a few (empty) blocks back, so the cursor visibly reaches B-2
    const r = await request([1n, 1n, 1n, 1n])
    await mine(1) // head B+1
    await waitUntil('cursor at B-2', () => store.peek('shallow')?.blockNumber === (r.block - 2n).toString())

    // Replace B and B+1; the request moves to the new B+1.
    await reorg(2, [[await rawTx(r.hash), 1]])
    const moved = await t.owner.getTransactionReceipt({ hash: r.hash })
    expect(moved.blockNumber).toBe(r.block + 1n)
    expect(w.seen).toEqual([])

    await mine(3) // three on top of B+1
    await waitUntil('the delivery', () => w.seen.length === 1)
    await mine(2)
    await waitUntil('cursor at head-3', async () => store.peek('shallow')?.blockNumber === ((await head()) - 3n).toString())
    await settle()
    await w.stop()

    expect(w.seen).toHaveLength(1)
    expect(w.seen[0]!.requestId).toBe(r.id.toString())
    expect(w.seen[0]!.seenAt).toEqual({
      blockNumber: (r.block + 1n).toString(),
      blockHash: await blockHash(r.block + 1n),
      transactionHash: r.hash,
      logIndex: 0,
    })
    expect(reorgs).toEqual([])
    await expectCursorOnChain(store.peek('shallow'))
  })

  test('behavior: a reorg deeper than the confirmations rewinds to the common ancestor: a replayed request comes again with the same key, a dropped one does not', async () => {
    const store = new MemoryCursorStore()
    const { p, reorgs } = plugin({ cursorStore: store, confirmations: 1, watcherKey: 'deep' })
    const w = watch(p, (await head()) + 1n)
    const r1 = await request([2n, 2n, 2n, 2n]) // block B
    const r2 = await request([3n, 3n, 3n, 3n]) // block B+1
    expect(r2.block).toBe(r1.block + 1n)
    await mine(1) // head B+2: both confirmed
    await waitUntil('both deliveries', () => w.seen.length === 2)
    await waitUntil('cursor at B+1', () => store.peek('deep')?.blockNumber === r2.block.toString())
    const firstSeen = w.seen[0]!

    // Replace B, B+1, B+2: r1 is replayed into the new B+1, r2 is dropped.
    const B = r1.block
    await reorg(3, [[await rawTx(r1.hash), 1]])
    expect((await t.owner.getTransactionReceipt({ hash: r1.hash })).blockNumber).toBe(B + 1n)
    await expect(t.owner.getTransactionReceipt({ hash: r2.hash })).rejects.toThrow()
    expect(await head()).toBe(B + 2n)

    await waitUntil('the re-delivery', () => w.seen.length === 3)
    await mine(2)
    await waitUntil('cursor at head-1', async () => store.peek('deep')?.blockNumber === ((await head()) - 1n).toString())
    await settle()
    await w.stop()

    // Delivered: r1 (B), r2 (B+1), then r1 again from the new B+1 under the same key.
    expect(w.seen.map((r) => r.requestId)).toEqual([r1.id, r2.id, r1.id].map(String))
    const again = w.seen[2]!
    expect(again.key).toBe(firstSeen.key)
    // The same request, except where and when it was mined: the deadline (block time + timeout) moved too.
    expect({ ...again, seenAt: undefined, deadline: undefined }).toEqual({ ...firstSeen, seenAt: undefined, deadline: undefined })
    expect(again.deadline).toBe((await p.getRequestState(again.requestId)).deadline)
    expect(again.seenAt).toEqual({
      blockNumber: (B + 1n).toString(),
      blockHash: await blockHash(B + 1n),
      transactionHash: r1.hash,
      logIndex: 0,
    })
    expect(again.seenAt.blockHash).not.toBe(firstSeen.seenAt.blockHash)
    // Deduped by key (as the workflow id does): one workflow per request; the dropped one is gone on-chain.
    const byKey = new Map(w.seen.map((r) => [r.key, r]))
    expect(byKey.size).toBe(2)
    expect((await p.getRequestState(w.seen[0]!.requestId)).status).toBe('Pending')
    expect((await p.getRequestState(w.seen[1]!.requestId)).status).toBe('None')
    // The cursor rewound to B-1 (the common ancestor), once, then moved on along the new chain.
    expect(reorgs).toEqual([{ from: B + 1n, to: B - 1n, commonAncestorFound: true }])
    await expectCursorOnChain(store.peek('deep'))
  })

  test('behavior: the id of a dropped request is reused by the next request: same key, another transaction (dedupe by key alone would drop it)', async () => {
    const store = new MemoryCursorStore()
    const { p, reorgs } = plugin({ cursorStore: store, confirmations: 1, watcherKey: 'reuse' })
    const w = watch(p, (await head()) + 1n)
    const dropped = await request([4n, 4n, 4n, 4n])
    await mine(1)
    await waitUntil('the delivery', () => w.seen.length === 1)
    await reorg(2) // drops it
    await waitUntil('the rewind', () => reorgs.length === 1)
    const next = await request([5n, 5n, 5n, 5n])
    await mine(1)
    await waitUntil('the next request', () => w.seen.length === 2)
    await w.stop()
    expect(next.id).toBe(dropped.id)
    expect(w.seen[1]!.key).toBe(w.seen[0]!.key)
    expect(w.seen[1]!.input).toEqual(['5', '5', '5', '5'])
    expect(w.seen[1]!.seenAt.transactionHash).not.toBe(w.seen[0]!.seenAt.transactionHash)
  })

  test('behavior: a watcher restarted on a FileCursorStore after a reorg that happened while it was stopped rewinds and re-delivers', async () => {
    const store = new FileCursorStore(join(dir, 'restart'))
    const key = 'restart'
    const a = plugin({ cursorStore: store, confirmations: 1, watcherKey: key })
    const wa = watch(a.p, (await head()) - 5n) // remembers the hashes of a few blocks before the request's
    const r = await request([6n, 6n, 6n, 6n]) // block B
    const mineOf = (seen: InferenceRequest[]) => seen.filter((x) => x.requestId === r.id.toString())
    await mine(1)
    await waitUntil('the delivery', () => mineOf(wa.seen).length === 1)
    await waitUntil('cursor at B', async () => (await store.load(key))?.blockNumber === r.block.toString())
    await wa.stop()
    const before = await store.load(key)

    // While stopped: replace B-1, B, B+1; the request moves to the new B+1.
    const hashAt = async (n: bigint) => (await t.owner.getBlock({ blockNumber: n })).hash
    const beforeReorg = await hashAt(r.block - 1n)
    await reorg(3, [[await rawTx(r.hash), 2]])
    // The common ancestor: B-2, unless the new B-1 came out identical to the old (an empty block on
    // the same parent at the same time hashes the same: then B-1 is still common).
    const commonAncestor = (await hashAt(r.block - 1n)) === beforeReorg ? r.block - 1n : r.block - 2n
    expect((await t.owner.getTransactionReceipt({ hash: r.hash })).blockNumber).toBe(r.block + 1n)
    await mine(1)

    const b = plugin({ cursorStore: new FileCursorStore(join(dir, 'restart')), confirmations: 1, watcherKey: key })
    const wb = watch(b.p)
    await waitUntil('the re-delivery', () => wb.seen.length === 1)
    await settle()
    await wb.stop()
    expect(b.reorgs).toEqual([{ from: r.block, to: commonAncestor, commonAncestorFound: true }])
    expect(wb.seen).toHaveLength(1)
    expect(wb.seen[0]!.key).toBe(mineOf(wa.seen)[0]!.key)
    expect(wb.seen[0]!.seenAt.blockNumber).toBe((r.block + 1n).toString())
    // The saved cursor kept the ancestor's hash and replaced the rest with the new chain's.
    const after = await store.load(key)
    await expectCursorOnChain(after)
    const ancestor = (r.block - 2n).toString()
    expect(after!.recentHashes.find((h) => h.number === ancestor)).toEqual(before!.recentHashes.find((h) => h.number === ancestor))
  })

  test('behavior: a reorg deeper than the remembered hashes rewinds to just before the oldest one and says so', async () => {
    const store = new MemoryCursorStore()
    const { p, reorgs } = plugin({ cursorStore: store, confirmations: 1, reorgDepth: 2, watcherKey: 'too-deep' })
    const w = watch(p, (await head()) + 1n)
    const r = await request([7n, 7n, 7n, 7n])
    await mine(5)
    const cursorBlock = (await head()) - 1n
    await waitUntil('cursor at head-1', () => store.peek('too-deep')?.blockNumber === cursorBlock.toString())
    // Two hashes: the cursor block's and the request block's (blocks further from the head than
    // reorgDepth are remembered only when they held requests or ended a scan).
    const remembered = store.peek('too-deep')!.recentHashes.map((h) => BigInt(h.number))
    expect(remembered).toHaveLength(2)
    expect(remembered.at(-1)).toBe(cursorBlock)
    expect(remembered[0]).toBeGreaterThanOrEqual(r.block)
    await reorg(Number(cursorBlock - r.block) + 3)
    await waitUntil('the rewind', () => reorgs.length === 1)
    await w.stop()
    expect(reorgs[0]).toEqual({ from: cursorBlock, to: remembered[0]! - 1n, commonAncestorFound: false })
    // The request's dropped block lies below the guess: it is not delivered again.
    expect(w.seen).toHaveLength(1)
  })
})
