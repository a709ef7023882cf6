/**
 * The prover pools' usage, summed over the pools of this process: `sertn_prover_slots` and
 * `sertn_prover_busy` (core/metrics.ts) and the prover entry of the health state (core/health.ts,
 * shown by `/readyz`). A pool reports each time a slot takes or finishes a job.
 */
import { reportProver } from '../../../core/health.ts'
import { metrics } from '../../../core/metrics.ts'

const pools = new Map<object, { slots: number; busy: number }>()

/** `pool` has `slots` slots, `busy` of them running a job (a disposed pool reports 0 slots). */
export function reportPoolUsage(pool: object, slots: number, busy: number): void {
  if (slots === 0) pools.delete(pool)
  else pools.set(pool, { slots, busy })
  let s = 0
  let b = 0
  for (const p of pools.values()) {
    s += p.slots
    b += p.busy
  }
  metrics.proverSlots.set(s)
  metrics.proverBusy.set(b)
  reportProver({ slots: s, busy: b })
}
