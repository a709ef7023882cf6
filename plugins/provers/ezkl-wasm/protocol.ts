/**
 * Messages between the prover's pool (main thread) and its workers (`worker.mjs`).
 *
 * The worker is plain JavaScript so that it loads the same way under vitest, tsx and plain node;
 * these types are its contract and are mirrored in its JSDoc. Messages on a port arrive in order,
 * so a `load` posted before a `job` is always applied first.
 */

import type { EngineOp } from '../ezkl-common/prover.ts'

/** The engine calls a worker runs: the prover's, and `setup` (derive the keys). */
export type WorkerOp = EngineOp | 'setup'
export type { EngineOp }

/** The artifact bytes a worker keeps per model (everything but network.onnx); the proving key once derived. */
export interface ArtifactBundle {
  readonly compiled: Uint8Array
  readonly pk?: Uint8Array
  readonly vk: Uint8Array
  readonly settings: Uint8Array
  readonly srs: Uint8Array
}

export type WorkerRequest =
  /** Cache a model's artifacts under `key` (the artifacts' contentHash). */
  | { readonly type: 'load'; readonly key: string; readonly artifacts: ArtifactBundle }
  /** Drop a cached model. */
  | { readonly type: 'evict'; readonly key: string }
  /**
   * Run one engine call against a cached model. payload: the input JSON (witness), the witness
   * JSON (prove) or the proof JSON (verify).
   */
  | { readonly type: 'job'; readonly id: number; readonly op: WorkerOp; readonly key: string; readonly payload: Uint8Array }

/** How a job failed. */
export interface WorkerFailure {
  /**
   * engine: the engine threw an error (bad input, invalid proof); the worker is still usable.
   * trap: the WebAssembly instance trapped (a Rust panic); the worker exits after replying.
   * protocol: the request itself was wrong (unknown key or op).
   */
  readonly kind: 'engine' | 'trap' | 'protocol'
  readonly message: string
}

export type WorkerResponse =
  | {
      readonly type: 'result'
      readonly id: number
      readonly ok: true
      /** Output bytes for witness and prove, the engine's verdict for verify, both keys for setup. */
      readonly value: Uint8Array | boolean | { readonly vk: Uint8Array; readonly pk: Uint8Array }
      /** Time spent inside the engine call, in milliseconds. */
      readonly ms: number
    }
  | {
      readonly type: 'result'
      readonly id: number
      readonly ok: false
      readonly error: WorkerFailure
      /** Time spent inside the engine call before it failed (0 for protocol errors). */
      readonly ms: number
    }
