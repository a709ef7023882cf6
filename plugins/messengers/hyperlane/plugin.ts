/**
 * Hyperlane as a Sertn messenger plugin: real Hyperlane v3 core contracts (Mailbox, MerkleTreeHook,
 * ProtocolFee, a MessageIdMultisigIsm over the attesters) and Sertn's HyperlanePort on each chain,
 * ports joined pairwise, and the local validator and relayers standing in for Hyperlane's agents.
 */
import { createHash } from 'node:crypto'
import { getAddress, type Abi } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { HyperlanePort } from '../../../contracts/artifacts/index.ts'
import {
  Mailbox,
  MerkleTreeHook,
  ProtocolFee,
  StaticMessageIdMultisigIsm,
  StaticMessageIdMultisigIsmFactory,
  ValidatorAnnounce,
} from '../../../contracts/artifacts/hyperlane/index.ts'
import { addressField, parseConfigSection } from '../../../core/config.ts'
import type { MessengerDeployment, MessengerEndpoint, MessengerPlugin, RejectedRelayMessage } from '../../../core/plugins.ts'
import { addressAsBytes32 } from '../../../chains/evm/crosschain.ts'
import { startLocalAgents } from './agents.ts'
import { FileRelayerCursorStore } from './stores.ts'
import { enrolledRoutes } from './relayer.ts'
import { allowHyperlaneApp, connectHyperlanePorts, deployHyperlaneCore, type HyperlaneCoreDeployment } from './deploy.ts'

const address = addressField

/** A chain's `messenger` section for Hyperlane. */
export const hyperlaneSectionSchema = z.object({
  kind: z.literal('hyperlane'),
  /** The chain's Hyperlane domain id (often its chain id). */
  domain: z.number().int().min(0).max(0xffffffff),
  mailbox: address,
  merkleTreeHook: address,
  /** Sertn's HyperlanePort on the chain. */
  port: address,
  /** Where agents with no saved state start scanning (the mailbox's deployment block). */
  deployBlock: z.number().int().min(0).default(0),
  protocolFee: address.optional(),
  ism: address.optional(),
})

export type HyperlaneSection = z.infer<typeof hyperlaneSectionSchema> & MessengerDeployment

/** The `messenger` section of a deployed core. */
export function hyperlaneSection(d: HyperlaneCoreDeployment): HyperlaneSection {
  return {
    kind: 'hyperlane',
    domain: d.domain,
    mailbox: d.mailbox,
    merkleTreeHook: d.merkleTreeHook,
    port: d.port,
    deployBlock: Number(d.deployBlock),
    protocolFee: d.protocolFee,
    ism: d.ism,
  }
}

function parse(section: unknown, path: string): HyperlaneSection {
  return parseConfigSection(hyperlaneSectionSchema, section, path) as HyperlaneSection
}

/** What the agents and the port helpers need of an endpoint's section. */
const coreOf = (e: MessengerEndpoint<SertnClient>) => {
  const s = parse(e.deployment, `chains.${e.chain.name}.messenger`)
  return {
    domain: s.domain,
    mailbox: getAddress(s.mailbox),
    merkleTreeHook: getAddress(s.merkleTreeHook),
    port: getAddress(s.port),
    sertnDomain: e.chain.domain,
    deployBlock: BigInt(s.deployBlock),
  }
}

const fingerprint = [
  Mailbox,
  MerkleTreeHook,
  ProtocolFee,
  StaticMessageIdMultisigIsmFactory,
  StaticMessageIdMultisigIsm,
  ValidatorAnnounce,
  HyperlanePort,
]
  .reduce((h, a) => h.update(a.bytecode), createHash('sha256'))
  .digest('hex')

export const hyperlaneMessenger: MessengerPlugin<SertnClient> = {
  kind: 'messenger',
  name: 'hyperlane',
  fingerprint,
  flags: { localAgents: true },
  async dispose() {},
  parseDeployment: parse,
  async deploy(chain, options) {
    const core = await deployHyperlaneCore(chain.client, {
      // Local chains: the Hyperlane domain is the chain id, as on most real Hyperlane chains.
      domain: chain.domain,
      validators: options.attesters,
      threshold: options.threshold,
      protocolFee: options.fee ?? 0n,
    })
    return hyperlaneSection(core)
  },
  async connect(a, b) {
    await connectHyperlanePorts({ client: a.chain.client, deployment: coreOf(a) }, { client: b.chain.client, deployment: coreOf(b) })
  },
  async allowApp(endpoint, app) {
    await allowHyperlaneApp(endpoint.chain.client, getAddress(String(endpoint.deployment.port)), app)
  },
  async quote(endpoint, m) {
    return endpoint.chain.client.readContract({
      address: getAddress(String(endpoint.deployment.port)),
      abi: HyperlanePort.abi,
      functionName: 'quote',
      args: [m.destination, addressAsBytes32(m.recipient), m.body, m.gasLimit],
    })
  },
  startAgents(o) {
    const agents = startLocalAgents({
      chains: o.endpoints.map((e) => {
        const core = coreOf(e)
        return {
          name: e.chain.name,
          domain: core.domain,
          client: e.chain.client,
          mailbox: core.mailbox,
          merkleTreeHook: core.merkleTreeHook,
          fromBlock: core.deployBlock,
          ...(e.chain.logRangeBlocks !== undefined ? { maxBlockRange: BigInt(e.chain.logRangeBlocks) } : {}),
          // Pay only for messages to this chain's port from the port it has enrolled for their origin.
          shouldRelay: enrolledRoutes({
            recipients: [core.port],
            isEnrolled: async (origin, sender) => {
              const domain = await e.chain.client.readContract({
                address: core.port,
                abi: HyperlanePort.abi,
                functionName: 'domainOf',
                args: [origin],
              })
              if (domain === 0) return false
              const [networkDomain, peer] = await e.chain.client.readContract({
                address: core.port,
                abi: HyperlanePort.abi,
                functionName: 'peerOf',
                args: [domain],
              })
              return networkDomain === origin && peer.toLowerCase() === sender.toLowerCase()
            },
          }),
        }
      }),
      ...(o.maxGas !== undefined ? { maxGas: o.maxGas } : {}),
      ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
      ...(o.retryBackoffMs !== undefined ? { retryBackoffMs: o.retryBackoffMs } : {}),
      ...(o.maxRetryBackoffMs !== undefined ? { maxRetryBackoffMs: o.maxRetryBackoffMs } : {}),
      ...(o.errorAbi ? { errorAbi: o.errorAbi as Abi } : {}),
      onRejected: (route, r) =>
        o.onEvent?.({ type: 'rejected', route: `${route.from}→${route.to}`, messageId: r.messageId, reason: r.lastError }),
      onIgnored: (route, m) =>
        o.onEvent?.({ type: 'ignored', route: `${route.from}→${route.to}`, messageId: m.messageId, reason: m.reason }),
      validator: privateKeyToAccount(o.attesterKey),
      ...(o.dir !== undefined ? { dir: o.dir } : {}),
      ...(o.pollingIntervalMs !== undefined ? { pollingIntervalMs: o.pollingIntervalMs } : {}),
      ...(o.confirmations !== undefined ? { confirmations: o.confirmations } : {}),
      ...(o.onError ? { onError: o.onError } : {}),
      onDelivered: (route, d) =>
        o.onEvent?.({
          type: 'delivered',
          route: `${route.from}→${route.to}`,
          messageId: d.messageId,
          transactionHash: d.transactionHash,
          gasUsed: d.gasUsed,
          ...(d.inclusionMs !== undefined ? { inclusionMs: d.inclusionMs } : {}),
        }),
    })
    return { ready: agents.ready, requeue: (ids) => agents.requeue(ids), stop: () => agents.stop() }
  },
  async rejectedMessages(o) {
    // One relayer per ordered pair, its cursor in relayer-<origin domain>-<destination domain>.json (see agents.ts).
    const chains = o.chains.map((c) => ({ name: c.name, domain: parse(c.deployment, `chains.${c.name}.messenger`).domain }))
    const out: RejectedRelayMessage[] = []
    for (const from of chains) {
      for (const to of chains) {
        if (from === to) continue
        const cursor = await new FileRelayerCursorStore(o.dir, `relayer-${from.domain}-${to.domain}.json`).load()
        for (const r of cursor?.rejected ?? [])
          out.push({
            messenger: 'hyperlane',
            route: `${from.name}→${to.name}`,
            messageId: r.messageId,
            agent: 'relayer',
            reason: r.lastError,
            attempts: r.attempts,
            rejectedAt: r.rejectedAt,
            sequence: String(r.index),
            originBlock: r.blockNumber,
            ...(r.dispatchTx ? { originTransaction: r.dispatchTx } : {}),
          })
      }
    }
    return out
  },
}

export default hyperlaneMessenger
