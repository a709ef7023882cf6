import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  dequantize,
  FieldEncodingError,
  FIELD_MODULUS,
  feltFromLeHex,
  feltToLeHex,
  fromFelt,
  MAX_ABS_FIELD_VALUE,
  quantize,
  toFelt,
} from '../../core/field.ts'

const signed = fc.bigInt({ min: -MAX_ABS_FIELD_VALUE, max: MAX_ABS_FIELD_VALUE })
const felt = fc.bigInt({ min: 0n, max: FIELD_MODULUS - 1n })

describe('core/field', () => {
  it('default: encodes small values as EZKL does', () => {
    expect(toFelt(0n)).toBe(0n)
    expect(toFelt(1n)).toBe(1n)
    expect(toFelt(-1n)).toBe(FIELD_MODULUS - 1n)
    expect(feltToLeHex(1n)).toBe(`01${'0'.repeat(62)}`)
    // The demo's sample input[0], -0.675048828125 at scale 12, as its witness encodes it.
    expect(fromFelt(feltFromLeHex('34f5ffef93f5e1439170b97948e833285d588181b64550b829a031e1724e6430'))).toBe(quantize(-0.675048828125, 12))
    expect(quantize(-0.675048828125, 12)).toBe(-2765n)
  })

  it('behavior: fromFelt(toFelt(q)) == q across the signed range', () => {
    fc.assert(fc.property(signed, (q) => fromFelt(toFelt(q)) === q))
    for (const q of [MAX_ABS_FIELD_VALUE, -MAX_ABS_FIELD_VALUE, 0n]) expect(fromFelt(toFelt(q))).toBe(q)
  })

  it('behavior: toFelt(q) is a field element, non-negative values map to themselves', () => {
    fc.assert(
      fc.property(signed, (q) => {
        const f = toFelt(q)
        return f >= 0n && f < FIELD_MODULUS && (q >= 0n ? f === q : f === FIELD_MODULUS + q)
      }),
    )
  })

  it('behavior: feltFromLeHex(feltToLeHex(f)) == f', () => {
    fc.assert(fc.property(felt, (f) => feltFromLeHex(feltToLeHex(f)) === f))
    fc.assert(fc.property(felt, (f) => feltFromLeHex(`0x${feltToLeHex(f)}`) === f))
    expect(feltFromLeHex(feltToLeHex(FIELD_MODULUS - 1n))).toBe(FIELD_MODULUS - 1n)
  })

  it('behavior: quantize rounds exact halves away from zero', () => {
    expect(quantize(0.5, 0)).toBe(1n)
    expect(quantize(-0.5, 0)).toBe(-1n)
    expect(quantize(1.5, 0)).toBe(2n)
    expect(quantize(-1.5, 0)).toBe(-2n)
    expect(quantize(2.5, 0)).toBe(3n)
    expect(quantize(-2.5, 0)).toBe(-3n)
    expect(quantize(0.5 / 4096, 12)).toBe(1n)
    expect(quantize(-0.5 / 4096, 12)).toBe(-1n)
    expect(quantize(2.5 / 4096, 12)).toBe(3n)
    expect(quantize(-2.5 / 4096, 12)).toBe(-3n)
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 12 }), (n, scale) => {
        const x = (n + 0.5) / 2 ** scale // exact in binary
        const q = quantize(x, scale)
        return q === (n >= 0 ? BigInt(n) + 1n : BigInt(n))
      }),
    )
  })

  it('behavior: quantize inverts dequantize on integers', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), fc.integer({ min: 0, max: 12 }), (q, scale) => {
        return quantize(dequantize(q, scale), scale) === q
      }),
    )
  })

  it('error: toFelt throws outside ±(R−1)/2', () => {
    expect(() => toFelt(MAX_ABS_FIELD_VALUE + 1n)).toThrow(FieldEncodingError)
    expect(() => toFelt(-MAX_ABS_FIELD_VALUE - 1n)).toThrow(FieldEncodingError)
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 2n ** 300n }), (d) => {
        expect(() => toFelt(MAX_ABS_FIELD_VALUE + d)).toThrow(FieldEncodingError)
        expect(() => toFelt(-MAX_ABS_FIELD_VALUE - d)).toThrow(FieldEncodingError)
      }),
    )
  })

  it('error: rejects non-field elements and malformed hex', () => {
    expect(() => fromFelt(FIELD_MODULUS)).toThrow(FieldEncodingError)
    expect(() => fromFelt(-1n)).toThrow(FieldEncodingError)
    expect(() => feltToLeHex(FIELD_MODULUS)).toThrow(FieldEncodingError)
    expect(() => feltFromLeHex('ff'.repeat(32))).toThrow(FieldEncodingError)
    expect(() => feltFromLeHex('00')).toThrow(FieldEncodingError)
    expect(() => quantize(Number.NaN, 12)).toThrow(FieldEncodingError)
  })
})
