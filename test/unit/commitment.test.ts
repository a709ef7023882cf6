/** Hashed inputs: the commitment a request carries, and the stored document checked against it. */
import { describe, expect, it } from 'vitest'
import { commitmentOf, encodeInputDocument, InputCommitmentError, openInputDocument, poseidonOf } from '../../core/commitment.ts'
import { FIELD_MODULUS, fromFelt, MAX_ABS_FIELD_VALUE, toFelt } from '../../core/field.ts'

describe('commitments', () => {
  it("default: EZKL's Poseidon of the input felts, as a circuit with a hashed input computes it", () => {
    // The witness of a hashed-input circuit for input [0.25, -0.5] at scale 8 (ezkl 21.0.0, gen_witness).
    expect(poseidonOf([64n, -128n])).toBe(0x0706_70c1_6e70_0f41_46e5_0d20_2adf_0b24_af33_adb4_3dec_ded8_6d61_554e_69f1_e7bcn)
  })

  it('behavior: the commitment is the Poseidon hash in the signed encoding, inside the field', () => {
    const input = [1n, -2n, 3n, 4096n]
    const c = commitmentOf(input)
    expect(c <= MAX_ABS_FIELD_VALUE && c >= -MAX_ABS_FIELD_VALUE).toBe(true)
    expect(toFelt(c)).toBe(poseidonOf(input))
    expect(fromFelt(poseidonOf(input))).toBe(c)
    expect(poseidonOf(input) < FIELD_MODULUS).toBe(true)
    expect(commitmentOf([1n, -2n, 3n, 4097n])).not.toBe(c)
  })

  it('default: a stored document opens against its commitment', () => {
    const input = [5n, -7n, 0n]
    expect(openInputDocument(encodeInputDocument(input), commitmentOf(input))).toEqual(input)
  })

  it('error: a document of another input, a malformed one, or not JSON is an InputCommitmentError', () => {
    const c = commitmentOf([5n, -7n, 0n])
    expect(() => openInputDocument(encodeInputDocument([5n, -7n, 1n]), c)).toThrow(/does not match the request's commitment/)
    expect(() => openInputDocument(new TextEncoder().encode('{"input": [1.5]}'), c)).toThrow(InputCommitmentError)
    expect(() => openInputDocument(new TextEncoder().encode('{"x": []}'), c)).toThrow(/not an input document/)
    expect(() => openInputDocument(new TextEncoder().encode('nope'), c)).toThrow(/not JSON/)
    expect(() => openInputDocument(new TextEncoder().encode(`{"input": ["${FIELD_MODULUS}"]}`), c)).toThrow(/cannot be hashed/)
  })
})
