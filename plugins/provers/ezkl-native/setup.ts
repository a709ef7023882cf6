/**
 * Where the native ezkl lives: the project-local Python venv that `circuits/setup-python.sh` creates
 * (`.tools/venv`, ezkl==21.0.0 pinned in circuits/requirements.txt), and a helper that creates it.
 */
import { createHash } from 'node:crypto'
import { access, constants, mkdir, readFile, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../../../core/errors.ts'
import { startProcess } from '../../../core/process.ts'

/** The repository root: this file lives in `<root>/plugins/provers/ezkl-native/`. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
/** The venv's interpreter, the default `python` of the plugin. */
export const DEFAULT_PYTHON = join(REPO_ROOT, '.tools', 'venv', 'bin', 'python')
/** The script that creates the venv (idempotent). */
export const SETUP_SCRIPT = join(REPO_ROOT, 'circuits', 'setup-python.sh')
/** The ezkl version the plugin speaks: the same as @ezkljs/engine and the committed circuits. */
export const EZKL_VERSION = '21.0.0'
/** What to tell a user whose native ezkl is missing or wrong. */
export const SETUP_HINT = 'run `bash circuits/setup-python.sh` (it creates .tools/venv with the pinned ezkl 21.0.0)'

const REQUIREMENTS = join(REPO_ROOT, 'circuits', 'requirements.txt')
const VENV = join(REPO_ROOT, '.tools', 'venv')
const STAMP = join(VENV, '.sertn-requirements.sha256')
const LOCK = join(REPO_ROOT, '.tools', '.setup-python.lock')
/** A lock older than this was left by a setup that died. */
const STALE_LOCK_MS = 15 * 60_000

export type EnsureNativeEzklOptions = {
  /** Print the script's output (default false). */
  echo?: boolean
  /** Give up after this long, default 10 minutes (pip downloads). */
  timeoutMs?: number
}

/**
 * Makes sure the default venv exists with the pinned requirements, running
 * `bash circuits/setup-python.sh` when it does not. Idempotent and safe to call from several
 * processes at once (test files run in parallel): a lock directory serialises the script, and a
 * venv that is already up to date costs one file read. Resolves to the venv's python.
 *
 * @throws {ConfigError} when the script fails (no python3, no network for pip, …)
 */
export async function ensureNativeEzkl(options: EnsureNativeEzklOptions = {}): Promise<string> {
  if (await upToDate()) return DEFAULT_PYTHON
  const deadline = Date.now() + (options.timeoutMs ?? 600_000)
  await mkdir(dirname(LOCK), { recursive: true })
  await acquireLock(deadline)
  try {
    if (await upToDate()) return DEFAULT_PYTHON
    const proc = startProcess({ name: 'setup-python', command: 'bash', args: [SETUP_SCRIPT], cwd: REPO_ROOT, echo: options.echo ?? false })
    const timer = setTimeout(() => void proc.stop(), Math.max(0, deadline - Date.now()))
    const code = await proc.exited
    clearTimeout(timer)
    if (code !== 0)
      throw new ConfigError('cannot set up the native ezkl venv: `bash circuits/setup-python.sh` failed', {
        details: `exit code ${code}\n${proc.output()}`,
      })
    return DEFAULT_PYTHON
  } finally {
    await rm(LOCK, { recursive: true, force: true })
  }
}

/** Whether `python` exists and is executable. */
export async function isExecutable(python: string): Promise<boolean> {
  try {
    await access(python, constants.X_OK)
    return true
  } catch {
    return false
  }
}

async function upToDate(): Promise<boolean> {
  try {
    const [want, have] = await Promise.all([readFile(REQUIREMENTS), readFile(STAMP, 'utf8')])
    return have.trim() === createHash('sha256').update(want).digest('hex') && (await isExecutable(DEFAULT_PYTHON))
  } catch {
    return false
  }
}

async function acquireLock(deadline: number): Promise<void> {
  for (;;) {
    try {
      await mkdir(LOCK)
      return
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    const since = await stat(LOCK).then(
      (s) => s.mtimeMs,
      () => Date.now(),
    )
    if (Date.now() - since > STALE_LOCK_MS) {
      await rm(LOCK, { recursive: true, force: true })
      continue
    }
    if (Date.now() > deadline) throw new ConfigError(`timed out waiting for another setup of the native ezkl venv (lock ${LOCK})`)
    await new Promise((r) => setTimeout(r, 500))
  }
}
