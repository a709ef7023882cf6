/** Bench, part 3: both prover plugins on the same input in the same run (median prove time). */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { quantize } from '../../core/field.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import type { ProverPlugin } from '../../core/plugins.ts'
import { ensureNativeEzkl, ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { ezklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'
import { MODEL } from './engine.ts'
import { log, median } from './stats.ts'

export type ProverBench = Record<'ezkl-wasm' | 'ezkl-native', { proveMs: number }>

export async function benchProvers(runs: number): Promise<ProverBench> {
  await ensureNativeEzkl()
  const artifacts = await loadModelArtifacts(modelDir(MODEL), { allowInsecureSrs: true /* local bench */ })
  const sample = JSON.parse(readFileSync(join(modelDir(MODEL), 'input.json'), 'utf8')) as { input_data: number[][] }
  const input = sample.input_data[0]!.map((x) => quantize(x, artifacts.manifest.inputScale))
  const out = {} as ProverBench
  for (const [name, make] of [
    ['ezkl-wasm', () => ezklWasmProver()],
    ['ezkl-native', () => ezklNativeProver()],
  ] as const) {
    const prover: ProverPlugin = make()
    try {
      const { witness } = await prover.witness(artifacts, input)
      await prover.prove(artifacts, witness) // warm-up: worker or process start, artifact load
      const ms: number[] = []
      for (let i = 0; i < runs; i++) ms.push((await prover.prove(artifacts, witness)).ms)
      out[name] = { proveMs: Math.round(median(ms)) }
      log(`${name}: prove ${ms.map(Math.round).join(', ')} ms (median ${out[name].proveMs})`)
    } finally {
      await prover.dispose()
    }
  }
  return out
}
