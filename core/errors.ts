/**
 * Errors: one base class with a literal `name`, a short message, optional details and cause, and a
 * `retryable` flag that Temporal retry policies and callers act on. The class name becomes the
 * Temporal failure `type`, so the non-retryable ones can be listed by name.
 */

export type SertnErrorOptions = {
  /** More context, printed after the message. */
  details?: string
  cause?: unknown
  /** Whether trying again may succeed (default false). */
  retryable?: boolean
}

export class SertnError extends Error {
  override name = 'SertnError'
  readonly retryable: boolean
  readonly details: string | undefined
  /** The message without its details: one line for users. */
  readonly shortMessage: string

  constructor(shortMessage: string, options: SertnErrorOptions = {}) {
    super(options.details ? `${shortMessage}\n\nDetails: ${options.details}` : shortMessage, { cause: options.cause })
    this.retryable = options.retryable ?? false
    this.details = options.details
    this.shortMessage = shortMessage
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
] as const

/** Whether `err` says it may pass on retry. */
export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'retryable' in err && (err as { retryable: unknown }).retryable === true
}
