/**
 * `npm run bench -- models <dir>`: builds every `<dir>/<name>/network.onnx` with its
 * `<dir>/<name>/input.json` through `sertn model build` (into a scratch folder) and measures it:
 * logrows, proving-key size, prove time natively (the ezkl-native plugin's long-lived process,
 * median of BENCH_RUNS) and with the WASM engine (the build's measurement), proof size, verify gas
 * on anvil, and the output error against the float model; or the reason it cannot be built.
 * Prints one Markdown table, then one JSON line (the last line on stdout):
 *
 * {"models":{"<name>":{"logrows","rows","columns","pkBytes","proveMs":{"native","wasm"},"proofBytes",
 *   "verifyGas","maxAbsError","input","paperMs","speedup"} | {"error"}}}
 *
 * A model whose input has more elements than a registry takes in public is built with its input
 * hashed, as a creator would register it (BENCH_INPUT_VISIBILITY=public|hashed forces one). BENCH_TOLERANCE (default 0.01) is the output error the
 * sizing search keeps within; BENCH_COLUMNS (default 1,2,4) the inner columns it may use (more
 * columns prove faster on more rows, at more verify gas); BENCH_RUNS (default 5).
 *
 * `paperMs`: the ZKLayer paper's EZKL proving times (8 cores with CUDA) for its four model classes,
 * matched by folder name; `speedup` = paperMs / native prove time here.
 */
import { existsSync, readdirSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { buildModel, MAX_PUBLIC_ELEMENTS, ModelBuildError, inspectModel, type BuildReport } from '../../circuits/pipeline/build.ts'
import { quantize } from '../../core/field.ts'
import { shapeSize } from '../../core/input.ts'
import { loadModelArtifacts } from '../../core/manifest.ts'
import { ensureNativeEzkl, ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { log, median } from './stats.ts'

/** The paper's EZKL proving times for its four classes (ms, 8 cores with CUDA), by folder name. */
export const PAPER_PROVE_MS: Record<string, { ms: number; what: string }> = {
  linear_regression: { ms: 251, what: 'linear regression' },
  random_forest: { ms: 4000, what: 'random forest' },
  linear_svc: { ms: 120.6, what: 'SVM classification' },
  xgboost_reg: { ms: 113, what: 'tree-ensemble regression' },
}

export type ModelBenchRow =
  | {
      logrows: number
      rows: number
      columns: number
      pkBytes: number
      proveMs: { native: number; wasm: number | null }
      proofBytes: number
      verifyGas: number
      maxAbsError: number
      input: 'public' | 'hashed'
      paperMs?: number
      speedup?: number
    }
  | { error: string }

export async function benchModels(dir: string, runs: number): Promise<Record<string, ModelBenchRow>> {
  const root = resolve(dir)
  const names = readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, e.name, 'network.onnx')) && existsSync(join(root, e.name, 'input.json')))
    .map((e) => e.name)
    .sort()
  if (names.length === 0) throw new Error(`no <name>/network.onnx with <name>/input.json under ${root}`)
  await ensureNativeEzkl()
  const tolerance = Number(process.env.BENCH_TOLERANCE ?? 0.01)
  const columns = (process.env.BENCH_COLUMNS ?? '1,2,4').split(',').map(Number)
  const work = await mkdtemp(join(tmpdir(), 'sertn-bench-models-'))
  const rows: Record<string, ModelBenchRow> = {}
  const prover = ezklNativeProver()
  try {
    for (const name of names) {
      const onnx = join(root, name, 'network.onnx')
      const samples = join(root, name, 'input.json')
      log(`models: ${name} …`)
      try {
        const inspected = await inspectModel(onnx)
        const inputElements = inspected.inputs.reduce((n, t) => n + shapeSize(t.shape), 0)
        const forced = process.env.BENCH_INPUT_VISIBILITY
        const input = forced === 'public' || forced === 'hashed' ? forced : inputElements > MAX_PUBLIC_ELEMENTS ? 'hashed' : 'public'
        const t0 = performance.now()
        const report: BuildReport = await buildModel({
          onnx,
          samples,
          name: name.replace(/[^A-Za-z0-9._-]/g, '-'),
          outDir: join(work, name),
          srsDir: join(work, 'srs'),
          tolerance,
          visibility: { input },
          search: { columns },
          onEvent: (e) => {
            if (e.type === 'step-done') log(`models: ${name}: ${e.step} ${Math.round(e.ms)} ms  ${e.detail}`)
          },
        })
        // Native proving as a node does it: a long-lived process, the proving key derived once.
        const model = await loadModelArtifacts(report.dir, { allowInsecureSrs: true })
        const sample = JSON.parse(await readFile(join(report.dir, 'input.json'), 'utf8')) as { input_data: number[][] }
        const inputQ = sample.input_data.flat().map((x) => quantize(x, model.manifest.inputScale))
        const { witness } = await prover.witness(model, inputQ)
        await prover.prove(model, witness) // warm-up: key derivation, artifact load
        const ms: number[] = []
        for (let i = 0; i < runs; i++) ms.push((await prover.prove(model, witness)).ms)
        const native = Math.round(median(ms))
        const paper = PAPER_PROVE_MS[name]
        rows[name] = {
          logrows: report.layout.logrows,
          rows: report.layout.rows,
          columns: report.layout.columns,
          pkBytes: report.sizes.pk,
          proveMs: { native, wasm: report.wasm ? Math.round(report.wasm.proveMs) : null },
          proofBytes: report.sizes.proof,
          verifyGas: report.verifyGas,
          maxAbsError: Number(report.fidelity.maxAbsError.toPrecision(3)),
          input,
          ...(paper ? { paperMs: paper.ms, speedup: Number((paper.ms / native).toPrecision(2)) } : {}),
        }
        log(
          `models: ${name}: built in ${Math.round(performance.now() - t0)} ms; native prove ${ms.map(Math.round).join(', ')} ms (median ${native})`,
        )
      } catch (err) {
        const reason = err instanceof ModelBuildError ? err.shortMessage : err instanceof Error ? err.message.split('\n')[0]! : String(err)
        rows[name] = { error: reason }
        log(`models: ${name}: cannot be built: ${reason}`)
      }
    }
  } finally {
    await prover.dispose()
    await rm(work, { recursive: true, force: true })
  }
  return rows
}

/** The table a person reads. */
export function modelsTable(rows: Record<string, ModelBenchRow>): string {
  const kib = (b: number) => (b < 1 << 20 ? `${(b / 1024).toFixed(0)} KiB` : `${(b / 2 ** 20).toFixed(1)} MiB`)
  const lines = [
    '| model | logrows | pk | prove native | prove WASM | proof | verify gas | output error | input | paper (8 cores + CUDA) | speed-up |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ]
  for (const [name, r] of Object.entries(rows)) {
    if ('error' in r) {
      lines.push(`| ${name} | cannot be built: ${r.error.replace(/\|/g, '\\|')} | | | | | | | | | |`)
      continue
    }
    lines.push(
      `| ${name} | ${r.logrows} (${r.rows} rows × ${r.columns}) | ${kib(r.pkBytes)} | ${r.proveMs.native} ms | ${r.proveMs.wasm ?? '–'} ms | ${r.proofBytes} B | ${r.verifyGas.toLocaleString('en-US')} | ${r.maxAbsError} | ${r.input} | ${r.paperMs !== undefined ? `${r.paperMs} ms` : '–'} | ${r.speedup !== undefined ? `${r.speedup}×` : '–'} |`,
    )
  }
  return lines.join('\n')
}
