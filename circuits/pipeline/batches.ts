/**
 * Batch circuits: a model built again with a batch dimension N proves N inferences in one proof
 * whose public instances are every row's input, then every row's output (see
 * `ModelManifest.batches`). Each batch circuit keeps the single model's scale and lookup margin
 * (what it computes stays the same) and searches its layout again at its own size (range-check
 * decomposition, columns up to the model's): a decomposition whose lookup table is too big for the
 * single circuit can fit a batch circuit and take fewer rows a row (the demo's 64 rows per proof:
 * one leg of 2^14 takes 30,144 rows, logrows 15, where the model's three legs of 2^6 took 39,936,
 * logrows 16: half the proving work). It lives in `<model>/batch-<N>/` as a model directory of its own. The model's
 * manifest then lists them by manifest hash, so that the model's artifacts hash covers them.
 *
 * `sertn model build --batch auto` picks the sizes itself: the ladder of sizes that fill their
 * logrows ({@link batchLadder}).
 *
 * @example
 * await buildBatchCircuits({ modelDir: 'circuits/sertn-mlp-demo', sources: (n) => ({ onnx, samples }), sizes: [16, 64] })
 * batchLadder({ rows: 624, logrows: 10, maxLogrows: 20, maxRows: 64 }) // [3, 6, 13, 26, 52, 64]
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BatchCircuitRef, ModelManifest } from '../../core/manifest.ts'
import { readModelManifest } from '../../core/manifest.ts'
import { modelBuildCommand } from '../../cli/model.ts'

/** Rows halo2 keeps for blinding at the end of a circuit, with a margin (the build driver's `BLINDING_ROWS`). */
export const BLINDING_ROWS = 16

/**
 * Range-check decompositions [base, legs] a batch circuit's layout search tries beside the model's
 * own. Fewer legs take fewer rows for every value checked, but a base needs a lookup table of that
 * many rows: one leg of 2^14 or 2^16 only fits a circuit of logrows 15 or 17 and up, which a batch
 * circuit often is. A decomposition too narrow for the circuit's values fails the search's check
 * on the samples and is passed over.
 */
export const BATCH_DECOMPS: readonly [number, number][] = [
  [16384, 1],
  [65536, 1],
  [16384, 2],
  [1024, 3],
  [256, 3],
  [64, 3],
]

/** The most rows per proof `--batch auto` goes to by default: the demo's 64-row batch is a 7 KB message, under LayerZero's default 10,000-byte limit. */
export const DEFAULT_MAX_BATCH_ROWS = 64

/**
 * The batch sizes that fill their logrows: for each logrows from the model's own up to
 * `maxLogrows`, the most rows per proof whose circuit fits in it (at least 2), for a model whose
 * circuit takes `rows` rows at `logrows`; the ladder ends with `maxRows` where the next size would
 * pass it (the operator's largest batch, which may fill its logrows less). A batch circuit keeps the model's run
 * arguments, so its rows grow with its rows per proof: the demo's circuits of 1, 16 and 64 rows
 * per proof take 624, 9,984 and 39,936 rows, exactly 624 a row. Each size then proves as many
 * requests as its logrows can hold, and the next one up doubles them at twice the proving work.
 */
export function batchLadder(p: { rows: number; logrows: number; maxLogrows: number; maxRows: number }): number[] {
  if (!(p.rows > 0)) throw new Error(`a circuit has rows: got ${p.rows}`)
  const sizes: number[] = []
  for (let k = p.logrows; k <= p.maxLogrows; k++) {
    const n = Math.min(Math.floor((2 ** k - BLINDING_ROWS) / p.rows), p.maxRows)
    if (n >= 2 && n !== sizes.at(-1)) sizes.push(n)
    if (n === p.maxRows) break
  }
  return sizes
}

/** The decompositions a batch circuit's layout search tries: the model's own, then {@link BATCH_DECOMPS}. */
export function batchDecomps(own: [number, number]): [number, number][] {
  const all: [number, number][] = [own, ...BATCH_DECOMPS.map(([b, l]): [number, number] => [b, l])]
  return all.filter(([b, l], i) => all.findIndex(([b2, l2]) => b2 === b && l2 === l) === i)
}

export type BuildBatchCircuitsParameters = {
  /** The single model's directory (built already). */
  modelDir: string
  /** The batch sizes (each above 1). */
  sizes: readonly number[]
  /** The ONNX graph with batch dimension `size` and its batch samples (EZKL's input format). */
  sources: (size: number) => { onnx: string; samples: string }
  /** Folder of locally generated SRS files (default circuits/srs). */
  srsDir?: string
  /** Print each batch circuit's build report (default). */
  print?: boolean
}

/**
 * Builds each batch circuit into `<modelDir>/batch-<size>/` (the model's scale, its layout searched
 * at its size), then
 * rewrites the model's manifest with the list of them. Returns the list.
 */
export async function buildBatchCircuits(p: BuildBatchCircuitsParameters): Promise<BatchCircuitRef[]> {
  const { manifest } = await readModelManifest(p.modelDir)
  const sizes = [...new Set(p.sizes)].sort((a, b) => a - b)
  if (sizes.some((n) => !Number.isSafeInteger(n) || n < 2)) throw new Error(`batch sizes must be integers above 1: ${sizes.join(', ')}`)
  const r = manifest.runArgs
  const refs: BatchCircuitRef[] = []
  for (const size of sizes) {
    const dir = `batch-${size}`
    const src = p.sources(size)
    const code = await modelBuildCommand({
      onnx: src.onnx,
      samples: src.samples,
      name: `${manifest.name}.${dir}`,
      outDir: join(p.modelDir, dir),
      description: `${manifest.name} with ${size} rows per proof`,
      visibility: { input: manifest.visibility.input, output: manifest.visibility.output },
      inputBound: manifest.inputBound,
      // Its layout may take narrower range checks than the model's: calibrate at every corner of a row's box.
      rowCorners: true,
      // The model's scale (what the circuit computes); the layout searched again at this size.
      tolerance: Math.max(manifest.fidelity.tolerance, manifest.fidelity.maxAbsError),
      search: {
        scales: [r.inputScale],
        decomps: batchDecomps([r.decompBase, r.decompLegs]),
        // Up to the model's columns: each column beyond costs verify gas on every chain.
        columns: Array.from({ length: r.numInnerCols }, (_, i) => i + 1),
        lookupMargins: [r.lookupSafetyMargin],
      },
      ...(p.srsDir !== undefined ? { srsDir: p.srsDir } : {}),
      // The WASM engine is the single model's check; a batch circuit's proving key is too big for it to be worth the wait.
      wasm: false,
      ...(p.print === false ? { print: false } : {}),
    })
    if (code !== 0) throw new Error(`building ${manifest.name}'s batch circuit of ${size} rows failed`)
    const built = await readModelManifest(join(p.modelDir, dir))
    refs.push({ size, dir, manifestSha256: built.sha256, logrows: built.manifest.logrows, vka: { codeHash: built.manifest.vka.codeHash } })
  }
  const next: ModelManifest = { ...manifest, batches: refs }
  await writeFile(join(p.modelDir, 'manifest.json'), `${JSON.stringify(next, null, 2)}\n`)
  return refs
}
