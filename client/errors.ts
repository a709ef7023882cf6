/**
 * The client's errors. Every one derives from {@link SertnError} (short message, details, cause,
 * `retryable`). A contract's refusal is a {@link ContractRejectedError} naming the custom error
 * (`errorName`, `args`) and, for a requester's mistake, what to change (`hint`, from the one table
 * of contract rejections, chains/evm/plugin/rejections.ts); the commonest have their own classes.
 */
import type { Hex } from 'viem'
import { decodedRevertOf, rejectionFor } from '../chains/evm/plugin/rejections.ts'
import type { DecodedRevert } from '../chains/evm/plugin/errors.ts'
import { SertnError, type SertnErrorOptions } from '../core/errors.ts'
import type { CallbackStatus, InferenceErrorCode } from '../core/types.ts'

export { SertnError }

const formatArgs = (args: readonly unknown[]) =>
  args.map((a) => (typeof a === 'bigint' ? a.toString() : typeof a === 'string' ? a : JSON.stringify(a))).join(', ')

/**
 * A Sertn contract refused a call with a custom error. `hint` says what to change when the
 * refusal is the caller's to fix; the message leads with it.
 */
export class ContractRejectedError extends SertnError {
  override name = 'ContractRejectedError'
  /** The contract's custom error, e.g. `GatewayInsufficientPayment`. */
  readonly errorName: string
  /** Its arguments, as decoded. */
  readonly args: readonly unknown[]
  /** What the caller should change (undefined: not the caller's mistake). */
  readonly hint: string | undefined
  constructor(what: string, revert: DecodedRevert, options: SertnErrorOptions = {}) {
    const { hint, retryable } = rejectionFor(revert.errorName)
    const hintText = hint?.(revert.args)
    super(`${what}: ${hintText ?? 'the contract refused it'} (${revert.errorName}(${formatArgs(revert.args)}))`, { retryable, ...options })
    this.errorName = revert.errorName
    this.args = revert.args
    this.hint = hintText
  }
}

/** The model id is not registered on the chain's registry (`GatewayUnknownModel`, `ModelRegistryUnknownModel`). */
export class ModelNotFoundError extends ContractRejectedError {
  override name = 'ModelNotFoundError'
  get modelId(): Hex {
    return this.args[0] as Hex
  }
}

/** The request paid less than the gateway's quote (`GatewayInsufficientPayment`): pay at least `required`. */
export class InsufficientPaymentError extends ContractRejectedError {
  override name = 'InsufficientPaymentError'
  /** Wei the request must pay at least. */
  get required(): bigint {
    return this.args[0] as bigint
  }
  /** Wei it paid. */
  get paid(): bigint {
    return this.args[1] as bigint
  }
}

/** The callback gas limit is above the gateway's cap (`GatewayCallbackGasLimitTooHigh`): lower it to `max` or less. */
export class CallbackGasLimitTooHighError extends ContractRejectedError {
  override name = 'CallbackGasLimitTooHighError'
  get requested(): bigint {
    return this.args[0] as bigint
  }
  /** The gateway's cap. */
  get max(): bigint {
    return this.args[1] as bigint
  }
}

/** The input does not fit the model (`GatewayInputShapeMismatch`, `GatewayInputOutOfRange`, …). */
export class InvalidInputError extends ContractRejectedError {
  override name = 'InvalidInputError'
}

const CLASSES: Readonly<Record<string, typeof ContractRejectedError>> = {
  GatewayUnknownModel: ModelNotFoundError,
  ModelRegistryUnknownModel: ModelNotFoundError,
  GatewayInsufficientPayment: InsufficientPaymentError,
  GatewayCallbackGasLimitTooHigh: CallbackGasLimitTooHighError,
  GatewayInputShapeMismatch: InvalidInputError,
  GatewayInputOutOfRange: InvalidInputError,
  GatewayInputTooLarge: InvalidInputError,
  GatewayInvalidInputCommitment: InvalidInputError,
  GatewayMissingInputRef: InvalidInputError,
}

/** The typed error for a contract's refusal `revert` of the call `what`. */
export function contractRejectedError(what: string, revert: DecodedRevert, cause?: unknown): ContractRejectedError {
  const Class = CLASSES[revert.errorName] ?? ContractRejectedError
  return new Class(what, revert, cause === undefined ? {} : { cause })
}

/**
 * Re-throws a failed contract call `what` as a typed error: a decodable revert as its
 * {@link ContractRejectedError}; anything else (RPC down, a panic) as a {@link SertnError} with the
 * cause, retryable unless it was a revert.
 */
export function rethrowCall(what: string, err: unknown): never {
  if (err instanceof SertnError) throw err
  const revert = decodedRevertOf(err)
  if (revert) throw contractRejectedError(what, revert, err)
  const short = (err as { shortMessage?: string })?.shortMessage ?? (err instanceof Error ? err.message : String(err))
  throw new SertnError(`${what}: ${short}`, { cause: err, retryable: !/revert/i.test(short) })
}

/** A request ended without a result: the node (or the hub) failed it, and the requester was refunded. */
export class InferenceFailedError extends SertnError {
  override name = 'InferenceFailedError'
  constructor(
    readonly key: string,
    /** Why, in the gateway's codes. */
    readonly code: InferenceErrorCode,
    readonly reason: string,
    readonly callbackStatus: CallbackStatus,
    readonly transactionHash: Hex,
  ) {
    super(`request ${key} failed: ${code}${reason ? `: ${reason}` : ''} (refunded; error callback ${callbackStatus.toLowerCase()})`, {
      details: `transaction ${transactionHash}`,
    })
  }
}

/** A request's deadline passed without a result and it was refunded. */
export class InferenceRefundedError extends SertnError {
  override name = 'InferenceRefundedError'
  constructor(
    readonly key: string,
    readonly callbackStatus: CallbackStatus,
    readonly transactionHash: Hex,
  ) {
    super(`request ${key} was refunded: its deadline passed without a result`, { details: `transaction ${transactionHash}` })
  }
}

/** {@link waitForResult} gave up: its timeout passed first. */
export class WaitTimeoutError extends SertnError {
  override name = 'WaitTimeoutError'
  constructor(
    readonly key: string,
    readonly timeoutMs: number,
    /** The last hop seen, if any. */
    readonly lastHop: string | undefined,
  ) {
    super(`request ${key}: no result within ${timeoutMs} ms${lastHop ? ` (last hop: ${lastHop})` : ''}`, {
      retryable: true,
      details: 'Wait again with a longer timeout; the request stays pending until its deadline, then it can be refunded.',
    })
  }
}

/** No such request on the gateway. */
export class RequestNotFoundError extends SertnError {
  override name = 'RequestNotFoundError'
}

/** Storage could not give what {@link verifyResult} needs (not the result's fault: try again or another gateway). */
export class StorageReadError extends SertnError {
  override name = 'StorageReadError'
}
