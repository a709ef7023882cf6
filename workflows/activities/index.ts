/**
 * The request workflow's activities, built by a factory over injected plugins (the worker's
 * composition root builds the plugins; tests can pass their own). Everything crossing the Temporal
 * boundary is JSON: big integers as decimal strings.
 */
import { ApplicationFailure, Context } from '@temporalio/activity'
import { dequantize, toFelt } from '../../core/field.ts'
import { checkQuantizedInput } from '../../core/input.ts'
import type { ModelStore } from '../../core/models.ts'
import type { ChainPlugin, ProverPlugin, RuntimePlugin, StoragePlugin, TxOutcome } from '../../core/plugins.ts'
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
      const expected = [...inputQ, ...p.output].map(toFelt)
      if (expected.length !== p.instances.length || expected.some((f, i) => f !== p.instances[i]))
        throw new SertnError('the proof’s public instances are not the request’s input and the output')
      return {
        result: { output: p.output.map(String), proof: p.proof, instances: p.instances.map(String) },
        witnessMs: p.witnessMs,
        proveMs: p.proveMs,
        verifyMs: p.verifyMs,
        attempt: ctx.info.attempt,
      }
    },

    /** Stores the output and the proof, tagged with the request key; a retry reuses earlier writes. */
    async storeResult(request: InferenceRequest, result: ProvenResult): Promise<StoredResult & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const put = async (kind: 'output' | 'proof', data: Uint8Array, contentType: string) => {
        const tags = { 'Sertn-Request': request.key, 'Sertn-Kind': kind }
        // A retry may find its earlier write; a first attempt has none to find.
        if (attempt() > 1 && deps.storage.flags.searchable && deps.storage.find) {
          const [existing] = await deps.storage.find(tags)
          if (existing) return existing
        }
        return deps.storage.put(data, { contentType, tags })
      }
      const outputDoc = JSON.stringify({ key: request.key, modelId: request.modelId, input: request.input, output: result.output, instances: result.instances })
      const [output, proof] = await Promise.all([
        put('output', new TextEncoder().encode(outputDoc), 'application/json'),
        put('proof', Buffer.from(result.proof.slice(2), 'hex'), 'application/octet-stream'),
      ])
      return { output, proof, ms: performance.now() - t0, attempt: attempt() }
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
