/**
 * `npm run setup`: installs what npm cannot, idempotently, into the project's tools folder (.tools):
 * the Temporal CLI (built with Go, once), the Python venv with the pinned native ezkl, the
 * native sqlite3 binding arlocal needs (npm install scripts are off), and Chromium for the request
 * explorer's browser test. Each step is skipped when it is already done; each failure names what is
 * missing and how to get it. A missing Chromium fails nothing: only that test needs it.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { ensureNativeEzkl } from '../plugins/provers/ezkl-native/index.ts'
import { ensureSqlite3Binding } from '../plugins/storage/arweave/index.ts'
import { ensureTemporalCli } from '../workflows/worker/temporal-cli.ts'

async function step<T>(name: string, run: () => Promise<T>, describe: (r: T) => string): Promise<void> {
  const t0 = performance.now()
  const r = await run()
  console.error(`[setup] ${name}: ${describe(r)} (${Math.round(performance.now() - t0)} ms)`)
}

/** Where the explorer's browser test looks for Chromium: CHROMIUM_PATH, else Debian's package's. */
export const chromiumPath = (): string => process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Runs `command` with its output on this process's standard error (apt's progress); resolves to its exit code. */
function run(command: string, args: string[]): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn(command, args, {
      stdio: ['ignore', process.stderr, process.stderr],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
    child.on('error', () => done(null))
    child.on('exit', (code) => done(code))
  })
}

/**
 * Chromium for the explorer's browser test: found at {@link chromiumPath}, or installed from
 * Debian's `chromium` package when this runs as root on a machine with apt-get; otherwise one line
 * says what is missing and how to get it (and setup goes on).
 */
async function ensureChromium(): Promise<string> {
  const path = chromiumPath()
  if (existsSync(path)) return path
  const apt = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => existsSync(p))
  const how = `install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary`
  if (process.env.CHROMIUM_PATH)
    return `missing: CHROMIUM_PATH is ${path}, which does not exist (only the explorer's browser test needs Chromium): ${how}`
  if (!apt || process.getuid?.() !== 0)
    return `missing at ${path} (only the explorer's browser test needs it; not root with apt-get to install it here): ${how}`
  console.error(`[setup] Chromium: not at ${path}; installing Debian's chromium package with apt-get…`)
  const ok = (await run(apt, ['update'])) === 0 && (await run(apt, ['install', '-y', '--no-install-recommends', 'chromium'])) === 0
  if (ok && existsSync(path)) return `${path} (installed)`
  return `missing: apt-get could not install chromium (see its output above; only the explorer's browser test needs it): ${how}`
}

async function main(): Promise<void> {
  await step(
    'Temporal CLI',
    () => ensureTemporalCli(),
    (path) => path,
  )
  await step(
    'native ezkl (Python venv)',
    () => ensureNativeEzkl(),
    (python) => python,
  )
  await step(
    'sqlite3 binding for arlocal',
    () => ensureSqlite3Binding(),
    (r) => (r.built ? 'built' : 'present'),
  )
  await step("Chromium (the explorer's browser test)", ensureChromium, (r) => r)
}

main().catch((err: unknown) => {
  console.error(`[setup] error: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
