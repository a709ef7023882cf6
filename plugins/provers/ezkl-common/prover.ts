/**
 * The part of a ProverPlugin that is the same for every ezkl 21 engine: input checks, decoding the
 * engine's files, the instance check of proveInference, progress ticks and the disposed state. An
 * engine (WASM workers, native processes) only runs one call at a time on the model's artifacts.
 */
import { toFelt } from '../../../core/field.ts'
import { checkQuantizedInput } from '../../../core/input.ts'
import type { ModelArtifacts } from '../../../core/manifest.ts'
import type {
  InferenceProof,
  ProveOptions,
  ProveProgress,
  ProveResult,
  ProverPlugin,
  VerifyResult,
  WitnessResult,
} from '../../../core/plugins.ts'
import { ProverDisposedError, ProverError } from './errors.ts'
import { decodeProof, decodeWitness, encodeInputJson } from './formats.ts'

/** The engine calls. */
export type EngineOp = 'witness' | 'prove' | 'verify'

/**
 * What an engine call produced: the engine's output and the time spent inside it, or why the engine
 * refused the job (it threw, or trapped / panicked). Failures of the worker or process itself reject
 * the promise instead.
 */
export type JobResult =
  | { readonly ok: true; readonly value: Uint8Array | boolean; readonly ms: number }
  | { readonly ok: false; readonly kind: 'engine' | 'trap'; readonly message: string; readonly ms: number }

/** Runs engine calls; see WorkerPool (WASM) and ProcessPool (native). */
export interface EzklEngine {
  /**
   * One engine call on a model. payload: the input JSON (witness), the witness JSON (prove) or the
   * proof JSON (verify).
   */
  run(op: EngineOp, artifacts: ModelArtifacts, payload: Uint8Array): Promise<JobResult>
  /** Fails queued and running calls with ProverDisposedError and releases the engine. */
  dispose(): Promise<void>
}

export interface EzklProverDescription {
  readonly name: string
  readonly flags: ProverPlugin['flags']
}

/** How often onProgress is called while a stage runs. */
export const PROGRESS_INTERVAL_MS = 250

/** A ProverPlugin over an engine. */
export function createEzklProver(description: EzklProverDescription, engine: EzklEngine): ProverPlugin {
  const { name } = description
  let disposed = false

  const assertLive = (): void => {
    if (disposed) throw new ProverDisposedError(name)
  }

  async function witness(model: ModelArtifacts, inputQ: readonly bigint[]): Promise<WitnessResult> {
    assertLive()
    checkQuantizedInput(model.manifest, inputQ)
    const { bytes, ms } = bytesOf(name, 'witness', await engine.run('witness', model, encodeInputJson(model.manifest, inputQ)))
    const decoded = decodeWitness(bytes, name)
    if (!sameBigints(decoded.inputs, inputQ))
      throw new ProverError(name, `the witness's inputs [${decoded.inputs.join(', ')}] differ from the input [${inputQ.join(', ')}]`)
    return { witness: bytes, output: decoded.outputs, ms }
  }

  async function prove(model: ModelArtifacts, witnessBytes: Uint8Array, options: ProveOptions = {}): Promise<ProveResult> {
    assertLive()
    const r = await withProgress('prove', options, () => engine.run('prove', model, witnessBytes))
    const { bytes, ms } = bytesOf(name, 'prove', r)
    const { proof, instances } = decodeProof(bytes, name)
    return { proof, instances, proofJson: bytes, ms }
  }

  async function verify(model: ModelArtifacts, proofJson: Uint8Array): Promise<VerifyResult> {
    assertLive()
    const r = await engine.run('verify', model, proofJson)
    if (!r.ok) return { ok: false, reason: r.message, ms: r.ms }
    if (r.value !== true) return { ok: false, reason: 'the engine rejected the proof', ms: r.ms }
    return { ok: true, ms: r.ms }
  }

  async function proveInference(model: ModelArtifacts, inputQ: readonly bigint[], options: ProveOptions = {}): Promise<InferenceProof> {
    assertLive()
    checkQuantizedInput(model.manifest, inputQ)
    const w = await withProgress('witness', options, () => witness(model, inputQ))
    const p = await prove(model, w.witness, options)
    const expected = [...inputQ, ...w.output].map(toFelt)
    if (!sameBigints(p.instances, expected))
      throw new ProverError(name, "the proof's public instances are not the input followed by the witness's output")
    const v = await withProgress('verify', options, () => verify(model, p.proofJson))
    if (!v.ok) throw new ProverError(name, `the engine's own proof does not verify: ${v.reason ?? 'rejected'}`)
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

  return {
    kind: 'prover',
    name,
    flags: Object.freeze({ ...description.flags }),
    witness,
    prove,
    verify,
    proveInference,
    async dispose() {
      disposed = true
      await engine.dispose()
    },
  }
}

/**
 * Runs `fn`, calling `options.onProgress` with the elapsed time when it starts and then every
 * {@link PROGRESS_INTERVAL_MS} until it settles. The timer runs on the calling thread, which the
 * engines never block (they run in workers or other processes). A throwing callback is ignored.
 */
export async function withProgress<T>(stage: ProveProgress['stage'], options: ProveOptions, fn: () => Promise<T>): Promise<T> {
  const onProgress = options.onProgress
  if (!onProgress) return fn()
  const start = performance.now()
  const tick = (): void => {
    try {
      onProgress({ stage, elapsedMs: performance.now() - start })
    } catch {
      // progress is advisory: a failing listener must not fail the proof
    }
  }
  tick()
  const timer = setInterval(tick, PROGRESS_INTERVAL_MS)
  try {
    return await fn()
  } finally {
    clearInterval(timer)
  }
}

function bytesOf(plugin: string, op: 'witness' | 'prove', r: JobResult): { bytes: Uint8Array; ms: number } {
  if (!r.ok) throw new ProverError(plugin, `ezkl ${op} failed: ${r.message}`)
  if (!(r.value instanceof Uint8Array)) throw new ProverError(plugin, `ezkl ${op} returned no bytes`)
  return { bytes: r.value, ms: r.ms }
}

function sameBigints(a: readonly bigint[], b: readonly bigint[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
