/**
 * Starting request workflows and reading their status. The workflow id is the request key, and a
 * key whose workflow completed (fulfilled or failed on-chain) is never started again: a duplicate
 * event starts nothing.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client'
import type { InferenceRequest } from '../core/types.ts'
import {
  statusQuery,
  WINDOW_MARGIN_MS,
  type BatchingOptions,
  type RequestOutcome,
  type RequestStatusView,
  type TaskQueues,
} from './messages.ts'
import type { requestWorkflow } from './request.workflow.ts'

export type StartResult = 'started' | 'duplicate'

/**
 * Why a request's workflow starts later: another node holds the request's job until `windowEnd`
 * (unix seconds). Kept in the workflow's memo, so that its status reads before it runs.
 */
export type StandingAside = { node: string; windowEnd: number }

/**
 * Starts the request's workflow unless one with its key ran or runs already. With `standAside`
 * (another node holds the request's job), the workflow is created now but runs only once that
 * node's window has passed (a start delay the server keeps): then it finds the request answered,
 * or moves the job on as any node may. Nothing of this node runs for it meanwhile.
 */
export async function startRequestWorkflow(
  client: Client,
  request: InferenceRequest,
  queues: TaskQueues,
  { eager = false, standAside, batching }: { eager?: boolean; standAside?: StandingAside; batching?: BatchingOptions } = {},
): Promise<StartResult> {
  const delayMs = standAside ? Math.max(0, standAside.windowEnd * 1000 - Date.now()) + WINDOW_MARGIN_MS : 0
  try {
    await client.workflow.start<typeof requestWorkflow>('requestWorkflow', {
      workflowId: request.key,
      taskQueue: queues.chainIo,
      args: [{ request, queues, ...(batching ? { batching } : {}) }],
      ...(standAside ? { startDelay: delayMs, memo: { standingAside: standAside } } : {}),
      // With a client on a worker's own connection, the first workflow task skips matching.
      requestEagerStart: eager && !standAside,
      // A failed run (a bug, an outage past every retry) may be started again by a later event;
      // a completed one never.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    })
    return 'started'
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate'
    throw err
  }
}

/** The status of the request with key `key`, with the prover's last heartbeat when it is proving. */
export async function getRequestStatus(
  client: Client,
  key: string,
): Promise<RequestStatusView & { running: boolean; heartbeat?: unknown }> {
  const handle = client.workflow.getHandle(key)
  const description = await handle.describe()
  const aside = description.memo?.standingAside as StandingAside | undefined
  if (aside && description.status.name === 'RUNNING' && description.historyLength <= 2) {
    // Created to run once another node's window has passed: nothing has run (nor can answer a query) yet.
    return {
      key: key as RequestStatusView['key'],
      stage: 'awaiting-assignment',
      startedAt: description.startTime.getTime(),
      timings: {},
      assignment: { node: aside.node, mine: false, windowEnd: aside.windowEnd, reassigned: 0 },
      running: true,
    }
  }
  const status = await handle.query(statusQuery)
  const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'proveInference')
  let heartbeat: unknown
  const payload = pending?.heartbeatDetails?.payloads?.[0]
  if (payload) heartbeat = client.options.loadedDataConverter.payloadConverter.fromPayload(payload)
  return { ...status, running: description.status.name === 'RUNNING', ...(heartbeat ? { heartbeat } : {}) }
}

/** Waits (at most `timeoutMs`) until a workflow with id `key` exists. */
export async function waitForWorkflow(client: Client, key: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await client.workflow.getHandle(key).describe()
      return
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

/** Waits for the request's workflow to start (at most `startTimeoutMs`) and end; returns its outcome. */
export async function waitForOutcome(client: Client, key: string, startTimeoutMs = 60_000): Promise<RequestOutcome> {
  await waitForWorkflow(client, key, startTimeoutMs)
  return client.workflow.getHandle<typeof requestWorkflow>(key).result()
}
