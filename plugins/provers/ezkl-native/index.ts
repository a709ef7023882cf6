/**
 * ezkl-native prover plugin: the native ezkl 21.0.0 (Python package, multi-threaded Rust prover) in
 * a pool of long-lived Python processes (`server.py`), proof-compatible with ezkl-wasm.
 *
 * @example
 * await ensureNativeEzkl() // runs `bash circuits/setup-python.sh` unless .tools/venv is up to date
 * const prover = ezklNativeProver({ threads: 8, poolSize: 1 })
 * const { output, proof, instances } = await prover.proveInference(artifacts, inputQ, { onProgress })
 * await prover.dispose()
 */
export { InputOutOfRangeError, InputShapeError, ProverDisposedError, ProverError } from '../ezkl-common/errors.ts'
export { PLUGIN_NAME } from './connection.ts'
export type { ProcessPoolStats } from './pool.ts'
export {
  createEzklNativeProver,
  DEFAULT_JOB_TIMEOUT_MS,
  type EzklNativeProver,
  type EzklNativeProverOptions,
  ezklNativeProver,
} from './prover.ts'
export { DEFAULT_PYTHON, EZKL_VERSION, ensureNativeEzkl, type EnsureNativeEzklOptions, SETUP_HINT, SETUP_SCRIPT } from './setup.ts'
