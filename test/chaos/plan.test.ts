/** The chaos run's plan: reproducible from its seed, and shaped as the run needs. */
import { describe, expect, test } from 'vitest'
import { createRng, FAULT_KINDS, INVALID_KINDS, planFaults, planLoad } from './plan.ts'

const CHAINS = ['hub', 'spoke', 'spokelz']

describe('createRng', () => {
  test('default: the same seed gives the same sequence, another seed another', () => {
    const a = createRng(1)
    const b = createRng(1)
    const c = createRng(2)
    const xs = Array.from({ length: 20 }, () => a.float())
    expect(Array.from({ length: 20 }, () => b.float())).toEqual(xs)
    expect(Array.from({ length: 20 }, () => c.float())).not.toEqual(xs)
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true)
  })

  test('behavior: between and shuffle stay in range and keep every element', () => {
    const r = createRng(9)
    for (let i = 0; i < 200; i++) {
      const v = r.between(3, 5)
      expect(v >= 3 && v <= 5).toBe(true)
    }
    expect(r.shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5])
  })
})

describe('planLoad', () => {
  test('default: same seed, same load; another seed, another load', () => {
    const o = { requests: 50, rate: 2, chains: CHAINS }
    expect(planLoad({ ...o, seed: 1 })).toEqual(planLoad({ ...o, seed: 1 }))
    expect(planLoad({ ...o, seed: 2 })).not.toEqual(planLoad({ ...o, seed: 1 }))
  })

  test('behavior: the valid requests asked for, every invalid kind at least once, times in order, every chain used', () => {
    const plan = planLoad({ seed: 3, requests: 60, rate: 2, chains: CHAINS })
    expect(plan.filter((p) => p.kind === 'valid')).toHaveLength(60)
    const invalid = new Set(plan.flatMap((p) => (p.kind === 'invalid' ? [p.invalid] : [])))
    expect([...invalid].sort()).toEqual(Object.keys(INVALID_KINDS).sort())
    for (let i = 1; i < plan.length; i++) expect(plan[i]!.at).toBeGreaterThanOrEqual(plan[i - 1]!.at)
    expect(new Set(plan.map((p) => p.chain))).toEqual(new Set(CHAINS))
    expect(plan.some((p) => p.burst)).toBe(true)
    // At 2 per second, 60 requests take about 30 s (bursts shorten it).
    expect(plan.at(-1)!.at).toBeGreaterThan(5_000)
    expect(plan.at(-1)!.at).toBeLessThan(90_000)
  })
})

describe('planFaults', () => {
  const o = { kinds: FAULT_KINDS, chains: CHAINS, operators: 2, loadMs: 60_000, reassignWindowMs: 30_000 }

  test('default: same seed, same schedule; another seed, another', () => {
    expect(planFaults({ ...o, seed: 1 })).toEqual(planFaults({ ...o, seed: 1 }))
    expect(planFaults({ ...o, seed: 2 })).not.toEqual(planFaults({ ...o, seed: 1 }))
  })

  test('behavior: each kind once (agents once per messenger, a reorg once per chain), with its target; a stall outlasts the reassignment window; a cut lasts tens of seconds', () => {
    const plan = planFaults({ ...o, seed: 5 })
    const once = FAULT_KINDS.filter((k) => k !== 'restart-agents' && k !== 'reorg')
    expect(
      plan
        .filter((f) => once.includes(f.kind as never))
        .map((f) => f.kind)
        .sort(),
    ).toEqual([...once].sort())
    expect(
      plan
        .filter((f) => f.kind === 'restart-agents')
        .map((f) => f.messenger)
        .sort(),
    ).toEqual(['hyperlane', 'layerzero'])
    expect(
      plan
        .filter((f) => f.kind === 'reorg')
        .map((f) => f.chain)
        .sort(),
    ).toEqual([...CHAINS].sort())
    for (const f of plan) {
      if (f.kind.startsWith('kill-') || f.kind === 'stall-operator') expect([0, 1]).toContain(f.operator)
      if (f.kind === 'cut-rpc') {
        expect(CHAINS).toContain(f.chain)
        expect(f.durationMs).toBeGreaterThanOrEqual(20_000)
      }
      if (f.kind === 'stall-operator') expect(f.durationMs).toBeGreaterThan(30_000)
      if (f.kind === 'reorg' || f.kind === 'drop-tx') expect(f.depth).toBeGreaterThan(1) // deeper than the default confirmations
      if (f.kind === 'drop-tx') expect(f.chain).toBe(CHAINS[0]) // the hub, where the node sends most
      if (f.kind === 'expire') {
        expect(CHAINS).toContain(f.chain)
        expect(f.requests!.length).toBeGreaterThanOrEqual(2)
        // Recording consumers only: their own record shows the Timeout callback.
        for (const r of f.requests!) expect([0, 1]).toContain(r.consumer)
      }
    }
  })

  test('args: only the kinds asked for', () => {
    expect(planFaults({ ...o, seed: 1, kinds: ['cut-rpc'] }).map((f) => f.kind)).toEqual(['cut-rpc'])
  })
})
