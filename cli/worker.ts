/** `sertn worker`: Temporal workers for the given roles, until SIGINT/SIGTERM. */
import { loadConfig, type SertnConfig } from '../core/config.ts'
import { createLogger, LOG_LEVELS, type LogFormat, type Logger, type LogLevel, setRootLogger } from '../core/log.ts'
import { configuredMessengers } from '../plugins/messengers/index.ts'
import { runWorkers, WORKER_ROLES, type WorkerRole } from '../workflows/worker/index.ts'
import { UsageError } from './common.ts'
import { startupChecks } from './startup.ts'

const LOG_FORMATS = ['json', 'pretty', 'auto'] as const

/**
 * The process's root logger from `--log-level` / `--log-format` (else `observability.logLevel` /
 * `logFormat` of the configuration), installed as the root logger; `base` fields go on every line.
 */
export function commandLogger(
  config: SertnConfig,
  opts: { logLevel?: string | undefined; logFormat?: string | undefined },
  base: Record<string, unknown>,
): Logger {
  const level = opts.logLevel ?? config.observability.logLevel
  const format = opts.logFormat ?? config.observability.logFormat
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`)
  if (!(LOG_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}, got "${format}"`)
  const logger = createLogger({ level: level as LogLevel, format: format as LogFormat, base })
  setRootLogger(logger)
  return logger
}

export async function workerCommand(opts: { roles: string; config?: string; logLevel?: string; logFormat?: string }): Promise<number> {
  const roles = opts.roles.split(',').map((r) => r.trim()) as WorkerRole[]
  const unknown = roles.filter((r) => !WORKER_ROLES.includes(r))
  if (unknown.length) {
    console.error(`error: unknown role(s) ${unknown.join(', ')}; roles are ${WORKER_ROLES.join(', ')}`)
    return 2
  }
  const config = loadConfig(opts.config)
  const logger = commandLogger(config, opts, { roles: roles.join(',') })
  const log = logger.child({ component: 'worker' })
  // A messenger section the plugin of its kind refuses stops start-up here, naming the field.
  await configuredMessengers(config)
  await startupChecks(config, roles)
  const stop = new AbortController()
  const onSignal = (sig: string) => {
    log.info({ signal: sig }, `${sig}: shutting down`)
    stop.abort()
  }
  process.once('SIGINT', () => onSignal('SIGINT'))
  process.once('SIGTERM', () => onSignal('SIGTERM'))
  log.info(
    { temporal: config.temporal.address, namespace: config.temporal.namespace },
    `pid ${process.pid}, roles ${roles.join(', ')}, Temporal ${config.temporal.address}`,
  )
  // runWorkers installs Temporal's Runtime with this logger (and its metrics on /metrics when the endpoint is on).
  await runWorkers({ config, roles, signal: stop.signal, logger })
  return 0
}
