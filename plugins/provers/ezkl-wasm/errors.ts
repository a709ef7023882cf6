/** Errors of the ezkl-wasm prover. Input errors live in core/input.ts and are re-exported here. */

export { InputOutOfRangeError, InputShapeError } from '../../../core/input.ts'

/**
 * The engine failed, or returned something unusable, or its worker died.
 *
 * retryable: true when the failure is about the worker rather than the job (the worker crashed or
 * timed out; a fresh worker may succeed), false when the engine rejected the job itself (the same
 * job fails the same way again).
 */
export class ProverError extends Error {
  override readonly name = 'ProverError'
  readonly retryable: boolean
  constructor(message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.retryable = options.retryable ?? false
  }
}

/** The prover was disposed; it accepts no more jobs. */
export class ProverDisposedError extends Error {
  override readonly name = 'ProverDisposedError'
  readonly retryable: boolean = false
  constructor() {
    super('the ezkl-wasm prover has been disposed')
  }
}
