/**
 * A pool of worker threads, each running its own instance of the ezkl engine.
 *
 * Workers start on first use and keep each model's artifacts cached under its contentHash, so a
 * model's 4 MB proving key crosses the thread boundary once per worker, not once per job. A job
 * goes to an idle worker that already holds its model when there is one. Idle workers do not keep
 * the process alive.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import type { ModelArtifacts } from '../../../core/manifest.ts'
import type { ProvingKeyFile } from '../ezkl-common/keys.ts'
import { reportPoolUsage } from '../ezkl-common/pool-usage.ts'
import type { EzklEngine, JobResult } from '../ezkl-common/prover.ts'
import { PLUGIN_NAME, ProverDisposedError, ProverError } from './errors.ts'
import type { EngineOp, WorkerFailure, WorkerOp, WorkerRequest, WorkerResponse } from './protocol.ts'

export type { JobResult }

export interface WorkerPoolOptions {
  /** Number of worker threads (default 1). */
  readonly size?: number
  /** Models each worker keeps cached before evicting the least recently used (default 4). */
  readonly cacheSize?: number
  /** Kill a worker whose job runs longer than this, failing the job as retryable (default: no limit). */
  readonly jobTimeoutMs?: number
}

/** Counters for tests and diagnostics. */
export interface PoolStats {
  /** Worker threads started so far (restarts included). */
  readonly workersStarted: number
  /** Times a model's artifacts were posted to a worker. */
  readonly artifactLoads: number
  /** Jobs completed, successfully or not. */
  readonly jobsDone: number
}

/** What a worker's job resolves to: the prover's results, or both keys for setup. */
type WorkerJobResult =
  | JobResult
  | { readonly ok: true; readonly value: { readonly vk: Uint8Array; readonly pk: Uint8Array }; readonly ms: number }

interface Job {
  readonly id: number
  readonly op: WorkerOp
  readonly artifacts: ModelArtifacts
  readonly payload: Uint8Array
  /** The proving key's bytes, when the caller has it (required to prove). */
  readonly pk?: Uint8Array
  readonly resolve: (r: WorkerJobResult) => void
  readonly reject: (e: Error) => void
}

interface Slot {
  worker: Worker | null
  /** Cache keys of the models in the worker (contentHash, `-pk` appended when the proving key is in), least recently used first. */
  loaded: string[]
  job: Job | null
  timer: NodeJS.Timeout | null
}

const WORKER_URL = new URL('./worker.mjs', import.meta.url)

/** The cache key of a model in a worker: with the proving key, or without. */
const cacheKey = (a: ModelArtifacts, withPk: boolean) => (withPk ? `${a.contentHash}-pk` : a.contentHash)

export class WorkerPool implements EzklEngine {
  readonly #slots: Slot[]
  readonly #queue: Job[] = []
  readonly #cacheSize: number
  readonly #jobTimeoutMs: number | undefined
  #nextId = 1
  #disposed = false
  #workersStarted = 0
  #artifactLoads = 0
  #jobsDone = 0

  constructor(options: WorkerPoolOptions = {}) {
    const size = options.size ?? 1
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`pool size must be a positive integer, not ${size}`)
    this.#cacheSize = Math.max(1, options.cacheSize ?? 4)
    this.#jobTimeoutMs = options.jobTimeoutMs
    this.#slots = Array.from({ length: size }, () => ({ worker: null, loaded: [], job: null, timer: null }))
    this.#reportUsage()
  }

  /** Runs one engine call against a model, on the first suitable idle worker. */
  async run(op: EngineOp, artifacts: ModelArtifacts, payload: Uint8Array, pk?: ProvingKeyFile): Promise<JobResult> {
    if (op === 'prove' && !pk) throw new ProverError(PLUGIN_NAME, `prove needs ${artifacts.manifest.name}'s proving key`)
    const pkBytes = pk ? await this.#pkBytes(pk) : undefined
    return (await this.#enqueue(op, artifacts, payload, pkBytes)) as JobResult
  }

  /** Derives the model's keys in a worker (genVk, genPk) and writes the proving key to `pkPath`. */
  async setup(artifacts: ModelArtifacts, pkPath: string): Promise<{ vk: Uint8Array; ms: number }> {
    const r = await this.#enqueue('setup', artifacts, new Uint8Array(0))
    if (!r.ok) throw new ProverError(PLUGIN_NAME, `cannot derive ${artifacts.manifest.name}'s keys: ${r.message}`)
    if (typeof r.value !== 'object' || r.value instanceof Uint8Array) throw new ProverError(PLUGIN_NAME, 'setup returned no keys')
    await writeFile(pkPath, r.value.pk)
    return { vk: r.value.vk, ms: r.ms }
  }

  /** The last proving keys read, by sha256 (a worker needs the bytes once per model it loads). */
  readonly #pks = new Map<string, Promise<Uint8Array>>()

  #pkBytes(pk: ProvingKeyFile): Promise<Uint8Array> {
    let p = this.#pks.get(pk.sha256)
    if (!p) {
      p = readFile(pk.path).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
      p.catch(() => this.#pks.delete(pk.sha256))
      this.#pks.set(pk.sha256, p)
      while (this.#pks.size > this.#cacheSize) this.#pks.delete(this.#pks.keys().next().value as string)
    }
    return p
  }

  #enqueue(op: WorkerOp, artifacts: ModelArtifacts, payload: Uint8Array, pk?: Uint8Array): Promise<WorkerJobResult> {
    if (this.#disposed) return Promise.reject(new ProverDisposedError(PLUGIN_NAME))
    return new Promise<WorkerJobResult>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, op, artifacts, payload, ...(pk ? { pk } : {}), resolve, reject })
      this.#dispatch()
    })
  }

  stats(): PoolStats {
    return { workersStarted: this.#workersStarted, artifactLoads: this.#artifactLoads, jobsDone: this.#jobsDone }
  }

  /** Fails queued and running jobs and terminates every worker. */
  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    reportPoolUsage(this, 0, 0)
    for (const job of this.#queue.splice(0)) job.reject(new ProverDisposedError(PLUGIN_NAME))
    await Promise.all(
      this.#slots.map(async (slot) => {
        const worker = slot.worker
        this.#finish(slot)?.reject(new ProverDisposedError(PLUGIN_NAME))
        slot.worker = null
        slot.loaded = []
        if (worker) await worker.terminate()
      }),
    )
  }

  #dispatch(): void {
    while (!this.#disposed && this.#queue.length > 0) {
      const idle = this.#slots.filter((s) => s.job === null)
      if (idle.length === 0) return
      const job = this.#queue.shift() as Job
      const withPk = cacheKey(job.artifacts, true)
      const holds = (s: Slot) => s.loaded.includes(withPk) || (!job.pk && s.loaded.includes(cacheKey(job.artifacts, false)))
      const slot = idle.find((s) => s.worker !== null && holds(s)) ?? idle.find((s) => s.worker !== null) ?? (idle[0] as Slot)
      this.#start(slot, job)
    }
  }

  #start(slot: Slot, job: Job): void {
    const worker = slot.worker ?? this.#spawn(slot)
    const withPk = cacheKey(job.artifacts, true)
    const key = slot.loaded.includes(withPk) ? withPk : cacheKey(job.artifacts, job.pk !== undefined)
    slot.job = job
    this.#reportUsage()
    worker.ref()
    try {
      if (slot.loaded.includes(key)) {
        slot.loaded = [...slot.loaded.filter((k) => k !== key), key]
      } else {
        // The same model without its proving key is superseded.
        const without = cacheKey(job.artifacts, false)
        if (slot.loaded.includes(without)) {
          post(worker, { type: 'evict', key: without })
          slot.loaded = slot.loaded.filter((k) => k !== without)
        }
        while (slot.loaded.length >= this.#cacheSize) {
          const evicted = slot.loaded.shift() as string
          post(worker, { type: 'evict', key: evicted })
        }
        // Exact-size copies, transferred: posting a view would clone its whole backing buffer.
        const a = job.artifacts
        const artifacts = {
          compiled: a.compiled.slice(),
          ...(job.pk ? { pk: job.pk.slice() } : {}),
          vk: a.vk.slice(),
          settings: a.settings.slice(),
          srs: a.srs.slice(),
        }
        post(worker, { type: 'load', key, artifacts }, Object.values(artifacts))
        slot.loaded.push(key)
        this.#artifactLoads++
      }
      const payload = job.payload.slice()
      post(worker, { type: 'job', id: job.id, op: job.op, key, payload }, [payload])
    } catch (e) {
      this.#finish(slot)?.reject(
        new ProverError(PLUGIN_NAME, `cannot post to the prover worker: ${describe(e)}`, { retryable: true, cause: e }),
      )
      this.#discard(slot)
      return
    }
    if (this.#jobTimeoutMs !== undefined) {
      const ms = this.#jobTimeoutMs
      slot.timer = setTimeout(() => {
        this.#finish(slot)?.reject(
          new ProverError(PLUGIN_NAME, `${job.op} took longer than ${ms} ms; its worker was stopped`, { retryable: true }),
        )
        this.#discard(slot)
        this.#dispatch()
      }, ms)
    }
  }

  #spawn(slot: Slot): Worker {
    const worker = new Worker(WORKER_URL)
    this.#workersStarted++
    slot.worker = worker
    slot.loaded = []
    worker.on('message', (msg: WorkerResponse) => {
      if (slot.worker !== worker || slot.job?.id !== msg.id) return
      const job = this.#finish(slot) as Job
      if (msg.ok) job.resolve({ ok: true, value: msg.value, ms: msg.ms } as WorkerJobResult)
      else if (msg.error.kind === 'protocol') {
        // The pool and the worker disagree about what is cached: start over with a fresh worker.
        this.#discard(slot)
        job.reject(protocolError(job.op, msg.error))
      } else {
        // A trapped engine exits on its own; stop routing jobs to it now.
        if (msg.error.kind === 'trap') this.#discard(slot)
        job.resolve({ ok: false, kind: msg.error.kind, message: msg.error.message, ms: msg.ms })
      }
      this.#dispatch()
    })
    let lastError: Error | null = null
    worker.on('error', (e: Error) => {
      lastError = e
    })
    worker.on('exit', (code) => {
      if (slot.worker !== worker) return
      const reason = lastError ? `: ${lastError.message}` : ''
      this.#finish(slot)?.reject(
        new ProverError(PLUGIN_NAME, `the prover worker exited with code ${code}${reason}`, {
          retryable: true,
          cause: lastError ?? undefined,
        }),
      )
      slot.worker = null
      slot.loaded = []
      this.#dispatch()
    })
    return worker
  }

  /** The pool's slots and busy slots, to the process's metrics and health state. */
  #reportUsage(): void {
    if (!this.#disposed) reportPoolUsage(this, this.#slots.length, this.#slots.filter((s) => s.job !== null).length)
  }

  /** Detaches the slot's current job (clearing its timer and letting the worker idle), returning it. */
  #finish(slot: Slot): Job | null {
    const job = slot.job
    if (slot.timer) clearTimeout(slot.timer)
    slot.timer = null
    slot.job = null
    this.#reportUsage()
    if (job) this.#jobsDone++
    slot.worker?.unref()
    return job
  }

  /** Forgets the slot's worker and terminates it; the next job on this slot starts a fresh one. */
  #discard(slot: Slot): void {
    const worker = slot.worker
    slot.worker = null
    slot.loaded = []
    void worker?.terminate()
  }
}

function post(worker: Worker, msg: WorkerRequest, transfer: Uint8Array[] = []): void {
  worker.postMessage(
    msg,
    transfer.map((b) => b.buffer as ArrayBuffer),
  )
}

function protocolError(op: WorkerOp, error: WorkerFailure): ProverError {
  return new ProverError(PLUGIN_NAME, `the prover worker refused ${op}: ${error.message}`, { retryable: true })
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
