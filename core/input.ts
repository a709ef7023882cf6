/**
 * Checks on a model input before any engine sees it.
 *
 * The circuit does not bound its inputs by itself: a value beyond the calibrated range still yields
 * a witness and a valid proof, of an output the float model never produces (intermediate sums wrap
 * past the lookup range). Every input is therefore checked against the manifest's `maxAbsInput`.
 */
import { SertnError } from './errors.ts'
import type { ModelManifest } from './manifest.ts'

/** The input has the wrong number of elements for the model's input shape. */
export class InputShapeError extends SertnError {
  static override readonly errorCode = 'InvalidInput'
  override name = 'InputShapeError'
  constructor(
    readonly expected: number,
    readonly actual: number,
    readonly shape: readonly number[],
  ) {
    super(`input has ${actual} elements but the model's input shape [${shape.join(', ')}] needs ${expected}`)
  }
}

/** An input element lies outside the range the circuit was built for. */
export class InputOutOfRangeError extends SertnError {
  static override readonly errorCode = 'InvalidInput'
  override name = 'InputOutOfRangeError'
  constructor(
    readonly index: number,
    readonly value: bigint | number,
    readonly maxAbs: bigint | number,
  ) {
    super(`input[${index}] = ${value} is outside the model's range ±${maxAbs}`)
  }
}

/** The number of elements of a tensor of the given shape. */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1)
}

/**
 * Checks a quantised input (integers at the manifest's input scale).
 *
 * @throws {InputShapeError} when the length does not match the input shape
 * @throws {InputOutOfRangeError} when some |q| > maxAbsInput
 */
export function checkQuantizedInput(manifest: ModelManifest, inputQ: readonly bigint[]): void {
  checkLength(manifest, inputQ.length)
  const max = BigInt(manifest.maxAbsInput)
  inputQ.forEach((q, i) => {
    if (typeof q !== 'bigint' || q > max || q < -max) throw new InputOutOfRangeError(i, q, max)
  })
}

/**
 * Checks a real-valued input against the manifest's input bound (maxAbsInput / 2^inputScale).
 *
 * @throws {InputShapeError} when the length does not match the input shape
 * @throws {InputOutOfRangeError} when some |x| exceeds the bound, or x is not finite
 */
export function checkRealInput(manifest: ModelManifest, input: readonly number[]): void {
  checkLength(manifest, input.length)
  const bound = manifest.maxAbsInput / 2 ** manifest.inputScale
  input.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x) || Math.abs(x) > bound) throw new InputOutOfRangeError(i, x, bound)
  })
}

function checkLength(manifest: ModelManifest, length: number): void {
  const expected = shapeSize(manifest.inputShape)
  if (length !== expected) throw new InputShapeError(expected, length, manifest.inputShape)
}
