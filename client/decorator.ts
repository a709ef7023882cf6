import type { Account, Address, Chain, Client, Transport } from 'viem'
import { getModel, type GetModelParameters, type GetModelReturnType } from './actions/getModel.ts'
import { getRequest, type GetRequestParameters, type GetRequestReturnType } from './actions/getRequest.ts'
import { quote, type QuoteParameters, type QuoteReturnType } from './actions/quote.ts'
import { requestInference, type RequestInferenceParameters, type RequestInferenceReturnType } from './actions/requestInference.ts'
import { verifyResult, type VerifyResultParameters, type VerifyResultReturnType } from './actions/verifyResult.ts'
import { waitForResult, type WaitForResultParameters, type WaitForResultReturnType } from './actions/waitForResult.ts'
import type { ReadClient, RequestTarget } from './internal.ts'
import type { StorageOption } from './storage.ts'

/** What {@link sertnActions} fills in for every action. */
export type SertnActionsConfig = {
  /** The Sertn gateway on the client's chain (the hub's InferenceGateway or a spoke's SpokeGateway). */
  gateway: Address
  /** Where stored proofs and artifacts are read from (for verifyResult). */
  storage?: StorageOption
  /** A client of the hub chain: waitForResult then follows a spoke request's hops on the hub too. */
  hub?: { client: ReadClient; fromBlock?: bigint }
}

/** `T` without `K`, where `K` becomes optional. */
type Defaulted<T, K extends PropertyKey> = T extends unknown ? Omit<T, K & keyof T> & Partial<Pick<T, K & keyof T>> : never
/** A request by id on the configured gateway, or by key. */
type Target<T> = Defaulted<T, 'gateway'>

/** The actions {@link sertnActions} adds to a client. */
export type SertnActions = {
  quote: (params: Defaulted<QuoteParameters, 'gateway'>) => Promise<QuoteReturnType>
  requestInference: (params: Defaulted<RequestInferenceParameters, 'gateway'>) => Promise<RequestInferenceReturnType>
  getRequest: (params: Target<GetRequestParameters>) => Promise<GetRequestReturnType>
  getModel: (
    params: { modelId: GetModelParameters['modelId'] } & Partial<Pick<Extract<GetModelParameters, { registry: Address }>, 'registry'>>,
  ) => Promise<GetModelReturnType>
  waitForResult: (params: Target<WaitForResultParameters>) => Promise<WaitForResultReturnType>
  verifyResult: (params: Target<Defaulted<VerifyResultParameters, 'storage'>>) => Promise<VerifyResultReturnType>
}

/**
 * The Sertn actions as a viem client decorator, bound to one gateway (and optionally the hub and
 * storage): `client.extend(sertnActions({ gateway }))`.
 *
 * @example
 * import { createWalletClient, http, publicActions } from 'viem'
 * import { sertnActions } from '@sertn/client'
 * const client = createWalletClient({ account, chain, transport: http(rpcUrl) })
 *   .extend(publicActions)
 *   .extend(sertnActions({ gateway, storage: { gatewayUrl: 'https://arweave.net' } }))
 * const price = await client.quote({ modelId, callbackGasLimit: 200_000 })
 * const { key } = await client.requestInference({ modelId, input, callbackGasLimit: 200_000 })
 * const { request } = await client.waitForResult({ key })
 * const { valid } = await client.verifyResult({ key })
 */
export function sertnActions(config: SertnActionsConfig) {
  return <C extends Client<Transport, Chain | undefined, Account | undefined>>(client: C): SertnActions => {
    const target = (p: object): RequestTarget => ('key' in p ? p : { gateway: config.gateway, ...p }) as RequestTarget
    return {
      quote: (p) => quote(client, { gateway: config.gateway, ...p }),
      requestInference: (p) => requestInference(client, { gateway: config.gateway, ...p }),
      getRequest: (p) => getRequest(client, target(p)),
      getModel: (p) =>
        getModel(client, p.registry ? { modelId: p.modelId, registry: p.registry } : { modelId: p.modelId, gateway: config.gateway }),
      waitForResult: (p) => waitForResult(client, { ...(config.hub ? { hub: config.hub } : {}), ...target(p) } as WaitForResultParameters),
      verifyResult: (p) => {
        const storage = p.storage ?? config.storage
        if (!storage) throw new TypeError('verifyResult needs storage: pass it here or to sertnActions({ storage })')
        return verifyResult(client, { ...target(p), storage } as VerifyResultParameters)
      },
    }
  }
}
