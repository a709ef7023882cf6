/**
 * LayerZero V2 as a Sertn messenger plugin: real LayerZero contracts on each chain (EndpointV2,
 * SendUln302 / ReceiveUln302, Executor, DVN, PriceFeed and their fee libraries) and Sertn's
 * LayerZeroPort (an OApp), ports joined pairwise with the default send and receive libraries, and
 * the local DVN and executor standing in for the LayerZero network.
 *
 * Endpoint ids: a local chain's eid is 40000 + its chain id mod 10000 (31339 → 41339), not its chain
 * id, so that every hop goes through the port's domain ↔ eid mapping.
 */
import { createHash } from 'node:crypto'
import { getAddress, type Abi } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { addressAsBytes32 } from '../../../chains/evm/crosschain.ts'
import { LayerZeroPort } from '../../../contracts/artifacts/index.ts'
import {
  DVN,
  DVNFeeLib,
  EndpointV2,
  Executor,
  ExecutorFeeLib,
  PriceFeed,
  ReceiveUln302,
  SendUln302,
} from '../../../contracts/artifacts/layerzero/index.ts'
import { addressField, parseConfigSection } from '../../../core/config.ts'
import type { MessengerDeployment, MessengerEndpoint, MessengerPlugin, RejectedRelayMessage } from '../../../core/plugins.ts'
import { startLayerZeroAgents } from './agents.ts'
import { FilePacketCursorStore } from './stores.ts'
import {
  allowPortApp,
  connectLayerZero,
  connectPorts,
  deployLayerZeroCore,
  deployLayerZeroPort,
  type LayerZeroCoreDeployment,
} from './deploy.ts'

const address = addressField
const uint32 = z.number().int().min(1).max(0xffffffff)

/** A chain's `messenger` section for LayerZero. */
export const layerZeroSectionSchema = z.object({
  kind: z.literal('layerzero'),
  /** The chain's LayerZero endpoint id. */
  eid: uint32,
  endpoint: address,
  sendUln: address,
  receiveUln: address,
  executor: address,
  dvn: address,
  /** The DVN's id, signed into its instructions. */
  vid: z.number().int().min(0).max(0xffff).default(1),
  priceFeed: address.optional(),
  executorFeeLib: address.optional(),
  dvnFeeLib: address.optional(),
  /** Sertn's LayerZeroPort (an OApp) on the chain. */
  port: address,
  /** Where agents with no saved state start scanning. */
  deployBlock: z.number().int().min(0).default(0),
})

export type LayerZeroSection = z.infer<typeof layerZeroSectionSchema> & MessengerDeployment

/** The local endpoint id of a chain id. */
export const localEid = (chainId: number) => 40_000 + (chainId % 10_000)

function parse(section: unknown, path: string): LayerZeroSection {
  return parseConfigSection(layerZeroSectionSchema, section, path) as LayerZeroSection
}

const coreOf = (s: LayerZeroSection): LayerZeroCoreDeployment => ({
  eid: s.eid,
  endpoint: getAddress(s.endpoint),
  sendUln: getAddress(s.sendUln),
  receiveUln: getAddress(s.receiveUln),
  priceFeed: getAddress(s.priceFeed ?? s.endpoint),
  executor: getAddress(s.executor),
  executorFeeLib: getAddress(s.executorFeeLib ?? s.endpoint),
  dvn: getAddress(s.dvn),
  dvnFeeLib: getAddress(s.dvnFeeLib ?? s.endpoint),
  vid: s.vid,
  deployBlock: BigInt(s.deployBlock),
})

const sectionOf = (e: MessengerEndpoint<SertnClient>) => parse(e.deployment, `chains.${e.chain.name}.messenger`)

const fingerprint = [EndpointV2, SendUln302, ReceiveUln302, PriceFeed, Executor, ExecutorFeeLib, DVN, DVNFeeLib, LayerZeroPort]
  .reduce((h, a) => h.update(a.bytecode), createHash('sha256'))
  .digest('hex')

export const layerZeroMessenger: MessengerPlugin<SertnClient> = {
  kind: 'messenger',
  name: 'layerzero',
  fingerprint,
  flags: { localAgents: true },
  async dispose() {},
  parseDeployment: parse,
  async deploy(chain, options) {
    const core = await deployLayerZeroCore(chain.client, {
      eid: localEid(chain.domain),
      dvnSigners: options.attesters,
      dvnQuorum: options.threshold,
      dvnAdmins: options.submitters ?? [],
      executorAdmins: options.submitters ?? [],
    })
    const port = await deployLayerZeroPort(chain.client, { endpoint: core.endpoint, localDomain: chain.domain })
    return {
      kind: 'layerzero',
      eid: core.eid,
      endpoint: core.endpoint,
      sendUln: core.sendUln,
      receiveUln: core.receiveUln,
      executor: core.executor,
      dvn: core.dvn,
      vid: core.vid,
      priceFeed: core.priceFeed,
      executorFeeLib: core.executorFeeLib,
      dvnFeeLib: core.dvnFeeLib,
      port,
      deployBlock: Number(core.deployBlock),
    } satisfies LayerZeroSection
  },
  async connect(a, b, options) {
    const [sa, sb] = [sectionOf(a), sectionOf(b)]
    await connectLayerZero(
      { client: a.chain.client, core: coreOf(sa) },
      { client: b.chain.client, core: coreOf(sb) },
      { confirmations: options?.confirmations ?? 0 },
    )
    const peer = async (
      from: MessengerEndpoint<SertnClient>,
      s: LayerZeroSection,
      to: MessengerEndpoint<SertnClient>,
      t: LayerZeroSection,
    ) => {
      const [eid, port] = await from.chain.client.readContract({
        address: s.port,
        abi: LayerZeroPort.abi,
        functionName: 'peerOf',
        args: [to.chain.domain],
      })
      return eid === t.eid && port.toLowerCase() === addressAsBytes32(t.port)
    }
    if ((await peer(a, sa, b, sb)) && (await peer(b, sb, a, sa))) return
    await connectPorts(
      { client: a.chain.client, port: sa.port, domain: a.chain.domain, eid: sa.eid },
      { client: b.chain.client, port: sb.port, domain: b.chain.domain, eid: sb.eid },
    )
  },
  async allowApp(endpoint, app) {
    const s = sectionOf(endpoint)
    const allowed = await endpoint.chain.client.readContract({
      address: s.port,
      abi: LayerZeroPort.abi,
      functionName: 'isApp',
      args: [app],
    })
    if (!allowed) await allowPortApp(endpoint.chain.client, s.port, app)
  },
  async quote(endpoint, m) {
    return endpoint.chain.client.readContract({
      address: sectionOf(endpoint).port,
      abi: LayerZeroPort.abi,
      functionName: 'quote',
      args: [m.destination, addressAsBytes32(m.recipient), m.body, m.gasLimit],
    })
  },
  startAgents(o) {
    /** How long each packet's DVN transaction waited for inclusion, until its delivery. */
    const verifiedIn = new Map<string, number>()
    const byName = new Map(o.endpoints.map((e) => [e.chain.name, { endpoint: e, section: sectionOf(e) }]))
    const agents = startLayerZeroAgents({
      chains: o.endpoints.map((e) => {
        const core = coreOf(sectionOf(e))
        return {
          name: e.chain.name,
          core,
          dvnClient: e.chain.client,
          executorClient: e.chain.client,
          ...(e.chain.logRangeBlocks !== undefined ? { maxBlockRange: BigInt(e.chain.logRangeBlocks) } : {}),
        }
      }),
      // Serve (and pay for) only packets to the destination's port from the port it has as the origin's peer.
      accept: async (route, packet) => {
        const from = byName.get(route.from)!
        const to = byName.get(route.to)!
        if (getAddress(packet.receiver) !== getAddress(to.section.port))
          return `receiver ${packet.receiver} is not the port ${to.section.port} these agents serve`
        const [eid, peer] = await to.endpoint.chain.client.readContract({
          address: to.section.port,
          abi: LayerZeroPort.abi,
          functionName: 'peerOf',
          args: [from.endpoint.chain.domain],
        })
        return eid === packet.srcEid && peer.toLowerCase() === packet.sender.toLowerCase()
          ? true
          : `sender ${packet.sender} on endpoint ${packet.srcEid} is not an enrolled peer of ${to.section.port}`
      },
      onIgnored: (route, packet, reason) =>
        o.onEvent?.({ type: 'ignored', route: `${route.from}→${route.to}`, messageId: packet.guid, reason }),
      dvnSigners: [privateKeyToAccount(o.attesterKey)],
      ...(o.dir !== undefined ? { dir: o.dir } : {}),
      ...(o.pollingIntervalMs !== undefined ? { pollingIntervalMs: o.pollingIntervalMs } : {}),
      ...(o.maxGas !== undefined ? { maxGas: o.maxGas } : {}),
      ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
      ...(o.retryBackoffMs !== undefined ? { retryBackoffMs: o.retryBackoffMs } : {}),
      ...(o.maxRetryBackoffMs !== undefined ? { maxRetryBackoffMs: o.maxRetryBackoffMs } : {}),
      ...(o.errorAbi ? { errorAbi: o.errorAbi as Abi } : {}),
      ...(o.onError ? { onError: o.onError } : {}),
      onDelivered: (route, d) => {
        const verification = verifiedIn.get(d.guid) ?? 0
        verifiedIn.delete(d.guid)
        o.onEvent?.({
          type: 'delivered',
          route: `${route.from}→${route.to}`,
          messageId: d.guid,
          transactionHash: d.transactionHash,
          gasUsed: d.gasUsed,
          inclusionMs: d.inclusionMs + verification,
        })
      },
      onVerified: (_route, v) => void verifiedIn.set(v.guid, v.inclusionMs),
      onRejected: (route, agent, r) =>
        o.onEvent?.({ type: 'rejected', route: `${route.from}→${route.to}`, messageId: r.guid, reason: `${agent}: ${r.lastError}` }),
    })
    return {
      ready: Promise.resolve(),
      async requeue(ids) {
        let n = 0
        for (const a of [...agents.dvns.values(), ...agents.executors.values()]) n += await a.requeue(ids)
        return n
      },
      stop: () => agents.stop(),
    }
  },
  async rejectedMessages(o) {
    // A DVN and an executor per ordered pair, their cursors in <agent>-<src eid>-<dst eid>.json (see agents.ts).
    const chains = o.chains.map((c) => ({ name: c.name, eid: parse(c.deployment, `chains.${c.name}.messenger`).eid }))
    const out: RejectedRelayMessage[] = []
    for (const from of chains) {
      for (const to of chains) {
        if (from === to) continue
        for (const agent of ['dvn', 'executor'] as const) {
          const cursor = await new FilePacketCursorStore(o.dir, `${agent}-${from.eid}-${to.eid}.json`).load()
          for (const r of cursor?.rejected ?? [])
            out.push({
              messenger: 'layerzero',
              route: `${from.name}→${to.name}`,
              messageId: r.guid,
              agent,
              reason: r.lastError,
              attempts: r.attempts,
              rejectedAt: r.rejectedAt,
              sequence: r.nonce,
              originBlock: r.blockNumber,
              originTransaction: r.txHash,
            })
        }
      }
    }
    return out
  },
}

export default layerZeroMessenger
