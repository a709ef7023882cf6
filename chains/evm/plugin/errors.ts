/**
 * Errors of the EVM chain and market plugins. A contract revert is classified by the table of
 * contract rejections ({@link CONTRACT_REJECTIONS} in ./rejections.ts): one that retrying cannot fix
 * is a {@link GatewayRejectedError} (non-retryable, with the decoded custom error), one that may pass
 * on retry a {@link TransientRevertError}; RPC and network failures are {@link ChainTransientError}s
 * (retryable).
 */
import { BaseError, ContractFunctionRevertedError } from 'viem'
import { ChainTransientError, SertnError, type SertnErrorOptions } from '../../../core/errors.ts'
import type { RequestStatus } from '../../../core/types.ts'

export { ChainTransientError }

/** A contract's custom error as decoded from revert data. */
export type DecodedRevert = { errorName: string; args: readonly unknown[] }

function formatArgs(args: readonly unknown[]): string {
  return args.map((a) => (typeof a === 'bigint' ? a.toString() : typeof a === 'string' ? a : JSON.stringify(a))).join(', ')
}

function revertMessage(what: string, revert: DecodedRevert): string {
  return `${what}: the contract reverted with ${revert.errorName}(${formatArgs(revert.args)})`
}

/** The contract refused the call for a reason that retrying will not change. */
export class GatewayRejectedError extends SertnError {
  override name = 'GatewayRejectedError'
  readonly errorName: string
  readonly args: readonly unknown[]
  constructor(what: string, revert: DecodedRevert, options: SertnErrorOptions = {}) {
    super(revertMessage(what, revert), { ...options, retryable: false })
    this.errorName = revert.errorName
    this.args = revert.args
  }
}

/** The contract refused the call for a reason that may be gone on retry (too little gas sent for the callback, a fee that rose). */
export class TransientRevertError extends ChainTransientError {
  override name = 'TransientRevertError'
  readonly errorName: string
  readonly args: readonly unknown[]
  constructor(what: string, revert: DecodedRevert, options: SertnErrorOptions = {}) {
    super(revertMessage(what, revert), { ...options, retryable: true })
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
  /** How the request was settled, where the caller found out. */
  readonly status: RequestStatus | undefined
  constructor(what: string, revert: DecodedRevert, options: SertnErrorOptions & { status?: RequestStatus } = {}) {
    const { status, ...rest } = options
    super(status ? `${what} (the request is ${status})` : what, revert, rest)
    this.status = status
  }
}

/**
 * The request id now names another request: the event this workflow serves was dropped by a reorg
 * deeper than the confirmations, and a new request took its id. Nothing may be sent for it (the new
 * request has its own workflow).
 */
export class RequestSupersededError extends SertnError {
  override name = 'RequestSupersededError'
  constructor(message: string, options: SertnErrorOptions = {}) {
    super(message, { ...options, retryable: false })
  }
}

/** This node's account is not authorised on the gateway. */
export class UnauthorizedNodeError extends GatewayRejectedError {
  override name = 'UnauthorizedNodeError'
}

/**
 * The request's job (in the hub's node registry) is assigned to another node, or to none: this node
 * may not answer it now.
 */
export class NotAssignedError extends GatewayRejectedError {
  override name = 'NotAssignedError'
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
