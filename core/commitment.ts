/**
 * Commitments to hashed inputs and outputs, and the input document a requester stores.
 *
 * A model built with a hashed input (`--input-visibility hashed`) has, as its first public instance,
 * the Poseidon hash of its quantised input (EZKL's Poseidon over the input's field elements, in
 * row-major order). A requester stores the input document ({@link encodeInputDocument}) in storage
 * and requests with the commitment ({@link commitmentOf}) and the document's storage id; the node
 * fetches the document, checks it against the commitment, and proves. On-chain a commitment h is
 * passed in the circuit's signed encoding (h above (R − 1) / 2 as h − R), like every instance.
 */
import { createRequire } from 'node:module'
import { SertnError } from './errors.ts'
import { feltFromLeHex, feltToLeHex, fromFelt, toFelt } from './field.ts'

const require = createRequire(import.meta.url)
type Engine = { poseidonHash(message: Uint8ClampedArray): Uint8ClampedArray }
let engine: Engine | undefined
/** @ezkljs/engine, loaded on first use (it is a large WebAssembly module). */
const ezkl = (): Engine => (engine ??= require('@ezkljs/engine/nodejs/ezkl.js') as Engine)

/** The Poseidon hash (a field element) of quantised values, as the circuit computes it. */
export function poseidonOf(valuesQ: readonly bigint[]): bigint {
  const felts = valuesQ.map((q) => feltToLeHex(toFelt(q)))
  const out = JSON.parse(
    Buffer.from(ezkl().poseidonHash(new Uint8ClampedArray(Buffer.from(JSON.stringify(felts))))).toString(),
  ) as string[][]
  const hash = out[0]?.[0]
  if (typeof hash !== 'string') throw new SertnError('poseidonHash returned no hash')
  return feltFromLeHex(hash)
}

/** The commitment a request carries for a hashed input: its Poseidon hash in the signed encoding. */
export function commitmentOf(inputQ: readonly bigint[]): bigint {
  return fromFelt(poseidonOf(inputQ))
}

/** What a requester stores for a hashed input: the quantised input, flattened, as decimal strings. */
export type InputDocument = { input: string[] }

export function encodeInputDocument(inputQ: readonly bigint[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ input: inputQ.map(String) } satisfies InputDocument))
}

/** The stored input is not an input document, or does not hash to the request's commitment. */
export class InputCommitmentError extends SertnError {
  static override readonly errorCode = 'InvalidInput'
  override name = 'InputCommitmentError'
}

/**
 * Reads an input document and checks it against the commitment a request carries.
 * @throws {InputCommitmentError} when it is malformed or hashes to another commitment
 */
export function openInputDocument(bytes: Uint8Array, commitment: bigint): bigint[] {
  let doc: unknown
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new InputCommitmentError('the stored input is not JSON: expected {"input": ["<integer>", …]}')
  }
  const input = (doc as InputDocument | undefined)?.input
  if (!Array.isArray(input) || !input.every((x) => (typeof x === 'string' && /^-?\d+$/.test(x)) || Number.isSafeInteger(x)))
    throw new InputCommitmentError(
      'the stored input is not an input document: expected {"input": ["<integer>", …]} at the model\'s input scale',
    )
  const inputQ = input.map((x) => BigInt(x))
  let actual: bigint
  try {
    actual = commitmentOf(inputQ)
  } catch (e) {
    throw new InputCommitmentError(`the stored input cannot be hashed: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (actual !== commitment)
    throw new InputCommitmentError(
      `the stored input does not match the request's commitment: it hashes to ${actual}, the request committed to ${commitment}`,
    )
  return inputQ
}
