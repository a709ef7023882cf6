import type { Address, Hex } from 'viem'
import { readContract } from 'viem/actions'
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import { rethrowCall, type ContractRejectedError, type ModelNotFoundError } from '../errors.ts'
import type { ReadClient } from '../internal.ts'

export type QuoteParameters = {
  /** The gateway on the client's chain (the hub's InferenceGateway or a spoke's SpokeGateway). */
  gateway: Address
  /** The model (bytes32). */
  modelId: Hex
  /** Gas the result callback gets. */
  callbackGasLimit: number | bigint
}

/** Wei a request must pay. */
export type QuoteReturnType = bigint

export type QuoteErrorType = ModelNotFoundError | ContractRejectedError

/**
 * What a request costs on `gateway`: the model's fee and the node's fulfilment gas, and on a spoke
 * the messaging fees of its request to the hub and its receipt (the gateway's own `quote`).
 *
 * @throws {ModelNotFoundError} when the chain's registry has no such model
 *
 * @example
 * import { createPublicClient, http } from 'viem'
 * import { quote } from '@sertn/client'
 * const client = createPublicClient({ transport: http('http://127.0.0.1:8545') })
 * const wei = await quote(client, { gateway, modelId, callbackGasLimit: 200_000 })
 */
export async function quote(client: ReadClient, params: QuoteParameters): Promise<QuoteReturnType> {
  try {
    return await readContract(client, {
      address: params.gateway,
      abi: InferenceGateway.abi,
      functionName: 'quote',
      args: [params.modelId, Number(params.callbackGasLimit)],
    })
  } catch (err) {
    rethrowCall(`quote(${params.modelId}, ${params.callbackGasLimit})`, err)
  }
}
