/**
 * Duplicate events start one workflow: the workflow id is the request key and the event’s
 * transaction, and a completed id is never started again (`ALLOW_DUPLICATE_FAILED_ONLY`), so the
 * same `InferenceRequested` delivered
 * twice — two starts at once, the node's watcher after them, a start after the workflow completed,
 * a watcher that lost its cursor and re-reads the chain from block 0 — leaves exactly one workflow
 * execution and one `InferenceFulfilled` on the real local stack (anvil, Temporal dev server,
 * arlocal, EZKL WASM proofs; workers in this process).
 */
import { rm } from 'node:fs/promises'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import { evmChain, MemoryCursorStore } from '../../chains/evm/plugin/index.ts'
import { RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { waitFor } from '../../core/process.ts'
import type { InferenceRequest } from '../../core/types.ts'
import { startRequestWorkflow, waitForOutcome } from '../../workflows/client.ts'
import { taskQueuesOf, type WorkerRole } from '../../workflows/worker/index.ts'
import {
  boundedTeardown,
  closedExecutionsOf,
  fulfilledEventsOf,
  mine,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  watcherCursorBlock,
  watcherCursorFile,
  within,
  type InProcessWorkers,
  type MadeRequest,
  type TestStack,
} from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const ROLES: WorkerRole[] = ['chain-io', 'inference', 'prover']

let stack: TestStack
let workers: InProcessWorkers | undefined
let consumer: `0x${string}`

beforeAll(async () => {
  stack = await startTestStack()
  workers = await startWorkers(stack, ROLES)
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

/** The request as the EVM chain plugin decodes it from the chain (its own watcher, no confirmations, memory cursor). */
async function decodedRequest(r: MadeRequest): Promise<InferenceRequest> {
  const plugin = evmChain({
    chainName: 'capture',
    chainId: stack.chain.anvil.chain.id,
    rpcUrl: stack.chain.anvil.rpcUrl,
    gateway: stack.chain.core.gateway,
    account: anvilAccount(1),
    confirmations: 0,
    pollingIntervalMs: 50,
    cursorStore: new MemoryCursorStore(),
    watcherKey: 'capture',
  })
  const stop = new AbortController()
  try {
    return await within(
      15_000,
      `the plugin to decode request ${r.id}`,
      new Promise<InferenceRequest>((resolve, reject) => {
        plugin
          .watchRequests({
            signal: stop.signal,
            fromBlock: r.block,
            onRequest: async (req) => {
              if (req.key === r.key) resolve(req)
            },
          })
          .catch(reject)
      }),
    )
  } finally {
    stop.abort()
    await plugin.dispose()
  }
}

const alreadySeen = (logs: string[], id: bigint) => logs.filter((l) => l.endsWith(`: request ${id} → already seen`))

describe('duplicate events start one workflow', () => {
  let first: MadeRequest

  test('behavior: the same InferenceRequested started twice at once, then by the watcher, then after completion → one workflow, fulfilled once', async () => {
    const queues = taskQueuesOf(stack.config)
    // Not confirmed yet (confirmations 1, nothing on top): the node's watcher has not delivered it.
    first = await requestFromConsumer(stack, consumer)
    const request = await decodedRequest(first)

    const starts = await Promise.all([
      startRequestWorkflow(stack.client, request, queues),
      startRequestWorkflow(stack.client, request, queues),
    ])
    expect(starts.sort()).toEqual(['duplicate', 'started'])

    // One block on top: the node's watcher delivers the same event.
    await mine(stack, 1)
    await waitFor('the watcher to pass the request’s block', async () => (await watcherCursorBlock(stack)) >= first.block, {
      timeoutMs: 20_000,
    })
    expect(alreadySeen(workers!.logs, first.id)).toHaveLength(1)

    const outcome = await within(60_000, 'the first request’s outcome', waitForOutcome(stack.client, first.key))
    expect(outcome.stage).toBe('fulfilled')
    // A completed key is never started again.
    expect(await startRequestWorkflow(stack.client, request, queues)).toBe('duplicate')

    const runs = await closedExecutionsOf(stack.client, first.key)
    expect(runs.map((r) => r.status.name)).toEqual(['COMPLETED'])
    expect(await fulfilledEventsOf(stack, first.id)).toHaveLength(1)
  })

  test('behavior: a watcher restarted without its cursor re-reads the chain from block 0 → the served request is not started again; one that came while it was down is served', async () => {
    await workers!.stop()
    workers = undefined
    // While the node is down: a second request, confirmed.
    const second = await requestFromConsumer(stack, consumer)
    await mine(stack, 1)
    await rm(watcherCursorFile(stack))

    workers = await startWorkers(stack, ROLES) // startBlock 0: the whole chain again
    const outcome = await within(60_000, 'the second request’s outcome', waitForOutcome(stack.client, second.key))
    expect(outcome.stage).toBe('fulfilled')
    await waitFor('the watcher to pass the second request’s block', async () => (await watcherCursorBlock(stack)) >= second.block, {
      timeoutMs: 20_000,
    })

    // The re-read delivered the first request again, and nothing was started for it.
    expect(alreadySeen(workers.logs, first.id)).toHaveLength(1)
    expect((await closedExecutionsOf(stack.client, first.key)).map((r) => r.status.name)).toEqual(['COMPLETED'])
    expect(await fulfilledEventsOf(stack, first.id)).toHaveLength(1)
    expect((await closedExecutionsOf(stack.client, second.key)).map((r) => r.status.name)).toEqual(['COMPLETED'])
    expect(await fulfilledEventsOf(stack, second.id)).toHaveLength(1)
  })
})
