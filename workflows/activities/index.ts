/**
 * The request workflow's activities, built by a factory over injected plugins (the worker's
 * composition root builds the plugins; tests can pass their own). Everything crossing the Temporal
 * boundary is JSON: big integers as decimal strings.
 */
import { ApplicationFailure, Context } from '@temporalio/activity'
import { dequantize } from '../../core/field.ts'
import { checkQuantizedInput } from '../../core/input.ts'
import type { ModelStore } from '../../core/models.ts'
import type { ChainPlugin, PreparedArtifact, ProverPlugin, RuntimePlugin, StoragePlugin, TxOutcome } from '../../core/plugins.ts'
import { SertnError } from '../../core/errors.ts'
import type { InferenceErrorCode, InferenceRequest, ProvenResult, StoredArtifact } from '../../core/types.ts'

export type ActivityDeps = {
  chains: readonly ChainPlugin[]
  runtime: RuntimePlugin
  prover: ProverPlugin
  storage: StoragePlugin
  models: ModelStore
}

/** No chain plugin serves the request's chain and gateway (a configuration problem). */
export class UnknownChainError extends SertnError {
  override name = 'UnknownChainError'
}

export type StoredResult = { output: StoredArtifact; proof: StoredArtifact }

/** The output and the proof with their storage ids fixed; `uploaded` says whether they are stored yet. */
export type PreparedResult = {
  output: PreparedArtifact & { uploaded: boolean }
  proof: PreparedArtifact & { uploaded: boolean }
}

const attempt = () => Context.current().info.attempt

/**
 * Errors that say whether a retry can help (`retryable`) become Temporal failures of their class
 * name with that verdict; others keep Temporal's default (retried unless listed in the policy).
 */
function withRetryVerdicts<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, unknown> = {}
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await fn(...args)
      } catch (err) {
        if (err instanceof Error && 'retryable' in err && typeof err.retryable === 'boolean' && !(err instanceof ApplicationFailure)) {
          throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: !err.retryable, cause: err })
        }
        throw err
      }
    }
  }
  return wrapped as T
}

export function createActivities(deps: ActivityDeps) {
  return withRetryVerdicts(activitiesOf(deps))
}

function activitiesOf(deps: ActivityDeps) {
  function chainOf(request: InferenceRequest): ChainPlugin {
    const chain = deps.chains.find((c) => c.chainId === request.chainId && c.gateway.toLowerCase() === request.gateway.toLowerCase())
    if (!chain) throw new UnknownChainError(`no chain plugin for chain ${request.chainId}, gateway ${request.gateway}`)
    return chain
  }

  return {
    /** Runs the model on the request's input with the runtime plugin (no proof). */
    async runInference(request: InferenceRequest): Promise<{ output: number[]; ms: number; attempt: number }> {
      const model = await deps.models.get(request.modelId)
      const inputQ = request.input.map(BigInt)
      checkQuantizedInput(model.manifest, inputQ)
      const r = await deps.runtime.run(model, inputQ.map((q) => dequantize(q, model.manifest.inputScale)))
      return { output: r.output, ms: r.ms, attempt: attempt() }
    },

    /** Witness, proof and an off-chain verification, heartbeating while the prover works. */
    async proveInference(request: InferenceRequest): Promise<{
      result: ProvenResult
      witnessMs: number
      proveMs: number
      verifyMs: number
      attempt: number
    }> {
      const ctx = Context.current()
      const model = await deps.models.get(request.modelId)
      const inputQ = request.input.map(BigInt)
      ctx.heartbeat({ stage: 'witness', elapsedMs: 0 })
      const p = await deps.prover.proveInference(model, inputQ, { onProgress: (progress) => ctx.heartbeat(progress) })
      // The prover plugin has checked that the instances are the input and the output (its
      // contract, held by the conformance suite); the gateway rebuilds them on-chain anyway.
      return {
        result: { output: p.output.map(String), proof: p.proof, instances: p.instances.map(String) },
        witnessMs: p.witnessMs,
        proveMs: p.proveMs,
        verifyMs: p.verifyMs,
        attempt: ctx.info.attempt,
      }
    },

    /**
     * Fixes where the output and the proof will be stored, tagged with the request key: with a
     * presigned storage (Arweave) their ids are known before the upload, which then runs beside
     * the fulfilment; other storages upload here (a retry finds its earlier writes).
     */
    async prepareResult(request: InferenceRequest, result: ProvenResult): Promise<PreparedResult & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const storage = deps.storage
      const one = async (kind: 'output' | 'proof', data: Uint8Array, contentType: string): Promise<PreparedArtifact & { uploaded: boolean }> => {
        const tags = { 'Sertn-Request': request.key, 'Sertn-Kind': kind }
        if (storage.flags.presigned && storage.prepare && storage.upload) {
          return { ...(await storage.prepare(data, { contentType, tags })), uploaded: false }
        }
        // A retry may find its earlier write; a first attempt has none to find.
        if (attempt() > 1 && storage.flags.searchable && storage.find) {
          const [existing] = await storage.find(tags)
          if (existing) return { artifact: existing, payload: '', uploaded: true }
        }
        return { artifact: await storage.put(data, { contentType, tags }), payload: '', uploaded: true }
      }
      const outputDoc = JSON.stringify({ key: request.key, modelId: request.modelId, input: request.input, output: result.output, instances: result.instances })
      const [output, proof] = await Promise.all([
        one('output', new TextEncoder().encode(outputDoc), 'application/json'),
        one('proof', Buffer.from(result.proof.slice(2), 'hex'), 'application/octet-stream'),
      ])
      return { output, proof, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Uploads prepared artifacts (idempotent: an artifact already uploaded is a success). */
    async uploadResult(prepared: PreparedResult): Promise<{ ms: number; attempt: number }> {
      const t0 = performance.now()
      const upload = deps.storage.upload?.bind(deps.storage)
      await Promise.all(
        [prepared.output, prepared.proof].filter((p) => !p.uploaded).map((p) => {
          if (!upload) throw new SertnError(`storage ${deps.storage.name} cannot upload a prepared artifact`)
          return upload(p)
        }),
      )
      return { ms: performance.now() - t0, attempt: attempt() }
    },

    /** Delivers the result on the request's gateway (idempotent). */
    async fulfillRequest(request: InferenceRequest, result: ProvenResult, storage: StoredResult): Promise<TxOutcome & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const outcome = await chainOf(request).fulfill(request, { ...result, storage })
      return { ...outcome, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Ends the request with the requester's error callback and a refund (idempotent). */
    async failRequest(request: InferenceRequest, code: InferenceErrorCode, reason: string): Promise<TxOutcome & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const outcome = await chainOf(request).fail(request, code, reason)
      return { ...outcome, ms: performance.now() - t0, attempt: attempt() }
    },
  }
}

export type Activities = ReturnType<typeof createActivities>
