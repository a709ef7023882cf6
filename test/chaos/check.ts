/**
 * Checks a chaos run's chains from its record: `tsx test/chaos/check.ts <record.json> [--proofs N]`.
 * Prints a summary, then the report as one JSON line (bigints as strings); exits 1 on any
 * violation, 2 when the check itself could not run.
 */
import { parseArgs } from 'node:util'
import { SertnError } from '../../core/errors.ts'
import { checkRun, type ChaosCheckReport } from './checker.ts'
import { loadChaosRecord, stringifyWithBigints } from './record-io.ts'

/** The report in words: counts, what was checked, and the first violations. */
export function summarize(r: ChaosCheckReport, shown = 10): string {
  const lines = [
    `requests ${r.requests}: ${r.fulfilled} fulfilled, ${r.failed} failed, ${r.refunded} refunded, ${r.pending} pending, ${r.lost} lost, ${r.doubled} doubled`,
    `invalid refused as expected: ${r.invalidRefused}`,
    `outputs re-run on onnxruntime: ${r.outputsChecked}; proofs verified: ${r.proofsChecked} of ${r.proofsToCheck}; settlements traced: ${r.settlementsTraced}`,
    ...r.chains.map(
      (c) =>
        `  ${c.name}: ${c.requests} requests (${c.fulfilled}/${c.failed}/${c.refunded} fulfilled/failed/refunded, ${c.pending} pending, ${c.lost} lost); gateway holds ${c.balance} wei, owes ${c.owes}`,
    ),
    ...(r.notChecked.length > 0 ? ['not checked:', ...r.notChecked.map((n) => `  - ${n}`)] : []),
    `violations: ${r.violations}${r.violations > 0 ? ` (first: [${r.firstViolation!.rule}] ${r.firstViolation!.subject}: ${r.firstViolation!.message})` : ''}`,
    ...r.all.slice(0, shown).map((x) => `  [${x.rule}] ${x.subject}: ${x.message}`),
    ...(r.violations > shown ? [`  … and ${r.violations - shown} more`] : []),
    `checked in ${(r.ms / 1000).toFixed(1)} s`,
  ]
  return lines.join('\n')
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { proofs: { type: 'string' }, 'skip-outputs': { type: 'boolean' }, concurrency: { type: 'string' } },
  })
  const [file] = positionals
  if (!file) {
    console.error('usage: tsx test/chaos/check.ts <record.json> [--proofs all|N|0.x] [--skip-outputs] [--concurrency N]')
    return 2
  }
  const proofs = values.proofs === undefined || values.proofs === 'all' ? 'all' : Number(values.proofs)
  if (proofs !== 'all' && !(proofs >= 0)) {
    console.error(`--proofs must be all, a count or a fraction, not ${values.proofs}`)
    return 2
  }
  const record = await loadChaosRecord(file)
  const report = await checkRun(record, {
    proofs,
    skipOutputs: values['skip-outputs'] ?? false,
    ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
    log: (l) => console.error(l),
  })
  console.log(summarize(report))
  console.log(stringifyWithBigints(report))
  return report.violations > 0 ? 1 : 0
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof SertnError ? err.message : err)
      process.exit(2)
    },
  )
}
