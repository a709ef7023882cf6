import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dequantize } from '../../core/field.ts'
import { loadModelArtifacts, type ModelArtifacts, modelDir } from '../../core/manifest.ts'
import { createEzklWasmProver, type EzklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'
import { createOnnxRuntime, type OnnxRuntime } from '../../plugins/runtimes/onnx/index.ts'
import { sampleInputQ, DEV_ONLY } from '../support/artifacts.ts'

/**
 * The circuit computes the float model: its dequantised outputs stay within twice the build's
 * measured fidelity error (plus one output ulp) of onnxruntime's, on the same dequantised inputs.
 * Witnesses only, no proofs: the witness carries the circuit's outputs.
 */
describe.each(['sertn-mlp-demo', 'sertn-mlp-twin'])('fidelity of %s: circuit vs onnxruntime', (model) => {
  let artifacts: ModelArtifacts
  let prover: EzklWasmProver
  let onnx: OnnxRuntime

  beforeAll(async () => {
    artifacts = await loadModelArtifacts(modelDir(model), DEV_ONLY)
    prover = createEzklWasmProver()
    onnx = createOnnxRuntime()
  })

  afterAll(async () => {
    await Promise.all([prover?.dispose(), onnx?.dispose()])
  })

  function inputs(sample: bigint[]): bigint[][] {
    const max = BigInt(artifacts.manifest.maxAbsInput)
    const n = sample.length
    const fixed = [
      sample,
      sample.map((q) => -q),
      Array<bigint>(n).fill(0n),
      Array<bigint>(n).fill(max),
      Array<bigint>(n).fill(-max),
      sample.map((_, i) => (i % 2 === 0 ? max : -max)),
      sample.map((_, i) => (i % 2 === 0 ? -max : max)),
      sample.map((_, i) => -BigInt(i + 1) * 1000n),
      sample.map((_, i) => (i === 0 ? -max : 1n)),
    ]
    const random = fc.sample(fc.array(fc.bigInt({ min: -max, max }), { minLength: n, maxLength: n }), { numRuns: 8, seed: 42 })
    return [...fixed, ...random]
  }

  it('default: outputs agree within 2 · fidelity.maxAbsError + 2^-outputScale', async () => {
    const { inputScale, outputScale, fidelity } = artifacts.manifest
    const tolerance = fidelity.maxAbsError * 2 + 2 ** -outputScale
    let worst = 0
    for (const q of inputs(await sampleInputQ(artifacts))) {
      const circuit = (await prover.witness(artifacts, q)).output.map((o) => dequantize(o, outputScale))
      const { output: reference } = await onnx.run(
        artifacts,
        q.map((x) => dequantize(x, inputScale)),
      )
      expect(circuit).toHaveLength(reference.length)
      circuit.forEach((c, i) => {
        const err = Math.abs(c - (reference[i] as number))
        worst = Math.max(worst, err)
        expect(err, `input [${q.join(', ')}] output ${i}: circuit ${c}, onnx ${reference[i]}`).toBeLessThanOrEqual(tolerance)
      })
    }
    console.info(`fidelity ${model}: worst |circuit − onnx| = ${worst.toExponential(3)} (tolerance ${tolerance.toExponential(3)})`)
  })
})
