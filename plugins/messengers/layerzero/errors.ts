/** Errors of the LayerZero messenger, and how the local agents read failed transactions. */
import {
  BaseError,
  CallExecutionError,
  ContractFunctionRevertedError,
  decodeErrorResult,
  HttpRequestError,
  isHex,
  TimeoutError,
  type Abi,
  type Hex,
} from 'viem'
import { SertnError, type SertnErrorOptions } from '../../../core/errors.ts'

/** Something about LayerZero went wrong. */
export class LayerZeroError extends SertnError {
  override name = 'LayerZeroError'
}

/** Deploying or wiring the LayerZero contracts failed (a reverted or skipped configuration step). */
export class LayerZeroDeployError extends LayerZeroError {
  override name = 'LayerZeroDeployError'
}

/** The DVN's instruction (verify, commitVerification) failed or was skipped on the destination. */
export class PacketVerificationError extends LayerZeroError {
  override name = 'PacketVerificationError'
  constructor(
    readonly guid: Hex,
    shortMessage: string,
    options: SertnErrorOptions = {},
  ) {
    super(shortMessage, options)
  }
}

/** `EndpointV2.lzReceive` of a packet reverted (the port or the recipient rejected it, or ran out of gas). */
export class PacketExecutionError extends LayerZeroError {
  override name = 'PacketExecutionError'
  constructor(
    readonly guid: Hex,
    /** The revert reason, decoded when the ABI knows it. */
    readonly reason: string,
    options: SertnErrorOptions = {},
  ) {
    super(`lzReceive of packet ${guid} reverted: ${reason}`, options)
  }
}

/**
 * An agent's transaction never made it: another transaction of the same account, with the same
 * nonce and other data, was mined instead (a sender outside the agents' lock on that account, such
 * as another messenger's relayer paying with the same key). The packet is tried again.
 */
export class TransactionReplacedError extends LayerZeroError {
  override name = 'TransactionReplacedError'
  constructor(
    readonly transactionHash: Hex,
    readonly replacedBy: Hex,
    reason: string,
  ) {
    super(`transaction ${transactionHash} was ${reason} by ${replacedBy} (same account and nonce)`, {
      details: 'another sender used the account; the packet is tried again',
      retryable: true,
    })
  }
}

/** A packet the agent cannot handle as it is (undecodable, no lzReceive option). */
export class PacketMalformedError extends LayerZeroError {
  override name = 'PacketMalformedError'
}

/** An agent was used after it was disposed. */
export class AgentDisposedError extends LayerZeroError {
  override name = 'AgentDisposedError'
}

/** Decodes revert data: `Error(string)`, `Panic(uint256)`, a custom error of `abi`, or the raw data. */
export function decodeRevertData(data: Hex, abi: Abi = []): string {
  if (data === '0x') return 'reverted without a reason'
  try {
    const { errorName, args } = decodeErrorResult({ abi, data })
    if (errorName === 'Error') return String(args?.[0])
    return `${errorName}(${(args ?? []).map(String).join(', ')})`
  } catch {
    return `custom error ${data.length > 138 ? `${data.slice(0, 138)}…` : data}`
  }
}

/** The raw revert data in a viem error, if it carries any. */
export function revertDataOf(err: unknown): Hex | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
  if (reverted instanceof ContractFunctionRevertedError && reverted.raw) return reverted.raw
  let data: Hex | undefined
  err.walk((e) => {
    const d = (e as { data?: unknown }).data
    if (data === undefined && typeof d === 'string' && isHex(d) && (d === '0x' || d.length >= 10)) data = d
    return false
  })
  return data
}

/** Why a call or transaction failed: its decoded revert reason, else the error's first line. */
export function failureReason(err: unknown, abi: Abi = []): string {
  if (err instanceof PacketExecutionError) return err.reason
  const data = revertDataOf(err)
  if (data !== undefined) return decodeRevertData(data, abi)
  if (err instanceof BaseError) {
    const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
    if (reverted instanceof ContractFunctionRevertedError) return reverted.reason ?? reverted.shortMessage
    const call = err.walk((e) => e instanceof CallExecutionError)
    if (call instanceof BaseError) return call.details || call.shortMessage
    return err.details || err.shortMessage
  }
  const message = err instanceof Error ? err.message : String(err)
  return (message.split('\n')[0] ?? message).slice(0, 500)
}

/** Whether `err` is the RPC node being unreachable or timing out (not the chain rejecting anything). */
export function isTransportError(err: unknown): boolean {
  if (err instanceof BaseError) return Boolean(err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError))
  const code = (err as { code?: unknown; cause?: { code?: unknown } } | undefined)?.cause?.code
  return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code)
}
