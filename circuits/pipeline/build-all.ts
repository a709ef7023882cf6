/**
 * `npm run circuits:build [-- NAME …]`: regenerates the sources of this repository's models
 * (`circuits/sources/make.py`: ONNX graphs and sample inputs, from fixed seeds) and builds each
 * model listed in `circuits/models.json` through `sertn model build` into `circuits/<name>/`, and
 * the batch circuits its entry lists (`"batches"`) into `circuits/<name>/batch-<N>/`.
 * `--root DIR` works in another copy of `circuits/` (its sources, SRS folder and model folders): the
 * reproducibility check builds a scratch copy and compares.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { startProcess } from '../../core/process.ts'
import type { Visibility } from '../../core/manifest.ts'
import { modelBuildCommand } from '../../cli/model.ts'
import { buildBatchCircuits } from './batches.ts'

const CIRCUITS = resolve(import.meta.dirname, '..')

/** One entry of circuits/models.json. */
export type ModelEntry = {
  name: string
  description: string
  inputBound?: number
  tolerance?: number
  input?: Visibility
  output?: Visibility
  /** Batch sizes to build beside the model (see circuits/pipeline/batches.ts). */
  batches?: number[]
}

export function modelEntries(): ModelEntry[] {
  return (JSON.parse(readFileSync(join(CIRCUITS, 'models.json'), 'utf8')) as { models: ModelEntry[] }).models
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { root: { type: 'string' }, 'no-wasm': { type: 'boolean', default: false } },
    allowPositionals: true,
  })
  const root = resolve(values.root ?? CIRCUITS)
  const all = modelEntries()
  const unknown = positionals.filter((n) => !all.some((m) => m.name === n))
  if (unknown.length) throw new Error(`not in circuits/models.json: ${unknown.join(', ')}`)
  const chosen = positionals.length ? all.filter((m) => positionals.includes(m.name)) : all
  const python = await ensureNativeEzkl({ echo: true })
  const make = startProcess({
    name: 'make',
    command: python,
    args: [join(root, 'sources', 'make.py'), ...chosen.map((m) => m.name)],
    echo: true,
  })
  if ((await make.exited) !== 0) throw new Error('circuits/sources/make.py failed')
  for (const m of chosen) {
    const src = join(root, 'sources', m.name)
    await modelBuildCommand({
      onnx: join(src, 'network.onnx'),
      samples: join(src, 'input.json'),
      name: m.name,
      outDir: join(root, m.name),
      srsDir: join(root, 'srs'),
      description: m.description,
      wasm: !values['no-wasm'],
      visibility: { ...(m.input ? { input: m.input } : {}), ...(m.output ? { output: m.output } : {}) },
      ...(m.inputBound !== undefined ? { inputBound: m.inputBound } : {}),
      ...(m.tolerance !== undefined ? { tolerance: m.tolerance } : {}),
    })
    if (m.batches?.length)
      await buildBatchCircuits({
        modelDir: join(root, m.name),
        sizes: m.batches,
        sources: (n) => ({ onnx: join(src, `batch-${n}`, 'network.onnx'), samples: join(src, `batch-${n}`, 'input.json') }),
        srsDir: join(root, 'srs'),
      })
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  },
)
