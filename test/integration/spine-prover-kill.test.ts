/**
 * Killing the prover worker process mid-proof loses nothing: the chain-io and inference workers
 * run in this process, the prover worker is a child process (`sertn worker --role prover`, its own
 * process group). Once the proof has started on it (the activity heartbeats), the whole group gets
 * SIGKILL; a new prover process picks the activity up after its heartbeat timeout, and the request
 * ends fulfilled exactly once, with `proveInference` on its second attempt.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeTimeoutType } from '@temporalio/common'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { startProcess, waitFor, type ManagedProcess } from '../../core/process.ts'
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

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

let stack: TestStack
let workers: InProcessWorkers | undefined
let configFile: string
let consumer: `0x${string}`
const provers: ManagedProcess[] = []

beforeAll(async () => {
  stack = await startTestStack()
  configFile = join(stack.dataDir, 'prover.config.json')
  await writeFile(configFile, JSON.stringify(stack.config, null, 2))
  workers = await startWorkers(stack, ['chain-io', 'inference'])
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([...provers.map((p) => () => p.stop(5_000)), () => workers?.stop(), () => stack?.stop()], {
    processGroups: () => [...provers.map((p) => p.pid), ...(stack?.processGroups() ?? [])],
  })
})

/** `sertn worker --role prover` as a child process; resolves once it polls the prover queue. */
async function startProverProcess(): Promise<ManagedProcess> {
  const proc = startProcess({
    name: `prover-${provers.length + 1}`,
    command: 'npx',
    args: ['tsx', 'cli/sertn.ts', 'worker', '--role', 'prover', '--config', configFile],
    cwd: ROOT,
  })
  provers.push(proc)
  let exited = false
  void proc.exited.then(() => (exited = true))
  await waitFor(
    `${proc.name} to poll`,
    async () => exited || proc.output().includes(`prover polling ${stack.config.temporal.taskQueues.prover}`),
    {
      timeoutMs: 60_000,
      intervalMs: 100,
    },
  )
  if (exited) throw new Error(`${proc.name} exited before polling:\n${proc.output()}`)
  return proc
}

describe('a prover worker killed mid-proof', () => {
  test('behavior: SIGKILL to the prover process group while it proves → a new prover retries the proof; the request is fulfilled exactly once', async () => {
    const first = await startProverProcess()
    const r = await requestFromConsumer(stack, consumer)
    await mine(stack, 1)
    await waitForWorkflow(stack.client, r.key, 20_000)

    // The proof is under way on the child: the workflow is proving and the activity has heartbeated.
    let heartbeat: unknown
    await waitFor(
      'the proof to start on the prover process',
      async () => {
        const s = await getRequestStatus(stack.client, r.key)
        heartbeat = s.heartbeat
        return s.stage === 'proving' && s.heartbeat !== undefined
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    )
    expect(heartbeat).toMatchObject({ stage: expect.any(String) })
    process.kill(-first.pid, 'SIGKILL')
    expect(await within(10_000, 'the killed prover to exit', first.exited)).not.toBe(0)

    await startProverProcess()
    const outcome = await within(90_000, 'the request’s outcome', waitForOutcome(stack.client, r.key))
    expect(outcome.stage).toBe('fulfilled')
    expect(outcome.timings.prove?.attempts).toBe(2)

    // History: the proof that completed was the second attempt, after the first timed out on its heartbeat.
    const history = await (await requestWorkflowHandle(stack.client, r.key)).handle.fetchHistory()
    const started = history.events!.filter(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        activityTypeOf(history.events!, e.activityTaskStartedEventAttributes.scheduledEventId) === 'proveInference',
    )
    expect(started).toHaveLength(1)
    const attrs = started[0]!.activityTaskStartedEventAttributes!
    expect(attrs.attempt).toBe(2)
    expect(decodeTimeoutType(attrs.lastFailure?.timeoutFailureInfo?.timeoutType)).toBe('HEARTBEAT')

    expect((await closedExecutionsOf(stack.client, r.key)).map((x) => x.status.name)).toEqual(['COMPLETED'])
    expect(await fulfilledEventsOf(stack, r.id)).toHaveLength(1)
  })
})

function activityTypeOf(
  events: { eventId?: unknown; activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null }[],
  scheduledEventId: unknown,
): string | undefined {
  const scheduled = events.find((e) => String(e.eventId) === String(scheduledEventId))
  return scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? undefined
}
