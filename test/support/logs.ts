/** Capturing the process's structured log records in a test. */
import { Writable } from 'node:stream'
import { createLogger, rootLogger, setRootLogger } from '../../core/log.ts'

/**
 * Replaces the root logger with one that keeps every record (JSON-parsed, level info and up) in
 * `lines`; `restore()` puts the previous logger back.
 */
export function captureLogs(): { lines: Record<string, unknown>[]; restore: () => void } {
  const lines: Record<string, unknown>[] = []
  const previous = rootLogger()
  setRootLogger(
    createLogger({
      format: 'json',
      level: 'info',
      destination: new Writable({
        write(chunk, _enc, done) {
          for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>)
          done()
        },
      }),
    }),
  )
  return { lines, restore: () => setRootLogger(previous) }
}
