/**
 * The batch workflow: one per model version, chain and node (its id is {@link batchWorkflowIdOf};
 * each node has its own namespace). Request workflows of that model that the node holds join it
 * by signal-with-start (`joinBatch`) once their input has passed the model run. It collects them
 * until its largest batch is full or the window since the first has closed, proves them in the
 * smallest batch circuit that fits (padding rows bind to no request), delivers the batch in one
 * transaction, and tells each member its row's outcome (`batchResult`). A member alone in its
 * window, or in a batch that failed, is told to go `solo`: it is proven and delivered on its own.
 *
 * Deterministic workflow code only: activities do the work. A worker killed mid-batch loses
 * nothing: the proof is retried, and the delivery is idempotent (rows settled meanwhile go as
 * padding of the same proof). Continues as new after a number of batches, carrying the members
 * that have joined since; ends after an idle hour (the next join starts it again).
 */
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow'
import type { Activities } from './activities/index.ts'
import {
  batchResultSignal,
  joinBatchSignal,
  MAX_BATCH_CALLBACK_GAS,
  type BatchMember,
  type BatchResult,
  type BatchWorkflowInput,
} from './messages.ts'
import { memoryOf, proverRouteOf, withMeasured } from './routing.ts'

/** Batches a run delivers before it continues as new (keeps its history short). */
const BATCHES_PER_RUN = 50

export async function batchWorkflow(input: BatchWorkflowInput): Promise<void> {
  /** The prover activity on `taskQueue` (the queue routing picked for the batch circuit). */
  const proverOn = (taskQueue: string) =>
    proxyActivities<Activities>({
      taskQueue,
      startToCloseTimeout: '30 minutes',
      heartbeatTimeout: '60 seconds',
      retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 3 },
    }).proveBatch
  // Each batch circuit's memory need: its manifest's, raised to the most a prover has measured.
  let proving = input.proving ?? []
  const { storeBatch } = proxyActivities<Activities>({
    taskQueue: input.queues.batch ?? input.queues.chainIo,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
  })
  const { fulfillBatch } = proxyActivities<Activities>({
    taskQueue: input.queues.batch ?? input.queues.chainIo,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
  })

  const pending: BatchMember[] = [...(input.carried ?? [])]
  const seen = new Set(pending.map(memberIdOf))
  setHandler(joinBatchSignal, (m) => {
    // A member's retried join (its activity ran twice) is the same member.
    if (seen.has(memberIdOf(m))) return
    seen.add(memberIdOf(m))
    // A newer event of a pending member's request key (the id reused after a reorg dropped the
    // older one's transaction) takes its place: the older workflow is being terminated.
    const older = pending.findIndex((p) => p.request.key === m.request.key)
    if (older >= 0) pending.splice(older, 1)
    pending.push(m)
  })

  const sizes = [...input.sizes].sort((a, b) => a - b)
  const largest = Math.min(sizes[sizes.length - 1] ?? 1, input.batching.maxSize ?? Number.MAX_SAFE_INTEGER)
  // A member that has ended meanwhile (its deadline passed) cannot be told: nothing waits for it.
  const tell = (m: BatchMember, r: BatchResult) =>
    getExternalWorkflowHandle(memberIdOf(m))
      .signal(batchResultSignal, r)
      .catch(() => undefined)

  const telling: Promise<unknown>[] = []
  for (let delivered = 0; delivered < BATCHES_PER_RUN; ) {
    if (!(await condition(() => pending.length > 0, '1 hour'))) {
      await Promise.all(telling)
      return
    }
    // The window opens with the first member; a full batch goes at once.
    await condition(() => pending.length >= largest, input.batching.windowMs)
    const take = pending.splice(0, fitting(pending, largest))
    const size = sizes.find((s) => s >= take.length)
    if (take.length < 2 || size === undefined) {
      await Promise.all(take.map((m) => tell(m, { kind: 'solo', reason: 'alone in its batch window' })))
      continue
    }
    const id = `${workflowInfo().workflowId}#${workflowInfo().runId.slice(0, 8)}-${delivered}`
    try {
      const route = proverRouteOf(input.queues, { model: input.model.name, size, memoryBytes: memoryOf(proving, size) })
      const proven = await proverOn(route.queue)(input.model, size, take)
      proving = withMeasured(proving, size, proven.provedOn?.peakMemoryBytes)
      const prover = {
        ...route,
        ...(proven.provedOn?.peakMemoryBytes !== undefined ? { peakMemoryBytes: proven.provedOn.peakMemoryBytes } : {}),
      }
      const rows = [...take.map((m) => m.request), ...Array.from({ length: size - take.length }, () => undefined)]
      // The batch's rows and proof go to storage first: the delivery records where they are.
      const storage = patched('batch-storage')
        ? await storeBatch(id, {
            size,
            modelId: input.model.modelId,
            keys: rows.map((r) => r?.key),
            inputs: proven.inputs,
            outputs: proven.outputs,
            proof: proven.proof,
          })
        : undefined
      const batch = {
        size,
        rows,
        inputs: proven.inputs,
        outputs: proven.outputs,
        proof: proven.proof,
        ...(storage ? { storage: { output: storage.output, proof: storage.proof } } : {}),
      }
      // A spoke's batch goes through the hub market: each row names its market request.
      const marketIds = take.some((m) => m.marketRequestId !== undefined)
        ? [...take.map((m) => m.marketRequestId), ...Array.from({ length: size - take.length }, () => undefined)]
        : undefined
      const outcome = await fulfillBatch(batch, marketIds)
      const outLength = proven.outputs.length / size
      const told = Promise.all(
        take.map((m, i) => {
          const row = outcome.rows[m.request.key]
          if (!row) return tell(m, { kind: 'solo', reason: `batch ${id} did not report its row` })
          return tell(m, {
            kind: 'delivered',
            batchId: id,
            size,
            rows: take.length,
            row,
            ...(outcome.transactionHash ? { transactionHash: outcome.transactionHash } : {}),
            ...(outcome.gasUsed ? { gasUsed: outcome.gasUsed } : {}),
            ...(storage ? { storage: { output: storage.output, proof: storage.proof } } : {}),
            output: proven.outputs.slice(i * outLength, (i + 1) * outLength),
            prover,
          })
        }),
      )
      // Telling 64 members takes the server a while under load: the next batch need not wait for it
      // (the run waits for every telling before it continues as new).
      if (patched('batch-tell-in-background')) telling.push(told)
      else await told
      delivered++
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err
      // The batch could not be proven or delivered (retries exhausted, a rejection): each member goes on alone.
      const reason = `batch ${id} failed: ${err.cause?.message ?? err.message}`.slice(0, 256)
      await Promise.all(take.map((m) => tell(m, { kind: 'solo', reason })))
    }
  }
  await Promise.all(telling)
  await condition(allHandlersFinished)
  await continueAsNew<typeof batchWorkflow>({ ...input, ...(proving.length > 0 ? { proving } : {}), carried: pending })
}

/** A member's workflow id (its request key for members that joined before ids named the event). */
const memberIdOf = (m: BatchMember): string => m.workflowId ?? m.request.key

/** How many of the first `pending` members one batch takes: at most `largest`, and no more callback gas than a batch may carry. */
function fitting(pending: readonly BatchMember[], largest: number): number {
  let gas = 0
  let n = 0
  for (const m of pending.slice(0, largest)) {
    gas += m.request.callbackGasLimit
    if (n > 0 && gas > MAX_BATCH_CALLBACK_GAS) break
    n++
  }
  return n
}
