/**
 * The chaos run's resource watch: the growth maths, the sampler's series (a restarted worker is a
 * new one), the Linux `/proc` reader on this very process, the summary lines, and the history
 * listing against a real Temporal dev server.
 */
import { spawn } from 'node:child_process'
import { Client, Connection } from '@temporalio/client'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTemporalDevServer, type TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'
import {
  aggregateHistories,
  formatResourceReport,
  leastSquaresSlope,
  type ProcUsage,
  ResourceSampler,
  type ResourceSample,
  readProcUsage,
  resourceJson,
  summarizeSeries,
  temporalHistoryStats,
} from './resources.ts'

const MiB = 1024 * 1024

describe('leastSquaresSlope', () => {
  test('default: an exact line gives its slope', () => {
    expect(leastSquaresSlope([0, 1, 2, 3].map((x) => ({ x, y: 5 + 2 * x })))).toBe(2)
  })

  test('behavior: noisy points give the least-squares slope', () => {
    // x 0..3, y 1, 3, 2, 5: mean x 1.5, mean y 2.75; sxy = 5.5, sxx = 5 → 1.1
    expect(leastSquaresSlope([1, 3, 2, 5].map((y, x) => ({ x, y })))).toBeCloseTo(1.1, 12)
  })

  test('behavior: undefined with fewer than two points or one x', () => {
    expect(leastSquaresSlope([])).toBeUndefined()
    expect(leastSquaresSlope([{ x: 1, y: 1 }])).toBeUndefined()
    expect(
      leastSquaresSlope([
        { x: 1, y: 1 },
        { x: 1, y: 9 },
      ]),
    ).toBeUndefined()
  })
})

/** Samples every `stepMs` from `t0`, RSS growing by `mibPerStep` MiB and fds by one every other sample. */
function ramp(n: number, stepMs: number, mibPerStep: number, t0 = 1_000_000): ResourceSample[] {
  return Array.from({ length: n }, (_, i) => ({
    at: t0 + i * stepMs,
    rssBytes: (100 + i * mibPerStep) * MiB,
    fds: 20 + Math.floor(i / 2),
  }))
}

describe('summarizeSeries', () => {
  test('default: first/last/max and growth per hour over a long enough series', () => {
    // 13 samples 15 s apart (180 s), +0.5 MiB each: 2 MiB/min = 120 MiB/h.
    const s = summarizeSeries(42, ramp(13, 15_000, 0.5))
    expect(s).toMatchObject({
      pid: 42,
      samples: 13,
      firstRssMiB: 100,
      lastRssMiB: 106,
      maxRssMiB: 106,
      firstFds: 20,
      lastFds: 26,
      maxFds: 26,
      durationS: 180,
      rssMiBPerHour: 120,
    })
    // fds 20,20,21,21,…,26 over 180 s: least squares ≈ 0.0333/s ≈ 120/h (a staircase, not exact).
    expect(s.fdsPerHour).toBeGreaterThan(110)
    expect(s.fdsPerHour).toBeLessThan(130)
  })

  test('behavior: no growth for a series shorter than 60 s or with fewer than 3 samples', () => {
    const short = summarizeSeries(1, ramp(6, 10_000, 1)) // 50 s
    expect(short.durationS).toBe(50)
    expect(short.rssMiBPerHour).toBeUndefined()
    expect(short.fdsPerHour).toBeUndefined()
    const few = summarizeSeries(1, ramp(2, 120_000, 1)) // 120 s, 2 samples
    expect(few.rssMiBPerHour).toBeUndefined()
  })

  test('behavior: growth counts only the samples after the mark', () => {
    // Start-up: +50 MiB in the first two samples, then flat for 5 minutes.
    const samples: ResourceSample[] = [
      { at: 0, rssBytes: 50 * MiB, fds: 10 },
      { at: 15_000, rssBytes: 100 * MiB, fds: 30 },
      ...Array.from({ length: 21 }, (_, i) => ({ at: 30_000 + i * 15_000, rssBytes: 100 * MiB, fds: 30 })),
    ]
    expect(summarizeSeries(1, samples).rssMiBPerHour).toBeGreaterThan(10)
    const after = summarizeSeries(1, samples, 30_000)
    expect(after.rssMiBPerHour).toBe(0)
    expect(after.fdsPerHour).toBe(0)
    expect(after.firstRssMiB).toBe(50) // the figures still cover the whole series
    // A mark too late for 60 s of samples after it: no growth.
    expect(summarizeSeries(1, samples, 300_000).rssMiBPerHour).toBeUndefined()
  })
})

describe('ResourceSampler', () => {
  test('behavior: a restarted worker (new pid) is a new series; a gone process is skipped', async () => {
    let clock = 0
    const usage = new Map<number, ProcUsage>([
      [100, { rssBytes: 200 * MiB, fds: 40 }],
      [200, { rssBytes: 300 * MiB, fds: 50 }],
    ])
    const workers = [
      { name: 'operator-1-prover', pid: 100 },
      { name: 'operator-1-chain-io', pid: 200 },
    ]
    const sampler = new ResourceSampler({
      workers: () => workers,
      readProc: async (pid) => usage.get(pid),
      now: () => clock,
    })
    for (let i = 0; i < 5; i++) {
      await sampler.sample()
      clock += 30_000
      usage.set(100, { rssBytes: (200 + (i + 1) * 2) * MiB, fds: 40 })
    }
    sampler.mark('warm-up done')
    // The prover dies: one sample finds it gone, then it comes back as pid 101.
    usage.delete(100)
    await sampler.sample()
    clock += 30_000
    workers[0] = { name: 'operator-1-prover', pid: 101 }
    usage.set(101, { rssBytes: 150 * MiB, fds: 30 })
    await sampler.sample()

    const report = sampler.report()
    expect(report.marks).toEqual([{ label: 'warm-up done', at: 150_000 }])
    const prover = report.workers['operator-1-prover']!
    expect(prover.map((s) => [s.pid, s.samples])).toEqual([
      [100, 5],
      [101, 1],
    ])
    // pid 100's samples all precede the mark: no growth after it.
    expect(prover[0]!.rssMiBPerHour).toBeUndefined()
    expect(prover[0]).toMatchObject({ firstRssMiB: 200, lastRssMiB: 208, maxRssMiB: 208, durationS: 120 })
    expect(report.workers['operator-1-chain-io']).toMatchObject([{ pid: 200, samples: 7, durationS: 180 }])
    // The chain-io worker has 2 samples over 30 s after the mark: too short.
    expect(report.workers['operator-1-chain-io']![0]!.rssMiBPerHour).toBeUndefined()
  })

  test('behavior: start() samples at once and then every everyMs until stop()', async () => {
    let reads = 0
    const sampler = new ResourceSampler({
      workers: () => [{ name: 'w', pid: 7 }],
      everyMs: 20,
      readProc: async () => {
        reads++
        return { rssBytes: 64 * MiB, fds: 12 }
      },
    })
    sampler.start()
    expect(reads).toBe(1) // at once, before any timer fired
    // Bounded wait for two more timer samples (a loaded machine delays timers).
    const startedAt = Date.now()
    while (reads < 3 && Date.now() - startedAt < 5000) await new Promise((r) => setTimeout(r, 10))
    sampler.stop()
    const n = reads
    expect(n).toBeGreaterThanOrEqual(3)
    await new Promise((r) => setTimeout(r, 80))
    expect(reads).toBe(n)
    expect(sampler.report().workers.w![0]!.samples).toBe(n)
  })

  test('error: a throwing readProc loses that sample only', async () => {
    let fail = true
    const sampler = new ResourceSampler({
      workers: () => [{ name: 'w', pid: 7 }],
      readProc: async () => {
        if (fail) throw new Error('EIO')
        return { rssBytes: MiB, fds: 4 }
      },
    })
    await sampler.sample()
    fail = false
    await sampler.sample()
    expect(sampler.report().workers.w![0]!.samples).toBe(1)
  })
})

describe.runIf(process.platform === 'linux')('readProcUsage', () => {
  test('default: this process has plausible memory and descriptors', async () => {
    const u = await readProcUsage(process.pid)
    expect(u).toBeDefined()
    expect(u!.rssBytes).toBeGreaterThan(10 * MiB)
    expect(u!.rssBytes).toBeLessThan(64 * 1024 * MiB)
    expect(u!.fds).toBeGreaterThan(3)
  })

  test('behavior: undefined for a process that has exited', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
    const pid = child.pid!
    await new Promise((r) => child.once('exit', r))
    // Reaped by node on exit: the pid no longer names a process (pids are not reused this fast).
    expect(await readProcUsage(pid)).toBeUndefined()
    expect(await readProcUsage(2 ** 31 - 1)).toBeUndefined()
  })
})

describe('aggregateHistories', () => {
  test('default: per type count, p50/p95/max of events and bytes', () => {
    const infos = [
      ...Array.from({ length: 21 }, (_, i) => ({ type: 'requestWorkflow', historyLength: 40 + i, historySize: 10_000 + i * 1000 })),
      { type: 'batchWorkflow', historyLength: 11, historySize: undefined },
      { type: 'batchWorkflow', historyLength: 13, historySize: undefined },
    ]
    const byType = aggregateHistories(infos)
    expect(Object.keys(byType)).toEqual(['batchWorkflow', 'requestWorkflow'])
    expect(byType.requestWorkflow).toEqual({
      count: 21,
      historyLength: { p50: 50, p95: 59, max: 60 },
      historySize: { p50: 20_000, p95: 29_000, max: 30_000 },
    })
    expect(byType.batchWorkflow).toEqual({ count: 2, historyLength: { p50: 12, p95: 13, max: 13 }, historySize: undefined })
  })
})

describe('formatResourceReport and resourceJson', () => {
  const report = {
    marks: [{ label: 'warm-up done', at: 0 }],
    workers: {
      'operator-1-prover': [
        {
          pid: 1,
          samples: 3,
          firstRssMiB: 200,
          lastRssMiB: 210,
          maxRssMiB: 210,
          firstFds: 40,
          lastFds: 40,
          maxFds: 40,
          durationS: 30,
          rssMiBPerHour: undefined,
          fdsPerHour: undefined,
        },
        {
          pid: 2,
          samples: 40,
          firstRssMiB: 212.3,
          lastRssMiB: 230.1,
          maxRssMiB: 241,
          firstFds: 41,
          lastFds: 43,
          maxFds: 44,
          durationS: 600,
          rssMiBPerHour: 14.2,
          fdsPerHour: 1.1,
        },
      ],
      'operator-2-inference': [
        {
          pid: 3,
          samples: 2,
          firstRssMiB: 90,
          lastRssMiB: 91,
          maxRssMiB: 91,
          firstFds: 20,
          lastFds: 21,
          maxFds: 21,
          durationS: 15,
          rssMiBPerHour: undefined,
          fdsPerHour: undefined,
        },
      ],
    },
  }
  const history = {
    namespaces: ['op1', 'op2'],
    workflows: 814,
    open: 0,
    truncated: false,
    byType: {
      batchWorkflow: { count: 2, historyLength: { p50: 12, p95: 13, max: 13 }, historySize: undefined },
      requestWorkflow: {
        count: 812,
        historyLength: { p50: 61, p95: 88, max: 140 },
        historySize: { p50: 14_541, p95: 20_480, max: 33_792 },
      },
    },
  }

  test('default: one memory line per worker (its longest series), one history line per type', () => {
    expect(formatResourceReport(report, history)).toEqual([
      '  memory     operator-1-prover: 212.3 → 230.1 MiB (max 241.0), +14.2 MiB/h; fds 41 → 43, +1.1/h [longest of 2 processes]',
      '  memory     operator-2-inference: 90.0 → 91.0 MiB (max 91.0), growth n/a (2 samples over 15 s); fds 20 → 21',
      '  history    batchWorkflow: 2 workflows, events p50 12 / p95 13 / max 13',
      '  history    requestWorkflow: 812 workflows, events p50 61 / p95 88 / max 140, size p50 14.2 KiB / p95 20.0 KiB / max 33.0 KiB',
    ])
  })

  test('behavior: without history, memory lines only; a truncated listing says so', () => {
    expect(formatResourceReport(report)).toHaveLength(2)
    expect(formatResourceReport({ marks: [], workers: {} }, { ...history, open: 5, truncated: true }).at(-1)).toBe(
      '  history    814 workflows listed, 5 of them open (counted with their history so far), listing stopped at the bound',
    )
  })

  test('default: resourceJson is compact and JSON-safe', () => {
    const json = resourceJson(report, history)
    expect(json).toEqual({
      workers: {
        'operator-1-prover': { rssMiBPerHour: 14.2, fdsPerHour: 1.1, maxRssMiB: 241, maxFds: 44, processes: 2 },
        'operator-2-inference': { rssMiBPerHour: null, fdsPerHour: null, maxRssMiB: 91, maxFds: 21, processes: 1 },
      },
      history: {
        batchWorkflow: { count: 2, maxHistoryLength: 13, p95HistoryLength: 13, maxHistoryBytes: null },
        requestWorkflow: { count: 812, maxHistoryLength: 140, p95HistoryLength: 88, maxHistoryBytes: 33_792 },
      },
    })
    expect(JSON.parse(JSON.stringify(json))).toEqual(json)
    expect(resourceJson(report).history).toBeNull()
  })
})

describe('temporalHistoryStats (Temporal dev server)', () => {
  let temporal: TemporalDevServer
  let connection: Connection

  beforeAll(async () => {
    temporal = await startTemporalDevServer({ extraNamespaces: ['other'] })
    connection = await Connection.connect({ address: temporal.address })
  })

  afterAll(async () => {
    await connection?.close()
    await temporal?.stop()
  })

  test('default: lists every namespace, per type, bounded by maxWorkflows', async () => {
    const run = `r${Date.now()}`
    // No worker polls these task queues: each history stays at its first events.
    const a = new Client({ connection, namespace: temporal.namespace })
    const b = new Client({ connection, namespace: 'other' })
    const handles = await Promise.all([
      ...[1, 2, 3].map((i) => a.workflow.start('alphaWorkflow', { taskQueue: 'nobody', workflowId: `${run}-a${i}`, args: [] })),
      b.workflow.start('betaWorkflow', { taskQueue: 'nobody', workflowId: `${run}-b1`, args: [] }),
    ])
    await handles[0]!.terminate('history test')
    const namespaces = [temporal.namespace, 'other']
    // Visibility follows the writes: wait (bounded) until it shows the termination.
    let stats = await temporalHistoryStats(connection, namespaces)
    for (let i = 0; i < 50 && stats.byType.alphaWorkflow?.historyLength.max !== 3; i++) {
      await new Promise((r) => setTimeout(r, 200))
      stats = await temporalHistoryStats(connection, namespaces)
    }
    expect(stats).toMatchObject({ namespaces, workflows: 4, open: 3, truncated: false })
    // Started + WorkflowTaskScheduled (+ Terminated for the first).
    expect(stats.byType.alphaWorkflow).toMatchObject({ count: 3, historyLength: { p50: 2, max: 3 } })
    expect(stats.byType.betaWorkflow).toMatchObject({ count: 1, historyLength: { p50: 2, p95: 2, max: 2 } })
    expect(stats.byType.alphaWorkflow!.historySize?.max).toBeGreaterThan(100)

    const running = await temporalHistoryStats(connection, namespaces, { query: `ExecutionStatus = 'Running'` })
    expect(running.byType.alphaWorkflow?.count).toBe(2)
    // Without describing them, open workflows have the list's stale length (0 here).
    const listed = await temporalHistoryStats(connection, namespaces, { describeOpen: false })
    expect(listed.byType.betaWorkflow?.historyLength.max).toBe(0)
    const bounded = await temporalHistoryStats(connection, namespaces, { maxWorkflows: 2 })
    expect(bounded).toMatchObject({ workflows: 2, truncated: true })
  })
})
