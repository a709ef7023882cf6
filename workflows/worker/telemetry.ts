/**
 * Temporal's Runtime, installed once per process with Sertn's telemetry: the SDK's logs, the
 * workflows' and the activities' (`log` of @temporalio/workflow and @temporalio/activity) and
 * the native core's (forwarded) go to the pino root logger as records (core/log.ts), and, when
 * the health server is on, the SDK's own metrics (`temporal_*`) are exported by the core's
 * Prometheus exporter on an internal loopback port, which `/metrics` appends to Sertn's registry.
 *
 * `Runtime.install` may run once per process, before the first connection or worker: a process
 * that installed its Runtime otherwise keeps it (its logs and metrics stay as it chose).
 */
import { createServer } from 'node:net'
import { makeTelemetryFilterString, Runtime, type TelemetryOptions } from '@temporalio/worker'
import { type Logger, temporalLogger } from '../../core/log.ts'

export type TemporalTelemetry = {
  /** Where the core's Prometheus exporter serves the SDK's metrics (`http://127.0.0.1:PORT/metrics`). */
  readonly metricsUrl?: string
  /** False when the Runtime had been installed before (by this process's own code or a test). */
  readonly installed: boolean
}

let telemetry: TemporalTelemetry | undefined

/**
 * Installs Temporal's Runtime with `logger` and, with `metrics`, the SDK metrics exporter (once per
 * process; later calls return what the first one did).
 */
export async function installTemporalTelemetry(options: { logger: Logger; metrics: boolean }): Promise<TemporalTelemetry> {
  if (telemetry) return telemetry
  if (Runtime._instance) {
    options.logger.warn(
      { component: 'worker' },
      "Temporal's Runtime was installed before Sertn's telemetry: the SDK's logs keep their logger and its metrics are not on /metrics",
    )
    telemetry = { installed: false }
    return telemetry
  }
  const verbose = options.logger.isLevelEnabled('trace')
  const telemetryOptions: TelemetryOptions = {
    logging: { filter: makeTelemetryFilterString({ core: verbose ? 'DEBUG' : 'WARN', other: 'ERROR' }), forward: {} },
  }
  let metricsUrl: string | undefined
  if (options.metrics) {
    const port = await freeLoopbackPort()
    telemetryOptions.metrics = { prometheus: { bindAddress: `127.0.0.1:${port}` } }
    metricsUrl = `http://127.0.0.1:${port}/metrics`
  }
  Runtime.install({ logger: temporalLogger(options.logger), telemetryOptions })
  telemetry = { installed: true, ...(metricsUrl ? { metricsUrl } : {}) }
  return telemetry
}

/** A loopback port free now (the exporter binds it a moment later). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const address = s.address()
      const port = typeof address === 'object' && address ? address.port : 0
      s.close(() => resolve(port))
    })
  })
}
