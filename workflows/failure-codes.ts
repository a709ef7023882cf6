/**
 * Which code the request workflow fails a request with when an activity failed for good. Part of
 * the workflow bundle: pure (types, constants, and functions of them; no Node APIs, no viem).
 *
 * The code comes with the failure: the activities put the error's code (`SertnError.errorCode`;
 * for a contract's rejection, the code the table of contract rejections gives,
 * chains/evm/plugin/rejections.ts) in the failure's details (`FailureDetails`, core/errors.ts). A failure
 * that carries no code (an error that does not know, a timeout) is failed with its stage's code.
 *
 * Failures recorded before the activities carried details have none; for those, and only those,
 * {@link LEGACY_FAILURE_CODES} gives the code the workflow gave them then, by failure type, so that
 * a workflow started before the change replays to the same decisions.
 */
import { readFailureDetails } from '../core/errors.ts'
import type { InferenceErrorCode } from '../core/types.ts'
import type { RequestStatusView } from './messages.ts'

/**
 * The codes of failures recorded without details (before the activities carried their codes), by
 * failure type: the workflow's own list until then. Frozen: new errors declare their code on their
 * class (`static errorCode`) or in the table of contract rejections, never here.
 */
export const LEGACY_FAILURE_CODES: Readonly<Record<string, InferenceErrorCode>> = Object.freeze({
  UnknownModelError: 'ModelUnavailable',
  ModelNotResolvedError: 'ModelUnavailable',
  ModelVersionMismatchError: 'ModelUnavailable',
  CircuitMismatchError: 'ModelUnavailable',
  VerifyingKeyMismatchError: 'ModelUnavailable',
  ArtifactIndexError: 'ModelUnavailable',
  InputCommitmentError: 'InvalidInput',
  ManifestError: 'ModelUnavailable',
  ArtifactHashMismatchError: 'ModelUnavailable',
  InsecureSrsError: 'ModelUnavailable',
  ModelVersionChangedError: 'ModelUnavailable',
  InputShapeError: 'InvalidInput',
  InputOutOfRangeError: 'InvalidInput',
  BadRequestError: 'InvalidInput',
  InvalidProofError: 'ProvingFailed',
  InvalidResultError: 'ProvingFailed',
  RequestExpiredError: 'Timeout',
  ModelNotDeployedError: 'ModelUnavailable',
  UnknownMarketError: 'ModelUnavailable',
})

/** The code for a failure that retries could not fix and that carries none, by the stage it stopped. */
export const STAGE_CODES: Readonly<Partial<Record<RequestStatusView['stage'], InferenceErrorCode>>> = Object.freeze({
  resolving: 'ModelUnavailable',
  'loading-input': 'InvalidInput',
  proving: 'ProvingFailed',
})

/**
 * The code an application failure of `type` with `details` says to fail the request with:
 * the code in its details; for a failure without details, {@link LEGACY_FAILURE_CODES}; undefined
 * if it says none (then {@link STAGE_CODES} decides).
 */
export function codeOfFailure(type: string, details: readonly unknown[] | null | undefined): InferenceErrorCode | undefined {
  const carried = readFailureDetails(details)
  if (carried) return carried.code ?? undefined
  return Object.hasOwn(LEGACY_FAILURE_CODES, type) ? LEGACY_FAILURE_CODES[type] : undefined
}
