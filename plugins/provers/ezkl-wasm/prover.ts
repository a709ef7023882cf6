/**
 * A prover running ezkl 21's WebAssembly engine (@ezkljs/engine) in worker threads: witness
 * generation, KZG proving and verification for a model built by `circuits/build.py`.
 */
import { defineProverPlugin, type ProverPlugin } from '../../../core/plugins.ts'
import { createProvingKeyStore, type ProvingKeyStore } from '../ezkl-common/keys.ts'
import { createEzklProver } from '../ezkl-common/prover.ts'
import { PLUGIN_NAME } from './errors.ts'
import { type PoolStats, WorkerPool, type WorkerPoolOptions } from './pool.ts'

export type {
  InferenceProof,
  ProveOptions,
  ProveProgress,
  ProveResult,
  VerifyResult,
  WitnessResult,
} from '../../../core/plugins.ts'

/**
 * Options of the ezkl-wasm prover:
 * - `poolSize` (or `size`): worker threads (default 1); each runs one job at a time, single-threaded
 * - `cacheSize`: models each worker keeps loaded (default 4)
 * - `jobTimeoutMs`: a job running longer fails as retryable and its worker is replaced (default: no limit)
 * - `keys`: where proving keys are derived into and cached (default: `.tools/keys`)
 */
export type EzklWasmProverOptions = WorkerPoolOptions & {
  /** Worker threads, as the config's `prover.poolSize` and ezkl-native's option; wins over `size`. */
  readonly poolSize?: number
  /** The proving-key cache (default: a store in `.tools/keys`). */
  readonly keys?: ProvingKeyStore
}

/**
 * The ezkl-wasm ProverPlugin, plus the counters of its worker pool.
 *
 * - witness: @throws {InputShapeError} / {InputOutOfRangeError} (core/input.ts) before the engine
 *   runs; {ProverError} when the engine fails
 * - prove: @throws {ProverError} when the engine fails
 * - verify: an invalid or malformed proof yields ok: false; only a failure of a worker throws
 * - proveInference: all three, checking that the instances are exactly the input and the output
 * - after dispose(), every call rejects with ProverDisposedError (a PluginError)
 */
export interface EzklWasmProver extends ProverPlugin {
  /** Counters of the underlying worker pool. */
  stats(): PoolStats
}

/** Creates a prover with its own pool of worker threads (one by default), started on first use. */
export function createEzklWasmProver(options: EzklWasmProverOptions = {}): EzklWasmProver {
  const { poolSize, keys, ...rest } = options
  const pool = new WorkerPool(poolSize === undefined ? rest : { ...rest, size: poolSize })
  const plugin = createEzklProver(
    { name: PLUGIN_NAME, flags: { gpu: false, multiThreaded: false, outOfProcess: false } },
    pool,
    keys ?? createProvingKeyStore(),
  )
  return Object.assign(plugin, { stats: () => pool.stats() })
}

/**
 * The ezkl-wasm prover plugin factory: @ezkljs/engine 21.0.0 (single-threaded WebAssembly) in a pool
 * of worker threads. Flags: { gpu: false, multiThreaded: false, outOfProcess: false }.
 *
 * @example
 * const prover = ezklWasmProver({ poolSize: 2 })
 */
// biome-ignore lint/suspicious/noConfusingVoidType: `void` lets the factory be called with no options at all
export const ezklWasmProver = defineProverPlugin<EzklWasmProverOptions | void>((options) => createEzklWasmProver(options ?? {}))
