/**
 * The worker's (and the relay's) HTTP endpoint, on when `observability.http.port` is set:
 *
 * - `GET /metrics`: Prometheus text, Sertn's registry (core/metrics.ts) followed by Temporal's own
 *   SDK metrics (`temporal_*`, scraped from the Runtime's exporter on loopback; see telemetry.ts).
 * - `GET /healthz`: 200 while the process runs and its Temporal connection answers (503 once a
 *   check failed); a process without Temporal (the relay) answers 200.
 * - `GET /readyz`: JSON of the process's health state (core/health.ts): Temporal, each chain's
 *   watcher (last scanned block, head, lag), the prover pool and the relay backlog; 503 with the
 *   reasons when Temporal is unreachable, a watcher has not scanned yet or lags more than
 *   `maxLagBlocks`.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type HealthSnapshot, healthSnapshot, reportTemporal } from '../../core/health.ts'
import { registry } from '../../core/metrics.ts'

export type Readiness = {
  ready: boolean
  /** Why it is not ready (empty when ready). */
  reasons: string[]
  temporal?: { ok: boolean; checkedAt: string; error?: string }
  chains: Record<string, { lastScannedBlock?: number; head?: number; lagBlocks?: number; lastScanAt?: string; error?: string }>
  prover?: { slots: number; busy: number }
  relays: HealthSnapshot['relays']
}

export type ReadinessOptions = {
  /** A watcher more blocks than this behind its chain's head is not ready. */
  maxLagBlocks: number
  /** Whether Temporal must have answered (workers); the relay has no Temporal connection. */
  requireTemporal: boolean
}

/** Whether the process is ready, and why not, from a health snapshot. */
export function readinessOf(s: HealthSnapshot, options: ReadinessOptions): Readiness {
  const reasons: string[] = []
  if (options.requireTemporal) {
    if (!s.temporal) reasons.push('temporal: not checked yet')
    else if (!s.temporal.ok) reasons.push(`temporal: unreachable (${s.temporal.error ?? 'no answer'})`)
  }
  const chains: Readiness['chains'] = {}
  for (const [name, c] of Object.entries(s.chains)) {
    if (c.lastScannedBlock === undefined)
      reasons.push(`chain ${name}: its watcher has not scanned yet${c.error ? ` (last error: ${c.error})` : ''}`)
    else if (c.lagBlocks !== undefined && c.lagBlocks > options.maxLagBlocks)
      reasons.push(`chain ${name}: its watcher lags ${c.lagBlocks} blocks behind the head (more than ${options.maxLagBlocks})`)
    chains[name] = {
      ...(c.lastScannedBlock !== undefined ? { lastScannedBlock: Number(c.lastScannedBlock) } : {}),
      ...(c.head !== undefined ? { head: Number(c.head) } : {}),
      ...(c.lagBlocks !== undefined ? { lagBlocks: c.lagBlocks } : {}),
      ...(c.lastScanAt !== undefined ? { lastScanAt: new Date(c.lastScanAt).toISOString() } : {}),
      ...(c.error !== undefined ? { error: c.error } : {}),
    }
  }
  return {
    ready: reasons.length === 0,
    reasons,
    ...(s.temporal
      ? {
          temporal: {
            ok: s.temporal.ok,
            checkedAt: new Date(s.temporal.checkedAt).toISOString(),
            ...(s.temporal.error ? { error: s.temporal.error } : {}),
          },
        }
      : {}),
    chains,
    ...(s.prover ? { prover: s.prover } : {}),
    relays: s.relays,
  }
}

export type HealthServerOptions = ReadinessOptions & {
  host: string
  /** 0: any free port (the bound one is in `url`). */
  port: number
  /** Temporal's SDK metrics, appended to `/metrics` (see telemetry.ts). */
  temporalMetricsUrl?: string
}

export type HealthServer = {
  /** `http://host:port` as bound. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Starts the endpoint; resolves once it listens. */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(body)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'GET only\n')
    if (path === '/metrics') {
      metricsText(options.temporalMetricsUrl).then(
        (text) => send(200, registry.contentType, text),
        (err: unknown) => send(500, 'text/plain', `metrics failed: ${String(err)}\n`),
      )
      return
    }
    if (path === '/healthz') {
      const t = healthSnapshot().temporal
      const ok = !options.requireTemporal || t === undefined || t.ok
      return send(
        ok ? 200 : 503,
        'application/json',
        JSON.stringify(ok ? { ok: true } : { ok: false, reason: `temporal: unreachable (${t?.error ?? 'no answer'})` }),
      )
    }
    if (path === '/readyz') {
      const r = readinessOf(healthSnapshot(), options)
      return send(r.ready ? 200 : 503, 'application/json', JSON.stringify(r))
    }
    send(404, 'text/plain', 'not found: /metrics, /healthz, /readyz\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/** Sertn's registry, then Temporal's SDK metrics when their exporter answers. */
async function metricsText(temporalMetricsUrl: string | undefined): Promise<string> {
  const own = await registry.metrics()
  if (!temporalMetricsUrl) return own
  try {
    const r = await fetch(temporalMetricsUrl, { signal: AbortSignal.timeout(2_000) })
    if (!r.ok) throw new Error(`HTTP ${r.status}`)
    const text = await r.text()
    return `${own.endsWith('\n') ? own : `${own}\n`}${text}`
  } catch (err) {
    return `${own}\n# Temporal SDK metrics unavailable: ${err instanceof Error ? err.message : String(err)}\n`
  }
}

/**
 * Asks Temporal every `intervalMs` whether it answers (`check`, e.g. the connection's
 * getSystemInfo) and reports it (core/health.ts) until `signal` aborts.
 */
export function startTemporalProbe(check: () => Promise<unknown>, options: { intervalMs?: number; signal: AbortSignal }): Promise<void> {
  const intervalMs = options.intervalMs ?? 5_000
  return (async () => {
    while (!options.signal.aborted) {
      try {
        await check()
        reportTemporal({ ok: true, checkedAt: Date.now() })
      } catch (err) {
        reportTemporal({ ok: false, checkedAt: Date.now(), error: err instanceof Error ? err.message : String(err) })
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, intervalMs)
        function done() {
          clearTimeout(t)
          options.signal.removeEventListener('abort', done)
          resolve()
        }
        options.signal.addEventListener('abort', done, { once: true })
      })
    }
  })()
}
