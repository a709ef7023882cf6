/**
 * Following a request's workflow as it runs: polls its status query about every 100 ms and prints
 * each stage when it ends, with its duration: watch → inference → witness → prove → verify →
 * store → fulfil (or fail). A spoke chain's request prints its hops too:
 *
 *   spoke → hub  request relayed      the request message relayed and recorded by the hub market
 *                                     (timed from the request's block to the node seeing the record)
 *   hub  result verified and sent     the result submitted to the market: verified on the hub and
 *                                     dispatched to the spoke (one hub transaction)
 *   hub → spoke  result delivered     the result message relayed, verified on the spoke, callback
 *   spoke → hub  receipt settled      the spoke's receipt relayed back: settled on the hub
 *
 * (the relayed request travels while the proof is made, so its line may come before or after the
 * proof's). On a terminal the running stage has a live line (spinner, elapsed time, the prover's
 * last heartbeat while proving).
 *
 * Several node operators: each runs its own workflow for the request (in its own Temporal
 * namespace), and the hub's node registry assigns the request to one of them; the others' workflows
 * wait and end `settled-elsewhere`. The follower polls every operator's namespace until one says
 * the request is its own (`assignment.mine`), prints `assigned  operator N (0x…)`, and follows that
 * workflow from then on.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client'
import type { HopName, RequestStatusView, StageTiming } from '../workflows/messages.ts'
import { getRequestStatus, type RequestStatus as WorkflowStatus } from '../workflows/client.ts'
import { SertnError } from '../core/errors.ts'
import type { Progress, Step } from './progress.ts'
import { fmtGas, fmtMs } from './ui.ts'

export type RequestStatus = WorkflowStatus

/** A node operator whose workflows the follower reads: its Temporal client (on its namespace). */
export type FollowOperator = {
  client: Client
  /** How lines name it (`operator 2`). */
  name?: string | undefined
  /** Its node account. */
  address?: string | undefined
}

/** How a followed request ended, and who served it. */
export type FollowResult = {
  status: RequestStatus
  /** The operator whose workflow served the request (the one the hub assigned it to). */
  operator: FollowOperator
  /** The other operators' workflows for the request, as they stood at the end (absent: none found). */
  others: { operator: FollowOperator; stage?: RequestStatusView['stage'] | undefined; running?: boolean | undefined }[]
}

export type FollowOptions = {
  /**
   * Every node operator whose namespace may hold the request's workflow, in order (the first is
   * followed until the hub assigns the request). One operator: its workflow is the request's.
   */
  operators: readonly FollowOperator[]
  key: string
  progress: Progress
  /** Unix ms when the request's transaction was mined. */
  requestedAt: number
  /** Blocks the watcher waits for on top of the request's block. */
  confirmations: number
  /** The prover plugin's name, for labels. */
  prover: string
  /** How long the node may take to start the workflow (default 60 s). */
  startTimeoutMs?: number
  /** How long the whole request may take (default 15 min). */
  timeoutMs?: number
  pollMs?: number
  signal?: AbortSignal
  /** What to add to the `assigned` line (`in epoch 3, window 120 s`): read from the hub, say; errors are ignored. */
  describeAssignment?: (status: RequestStatus) => Promise<string | undefined>
}

/** Timed stages and hops, in the order they are printed when several end between two polls. */
const TIMED = [
  'hubRecord',
  'assignment',
  'inference',
  'witness',
  'prove',
  'verify',
  'store',
  'submit',
  'fulfil',
  'fail',
  'spokeSettle',
  'hubSettle',
] as const
type Timed = (typeof TIMED)[number]
/** Stages that run one after another: a live line each (proving has its own, with inference beside it). */
const LIVE: Partial<Record<RequestStatusView['stage'], Timed>> = {
  received: 'inference',
  'awaiting-assignment': 'assignment',
  inference: 'inference',
  storing: 'store',
  'awaiting-hub': 'hubRecord',
  submitting: 'submit',
  fulfilling: 'fulfil',
  delivering: 'spokeSettle',
  failing: 'fail',
  settling: 'hubSettle',
}

const isNotFound = (err: unknown) => err instanceof WorkflowNotFoundError || (err as { code?: unknown })?.code === 5

/** Parts of a timing worth showing besides its duration. */
function timingNotes(t: StageTiming, showWork: boolean): string[] {
  const notes: string[] = []
  if (showWork && t.workMs !== undefined && Math.abs(t.ms - t.workMs) >= 5) notes.push(`work ${fmtMs(t.workMs)}`)
  if (t.attempts > 1) notes.push(`attempt ${t.attempts}`)
  return notes
}

const short = (s: string, keep = 10) => (s.length > 2 * keep + 1 ? `${s.slice(0, keep)}…${s.slice(-6)}` : s)

/** What the running workflow's pending activities say: attempts, last failures, heartbeat times. */
type PendingActivity = { type: string; attempt: number; lastFailure?: string; lastHeartbeatAt?: number; startedAt?: number }

const tsMs = (t: { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined) =>
  t?.seconds != null ? Number(t.seconds.toString()) * 1000 + Math.round((t.nanos ?? 0) / 1e6) : undefined

async function pendingActivities(client: Client, workflowId: string): Promise<PendingActivity[]> {
  const raw = await client.workflowService.describeWorkflowExecution({
    namespace: client.options.namespace,
    execution: { workflowId },
  })
  return (raw.pendingActivities ?? []).map((a) => {
    const at = tsMs(a.lastHeartbeatTime as never)
    const started = tsMs(a.lastStartedTime as never)
    return {
      ...(started ? { startedAt: started } : {}),
      type: a.activityType?.name ?? '?',
      attempt: a.attempt ?? 1,
      ...(a.lastFailure?.message ? { lastFailure: a.lastFailure.message.split('\n')[0]!.slice(0, 120) } : {}),
      ...(at ? { lastHeartbeatAt: at } : {}),
    }
  })
}

/** `operator 2 (0x9965…A4dc)`, or the assigned node's account when the operator has no name. */
export function operatorLabel(o: FollowOperator | undefined, node?: string): string {
  const address = o?.address ?? node
  const short = address ? `${address.slice(0, 6)}…${address.slice(-4)}` : undefined
  return o?.name ? `${o.name}${short ? ` (${short})` : ''}` : short ? `node ${short}` : 'this node'
}

/** What the `assigned` line says: who, and how many reassignments it took. */
function assignmentNotes(status: RequestStatus, operator: FollowOperator | undefined): string[] {
  const a = status.assignment
  if (!a) return []
  const notes = [
    a.mine
      ? operatorLabel(operator, a.node)
      : a.node
        ? `${operatorLabel(undefined, a.node)}, not this node`
        : 'no node: no pool serves the model (any node may end it)',
  ]
  if (a.reassigned > 0) notes.push(`after ${a.reassigned} reassignment${a.reassigned === 1 ? '' : 's'}`)
  return notes
}

type Polled = { operator: FollowOperator; status?: RequestStatus; error?: unknown }

/**
 * The workflow to follow among the operators' (`found`): the one the hub assigned the request to
 * (the latest assignment when its job was reassigned; the one followed so far on a tie), else the
 * one followed so far, else any that has not stood aside (`settled-elsewhere`, or waiting while
 * another node holds the request: `assignment.mine` false). `wait` while every
 * workflow found stood aside but some operator's is not found yet (and `canWait`); undefined when
 * none is found.
 */
function chooseWorkflow(
  found: readonly Polled[],
  current: FollowOperator,
  canWait: boolean,
): { operator: FollowOperator; status: RequestStatus } | 'wait' | undefined {
  const workflows = found.filter((p): p is Polled & { status: RequestStatus } => p.status !== undefined)
  if (workflows.length === 0) return undefined
  // Standing aside: ended so, or waiting while another node holds the request.
  const active = workflows.filter((p) => p.status.stage !== 'settled-elsewhere' && p.status.assignment?.mine !== false)
  const isCurrent = (p: Polled) => p.operator.client === current.client
  const mine = active.filter((p) => p.status.assignment?.mine)
  if (mine.length) {
    const latest = Math.max(...mine.map((p) => p.status.assignment!.reassigned))
    const last = mine.filter((p) => p.status.assignment!.reassigned === latest)
    return last.find(isCurrent) ?? last[0]
  }
  const chosen = active.find(isCurrent) ?? active[0]
  if (chosen) return chosen
  if (workflows.length < found.length && canWait) return 'wait'
  return workflows.find(isCurrent) ?? workflows[0]
}

/** Each operator's workflow for `key` (or why it could not be read). */
async function pollAll(operators: readonly FollowOperator[], key: string): Promise<Polled[]> {
  return Promise.all(
    operators.map(async (operator) => {
      try {
        return { operator, status: await getRequestStatus(operator.client, key) }
      } catch (error) {
        return { operator, error }
      }
    }),
  )
}

/** A heartbeat from proveInference (ProveProgress), if it looks like one. */
function heartbeatOf(status: RequestStatus): { stage: string; elapsedMs: number; fraction?: number } | undefined {
  const hb = status.heartbeat as { stage?: unknown; elapsedMs?: unknown; fraction?: unknown } | undefined
  if (!hb || typeof hb.stage !== 'string' || typeof hb.elapsedMs !== 'number') return undefined
  return { stage: hb.stage, elapsedMs: hb.elapsedMs, ...(typeof hb.fraction === 'number' ? { fraction: hb.fraction } : {}) }
}

/**
 * Prints the request's stages until its workflow ends; returns its last status. Throws when the
 * workflow does not start within `startTimeoutMs` or does not end within `timeoutMs`.
 */
export async function followRequest(opts: FollowOptions): Promise<FollowResult> {
  const { key, progress, prover } = opts
  if (opts.operators.length === 0) throw new SertnError('followRequest: no operator to follow')
  /** The operator whose workflow is followed (see chooseWorkflow), and whether the hub assigned it the request. */
  let followed: FollowOperator & { assigned?: boolean } = opts.operators[0]!
  const pollMs = opts.pollMs ?? 100
  const perfOf = (unixMs: number) => performance.now() - (Date.now() - unixMs)
  const labels: Record<Timed, string> = {
    ...HOP_LABELS,
    inference: 'inference (onnxruntime)',
    witness: `witness (${prover})`,
    prove: `prove (${prover})`,
    verify: 'verify (off-chain)',
    store: 'store (arweave)',
    fulfil: 'fulfil (verify on-chain)',
    fail: 'fail (refund on-chain)',
    assignment: 'assigned',
  }
  /** Labels that depend on the request: a spoke's failure is sent from the hub. */
  const labelOf = (name: Timed, status: RequestStatusView) =>
    name === 'assignment' && !status.timings.assignment
      ? 'assignment (node registry)'
      : status.hub && name === 'fail'
        ? HOP_LABELS.failOnHub
        : name === 'spokeSettle' && status.error
          ? HOP_LABELS.failureDelivered
          : labels[name]
  const watchLabel = `watch (${opts.confirmations} confirmation${opts.confirmations === 1 ? '' : 's'})`
  let watch: Step | undefined = progress.begin(watchLabel, { started: perfOf(opts.requestedAt) })
  watch.note('waiting for the node to see the request')
  const printed = new Set<Timed>()
  let live: { stage: string; step: Step } | undefined
  const startDeadline = Date.now() + (opts.startTimeoutMs ?? 60_000)
  const deadline = Date.now() + (opts.timeoutMs ?? 15 * 60_000)
  let errorSince: number | undefined

  const endLive = () => {
    live?.step.cancel()
    live = undefined
  }

  try {
    for (;;) {
      if (opts.signal?.aborted) throw new SertnError('interrupted')
      let status: RequestStatus
      try {
        const found = await pollAll(opts.operators, key)
        const chosen = chooseWorkflow(found, followed, Date.now() <= startDeadline)
        if (chosen === 'wait') {
          await new Promise((r) => setTimeout(r, pollMs))
          continue
        }
        if (!chosen) throw found.find((p) => !isNotFound(p.error))?.error ?? found[0]!.error
        // Reassigned to another operator (the first missed its window): its own `assigned` line.
        if (chosen.operator.client !== followed.client && followed.assigned && chosen.status.assignment?.mine) printed.delete('assignment')
        followed = { ...chosen.operator, assigned: chosen.status.assignment?.mine === true }
        status = chosen.status
        errorSince = undefined
      } catch (err) {
        if (watch && isNotFound(err)) {
          if (Date.now() > startDeadline)
            throw new SertnError(`the node did not pick up ${key} within ${Math.round((opts.startTimeoutMs ?? 60_000) / 1000)} s`, {
              details:
                `Its workflow was not started. Is the chain-io worker running and watching this gateway? ` +
                `It serves a request once ${opts.confirmations} block(s) are mined on top of it. Check with \`sertn status ${key}\`.`,
            })
        } else {
          // A query can fail for a moment (a worker restarting): keep trying for a while.
          errorSince ??= Date.now()
          if (Date.now() - errorSince > 30_000)
            throw new SertnError(`cannot read the status of ${key}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
          ;(live?.step ?? watch)?.note(`status unavailable: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
        }
        await new Promise((r) => setTimeout(r, pollMs))
        continue
      }
      if (watch) {
        const others = status.others?.length
          ? ` (the newest of ${status.others.length + 1} workflows of this key: a reorg reused the request id)`
          : ''
        watch.done(`→ workflow ${key}${others}`, Math.max(0, status.startedAt - opts.requestedAt))
        watch = undefined
        // A query is answered once the workflow's first task has run: on a busy or cold worker
        // (the workflow sandbox loads on its first task) that can take a while; say so.
        const firstAnswer = Date.now() - status.startedAt
        if (firstAnswer > 1000) progress.done('workflow task (first)', firstAnswer, 'until the workflow first answered its status query')
      }
      // Stages that ended since the last poll, in order.
      for (const name of TIMED) {
        const t = status.timings[name]
        if (!t || printed.has(name)) continue
        if (name === 'witness' || name === 'prove' || name === 'verify') endLive()
        else if (live?.stage === name) endLive()
        printed.add(name)
        const notes: string[] = []
        if (name === 'inference') notes.push(...timingNotes(t, true))
        if (name === 'witness' && status.output) notes.push(`output [${status.output.join(', ')}]`)
        if (name === 'prove') notes.push(`activity ${fmtMs(t.ms)} with witness and verify`, ...timingNotes(t, false))
        if (name === 'store' && status.storage)
          notes.push(
            `output ${short(status.storage.output.id)}, proof ${short(status.storage.proof.id)} (${status.storage.proof.bytes} bytes)`,
            ...timingNotes(t, false),
          )
        if (name === 'fulfil' || name === 'fail') {
          if (status.transactionHash) notes.push(`tx ${short(status.transactionHash)}`)
          notes.push(...timingNotes(t, false))
        }
        if (name === 'fail' && status.error) notes.push(`${status.error.code}: ${status.error.reason}`)
        if (isHop(name)) notes.push(...hopNotes(name, t, status), ...timingNotes(t, false))
        if (name === 'assignment') {
          notes.push(...assignmentNotes(status, followed))
          const more = await opts.describeAssignment?.(status).catch(() => undefined)
          if (more) notes[0] = `${notes[0]} ${more}`
        }
        progress.done(labelOf(name, status), durationOf(name, t, opts.requestedAt), notes.join(' · '))
      }
      if (!status.running) {
        endLive()
        const operator = opts.operators.find((o) => o.client === followed.client)!
        const rest = opts.operators.filter((o) => o !== operator)
        // The others' workflows end as soon as they see the job closed: a moment to let them.
        const until = Date.now() + 5000
        let theirs = await pollAll(rest, key)
        while (theirs.some((p) => p.status?.running) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, pollMs))
          theirs = await pollAll(rest, key)
        }
        const others = theirs.map((p) => ({ operator: p.operator, stage: p.status?.stage, running: p.status?.running }))
        return { status, operator, others }
      }
      // The stage running now, with a live line.
      // (The workflow may run the model and the prover side by side: both are in `proving` then.)
      const running = status.stage === 'proving' ? 'proving' : LIVE[status.stage]
      const label =
        running === 'proving'
          ? status.timings.inference
            ? labels.prove
            : `inference ‖ ${labels.prove}`
          : running && labelOf(running, status)
      if (running && live?.stage !== running) {
        endLive()
        // The relayed request is timed from the request's block, as its line is (see durationOf).
        const started = running === 'hubRecord' ? perfOf(opts.requestedAt) : undefined
        live = {
          stage: running,
          step: progress.begin(label!, { announce: running === 'proving', ...(started !== undefined ? { started } : {}) }),
        }
      } else if (live && label) live.step.rename(label)
      if (live) {
        const pending = progress.tty ? await pendingActivities(followed.client, status.workflowId).catch(() => []) : []
        const notes: string[] = []
        if (live.stage === 'proving') {
          // The timer runs from the start of the proof activity's current attempt, as Temporal saw it.
          const prove = pending.find((a) => a.type === 'proveInference')
          if (prove?.startedAt) live.step.since(perfOf(prove.startedAt))
          const hb = heartbeatOf(status)
          const at = prove?.lastHeartbeatAt
          notes.push(
            hb
              ? `last heartbeat${at ? ` ${fmtMs(Math.max(0, Date.now() - at))} ago` : ''}: ${hb.stage} at ${fmtMs(hb.elapsedMs)}${hb.fraction !== undefined ? ` (${Math.round(hb.fraction * 100)}%)` : ''}`
              : prove?.startedAt
                ? 'proving'
                : 'waiting for a prover worker',
          )
        }
        for (const a of pending)
          if (a.attempt > 1) notes.push(`${a.type} attempt ${a.attempt}${a.lastFailure ? ` (last failure: ${a.lastFailure})` : ''}`)
        live.step.note(notes.join(' · ') || undefined)
      }
      if (Date.now() > deadline)
        throw new SertnError(`${key} is still ${status.stage} after ${Math.round((opts.timeoutMs ?? 15 * 60_000) / 1000)} s`, {
          details: `Check it with \`sertn status ${key}\`.`,
        })
      await new Promise((r) => setTimeout(r, pollMs))
    }
  } catch (err) {
    watch?.fail()
    live?.step.fail()
    throw err
  }
}

/** The hops' line labels (`sertn status` prints them too). */
export const HOP_LABELS = {
  hubRecord: 'spoke → hub  request relayed',
  submit: 'hub  result verified and sent',
  spokeSettle: 'hub → spoke  result delivered',
  hubSettle: 'spoke → hub  receipt settled',
  failOnHub: 'hub  failure sent',
  failureDelivered: 'hub → spoke  failure delivered',
} as const

/** A spoke's request's hops, in order. */
export const HOPS = ['hubRecord', 'submit', 'spokeSettle', 'hubSettle'] as const satisfies readonly HopName[]
type Hop = (typeof HOPS)[number]
const isHop = (name: Timed): name is Hop => (HOPS as readonly string[]).includes(name)

/**
 * How long a stage took, as printed: witness, prove and verify report their own work time; the
 * relayed request, from the request's block to the node seeing the market's record (it travels
 * while the workflow starts); the others, the workflow's time for their activity.
 */
function durationOf(name: Timed, t: StageTiming, requestedAt: number): number {
  if (name === 'prove') return t.workMs ?? t.ms
  if (name === 'hubRecord' && t.observedAt !== undefined) return Math.max(0, t.observedAt - requestedAt)
  return t.ms
}

/** What a hop's line says after its duration: what happened, where, and its transaction. */
export function hopNotes(name: Hop, t: StageTiming, status: RequestStatusView): string[] {
  const tx = t.transactionHash ? `tx ${short(t.transactionHash)}${t.gasUsed ? `, ${fmtGas(t.gasUsed)}` : ''}` : undefined
  const hub = status.hub
  switch (name) {
    case 'hubRecord':
      return [`recorded by the hub market as #${hub?.marketRequestId ?? '?'}`, ...(tx ? [tx] : [])]
    case 'submit':
      return [
        `verified on the hub, sent to the spoke`,
        ...(tx ? [tx] : []),
        ...(t.inclusionMs !== undefined ? [`inclusion ${fmtMs(t.inclusionMs)}`] : []),
      ]
    case 'spokeSettle':
      return [status.error ? 'refunded on the spoke, error callback' : 'verified on the spoke, callback', ...(tx ? [tx] : [])]
    case 'hubSettle':
      return [`settled on the hub${hub?.settlement ? ` (${hub.settlement})` : ''}`, ...(tx ? [tx] : [])]
  }
}
