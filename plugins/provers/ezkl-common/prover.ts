/**
 * The part of a ProverPlugin that is the same for every ezkl 21 engine: input checks, decoding the
 * engine's files, the instance check of proveInference, proving keys (derived by the engine on first
 * use, checked against the pinned verifying key, cached by the key store), progress ticks and the
 * disposed state. An engine (WASM workers, native processes) only runs one call at a time on the
 * model's artifacts.
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
import type { ProvingKeyFile, ProvingKeyStore } from './keys.ts'

/** The engine calls. */
export type EngineOp = 'witness' | 'prove' | 'verify'

/**
 * What an engine call produced: the engine's output and the time spent inside it, or why the engine
 * refused the job (it threw, or trapped / panicked). Failures of the worker or process itself reject
 * the promise instead.
 */
export type JobResult =
  | {
      readonly ok: true
      readonly value: Uint8Array | boolean
      readonly ms: number
      /** The engine's peak resident memory during the call, where it can tell (native: per job). */
      readonly peakMemoryBytes?: number
    }
  | { readonly ok: false; readonly kind: 'engine' | 'trap'; readonly message: string; readonly ms: number }

/** Runs engine calls; see WorkerPool (WASM) and ProcessPool (native). */
export interface EzklEngine {
  /**
   * One engine call on a model. payload: the input JSON (witness), the witness JSON (prove) or the
   * proof JSON (verify). `pk` is required to prove; other calls take it when the caller has it.
   */
  run(op: EngineOp, artifacts: ModelArtifacts, payload: Uint8Array, pk?: ProvingKeyFile): Promise<JobResult>
  /**
   * Derives the model's keys from its compiled circuit and SRS, writing the proving key to `pkPath`;
   * resolves to the derived verifying key (the caller compares it with the pinned one).
   */
  setup(artifacts: ModelArtifacts, pkPath: string): Promise<{ vk: Uint8Array; ms: number }>
  /** Fails queued and running calls with ProverDisposedError and releases the engine. */
  dispose(): Promise<void>
}

export interface EzklProverDescription {
  readonly name: string
  readonly flags: ProverPlugin['flags']
}

/** How often onProgress is called while a stage runs. */
export const PROGRESS_INTERVAL_MS = 250

/** A ProverPlugin over an engine, keeping its proving keys in `keys`. */
export function createEzklProver(description: EzklProverDescription, engine: EzklEngine, keys: ProvingKeyStore): ProverPlugin {
  const { name } = description
  let disposed = false

  const assertLive = (): void => {
    if (disposed) throw new ProverDisposedError(name)
  }

  /** The model's proving key, derived by this engine on first use (and checked against the pinned vk). */
  const provingKey = (model: ModelArtifacts): Promise<ProvingKeyFile> => keys.get(model, (m, path) => engine.setup(m, path))

  async function witnessWith(model: ModelArtifacts, inputQ: readonly bigint[], pk?: ProvingKeyFile) {
    assertLive()
    checkQuantizedInput(model.manifest, inputQ)
    const { bytes, ms } = bytesOf(name, 'witness', await engine.run('witness', model, encodeInputJson(model.manifest, inputQ), pk))
    const decoded = decodeWitness(bytes, name)
    if (!sameBigints(decoded.inputs, inputQ))
      throw new ProverError(name, `the witness's inputs [${decoded.inputs.join(', ')}] differ from the input [${inputQ.join(', ')}]`)
    return { witness: bytes, decoded, ms }
  }

  async function witness(model: ModelArtifacts, inputQ: readonly bigint[]): Promise<WitnessResult> {
    const w = await witnessWith(model, inputQ)
    return { witness: w.witness, output: w.decoded.outputs, ms: w.ms }
  }

  async function prove(model: ModelArtifacts, witnessBytes: Uint8Array, options: ProveOptions = {}): Promise<ProveResult> {
    assertLive()
    const pk = await provingKey(model)
    const r = await withProgress('prove', options, () => engine.run('prove', model, witnessBytes, pk))
    const { bytes, ms } = bytesOf(name, 'prove', r)
    const { proof, instances } = decodeProof(bytes, name)
    const peak = r.ok ? r.peakMemoryBytes : undefined
    return { proof, instances, proofJson: bytes, ms, ...(peak !== undefined ? { peakMemoryBytes: peak } : {}) }
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
    const pk = await provingKey(model)
    const w = await withProgress('witness', options, () => witnessWith(model, inputQ, pk))
    const p = await prove(model, w.witness, options)
    const { visibility } = model.manifest
    const { inputHash, outputHash } = w.decoded
    if ((visibility.input === 'hashed') !== (inputHash !== undefined) || (visibility.output === 'hashed') !== (outputHash !== undefined))
      throw new ProverError(
        name,
        `the witness's commitments do not match the model's visibility (input ${visibility.input}, output ${visibility.output})`,
      )
    const expected = [
      ...(inputHash !== undefined ? [inputHash] : inputQ.map(toFelt)),
      ...(outputHash !== undefined ? [outputHash] : w.decoded.outputs.map(toFelt)),
    ]
    if (!sameBigints(p.instances, expected))
      throw new ProverError(
        name,
        "the proof's public instances are not the input (or its hash) followed by the witness's output (or its hash)",
      )
    const v = await withProgress('verify', options, () => verify(model, p.proofJson))
    if (!v.ok) throw new ProverError(name, `the engine's own proof does not verify: ${v.reason ?? 'rejected'}`)
    return {
      output: w.decoded.outputs,
      ...(inputHash !== undefined ? { inputCommitment: inputHash } : {}),
      ...(outputHash !== undefined ? { outputCommitment: outputHash } : {}),
      proof: p.proof,
      instances: p.instances,
      proofJson: p.proofJson,
      witnessMs: w.ms,
      proveMs: p.ms,
      verifyMs: v.ms,
      ...(p.peakMemoryBytes !== undefined ? { peakMemoryBytes: p.peakMemoryBytes } : {}),
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
    async prepare(model) {
      assertLive()
      await provingKey(model)
    },
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

function bytesOf(plugin: string, op: EngineOp, r: JobResult): { bytes: Uint8Array; ms: number } {
  if (!r.ok) throw new ProverError(plugin, `ezkl ${op} failed: ${r.message}`)
  if (!(r.value instanceof Uint8Array)) throw new ProverError(plugin, `ezkl ${op} returned no bytes`)
  return { bytes: r.value, ms: r.ms }
}

function sameBigints(a: readonly bigint[], b: readonly bigint[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
