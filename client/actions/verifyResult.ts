import { createRequire } from 'node:module'
import { fetchModelArtifacts } from '../../core/artifacts.ts'
import { SertnError } from '../../core/errors.ts'
import { feltToLeHex, toFelt } from '../../core/field.ts'
import { StorageReadError } from '../errors.ts'
import type { LogRangeParameters, ReadClient, RequestTarget } from '../internal.ts'
import { storageReader, type StorageOption } from '../storage.ts'
import { getModel, type SertnModel } from './getModel.ts'
import { getRequest, type SertnRequest } from './getRequest.ts'

export type VerifyResultParameters = RequestTarget &
  LogRangeParameters & {
    /** Where the proof, the output document and the model's artifacts are read from. */
    storage: StorageOption
    /** Check this output instead of the one delivered on-chain (at the model's output scale, or its commitment). */
    output?: readonly (bigint | number)[]
  }

/** The parts of a result that are checked, in the order they are reported. */
export const VERIFY_PARTS = ['artifacts', 'proof', 'input', 'output'] as const
export type VerifyPart = (typeof VERIFY_PARTS)[number]

/** One check's outcome. */
export type VerifyCheck = { ok: boolean; detail: string }

export type VerifyResultReturnType = {
  /** Every check passed: the proof verifies against the registered circuit and binds the request's input and the delivered output. */
  valid: boolean
  /** The first part that failed, in {@link VERIFY_PARTS} order. */
  failed?: VerifyPart
  /** What failed, in words. */
  reason?: string
  checks: Record<VerifyPart, VerifyCheck>
  /** The proof's public instances (field elements): the input's, then the output's. */
  instances: { input: bigint[]; output: bigint[] }
  /** What they must be: the request's input and the delivered (or given) output, field-encoded. */
  expected: { input: bigint[]; output: bigint[] }
  /** The proof's storage id. */
  proofId: string
  /** For a result settled in a batch: the batch circuit's rows, and the request's row. */
  batch?: { size: number; row: number }
  request: SertnRequest
  model: SertnModel
}

type Engine = {
  verify(proof: Uint8ClampedArray, vk: Uint8ClampedArray, settings: Uint8ClampedArray, srs: Uint8ClampedArray): boolean
}
let engine: Engine | undefined
/** `@ezkljs/engine`'s Node.js build, loaded on first use. */
function loadEngine(): Engine {
  engine ??= createRequire(import.meta.url)('@ezkljs/engine') as Engine
  return engine
}
const clamped = (b: Uint8Array) => new Uint8ClampedArray(b.buffer, b.byteOffset, b.byteLength)
const short = (e: unknown) => (e instanceof SertnError ? e.shortMessage : e instanceof Error ? e.message : String(e))

/**
 * Re-checks a delivered result off-chain, as the gateway did on-chain: fetches the proof (by the
 * fulfilment's proof ref) and the output document from storage, and the model's circuit (its
 * artifact index: verifying key, settings, SRS, each checked against the registry's pinned
 * sha256); verifies the proof with the WASM engine (`@ezkljs/engine`, synchronous: run it off the
 * main thread of a busy server); and checks that the proof's public instances are the request's
 * input (or its commitment) and the delivered output. Says which part failed.
 *
 * @throws {SertnError} when the request has no delivered result
 * @throws {StorageReadError} when storage cannot give the proof or the artifacts (not the result's fault)
 *
 * @example
 * const v = await verifyResult(client, { key, storage: { gatewayUrl: 'https://arweave.net' } })
 * if (!v.valid) console.log(`${v.failed}: ${v.reason}`)
 */
export async function verifyResult(client: ReadClient, params: VerifyResultParameters): Promise<VerifyResultReturnType> {
  const request = await getRequest(client, params)
  const fulfilled = request.fulfilled
  if (!fulfilled)
    throw new SertnError(`request ${request.key} has no delivered result to verify (it is ${request.status})`, {
      details: request.status === 'Pending' ? 'Wait for it (waitForResult), then verify.' : undefined,
    })
  const { proofId, outputId } = fulfilled.storage
  if (!proofId) throw new SertnError(`request ${request.key}: its result names no stored proof (the node did not store one)`)
  const model = await getModel(client, { gateway: request.gateway, modelId: request.modelId })
  const storage = storageReader(params.storage)
  const read = async (id: string, what: string, maxBytes: number) => {
    try {
      return await storage.getById!(id, { maxBytes })
    } catch (err) {
      throw new StorageReadError(`request ${request.key}: cannot read the ${what} ${id}: ${short(err)}`, { cause: err, retryable: true })
    }
  }

  const checks = {} as Record<VerifyPart, VerifyCheck>
  const expected = {
    input: request.input.map(toFelt),
    output: (params.output ?? fulfilled.output).map((x) => toFelt(BigInt(x))),
  }

  // The proof, and the instances it was made for (the node's output document lists them; a batch's
  // lists every row's input and output).
  const proof = await read(proofId, 'proof', 1 << 24)
  let instances: bigint[] = [...expected.input, ...expected.output]
  let instancesFrom = 'the request (no stored output document)'
  let claimed = { input: expected.input, output: expected.output }
  let batch: { size: number; row: number } | undefined
  let unreadable: string | undefined
  if (outputId) {
    const doc = parseDocument(await read(outputId, 'output document', 1 << 24))
    if (!doc) {
      claimed = { input: [], output: [] }
      unreadable = `the output document ${outputId} that should list the proof's instances is not JSON`
      instancesFrom = 'the request (its output document is not JSON)'
    } else if (doc.batch !== undefined && Array.isArray(doc.rows)) {
      const rows = doc.rows
      const row = rows.findIndex((r) => r.key === request.key)
      instances = [...rows.flatMap((r) => r.input.map(feltOf)), ...rows.flatMap((r) => r.output.map(feltOf))]
      instancesFrom = `batch ${String(doc.batch)} (${rows.length} rows, the output document ${outputId})`
      batch = { size: rows.length, row }
      claimed = row < 0 ? { input: [], output: [] } : { input: rows[row]!.input.map(feltOf), output: rows[row]!.output.map(feltOf) }
    } else if (Array.isArray(doc.instances)) {
      instances = doc.instances.map((x) => BigInt(x))
      instancesFrom = `the output document ${outputId}`
      claimed = { input: instances.slice(0, model.inputLength), output: instances.slice(model.inputLength) }
    }
  }

  // The registered circuit: verifying key, settings and SRS, each against the registry's pins.
  let circuit: { vk: Uint8Array; settings: Uint8Array; srs: Uint8Array } | undefined
  if (model.version !== request.modelVersion) {
    checks.artifacts = {
      ok: false,
      detail: `the model is at version ${model.version} now, the request was made against version ${request.modelVersion}: its current circuit cannot re-check this result`,
    }
  } else {
    try {
      const a = await fetchModelArtifacts(
        storage,
        {
          modelId: model.modelId,
          name: model.name,
          version: model.version,
          artifacts: model.artifacts,
          inputVisibility: model.inputVisibility,
          outputVisibility: model.outputVisibility,
        },
        { only: ['vk.key', 'settings.json'], ...(batch ? { batchSizes: [batch.size] } : {}) },
      )
      const dir = batch ? a.manifest.batches?.find((b) => b.size === batch.size)?.dir : undefined
      const files = dir ? a.batches.get(dir) : { files: a.files, srs: a.srs }
      if (!files) throw new SertnError(`model ${model.name} has no batch circuit of ${batch!.size} rows in its artifact index`)
      circuit = { vk: files.files.get('vk.key')!, settings: files.files.get('settings.json')!, srs: files.srs }
      checks.artifacts = {
        ok: true,
        detail: `vk.key, settings.json and the SRS of ${model.name} v${model.version}${dir ? ` (its ${batch!.size}-row batch circuit)` : ''} match the registry's sha256 (index ${model.artifactIndexId})`,
      }
    } catch (err) {
      if (err instanceof SertnError && err.retryable)
        throw new StorageReadError(`request ${request.key}: cannot read model ${model.name}'s artifacts from storage: ${short(err)}`, {
          cause: err,
          retryable: true,
          details: 'Try again, or read from another gateway that holds them (the storage option).',
        })
      checks.artifacts = { ok: false, detail: short(err) }
    }
  }

  const sameAs = (a: bigint[], b: bigint[]) => a.length === b.length && a.every((x, i) => x === b[i])
  const firstDiff = (a: bigint[], b: bigint[]) => {
    if (a.length !== b.length) return `${a.length} elements where ${b.length} were expected`
    const i = a.findIndex((x, j) => x !== b[j])
    return `element ${i} is ${a[i]} where ${b[i]} was expected`
  }
  if (unreadable) checks.input = { ok: false, detail: unreadable }
  else if (batch && batch.row < 0) checks.input = { ok: false, detail: `the batch's output document has no row for ${request.key}` }
  else
    checks.input = sameAs(claimed.input, expected.input)
      ? {
          ok: true,
          detail: `the proof's ${claimed.input.length} input instances are the request's input${model.inputVisibility === 'hashed' ? ' commitment' : ''}`,
        }
      : { ok: false, detail: `the proof's input instances are not the request's input: ${firstDiff(claimed.input, expected.input)}` }
  checks.output = unreadable
    ? { ok: false, detail: unreadable }
    : sameAs(claimed.output, expected.output)
      ? {
          ok: true,
          detail: `the proof's ${claimed.output.length} output instances are the ${params.output ? 'given' : 'delivered'} output${model.outputVisibility === 'hashed' ? ' commitment' : ''}`,
        }
      : {
          ok: false,
          detail: `the proof's output instances are not the ${params.output ? 'given' : 'delivered'} output: ${firstDiff(claimed.output, expected.output)}`,
        }

  if (!circuit) checks.proof = { ok: false, detail: 'not checked: no trusted circuit to verify it with' }
  else {
    const proofJson = new TextEncoder().encode(
      JSON.stringify({
        proof: [...proof],
        instances: [instances.map(feltToLeHex)],
        transcript_type: 'EVM',
        commitment: 'KZG',
      }),
    )
    let ok = false
    let why = 'the engine rejected it'
    try {
      ok = loadEngine().verify(clamped(proofJson), clamped(circuit.vk), clamped(circuit.settings), clamped(circuit.srs))
    } catch (err) {
      why = `the engine rejected it: ${short(err).split('\n')[0]}`
    }
    checks.proof = ok
      ? {
          ok: true,
          detail: `the proof (${proof.byteLength} bytes, ${proofId}) verifies against ${model.name}'s verifying key for the instances of ${instancesFrom}`,
        }
      : { ok: false, detail: `the proof (${proofId}) does not verify for the instances of ${instancesFrom}: ${why}` }
  }

  const failed = VERIFY_PARTS.find((p) => !checks[p].ok)
  return {
    valid: failed === undefined,
    ...(failed ? { failed, reason: checks[failed].detail } : {}),
    checks,
    instances: claimed,
    expected,
    proofId,
    ...(batch ? { batch } : {}),
    request,
    model,
  }
}

/** The output document a node stores with a result: one request's, or a batch's rows. */
type OutputDocument = {
  instances?: string[]
  batch?: unknown
  rows?: { key?: string; padding?: boolean; input: string[]; output: string[] }[]
}

function parseDocument(bytes: Uint8Array): OutputDocument | undefined {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as unknown
    return typeof doc === 'object' && doc !== null ? (doc as OutputDocument) : undefined
  } catch {
    return undefined
  }
}

/** A stored value as a field element: a signed value encoded, a field element kept. */
const feltOf = (x: string): bigint => {
  const v = BigInt(x)
  return v < 0n ? toFelt(v) : v
}
