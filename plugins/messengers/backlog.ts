/**
 * The local agents' backlog per messenger and route, for operators: `sertn_relay_pending_messages`
 * and `sertn_relay_rejected_messages` (core/metrics.ts) and the relay entries of the health state
 * (core/health.ts, shown by `/readyz`). Agents report after each delivery round.
 */
import { reportRelay } from '../../core/health.ts'
import { metrics } from '../../core/metrics.ts'

/** What an agent of one route holds: messages waiting, and messages given up on. */
export type Backlog = { pending: number; rejected: number }

/** `route`: `origin→destination`, with the agent's role where a route has several (`hub→spoke dvn`). */
export function reportBacklog(messenger: string, route: string, backlog: Backlog): void {
  metrics.relayPending.set({ messenger, route }, backlog.pending)
  metrics.relayRejected.set({ messenger, route }, backlog.rejected)
  reportRelay(`${messenger} ${route}`, backlog)
}
