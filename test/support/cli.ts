/** Running the `sertn` command line as a child process in tests (its own process group). */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startProcess } from '../../core/process.ts'

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))

export type CliRun = { code: number | null; out: string }

/**
 * Runs `sertn …` to its end and returns its exit code and output. Its pid is in `running` while it
 * runs (the test's teardown kills what is left); it is stopped after `timeoutMs`.
 */
export async function runSertn(
  args: readonly string[],
  o: { env?: Record<string, string>; running: Set<number>; timeoutMs: number },
): Promise<CliRun> {
  const lines: string[] = []
  const proc = startProcess({
    name: 'sertn',
    command: process.execPath,
    args: ['--import', 'tsx', 'cli/sertn.ts', ...args],
    cwd: REPO,
    env: { ...process.env, ...o.env },
    onLine: (line) => lines.push(line),
  })
  o.running.add(proc.pid)
  const timer = setTimeout(() => void proc.stop(), o.timeoutMs)
  try {
    const code = await proc.closed
    return { code, out: lines.join('\n') }
  } finally {
    clearTimeout(timer)
    o.running.delete(proc.pid)
  }
}
