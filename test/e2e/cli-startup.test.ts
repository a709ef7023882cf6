/**
 * The start-up checks of `sertn worker` (and `sertn relay`) through the CLI, against a real anvil (and, for the worker that
 * starts, a real Temporal dev server): each failure stops start-up before any worker starts, with
 * one line naming what to fix and exit code 1 — a wrong keystore password, a missing secrets file,
 * keystore or password file, a chain-io worker with no key, a wrong chain id at an RPC URL, an
 * unreachable RPC. A prover-only worker with no key at all gets past the checks and polls its queue.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Connection } from '@temporalio/client'
import { generatePrivateKey } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { encryptKeystore } from '../../core/keys.ts'
import { freePort } from '../../core/process.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const GATEWAY = '0x0000000000000000000000000000000000000001'

let dir: string
let anvil: AnvilInstance
let deadPort: number
const running = new Set<number>()

type Run = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** `sertn worker …` in its own process group; `until` (given the output so far) resolves early, then SIGTERM stops it. */
function sertn(args: string[], opts: { timeoutMs?: number; whileRunning?: () => Promise<void> } = {}): Promise<Run> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  return new Promise((done) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
    delete env.SERTN_SECRETS
    delete env.SERTN_DEBUG
    delete env.TEMPORAL_API_KEY
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/sertn.ts', ...args], {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    })
    const pid = child.pid!
    running.add(pid)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const kill = setTimeout(() => {
      stderr += `\n[test] no exit after ${timeoutMs} ms: SIGKILL\n`
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, timeoutMs)
    let exited = false
    if (opts.whileRunning)
      opts.whileRunning().then(
        () => {
          if (!exited) process.kill(-pid, 'SIGTERM')
        },
        (err: unknown) => {
          stderr += `\n[test] ${String(err)}\n`
          if (!exited) process.kill(-pid, 'SIGKILL')
        },
      )
    child.once('exit', (code, signal) => {
      exited = true
      clearTimeout(kill)
      running.delete(pid)
      setTimeout(() => done({ code, signal, stdout, stderr }), 50)
    })
  })
}

/** Writes a configuration (one chain on the test's anvil unless `chain` says otherwise) and returns its path. */
async function config(name: string, extra: Record<string, unknown> = {}, chain: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, `${name}.config.json`)
  const body = {
    dataDir: join(dir, `${name}-data`),
    chains: { hub: { chainId: 31337, rpcUrl: anvil.rpcUrl, gateway: GATEWAY, ...chain } },
    temporal: { address: `127.0.0.1:${deadPort}` },
    ...extra,
  }
  await writeFile(file, JSON.stringify(body))
  return file
}

/** Writes a secrets file naming the node's keystore and password file (relative paths) and returns its path. */
async function secrets(name: string, node: Record<string, unknown>): Promise<string> {
  const file = join(dir, `${name}.secrets.json`)
  await writeFile(file, JSON.stringify({ node }))
  return file
}

/** The one line a failed start-up prints, and its exit code. */
function expectOneLine(r: Run, line: RegExp): void {
  const lines = r.stderr.trim().split('\n')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0], r.stderr).toMatch(line)
  expect(r.code, r.stderr).toBe(1)
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-startup-'))
  deadPort = await freePort()
  anvil = await startAnvil()
  await writeFile(join(dir, 'keystore-node'), JSON.stringify(await encryptKeystore(generatePrivateKey(), 'right')))
  await writeFile(join(dir, 'password-right'), 'right\n')
  await writeFile(join(dir, 'password-wrong'), 'wrong\n')
}, 120_000)

afterAll(async () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  await anvil?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('start-up checks (sertn worker, sertn relay)', () => {
  test('error: a wrong keystore password', async () => {
    const s = await secrets('wrong-password', { keystore: 'keystore-node', passwordFile: 'password-wrong' })
    const r = await sertn(['worker', '--role', 'chain-io', '--config', await config('wrong-password', { secretsFile: s })])
    expectOneLine(r, new RegExp(`^error: wrong password for keystore ${join(dir, 'keystore-node')} \\(node\\.keystore in ${s}\\)$`))
  })

  test('error: a missing secrets file', async () => {
    const s = join(dir, 'absent.secrets.json')
    const r = await sertn(['worker', '--role', 'prover', '--config', await config('no-secrets', { secretsFile: s })])
    expectOneLine(r, new RegExp(`^error: secrets file ${s} not found \\(set by secretsFile\\): create it or fix the path$`))
  })

  test('error: a missing keystore', async () => {
    const s = await secrets('no-keystore', { keystore: 'keystore-absent', passwordFile: 'password-right' })
    const r = await sertn(['worker', '--role', 'chain-io', '--config', await config('no-keystore', { secretsFile: s })])
    expectOneLine(r, new RegExp(`^error: keystore ${join(dir, 'keystore-absent')} not found \\(node\\.keystore in ${s}\\)$`))
  })

  test('error: a missing password file', async () => {
    const s = await secrets('no-password', { keystore: 'keystore-node', passwordFile: 'password-absent' })
    const r = await sertn(['worker', '--role', 'chain-io', '--config', await config('no-password', { secretsFile: s })])
    expectOneLine(r, new RegExp(`^error: password file ${join(dir, 'password-absent')} not found \\(node\\.passwordFile in ${s}\\)$`))
  })

  test('error: a chain-io worker with no key', async () => {
    const r = await sertn(['worker', '--role', 'chain-io,inference', '--config', await config('no-key')])
    expectOneLine(r, /^error: a chain-io worker signs as the node but no node key is configured: add a "node" keystore in the secrets file/)
  })

  test('error: the relay with no validator key', async () => {
    // The relayer defaults to the node's account (a keystore here: no warning line).
    const s = await secrets('relay-no-key', { keystore: 'keystore-node', passwordFile: 'password-right' })
    const r = await sertn(['relay', '--config', await config('relay-no-key', { secretsFile: s })])
    expectOneLine(
      r,
      /^error: the relay signs as the validator but no validator key is configured: add a "validator" keystore in the secrets file/,
    )
  })

  test('error: a wrong chain id at an RPC URL', async () => {
    const s = await secrets('wrong-chain', { keystore: 'keystore-node', passwordFile: 'password-right' })
    const file = await config('wrong-chain', { secretsFile: s }, { chainId: 999 })
    const r = await sertn(['worker', '--role', 'chain-io', '--config', file])
    expectOneLine(
      r,
      new RegExp(
        `^error: chains\\.hub\\.rpcUrl: the RPC at ${anvil.rpcUrl} serves chain id 31337, but the chain's chainId is 999: fix the URL or the chainId$`,
      ),
    )
  })

  test('error: an unreachable RPC (a fallback URL)', async () => {
    const s = await secrets('dead-rpc', { keystore: 'keystore-node', passwordFile: 'password-right' })
    const dead = `http://127.0.0.1:${deadPort}`
    const file = await config('dead-rpc', { secretsFile: s }, { fallbackRpcUrls: [dead] })
    const r = await sertn(['worker', '--role', 'chain-io', '--config', file])
    expectOneLine(r, new RegExp(`^error: chains\\.hub\\.fallbackRpcUrls\\.0: the RPC at ${dead} is unreachable \\(ECONNREFUSED\\)`))
  })
})

describe('sertn worker: a prover with no key', () => {
  let server: TemporalDevServer
  beforeAll(async () => {
    server = await startTemporalDevServer()
  }, 120_000)
  afterAll(async () => {
    await server?.stop()
  })

  test('default: gets past the checks and polls its task queue, then stops cleanly', async () => {
    const file = await config('prover', { temporal: { address: server.address } }, { rpcUrl: `http://127.0.0.1:${deadPort}` })
    let polled = false
    const r = await sertn(['worker', '--role', 'prover', '--config', file], {
      timeoutMs: 120_000,
      whileRunning: async () => {
        const connection = await Connection.connect({ address: server.address })
        try {
          for (let i = 0; i < 300 && !polled; i++) {
            const q = await connection.workflowService.describeTaskQueue({
              namespace: 'default',
              taskQueue: { name: 'sertn-prover-cpu' },
              taskQueueType: 2 /* TASK_QUEUE_TYPE_ACTIVITY */,
            })
            polled = (q.pollers?.length ?? 0) > 0
            if (!polled) await new Promise((w) => setTimeout(w, 250))
          }
        } finally {
          await connection.close()
        }
      },
    })
    expect(polled, r.stderr).toBe(true)
    expect(r.stderr, r.stderr).not.toMatch(/^error:/m)
    expect(r.code, r.stderr).toBe(0)
  }, 150_000)
})
