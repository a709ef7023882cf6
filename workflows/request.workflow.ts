/**
 * The request workflow: one per on-chain request event, with the request key and the event's
 * transaction as workflow id (`requestWorkflowIdOf` in messages.ts).
 *
 * inference (onnxruntime, `inference` queue) beside witness + proof (`prover` queue, heartbeating)
 * → fix the output's and the proof's storage ids (`chain-io` queue) → fulfil on the gateway with
 * those ids, beside their upload (`chain-io` queue). A request
 * that cannot be served (unknown model, input the model rejects, a proof that cannot be made)
 * ends with `fail` on the gateway: the requester's error callback and a full refund.
 *
 * A request made on a spoke chain (`request.route`) is served through the hub market instead:
 * the proof is made while the request message travels to the hub (`awaitHubRecord`), the result
 * is submitted to the market (`submitToHub`: verified on the hub, sent to the spoke), and the
 * workflow follows it back: the spoke's settlement (`awaitSpokeSettlement`: the result verified
 * on the spoke, the requester called back) and the spoke's receipt closing the request in the market
 * (`awaitHubSettlement`). A spoke request that cannot be served is failed on the hub
 * (`failOnHub`), which refunds it on the spoke. The status query shows every hop.
 *
 * Every request is assigned on the hub to one node of its model's pool (the node registry's job):
 * before any work the workflow waits for the job to be this node's (`awaitAssignment`, which also
 * reassigns jobs whose node let its window pass); a job another node holds ends this workflow as
 * `settled-elsewhere`, and a job reassigned away while this node worked is waited for again.
 *
 * Search attributes (see {@link SEARCH_ATTRIBUTES}): started with the request key, chain, model and
 * stage when the namespace has them, the workflow keeps `SertnStage` current and sets `SertnNode`
 * once the request's job is known to be held by a node.
 *
 * Deterministic: no I/O, no DI, no Node APIs; activities are imported as types only.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow'
import type { ModelRef } from '../core/artifacts.ts'
import { NON_RETRYABLE_ERROR_TYPES } from '../core/errors.ts'
import type { InferenceErrorCode } from '../core/types.ts'
import type { Activities } from './activities/index.ts'
import { codeOfFailure, STAGE_CODES } from './failure-codes.ts'
import {
  batchResultSignal,
  SEARCH_ATTRIBUTES,
  statusQuery,
  WINDOW_MARGIN_MS,
  type BatchResult,
  type RequestOutcome,
  type RequestStatusView,
  type RequestWorkflowInput,
  type Stage,
  type StageTiming,
} from './messages.ts'
import { memoryOf, proverRouteOf } from './routing.ts'

/** Error types that retrying cannot fix; activities also mark such errors non-retryable themselves. */
const NON_RETRYABLE: string[] = [...NON_RETRYABLE_ERROR_TYPES]

/** How many times a node waits for a job reassigned away from it to come back before it lets it go. */
const MAX_TURNS = 3

const retry = {
  initialInterval: '500 milliseconds',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  nonRetryableErrorTypes: NON_RETRYABLE,
}

export async function requestWorkflow({ request, queues, batching }: RequestWorkflowInput): Promise<RequestOutcome> {
  const { runInference } = proxyActivities<Activities>({
    taskQueue: queues.inference,
    startToCloseTimeout: '2 minutes',
    retry: { ...retry, maximumAttempts: 5 },
  })
  /** The prover activity on `taskQueue` (the queue routing picked for the model's circuit). */
  const proverOn = (taskQueue: string) =>
    proxyActivities<Activities>({
      taskQueue,
      startToCloseTimeout: '15 minutes',
      heartbeatTimeout: '20 seconds',
      retry: { ...retry, maximumAttempts: 5 },
    }).proveInference
  const { prepareResult, uploadResult, fulfillRequest, failRequest, submitToHub, failOnHub } = proxyActivities<Activities>({
    taskQueue: queues.chainIo,
    startToCloseTimeout: '2 minutes',
    retry: { ...retry, maximumAttempts: 30 },
  })
  // Resolving the model may fetch its artifacts from storage (minutes for a large circuit; a
  // registration uploads them first, so artifacts still missing after a few tries are missing).
  // Likewise a hashed request's input that storage does not have after a few tries fails the request.
  const { joinBatch } = proxyActivities<Activities>({
    taskQueue: queues.chainIo,
    startToCloseTimeout: '1 minute',
    retry: { ...retry, maximumAttempts: 10 },
  })
  const { resolveModel } = proxyActivities<Activities>({
    taskQueue: queues.chainIo,
    startToCloseTimeout: '10 minutes',
    retry: { ...retry, maximumInterval: '5 seconds', maximumAttempts: 5 },
  })
  const { loadInput } = proxyActivities<Activities>({
    taskQueue: queues.chainIo,
    startToCloseTimeout: '2 minutes',
    retry: { ...retry, maximumInterval: '10 seconds', maximumAttempts: 8 },
  })
  // Hops wait for another chain (and the messenger's agents): long-running, heartbeating, bounded
  // by the request's deadline inside the activity.
  const { awaitHubRecord, awaitSpokeSettlement, awaitHubSettlement, awaitAssignment, awaitCopy } = proxyActivities<Activities>({
    taskQueue: queues.chainIo,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { ...retry, maximumAttempts: 100 },
  })

  const status: RequestStatusView = { key: request.key, stage: 'received', startedAt: workflowInfo().startTime.getTime(), timings: {} }
  setHandler(statusQuery, () => status)

  // Search attributes: only where the workflow was started with them (the namespace has them).
  // Upserts are commands: workflows started before them replay without any.
  const indexed = workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.requestKey) !== undefined && patched('search-attributes')
  /** Moves the status to `stage` (and the `SertnStage` search attribute with it). */
  function setStage(stage: Stage): void {
    if (stage === status.stage) return
    status.stage = stage
    if (indexed) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.stage, value: stage }])
  }
  let nodeShown: string | undefined
  /** Sets `SertnNode` to the node holding the request's job. */
  function showNode(node: string): void {
    const value = node.toLowerCase()
    if (!indexed || value === nodeShown) return
    nodeShown = value
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.node, value }])
  }
  let batchResult: BatchResult | undefined
  setHandler(batchResultSignal, (r) => {
    batchResult = r
  })

  async function timed<
    T extends {
      attempt: number
      ms?: number
      inclusionMs?: number
      receiptAt?: number
      transactionHash?: string
      gasUsed?: string
      observedAt?: number
    },
  >(name: keyof RequestStatusView['timings'], run: () => Promise<T>): Promise<T> {
    const t0 = Date.now()
    const r = await run()
    const timing: StageTiming = { ms: Date.now() - t0, attempts: r.attempt }
    if (r.ms !== undefined) timing.workMs = r.ms
    if (r.inclusionMs !== undefined) timing.inclusionMs = r.inclusionMs
    if (r.receiptAt !== undefined) timing.receiptAt = r.receiptAt
    if (r.transactionHash !== undefined) timing.transactionHash = r.transactionHash
    if (r.gasUsed !== undefined) timing.gasUsed = r.gasUsed
    if (r.observedAt !== undefined) timing.observedAt = r.observedAt
    status.timings[name] = timing
    return r
  }

  /**
   * The model run (a cross-check, and the first to reject a bad input) and the proof need only
   * the input: run them side by side, and cancel the other if one fails.
   */
  async function prove(): Promise<Proven> {
    // Workflows started before model resolution existed resolve nothing here (their activities
    // then fail the request with a refund); replaying their histories must not schedule more.
    let model: ModelRef | undefined
    let input: string[] | undefined
    let proveInference = proverOn(queues.prover)
    if (patched('resolve-model')) {
      const r = await resolve()
      model = r.model
      const route = proverRouteOf(queues, { model: model.name, size: 1, memoryBytes: memoryOf(r.proving, 1) })
      status.prover = { ...route }
      proveInference = proverOn(route.queue)
      if (model.inputVisibility === 'hashed') {
        setStage('loading-input')
        const m = model
        input = (await timed('input', () => loadInput(request, m))).input
      }
    }
    setStage('proving')
    const both = new CancellationScope()
    try {
      const [, proven] = await both.run(() =>
        Promise.all([
          // A request back from a batch attempt has had its model run already.
          ranInference ? undefined : timed('inference', () => (model ? runInference(request, model, input) : runInference(request))),
          (async () => {
            const t0 = Date.now()
            const p = await (model ? proveInference(request, model, input) : proveInference(request))
            status.timings.witness = { ms: p.witnessMs, workMs: p.witnessMs, attempts: p.attempt }
            status.timings.prove = { ms: Date.now() - t0, workMs: p.proveMs, attempts: p.attempt }
            status.timings.verify = { ms: p.verifyMs, workMs: p.verifyMs, attempts: p.attempt }
            if (status.prover && p.provedOn?.peakMemoryBytes !== undefined) status.prover.peakMemoryBytes = p.provedOn.peakMemoryBytes
            return p
          })(),
        ]),
      )
      return proven
    } catch (err) {
      both.cancel()
      throw err
    }
  }

  /** Whether the model has run on the input already (a batch attempt runs it before joining). */
  let ranInference = false

  /** The model as the registry records it, resolved once (a batch attempt resolves it first). */
  let resolved: Awaited<ReturnType<typeof resolveModel>> | undefined
  async function resolve(): Promise<Awaited<ReturnType<typeof resolveModel>>> {
    if (resolved) return resolved
    setStage('resolving')
    resolved = await timed('resolve', () => resolveModel(request))
    const m = resolved.model
    status.model = { name: m.name, version: m.version, artifactsHash: m.artifacts.manifestHash }
    return resolved
  }

  /**
   * Proves and delivers the request in a batch with others of its model and chain (see
   * batch.workflow.ts): the outcome once its batch has settled it (`sent` for a spoke's request
   * whose result left the hub in its batch's message: its settlement on the spoke follows), or
   * undefined when it goes on alone (the model has no batch circuit, it was alone in its window,
   * the batch failed, or its job came back after a reassignment).
   */
  async function inBatch(
    options: NonNullable<RequestWorkflowInput['batching']>,
    marketRequestId?: string,
  ): Promise<RequestOutcome | 'sent' | undefined> {
    const { model, batchSizes, proving } = await resolve()
    if (batchSizes.length === 0 || model.inputVisibility !== 'public' || model.outputVisibility !== 'public') return undefined
    // The model run checks the input first: a bad input fails its request here and never joins a batch.
    setStage('inference')
    await timed('inference', () => runInference(request, model))
    ranInference = true
    setStage('batching')
    await joinBatch(
      { request, workflowId: workflowInfo().workflowId, ...(marketRequestId !== undefined ? { marketRequestId } : {}) },
      {
        chainId: request.chainId,
        gateway: request.gateway,
        model,
        sizes: batchSizes,
        ...(proving ? { proving: proving.filter((c) => c.size > 1) } : {}),
        batching: options,
        queues,
      },
    )
    const waitMs = Math.max(1000, request.deadline * 1000 - Date.now())
    if (!(await condition(() => batchResult !== undefined, waitMs))) return undefined
    const r = batchResult!
    if (r.kind === 'solo') return undefined
    status.batch = {
      id: r.batchId,
      size: r.size,
      rows: r.rows,
      ...(r.prover ? { prover: r.prover } : {}),
      ...(r.transactionHash ? { transactionHash: r.transactionHash } : {}),
      ...(r.gasUsed ? { gasUsed: r.gasUsed } : {}),
    }
    if (r.row.status === 'Fulfilled') {
      status.output = r.output
      if (r.storage) status.storage = r.storage
      if (r.transactionHash) status.transactionHash = r.transactionHash
      if (status.hub) {
        status.hub.status = 'ResultSent'
        return 'sent'
      }
      setStage('fulfilled')
      return status as RequestOutcome
    }
    if (r.row.status === 'Pending') {
      // Its job moved to another node while the batch was proven (wait for it to come back, then go on
      // alone), or its deadline passed (nothing is left to do: it is refunded).
      if (!(await myTurn(marketRequestId))) return status as RequestOutcome
      return undefined
    }
    setStage('settled-elsewhere')
    return status as RequestOutcome
  }

  type Proven = Awaited<ReturnType<Activities['proveInference']>>
  type Prepared = Awaited<ReturnType<typeof prepareResult>>

  /** Fixes the storage ids of the output and the proof (signed, not yet uploaded, where the storage allows). */
  async function store(proven: Proven): Promise<Prepared> {
    status.output = proven.result.output
    setStage('storing')
    const prepared = await timed('store', () => prepareResult(request, proven.result))
    status.storage = { output: prepared.output.artifact, proof: prepared.proof.artifact }
    return prepared
  }

  /** Runs `deliver` (the transaction that records the storage ids on-chain) beside the upload. */
  async function deliverWhileUploading<T>(prepared: Prepared, deliver: () => Promise<T>): Promise<T> {
    const [tx] = await Promise.all([
      deliver(),
      prepared.output.uploaded && prepared.proof.uploaded ? undefined : timed('upload', () => uploadResult(prepared)),
    ])
    return tx
  }

  /**
   * Waits until the request's job is this node's; false when it never will be (another node
   * answered it, or it lapsed or expired), with the stage set to `settled-elsewhere`.
   */
  async function myTurn(marketRequestId?: string): Promise<boolean> {
    const previous = status.stage
    setStage('awaiting-assignment')
    let a: Awaited<ReturnType<typeof awaitAssignment>>
    for (;;) {
      a = await timed('assignment', () => awaitAssignment(request, marketRequestId))
      status.assignment = {
        ...(a.node ? { node: a.node } : {}),
        mine: a.assignment === 'mine',
        windowEnd: a.windowEnd,
        reassigned: (status.assignment?.reassigned ?? 0) + a.reassigned,
      }
      if (a.node) showNode(a.node)
      if (a.assignment !== 'other') break
      // Another node holds it: sleep (a durable timer, nothing polls) until its window has passed,
      // then look again: answered by then (closed), or reassigned by whoever comes first.
      await sleep(Math.max(1000, a.windowEnd * 1000 - Date.now()) + WINDOW_MARGIN_MS)
    }
    if (a.assignment === 'none') {
      // No pool serves it: any node may fail it (the spoke refunds it now).
      throw new Unservable(a.code ?? 'ModelUnavailable', a.reason ?? 'no node of the pool can serve it')
    }
    if (a.assignment === 'mine') {
      setStage(previous)
      return true
    }
    setStage('settled-elsewhere')
    return false
  }

  /** Runs `answer` (a submission) and, when the job was reassigned away meanwhile, waits for it to come back (at most a few times). */
  async function whileAssigned<T>(answer: () => Promise<T>, marketRequestId?: string): Promise<T | undefined> {
    for (let turn = 1; ; turn++) {
      try {
        return await answer()
      } catch (err) {
        if (failureOf(err)?.type !== 'NotAssignedError' || turn >= MAX_TURNS) throw err
        if (!(await myTurn(marketRequestId))) return undefined
      }
    }
  }

  const assigned = patched('node-assignment')

  if (request.route) return spokeRequest()

  try {
    if (assigned && !(await myTurn())) return status as RequestOutcome
    if (batching && patched('batching')) {
      const outcome = await inBatch(batching)
      if (outcome && outcome !== 'sent') return outcome
    }
    const proven = await prove()
    const prepared = await store(proven)
    setStage('fulfilling')
    const tx = await deliverWhileUploading(prepared, () =>
      whileAssigned(() => timed('fulfil', () => fulfillRequest(request, proven.result, status.storage!))),
    )
    if (!tx) return status as RequestOutcome
    if (tx.transactionHash) status.transactionHash = tx.transactionHash
    setStage(tx.status === 'Fulfilled' ? 'fulfilled' : 'settled-elsewhere')
    return status as RequestOutcome
  } catch (err) {
    const failure = failureOf(err)
    if (!failure) throw err
    if (failure.type === 'RequestSettledError' || failure.type === 'NotAssignedError') {
      // Someone else settled it (a refund after the deadline, say), or another node holds its job: nothing is left to do.
      setStage('settled-elsewhere')
      status.error = { code: 'Unknown', reason: failure.message }
      return status as RequestOutcome
    }
    const code = failure.code ?? STAGE_CODES[status.stage] ?? 'Unknown'
    const reason = `${failure.type}: ${failure.message}`.slice(0, 256)
    status.error = { code, reason }
    setStage('failing')
    const tx = await timed('fail', () => failRequest(request, code, reason))
    if (tx.transactionHash) status.transactionHash = tx.transactionHash
    setStage(tx.status === 'Failed' ? 'failed' : 'settled-elsewhere')
    return status as RequestOutcome
  }

  /**
   * Follows a fan-out request's copies, sent with its result, to their chains: each arrives there
   * verified (`Copied`) or is rejected by that chain's verification. A copy not seen before the
   * request's deadline and grace is `unknown`; the request's own outcome does not wait on it.
   */
  async function followCopies(): Promise<void> {
    const sent = (status.copies ?? []).filter((c) => c.status === 'sent')
    await Promise.all(
      sent.map(async (c) => {
        try {
          const arrived = await awaitCopy(request, { chainId: c.chainId, receiver: c.receiver, callbackGasLimit: c.callbackGasLimit })
          c.status = arrived.status
          c.transactionHash = arrived.transactionHash
          c.gasUsed = arrived.gasUsed
          if (arrived.callback) c.callback = arrived.callback
          if (arrived.error) c.error = arrived.error
        } catch (err) {
          if (!failureOf(err)) throw err
          c.status = 'unknown'
        }
      }),
    )
  }

  /** A spoke chain's request, served through the hub market (see the file comment). */
  async function spokeRequest(): Promise<RequestOutcome> {
    const route = request.route!
    const hub: NonNullable<RequestStatusView['hub']> = { chainId: route.hubChainId, market: route.market }
    status.hub = hub
    // The request message travels to the hub while the proof is made.
    const recorded = timed('hubRecord', () => awaitHubRecord(request)).then((r) => {
      hub.marketRequestId = r.marketRequestId
      hub.status = 'Open'
      // A fan-out request: its result goes to other chains too (recorded before any work, so that
      // histories of requests without copies schedule nothing new).
      if (r.destinations?.length) status.copies = r.destinations.map((d) => ({ ...d, status: 'pending' }))
      return r
    })
    recorded.catch(() => undefined) // awaited below; keeps an early rejection from going unhandled
    let marketRequestId: string | undefined
    try {
      if (assigned) {
        // Only the node the hub assigns the request to proves it: wait for the record, then the turn.
        setStage('awaiting-hub')
        marketRequestId = (await recorded).marketRequestId
        if (!(await myTurn(marketRequestId))) return status as RequestOutcome
      }
      // Batched with others of its model and spoke: one proof, one message to the spoke (a fan-out
      // request goes alone: its proof travels to other chains too).
      const batched =
        batching && marketRequestId !== undefined && !status.copies && patched('batching-spoke')
          ? await inBatch(batching, marketRequestId)
          : undefined
      if (batched && batched !== 'sent') return batched
      if (!batched) {
        const proven = await prove()
        const prepared = await store(proven)
        setStage('awaiting-hub')
        marketRequestId = (await recorded).marketRequestId
        setStage('submitting')
        const tx = await deliverWhileUploading(prepared, () =>
          whileAssigned(
            () => timed('submit', () => submitToHub(request, marketRequestId!, proven.result, status.storage!)),
            marketRequestId,
          ),
        )
        if (!tx) return status as RequestOutcome
        hub.status = tx.status
        if (tx.transactionHash) status.transactionHash = tx.transactionHash
        for (const c of status.copies ?? []) c.status = 'sent'
      }
    } catch (err) {
      const failure = err instanceof Unservable ? { type: 'Unservable', message: err.message, code: err.code } : failureOf(err)
      if (!failure) throw err
      if (failure.type === 'RequestSettledError' || failure.type === 'RelayTimeoutError' || failure.type === 'NotAssignedError') {
        setStage('settled-elsewhere')
        status.error = { code: failure.type === 'RelayTimeoutError' ? 'Timeout' : 'Unknown', reason: failure.message }
        return status as RequestOutcome
      }
      const code = failure.code ?? STAGE_CODES[status.stage] ?? 'Unknown'
      status.error = { code, reason: (err instanceof Unservable ? failure.message : `${failure.type}: ${failure.message}`).slice(0, 256) }
      setStage('failing')
      try {
        marketRequestId ??= (await recorded).marketRequestId
        const tx = await timed('fail', () => failOnHub(request, marketRequestId!, code, status.error!.reason))
        hub.status = tx.status
        if (tx.transactionHash) status.transactionHash = tx.transactionHash
      } catch (failErr) {
        const f = failureOf(failErr)
        if (!f) throw failErr
        // Not recorded in time, or settled meanwhile: the spoke refunds it after its deadline.
        setStage('settled-elsewhere')
        status.error = { code, reason: `${f.type}: ${f.message}`.slice(0, 256) }
        return status as RequestOutcome
      }
    }
    // Back to the spoke, verified there (and each copy to its chain, verified there); then the
    // spoke's receipt to the hub.
    setStage('delivering')
    const [settled] = await Promise.all([timed('spokeSettle', () => awaitSpokeSettlement(request)), followCopies()])
    setStage('settling')
    const closed = await timed('hubSettle', () => awaitHubSettlement(request, marketRequestId!))
    hub.status = closed.status
    hub.settlement = closed.settlement
    setStage(
      settled.status === 'Fulfilled' && status.error === undefined
        ? 'fulfilled'
        : settled.status === 'Failed' && status.error
          ? 'failed'
          : 'settled-elsewhere',
    )
    return status as RequestOutcome
  }
}

/** A request that no node of any pool can serve (see `awaitAssignment`): failed at once, refunded. */
class Unservable extends Error {
  constructor(
    readonly code: InferenceErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'Unservable'
  }
}

/** An activity's failure as the workflow acts on it. */
type Failure = {
  type: string
  message: string
  /** The code to fail the request with, if the failure says (see {@link codeOfFailure}). */
  code: InferenceErrorCode | undefined
}

/**
 * The failure behind an activity failure: a non-retryable error, or the last error once retries
 * ran out (then the request cannot be served in time either).
 */
function failureOf(err: unknown): Failure | undefined {
  if (!(err instanceof ActivityFailure)) return undefined
  const cause = err.cause
  if (cause instanceof ApplicationFailure) {
    const type = cause.type ?? 'Error'
    return { type, message: cause.message, code: codeOfFailure(type, cause.details) }
  }
  if (cause instanceof TimeoutFailure) {
    return { type: 'Timeout', message: `${err.activityType} timed out (${cause.timeoutType})`, code: undefined }
  }
  return undefined
}

export { batchWorkflow } from './batch.workflow.ts'
