/**
 * arlocal keeps its index in SQLite through the npm package `sqlite3`, whose native binding is made
 * by an install script (download a prebuilt binary, else compile). Install scripts are off here
 * (.npmrc) and nothing outside the package registries can be downloaded, so after a fresh
 * `npm install` the binding may be missing. It can be compiled offline: the `sqlite3` tarball ships
 * the SQLite sources, `node-gyp` (an optional dependency of sqlite3) is installed beside it, and a
 * distribution's Node.js has its headers in `<prefix>/include/node` (`--nodedir=<prefix>`, so that
 * node-gyp does not try to download them). This takes about 75 s on 2 cores, once.
 *
 * By hand: `cd node_modules/sqlite3 && node ../node-gyp/bin/node-gyp.js rebuild --nodedir=/usr`
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { PluginError } from '../../../core/errors.ts'
import { startProcess } from '../../../core/process.ts'

const PLUGIN = 'arlocal'
const require = createRequire(import.meta.url)

/** The directory of the `sqlite3` package that arlocal loads. */
export function sqlite3Dir(): string {
  const fromArlocal = createRequire(require.resolve('arlocal'))
  return dirname(fromArlocal.resolve('sqlite3/package.json'))
}

/** Whether `sqlite3` (as arlocal resolves it) loads in a fresh Node.js process. */
export async function sqlite3Loads(): Promise<boolean> {
  const dir = sqlite3Dir()
  try {
    await promisify(execFile)(process.execPath, ['-e', `require(${JSON.stringify(dir)})`], { timeout: 30_000 })
    return true
  } catch {
    return false
  }
}

export type EnsureSqlite3Options = {
  /** Longest wait for the build, or for another process's build (default 10 min). */
  timeoutMs?: number
  /** Print the compiler's output. */
  echo?: boolean
}

/**
 * Makes sure `sqlite3`'s native binding loads, compiling it from the sources in its package when
 * it does not. Concurrent callers (test files in parallel) wait for one build, through a lock
 * directory in the package.
 *
 * @returns whether this call compiled the binding, and how long it took
 * @throws {PluginError} (not retryable) when the build fails, with the compiler's last lines
 */
export async function ensureSqlite3Binding(options: EnsureSqlite3Options = {}): Promise<{ built: boolean; ms: number }> {
  const t0 = performance.now()
  const timeoutMs = options.timeoutMs ?? 600_000
  if (await sqlite3Loads()) return { built: false, ms: performance.now() - t0 }
  const dir = sqlite3Dir()
  const lock = join(dir, '.sertn-build-lock')
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      mkdirSync(lock)
      writeFileSync(join(lock, 'pid'), String(process.pid))
      break
    } catch {
      // another process builds it; take over a lock whose holder is gone
      if (!holderAlive(lock)) rmSync(lock, { recursive: true, force: true })
      else if (Date.now() > deadline) throw new PluginError(PLUGIN, `timed out after ${timeoutMs} ms waiting for another build of sqlite3`)
      else await new Promise((r) => setTimeout(r, 1000))
    }
  }
  try {
    if (await sqlite3Loads()) return { built: false, ms: performance.now() - t0 }
    await build(dir, Math.max(0, deadline - Date.now()), options.echo ?? false)
    if (!(await sqlite3Loads())) throw new PluginError(PLUGIN, 'sqlite3 was compiled but still does not load')
    return { built: true, ms: performance.now() - t0 }
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

async function build(dir: string, timeoutMs: number, echo: boolean): Promise<void> {
  let nodeGyp: string
  try {
    nodeGyp = createRequire(join(dir, 'package.json')).resolve('node-gyp/bin/node-gyp.js')
  } catch {
    throw new PluginError(PLUGIN, "sqlite3's native binding is missing and node-gyp is not installed to compile it", {
      details: 'node-gyp is an optional dependency of sqlite3; run `npm install` with optional dependencies',
    })
  }
  const prefix = dirname(dirname(process.execPath))
  const args = [nodeGyp, 'rebuild', `-j`, String(Math.max(1, cpus().length))]
  if (existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`)
  if (echo) console.log(`[sqlite3] compiling the native binding (install scripts are off): node ${args.join(' ')}`)
  const proc = startProcess({ name: 'sqlite3-build', command: process.execPath, args, cwd: dir, echo })
  const timer = setTimeout(() => void proc.stop(), timeoutMs)
  const code = await proc.exited
  clearTimeout(timer)
  if (code !== 0)
    throw new PluginError(PLUGIN, `compiling sqlite3's native binding failed (exit ${String(code)})`, {
      details: `in ${dir}: node ${args.join(' ')}\n${proc.output()}`,
    })
}

/** Whether the process holding `lock` still runs (a lock without a pid for 10 s counts as abandoned). */
function holderAlive(lock: string): boolean {
  let pid: number
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'))
  } catch {
    try {
      return Date.now() - statSync(lock).mtimeMs < 10_000
    } catch {
      return false // the lock is gone
    }
  }
  if (!Number.isInteger(pid) || pid <= 0) return true // being written
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}
