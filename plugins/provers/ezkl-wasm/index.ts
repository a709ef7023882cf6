/**
 * ezkl-wasm prover plugin: @ezkljs/engine 21 in a pool of worker threads.
 *
 * @example
 * const artifacts = await loadModelArtifacts(modelDir('sertn-mlp-demo'))
 * const prover = ezklWasmProver()
 * const { output, proof, instances } = await prover.proveInference(artifacts, inputQ, { onProgress })
 * await prover.dispose()
 */
export { InputOutOfRangeError, InputShapeError, PLUGIN_NAME, ProverDisposedError, ProverError } from './errors.ts'
export type { PoolStats } from './pool.ts'
export {
  createEzklWasmProver,
  type EzklWasmProver,
  type EzklWasmProverOptions,
  ezklWasmProver,
  type InferenceProof,
  type ProveOptions,
  type ProveProgress,
  type ProveResult,
  type VerifyResult,
  type WitnessResult,
} from './prover.ts'
