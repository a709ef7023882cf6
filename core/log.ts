/**
 * Structured logs (pino): one process-wide root logger, JSON lines for log collectors or pretty
 * lines for a terminal, with levels. Components take a child logger with their own fields
 * (`component`, `chain`, and `requestKey` wherever a line is about one request), so that an
 * operator can filter a request's whole story by its key.
 *
 * `auto` picks pretty output when standard error is a terminal and JSON otherwise (what a process
 * manager or a container runtime collects). Logs go to standard error; standard output stays for a
 * command's results.
 */
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino'
import pretty from 'pino-pretty'

export type Logger = PinoLogger
export type LogLevel = LevelWithSilent
export type LogFormat = 'json' | 'pretty' | 'auto'

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const

export type LoggerOptions = {
  level?: LogLevel
  format?: LogFormat
  /** Fields on every line (e.g. `{ role: 'chain-io' }`). */
  base?: Record<string, unknown>
  /** Where lines go (default: standard error). */
  destination?: NodeJS.WritableStream
}

/** A new logger writing to standard error (or `destination`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info'
  const format = options.format === 'auto' || options.format === undefined ? (process.stderr.isTTY ? 'pretty' : 'json') : options.format
  const base = { pid: process.pid, ...options.base }
  if (format === 'pretty') {
    const stream = pretty({
      destination: options.destination ?? 2,
      sync: true,
      colorize: options.destination === undefined && process.stderr.isTTY,
      ignore: 'pid,hostname',
      translateTime: 'SYS:HH:MM:ss.l',
    })
    return pino({ level, base }, stream)
  }
  return pino({ level, base }, options.destination ?? pino.destination({ fd: 2, sync: true }))
}

let root: Logger | undefined

/** The process's root logger (created with defaults, level from `SERTN_LOG_LEVEL`, on first use). */
export function rootLogger(): Logger {
  root ??= createLogger({
    level: (process.env.SERTN_LOG_LEVEL as LogLevel | undefined) ?? 'info',
    format: (process.env.SERTN_LOG_FORMAT as LogFormat | undefined) ?? 'auto',
  })
  return root
}

/** Replaces the process's root logger (a command does this once it has read its configuration). */
export function setRootLogger(logger: Logger): void {
  root = logger
}

/** A child of the root logger for one component (`watcher`, `relay`, `sender`, …). */
export function componentLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...fields })
}

/**
 * An adapter for the `log: (line: string) => void` parameters of older modules: each line becomes
 * an `info` record of `logger` (a leading `[component]` prefix is dropped: the logger names it).
 */
export function lineLogger(logger: Logger, level: 'info' | 'warn' | 'debug' = 'info'): (line: string) => void {
  return (line) => logger[level](line.replace(/^\[[a-z -]+\]\s*/, ''))
}

const KEY_PREFIX = /^req:\d+:0x[0-9a-fA-F]{40}:\d+/

/**
 * The request key a workflow id is about, or undefined (a batch workflow, another id). A request's
 * workflow id is its key (`req:<chainId>:<gateway>:<requestId>`, core/types.ts), possibly followed
 * by a suffix (`@…`, `:…`) that names a run of it: the key is the id's leading match.
 */
export function requestKeyOfWorkflowId(workflowId: string | undefined): string | undefined {
  if (!workflowId) return undefined
  return KEY_PREFIX.exec(workflowId)?.[0]?.toLowerCase()
}

/** The fields a line about request `key` carries: the key, its chain id and its request id. */
export function requestFields(key: string): { requestKey: string; chainId?: number; requestId?: string } {
  const [, chainId, , requestId] = key.split(':')
  return { requestKey: key, ...(chainId ? { chainId: Number(chainId) } : {}), ...(requestId ? { requestId } : {}) }
}

type TemporalLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR'
const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const

/** The Temporal SDK's logger interface (`Logger` of @temporalio/common), structurally. */
export type TemporalSdkLogger = {
  log(level: TemporalLevel, message: string, meta?: Record<string | symbol, unknown>): void
  trace(message: string, meta?: Record<string | symbol, unknown>): void
  debug(message: string, meta?: Record<string | symbol, unknown>): void
  info(message: string, meta?: Record<string | symbol, unknown>): void
  warn(message: string, meta?: Record<string | symbol, unknown>): void
  error(message: string, meta?: Record<string | symbol, unknown>): void
}

/**
 * A logger for Temporal's Runtime (`Runtime.install({ logger })`) that writes pino records: the SDK's
 * own lines and those of workflows (`log` of @temporalio/workflow) and activities (`log` of
 * @temporalio/activity), with their metadata as fields, the SDK component as `component`
 * (`temporal-workflow`, `temporal-activity`, `temporal-worker`, `temporal-core`) and, for a
 * request's workflow or its activities, the request's key (from the workflow id).
 */
export function temporalLogger(logger: Logger): TemporalSdkLogger {
  const write = (level: TemporalLevel, message: string, meta?: Record<string | symbol, unknown>) => {
    const fields: Record<string, unknown> = {}
    if (meta) {
      for (const [k, v] of Object.entries(meta)) fields[k] = typeof v === 'bigint' ? v.toString() : v
      const component = fields.sdkComponent
      delete fields.sdkComponent
      delete fields.taskToken // an opaque token, long and of no use to a reader
      fields.component = `temporal-${typeof component === 'string' ? component : 'sdk'}`
      const key = requestKeyOfWorkflowId(typeof fields.workflowId === 'string' ? fields.workflowId : undefined)
      if (key) Object.assign(fields, requestFields(key))
    } else {
      fields.component = 'temporal-sdk'
    }
    logger[PINO_LEVEL[level]](fields, message)
  }
  return {
    log: write,
    trace: (m, meta) => write('TRACE', m, meta),
    debug: (m, meta) => write('DEBUG', m, meta),
    info: (m, meta) => write('INFO', m, meta),
    warn: (m, meta) => write('WARN', m, meta),
    error: (m, meta) => write('ERROR', m, meta),
  }
}
