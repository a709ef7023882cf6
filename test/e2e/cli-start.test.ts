/**
 * `sertn start --once` end to end, as a user runs it: a child process that starts anvil, the
 * Temporal dev server, arlocal and three worker processes in a temporary data directory (any free
 * ports), serves the demo request to a verified result, stops everything and exits 0. A second run
 * on the same directory reuses the persisted chain and contracts and serves a new request.
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const RUN_TIMEOUT_MS = 150_000

type Run = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

let dataDir: string
const running = new Set<number>()

/** Processes whose command line mentions `dir` (anvil --state, temporal --db-filename, arlocal --db, workers --config). */
function processesUsing(dir: string): { pid: number; cmd: string }[] {
  if (!existsSync('/proc')) return []
  const found: { pid: number; cmd: string }[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ')
      if (cmd.includes(dir)) found.push({ pid: Number(entry), cmd })
    } catch {
      // gone
    }
  }
  return found
}

/** Runs `sertn …` in its own process group; on timeout, SIGINT (a clean stop), then SIGKILL. */
function sertn(args: string[], timeoutMs = RUN_TIMEOUT_MS): Promise<Run> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/sertn.ts', ...args], {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    const pid = child.pid!
    running.add(pid)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const interrupt = setTimeout(() => {
      stderr += `\n[test] no exit after ${timeoutMs} ms: SIGINT\n`
      try {
        process.kill(-pid, 'SIGINT')
      } catch {
        // gone
      }
    }, timeoutMs)
    const kill = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, timeoutMs + 20_000)
    child.once('exit', (code, signal) => {
      clearTimeout(interrupt)
      clearTimeout(kill)
      running.delete(pid)
      // Let the pipes drain.
      setTimeout(() => resolvePromise({ code, signal, stdout, stderr }), 50)
    })
  })
}

const ANY_PORTS = ['--anvil-port', '0', '--temporal-port', '0', '--ui-port', '0', '--arlocal-port', '0']

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sertn-cli-start-'))
})

afterAll(async () => {
  // Whatever is left (a run that hung): the CLI's group, then anything else using the directory.
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  for (const p of processesUsing(dataDir)) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  await rm(dataDir, { recursive: true, force: true })
})

describe('sertn start --once', () => {
  test('starts the stack, serves the demo request to a verified result, stops everything, exits 0', async () => {
    const r = await sertn(['start', '--once', '--data-dir', dataDir, ...ANY_PORTS])
    const output = `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
    expect(r.code, output).toBe(0)
    expect(r.stdout, output).toMatch(/verified result: label [0-2], score -?\d+\.\d{4}/)
    expect(r.stdout).toMatch(/request +#1 +req:31337:0x[0-9a-f]{40}:1/)
    expect(r.stdout).toMatch(/arweave +output \S+/)
    expect(r.stdout).toMatch(/fulfil +tx 0x[0-9a-f]{64}/)
    for (const stage of ['anvil', 'contracts', 'Temporal dev server', 'arlocal', 'workers', 'watch', 'inference', 'witness', 'prove', 'verify', 'store', 'fulfil', 'callback', 'stop'])
      expect(r.stderr, `stage ${stage}\n${output}`).toMatch(new RegExp(`✔ ${stage}`))
    expect(r.stderr).toMatch(/contracts .* deployed: gateway/)

    // Persisted for the next start; nothing left running.
    for (const f of ['anvil-state.json', 'deployment.json', 'sertn.config.json', 'temporal.db', 'arweave-wallet.json'])
      expect(existsSync(join(dataDir, f)), f).toBe(true)
    expect(existsSync(join(dataDir, 'stack.json'))).toBe(false)
    expect(processesUsing(dataDir)).toEqual([])
  }, RUN_TIMEOUT_MS + 30_000)

  test('a second start reuses the persisted chain and contracts and serves a new request', async () => {
    const first = JSON.parse(readFileSync(join(dataDir, 'deployment.json'), 'utf8')) as { gateway: string }
    const r = await sertn(['start', '--once', '--data-dir', dataDir, ...ANY_PORTS])
    const output = `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
    expect(r.code, output).toBe(0)
    expect(r.stderr, output).toMatch(new RegExp(`contracts .* reused: gateway ${first.gateway}`))
    expect(r.stderr).toMatch(/arweave wallet .* reused/)
    expect(r.stdout).toMatch(/request +#2 +req:31337:/)
    expect(r.stdout).toMatch(/verified result: label [0-2]/)
    expect(processesUsing(dataDir)).toEqual([])
  }, RUN_TIMEOUT_MS + 30_000)
})
