/**
 * What the ezkl-native prover adds to the conformance suite: its Python processes (start, restart,
 * timeout, pool, dispose), its server's answers to bad requests, and its setup errors.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../core/errors.ts'
import { loadBatchArtifacts, loadModelArtifacts, type ModelArtifacts, modelDir } from '../../core/manifest.ts'
import { SERVER_SCRIPT } from '../../plugins/provers/ezkl-native/connection.ts'
import {
  createEzklNativeProver,
  DEFAULT_PYTHON,
  type EzklNativeProver,
  ensureNativeEzkl,
  ezklNativeProver,
  ProverDisposedError,
  ProverError,
} from '../../plugins/provers/ezkl-native/index.ts'
import { ProcessPool } from '../../plugins/provers/ezkl-native/pool.ts'
import { DEV_ONLY, sampleInputQ } from '../support/artifacts.ts'

const encoder = new TextEncoder()
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

let demo: ModelArtifacts
let twin: ModelArtifacts
let inputQ: bigint[]

beforeAll(async () => {
  await ensureNativeEzkl()
  ;[demo, twin] = await Promise.all([
    loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY),
    loadModelArtifacts(modelDir('sertn-mlp-twin'), DEV_ONLY),
  ])
  inputQ = await sampleInputQ(demo)
}, 600_000)

describe('plugins/provers/ezkl-native: processes', () => {
  let prover: EzklNativeProver
  let expectedOutput: bigint[]

  beforeAll(async () => {
    prover = createEzklNativeProver()
    expectedOutput = (await prover.witness(demo, inputQ)).output
  })

  afterAll(async () => {
    await prover?.dispose()
  })

  it('flags: multi-threaded, out of process; gpu only when configured', () => {
    expect(prover.flags).toEqual({ gpu: false, multiThreaded: true, outOfProcess: true })
    expect(ezklNativeProver({ gpu: true }).flags.gpu).toBe(true)
  })

  it('behavior: one process serves every call, loading each model once', async () => {
    const before = prover.stats()
    await prover.witness(twin, await sampleInputQ(twin))
    await prover.witness(demo, inputQ)
    await prover.witness(twin, await sampleInputQ(twin))
    expect(prover.stats()).toMatchObject({ processesStarted: 1, artifactLoads: before.artifactLoads + 1 })
    expect(prover.pids()).toHaveLength(1)
  })

  it('behavior: a pool of two processes runs jobs concurrently with the same results', async () => {
    const pool = createEzklNativeProver({ poolSize: 2, threads: 1 })
    try {
      const results = await Promise.all([0, 1, 2, 3].map(() => pool.witness(demo, inputQ)))
      for (const r of results) expect(r.output).toEqual(expectedOutput)
      expect(pool.stats()).toMatchObject({ processesStarted: 2, artifactLoads: 2, jobsDone: 4 })
    } finally {
      await pool.dispose()
    }
  })

  it("behavior: each proof reports the process's peak memory, which its circuit's manifest bounds (the routing figure)", async () => {
    const batch16 = await loadBatchArtifacts(demo, 16, DEV_ONLY)
    for (const model of [demo, batch16]) {
      const p = await prover.proveInference(model, await sampleInputQ(model))
      const { keyBytes, memoryBytes } = model.manifest.proving!
      // The proving key is read into the process to prove; the manifest's figure is an upper bound.
      expect(p.peakMemoryBytes, model.manifest.name).toBeGreaterThan(keyBytes)
      expect(p.peakMemoryBytes, model.manifest.name).toBeLessThanOrEqual(memoryBytes)
    }
  }, 120_000)

  it('error: a process killed mid-job fails the job as retryable and is replaced', async () => {
    const p = createEzklNativeProver()
    try {
      await p.prepare!(demo) // the proving key is at hand: prove goes straight to the process
      const w = await p.witness(demo, inputQ)
      const [pid] = p.pids() as [number]
      const proving = p.prove(demo, w.witness).catch((e: unknown) => e)
      process.kill(pid, 'SIGKILL')
      const err = await proving
      expect(err).toBeInstanceOf(ProverError)
      expect(err).toMatchObject({ name: 'ProverError', retryable: true })
      expect((err as Error).message).toMatch(/process \(pid \d+\) (was killed|exited|closed)/)
      const again = await p.prove(demo, w.witness)
      expect(again.instances.length).toBe(inputQ.length + expectedOutput.length)
      expect(p.stats().processesStarted).toBe(2)
      expect(p.pids()).not.toContain(pid)
    } finally {
      await p.dispose()
    }
  })

  it('error: a job past jobTimeoutMs fails as retryable and its process is stopped', async () => {
    const p = createEzklNativeProver({ jobTimeoutMs: 1 })
    try {
      for (let i = 0; i < 2; i++) {
        const err = await p.witness(demo, inputQ).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(ProverError)
        expect(err).toMatchObject({ retryable: true })
        expect((err as Error).message).toMatch(/took longer than 1 ms/)
      }
      expect(p.stats().processesStarted).toBe(2)
    } finally {
      await p.dispose()
    }
    expect(p.pids()).toEqual([])
  })

  it('error: an engine panic fails the job and the process is replaced', async () => {
    // input_data [] makes gen_witness panic; the prover's input checks keep its API from sending it.
    const pool = new ProcessPool({ python: DEFAULT_PYTHON, env: {}, startTimeoutMs: 60_000 })
    try {
      const r = await pool.run('witness', demo, encoder.encode('{"input_data":[]}'))
      expect(r).toMatchObject({ ok: false, kind: 'trap' })
      if (!r.ok) expect(r.message).toMatch(/panicked/)
      const input = JSON.stringify({ input_data: [inputQ.map((q) => Number(q) / 2 ** demo.manifest.inputScale)] })
      expect(await pool.run('witness', demo, encoder.encode(input))).toMatchObject({ ok: true })
      expect(pool.stats()).toMatchObject({ processesStarted: 2, artifactLoads: 2 })
    } finally {
      await pool.dispose()
    }
  })

  it('error: artifacts whose files changed on disk are refused, not proven with', async () => {
    // The server checks each file against the sha256 of the bytes this process holds.
    const p = createEzklNativeProver()
    try {
      const err = await p.witness({ ...demo, contentHash: 'x'.repeat(64), vk: twin.vk }, inputQ).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ProverError)
      expect(err).toMatchObject({ retryable: false })
      expect((err as Error).message).toMatch(/vk at .*vk\.key has sha256 [0-9a-f]{64}, not the [0-9a-f]{64}/)
      expect((await p.witness(demo, inputQ)).output).toEqual(expectedOutput)
    } finally {
      await p.dispose()
    }
  })

  it('dispose: running and queued jobs fail with ProverDisposedError and the processes exit', async () => {
    const p = createEzklNativeProver()
    const w = await p.witness(demo, inputQ)
    const pids = p.pids()
    const jobs = [p.prove(demo, w.witness), p.witness(demo, inputQ)].map((j) => j.catch((e: unknown) => e))
    await p.dispose()
    for (const err of await Promise.all(jobs)) expect(err).toBeInstanceOf(ProverDisposedError)
    expect(pids).toHaveLength(1)
    for (const pid of pids) expect(alive(pid)).toBe(false)
  })

  it('config: a missing interpreter fails with a ConfigError naming the setup script', async () => {
    const p = ezklNativeProver({ python: '/nonexistent/venv/bin/python' })
    try {
      const err = await p.witness(demo, inputQ).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as Error).message).toMatch(/bash circuits\/setup-python\.sh/)
    } finally {
      await p.dispose()
    }
  })

  it('config: a python without ezkl fails with a ConfigError naming the setup script', async () => {
    // The venv's own interpreter with its site-packages switched off (-S -s): a Python that has no ezkl.
    const dir = await mkdtemp(join(tmpdir(), 'sertn-bare-python-'))
    const bare = join(dir, 'python')
    await writeFile(bare, `#!/bin/sh\nexec "${DEFAULT_PYTHON}" -S -s "$@"\n`, { mode: 0o755 })
    const p = ezklNativeProver({ python: bare })
    try {
      const err = await p.witness(demo, inputQ).catch((e: unknown) => e)
      // Either it cannot import ezkl (the usual case) or it has some other version of it.
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as Error).message).toMatch(/bash circuits\/setup-python\.sh/)
    } finally {
      await p.dispose()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('plugins/provers/ezkl-native: server.py answers bad requests', () => {
  let dir: string
  let socket: Socket
  let lines: string[] = []
  let waiters: ((line: string) => void)[] = []
  let child: ReturnType<typeof spawn>

  const next = (): Promise<string> =>
    new Promise((resolve) => {
      const line = lines.shift()
      if (line !== undefined) resolve(line)
      else waiters.push(resolve)
    })
  const ask = async (raw: string): Promise<Record<string, unknown>> => {
    socket.write(`${raw}\n`)
    return JSON.parse(await next()) as Record<string, unknown>
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sertn-ezkl-test-'))
    const path = join(dir, 's')
    const listener = createServer()
    await new Promise<void>((r) => listener.listen(path, r))
    const connected = new Promise<Socket>((r) => listener.once('connection', r))
    child = spawn(DEFAULT_PYTHON, [SERVER_SCRIPT, path, dir], { stdio: ['ignore', 'inherit', 'inherit'] })
    socket = await connected
    listener.close()
    socket.setEncoding('utf8')
    let buffer = ''
    socket.on('data', (chunk: string) => {
      buffer += chunk
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        const waiter = waiters.shift()
        if (waiter) waiter(line)
        else lines.push(line)
      }
    })
    expect(JSON.parse(await next())).toMatchObject({ type: 'hello', ezkl: '21.0.0' })
  })

  afterAll(async () => {
    socket?.destroy()
    if (child && child.exitCode === null) await new Promise((r) => child.once('exit', r))
    await rm(dir, { recursive: true, force: true })
    lines = []
    waiters = []
  })

  it('error: every malformed request gets a structured reply and the server keeps serving', async () => {
    const protocol = { ok: false, error: { kind: 'protocol' } }
    expect(await ask('not json')).toMatchObject({ id: null, ...protocol })
    expect(await ask('[1, 2]')).toMatchObject({ id: null, ...protocol })
    expect(await ask('{"id": "one", "op": "evict"}')).toMatchObject({ id: null, ...protocol })
    expect(await ask('{"id": 1, "op": "launch"}')).toMatchObject({ id: 1, ...protocol })
    expect(await ask('{"id": 2, "op": "witness", "key": "../../etc", "payload": ""}')).toMatchObject({ id: 2, ...protocol })
    expect(await ask('{"id": 3, "op": "witness", "key": "demo", "payload": ""}')).toMatchObject({ id: 3, ...protocol })
    expect(await ask('{"id": 4, "op": "load", "key": "demo", "files": {}}')).toMatchObject({ id: 4, ...protocol })
    const files = (over: Record<string, unknown> = {}) => ({
      compiled: { path: join(modelDir('sertn-mlp-demo'), 'model.compiled'), sha256: '00' },
      pk: { path: 'pk.key', sha256: '00' },
      vk: { path: '/nonexistent/vk.key', sha256: '00' },
      settings: { path: '/nonexistent/settings.json', sha256: '00' },
      srs: { path: '/nonexistent/k10.srs', sha256: '00' },
      ...over,
    })
    expect(await ask(JSON.stringify({ id: 5, op: 'load', key: 'demo', files: files() }))).toMatchObject({
      id: 5,
      ok: false,
      error: { kind: 'artifact', message: expect.stringMatching(/compiled at .* has sha256 [0-9a-f]{64}, not the 00/) },
    })
    const okCompiled = { path: join(modelDir('sertn-mlp-demo'), 'model.compiled'), sha256: demo.manifest.files['model.compiled'] }
    expect(await ask(JSON.stringify({ id: 6, op: 'load', key: 'demo', files: files({ compiled: okCompiled }) }))).toMatchObject({
      id: 6,
      ...protocol,
      error: { kind: 'protocol', message: expect.stringMatching(/absolute/) },
    })
    expect(
      await ask(
        JSON.stringify({
          id: 7,
          op: 'load',
          key: 'demo',
          files: files({ compiled: okCompiled, pk: { path: '/nonexistent/pk.key', sha256: '00' } }),
        }),
      ),
    ).toMatchObject({
      id: 7,
      ok: false,
      error: { kind: 'artifact', message: expect.stringMatching(/cannot read pk/) },
    })
  })

  it('behavior: after bad requests, a real load and witness succeed; a bad payload is an engine error', async () => {
    const d = demo.dir
    const srs = join(d, demo.manifest.srs.file)
    const pin = (f: string) => demo.manifest.files[f] as string
    const files = {
      compiled: { path: join(d, 'model.compiled'), sha256: pin('model.compiled') },
      vk: { path: join(d, 'vk.key'), sha256: pin('vk.key') },
      settings: { path: join(d, 'settings.json'), sha256: pin('settings.json') },
      srs: { path: srs, sha256: demo.manifest.srs.sha256 },
    }
    expect(await ask(JSON.stringify({ id: 10, op: 'load', key: demo.contentHash, files }))).toMatchObject({ id: 10, ok: true, value: null })
    expect(await ask(JSON.stringify({ id: 11, op: 'witness', key: demo.contentHash, payload: '%%%' }))).toMatchObject({
      id: 11,
      ok: false,
      error: { kind: 'protocol' },
    })
    const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x7b]).toString('base64')
    for (const op of ['witness', 'verify'])
      expect(await ask(JSON.stringify({ id: 12, op, key: demo.contentHash, payload: garbage }))).toMatchObject({
        id: 12,
        ok: false,
        error: { kind: 'engine' },
      })
    // Loaded without its proving key: nothing to prove with.
    expect(await ask(JSON.stringify({ id: 12, op: 'prove', key: demo.contentHash, payload: garbage }))).toMatchObject({
      id: 12,
      ok: false,
      error: { kind: 'protocol', message: expect.stringMatching(/no proving key/) },
    })
    const input = { input_data: [inputQ.map((q) => Number(q) / 2 ** demo.manifest.inputScale)] }
    const r = await ask(
      JSON.stringify({ id: 13, op: 'witness', key: demo.contentHash, payload: Buffer.from(JSON.stringify(input)).toString('base64') }),
    )
    expect(r).toMatchObject({ id: 13, ok: true })
    const witness = JSON.parse(Buffer.from(r.value as string, 'base64').toString()) as { inputs: string[][] }
    expect(witness.inputs.flat()).toHaveLength(inputQ.length)
    expect(child.exitCode).toBeNull()
  })
})
