/**
 * Restarting the Temporal server mid-request loses nothing: with the workers in this process, the
 * dev server (persisted to its SQLite file) is stopped and started again on the same port while a
 * request's workflow is proving. The workers, the watcher's client and the test's client reconnect
 * by themselves; the request ends fulfilled exactly once, and a request made after the restart is
 * served too (the watcher starts workflows on the new server).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { waitFor } from '../../core/process.ts'
import { getRequestStatus, requestWorkflowHandle, waitForOutcome, waitForWorkflow } from '../../workflows/client.ts'
import {
  boundedTeardown,
  closedExecutionsOf,
  fulfilledEventsOf,
  mine,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  within,
  type InProcessWorkers,
  type TestStack,
} from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

let stack: TestStack
let workers: InProcessWorkers | undefined
let consumer: `0x${string}`

beforeAll(async () => {
  stack = await startTestStack()
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

describe('a Temporal server restart mid-request', () => {
  test('behavior: the server restarts (same port, same database) while the request is proving → it is fulfilled exactly once', async () => {
    const r = await requestFromConsumer(stack, consumer)
    await mine(stack, 1)
    await waitForWorkflow(stack.client, r.key, 20_000)
    // The proof is under way: the workflow is proving and the prover activity has heartbeated.
    await waitFor(
      'the proof to start',
      async () => {
        const s = await getRequestStatus(stack.client, r.key)
        return s.stage === 'proving' && s.heartbeat !== undefined
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    )

    const pid = stack.temporal.process.pid
    await within(60_000, 'the Temporal restart', stack.restartTemporal())
    const restartedAt = Date.now()
    expect(stack.temporal.process.pid).not.toBe(pid)

    const outcome = await within(90_000, 'the request’s outcome', waitForOutcome(stack.client, r.key))
    expect(outcome.stage).toBe('fulfilled')
    expect((await closedExecutionsOf(stack.client, r.key)).map((x) => x.status.name)).toEqual(['COMPLETED'])
    expect(await fulfilledEventsOf(stack, r.id)).toHaveLength(1)
    // It really was mid-flight: the workflow completed on the restarted server.
    const history = await (await requestWorkflowHandle(stack.client, r.key)).handle.fetchHistory()
    const completed = history.events!.find((e) => e.workflowExecutionCompletedEventAttributes)!
    expect(tsMs(completed.eventTime)).toBeGreaterThan(restartedAt)

    // The watcher's client reconnected too: a new request becomes a workflow on the restarted server.
    const after = await requestFromConsumer(stack, consumer)
    await mine(stack, 1)
    expect((await within(60_000, 'the second request’s outcome', waitForOutcome(stack.client, after.key, 20_000))).stage).toBe('fulfilled')
    expect(await fulfilledEventsOf(stack, after.id)).toHaveLength(1)
    expect(workers!.logs.filter((l) => l.includes('stopped'))).toEqual([])
  })
})

/** Milliseconds of a protobuf timestamp. */
function tsMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6)
}
