/**
 * ezkl-wasm prover plugin: @ezkljs/engine 21 in a pool of worker threads.
 *
 * @example
 * const artifacts = await loadModelArtifacts(modelDir('sertn-mlp-demo'))
 * const prover = createEzklWasmProver()
 * const { output, proof, instances } = await prover.proveInference(artifacts, inputQ)
 * await prover.dispose()
 */
export { InputOutOfRangeError, InputShapeError, ProverDisposedError, ProverError } from './errors.ts'
export type { PoolStats } from './pool.ts'
export {
  createEzklWasmProver,
  type EzklWasmProver,
  type EzklWasmProverOptions,
  type InferenceProof,
  type ProveResult,
  type VerifyResult,
  type WitnessResult,
} from './prover.ts'
