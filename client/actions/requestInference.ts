import { parseEventLogs, zeroHash, type Account, type Address, type Chain, type Client, type Hex, type Transport } from 'viem'
import { estimateContractGas, getChainId, readContract, simulateContract, waitForTransactionReceipt, writeContract } from 'viem/actions'
import { InferenceGateway, ModelRegistry } from '../../contracts/artifacts/index.ts'
import { checkQuantizedInput, type InputOutOfRangeError, type InputShapeError } from '../../core/input.ts'
import type { ModelManifest } from '../../core/manifest.ts'
import { requestKey, type RequestKey } from '../../core/types.ts'
import { SertnError } from '../../core/errors.ts'
import {
  rethrowCall,
  type CallbackGasLimitTooHighError,
  type ContractRejectedError,
  type InsufficientPaymentError,
  type InvalidInputError,
  type ModelNotFoundError,
} from '../errors.ts'
import { quote } from './quote.ts'

export type RequestInferenceParameters = {
  /** The gateway on the client's chain. */
  gateway: Address
  modelId: Hex
  /** The input at the model's input scale (round(x · 2^inputScale)), flattened; for a hashed input, its commitment. */
  input: readonly (bigint | number)[]
  /** Gas the result callback gets (at most the gateway's cap). */
  callbackGasLimit: number
  /** Wei to pay (default: the gateway's {@link quote}). */
  value?: bigint
  /** The account that requests, pays and is called back (default: the client's). */
  account?: Account | Address
  /** For a hashed input: where it is stored (bytes32). */
  inputRef?: Hex
  /** The model version the request expects (default 0: the current one). */
  modelVersion?: number
  /** The artifacts hash the request expects (default: the current one). */
  artifactsHash?: Hex
  /** Fail at once with a refund when no node has capacity, rather than wait (default false). */
  failIfNoCapacity?: boolean
}

export type RequestInferenceReturnType = {
  requestId: bigint
  /** The request's key, `req:<chainId>:<gateway>:<requestId>` (the node's workflow id). */
  key: RequestKey
  transactionHash: Hex
  blockNumber: bigint
  /** Wei paid. */
  price: bigint
  /** Wei escrowed by the gateway (the price less a spoke's messaging fee for the request). */
  escrow: bigint
  /** Unix seconds after which the request can only be refunded. */
  deadline: number
}

export type RequestInferenceErrorType =
  | ModelNotFoundError
  | InsufficientPaymentError
  | CallbackGasLimitTooHighError
  | InvalidInputError
  | InputShapeError
  | InputOutOfRangeError
  | ContractRejectedError

/**
 * Requests an inference from the wallet's account: checks the input against the model's registered
 * shape and range, simulates (a refusal becomes its typed error), sends with a gas margin, and waits
 * for the receipt.
 *
 * @throws {InputShapeError} / {InputOutOfRangeError} when the input does not fit the model (nothing is sent)
 * @throws {ModelNotFoundError} when the chain's registry has no such model
 * @throws {InsufficientPaymentError} when `value` is below the quote
 * @throws {CallbackGasLimitTooHighError} when `callbackGasLimit` is above the gateway's cap
 *
 * @example
 * const wallet = createWalletClient({ account, chain, transport: http(rpcUrl) })
 * const { key, requestId } = await requestInference(wallet, { gateway, modelId, input: [512n, -1280n, 2048n, 768n], callbackGasLimit: 200_000 })
 */
export async function requestInference(
  client: Client<Transport, Chain | undefined, Account | undefined>,
  params: RequestInferenceParameters,
): Promise<RequestInferenceReturnType> {
  const { gateway, modelId, callbackGasLimit } = params
  const account = params.account ?? client.account
  if (!account) throw new SertnError('requestInference needs an account: pass one, or use a wallet client with an account')
  const input = params.input.map((x) => BigInt(x))
  const what = `requestInference(${modelId})`

  // The input first, against the registered model (an unknown model is left to the gateway's own refusal).
  try {
    const registry = await readContract(client, { address: gateway, abi: InferenceGateway.abi, functionName: 'registry' })
    const terms = await readContract(client, {
      address: registry,
      abi: ModelRegistry.abi,
      functionName: 'tryGetRequestTerms',
      args: [modelId],
    })
    if (terms.version !== 0 && terms.inputVisibility === 0) {
      const [inputShape] = await readContract(client, {
        address: registry,
        abi: ModelRegistry.abi,
        functionName: 'getShapes',
        args: [modelId],
      })
      checkQuantizedInput(
        { inputShape, maxAbsInput: Number(terms.maxAbsInput) } as Pick<ModelManifest, 'inputShape' | 'maxAbsInput'> as ModelManifest,
        input,
      )
    }
  } catch (err) {
    rethrowCall(what, err)
  }

  const value = params.value ?? (await quote(client, { gateway, modelId, callbackGasLimit }))
  const advanced =
    params.inputRef !== undefined ||
    params.modelVersion !== undefined ||
    params.artifactsHash !== undefined ||
    params.failIfNoCapacity !== undefined
  try {
    const base = { address: gateway, abi: InferenceGateway.abi, account, chain: client.chain, value } as const
    const { request } = advanced
      ? await simulateContract(client, {
          ...base,
          functionName: 'requestInferenceWith',
          args: [
            {
              modelId,
              input,
              inputRef: params.inputRef ?? zeroHash,
              callbackGasLimit,
              modelVersion: params.modelVersion ?? 0,
              artifactsHash: params.artifactsHash ?? zeroHash,
              failIfNoCapacity: params.failIfNoCapacity ?? false,
            },
          ],
        })
      : await simulateContract(client, { ...base, functionName: 'requestInference', args: [modelId, input, callbackGasLimit] })
    // A spoke's request sends a message through its messenger: give the estimate a margin.
    const gas = await estimateContractGas(client, request as never)
    const transactionHash = await writeContract(client, { ...request, gas: gas + gas / 5n } as never)
    const receipt = await waitForTransactionReceipt(client, { hash: transactionHash })
    if (receipt.status !== 'success') throw new SertnError(`${what}: transaction ${transactionHash} reverted`)
    const [made] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' }).filter(
      (l) => l.address.toLowerCase() === gateway.toLowerCase(),
    )
    if (!made) throw new SertnError(`${what}: transaction ${transactionHash} emitted no InferenceRequested`)
    const chainId = client.chain?.id ?? (await getChainId(client))
    return {
      requestId: made.args.requestId,
      key: requestKey(chainId, gateway, made.args.requestId),
      transactionHash,
      blockNumber: receipt.blockNumber,
      price: value,
      escrow: made.args.escrow,
      deadline: Number(made.args.deadline),
    }
  } catch (err) {
    rethrowCall(what, err)
  }
}
