/**
 * Errors of the ezkl provers (WASM and native). Input errors live in core/input.ts and are
 * re-exported here. Both provers throw these same classes, so callers handle them alike.
 */
import { PluginError } from '../../../core/errors.ts'

export { InputOutOfRangeError, InputShapeError } from '../../../core/input.ts'

/**
 * The engine failed, or returned something unusable, or its worker or process died.
 *
 * retryable: true when the failure is about the worker or process rather than the job (it crashed
 * or timed out; a fresh one may succeed), false when the engine rejected the job itself (the same
 * job fails the same way again).
 */
export class ProverError extends PluginError {
  override name = 'ProverError'
  constructor(plugin: string, message: string, options: { retryable?: boolean; cause?: unknown; details?: string } = {}) {
    super(plugin, message, options)
  }
}

/** The prover was disposed; it accepts no more jobs. */
export class ProverDisposedError extends PluginError {
  override name = 'ProverDisposedError'
  constructor(plugin: string) {
    super(plugin, 'the prover has been disposed', { retryable: false })
  }
}
