/**
 * `@sertn/client`: typed viem actions over a viem client for contracts and front ends that consume
 * Sertn's verified inference. Each action is a plain function taking a viem client first
 * (`quote(client, {...})`); {@link sertnActions} binds them to a gateway for `client.extend(...)`.
 *
 * @example
 * import { createPublicClient, http } from 'viem'
 * import { sertnActions } from '@sertn/client'
 * const spoke = createPublicClient({ transport: http(rpcUrl) }).extend(sertnActions({ gateway }))
 * const model = await spoke.getModel({ modelId })
 */
export { getModel, type GetModelErrorType, type GetModelParameters, type GetModelReturnType, type SertnModel } from './actions/getModel.ts'
export {
  getRequest,
  type GetRequestParameters,
  type GetRequestReturnType,
  type ResultStorage,
  type SeenAt,
  type SertnRequest,
} from './actions/getRequest.ts'
export { quote, type QuoteErrorType, type QuoteParameters, type QuoteReturnType } from './actions/quote.ts'
export {
  requestInference,
  type RequestInferenceErrorType,
  type RequestInferenceParameters,
  type RequestInferenceReturnType,
} from './actions/requestInference.ts'
export {
  VERIFY_PARTS,
  verifyResult,
  type VerifyCheck,
  type VerifyPart,
  type VerifyResultParameters,
  type VerifyResultReturnType,
} from './actions/verifyResult.ts'
export {
  HOPS,
  type Hop,
  type HopName,
  waitForResult,
  type WaitForResultParameters,
  type WaitForResultReturnType,
} from './actions/waitForResult.ts'
export { type SertnActions, type SertnActionsConfig, sertnActions } from './decorator.ts'
export {
  CallbackGasLimitTooHighError,
  ContractRejectedError,
  contractRejectedError,
  InferenceFailedError,
  InferenceRefundedError,
  InsufficientPaymentError,
  InvalidInputError,
  ModelNotFoundError,
  RequestNotFoundError,
  SertnError,
  StorageReadError,
  WaitTimeoutError,
} from './errors.ts'
export { InputOutOfRangeError, InputShapeError } from '../core/input.ts'
export type { LogRangeParameters, ReadClient, RequestTarget } from './internal.ts'
export { type StorageOption, storageReader } from './storage.ts'
