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
