import { describe, expect, it } from 'vitest'
import { checkQuantizedInput, checkRealInput, InputOutOfRangeError, InputShapeError, shapeSize } from '../../core/input.ts'
import type { ModelManifest } from '../../core/manifest.ts'

const manifest = { inputShape: [1, 4], inputScale: 12, maxAbsInput: 16384 } as unknown as ModelManifest

describe('core/input', () => {
  it('default: accepts an input of the right length within ±maxAbsInput, bounds included', () => {
    expect(shapeSize([1, 4])).toBe(4)
    expect(() => checkQuantizedInput(manifest, [0n, 1n, -16384n, 16384n])).not.toThrow()
    expect(() => checkRealInput(manifest, [0, 0.5, -4, 4])).not.toThrow()
  })

  it('error: wrong length throws InputShapeError', () => {
    const err = (() => {
      try {
        checkQuantizedInput(manifest, [1n, 2n, 3n])
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(InputShapeError)
    expect(err).toMatchObject({ name: 'InputShapeError', retryable: false, expected: 4, actual: 3 })
    expect(() => checkRealInput(manifest, [1, 2, 3, 4, 5])).toThrow(InputShapeError)
  })

  it('error: a value beyond the bound throws InputOutOfRangeError naming its index', () => {
    expect(() => checkQuantizedInput(manifest, [0n, 0n, 16385n, 0n])).toThrow(InputOutOfRangeError)
    expect(() => checkQuantizedInput(manifest, [0n, -16385n, 0n, 0n])).toThrow(/input\[1\]/)
    expect(() => checkRealInput(manifest, [0, 0, 0, 4.001])).toThrow(InputOutOfRangeError)
    expect(() => checkRealInput(manifest, [0, Number.NaN, 0, 0])).toThrow(InputOutOfRangeError)
  })
})
