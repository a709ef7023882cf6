/** The EVM chain plugin (`evmChain`), its cursor stores and its errors. */
export { evmChain, MAX_REASON_BYTES, settleGasLimit, truncateReason, type EvmChainOptions } from './evm-chain.ts'
export { evmMarket, type EvmMarketOptions } from './market.ts'
export { FileCursorStore, MemoryCursorStore, cursorFileName, parseCursor, type CursorStore } from './cursor-store.ts'
export {
  ChainTransientError,
  GatewayRejectedError,
  InvalidProofError,
  InvalidResultError,
  ModelNotDeployedError,
  ModelVersionChangedError,
  NotAssignedError,
  RequestExpiredError,
  RequestSettledError,
  TransientRevertError,
  UnauthorizedNodeError,
} from './errors.ts'
export {
  CONTRACT_REJECTIONS,
  rejectionFor,
  rejectionOf,
  type ContractErrorName,
  type Rejection,
  type RejectionClass,
} from './rejections.ts'
export { AccountSender, feePolicyOf, isNonceError, type FeePolicy } from './sender.ts'
export type { ReorgInfo } from './watcher.ts'
