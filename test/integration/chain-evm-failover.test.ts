/**
 * A chain's RPC endpoints and log range as the configuration sets them, through the container's
 * EVM chain plugin on a real anvil: the primary is a TCP proxy in front of anvil and the fallback
 * anvil itself. With the proxy closed mid-run, the watcher keeps scanning and a node transaction is
 * still sent and mined, with no request lost and the failovers counted; `logRangeBlocks` bounds
 * every `eth_getLogs` of the watcher catching up.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Socket } from 'node:net'
import { createPublicClient, parseEventLogs, toHex, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { anvilPrivateKey, sertnTransport } from '../../chains/evm/clients.ts'
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import { parseConfig } from '../../core/config.ts'
import { TOKENS } from '../../core/di.ts'
import { metrics } from '../../core/metrics.ts'
import type { ChainPlugin } from '../../core/plugins.ts'
import type { InferenceRequest } from '../../core/types.ts'
import { buildContainer, type SertnContainer } from '../../workflows/worker/container.ts'
import { startTestChain, type TestChain, waitUntil } from '../support/chain.ts'
import { startRpcProxy, type RpcProxy } from '../support/rpc-proxy.ts'

const GAS = 100_000
const CHAIN = 'failover'

let t: TestChain
let proxy: RpcProxy
let dir: string
let built: SertnContainer
let chain: ChainPlugin
/** The block ranges of the `eth_getLogs` calls that went through the primary. */
const ranges: { from: bigint; to: bigint }[] = []
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  t = await startTestChain()
  dir = await mkdtemp(join(tmpdir(), 'sertn-failover-'))
  proxy = await startRpcProxy(t.anvil.port, {
    onRequest: ({ method, params }) => {
      const p = params[0] as { fromBlock?: Hex; toBlock?: Hex } | undefined
      if (method === 'eth_getLogs' && p?.fromBlock?.startsWith('0x') && p.toBlock?.startsWith('0x'))
        ranges.push({ from: BigInt(p.fromBlock), to: BigInt(p.toBlock) })
    },
  })
  const config = parseConfig({
    dataDir: dir,
    node: { privateKey: anvilPrivateKey(1) }, // t.node's account
    chains: {
      [CHAIN]: {
        chainId: t.anvil.chain.id,
        rpcUrl: proxy.url,
        fallbackRpcUrls: [t.anvil.rpcUrl],
        gateway: t.core.gateway,
        confirmations: 1,
        pollingIntervalMs: 50,
        logRangeBlocks: 3,
      },
    },
  })
  built = buildContainer(config)
  ;[chain] = built.container.resolve<ChainPlugin[]>(TOKENS.Chains) as [ChainPlugin]
})

afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined)
  await built?.dispose()
  await proxy?.stop()
  await t?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const rpc = (method: string, params: unknown[]) => t.owner.request({ method: method as never, params: params as never })
const mine = (n = 1) => rpc('anvil_mine', [toHex(n)])
const head = () => t.owner.getBlockNumber({ cacheTime: 0 })
const failovers = async () => (await metrics.rpcFailovers.get()).values.find((v) => v.labels.chain === CHAIN)?.value ?? 0

/** Sends a request from the user (automine) and returns its id. */
async function request(): Promise<bigint> {
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
    args: [t.demo.modelId, [1n, -2n, 3n, -4n], GAS],
    value,
    gas: 500_000n,
  })
  const receipt = await t.user.waitForTransactionReceipt({ hash })
  const [log] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  return log!.args.requestId
}

/** Watches from `fromBlock`; the deliveries and the watcher's errors so far. */
function watch(fromBlock: bigint) {
  const seen: InferenceRequest[] = []
  const errors: unknown[] = []
  const controller = new AbortController()
  const done = chain.watchRequests({
    signal: controller.signal,
    fromBlock,
    onRequest: async (r) => {
      seen.push(r)
    },
  })
  const ended = done.catch((err: unknown) => {
    errors.push(err)
  })
  const stop = async () => {
    controller.abort()
    await ended
  }
  cleanups.push(stop)
  return { seen, errors, stop }
}

const ids = (rs: InferenceRequest[]) => rs.map((r) => BigInt(r.requestId))

describe('configured RPC endpoints and log range', () => {
  test('behavior: logRangeBlocks 3: the watcher catches up over 10 blocks in ranges of at most 3 and finds every request', async () => {
    const from = (await head()) + 1n
    const sent: bigint[] = []
    for (let i = 0; i < 10; i++) {
      if (i % 3 === 0) sent.push(await request())
      else await mine(1)
    }
    await mine(1) // the confirmation of the last block
    const before = ranges.length
    const w = watch(from)
    await waitUntil('every request', () => w.seen.length >= sent.length, 30_000)
    await w.stop()
    expect(ids(w.seen)).toEqual(sent)
    const scans = ranges.slice(before).filter((r) => r.from >= from)
    expect(scans.length).toBeGreaterThanOrEqual(4) // 11 blocks, 3 at a time
    for (const r of scans) expect(r.to - r.from + 1n).toBeLessThanOrEqual(3n)
  }, 120_000)

  test('behavior: with the primary down, the watcher keeps scanning through the fallback, a fail() is sent and mined, no request is lost', async () => {
    const w = watch((await head()) + 1n)
    const first = await request()
    await mine(1)
    await waitUntil('the first request', () => w.seen.length === 1)
    expect(await failovers()).toBe(0)

    await proxy.close()
    const second = await request()
    await mine(1)
    await waitUntil('the second request, through the fallback', () => w.seen.length === 2, 30_000)
    const out = await chain.fail(w.seen[1]!, 'ModelFailed', 'failed while the primary RPC was down')
    expect(out).toMatchObject({ status: 'Failed', alreadySettled: false })
    const receipt = await t.owner.getTransactionReceipt({ hash: out.transactionHash as Hex })
    expect(receipt.status).toBe('success')
    expect(BigInt(w.seen[1]!.requestId)).toBe(second)
    expect((await chain.getRequestState(w.seen[1]!.requestId)).status).toBe('Failed')
    const counted = await failovers()
    expect(counted).toBeGreaterThan(0)

    await proxy.open()
    const third = await request()
    await mine(1)
    await waitUntil('the third request, the primary back', () => w.seen.length === 3, 30_000)
    expect(ids(w.seen)).toEqual([first, second, third])
    expect(w.errors).toEqual([])
  }, 120_000)

  test('behavior: a hung primary costs one timeout, then is passed over for primaryCooldownMs, and is used again after it', async () => {
    const sockets = new Set<Socket>()
    const hung = createServer((socket) => void sockets.add(socket)) // accepts, never answers
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()))
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((r) => hung.close(r))
    })
    const hungUrl = `http://127.0.0.1:${(hung.address() as { port: number }).port}`
    const count = async (chain: string) => (await metrics.rpcFailovers.get()).values.find((v) => v.labels.chain === chain)?.value ?? 0
    const client = createPublicClient({
      chain: t.anvil.chain,
      transport: sertnTransport([hungUrl, t.anvil.rpcUrl], 'hung', { timeoutMs: 500, primaryCooldownMs: 60_000 }),
    })
    const started = performance.now()
    for (let i = 0; i < 10; i++) expect(await client.getBlockNumber({ cacheTime: 0 })).toBe(await head())
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(450) // the first request waited for the primary's timeout
    expect(took).toBeLessThan(2_500) // the other nine did not (each would add 500 ms)
    expect(await count('hung')).toBe(10)

    // A primary that refuses, then comes back: used again once the cool-down is over.
    const back = createPublicClient({
      chain: t.anvil.chain,
      transport: sertnTransport([proxy.url, t.anvil.rpcUrl], 'back', { primaryCooldownMs: 300 }),
    })
    await proxy.close()
    await back.getBlockNumber({ cacheTime: 0 })
    expect(await count('back')).toBe(1)
    await proxy.open()
    await back.getBlockNumber({ cacheTime: 0 }) // within the cool-down: the fallback again
    expect(await count('back')).toBe(2)
    await new Promise((r) => setTimeout(r, 400))
    const connections = proxy.connections
    await back.getBlockNumber({ cacheTime: 0 })
    expect(proxy.connections).toBeGreaterThan(connections)
    expect(await count('back')).toBe(2)
  }, 60_000)
})
