/**
 * A prover running the native ezkl 21.0.0 (the Python package built from ezkl's Rust crate, which
 * proves on all cores) in long-lived Python processes. Its files are those of the WASM engine: the
 * same witness and proof JSON, the same raw proof bytes for the on-chain verifier, the same
 * instances for the same input, so a proof made here verifies with ezkl-wasm and vice versa.
 */
import { ConfigError } from '../../../core/errors.ts'
import { defineProverPlugin, type ProverPlugin } from '../../../core/plugins.ts'
import { createProvingKeyStore, type ProvingKeyStore } from '../ezkl-common/keys.ts'
import { createEzklProver } from '../ezkl-common/prover.ts'
import { PLUGIN_NAME } from './connection.ts'
import { ProcessPool, type ProcessPoolStats } from './pool.ts'
import { DEFAULT_PYTHON } from './setup.ts'

export interface EzklNativeProverOptions {
  /** The Python interpreter with ezkl 21.0.0 installed (default `.tools/venv/bin/python` of this repository). */
  python?: string
  /** Threads per process for the prover (RAYON_NUM_THREADS); default: all cores. */
  threads?: number
  /** Python processes, each running one job at a time (default 1). */
  poolSize?: number
  /** A job (process start and model load included) running longer fails as retryable and its process is replaced (default 10 minutes). */
  jobTimeoutMs?: number
  /** Models each process keeps loaded (default 4). */
  cacheSize?: number
  /** How long a process may take to start and say hello (default 60 s). */
  startTimeoutMs?: number
  /**
   * Prove on a GPU: sets ENABLE_ICICLE_GPU=true for the processes and the `gpu` flag. Only for a
   * `python` whose ezkl 21.0.0 was built with the `icicle` feature; the pinned pip package is
   * CPU-only (default false, and ENABLE_ICICLE_GPU is then removed from the environment).
   */
  gpu?: boolean
  /** The proving-key cache (default: a store in `.tools/keys`); keys are derived with ezkl.setup on first use. */
  keys?: ProvingKeyStore
}

/** The ezkl-native ProverPlugin, plus the counters of its process pool. */
export interface EzklNativeProver extends ProverPlugin {
  stats(): ProcessPoolStats
  /** The pids of the running Python processes. */
  pids(): number[]
}

export const DEFAULT_JOB_TIMEOUT_MS = 10 * 60_000

/**
 * Creates a native prover. Nothing starts until the first call; a missing venv then fails that call
 * with a ConfigError telling the user to run `bash circuits/setup-python.sh` (or call
 * `ensureNativeEzkl()` first).
 */
export function createEzklNativeProver(options: EzklNativeProverOptions = {}): EzklNativeProver {
  const { threads } = options
  if (threads !== undefined && (!Number.isSafeInteger(threads) || threads < 1))
    throw new ConfigError(`[${PLUGIN_NAME}] threads must be a positive integer, not ${threads}`)
  const gpu = options.gpu ?? false
  const pool = new ProcessPool({
    python: options.python ?? DEFAULT_PYTHON,
    env: {
      RAYON_NUM_THREADS: threads === undefined ? process.env.RAYON_NUM_THREADS : String(threads),
      ENABLE_ICICLE_GPU: gpu ? 'true' : undefined,
    },
    startTimeoutMs: options.startTimeoutMs ?? 60_000,
    size: options.poolSize ?? 1,
    cacheSize: options.cacheSize ?? 4,
    jobTimeoutMs: options.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS,
  })
  const plugin = createEzklProver(
    { name: PLUGIN_NAME, flags: { gpu, multiThreaded: true, outOfProcess: true } },
    pool,
    options.keys ?? createProvingKeyStore(),
  )
  return Object.assign(plugin, { stats: () => pool.stats(), pids: () => pool.pids() })
}

/**
 * The ezkl-native prover plugin factory: native ezkl 21.0.0 (multi-threaded Rust, through its
 * Python package) in a pool of long-lived processes. Flags: { gpu: options.gpu ?? false,
 * multiThreaded: true, outOfProcess: true }.
 *
 * @example
 * await ensureNativeEzkl() // once, at startup: creates .tools/venv if needed
 * const prover = ezklNativeProver({ threads: 8 })
 */
// biome-ignore lint/suspicious/noConfusingVoidType: `void` lets the factory be called with no options at all
export const ezklNativeProver = defineProverPlugin<EzklNativeProverOptions | void>((options) => createEzklNativeProver(options ?? {}))
