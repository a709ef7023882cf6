/**
 * A prover running ezkl 21's WebAssembly engine (@ezkljs/engine) in worker threads: witness
 * generation, KZG proving and verification for a model built by `circuits/build.py`.
 */
import { toFelt } from '../../../core/field.ts'
import { checkQuantizedInput } from '../../../core/input.ts'
import type { ModelArtifacts } from '../../../core/manifest.ts'
import { ProverError } from './errors.ts'
import { decodeProof, decodeWitness, encodeInputJson } from './formats.ts'
import { type JobResult, type PoolStats, WorkerPool, type WorkerPoolOptions } from './pool.ts'

export type EzklWasmProverOptions = WorkerPoolOptions

export interface WitnessResult {
  /** The witness file, as the engine wrote it; the input to {@link EzklWasmProver.prove}. */
  readonly witness: Uint8Array
  /** The circuit's outputs as signed integers at the model's output scale, flattened. */
  readonly output: bigint[]
  readonly ms: number
}

export interface ProveResult {
  /** Raw proof bytes, for an on-chain verifier. */
  readonly proof: `0x${string}`
  /** Public instances as field elements: the inputs (row-major), then the outputs. */
  readonly instances: bigint[]
  /** The proof file, as the engine wrote it; the input to {@link EzklWasmProver.verify}. */
  readonly proofJson: Uint8Array
  readonly ms: number
}

export interface VerifyResult {
  readonly ok: boolean
  /** Why verification failed, in the engine's words; absent when ok. */
  readonly reason?: string
  readonly ms: number
}

export interface InferenceProof {
  /** The circuit's outputs as signed integers at the model's output scale. */
  readonly output: bigint[]
  readonly proof: `0x${string}`
  readonly instances: bigint[]
  readonly proofJson: Uint8Array
  readonly witnessMs: number
  readonly proveMs: number
  readonly verifyMs: number
}

export interface EzklWasmProver {
  /**
   * Runs the model's circuit on a quantised input (integers at the manifest's input scale).
   *
   * @throws {InputShapeError} when the input's length does not match the model's input shape
   * @throws {InputOutOfRangeError} when some |q| exceeds the manifest's maxAbsInput
   * @throws {ProverError} when the engine fails
   */
  witness(artifacts: ModelArtifacts, inputQ: readonly bigint[]): Promise<WitnessResult>
  /**
   * Proves a witness from {@link witness}.
   *
   * @throws {ProverError} when the engine fails
   */
  prove(artifacts: ModelArtifacts, witness: Uint8Array): Promise<ProveResult>
  /**
   * Verifies a proof file against the model's verifying key. An invalid or malformed proof yields
   * ok: false; only a failure of the prover itself (a crashed worker) throws.
   *
   * @throws {ProverError} when the worker fails
   */
  verify(artifacts: ModelArtifacts, proofJson: Uint8Array): Promise<VerifyResult>
  /**
   * witness, prove and verify in one go, checking that the proof's public instances are exactly the
   * input and the witness's output.
   *
   * @throws {InputShapeError} @throws {InputOutOfRangeError} as {@link witness}
   * @throws {ProverError} when the engine fails or its proof does not check out
   */
  proveInference(artifacts: ModelArtifacts, inputQ: readonly bigint[]): Promise<InferenceProof>
  /** Counters of the underlying worker pool. */
  stats(): PoolStats
  /** Terminates the workers; pending and later calls fail with ProverDisposedError. */
  dispose(): Promise<void>
}

/** Creates a prover with its own pool of worker threads (one by default), started on first use. */
export function createEzklWasmProver(options: EzklWasmProverOptions = {}): EzklWasmProver {
  const pool = new WorkerPool(options)

  async function witness(artifacts: ModelArtifacts, inputQ: readonly bigint[]): Promise<WitnessResult> {
    checkQuantizedInput(artifacts.manifest, inputQ)
    const { bytes, ms } = bytesOf('witness', await pool.run('witness', artifacts, encodeInputJson(artifacts.manifest, inputQ)))
    const decoded = decodeWitness(bytes)
    if (!sameBigints(decoded.inputs, inputQ))
      throw new ProverError(`the witness's inputs [${decoded.inputs.join(', ')}] differ from the input [${inputQ.join(', ')}]`)
    return { witness: bytes, output: decoded.outputs, ms }
  }

  async function prove(artifacts: ModelArtifacts, witnessBytes: Uint8Array): Promise<ProveResult> {
    const { bytes, ms } = bytesOf('prove', await pool.run('prove', artifacts, witnessBytes))
    const { proof, instances } = decodeProof(bytes)
    return { proof, instances, proofJson: bytes, ms }
  }

  async function verify(artifacts: ModelArtifacts, proofJson: Uint8Array): Promise<VerifyResult> {
    const r = await pool.run('verify', artifacts, proofJson)
    if (!r.ok) return { ok: false, reason: r.message, ms: r.ms }
    if (r.value !== true) return { ok: false, reason: 'the engine rejected the proof', ms: r.ms }
    return { ok: true, ms: r.ms }
  }

  async function proveInference(artifacts: ModelArtifacts, inputQ: readonly bigint[]): Promise<InferenceProof> {
    const w = await witness(artifacts, inputQ)
    const p = await prove(artifacts, w.witness)
    const expected = [...inputQ, ...w.output].map(toFelt)
    if (!sameBigints(p.instances, expected))
      throw new ProverError("the proof's public instances are not the input followed by the witness's output")
    const v = await verify(artifacts, p.proofJson)
    if (!v.ok) throw new ProverError(`the engine's own proof does not verify: ${v.reason ?? 'rejected'}`)
    return {
      output: w.output,
      proof: p.proof,
      instances: p.instances,
      proofJson: p.proofJson,
      witnessMs: w.ms,
      proveMs: p.ms,
      verifyMs: v.ms,
    }
  }

  return { witness, prove, verify, proveInference, stats: () => pool.stats(), dispose: () => pool.dispose() }
}

function bytesOf(op: 'witness' | 'prove', r: JobResult): { bytes: Uint8Array; ms: number } {
  if (!r.ok) throw new ProverError(`ezkl ${op} failed: ${r.message}`)
  if (!(r.value instanceof Uint8Array)) throw new ProverError(`ezkl ${op} returned no bytes`)
  return { bytes: r.value, ms: r.ms }
}

function sameBigints(a: readonly bigint[], b: readonly bigint[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
