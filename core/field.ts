/**
 * The circuit's field encoding of public instances (BN254 scalar field).
 *
 * EZKL quantises a real value x at scale s to the integer q = round(x · 2^s), rounding half away
 * from zero, and places q in the field: q itself when q ≥ 0, R − |q| when q < 0. Contracts do the
 * same (`FieldEncoding.sol`), and the two must agree on every value: see test/unit/field.test.ts.
 */

/** The BN254 scalar field modulus R. */
export const FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617n

/** The largest magnitude a signed value may have and still be encoded unambiguously: (R − 1) / 2. */
export const MAX_ABS_FIELD_VALUE = (FIELD_MODULUS - 1n) / 2n

export class FieldEncodingError extends Error {
  override readonly name = 'FieldEncodingError'
}

/** Encodes a signed integer as a field element: q when q ≥ 0, R − |q| when q < 0. */
export function toFelt(q: bigint): bigint {
  if (q > MAX_ABS_FIELD_VALUE || q < -MAX_ABS_FIELD_VALUE)
    throw new FieldEncodingError(`value ${q} is outside the encodable range ±(R−1)/2`)
  return q >= 0n ? q : FIELD_MODULUS + q
}

/** Decodes a field element back to the signed integer it encodes (the inverse of {@link toFelt}). */
export function fromFelt(felt: bigint): bigint {
  if (felt < 0n || felt >= FIELD_MODULUS) throw new FieldEncodingError(`${felt} is not a field element`)
  return felt > MAX_ABS_FIELD_VALUE ? felt - FIELD_MODULUS : felt
}

/** round(x · 2^scale), half away from zero, exactly as EZKL quantises inputs. */
export function quantize(x: number, scale: number): bigint {
  if (!Number.isFinite(x)) throw new FieldEncodingError(`cannot quantise ${x}`)
  const scaled = x * 2 ** scale
  const r = Math.sign(scaled) * Math.round(Math.abs(scaled))
  if (!Number.isSafeInteger(r)) throw new FieldEncodingError(`${x} at scale ${scale} exceeds 2^53`)
  return BigInt(r)
}

/** q / 2^scale as a float. */
export function dequantize(q: bigint, scale: number): number {
  return Number(q) / 2 ** scale
}

/** A field element from EZKL's little-endian hex (proof.json `instances`, witness `outputs`). */
export function feltFromLeHex(hex: string): bigint {
  const h = hex.startsWith('0x') ? hex.slice(2) : hex
  if (!/^[0-9a-fA-F]{64}$/.test(h)) throw new FieldEncodingError(`not a 32-byte little-endian hex felt: ${hex}`)
  let be = ''
  for (let i = 62; i >= 0; i -= 2) be += h.slice(i, i + 2)
  const v = BigInt(`0x${be}`)
  if (v >= FIELD_MODULUS) throw new FieldEncodingError(`${hex} is not a field element`)
  return v
}

/** EZKL's little-endian hex for a field element (the inverse of {@link feltFromLeHex}). */
export function feltToLeHex(felt: bigint): string {
  if (felt < 0n || felt >= FIELD_MODULUS) throw new FieldEncodingError(`${felt} is not a field element`)
  const be = felt.toString(16).padStart(64, '0')
  let le = ''
  for (let i = 62; i >= 0; i -= 2) le += be.slice(i, i + 2)
  return le
}
