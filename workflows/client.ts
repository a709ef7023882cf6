/**
 * Starting request workflows, finding them by request key and reading their status.
 *
 * A request workflow's id is its request key and its event's transaction
 * ({@link requestWorkflowIdOf}): the same event delivered twice (a restarted watcher, a rewind)
 * starts nothing more, and an id that a completed run holds is never started again. A new request
 * that reuses the id of one a reorg dropped is another transaction: it gets a workflow of its own,
 * and the dropped one's workflow, if it still runs, is terminated (it would prove the wrong input
 * and fail the new request). Lookups by key list the key's workflows ({@link requestWorkflowsQuery})
 * and take the newest.
 *
 * Search attributes ({@link SEARCH_ATTRIBUTES}) are set at start when the namespace has them; a
 * namespace without them is told once ({@link checkSearchAttributes}), and its workflows run
 * without them.
 */
import {
  TerminatedFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type ConnectionLike,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client'
import type { SearchAttributePair } from '@temporalio/common'
import { componentLogger } from '../core/log.ts'
import type { InferenceRequest } from '../core/types.ts'
import {
  requestWorkflowIdOf,
  requestWorkflowsQuery,
  SEARCH_ATTRIBUTES,
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

/** Why a workflow was terminated when a newer event of its request key was started (see {@link startRequestWorkflow}). */
export const SUPERSEDED_REASON = 'superseded'

/**
 * Starts the request's workflow unless one for the same event ran or runs already. With
 * `standAside` (another node holds the request's job), the workflow is created now but runs only
 * once that node's window has passed (a start delay the server keeps): then it finds the request
 * answered, or moves the job on as any node may. Nothing of this node runs for it meanwhile.
 *
 * A workflow of the same key started for another event still running is terminated: the watcher
 * delivers confirmed events in chain order, so the newer event is the one on the chain, and the
 * older one's transaction was dropped by a reorg (its request id is the new request's now).
 */
export async function startRequestWorkflow(
  client: Client,
  request: InferenceRequest,
  queues: TaskQueues,
  { eager = false, standAside, batching }: { eager?: boolean; standAside?: StandingAside; batching?: BatchingOptions } = {},
): Promise<StartResult> {
  const delayMs = standAside ? Math.max(0, standAside.windowEnd * 1000 - Date.now()) + WINDOW_MARGIN_MS : 0
  const workflowId = requestWorkflowIdOf(request)
  const indexed = (await checkSearchAttributes(client)).ready
  try {
    await client.workflow.start<typeof requestWorkflow>('requestWorkflow', {
      workflowId,
      taskQueue: queues.chainIo,
      args: [{ request, queues, ...(batching ? { batching } : {}) }],
      ...(standAside ? { startDelay: delayMs, memo: { standingAside: standAside } } : {}),
      ...(indexed ? { typedSearchAttributes: initialSearchAttributes(request, standAside) } : {}),
      // With a client on a worker's own connection, the first workflow task skips matching.
      requestEagerStart: eager && !standAside,
      // A failed run (a bug, an outage past every retry) may be started again by a later event;
      // a completed one never.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    })
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate'
    throw err
  }
  await terminateSuperseded(client, request, workflowId)
  return 'started'
}

/** The search attributes a request's workflow starts with (its stage is kept current by the workflow). */
function initialSearchAttributes(request: InferenceRequest, standAside: StandingAside | undefined): SearchAttributePair[] {
  const a = SEARCH_ATTRIBUTES
  return [
    { key: a.requestKey, value: request.key },
    { key: a.chain, value: String(request.chainId) },
    { key: a.model, value: request.modelId.toLowerCase() },
    { key: a.stage, value: standAside ? 'awaiting-assignment' : 'received' },
    ...(standAside ? [{ key: a.node, value: standAside.node.toLowerCase() }] : []),
  ]
}

/** Terminates the running workflows of `request.key` other than `workflowId` (events a reorg dropped). */
async function terminateSuperseded(client: Client, request: InferenceRequest, workflowId: string): Promise<void> {
  const others: WorkflowExecutionInfo[] = []
  for await (const w of client.workflow.list({ query: `${requestWorkflowsQuery(request.key)} AND ExecutionStatus = 'Running'` }))
    if (w.workflowId !== workflowId) others.push(w)
  for (const w of others) {
    try {
      await client.workflow
        .getHandle(w.workflowId, w.runId)
        .terminate(
          `${SUPERSEDED_REASON}: request ${request.key} is now transaction ${request.seenAt.transactionHash}'s (workflow ${workflowId}); ` +
            'the event this workflow was started for was dropped by a reorg',
        )
      componentLogger('workflows', { requestKey: request.key }).warn(
        { workflowId: w.workflowId, newWorkflowId: workflowId, transactionHash: request.seenAt.transactionHash },
        'a reorg reused the request id: the dropped request’s workflow is terminated',
      )
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err // ended meanwhile
    }
  }
}

// ─────────────────────────────── finding a request's workflows ───────────────────────────────

/** A request's workflows, newest first (several when a reorg reused its id; one otherwise). */
export async function findRequestWorkflows(client: Client, key: string): Promise<WorkflowExecutionInfo[]> {
  const runs: WorkflowExecutionInfo[] = []
  for await (const w of client.workflow.list({ query: requestWorkflowsQuery(key) })) runs.push(w)
  return runs.sort((a, b) => b.startTime.getTime() - a.startTime.getTime())
}

/**
 * The newest workflow of request `key` and the ids of its other workflows (after a reorg reused
 * the id); throws {@link WorkflowNotFoundError} when there is none (yet: visibility lags a start by
 * a moment).
 */
export async function requestWorkflowHandle(
  client: Client,
  key: string,
): Promise<{ handle: WorkflowHandle<typeof requestWorkflow>; workflowId: string; others: string[] }> {
  const runs = await findRequestWorkflows(client, key)
  const newest = runs[0]
  if (!newest) throw new WorkflowNotFoundError(`no workflow for request ${key}`, key, undefined)
  const others = [...new Set(runs.map((r) => r.workflowId))].filter((id) => id !== newest.workflowId)
  return { handle: client.workflow.getHandle<typeof requestWorkflow>(newest.workflowId), workflowId: newest.workflowId, others }
}

/** A request's status as {@link getRequestStatus} reads it. */
export type RequestStatus = RequestStatusView & {
  running: boolean
  heartbeat?: unknown
  /** The workflow shown: the newest of the request key's. */
  workflowId: string
  /** The key's other workflows (started for events a reorg dropped), when there are any. */
  others?: string[]
}

/**
 * The status of the request with key `key` (its newest workflow), with the prover's last
 * heartbeat when it is proving.
 */
export async function getRequestStatus(client: Client, key: string): Promise<RequestStatus> {
  const { handle, workflowId, others } = await requestWorkflowHandle(client, key)
  const seen = { workflowId, ...(others.length ? { others } : {}) }
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
      ...seen,
    }
  }
  const status = await handle.query(statusQuery)
  const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'proveInference')
  let heartbeat: unknown
  const payload = pending?.heartbeatDetails?.payloads?.[0]
  if (payload) heartbeat = client.options.loadedDataConverter.payloadConverter.fromPayload(payload)
  return { ...status, running: description.status.name === 'RUNNING', ...(heartbeat ? { heartbeat } : {}), ...seen }
}

/** Waits (at most `timeoutMs`) until a workflow of request `key` exists; returns the newest's id. */
export async function waitForWorkflow(client: Client, key: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return (await requestWorkflowHandle(client, key)).workflowId
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

/**
 * Waits for the request's workflow to start (at most `startTimeoutMs`) and end; returns its
 * outcome. A workflow terminated because a newer event of the key superseded it is followed by
 * the newer one's.
 */
export async function waitForOutcome(client: Client, key: string, startTimeoutMs = 60_000): Promise<RequestOutcome> {
  let workflowId = await waitForWorkflow(client, key, startTimeoutMs)
  for (;;) {
    try {
      return await client.workflow.getHandle<typeof requestWorkflow>(workflowId).result()
    } catch (err) {
      const superseded =
        err instanceof WorkflowFailedError && err.cause instanceof TerminatedFailure && err.cause.message.startsWith(SUPERSEDED_REASON)
      if (!superseded) throw err
      const newest = (await requestWorkflowHandle(client, key)).workflowId
      if (newest === workflowId) throw err
      workflowId = newest
    }
  }
}

// ─────────────────────────────── search attributes ───────────────────────────────

/** The names of Sertn's search attributes. */
export const SEARCH_ATTRIBUTE_NAMES: readonly string[] = Object.values(SEARCH_ATTRIBUTES).map((k) => k.name)

/** `temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD`. */
const KEYWORD = 2

/** The command that creates `names` as Keyword search attributes in `namespace`. */
export function searchAttributesCommand(namespace: string, names: readonly string[] = SEARCH_ATTRIBUTE_NAMES): string {
  return `temporal operator search-attribute create --namespace ${namespace} ${names.map((n) => `--name ${n} --type Keyword`).join(' ')}`
}

/** Those of Sertn's search attributes that `namespace` lacks (or has with a type other than Keyword). */
export async function missingSearchAttributes(connection: Pick<ConnectionLike, 'operatorService'>, namespace: string): Promise<string[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace })
  return SEARCH_ATTRIBUTE_NAMES.filter((n) => customAttributes?.[n] !== KEYWORD)
}

/** Creates those of Sertn's search attributes that `namespace` lacks (the local dev server's); returns them. */
export async function addSearchAttributes(connection: Pick<ConnectionLike, 'operatorService'>, namespace: string): Promise<string[]> {
  const missing = await missingSearchAttributes(connection, namespace)
  if (missing.length > 0)
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((n) => [n, KEYWORD])),
    })
  return missing
}

export type SearchAttributesCheck = {
  /** Whether workflows are started with the search attributes. */
  ready: boolean
  /** What to tell the operator when they are not (one line, with the command to run). */
  message?: string
}

const checks = new WeakMap<Client, Promise<SearchAttributesCheck>>()

/**
 * Whether the client's namespace has Sertn's search attributes, asked once per client (a failed
 * ask is not kept: the next start asks again). Without them workflows start and run without any.
 */
export function checkSearchAttributes(client: Client): Promise<SearchAttributesCheck> {
  const known = checks.get(client)
  if (known) return known
  const namespace = client.options.namespace
  const check = missingSearchAttributes(client.connection, namespace).then(
    (missing): SearchAttributesCheck =>
      missing.length === 0
        ? { ready: true }
        : {
            ready: false,
            message:
              `Temporal namespace ${namespace} lacks the search attributes ${missing.join(', ')}: requests run without them ` +
              `(not findable by chain, model, node or stage). Create them, then restart the worker: ${searchAttributesCommand(namespace, missing)}`,
          },
    (err: unknown): SearchAttributesCheck => {
      checks.delete(client)
      return {
        ready: false,
        message:
          `cannot list the search attributes of Temporal namespace ${namespace} (${err instanceof Error ? err.message : String(err)}): ` +
          `requests run without them. If they are missing, create them: ${searchAttributesCommand(namespace)}`,
      }
    },
  )
  checks.set(client, check)
  return check
}
