/**
 * The fault runner over a stand-in network (a unit test of faults.ts alone; the chaos run drives it
 * against the real one): each planned fault is injected and undone in order and recorded with its
 * times, and a run stopped in the middle of a fault still undoes it.
 */
import { describe, expect, test } from 'vitest'
import { FaultRunner } from './faults.ts'
import type { LoadSender } from './load.ts'
import type { ChaosNetwork, ChaosWorker } from './network.ts'
import type { PlannedFault } from './plan.ts'

function fakeNetwork() {
  const calls: string[] = []
  const worker = (operator: number, role: ChaosWorker['role']): ChaosWorker => ({
    operator,
    role,
    starts: 1,
    proc: { name: `operator-${operator + 1}-${role}`, pid: 1000 + operator * 10 } as ChaosWorker['proc'],
  })
  const workers = [0, 1].flatMap((op) => (['chain-io', 'inference', 'prover'] as const).map((r) => worker(op, r)))
  const proxy = {
    url: 'http://127.0.0.1:1',
    close: async () => void calls.push('proxy close'),
    open: async () => void calls.push('proxy open'),
  }
  const net = {
    proxies: { hub: proxy, spoke: proxy },
    workersOf: (op: number) => workers.filter((w) => w.operator === op),
    kill: async (w: ChaosWorker) => void calls.push(`kill ${w.proc.name}`),
    restart: (w: ChaosWorker) => void calls.push(`restart ${w.proc.name}`),
    signalOperator: (op: number, s: string) => void calls.push(`${s} operator ${op + 1}`),
    local: {
      stopAgents: async (m?: string) => void calls.push(`agents stop ${m}`),
      startAgents: async (m?: string) => void calls.push(`agents start ${m}`),
      services: {
        temporal: { process: { pid: 1 }, address: '127.0.0.1:7233' },
        restartTemporal: async () => void calls.push('temporal restart'),
      },
    },
  } as unknown as ChaosNetwork
  return { net, calls }
}

const sender = {} as LoadSender

describe('FaultRunner', () => {
  test('default: every fault injected and undone in order, each recorded with its times and target', async () => {
    const { net, calls } = fakeNetwork()
    const plan: PlannedFault[] = [
      { kind: 'kill-prover', gapMs: 1, durationMs: 5, operator: 1 },
      { kind: 'cut-rpc', gapMs: 1, durationMs: 5, chain: 'spoke' },
      { kind: 'restart-temporal', gapMs: 1, durationMs: 0 },
      { kind: 'restart-agents', gapMs: 1, durationMs: 5, messenger: 'layerzero' },
      { kind: 'stall-operator', gapMs: 1, durationMs: 5, operator: 0 },
    ]
    const runner = new FaultRunner({ net, plan, sender, pending: () => 1, signal: new AbortController().signal, log: () => {} })
    await runner.run()
    expect(calls).toEqual([
      'kill operator-2-prover',
      'restart operator-2-prover',
      'proxy close',
      'proxy open',
      'temporal restart',
      'agents stop layerzero',
      'agents start layerzero',
      'SIGSTOP operator 1',
      'SIGCONT operator 1',
    ])
    expect(runner.faults.map((f) => [f.kind, f.target])).toEqual([
      ['kill-prover', 'operator-2-prover'],
      ['cut-rpc', 'spoke'],
      ['restart-temporal', 'temporal 127.0.0.1:7233'],
      ['restart-agents', 'layerzero agents'],
      ['stall-operator', 'operator 1'],
    ])
    for (const f of runner.faults) expect(f.until).toBeGreaterThanOrEqual(f.at)
    expect(runner.active).toBeUndefined()
  })

  test('behavior: stopped during a stall or a cut, the runner still undoes it and injects nothing more', async () => {
    const { net, calls } = fakeNetwork()
    const abort = new AbortController()
    const plan: PlannedFault[] = [
      { kind: 'stall-operator', gapMs: 1, durationMs: 60_000, operator: 1 },
      { kind: 'cut-rpc', gapMs: 1, durationMs: 60_000, chain: 'hub' },
    ]
    const runner = new FaultRunner({ net, plan, sender, pending: () => 1, signal: abort.signal, log: () => {} })
    const run = runner.run()
    await new Promise((r) => setTimeout(r, 50))
    expect(runner.active).toBe('stall-operator operator 2')
    abort.abort()
    await run
    expect(calls).toEqual(['SIGSTOP operator 2', 'SIGCONT operator 2'])
  })
})
