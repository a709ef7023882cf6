/**
 * The chaos run's resource watch (the soak): memory (RSS) and open file descriptors of every worker
 * process, sampled from Linux `/proc` at a fixed interval, with their growth per hour by a
 * least-squares slope; and the size of the Temporal histories the run left, per workflow type.
 *
 * A worker restarted by a fault is a new process and so a new series: growth is measured within one
 * process only. Growth is given only for a series that covers at least {@link MIN_GROWTH_SPAN_MS}
 * with at least {@link MIN_GROWTH_SAMPLES} samples (after the first mark, e.g. the warm-up's end),
 * since a shorter one says more about start-up than about a leak.
 */
import { readdir, readFile } from 'node:fs/promises'
import { Client, type ConnectionLike, type WorkflowExecutionInfo } from '@temporalio/client'
import { p50p95 } from '../bench/stats.ts'

/** The shortest span of samples (ms) a growth rate is computed over. */
export const MIN_GROWTH_SPAN_MS = 60_000
/** The fewest samples a growth rate is computed from. */
export const MIN_GROWTH_SAMPLES = 3

const MiB = 1024 * 1024
const HOUR_MS = 3_600_000

/** What one read of a process gives: resident memory in bytes and the number of open file descriptors. */
export type ProcUsage = { rssBytes: number; fds: number }

/** Reads a process's usage; undefined when the process is gone or cannot be read. */
export type ReadProc = (pid: number) => Promise<ProcUsage | undefined>

/** One sample of one process. */
export type ResourceSample = { at: number; rssBytes: number; fds: number }

/** A process to watch: the worker's name (stable across restarts) and its current pid. */
export type WatchedProcess = { name: string; pid: number }

/** What a {@link ResourceSampler} is built with. */
export type ResourceSamplerOptions = {
  /** The processes to sample, asked at every sample (a restart changes a worker's pid). */
  workers: () => readonly WatchedProcess[]
  /** Interval between samples in ms (default 15000). */
  everyMs?: number
  /** Reads one process (default {@link readProcUsage}: Linux `/proc`). */
  readProc?: ReadProc
  /** The clock (default `Date.now`). */
  now?: () => number
}

/** One process's series, summarized. RSS in MiB to one decimal. */
export type ResourceSeriesReport = {
  pid: number
  samples: number
  firstRssMiB: number
  lastRssMiB: number
  maxRssMiB: number
  firstFds: number
  lastFds: number
  maxFds: number
  /** Seconds between the series' first and last sample. */
  durationS: number
  /** RSS growth in MiB per hour (least squares over the samples after the first mark); undefined when too short. */
  rssMiBPerHour: number | undefined
  /** Open file descriptors' growth per hour, likewise. */
  fdsPerHour: number | undefined
}

/** The sampler's report: the marks, and per worker name its series in the order they started. */
export type ResourceReport = {
  marks: { label: string; at: number }[]
  workers: Record<string, ResourceSeriesReport[]>
}

/**
 * Reads a Linux process's resident memory (`VmRSS` of `/proc/<pid>/status`, kB → bytes) and counts
 * its open file descriptors (`/proc/<pid>/fd`). Undefined when the process is gone, is a zombie,
 * cannot be read (another user's) or there is no `/proc` (not Linux).
 */
export async function readProcUsage(pid: number): Promise<ProcUsage | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    if (!m) return undefined
    const fds = (await readdir(`/proc/${pid}/fd`)).length
    return { rssBytes: Number(m[1]) * 1024, fds }
  } catch {
    return undefined
  }
}

/**
 * The least-squares slope of y over x; undefined with fewer than two points or when every x is the
 * same.
 */
export function leastSquaresSlope(points: readonly { x: number; y: number }[]): number | undefined {
  const n = points.length
  if (n < 2) return undefined
  let sx = 0
  let sy = 0
  for (const p of points) {
    sx += p.x
    sy += p.y
  }
  const mx = sx / n
  const my = sy / n
  let sxx = 0
  let sxy = 0
  for (const p of points) {
    sxx += (p.x - mx) ** 2
    sxy += (p.x - mx) * (p.y - my)
  }
  return sxx === 0 ? undefined : sxy / sxx
}

const round1 = (x: number) => Math.round(x * 10) / 10
const toMiB = (bytes: number) => round1(bytes / MiB)

/**
 * Summarizes one process's samples (in time order, at least one). Growth is the least-squares slope
 * over the samples taken at or after `since` (all when undefined), per hour, given only when those
 * cover at least {@link MIN_GROWTH_SPAN_MS} with at least {@link MIN_GROWTH_SAMPLES} samples.
 */
export function summarizeSeries(pid: number, samples: readonly ResourceSample[], since?: number): ResourceSeriesReport {
  const first = samples[0]
  const last = samples.at(-1)
  if (!first || !last) throw new RangeError('summarizeSeries: a series has at least one sample')
  const used = since === undefined ? samples : samples.filter((s) => s.at >= since)
  const span = used.length ? used.at(-1)!.at - used[0]!.at : 0
  const enough = used.length >= MIN_GROWTH_SAMPLES && span >= MIN_GROWTH_SPAN_MS
  const perHour = (y: (s: ResourceSample) => number, scale: number) => {
    if (!enough) return undefined
    const slope = leastSquaresSlope(used.map((s) => ({ x: s.at, y: y(s) })))
    return slope === undefined ? undefined : round1((slope * HOUR_MS) / scale)
  }
  return {
    pid,
    samples: samples.length,
    firstRssMiB: toMiB(first.rssBytes),
    lastRssMiB: toMiB(last.rssBytes),
    maxRssMiB: toMiB(Math.max(...samples.map((s) => s.rssBytes))),
    firstFds: first.fds,
    lastFds: last.fds,
    maxFds: Math.max(...samples.map((s) => s.fds)),
    durationS: round1((last.at - first.at) / 1000),
    rssMiBPerHour: perHour((s) => s.rssBytes, MiB),
    fdsPerHour: perHour((s) => s.fds, 1),
  }
}

/**
 * Samples the memory and file descriptors of a set of worker processes at a fixed interval. Each
 * (name, pid) is its own series: a restarted worker starts a new one.
 *
 * @example
 * const sampler = new ResourceSampler({ workers: () => net.workers.map((w) => ({ name: w.proc.name, pid: w.proc.pid })) })
 * sampler.start()
 * // … warm-up …
 * sampler.mark('warm-up done')
 * // … the run …
 * await sampler.sample()
 * sampler.stop()
 * console.log(formatResourceReport(sampler.report(), history).join('\n'))
 */
export class ResourceSampler {
  readonly #workers: () => readonly WatchedProcess[]
  readonly #everyMs: number
  readonly #readProc: ReadProc
  readonly #now: () => number
  /** name → pid → samples, in insertion order. */
  readonly #series = new Map<string, Map<number, ResourceSample[]>>()
  readonly #marks: { label: string; at: number }[] = []
  #timer: NodeJS.Timeout | undefined
  #inFlight: Promise<void> | undefined

  /** Builds a sampler; nothing is read before {@link start} or {@link sample}. */
  constructor(options: ResourceSamplerOptions) {
    this.#workers = options.workers
    this.#everyMs = options.everyMs ?? 15_000
    if (!(this.#everyMs > 0)) throw new RangeError(`ResourceSampler: everyMs must be > 0, got ${this.#everyMs}`)
    this.#readProc = options.readProc ?? readProcUsage
    this.#now = options.now ?? Date.now
  }

  /** Samples at once, then every `everyMs` until {@link stop} (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer) return
    this.#tick()
    this.#timer = setInterval(() => this.#tick(), this.#everyMs)
    this.#timer.unref()
  }

  /** Stops the periodic sampling (a sample under way still completes). */
  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Takes one sample of every worker now (after the one under way, if any). A process that cannot
   * be read (gone, restarting) is skipped.
   */
  async sample(): Promise<void> {
    while (this.#inFlight) await this.#inFlight.catch(() => {})
    this.#inFlight = this.#sampleAll().finally(() => {
      this.#inFlight = undefined
    })
    return this.#inFlight
  }

  /** The timer's sample: skipped while the previous one is still under way. */
  #tick(): void {
    // A failing `workers()` loses this sample only; the next tick tries again.
    if (!this.#inFlight) this.sample().catch(() => {})
  }

  async #sampleAll(): Promise<void> {
    const workers = this.#workers()
    const reads = await Promise.all(workers.map((w) => this.#readProc(w.pid).catch(() => undefined)))
    const at = this.#now()
    workers.forEach((w, i) => {
      const usage = reads[i]
      if (!usage) return
      const byPid = this.#series.get(w.name) ?? new Map<number, ResourceSample[]>()
      this.#series.set(w.name, byPid)
      const samples = byPid.get(w.pid) ?? []
      byPid.set(w.pid, samples)
      samples.push({ at, rssBytes: usage.rssBytes, fds: usage.fds })
    })
  }

  /** Records a phase mark now (e.g. 'warm-up done'); growth is measured after the first mark. */
  mark(label: string): void {
    this.#marks.push({ label, at: this.#now() })
  }

  /** The report so far: every worker's series, summarized. */
  report(): ResourceReport {
    const since = this.#marks[0]?.at
    const workers: Record<string, ResourceSeriesReport[]> = {}
    for (const [name, byPid] of this.#series) {
      workers[name] = [...byPid].map(([pid, samples]) => summarizeSeries(pid, samples, since))
    }
    return { marks: this.#marks.map((m) => ({ ...m })), workers }
  }
}

/** Percentiles and maximum of one measure. */
export type Spread = { p50: number; p95: number; max: number }

/** The history sizes of one workflow type. */
export type WorkflowTypeHistory = {
  count: number
  /** Events per history. */
  historyLength: Spread
  /** Bytes per history; undefined when the server did not report sizes. */
  historySize: Spread | undefined
}

/** The histories the run left, per workflow type, over the namespaces listed. */
export type HistoryStats = {
  namespaces: string[]
  /** Workflows read in all. */
  workflows: number
  /** Of them, still open (running) when listed. */
  open: number
  /** True when the listing stopped at `maxWorkflows`. */
  truncated: boolean
  byType: Record<string, WorkflowTypeHistory>
}

function spread(xs: readonly number[]): Spread | undefined {
  if (xs.length === 0) return undefined
  return { ...p50p95(xs), max: Math.max(...xs) }
}

/**
 * Aggregates workflow infos per workflow type: count, events per history and bytes per history
 * (p50, p95, max). Pure: {@link temporalHistoryStats} feeds it from Temporal's visibility list.
 */
export function aggregateHistories(
  infos: readonly Pick<WorkflowExecutionInfo, 'type' | 'historyLength' | 'historySize'>[],
): Record<string, WorkflowTypeHistory> {
  const groups = new Map<string, { lengths: number[]; sizes: number[] }>()
  for (const info of infos) {
    const g = groups.get(info.type) ?? { lengths: [], sizes: [] }
    groups.set(info.type, g)
    g.lengths.push(info.historyLength)
    if (info.historySize !== undefined && info.historySize > 0) g.sizes.push(info.historySize)
  }
  const out: Record<string, WorkflowTypeHistory> = {}
  for (const [type, g] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    out[type] = { count: g.lengths.length, historyLength: spread(g.lengths)!, historySize: spread(g.sizes) }
  }
  return out
}

/** Options of {@link temporalHistoryStats}. */
export type TemporalHistoryStatsOptions = {
  /** A visibility query to filter by (default: every workflow). */
  query?: string
  /** Stop after this many workflows in all (default 20000). */
  maxWorkflows?: number
  /**
   * Describe each open workflow for its current history (default true). The visibility list gives
   * an open workflow's length as of its last visibility update (0 when it never had one, since
   * the store records the length at close): describing it costs one call per open workflow.
   */
  describeOpen?: boolean
}

/**
 * Lists the workflows of each namespace (Temporal's visibility store) and gives their history
 * length and size per workflow type. Open workflows count with the history they have so far (by a
 * describe call each, see {@link TemporalHistoryStatsOptions.describeOpen}).
 *
 * @example
 * const history = await temporalHistoryStats(net.connection, net.configs.map((c) => c.temporal.namespace))
 */
export async function temporalHistoryStats(
  connection: ConnectionLike,
  namespaces: readonly string[],
  options: TemporalHistoryStatsOptions = {},
): Promise<HistoryStats> {
  const max = options.maxWorkflows ?? 20_000
  const infos: Pick<WorkflowExecutionInfo, 'type' | 'historyLength' | 'historySize'>[] = []
  let truncated = false
  let open = 0
  outer: for (const namespace of namespaces) {
    const client = new Client({ connection, namespace })
    const list = options.query === undefined ? client.workflow.list() : client.workflow.list({ query: options.query })
    for await (const info of list) {
      if (infos.length >= max) {
        truncated = true
        break outer
      }
      if (info.status.name === 'RUNNING') {
        open++
        if (options.describeOpen ?? true) {
          const now = await client.workflow.getHandle(info.workflowId, info.runId).describe()
          infos.push({ type: info.type, historyLength: now.historyLength, historySize: now.historySize })
          continue
        }
      }
      infos.push({ type: info.type, historyLength: info.historyLength, historySize: info.historySize })
    }
  }
  return { namespaces: [...namespaces], workflows: infos.length, open, truncated, byType: aggregateHistories(infos) }
}

/** The series that tells most about a worker: the longest (then the one with most samples). */
export function longestSeries(series: readonly ResourceSeriesReport[]): ResourceSeriesReport | undefined {
  let best: ResourceSeriesReport | undefined
  for (const s of series) {
    if (!best || s.durationS > best.durationS || (s.durationS === best.durationS && s.samples > best.samples)) best = s
  }
  return best
}

const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

/**
 * The summary lines for the run's printed summary: one `memory` line per worker (its longest
 * series, and how many processes it had when a fault restarted it), one `history` line per
 * workflow type, and one more when some were open or the listing was cut at its bound. `history`
 * undefined (Temporal could not be listed): memory lines only.
 */
export function formatResourceReport(report: ResourceReport, history?: HistoryStats): string[] {
  const lines: string[] = []
  for (const [name, series] of Object.entries(report.workers)) {
    const s = longestSeries(series)
    if (!s) continue
    const growth =
      s.rssMiBPerHour === undefined ? `growth n/a (${s.samples} samples over ${s.durationS} s)` : `${signed(s.rssMiBPerHour)} MiB/h`
    const fdGrowth = s.fdsPerHour === undefined ? '' : `, ${signed(s.fdsPerHour)}/h`
    const processes = series.length > 1 ? ` [longest of ${series.length} processes]` : ''
    lines.push(
      `  memory     ${name}: ${s.firstRssMiB.toFixed(1)} → ${s.lastRssMiB.toFixed(1)} MiB (max ${s.maxRssMiB.toFixed(1)}), ${growth}; ` +
        `fds ${s.firstFds} → ${s.lastFds}${fdGrowth}${processes}`,
    )
  }
  if (history) {
    for (const [type, h] of Object.entries(history.byType)) {
      const size = h.historySize
        ? `, size p50 ${kib(h.historySize.p50)} / p95 ${kib(h.historySize.p95)} / max ${kib(h.historySize.max)}`
        : ''
      lines.push(
        `  history    ${type}: ${h.count} workflows, events p50 ${h.historyLength.p50} / p95 ${h.historyLength.p95} / max ${h.historyLength.max}${size}`,
      )
    }
    if (history.open > 0 || history.truncated) {
      lines.push(
        `  history    ${history.workflows} workflows listed` +
          (history.open > 0 ? `, ${history.open} of them open (counted with their history so far)` : '') +
          (history.truncated ? ', listing stopped at the bound' : ''),
      )
    }
  }
  return lines
}

/** The resource part of the run's final JSON line (null where a value is unknown). */
export type ResourceJson = {
  workers: Record<string, { rssMiBPerHour: number | null; fdsPerHour: number | null; maxRssMiB: number; maxFds: number; processes: number }>
  history: Record<string, { count: number; maxHistoryLength: number; p95HistoryLength: number; maxHistoryBytes: number | null }> | null
}

/**
 * A compact object for the run's final JSON line: per worker name the growth and maxima of its
 * longest series, per workflow type the largest histories.
 */
export function resourceJson(report: ResourceReport, history?: HistoryStats): ResourceJson {
  const workers: ResourceJson['workers'] = {}
  for (const [name, series] of Object.entries(report.workers)) {
    const s = longestSeries(series)
    if (!s) continue
    workers[name] = {
      rssMiBPerHour: s.rssMiBPerHour ?? null,
      fdsPerHour: s.fdsPerHour ?? null,
      maxRssMiB: s.maxRssMiB,
      maxFds: s.maxFds,
      processes: series.length,
    }
  }
  if (!history) return { workers, history: null }
  const byType: NonNullable<ResourceJson['history']> = {}
  for (const [type, h] of Object.entries(history.byType)) {
    byType[type] = {
      count: h.count,
      maxHistoryLength: h.historyLength.max,
      p95HistoryLength: h.historyLength.p95,
      maxHistoryBytes: h.historySize?.max ?? null,
    }
  }
  return { workers, history: byType }
}
