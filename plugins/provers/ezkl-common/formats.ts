/**
 * ezkl 21's JSON formats, shared by the WASM engine and the native (Python) build, which read and
 * write the same files (byte for byte, but for metadata such as `version` and `timestamp`): the input
 * file it reads, and the witness and proof files it writes.
 *
 * - input: `{"input_data": [[x, …]]}`, one flat row-major array per model input, each x a float
 *   that the engine quantises as round(x · 2^inputScale). We send x = q / 2^inputScale, which is
 *   exact in binary floating point, so the engine recovers exactly q.
 * - witness: `inputs` and `outputs` are arrays (one per tensor) of 32-byte little-endian hex felts.
 * - proof: `instances` is one array of little-endian hex felts, inputs row-major then outputs; `proof`
 *   is the raw proof bytes as an array of numbers. `hex_proof` repeats them as 0x-hex but the engine's
 *   verifier ignores it: `proof` is the source of truth.
 */
import { feltFromLeHex, fromFelt } from '../../../core/field.ts'
import type { ModelManifest } from '../../../core/manifest.ts'
import { ProverError } from './errors.ts'

/** The decoded parts of a witness file. */
export interface DecodedWitness {
  /** Inputs as signed integers at the input scale, flattened. */
  readonly inputs: bigint[]
  /** Outputs as signed integers at the output scale, flattened. */
  readonly outputs: bigint[]
  /** The Poseidon hash of the inputs (a field element), when the circuit hashes them. */
  readonly inputHash?: bigint
  /** The Poseidon hash of the outputs, when the circuit hashes them. */
  readonly outputHash?: bigint
}

/** The decoded parts of a proof file. */
export interface DecodedProof {
  /** Raw proof bytes, as passed to an on-chain verifier. */
  readonly proof: `0x${string}`
  /** Public instances as field elements (inputs then outputs), as passed on chain as uint256. */
  readonly instances: bigint[]
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The engine's input file for a quantised input (already validated against the manifest). */
export function encodeInputJson(manifest: ModelManifest, inputQ: readonly bigint[]): Uint8Array {
  const denom = 2 ** manifest.inputScale
  return encoder.encode(JSON.stringify({ input_data: [inputQ.map((q) => Number(q) / denom)] }))
}

/** Reads the inputs and outputs of a witness file; `plugin` names the prover in errors. */
export function decodeWitness(bytes: Uint8Array, plugin: string): DecodedWitness {
  const json = parse(bytes, plugin, 'witness')
  const inputHash = poseidonOf(json.processed_inputs, plugin, 'processed_inputs')
  const outputHash = poseidonOf(json.processed_outputs, plugin, 'processed_outputs')
  return {
    inputs: feltRows(json.inputs, plugin, 'witness', 'inputs').map(fromFelt),
    outputs: feltRows(json.outputs, plugin, 'witness', 'outputs').map(fromFelt),
    ...(inputHash !== undefined ? { inputHash } : {}),
    ...(outputHash !== undefined ? { outputHash } : {}),
  }
}

/** The one Poseidon hash in a witness's `processed_inputs` / `processed_outputs`, if there is one. */
function poseidonOf(processed: unknown, plugin: string, field: string): bigint | undefined {
  if (typeof processed !== 'object' || processed === null) return undefined
  const hashes = (processed as { poseidon_hash?: unknown }).poseidon_hash
  if (hashes === undefined || hashes === null) return undefined
  if (!Array.isArray(hashes) || hashes.length !== 1 || typeof hashes[0] !== 'string')
    throw malformed(plugin, 'witness', `"${field}.poseidon_hash" is not one hex felt`)
  try {
    return feltFromLeHex(hashes[0])
  } catch (e) {
    throw malformed(plugin, 'witness', `"${field}.poseidon_hash": ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** Reads the proof bytes and public instances of a proof file; `plugin` names the prover in errors. */
export function decodeProof(bytes: Uint8Array, plugin: string): DecodedProof {
  const json = parse(bytes, plugin, 'proof')
  const proof = json.proof
  if (!Array.isArray(proof) || proof.length === 0 || !proof.every((b) => Number.isInteger(b) && b >= 0 && b <= 255))
    throw malformed(plugin, 'proof', '"proof" is not an array of bytes')
  return {
    proof: `0x${Buffer.from(proof as number[]).toString('hex')}`,
    instances: feltRows(json.instances, plugin, 'proof', 'instances'),
  }
}

function parse(bytes: Uint8Array, plugin: string, what: string): Record<string, unknown> {
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch (e) {
    throw malformed(plugin, what, `not JSON (${e instanceof Error ? e.message : String(e)})`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw malformed(plugin, what, 'not a JSON object')
  return json as Record<string, unknown>
}

/** Flattens an array of arrays of little-endian hex felts. */
function feltRows(rows: unknown, plugin: string, what: string, field: string): bigint[] {
  if (!Array.isArray(rows) || !rows.every((r) => Array.isArray(r) && r.every((h) => typeof h === 'string')))
    throw malformed(plugin, what, `"${field}" is not an array of arrays of hex strings`)
  try {
    return (rows as string[][]).flat().map(feltFromLeHex)
  } catch (e) {
    throw malformed(plugin, what, `"${field}": ${e instanceof Error ? e.message : String(e)}`)
  }
}

function malformed(plugin: string, what: string, detail: string): ProverError {
  return new ProverError(plugin, `the engine returned a malformed ${what}: ${detail}`)
}
