/**
 * resolveModel reads the request's registry through an RPC outage instead of spending its
 * activity's few retries on it: a cut of tens of seconds used to fail a valid request with
 * `ModelUnavailable` (seen in the chaos run). Here the chain plugin's registry read fails with
 * ChainTransientError a few times before it answers; the activity must get through to the answer
 * (here: the model is not registered, its own error), and must not retry any other error.
 */
import { MockActivityEnvironment } from '@temporalio/testing'
import { describe, expect, test } from 'vitest'
import { ChainTransientError } from '../../core/errors.ts'
import { retryTransient } from '../../core/loop.ts'
import type { ChainPlugin } from '../../core/plugins.ts'
import type { InferenceRequest } from '../../core/types.ts'
import { createActivities, type ActivityDeps } from '../../workflows/activities/index.ts'

const GATEWAY = '0x00000000000000000000000000000000000000aa'
const request = {
  key: `req:7:${GATEWAY}:1`,
  chainId: 7,
  gateway: GATEWAY,
  modelId: `0x${'11'.repeat(32)}`,
  modelVersion: 1,
} as unknown as InferenceRequest

function flakyChain(failures: number, error: () => Error): { chain: ChainPlugin; reads: () => number } {
  let reads = 0
  const chain = {
    chainId: 7,
    gateway: GATEWAY,
    async getModel() {
      reads++
      if (reads <= failures) throw error()
      return undefined
    },
  } as unknown as ChainPlugin
  return { chain, reads: () => reads }
}

const depsWith = (chain: ChainPlugin) => ({ chains: [chain] }) as unknown as ActivityDeps

describe('resolveModel through an RPC outage', () => {
  test('behavior: registry reads failing with ChainTransientError are retried within the activity until the chain answers', async () => {
    const { chain, reads } = flakyChain(3, () => new ChainTransientError('evm:spoke: reading the gateway registry: HTTP request failed'))
    const run = new MockActivityEnvironment().run(createActivities(depsWith(chain)).resolveModel, request)
    await expect(run).rejects.toMatchObject({ type: 'UnknownModelError' })
    expect(reads()).toBe(4)
  })

  test('error: any other error is not retried there (the activity retry policy decides)', async () => {
    const { chain, reads } = flakyChain(3, () => new Error('boom'))
    const run = new MockActivityEnvironment().run(createActivities(depsWith(chain)).resolveModel, request)
    await expect(run).rejects.toThrow(/boom/)
    expect(reads()).toBe(1)
  })

  test('error: retryTransient gives up once its time is spent, with the last error', async () => {
    let calls = 0
    const p = retryTransient(
      async () => {
        calls++
        throw new ChainTransientError(`down ${calls}`)
      },
      { maxMs: 120, initialMs: 20, maxIntervalMs: 40 },
    )
    await expect(p).rejects.toThrow(/down \d/)
    expect(calls).toBeGreaterThan(1)
    expect(calls).toBeLessThan(8)
  })
})
