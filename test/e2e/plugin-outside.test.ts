/**
 * A plugin outside the repository, as an integrator has it: the example storage plugin copied into
 * a temporary folder with a node_modules holding `sertn` (a link to this repository, what a `file:`
 * or registry install gives), vitest and @types/node.
 *
 * 1. Its own conformance test passes there, run by vitest as a child process, and a copy whose
 *    `get` skips the hash check fails it (the run is not vacuous). Its sources typecheck there with
 *    its own tsconfig (the `sertn/…` entry points carry their types).
 * 2. A worker whose configuration names a module that is not installed stops at start with a
 *    ConfigError naming `storage.plugin` (in process, and as `sertn worker`, exiting non-zero). A node whose configuration names the copy's module as `storage.plugin` (with `storage.options`)
 *    serves a request on the local stack: the worker imports the module, stores the output and the
 *    proof through it, and the storage ids fulfilled on chain are files in its folder.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { RecordingConsumer } from '../../contracts/artifacts/index.ts'
import type { SertnConfig } from '../../core/config.ts'
import { ConfigError } from '../../core/errors.ts'
import { startProcess } from '../../core/process.ts'
import { storageRefOf } from '../../core/storage-ref.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { runWorkers } from '../../workflows/worker/index.ts'
import { REPO, runSertn } from '../support/cli.ts'
import {
  boundedTeardown,
  fulfilledEventsOf,
  mine,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  type InProcessWorkers,
  type TestStack,
} from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const EXAMPLE = join(REPO, 'plugins/examples/storage-fs')
const outside = mkdtempSync(join(tmpdir(), 'sertn-plugin-outside-'))
/** Process groups still running (killed by the teardown). */
const running = new Set<number>()

afterAll(async () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
  rmSync(outside, { recursive: true, force: true })
})

/** A copy of the example plugin in `outside/<name>`, with its dependencies installed as links. */
function installCopy(name: string): string {
  const dir = join(outside, name)
  cpSync(EXAMPLE, dir, { recursive: true, filter: (src) => !src.includes(`${EXAMPLE}/node_modules`) })
  const modules = join(dir, 'node_modules')
  mkdirSync(join(modules, '@types'), { recursive: true })
  symlinkSync(REPO, join(modules, 'sertn'))
  for (const dep of ['vitest', 'typescript', '@types/node']) symlinkSync(realpathSync(join(REPO, 'node_modules', dep)), join(modules, dep))
  return dir
}

/** Runs `node <args>` in `cwd` to its end (its own process group, killed after `timeoutMs`). */
async function run(cwd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  const lines: string[] = []
  const proc = startProcess({
    name: 'outside',
    command: process.execPath,
    args,
    cwd,
    env: { ...process.env, CI: '1' },
    onLine: (l) => lines.push(l),
  })
  running.add(proc.pid)
  const timer = setTimeout(() => void proc.stop(), timeoutMs)
  try {
    return { code: await proc.closed, out: lines.join('\n') }
  } finally {
    clearTimeout(timer)
    running.delete(proc.pid)
  }
}

type VitestReport = { success: boolean; numPassedTests: number; numFailedTests: number; numTotalTests: number }

/** vitest run in `dir`, with its JSON report. */
async function vitest(dir: string): Promise<{ code: number | null; out: string; report: VitestReport }> {
  const r = await run(dir, ['node_modules/vitest/vitest.mjs', 'run', '--reporter=json', '--outputFile=report.json'], 240_000)
  return { ...r, report: JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as VitestReport }
}

describe('a plugin package outside the repository', () => {
  test('default: its conformance test passes there, run by vitest as a child process', async () => {
    const dir = installCopy('storage-fs')
    const { code, out, report } = await vitest(dir)
    expect(code, out).toBe(0)
    expect(report).toMatchObject({ success: true, numFailedTests: 0 })
    // The storage suite (13 of its tests apply to a plugin that is neither searchable nor presigned) and the plugin's own 5.
    expect(report.numPassedTests).toBeGreaterThanOrEqual(18)
  })

  test('error: a copy whose get skips the hash check fails the suite there', async () => {
    const dir = installCopy('storage-fs-broken')
    const src = join(dir, 'src/index.ts')
    const code = readFileSync(src, 'utf8')
    const broken = code.replace('if (sha256 !== ref.sha256)', 'if (sha256 !== ref.sha256 && false)')
    expect(broken).not.toBe(code)
    writeFileSync(src, broken)
    const r = await vitest(dir)
    expect(r.code).not.toBe(0)
    expect(r.report.success).toBe(false)
    expect(r.report.numFailedTests).toBeGreaterThanOrEqual(2)
  })

  test('default: its sources typecheck there with its own tsconfig', async () => {
    const dir = installCopy('storage-fs-tsc')
    const { code, out } = await run(dir, ['node_modules/typescript/bin/tsc', '-p', '.'], 240_000)
    expect(code, out).toBe(0)
  })
})

describe('sertn worker', () => {
  test('error: a storage.plugin module that is not installed stops the command, with the fix in its message', async () => {
    const file = join(outside, 'missing.config.json')
    const chains = { local: { chainId: 31337, rpcUrl: 'http://127.0.0.1:9', gateway: `0x${'11'.repeat(20)}` } }
    writeFileSync(file, JSON.stringify({ chains, temporal: { address: '127.0.0.1:9' }, storage: { plugin: '@acme/sertn-storage-s3' } }))
    const r = await runSertn(['worker', '--role', 'inference', '--config', file, '--log-format', 'json'], { running, timeoutMs: 60_000 })
    expect(r.code, r.out).not.toBe(0)
    expect(r.out).toMatch(
      /error: storage\.plugin: "@acme\/sertn-storage-s3" is not a built-in storage plugin \(arweave\).*npm install @acme\/sertn-storage-s3/,
    )
  })
})

describe('a node configured with the outside plugin', () => {
  let stack: TestStack
  let workers: InProcessWorkers | undefined
  const artifacts = join(outside, 'artifacts')

  beforeAll(async () => {
    stack = await startTestStack()
  })
  afterAll(async () => {
    await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
  })

  test('error: a worker whose storage.plugin names a module that is not installed stops at start, naming the field', async () => {
    const config: SertnConfig = { ...stack.config, storage: { ...stack.config.storage, plugin: '@acme/sertn-storage-missing' } }
    const err = await runWorkers({ config, roles: ['inference'], signal: AbortSignal.timeout(60_000), log: () => {} }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).shortMessage).toMatch(/^storage\.plugin: "@acme\/sertn-storage-missing" is not a built-in storage plugin/)
  })

  test('behavior: storage.plugin naming its module stores the output and proof there; the ids fulfilled on chain are its files', async () => {
    const module = join(installCopy('storage-fs-node'), 'src/index.ts')
    const config: SertnConfig = { ...stack.config, storage: { ...stack.config.storage, plugin: module, options: { dir: artifacts } } }
    workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
    const consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
    const made = await requestFromConsumer(stack, consumer)
    await mine(stack)
    const outcome = await waitForOutcome(stack.client, made.key)
    expect(outcome.stage, workers.logs.join('\n')).toBe('fulfilled')
    const { output, proof } = outcome.storage!
    expect([output.storage, proof.storage]).toEqual(['fs', 'fs'])
    const files = readdirSync(artifacts, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name)
    expect(files).toEqual(expect.arrayContaining([output.id, proof.id]))
    // A content-addressed id is the file's sha256, and the 32 bytes the gateway recorded.
    const proofBytes = readFileSync(join(artifacts, proof.id.slice(0, 2), proof.id))
    expect(proofBytes.length).toBe(proof.bytes)
    const [fulfilled] = await fulfilledEventsOf(stack, made.id)
    expect(fulfilled!.args.artifacts).toEqual({ output: storageRefOf(output), proof: storageRefOf(proof) })
    expect(fulfilled!.args.artifacts!.proof).toBe(`0x${proof.sha256}`)
  })
})
