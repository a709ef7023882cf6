/**
 * The conformance suite of ChainPlugin: identity and flags, delivery of requests after the
 * configured confirmations (once each, in order, with their keys), resuming from persisted watcher
 * state in a new instance, idempotent fulfil and fail that send nothing when already settled, a
 * rejected proof as a non-retryable error that leaves the request pending, reads, and dispose.
 * Chain-specific behaviour (reorgs, nonces, gas) is tested next to each plugin.
 *
 * @example
 * // test/integration/chain-evm-conformance.test.ts
 * testChainPlugin({
 *   name: 'evm',
 *   setup: async () => harnessOnAnvil(),
 *   create: (h, { confirmations, stateDir }) => evmChain({ …, confirmations, cursorStore: new FileCursorStore(stateDir) }),
 * })
 *
 * Proofs made: none by the suite; the harness supplies one result valid for all its requests.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isRetryable, PluginError } from '../errors.ts'
import type { ChainPlugin } from '../plugins.ts'
import { requestKey, type InferenceRequest, type ProvenResult, type RequestId } from '../types.ts'

/** A chain the suite can drive: requests, blocks, and what the node account has sent. */
export interface ChainHarness {
  /** Makes a request (all with the same input) and resolves once it is in a block. */
  request(): Promise<{ requestId: RequestId }>
  /** Produces `n` new blocks. */
  mine(n: number): Promise<void>
  /** A result that the gateway accepts for every `request()`. */
  readonly result: ProvenResult
  /** How many transactions the plugin's node account has sent (to check that nothing was sent). */
  sentCount(): Promise<number>
  /** Releases the chain; runs even when the suite failed. */
  cleanup?(): Promise<void>
}

export interface CreateChainOptions {
  /** Blocks on top of a request's block before it is delivered. */
  readonly confirmations: number
  /** A directory for the watcher's persistent state, shared by the instances of one test. */
  readonly stateDir: string
}

export interface ChainConformanceOptions {
  /** The plugin's name (`ChainPlugin.name`), also the suite's title. */
  readonly name: string
  readonly setup: () => Promise<ChainHarness>
  /** A fresh instance; the suite disposes every instance it creates. */
  readonly create: (harness: ChainHarness, options: CreateChainOptions) => ChainPlugin
  /** Upper bound for a delivery to show up after its block is confirmed (default 10 s). */
  readonly deliveryTimeoutMs?: number
  /** How long to watch before concluding that nothing more is delivered (default 300 ms). */
  readonly quietMs?: number
}

/** Declares the suite (a vitest `describe`) for one chain plugin. */
export function testChainPlugin(options: ChainConformanceOptions): void {
  describe(`ChainPlugin conformance: ${options.name}`, () => {
    let h: ChainHarness
    let root: string
    let dirs = 0
    const created: ChainPlugin[] = []
    const watches: { stop(): Promise<void> }[] = []
    const timeout = options.deliveryTimeoutMs ?? 10_000
    const quiet = () => new Promise((r) => setTimeout(r, options.quietMs ?? 300))

    const create = (confirmations: number, stateDir?: string): ChainPlugin => {
      const p = options.create(h, { confirmations, stateDir: stateDir ?? join(root, `state-${dirs++}`) })
      created.push(p)
      return p
    }

    const watch = (p: ChainPlugin, fromBlock?: bigint) => {
      const seen: InferenceRequest[] = []
      const controller = new AbortController()
      const done = p.watchRequests({ signal: controller.signal, fromBlock, onRequest: async (r) => void seen.push(r) })
      done.catch(() => undefined)
      const w = {
        seen,
        done,
        stop: async () => {
          controller.abort()
          await done
        },
      }
      watches.push(w)
      return w
    }

    const until = async (what: string, cond: () => boolean) => {
      const end = Date.now() + timeout
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
        await new Promise((r) => setTimeout(r, 10))
      }
    }

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'sertn-chain-conformance-'))
      h = await options.setup()
    })

    afterAll(async () => {
      for (const w of watches) await w.stop().catch(() => undefined)
      for (const p of created) await p.dispose().catch(() => undefined)
      await h?.cleanup?.()
      if (root) await rm(root, { recursive: true, force: true })
    })

    it('identity: kind, name, chain and flags', () => {
      const p = create(1)
      expect(p.kind).toBe('chain')
      expect(p.name).toBe(options.name)
      expect(typeof p.chainName).toBe('string')
      expect(Number.isSafeInteger(p.chainId)).toBe(true)
      expect(typeof p.flags.reorgSafe).toBe('boolean')
    })

    it('watch: requests are delivered once each, in order, only after the confirmations', async () => {
      const p = create(2)
      const w = watch(p, (await p.head()).blockNumber + 1n)
      const a = await h.request()
      const b = await h.request()
      await h.mine(1) // b has 1 block on top, a has 2
      await until('the first request', () => w.seen.length >= 1)
      await quiet()
      expect(w.seen.map((r) => r.requestId)).toEqual([a.requestId])
      await h.mine(1)
      await until('the second request', () => w.seen.length >= 2)
      await h.mine(2)
      await quiet()
      await w.stop()
      expect(w.seen.map((r) => r.requestId)).toEqual([a.requestId, b.requestId])
      for (const r of w.seen) {
        expect(r.key).toBe(requestKey(p.chainId, p.gateway, r.requestId))
        expect(r.chainId).toBe(p.chainId)
        expect(r.gateway.toLowerCase()).toBe(p.gateway.toLowerCase())
        expect(r.input.length).toBeGreaterThan(0)
        expect(BigInt(r.seenAt.blockNumber)).toBeGreaterThan(0n)
      }
      expect(BigInt(w.seen[0]!.seenAt.blockNumber)).toBeLessThan(BigInt(w.seen[1]!.seenAt.blockNumber))
    })

    it('watch: a new instance on the same state resumes, delivering only requests it has not delivered', async () => {
      const stateDir = join(root, 'resume')
      const first = create(1, stateDir)
      const w1 = watch(first, (await first.head()).blockNumber + 1n)
      const a = await h.request()
      await h.mine(1)
      await until('the first request', () => w1.seen.length >= 1)
      await quiet()
      await w1.stop()
      await first.dispose()
      const b = await h.request()
      await h.mine(1)
      const second = create(1, stateDir)
      const w2 = watch(second, 0n) // saved state wins over fromBlock
      await until('the later request', () => w2.seen.length >= 1)
      await h.mine(1)
      await quiet()
      await w2.stop()
      expect(w1.seen.map((r) => r.requestId)).toEqual([a.requestId])
      expect(w2.seen.map((r) => r.requestId)).toEqual([b.requestId])
    })

    it('fulfil: settles, then is idempotent without sending', async () => {
      const p = create(1)
      const w = watch(p, (await p.head()).blockNumber + 1n)
      const { requestId } = await h.request()
      await h.mine(1)
      await until('the request', () => w.seen.some((r) => r.requestId === requestId))
      await w.stop()
      const req = w.seen.find((r) => r.requestId === requestId)!
      expect((await p.getRequestState(requestId)).status).toBe('Pending')
      expect(await p.findSettlement(requestId, req.seenAt.blockNumber)).toBeUndefined()
      // No copy of another chain's request ever came here.
      expect(await p.findCopy(req.chainId, req.gateway, requestId)).toBeUndefined()
      const out = await p.fulfill(req, h.result)
      expect(out).toMatchObject({ status: 'Fulfilled', alreadySettled: false })
      expect(out.transactionHash).toBeDefined()
      expect((await p.getRequestState(requestId)).status).toBe('Fulfilled')
      // The settlement reads back as the transaction that made it.
      expect(await p.findSettlement(requestId, req.seenAt.blockNumber)).toMatchObject({
        status: 'Fulfilled',
        transactionHash: out.transactionHash,
        gasUsed: out.gasUsed,
      })
      const sent = await h.sentCount()
      expect(await p.fulfill(req, h.result)).toMatchObject({ status: 'Fulfilled', alreadySettled: true })
      expect(await h.sentCount()).toBe(sent)
      // Failing a fulfilled request is refused and not retryable.
      const err = await p.fail(req, 'Unknown', 'too late').then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(Error)
      expect(isRetryable(err)).toBe(false)
      expect(await h.sentCount()).toBe(sent)
    })

    it('fail: settles, then is idempotent without sending', async () => {
      const p = create(1)
      const w = watch(p, (await p.head()).blockNumber + 1n)
      const { requestId } = await h.request()
      await h.mine(1)
      await until('the request', () => w.seen.some((r) => r.requestId === requestId))
      await w.stop()
      const req = w.seen.find((r) => r.requestId === requestId)!
      const failed = await p.fail(req, 'ModelFailed', 'conformance')
      expect(failed).toMatchObject({ status: 'Failed', alreadySettled: false })
      expect(await p.findSettlement(requestId)).toMatchObject({ status: 'Failed', transactionHash: failed.transactionHash })
      const sent = await h.sentCount()
      expect(await p.fail(req, 'ModelFailed', 'conformance')).toMatchObject({ status: 'Failed', alreadySettled: true })
      const err = await p.fulfill(req, h.result).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isRetryable(err)).toBe(false)
      expect(await h.sentCount()).toBe(sent)
      expect((await p.getRequestState(requestId)).status).toBe('Failed')
    })

    it('fulfil: a rejected proof is a non-retryable error and the request stays pending', async () => {
      const p = create(1)
      const w = watch(p, (await p.head()).blockNumber + 1n)
      const { requestId } = await h.request()
      await h.mine(1)
      await until('the request', () => w.seen.some((r) => r.requestId === requestId))
      await w.stop()
      const req = w.seen.find((r) => r.requestId === requestId)!
      const forged = { ...h.result, output: h.result.output.map((v, i) => (i === 0 ? String(BigInt(v) + 1n) : v)) }
      const sent = await h.sentCount()
      const err = await p.fulfill(req, forged).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(Error)
      expect(isRetryable(err)).toBe(false)
      expect(await h.sentCount()).toBe(sent)
      expect((await p.getRequestState(requestId)).status).toBe('Pending')
    })

    it('reads: head moves with the chain; an unknown request is None', async () => {
      const p = create(1)
      const before = (await p.head()).blockNumber
      await h.mine(2)
      expect((await p.head()).blockNumber).toBeGreaterThanOrEqual(before + 2n)
      expect((await p.getRequestState('987654321' as RequestId)).status).toBe('None')
    })

    it('dispose: stops watchers; later calls fail with PluginError', async () => {
      const p = create(1)
      const w = watch(p)
      await quiet()
      await p.dispose()
      await w.done
      await expect(p.head()).rejects.toBeInstanceOf(PluginError)
      await expect(p.getRequestState('1' as RequestId)).rejects.toBeInstanceOf(PluginError)
    })
  })
}
