/**
 * A local DVN for one route, origin → destination, working through the real DVN contract on the
 * destination. For each `PacketSent` to the destination eid (scanned from the origin endpoint, see
 * `agent.ts`) it reads, in one round of parallel calls, the destination endpoint's payload hash
 * and lazy nonce for the packet's path, the receive library's ULN config for the receiver and
 * this DVN's earlier verification; then, once the origin has the ULN config's confirmations on
 * top of the packet, it signs two instructions for the DVN contract — `ReceiveUln302.verify(header,
 * payloadHash, confirmations)` and `ReceiveUln302.commitVerification(header, payloadHash)` — and
 * submits both in one `DVN.execute` transaction (sent by a DVN admin, with a fixed gas limit: no
 * estimate). `execute` does not revert when an instruction fails (it logs `ExecuteFailed`), so the
 * receipt's logs decide: the endpoint's `PacketVerified` is success.
 *
 * Already committed or delivered packets are dropped without a transaction (a restarted DVN never
 * verifies twice); a packet whose receiver's ULN config does not list this DVN is ignored; a
 * commit that fails only because other DVNs have not verified yet waits.
 */
import {
  encodeFunctionData,
  encodePacked,
  getAddress,
  keccak256,
  parseEventLogs,
  zeroHash,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
} from 'viem'
import { DVN, EndpointV2, ReceiveUln302 } from '../../../contracts/artifacts/layerzero/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { clientSender } from '../../../chains/evm/plugin/sender.ts'
import { createPacketAgent, type AgentOrigin, type PacketAgent, type PacketAgentOptions } from './agent.ts'
import { decodeRevertData, PacketVerificationError } from './errors.ts'
import type { SerialLock } from './loop.ts'
import type { DecodedPacket } from './packet.ts'
import { sendAndWait } from './send.ts'

export type DvnDestination = {
  /** Submits `DVN.execute` (its account must be a DVN admin). */
  client: SertnClient
  endpoint: Address
  receiveUln: Address
  /** The DVN contract on the destination. */
  dvn: Address
  eid: number
}

export type LocalDvnConfig = PacketAgentOptions & {
  origin: AgentOrigin
  destination: DvnDestination
  /** Keys of the DVN contract's signers: the contract's quorum of them sign each instruction. */
  signers: readonly LocalAccount[]
  /** The DVN's id (default: read from the contract). */
  vid?: number
  /** How long a signed instruction stays valid (default 3600 s). */
  instructionTtlSeconds?: number
  /** Gas limit of each `DVN.execute` transaction (default 500000). */
  gasLimit?: bigint
  /** Serialises this agent's transactions with other agents sending from the same account. */
  lock?: SerialLock
  onVerified?: (v: Verification) => void
}

export type Verification = {
  guid: Hex
  nonce: bigint
  srcEid: number
  receiver: Address
  /** The confirmations attested (the receiver's ULN config's). */
  confirmations: bigint
  transactionHash: Hex
  gasUsed: bigint
  /** Milliseconds from submitting `DVN.execute` to its receipt: the destination's inclusion wait. */
  inclusionMs: number
}

export type LocalDvn = PacketAgent<Verification>

type ExecuteParam = { vid: number; target: Address; callData: Hex; expiration: bigint; signatures: Hex }

const EXECUTE_ERRORS = [...ReceiveUln302.abi, ...EndpointV2.abi].filter((x) => x.type === 'error') as Abi
const LZ_ULN_VERIFYING = keccak256(new TextEncoder().encode('LZ_ULN_Verifying()')).slice(0, 10)

export function createLocalDvn(cfg: LocalDvnConfig): LocalDvn {
  const dest = {
    ...cfg.destination,
    endpoint: getAddress(cfg.destination.endpoint),
    receiveUln: getAddress(cfg.destination.receiveUln),
    dvn: getAddress(cfg.destination.dvn),
  }
  const client = dest.client
  const gasLimit = cfg.gasLimit ?? 500_000n
  const ttl = BigInt(cfg.instructionTtlSeconds ?? 3600)
  const lock: SerialLock = cfg.lock ?? ((fn) => fn())
  const errorAbi = [...EXECUTE_ERRORS, ...(cfg.errorAbi ?? [])] as Abi
  const signers = [...cfg.signers].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1))
  if (signers.length === 0) throw new Error('the DVN needs at least one signer')
  let setup: Promise<{ vid: number; quorum: number }> | undefined

  /** The DVN's id and quorum, read once. */
  function dvnSetup() {
    setup ??= (async () => {
      const [vid, quorum] = await Promise.all([
        cfg.vid ?? client.readContract({ address: dest.dvn, abi: DVN.abi, functionName: 'vid' }),
        client.readContract({ address: dest.dvn, abi: DVN.abi, functionName: 'quorum' }),
      ])
      if (Number(quorum) > signers.length)
        throw new Error(`DVN ${dest.dvn} needs ${quorum} signatures, the agent has ${signers.length} signers`)
      return { vid: Number(vid), quorum: Number(quorum) }
    })().catch((err: unknown) => {
      setup = undefined
      throw err
    })
    return setup
  }

  async function instruction(vid: number, quorum: number, callData: Hex, expiration: bigint): Promise<ExecuteParam> {
    const hash = keccak256(encodePacked(['uint32', 'address', 'uint256', 'bytes'], [vid, dest.receiveUln, expiration, callData]))
    const signatures = await Promise.all(signers.slice(0, quorum).map((s) => s.signMessage({ message: { raw: hash } })))
    return { vid, target: dest.receiveUln, callData, expiration, signatures: `0x${signatures.map((s) => s.slice(2)).join('')}` }
  }

  const pathArgs = (p: DecodedPacket) => [p.receiver, p.srcEid, p.sender] as const

  async function isHandled(p: DecodedPacket): Promise<boolean> {
    const [hash, lazy] = await Promise.all([
      client.readContract({
        address: dest.endpoint,
        abi: EndpointV2.abi,
        functionName: 'inboundPayloadHash',
        args: [...pathArgs(p), p.nonce],
      }),
      client.readContract({ address: dest.endpoint, abi: EndpointV2.abi, functionName: 'lazyInboundNonce', args: pathArgs(p) }),
    ])
    return hash === p.payloadHash || (hash === zeroHash && p.nonce <= lazy)
  }

  return createPacketAgent<Verification>({
    ...cfg,
    name: `dvn ${cfg.origin.eid}→${dest.eid}`,
    dstEid: dest.eid,
    errorAbi,
    isHandled,
    onDone: cfg.onVerified,
    async handle(pending, p, ctx) {
      const [hash, lazy, config, [submitted, attested], { vid, quorum }] = await Promise.all([
        client.readContract({
          address: dest.endpoint,
          abi: EndpointV2.abi,
          functionName: 'inboundPayloadHash',
          args: [...pathArgs(p), p.nonce],
        }),
        client.readContract({ address: dest.endpoint, abi: EndpointV2.abi, functionName: 'lazyInboundNonce', args: pathArgs(p) }),
        client.readContract({
          address: dest.receiveUln,
          abi: ReceiveUln302.abi,
          functionName: 'getUlnConfig',
          args: [p.receiver, p.srcEid],
        }),
        client.readContract({
          address: dest.receiveUln,
          abi: ReceiveUln302.abi,
          functionName: 'hashLookup',
          args: [p.headerHash, p.payloadHash, dest.dvn],
        }),
        dvnSetup(),
      ])
      if (hash === p.payloadHash) return { kind: 'already' } // committed (maybe delivered since)
      if (hash === zeroHash && p.nonce <= lazy) return { kind: 'already' } // delivered
      if (hash !== zeroHash)
        throw new PacketVerificationError(
          p.guid,
          `the endpoint holds payload hash ${hash} for nonce ${p.nonce}, not the packet's ${p.payloadHash}`,
        )
      const dvns = [...config.requiredDVNs, ...config.optionalDVNs].map((d) => getAddress(d))
      if (!dvns.includes(dest.dvn))
        return { kind: 'ignored', reason: `DVN ${dest.dvn} is not in ${p.receiver}'s ULN config for eid ${p.srcEid}` }
      const required = config.confirmations
      if (ctx.originHead - BigInt(pending.blockNumber) < required) return { kind: 'waiting', reason: 'confirmations' }

      const expiration = BigInt(Math.floor(Date.now() / 1000)) + ttl
      const calls: Hex[] = []
      const verified = submitted && attested >= required
      if (!verified)
        calls.push(encodeFunctionData({ abi: ReceiveUln302.abi, functionName: 'verify', args: [p.header, p.payloadHash, required] }))
      calls.push(encodeFunctionData({ abi: ReceiveUln302.abi, functionName: 'commitVerification', args: [p.header, p.payloadHash] }))
      const params = await Promise.all(calls.map((c) => instruction(vid, quorum, c, expiration)))

      const { receipt, inclusionMs } = await sendAndWait(client, lock, () =>
        clientSender(client).send({
          to: dest.dvn,
          data: encodeFunctionData({ abi: DVN.abi, functionName: 'execute', args: [params] }),
          gas: gasLimit,
        }),
      )
      if (receipt.status !== 'success') throw new PacketVerificationError(p.guid, `DVN.execute reverted (tx ${receipt.transactionHash})`)
      const logs = receipt.logs
      const packetVerified = parseEventLogs({ abi: EndpointV2.abi, eventName: 'PacketVerified', logs }).some(
        (l) => getAddress(l.address) === dest.endpoint && l.args.origin.nonce === p.nonce && l.args.payloadHash === p.payloadHash,
      )
      if (packetVerified)
        return {
          kind: 'done',
          result: {
            guid: p.guid,
            nonce: p.nonce,
            srcEid: p.srcEid,
            receiver: p.receiver,
            confirmations: required,
            transactionHash: receipt.transactionHash,
            gasUsed: receipt.gasUsed,
            inclusionMs,
          },
        }
      const dvnLogs = parseEventLogs({ abi: DVN.abi, logs }).filter((l) => getAddress(l.address) === dest.dvn)
      const failed = dvnLogs.flatMap((l) => (l.eventName === 'ExecuteFailed' ? [l.args] : []))
      const badSignatures = dvnLogs.some((l) => l.eventName === 'VerifySignaturesFailed')
      const commitIndex = BigInt(calls.length - 1)
      const commitFailure = failed.find((f) => f._index === commitIndex)
      const otherFailures = failed.filter((f) => f._index !== commitIndex)
      // Only the commit failed, for want of other DVNs' verifications: wait for them.
      if (!badSignatures && otherFailures.length === 0 && commitFailure?._data.startsWith(LZ_ULN_VERIFYING))
        return { kind: 'waiting', reason: 'other DVNs' }
      const why = badSignatures
        ? `the DVN refused the signatures (signers, quorum or vid) in tx ${receipt.transactionHash}`
        : failed.length > 0
          ? failed.map((f) => `instruction ${f._index}: ${decodeRevertData(f._data, errorAbi)}`).join('; ')
          : `the DVN skipped the instructions (expired or another vid) in tx ${receipt.transactionHash}`
      throw new PacketVerificationError(p.guid, why)
    },
  })
}
