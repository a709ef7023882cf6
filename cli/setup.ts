/**
 * `npm run setup`: installs what npm cannot, idempotently, into the project's tools folder (.tools):
 * the Temporal CLI (built with Go, once), the Python venv with the pinned native ezkl, and the
 * native sqlite3 binding arlocal needs (npm install scripts are off). Each step is skipped when it
 * is already done; each failure names what is missing and how to get it.
 */
import { ensureNativeEzkl } from '../plugins/provers/ezkl-native/index.ts'
import { ensureSqlite3Binding } from '../plugins/storage/arweave/index.ts'
import { ensureTemporalCli } from '../workflows/worker/temporal-cli.ts'

async function step<T>(name: string, run: () => Promise<T>, describe: (r: T) => string): Promise<void> {
  const t0 = performance.now()
  const r = await run()
  console.error(`[setup] ${name}: ${describe(r)} (${Math.round(performance.now() - t0)} ms)`)
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
}

main().catch((err: unknown) => {
  console.error(`[setup] error: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
