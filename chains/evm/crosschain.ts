/**
 * Deploys and connects Sertn's cross-chain applications: the hub's InferenceMarket (beside the
 * hub's own registry and gateway) and spoke chains' SpokeGateways, each spoke joined to the hub by
 * a route in both directions (through the port of the messaging network that joins them) and by
 * the hub registry's record of where each model's circuit is deployed on the spoke. Nothing here
 * knows a messaging network: each network's plugin deploys its port and joins ports.
 */
import { getAddress, keccak256, type Address, type Hex } from 'viem'
import { InferenceMarket, ModelRegistry, SpokeGateway } from '../../contracts/artifacts/index.ts'
import type { SertnClient } from './clients.ts'
import { confirm, DEFAULT_GATEWAY_CONFIG, deployContract, deployRegistry, type GatewayConfig, type RegisteredModel } from './deploy.ts'
import { allowMarket } from './nodes.ts'

/** A 20-byte address as the 32-byte sender/recipient messengers use. */
export const addressAsBytes32 = (a: Address): Hex => `0x${getAddress(a).slice(2).toLowerCase().padStart(64, '0')}`

export type SpokeDeployment = { verifier: Address; registry: Address; gateway: Address }

/**
 * Deploys the hub market over the hub registry and the hub's node registry, and allows it to open
 * jobs there (the client's account must own the node registry): each spoke request it records is
 * assigned to a node of the model's pool.
 */
export async function deployMarket(client: SertnClient, params: { registry: Address; nodeRegistry: Address }): Promise<Address> {
  const market = await deployContract(client, InferenceMarket, [client.account.address, params.registry, params.nodeRegistry])
  await allowMarket(client, params.nodeRegistry, market)
  return market
}

/** Deploys a spoke: the verifier, the spoke's registry and its SpokeGateway. */
export async function deploySpoke(
  client: SertnClient,
  params: { registrationFee?: bigint; unitPrice?: bigint; gatewayConfig?: Partial<GatewayConfig>; allowInsecureSrs?: boolean } = {},
): Promise<SpokeDeployment> {
  const owner = client.account.address
  const { verifier, registry } = await deployRegistry(client, params)
  const config = { ...DEFAULT_GATEWAY_CONFIG, ...params.gatewayConfig }
  const gateway = await deployContract(client, SpokeGateway, [owner, registry, config])
  return { verifier, registry, gateway }
}

export type ConnectSpokeParameters = {
  /** `port`: the hub's port of the network that reaches the spoke. */
  hub: { client: SertnClient; domain: number; market: Address; registry: Address; port: Address }
  /** `port`: the spoke's port of the same network. */
  spoke: { client: SertnClient; domain: number; gateway: Address; verifier: Address; registry: Address; port: Address }
  /** Models registered on the spoke's registry, to record on the hub as deployed there. */
  models: readonly RegisteredModel[]
}

/**
 * Joins a spoke to the hub: the market routes messages to and from the spoke gateway through the
 * hub's port, the gateway to and from the market through the spoke's port (the two ports must be
 * peers: the messenger plugin joins them), the hub registry records the spoke's verifier (the
 * protocol's), and each model's VKA on the spoke (see {@link recordChainDeployments}). Idempotent.
 */
export async function connectSpoke({ hub, spoke, models }: ConnectSpokeParameters): Promise<void> {
  const gatewayId = addressAsBytes32(spoke.gateway)
  const marketId = addressAsBytes32(hub.market)
  const route = await hub.client.readContract({
    address: hub.market,
    abi: InferenceMarket.abi,
    functionName: 'routeOf',
    args: [spoke.domain],
  })
  if (getAddress(route.port) !== getAddress(hub.port) || route.peer.toLowerCase() !== gatewayId) {
    await confirm(
      hub.client,
      await hub.client.writeContract({
        address: hub.market,
        abi: InferenceMarket.abi,
        functionName: 'setRoute',
        args: [spoke.domain, hub.port, gatewayId],
      }),
    )
  }
  const [domain, market, spokeRoute] = await Promise.all([
    spoke.client.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'hubDomain' }),
    spoke.client.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'hubMarket' }),
    spoke.client.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'routeOf', args: [hub.domain] }),
  ])
  if (domain !== hub.domain || market.toLowerCase() !== marketId || getAddress(spokeRoute.port) !== getAddress(spoke.port)) {
    await confirm(
      spoke.client,
      await spoke.client.writeContract({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'setHub',
        args: [hub.domain, spoke.port, marketId],
      }),
    )
  }
  const recorded = await hub.client.readContract({
    address: hub.registry,
    abi: ModelRegistry.abi,
    functionName: 'chainVerifier',
    args: [spoke.domain],
  })
  if (getAddress(recorded) !== getAddress(spoke.verifier)) {
    await confirm(
      hub.client,
      await hub.client.writeContract({
        address: hub.registry,
        abi: ModelRegistry.abi,
        functionName: 'setChainVerifier',
        args: [spoke.domain, spoke.verifier],
      }),
    )
  }
  await recordChainDeployments({ hub, spoke, models })
}

/**
 * Records on the hub registry where each model's circuit is deployed on a spoke (its VKA there),
 * after checking that the spoke's VKA has the code the hub pins. Sent by the models' owner.
 * Idempotent.
 */
export async function recordChainDeployments({
  hub,
  spoke,
  models,
}: {
  hub: { client: SertnClient; registry: Address }
  /** `registry`: the spoke's own registry (each deployment records the model's version there). */
  spoke: { client: SertnClient; domain: number; registry: Address }
  models: readonly (Pick<RegisteredModel, 'name' | 'modelId' | 'vka'> & { batches?: RegisteredModel['batches'] })[]
}): Promise<void> {
  for (const model of models) {
    const there = await spoke.client.readContract({
      address: spoke.registry,
      abi: ModelRegistry.abi,
      functionName: 'getModel',
      args: [model.modelId],
    })
    const code = await spoke.client.getCode({ address: model.vka })
    if (!code) throw new Error(`no VKA code at ${model.vka} on the spoke (domain ${spoke.domain})`)
    const pinned = await hub.client.readContract({
      address: hub.registry,
      abi: ModelRegistry.abi,
      functionName: 'getModel',
      args: [model.modelId],
    })
    const codeHash = keccak256(code)
    if (codeHash !== pinned.vkaCodeHash) {
      throw new Error(`model ${model.name}: the spoke's VKA ${model.vka} has code hash ${codeHash}, the hub pins ${pinned.vkaCodeHash}`)
    }
    const current = await hub.client.readContract({
      address: hub.registry,
      abi: ModelRegistry.abi,
      functionName: 'getChainDeployment',
      args: [model.modelId, spoke.domain],
    })
    if (current.version !== pinned.version || current.remoteVersion !== there.version || getAddress(current.vka) !== getAddress(model.vka))
      await confirm(
        hub.client,
        await hub.client.writeContract({
          address: hub.registry,
          abi: ModelRegistry.abi,
          functionName: 'setChainDeployment',
          args: [model.modelId, spoke.domain, model.vka, codeHash, there.version],
        }),
      )
    for (const batch of model.batches ?? []) await recordBatchDeployment(hub, spoke, model, pinned.version, batch)
  }
}

/**
 * Records on the hub where a model's batch circuit of one size is deployed on a spoke, after
 * checking that the spoke's batch VKA has the code of the hub's batch VKA of that size (the hub
 * market sends a batch only where this is recorded for the current version). Idempotent.
 */
async function recordBatchDeployment(
  hub: { client: SertnClient; registry: Address },
  spoke: { client: SertnClient; domain: number },
  model: Pick<RegisteredModel, 'name' | 'modelId'>,
  version: number,
  batch: RegisteredModel['batches'][number],
): Promise<void> {
  const terms = await hub.client.readContract({
    address: hub.registry,
    abi: ModelRegistry.abi,
    functionName: 'tryGetBatchVerificationTerms',
    args: [model.modelId, batch.size],
  })
  if (BigInt(terms.vka) === 0n) throw new Error(`model ${model.name}: the hub has no batch circuit of ${batch.size} rows`)
  const [hubCode, spokeCode] = await Promise.all([hub.client.getCode({ address: terms.vka }), spoke.client.getCode({ address: batch.vka })])
  if (!spokeCode) throw new Error(`no batch VKA code at ${batch.vka} on the spoke (domain ${spoke.domain})`)
  const codeHash = keccak256(spokeCode)
  if (!hubCode || keccak256(hubCode) !== codeHash) {
    throw new Error(`model ${model.name}: the spoke's ${batch.size}-row batch VKA ${batch.vka} has code hash ${codeHash}, unlike the hub's`)
  }
  const [vka, recorded] = await hub.client.readContract({
    address: hub.registry,
    abi: ModelRegistry.abi,
    functionName: 'getBatchChainDeployment',
    args: [model.modelId, spoke.domain, batch.size],
  })
  if (recorded === version && getAddress(vka) === getAddress(batch.vka)) return
  await confirm(
    hub.client,
    await hub.client.writeContract({
      address: hub.registry,
      abi: ModelRegistry.abi,
      functionName: 'setBatchChainDeployment',
      args: [model.modelId, spoke.domain, batch.size, batch.vka, codeHash],
    }),
  )
}
