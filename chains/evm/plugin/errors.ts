/**
 * Errors of the EVM chain plugin. A gateway revert that retrying cannot fix is a
 * {@link GatewayRejectedError} (non-retryable, with the decoded custom error); RPC and network
 * failures are {@link ChainTransientError}s (retryable).
 */
import { BaseError, ContractFunctionRevertedError } from 'viem'
import { ChainTransientError, SertnError, type SertnErrorOptions } from '../../../core/errors.ts'
import type { RequestStatus } from '../../../core/types.ts'

export { ChainTransientError }

/** A gateway custom error as decoded from revert data. */
export type DecodedRevert = { errorName: string; args: readonly unknown[] }

function formatArgs(args: readonly unknown[]): string {
  return args.map((a) => (typeof a === 'bigint' ? a.toString() : typeof a === 'string' ? a : JSON.stringify(a))).join(', ')
}

/** The gateway refused the call for a reason that retrying will not change. */
export class GatewayRejectedError extends SertnError {
  override name = 'GatewayRejectedError'
  readonly errorName: string
  readonly args: readonly unknown[]
  constructor(what: string, revert: DecodedRevert, options: SertnErrorOptions = {}) {
    super(`${what}: the contract reverted with ${revert.errorName}(${formatArgs(revert.args)})`, { ...options, retryable: false })
    this.errorName = revert.errorName
    this.args = revert.args
  }
}

/** The verifier rejected the proof for the request's input and the claimed output. */
export class InvalidProofError extends GatewayRejectedError {
  override name = 'InvalidProofError'
}

/** The delivered input or output does not fit the request (input mismatch, output shape). */
export class InvalidResultError extends GatewayRejectedError {
  override name = 'InvalidResultError'
}

/** The model's circuit changed after the request was made: it can no longer be fulfilled. */
export class ModelVersionChangedError extends GatewayRejectedError {
  override name = 'ModelVersionChangedError'
}

/** The model is unknown to the hub, or its current circuit is not recorded as deployed on the requesting chain. */
export class ModelNotDeployedError extends GatewayRejectedError {
  override name = 'ModelNotDeployedError'
}

/** The request's deadline passed: it can only be refunded. */
export class RequestExpiredError extends GatewayRejectedError {
  override name = 'RequestExpiredError'
}

/** The request was settled in a way that conflicts with this call (e.g. fulfil after a refund). */
export class RequestSettledError extends GatewayRejectedError {
  override name = 'RequestSettledError'
  constructor(
    what: string,
    revert: DecodedRevert,
    readonly status: RequestStatus,
    options: SertnErrorOptions = {},
  ) {
    super(`${what} (the request is ${status})`, revert, options)
  }
}

/** This node's account is not authorised on the gateway. */
export class UnauthorizedNodeError extends GatewayRejectedError {
  override name = 'UnauthorizedNodeError'
}

/**
 * What a Sertn contract's custom error means for the node, by error name: the gateway's and the
 * market's rejections of a result share their classes (and so their retry verdicts and the
 * workflow's error codes). Names not listed are {@link GatewayRejectedError}s.
 */
const REJECTIONS: Record<string, new (what: string, revert: DecodedRevert, options?: SertnErrorOptions) => GatewayRejectedError> = {
  GatewayInvalidProof: InvalidProofError,
  MarketInvalidProof: InvalidProofError,
  GatewayInputMismatch: InvalidResultError,
  GatewayOutputShapeMismatch: InvalidResultError,
  MarketInputMismatch: InvalidResultError,
  MarketOutputShapeMismatch: InvalidResultError,
  GatewayModelVersionChanged: ModelVersionChangedError,
  MarketUnknownModel: ModelNotDeployedError,
  MarketModelNotDeployed: ModelNotDeployedError,
  GatewayRequestExpired: RequestExpiredError,
  MarketRequestExpired: RequestExpiredError,
  GatewayUnauthorizedNode: UnauthorizedNodeError,
  MarketUnauthorizedNode: UnauthorizedNodeError,
}

/** The non-retryable error for a contract's rejection `revert` of the call `what`. */
export function rejectionOf(what: string, revert: DecodedRevert, cause: unknown): GatewayRejectedError {
  return new (REJECTIONS[revert.errorName] ?? GatewayRejectedError)(what, revert, { cause })
}

/**
 * The custom error a failed call reverted with; throws when there is none: a non-retryable error
 * for an undecodable revert (a panic, a reason string), a retryable one for anything else.
 */
export function revertOrThrow(what: string, err: unknown): DecodedRevert {
  const revert = decodedRevertOf(err)
  if (revert) return revert
  if (isRevert(err)) throw new GatewayRejectedError(what, { errorName: 'an undecodable revert', args: [] }, { cause: err })
  throw transient(what, err)
}

/** The custom error a failed contract call reverted with, if it was a revert with decodable data. */
export function decodedRevertOf(err: unknown): DecodedRevert | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
  if (!(reverted instanceof ContractFunctionRevertedError) || !reverted.data) return undefined
  return { errorName: reverted.data.errorName, args: reverted.data.args ?? [] }
}

/** Whether `err` is a contract revert at all (decodable or not: panics, empty reverts, reason strings). */
export function isRevert(err: unknown): boolean {
  return err instanceof BaseError && err.walk((e) => e instanceof ContractFunctionRevertedError) instanceof ContractFunctionRevertedError
}

/** Wraps anything that is not already a SertnError as a retryable chain error. */
export function transient(what: string, err: unknown): SertnError {
  if (err instanceof SertnError) return err
  const short = err instanceof BaseError ? err.shortMessage : err instanceof Error ? err.message : String(err)
  return new ChainTransientError(`${what}: ${short}`, { cause: err })
}
