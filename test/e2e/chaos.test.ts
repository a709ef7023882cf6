/**
 * The CI-sized chaos run: `npm run chaos` itself (test/chaos/run.ts), as a child process in its own
 * process group, with 100 requests from consumers on the hub, the Hyperlane spoke and the LayerZero
 * spoke and every fault kind injected while they run (worker kills, a Temporal restart, an RPC cut,
 * each messenger's agents restarted, an operator stalled past its window, each chain reorganised,
 * requests left to expire). Its own checker reads the chains afterwards; this test holds the run to
 * its last JSON line: nothing lost, nothing doubled, no violation, every request settled, the
 * expiring ones not fulfilled, every invalid request refused, every fault kind injected.
 *
 * `SERTN_CHAOS_REQUESTS` changes the size (the goal's 1,000-request run is `npm run chaos -- --requests 1000`).
 */
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { startProcess, type ManagedProcess } from '../../core/process.ts'
import { FAULT_KINDS } from '../chaos/plan.ts'
import { REPO } from '../support/cli.ts'

const REQUESTS = Number(process.env.SERTN_CHAOS_REQUESTS ?? 100)
const SEED = 1
/** The run's own bound on waiting for outcomes is 900 s; the whole run, network included, fits in this. */
const LIMIT_MS = 40 * 60_000

let proc: ManagedProcess | undefined

afterAll(async () => {
  // SIGTERM first: the run stops the network it started (its anvils, Temporal, workers, agents).
  await proc?.stop(120_000)
}, 180_000)

test(
  `chaos: ${REQUESTS} requests on three chains under every fault kind end exactly once, checked from the chains`,
  async () => {
    const logFile = join(tmpdir(), `sertn-chaos-ci-${Date.now()}.log`)
    const log = createWriteStream(logFile)
    let last = ''
    proc = startProcess({
      name: 'chaos',
      command: process.execPath,
      args: ['--import', 'tsx', 'test/chaos/run.ts', '--requests', String(REQUESTS), '--seed', String(SEED)],
      cwd: REPO,
      onLine: (line) => {
        log.write(`${line}\n`)
        if (line.startsWith('{')) last = line
      },
    })
    const timer = setTimeout(() => void proc?.stop(120_000), LIMIT_MS)
    const code = await proc.closed.finally(() => clearTimeout(timer))
    await new Promise((r) => log.end(r))
    const tail = async () => (await readFile(logFile, 'utf8')).split('\n').slice(-60).join('\n')
    expect(last, `no JSON line; the run's last lines (${logFile}):\n${await tail()}`).not.toBe('')
    const r = JSON.parse(last) as {
      requests: number
      invalid: number
      invalidRefused: number
      fulfilled: number
      failed: number
      refunded: number
      lost: number
      doubled: number
      violations: number
      expiring: number
      faults: string[]
    }
    const context = `${last}\n${await tail()}`
    expect({ lost: r.lost, doubled: r.doubled, violations: r.violations }, context).toEqual({ lost: 0, doubled: 0, violations: 0 })
    expect(code, context).toBe(0)
    // Every accepted request (the load's and the expiring ones) reached one outcome.
    expect(r.requests, context).toBeGreaterThanOrEqual(REQUESTS)
    expect(r.fulfilled + r.failed + r.refunded, context).toBe(r.requests)
    // The expiring ones were not fulfilled: each ended refunded, or failed with Timeout by its node
    // (the checker's expiry rule, within violations 0).
    expect(r.expiring, context).toBeGreaterThan(0)
    expect(r.fulfilled, context).toBeLessThanOrEqual(r.requests - r.expiring)
    expect(r.invalidRefused, context).toBe(r.invalid)
    expect(new Set(r.faults), context).toEqual(new Set(FAULT_KINDS))
  },
  LIMIT_MS + 60_000,
)
