/**
 * A pool of long-lived native ezkl servers (`server.py`), each running one job at a time.
 *
 * Servers start on first use. Each loads a model's artifacts once per contentHash (it reads and
 * checks the files itself; only paths and hashes cross the socket) and keeps up to `cacheSize`
 * models. A job goes to an idle server that already holds its model when there is one. A server
 * that dies, panics or runs past the job timeout is replaced by a fresh one on the next job; the
 * jobs it held fail as retryable.
 */
import { createHash } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import { SertnError } from '../../../core/errors.ts'
import type { ModelArtifacts } from '../../../core/manifest.ts'
import { ProverDisposedError, ProverError } from '../ezkl-common/errors.ts'
import type { ProvingKeyFile } from '../ezkl-common/keys.ts'
import { reportPoolUsage } from '../ezkl-common/pool-usage.ts'
import type { EngineOp, EzklEngine, JobResult } from '../ezkl-common/prover.ts'
import { PLUGIN_NAME, ServerConnection, type StartOptions } from './connection.ts'
import type { ArtifactFile, ArtifactName, ServerOp, ServerReply } from './protocol.ts'

export interface ProcessPoolOptions extends StartOptions {
  /** Number of server processes (default 1). */
  readonly size?: number
  /** Models each server keeps loaded before evicting the least recently used (default 4). */
  readonly cacheSize?: number
  /** Kill a server whose job (start and model load included) runs longer than this; the job fails as retryable. */
  readonly jobTimeoutMs?: number
}

/** Counters for tests and diagnostics. */
export interface ProcessPoolStats {
  /** Server processes started so far (restarts included). */
  readonly processesStarted: number
  /** Times a server loaded a model's artifacts. */
  readonly artifactLoads: number
  /** Jobs completed, successfully or not. */
  readonly jobsDone: number
}

interface Job {
  readonly op: ServerOp
  readonly artifacts: ModelArtifacts
  readonly payload: Uint8Array
  /** The proving key, when the caller has it (required to prove). */
  readonly pk?: ProvingKeyFile
  readonly resolve: (r: JobResult) => void
  readonly reject: (e: Error) => void
}

interface Slot {
  conn: ServerConnection | null
  starting: Promise<ServerConnection> | null
  /** Bumped whenever the slot's server is discarded: a start that finishes for an older generation is stopped. */
  generation: number
  /** Cache keys of the models loaded in the server (contentHash, `-pk` appended when the proving key is in), least recently used first. */
  loaded: string[]
  job: Job | null
  timer: NodeJS.Timeout | null
}

/** The files a server loads, with the sha256 of the bytes this process holds (so it proves with exactly those). */
const filesCache = new WeakMap<ModelArtifacts, Record<Exclude<ArtifactName, 'pk'>, ArtifactFile>>()

function artifactFiles(a: ModelArtifacts, pk?: ProvingKeyFile): Partial<Record<ArtifactName, ArtifactFile>> {
  let files = filesCache.get(a)
  if (!files) {
    const file = (name: string, bytes: Uint8Array, path = resolve(a.dir, name)): ArtifactFile => ({
      path,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    })
    files = {
      compiled: file('model.compiled', a.compiled),
      vk: file('vk.key', a.vk),
      settings: file('settings.json', a.settings),
      srs: file(a.manifest.srs.file, a.srs, a.srsPath),
    }
    filesCache.set(a, files)
  }
  return pk ? { ...files, pk: { path: pk.path, sha256: pk.sha256 } } : files
}

/** The cache key of a model in a server: with the proving key, or without. */
const cacheKey = (a: ModelArtifacts, withPk: boolean) => (withPk ? `${a.contentHash}-pk` : a.contentHash)

export class ProcessPool implements EzklEngine {
  readonly #slots: Slot[]
  readonly #queue: Job[] = []
  readonly #options: ProcessPoolOptions
  readonly #cacheSize: number
  #disposed = false
  #processesStarted = 0
  #artifactLoads = 0
  #jobsDone = 0

  constructor(options: ProcessPoolOptions) {
    const size = options.size ?? 1
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`pool size must be a positive integer, not ${size}`)
    if (options.jobTimeoutMs !== undefined && !(options.jobTimeoutMs > 0))
      throw new RangeError(`jobTimeoutMs must be positive, not ${options.jobTimeoutMs}`)
    this.#options = options
    this.#cacheSize = Math.max(1, options.cacheSize ?? 4)
    this.#slots = Array.from({ length: size }, () => ({ conn: null, starting: null, generation: 0, loaded: [], job: null, timer: null }))
    this.#reportUsage()
  }

  run(op: EngineOp, artifacts: ModelArtifacts, payload: Uint8Array, pk?: ProvingKeyFile): Promise<JobResult> {
    if (op === 'prove' && !pk) return Promise.reject(new ProverError(PLUGIN_NAME, `prove needs ${artifacts.manifest.name}'s proving key`))
    return this.#enqueue(op, artifacts, payload, pk)
  }

  /** Derives the model's keys with ezkl.setup in a server, which writes the proving key to `pkPath`. */
  async setup(artifacts: ModelArtifacts, pkPath: string): Promise<{ vk: Uint8Array; ms: number }> {
    const vkPath = `${pkPath}.vk`
    try {
      const r = await this.#enqueue('setup', artifacts, new TextEncoder().encode(JSON.stringify({ vk: vkPath, pk: pkPath })))
      if (!r.ok) throw new ProverError(PLUGIN_NAME, `cannot derive ${artifacts.manifest.name}'s keys: ${r.message}`)
      return { vk: new Uint8Array(await readFile(vkPath)), ms: r.ms }
    } finally {
      await rm(vkPath, { force: true })
    }
  }

  #enqueue(op: ServerOp, artifacts: ModelArtifacts, payload: Uint8Array, pk?: ProvingKeyFile): Promise<JobResult> {
    if (this.#disposed) return Promise.reject(new ProverDisposedError(PLUGIN_NAME))
    return new Promise<JobResult>((resolve, reject) => {
      this.#queue.push({ op, artifacts, payload, ...(pk ? { pk } : {}), resolve, reject })
      this.#dispatch()
    })
  }

  stats(): ProcessPoolStats {
    return { processesStarted: this.#processesStarted, artifactLoads: this.#artifactLoads, jobsDone: this.#jobsDone }
  }

  /** The pids of the running servers (for tests and diagnostics). */
  pids(): number[] {
    return this.#slots.flatMap((s) => (s.conn ? [s.conn.pid] : []))
  }

  /** Fails queued and running jobs and stops every server. */
  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    reportPoolUsage(this, 0, 0)
    for (const job of this.#queue.splice(0)) job.reject(new ProverDisposedError(PLUGIN_NAME))
    await Promise.all(
      this.#slots.map(async (slot) => {
        this.#finish(slot)?.reject(new ProverDisposedError(PLUGIN_NAME))
        const starting = slot.starting
        await this.#discard(slot)
        // A server still starting stops itself once it sees the pool disposed.
        await starting?.catch(() => undefined)
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
      const slot = idle.find((s) => s.conn !== null && holds(s)) ?? idle.find((s) => s.conn !== null) ?? (idle[0] as Slot)
      slot.job = job
      this.#reportUsage()
      const ms = this.#options.jobTimeoutMs
      if (ms !== undefined) {
        slot.timer = setTimeout(() => {
          if (slot.job !== job) return
          this.#finish(slot)
          job.reject(new ProverError(PLUGIN_NAME, `${job.op} took longer than ${ms} ms; its process was stopped`, { retryable: true }))
          void this.#discard(slot)
          this.#dispatch()
        }, ms)
      }
      void this.#execute(slot, job)
    }
  }

  async #execute(slot: Slot, job: Job): Promise<void> {
    const current = () => slot.job === job
    try {
      const conn = await this.#connection(slot)
      if (!current()) return
      const withPk = cacheKey(job.artifacts, true)
      const key = slot.loaded.includes(withPk) ? withPk : cacheKey(job.artifacts, job.pk !== undefined)
      if (slot.loaded.includes(key)) {
        slot.loaded = [...slot.loaded.filter((k) => k !== key), key]
      } else {
        // The same model without its proving key is superseded.
        const without = cacheKey(job.artifacts, false)
        if (slot.loaded.includes(without)) {
          slot.loaded = slot.loaded.filter((k) => k !== without)
          await conn.request({ op: 'evict', key: without })
        }
        while (slot.loaded.length >= this.#cacheSize) {
          const evicted = slot.loaded.shift() as string
          await conn.request({ op: 'evict', key: evicted })
        }
        const r = await conn.request({ op: 'load', key, files: artifactFiles(job.artifacts, job.pk) })
        if (!current()) return
        if (!r.ok) throw loadError(job.artifacts, r)
        slot.loaded.push(key)
        this.#artifactLoads++
      }
      const r = await conn.request({ op: job.op, key, payload: Buffer.from(job.payload).toString('base64') })
      if (!current()) return
      this.#finish(slot)
      if (r.ok) {
        if (job.op === 'verify') job.resolve({ ok: true, value: r.value === true, ms: r.ms })
        else if (job.op === 'setup') job.resolve({ ok: true, value: true, ms: r.ms })
        else if (typeof r.value === 'string')
          job.resolve({
            ok: true,
            value: new Uint8Array(Buffer.from(r.value, 'base64')),
            ms: r.ms,
            ...(r.peakRssBytes !== undefined ? { peakMemoryBytes: r.peakRssBytes } : {}),
          })
        else job.resolve({ ok: false, kind: 'engine', message: `ezkl ${job.op} returned no output`, ms: r.ms })
        return
      }
      if (r.error.kind === 'protocol' || r.error.kind === 'artifact') {
        // The pool and the server disagree (a model it should hold): start over with a fresh one.
        void this.#discard(slot)
        job.reject(new ProverError(PLUGIN_NAME, `the native prover refused ${job.op}: ${r.error.message}`, { retryable: true }))
        return
      }
      // After a panic the engine's state is suspect: replace the process, as the WASM prover does after a trap.
      if (r.error.kind === 'panic') void this.#discard(slot)
      job.resolve({ ok: false, kind: r.error.kind === 'panic' ? 'trap' : 'engine', message: r.error.message, ms: r.ms })
    } catch (e) {
      if (!current()) return
      this.#finish(slot)
      // ConfigError and ProverError say whether to retry; anything else (a socket or spawn failure) may pass.
      job.reject(
        e instanceof SertnError
          ? e
          : new ProverError(PLUGIN_NAME, `the native prover failed: ${e instanceof Error ? e.message : String(e)}`, {
              retryable: true,
              cause: e,
            }),
      )
    } finally {
      this.#dispatch()
    }
  }

  /** The slot's server, started (once) if it has none. */
  #connection(slot: Slot): Promise<ServerConnection> {
    if (slot.conn) return Promise.resolve(slot.conn)
    if (slot.starting) return slot.starting
    const generation = slot.generation
    this.#processesStarted++
    const starting = ServerConnection.start(this.#options).then(async (conn) => {
      if (this.#disposed || slot.generation !== generation) {
        await conn.stop()
        throw new ProverError(PLUGIN_NAME, 'the native prover process was replaced while starting', { retryable: true })
      }
      slot.conn = conn
      slot.loaded = []
      conn.onClose(() => {
        if (slot.conn !== conn) return
        slot.conn = null
        slot.loaded = []
      })
      return conn
    })
    slot.starting = starting
    const clear = () => {
      if (slot.starting === starting) slot.starting = null
    }
    starting.then(clear, clear)
    return starting
  }

  /** The pool's slots and busy slots, to the process's metrics and health state. */
  #reportUsage(): void {
    if (!this.#disposed) reportPoolUsage(this, this.#slots.length, this.#slots.filter((s) => s.job !== null).length)
  }

  /** Detaches the slot's current job (clearing its timer), returning it. */
  #finish(slot: Slot): Job | null {
    const job = slot.job
    if (slot.timer) clearTimeout(slot.timer)
    slot.timer = null
    slot.job = null
    this.#reportUsage()
    if (job) this.#jobsDone++
    return job
  }

  /** Forgets the slot's server and stops it; the next job on this slot starts a fresh one. */
  async #discard(slot: Slot): Promise<void> {
    const conn = slot.conn
    slot.generation++
    slot.conn = null
    slot.starting = null
    slot.loaded = []
    await conn?.stop()
  }
}

function loadError(a: ModelArtifacts, r: Extract<ServerReply, { ok: false }>): ProverError {
  if (r.error.kind === 'artifact')
    return new ProverError(
      PLUGIN_NAME,
      `cannot load ${a.manifest.name}: ${r.error.message}. The files on disk changed since the artifacts were loaded; load them again`,
    )
  return new ProverError(PLUGIN_NAME, `cannot load ${a.manifest.name}: ${r.error.message}`, { retryable: r.error.kind !== 'protocol' })
}
