/**
 * The worker's activity interceptor: every activity (a stage of a request or a batch) is counted
 * and timed in core/metrics.ts, `sertn_requests_total{chain, stage, outcome}` and
 * `sertn_stage_duration_seconds{stage, outcome}`, with the activity's name as the stage, the
 * chain taken from its input where it has one (a request, a batch member or a batch's rows), else
 * from its workflow's id (a request's or a batch's id starts with its chain id), and `ok` or the
 * error's class name as the outcome.
 */
import { Context } from '@temporalio/activity'
import type { ActivityInterceptorsFactory } from '@temporalio/worker'
import { metrics } from '../../core/metrics.ts'

/**
 * The chain an activity is about: its arguments' (a request in them), else its workflow's
 * (`req:<chainId>:…`, `batch:<chainId>:…`), by name (from `chainNames`) or id; `''` if none.
 */
export function chainOfArgs(args: readonly unknown[], chainNames: ReadonlyMap<number, string>, workflowId?: string): string {
  const fromId = workflowId ? /^(?:req|batch):(\d+):/.exec(workflowId)?.[1] : undefined
  const id = chainIdOf(args[0]) ?? (fromId !== undefined ? Number(fromId) : undefined)
  if (id === undefined) return ''
  return chainNames.get(id) ?? String(id)
}

function chainIdOf(x: unknown, depth = 0): number | undefined {
  if (!x || typeof x !== 'object' || depth > 2) return undefined
  const o = x as Record<string, unknown>
  if (typeof o.chainId === 'number') return o.chainId
  for (const k of ['request', 'member']) {
    const id = chainIdOf(o[k], depth + 1)
    if (id !== undefined) return id
  }
  for (const k of ['rows', 'members']) {
    const list = o[k]
    if (Array.isArray(list))
      for (const item of list) {
        const id = chainIdOf(item, depth + 1)
        if (id !== undefined) return id
      }
  }
  return undefined
}

/** The outcome label of a failed activity: the error's class name (bounded: one per error class). */
export function outcomeOf(err: unknown): string {
  return err instanceof Error && err.name ? err.name : 'error'
}

/** An activity interceptor factory recording every activity's count and duration. */
export function metricsInterceptor(chainNames: ReadonlyMap<number, string>): ActivityInterceptorsFactory {
  return () => ({
    inbound: {
      async execute(input, next) {
        const { activityType: stage, workflowExecution } = Context.current().info
        const chain = chainOfArgs(input.args, chainNames, workflowExecution?.workflowId)
        const t0 = performance.now()
        let outcome = 'ok'
        try {
          return await next(input)
        } catch (err) {
          outcome = outcomeOf(err)
          throw err
        } finally {
          metrics.stageSeconds.observe({ stage, outcome }, (performance.now() - t0) / 1000)
          metrics.requests.inc({ chain, stage, outcome })
        }
      },
    },
  })
}
