/**
 * Errors: one base class with a literal `name`, a short message, optional details and cause, a
 * `retryable` flag that Temporal retry policies and callers act on, and the `errorCode` a request that
 * cannot be served because of it is failed with. The class name becomes the Temporal failure
 * `type`, so the non-retryable ones can be listed by name; the code travels in the failure's
 * details ({@link FailureDetails}).
 *
 * Pure: the request workflow imports this module (no Node APIs, no I/O).
 */
import { INFERENCE_ERROR_CODES, type InferenceErrorCode } from './types.ts'

export type SertnErrorOptions = {
  /** More context, printed after the message. */
  details?: string
  cause?: unknown
  /** Whether trying again may succeed (default false). */
  retryable?: boolean
  /** The code a request that fails with this error is failed with (default: the class's {@link SertnError.errorCode}). */
  errorCode?: InferenceErrorCode
}

export class SertnError extends Error {
  /**
   * The code a request that fails with an error of this class is failed with; a subclass that
   * knows sets its own. Undefined: the error says nothing about it (the workflow decides by the
   * stage that failed).
   */
  static readonly errorCode: InferenceErrorCode | undefined = undefined

  override name = 'SertnError'
  readonly retryable: boolean
  readonly details: string | undefined
  /** The message without its details: one line for users. */
  readonly shortMessage: string
  /** The code a request that fails with this error is failed with, if the error knows (see the static `errorCode`). */
  readonly errorCode: InferenceErrorCode | undefined

  constructor(shortMessage: string, options: SertnErrorOptions = {}) {
    super(options.details ? `${shortMessage}\n\nDetails: ${options.details}` : shortMessage, { cause: options.cause })
    this.retryable = options.retryable ?? false
    this.details = options.details
    this.shortMessage = shortMessage
    this.errorCode = options.errorCode ?? (new.target as typeof SertnError).errorCode
  }
}

/** Configuration is missing or invalid. */
export class ConfigError extends SertnError {
  override name = 'ConfigError'
}

/** A plugin was used after `dispose()` or without what it needs. */
export class PluginError extends SertnError {
  override name = 'PluginError'
  constructor(
    readonly plugin: string,
    shortMessage: string,
    options: SertnErrorOptions = {},
  ) {
    super(`[${plugin}] ${shortMessage}`, options)
  }
}

/** A request that can never be served (unknown model, bad input): it ends in `fail` and a refund. */
export class BadRequestError extends SertnError {
  static override readonly errorCode = 'InvalidInput'
  override name = 'BadRequestError'
}

/** A chain call failed in a way that may pass on retry (RPC down, nonce race, not yet mined). */
export class ChainTransientError extends SertnError {
  override name = 'ChainTransientError'
  constructor(shortMessage: string, options: SertnErrorOptions = {}) {
    super(shortMessage, { retryable: true, ...options })
  }
}

/** Stored data does not match its recorded hash. */
export class IntegrityError extends SertnError {
  override name = 'IntegrityError'
}

/**
 * Names of error classes that retrying cannot fix, across core and the bundled plugins, for Temporal
 * retry policies (the workflow imports this list; activities also mark such errors non-retryable).
 */
export const NON_RETRYABLE_ERROR_TYPES = [
  // core
  'ConfigError',
  'BadRequestError',
  'IntegrityError',
  'InputShapeError',
  'InputOutOfRangeError',
  'ManifestError',
  'ArtifactHashMismatchError',
  'InsecureSrsError',
  'UnknownModelError',
  'UnknownChainError',
  'ModelNotResolvedError',
  'ModelVersionMismatchError',
  'ProverCapacityError',
  'CircuitMismatchError',
  'VerifyingKeyMismatchError',
  'ArtifactIndexError',
  'InputCommitmentError',
  // chains/evm: the gateway refused for good
  'GatewayRejectedError',
  'InvalidProofError',
  'InvalidResultError',
  'ModelVersionChangedError',
  'RequestExpiredError',
  'RequestSettledError',
  'UnauthorizedNodeError',
  'NotAssignedError',
] as const

/** Whether `err` says it may pass on retry. */
export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'retryable' in err && (err as { retryable: unknown }).retryable === true
}

/**
 * What an activity's failure carries as its first detail (`ApplicationFailure.details[0]`): the
 * code of the error it failed with (null: the error has none). Failures recorded before the
 * activities carried it have no details at all.
 */
export type FailureDetails = { code: InferenceErrorCode | null }

/** Whether `code` is one of the gateway's error codes. */
export function isInferenceErrorCode(code: unknown): code is InferenceErrorCode {
  return (INFERENCE_ERROR_CODES as readonly unknown[]).includes(code)
}

/** The details an activity attaches to the failure for `err`: its {@link SertnError.errorCode}. */
export function failureDetailsOf(err: unknown): FailureDetails {
  return { code: err instanceof SertnError && err.errorCode !== undefined ? err.errorCode : null }
}

/**
 * The details a failure carries, read back (in the workflow): undefined if it carries none (a
 * failure recorded before activities attached them, or one from outside them); a code that is
 * not a known code reads as none.
 */
export function readFailureDetails(details: readonly unknown[] | null | undefined): FailureDetails | undefined {
  const first = details?.[0]
  if (typeof first !== 'object' || first === null || !('code' in first)) return undefined
  return { code: isInferenceErrorCode(first.code) ? first.code : null }
}
