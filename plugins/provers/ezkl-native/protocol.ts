/**
 * Messages between the ezkl-native plugin and its Python server (`server.py`): JSON lines over a
 * Unix socket that the plugin listens on and the server connects to. (core/process.ts gives a child
 * no stdin and keeps its stdout/stderr for logs, so the requests travel over the socket.) The
 * server handles one request at a time; replies carry the request's id.
 */
import type { EngineOp } from '../ezkl-common/prover.ts'

/** The artifacts a server loads per model, by the name it knows them under (pk once derived). */
export type ArtifactName = 'compiled' | 'pk' | 'vk' | 'settings' | 'srs'

/** The engine calls a server runs: the prover's, and `setup` (derive the keys with ezkl.setup). */
export type ServerOp = EngineOp | 'setup'

/** A file the server reads once, checked against a sha256 (of the bytes the plugin holds). */
export interface ArtifactFile {
  /** Absolute path. */
  readonly path: string
  readonly sha256: string
}

export type ServerRequest =
  /** Read, check and copy a model's artifacts, kept under `key` (the artifacts' contentHash). */
  | {
      readonly id: number
      readonly op: 'load'
      readonly key: string
      readonly files: Readonly<Partial<Record<ArtifactName, ArtifactFile>>>
    }
  /** Forget a model. */
  | { readonly id: number; readonly op: 'evict'; readonly key: string }
  /** One engine call on a loaded model; payload is base64 (input, witness or proof JSON; setup's target paths). */
  | { readonly id: number; readonly op: ServerOp; readonly key: string; readonly payload: string }

/** How a request failed. */
export interface ServerFailure {
  /**
   * engine: ezkl raised (bad input, invalid proof); the server is still usable.
   * panic: ezkl panicked; the plugin replaces the server.
   * artifact: a file is missing or its bytes differ from the sha256 sent.
   * protocol: the request itself was wrong (unknown op, model not loaded, not JSON).
   */
  readonly kind: 'engine' | 'panic' | 'artifact' | 'protocol'
  readonly message: string
}

export type ServerReply =
  | {
      readonly id: number
      readonly ok: true
      /** base64 output for witness and prove, the verdict for verify, null for load and evict. */
      readonly value: string | boolean | null
      /** Time the server spent on the request, in milliseconds. */
      readonly ms: number
      /** prove: the server's peak resident memory during the job (Linux), in bytes. */
      readonly peakRssBytes?: number
    }
  | { readonly id: number | null; readonly ok: false; readonly error: ServerFailure; readonly ms: number }

/** The server's first line, once connected. */
export interface ServerHello {
  readonly type: 'hello'
  readonly ezkl: string
  readonly python: string
  readonly pid: number
  readonly threads: string | null
}
