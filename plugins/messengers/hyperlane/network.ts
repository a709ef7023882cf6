/**
 * A Sertn network over Hyperlane: the hub chain (registry, its own gateway, the InferenceMarket)
 * and spoke chains (registry, SpokeGateway), each with a Hyperlane core whose default ISM is a
 * MessageIdMultisigIsm over the configured validators, joined by routes enrolled in both
 * directions. Used by the local stack, the tests and the bench; `networkChainsConfig` writes the
 * node's `chains` configuration for it.
 */
import type { Address } from 'viem'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { connectSpoke, deployMarket, deploySpoke, type SpokeDeployment } from '../../../chains/evm/crosschain.ts'
import { deployCore, registerModel, type CoreDeployment, type GatewayConfig, type RegisteredModel } from '../../../chains/evm/deploy.ts'
import type { ArtifactRefs } from '../../../core/artifacts.ts'
import type { ChainConfig } from '../../../core/config.ts'
import { deployHyperlaneCore, type HyperlaneCoreDeployment } from './deploy.ts'

export type NetworkChainInput = {
  /** The chain's name in the node's configuration (lowercase letters and digits). */
  name: string
  /** Deploys and owns everything on the chain. */
  client: SertnClient
  /** The chain's Hyperlane domain. */
  domain: number
}

export type DeploySertnNetworkParameters = {
  hub: NetworkChainInput
  spokes: readonly NetworkChainInput[]
  /** The default ISM's validators on every chain, and their threshold. */
  validators: readonly Address[]
  threshold: number
  /** Models (folders under circuits/, or directories) to register on every chain. */
  models: readonly string[]
  /** Where each model's artifacts are stored, by entry of `models` (from `publishModelArtifacts`); default: not uploaded. */
  artifacts?: Readonly<Record<string, ArtifactRefs>>
  /** Node accounts: authorised on the hub's gateway and registered on the market. */
  nodes: readonly Address[]
  allowInsecureSrs?: boolean
  gatewayConfig?: Partial<GatewayConfig>
  /** Hyperlane protocol fee per message (wei); 0 by default. */
  protocolFee?: bigint
  /** Progress lines. */
  log?: (line: string) => void
}

export type NetworkHub = {
  name: string
  domain: number
  chainId: number
  core: CoreDeployment
  market: Address
  hyperlane: HyperlaneCoreDeployment
  models: RegisteredModel[]
}

export type NetworkSpoke = {
  name: string
  domain: number
  chainId: number
  spoke: SpokeDeployment
  hyperlane: HyperlaneCoreDeployment
  models: RegisteredModel[]
}

export type SertnNetwork = { hub: NetworkHub; spokes: NetworkSpoke[] }

/** Deploys the hub and the spokes and connects them. */
export async function deploySertnNetwork(p: DeploySertnNetworkParameters): Promise<SertnNetwork> {
  const log = p.log ?? (() => undefined)
  const hyperlane = (c: NetworkChainInput) =>
    deployHyperlaneCore(c.client, { domain: c.domain, validators: p.validators, threshold: p.threshold, protocolFee: p.protocolFee ?? 0n })
  const register = async (client: SertnClient, registry: Address) => {
    const out: RegisteredModel[] = []
    for (const model of p.models) {
      const artifacts = p.artifacts?.[model]
      out.push(
        await registerModel(client, {
          registry,
          model,
          allowInsecureSrs: p.allowInsecureSrs ?? false,
          ...(artifacts ? { artifacts } : {}),
        }),
      )
    }
    return out
  }

  log(`hub ${p.hub.name}: Hyperlane core (domain ${p.hub.domain})`)
  const hubHyperlane = await hyperlane(p.hub)
  log(`hub ${p.hub.name}: verifier, registry, gateway, market`)
  const core = await deployCore(p.hub.client, {
    nodes: [...p.nodes],
    gatewayConfig: p.gatewayConfig,
    allowInsecureSrs: p.allowInsecureSrs ?? false,
  })
  const hubModels = await register(p.hub.client, core.registry)
  const market = await deployMarket(p.hub.client, { registry: core.registry, mailbox: hubHyperlane.mailbox, nodes: p.nodes })
  const hub: NetworkHub = {
    name: p.hub.name,
    domain: p.hub.domain,
    chainId: p.hub.client.chain.id,
    core,
    market,
    hyperlane: hubHyperlane,
    models: hubModels,
  }

  const spokes: NetworkSpoke[] = []
  for (const s of p.spokes) {
    log(`spoke ${s.name}: Hyperlane core (domain ${s.domain}), verifier, registry, spoke gateway`)
    const spokeHyperlane = await hyperlane(s)
    const spoke = await deploySpoke(s.client, {
      mailbox: spokeHyperlane.mailbox,
      gatewayConfig: p.gatewayConfig,
      allowInsecureSrs: p.allowInsecureSrs ?? false,
    })
    const models = await register(s.client, spoke.registry)
    log(`spoke ${s.name}: routes to and from the hub market, model deployments recorded on the hub`)
    await connectSpoke({
      hub: { client: p.hub.client, domain: p.hub.domain, market, registry: core.registry },
      spoke: { client: s.client, domain: s.domain, gateway: spoke.gateway, verifier: spoke.verifier },
      models,
    })
    spokes.push({ name: s.name, domain: s.domain, chainId: s.client.chain.id, spoke, hyperlane: spokeHyperlane, models })
  }
  return { hub, spokes }
}

/** The node's `chains` configuration for a network (RPC URLs by chain name). */
export function networkChainsConfig(
  network: SertnNetwork,
  rpcUrls: Readonly<Record<string, string>>,
  extra: Partial<Pick<ChainConfig, 'confirmations' | 'pollingIntervalMs' | 'startBlock'>> = {},
): Record<string, Record<string, unknown>> {
  const hyperlaneOf = (d: HyperlaneCoreDeployment) => ({
    domain: d.domain,
    mailbox: d.mailbox,
    merkleTreeHook: d.merkleTreeHook,
    deployBlock: Number(d.deployBlock),
  })
  const rpc = (name: string) => {
    const url = rpcUrls[name]
    if (!url) throw new Error(`no RPC URL for chain ${name}`)
    return url
  }
  const { hub } = network
  const chains: Record<string, Record<string, unknown>> = {
    [hub.name]: {
      chainId: hub.chainId,
      rpcUrl: rpc(hub.name),
      gateway: hub.core.gateway,
      registry: hub.core.registry,
      market: hub.market,
      hyperlane: hyperlaneOf(hub.hyperlane),
      ...extra,
    },
  }
  for (const s of network.spokes) {
    chains[s.name] = {
      chainId: s.chainId,
      rpcUrl: rpc(s.name),
      gateway: s.spoke.gateway,
      registry: s.spoke.registry,
      hub: hub.name,
      hyperlane: hyperlaneOf(s.hyperlane),
      ...extra,
    }
  }
  return chains
}
