import type { Address, Hex } from 'viem'
import { getContractEvents, readContract } from 'viem/actions'
import { InferenceGateway, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { base64UrlIdOf, NO_STORAGE_REF } from '../../core/storage-ref.ts'
import {
  CALLBACK_STATUSES,
  INFERENCE_ERROR_CODES,
  REQUEST_STATUSES,
  requestKey,
  type CallbackStatus,
  type InferenceErrorCode,
  type RequestKey,
  type RequestStatus,
} from '../../core/types.ts'
import { RequestNotFoundError, rethrowCall } from '../errors.ts'
import { latestBlock, readChunked, resolveTarget, type LogRangeParameters, type ReadClient, type RequestTarget } from '../internal.ts'

export type GetRequestParameters = RequestTarget & LogRangeParameters

/** Where an event was seen. */
export type SeenAt = { transactionHash: Hex; blockNumber: bigint }

/** Where a node stored a result's output document and proof: the bytes32 refs the gateway recorded, and their storage ids. */
export type ResultStorage = {
  output: Hex
  proof: Hex
  /** The output document's Arweave id (undefined when the ref is zero: not stored). */
  outputId: string | undefined
  proofId: string | undefined
}

/** A request as its gateway stores it, with its events. */
export type SertnRequest = {
  key: RequestKey
  chainId: number
  gateway: Address
  requestId: bigint
  status: RequestStatus
  requester: Address
  modelId: Hex
  modelVersion: number
  callbackGasLimit: number
  /** Unix seconds after which it can only be refunded. */
  deadline: number
  /** Wei escrowed when it was made. */
  escrow: bigint
  /** The input at the model's input scale (its commitment, for a hashed input). */
  input: bigint[]
  /** Where a hashed input is stored (zero for a public input). */
  inputRef: Hex
  /** Whether it was made on a spoke (and served through the hub). */
  spoke: boolean
  requested: SeenAt
  /** A spoke request's message to the hub. */
  sentToHub?: SeenAt & { messageId: Hex }
  fulfilled?: SeenAt & {
    /** The node that was paid. */
    node: Address
    /** The verified output at the model's output scale (its commitment, for a hashed output). */
    output: bigint[]
    storage: ResultStorage
    callbackStatus: CallbackStatus
    callbackGasUsed: bigint
  }
  failed?: SeenAt & { node: Address; code: InferenceErrorCode; reason: string; callbackStatus: CallbackStatus }
  refunded?: SeenAt & { caller: Address; callbackStatus: CallbackStatus }
  /** A spoke request's settlement receipt to the hub. */
  receiptSent?: SeenAt & { status: RequestStatus; messageId: Hex }
}

export type GetRequestReturnType = SertnRequest

const seen = (l: { transactionHash: Hex | null; blockNumber: bigint | null }): SeenAt => ({
  transactionHash: l.transactionHash!,
  blockNumber: l.blockNumber!,
})
const callback = (s: number): CallbackStatus => CALLBACK_STATUSES[s] ?? 'Failed'
const refId = (ref: Hex) => (ref.toLowerCase() === NO_STORAGE_REF ? undefined : base64UrlIdOf(ref))

/**
 * Reads a request from its gateway, with its events on that chain: when it was made, sent to the
 * hub (a spoke's), fulfilled (node, output, storage refs, callback status), failed or refunded,
 * and its receipt to the hub.
 *
 * @throws {RequestNotFoundError} when the gateway has no such request
 *
 * @example
 * const r = await getRequest(client, { key: 'req:31338:0x…:1' })
 * if (r.fulfilled) console.log(r.fulfilled.output, r.fulfilled.storage.proofId, r.fulfilled.callbackStatus)
 */
export async function getRequest(client: ReadClient, params: GetRequestParameters): Promise<GetRequestReturnType> {
  const { gateway, requestId, chainId } = await resolveTarget(client, params)
  const key = requestKey(chainId, gateway, requestId)
  try {
    const stored = await readContract(client, {
      address: gateway,
      abi: InferenceGateway.abi,
      functionName: 'getRequest',
      args: [requestId],
    })
    if (stored.status === 0)
      throw new RequestNotFoundError(`request ${key}: the gateway has no such request`, {
        details: 'Check the gateway address, the request id and the chain.',
      })
    const to = await latestBlock(client)
    const from = params.fromBlock ?? 0n
    const { requested, fulfilled, failed, refunded, sent, receipts } = await readRequestEvents(client, {
      gateway,
      requestId,
      fromBlock: from,
      toBlock: to,
      blockRange: params.blockRange,
      spoke: true,
    })
    // The request made under this id now (a reorg may have replaced an earlier one).
    const made = requested.at(-1)
    if (!made)
      throw new RequestNotFoundError(`request ${key}: no InferenceRequested event from block ${from}`, {
        details: 'Pass a fromBlock at or before the block the request was made in.',
      })
    const f = fulfilled.at(-1)
    const x = failed.at(-1)
    const r = refunded.at(-1)
    const s = sent.at(-1)
    const receipt = receipts.at(-1)
    return {
      key,
      chainId,
      gateway,
      requestId,
      status: REQUEST_STATUSES[stored.status] ?? 'None',
      requester: stored.requester,
      modelId: made.args.modelId,
      modelVersion: made.args.modelVersion,
      callbackGasLimit: made.args.callbackGasLimit,
      deadline: Number(made.args.deadline),
      escrow: made.args.escrow,
      input: [...made.args.input],
      inputRef: made.args.inputRef,
      spoke: s !== undefined,
      requested: seen(made),
      ...(s ? { sentToHub: { ...seen(s), messageId: s.args.messageId } } : {}),
      ...(f
        ? {
            fulfilled: {
              ...seen(f),
              node: f.args.node,
              output: [...f.args.output],
              storage: {
                output: f.args.artifacts.output,
                proof: f.args.artifacts.proof,
                outputId: refId(f.args.artifacts.output),
                proofId: refId(f.args.artifacts.proof),
              },
              callbackStatus: callback(f.args.callbackStatus),
              callbackGasUsed: f.args.callbackGasUsed,
            },
          }
        : {}),
      ...(x
        ? {
            failed: {
              ...seen(x),
              node: x.args.node,
              code: INFERENCE_ERROR_CODES[x.args.code] ?? 'Unknown',
              reason: x.args.reason,
              callbackStatus: callback(x.args.callbackStatus),
            },
          }
        : {}),
      ...(r ? { refunded: { ...seen(r), caller: r.args.caller, callbackStatus: callback(r.args.callbackStatus) } } : {}),
      ...(receipt
        ? { receiptSent: { ...seen(receipt), status: REQUEST_STATUSES[receipt.args.status] ?? 'None', messageId: receipt.args.messageId } }
        : {}),
    }
  } catch (err) {
    rethrowCall(`getRequest ${key}`, err)
  }
}

/**
 * A request's events on its gateway between two blocks, read in `blockRange` chunks: the request,
 * its settlement (fulfilled, failed, refunded) and, on a spoke (`spoke`), its message to the hub and
 * its receipt (empty otherwise).
 */
export async function readRequestEvents(
  client: ReadClient,
  p: { gateway: Address; requestId: bigint; fromBlock: bigint; toBlock: bigint; blockRange: bigint | undefined; spoke: boolean },
) {
  const q = { address: p.gateway, args: { requestId: p.requestId }, strict: true } as const
  const read = <T>(f: (fromBlock: bigint, toBlock: bigint) => Promise<readonly T[]>) => readChunked(p.fromBlock, p.toBlock, p.blockRange, f)
  const [requested, fulfilled, failed, refunded, sent, receipts] = await Promise.all([
    read((fromBlock, toBlock) =>
      getContractEvents(client, { ...q, abi: InferenceGateway.abi, eventName: 'InferenceRequested', fromBlock, toBlock }),
    ),
    read((fromBlock, toBlock) =>
      getContractEvents(client, { ...q, abi: InferenceGateway.abi, eventName: 'InferenceFulfilled', fromBlock, toBlock }),
    ),
    read((fromBlock, toBlock) =>
      getContractEvents(client, { ...q, abi: InferenceGateway.abi, eventName: 'InferenceFailed', fromBlock, toBlock }),
    ),
    read((fromBlock, toBlock) =>
      getContractEvents(client, { ...q, abi: InferenceGateway.abi, eventName: 'InferenceRefunded', fromBlock, toBlock }),
    ),
    p.spoke
      ? read((fromBlock, toBlock) =>
          getContractEvents(client, { ...q, abi: SpokeGateway.abi, eventName: 'RequestSentToHub', fromBlock, toBlock }),
        )
      : [],
    p.spoke
      ? read((fromBlock, toBlock) =>
          getContractEvents(client, { ...q, abi: SpokeGateway.abi, eventName: 'ReceiptSent', fromBlock, toBlock }),
        )
      : [],
  ])
  return { requested, fulfilled, failed, refunded, sent, receipts }
}
