/**
 * A local LayerZero executor for one route, origin → destination: it follows the origin's
 * `PacketSent` logs for the destination eid (see `agent.ts`) and, once a packet is verified on
 * the destination endpoint, calls `EndpointV2.lzReceive(origin, receiver, guid, message, "")`
 * itself, paying the gas.
 *
 * Before each attempt it reads the endpoint's payload hash and lazy nonce for the packet's path
 * (one round of two parallel calls): a cleared hash at or below the lazy nonce means delivered
 * (by this executor before a crash or anyone else: dropped, never sent twice), an empty one above
 * it means not verified yet (waiting, not an attempt). The transaction's gas limit is the packet's
 * lzReceive option gas (decoded with `Options.fromOptions`) plus `headroomBps` and `baseGas`,
 * capped at `maxGas`, and it is given explicitly: the first attempt is sent without any estimate
 * or simulation (latency); a retry after a failed attempt is simulated first, so a recipient that
 * keeps rejecting costs no more reverted transactions. A reverted delivery's reason is read back
 * with one `eth_call`.
 */
import { encodeFunctionData, getAddress, zeroHash, type Abi, type Address, type Hex } from 'viem'
import { LayerZeroPort } from '../../../contracts/artifacts/index.ts'
import { EndpointV2 } from '../../../contracts/artifacts/layerzero/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { clientSender } from '../../../chains/evm/plugin/sender.ts'
import { createPacketAgent, type AgentOrigin, type PacketAgent, type PacketAgentOptions } from './agent.ts'
import { failureReason, PacketExecutionError, PacketMalformedError } from './errors.ts'
import type { SerialLock } from './loop.ts'
import { lzReceiveOption, type DecodedPacket } from './packet.ts'
import { sendAndWait } from './send.ts'

export type ExecutorDestination = {
  /** Sends and pays for `lzReceive`. */
  client: SertnClient
  endpoint: Address
  eid: number
}

export type LocalExecutorConfig = PacketAgentOptions & {
  origin: AgentOrigin
  destination: ExecutorDestination
  /** Most gas one lzReceive transaction may use (default 3000000): the gas limit is capped at it. */
  maxGas?: bigint
  /** Gas added to the option's gas for the transaction and the endpoint (default 60000). */
  baseGas?: bigint
  /** Extra gas on the option's gas, in basis points (default 1000: 10 %). */
  headroomBps?: number
  /** Serialises this agent's transactions with other agents sending from the same account. */
  lock?: SerialLock
  onDelivered?: (d: Delivery) => void
}

export type Delivery = {
  guid: Hex
  nonce: bigint
  srcEid: number
  sender: Hex
  receiver: Address
  transactionHash: Hex
  blockNumber: bigint
  gasUsed: bigint
  /** The transaction's gas limit. */
  gasLimit: bigint
  /** Milliseconds from submitting `lzReceive` to its receipt: the destination's inclusion wait. */
  inclusionMs: number
}

export type LocalExecutor = PacketAgent<Delivery>

const PORT_ERRORS = LayerZeroPort.abi.filter((x) => x.type === 'error') as Abi
const ENDPOINT_ERRORS = EndpointV2.abi.filter((x) => x.type === 'error') as Abi

/** The gas limit of an lzReceive transaction for an option of `gas`. */
export function lzReceiveGasLimit(gas: bigint, { baseGas = 60_000n, headroomBps = 1000, maxGas = 3_000_000n } = {}): bigint {
  const limit = gas + (gas * BigInt(headroomBps)) / 10_000n + baseGas
  return limit < maxGas ? limit : maxGas
}

export function createLocalExecutor(cfg: LocalExecutorConfig): LocalExecutor {
  const dest = { ...cfg.destination, endpoint: getAddress(cfg.destination.endpoint) }
  const client = dest.client
  const gasOpts = { baseGas: cfg.baseGas ?? 60_000n, headroomBps: cfg.headroomBps ?? 1000, maxGas: cfg.maxGas ?? 3_000_000n }
  const lock: SerialLock = cfg.lock ?? ((fn) => fn())
  const errorAbi = [...ENDPOINT_ERRORS, ...PORT_ERRORS, ...(cfg.errorAbi ?? [])] as Abi
  const pathArgs = (p: DecodedPacket) => [p.receiver, p.srcEid, p.sender] as const

  async function state(p: DecodedPacket): Promise<'delivered' | 'verified' | 'unverified'> {
    const [hash, lazy] = await Promise.all([
      client.readContract({
        address: dest.endpoint,
        abi: EndpointV2.abi,
        functionName: 'inboundPayloadHash',
        args: [...pathArgs(p), p.nonce],
      }),
      client.readContract({ address: dest.endpoint, abi: EndpointV2.abi, functionName: 'lazyInboundNonce', args: pathArgs(p) }),
    ])
    if (hash === p.payloadHash) return 'verified'
    return hash === zeroHash && p.nonce <= lazy ? 'delivered' : 'unverified'
  }

  return createPacketAgent<Delivery>({
    ...cfg,
    name: `executor ${cfg.origin.eid}→${dest.eid}`,
    dstEid: dest.eid,
    errorAbi,
    isHandled: async (p) => (await state(p)) === 'delivered',
    onDone: cfg.onDelivered,
    async handle(pending, p, ctx) {
      const s = await state(p)
      if (s === 'delivered') return { kind: 'already' }
      if (s === 'unverified') return { kind: 'waiting', reason: 'not verified' }
      const option = lzReceiveOption(pending.options)
      if (!option || option.gas === 0n) throw new PacketMalformedError(`packet ${p.guid} has no lzReceive gas option (${pending.options})`)
      const gasLimit = lzReceiveGasLimit(option.gas, gasOpts)
      const request = {
        address: dest.endpoint,
        abi: EndpointV2.abi,
        functionName: 'lzReceive',
        args: [{ srcEid: p.srcEid, sender: p.sender, nonce: p.nonce }, p.receiver, p.guid, p.message, '0x'],
        value: option.value,
        gas: gasLimit,
      } as const
      const reason = async (blockNumber?: bigint) => {
        try {
          await client.simulateContract({ ...request, account: client.account, ...(blockNumber === undefined ? {} : { blockNumber }) })
          return undefined
        } catch (err) {
          return failureReason(err, errorAbi)
        }
      }
      if (ctx.attempts > 0) {
        const why = await reason()
        if (why !== undefined) throw new PacketExecutionError(p.guid, why)
      }
      const data = encodeFunctionData({ abi: request.abi, functionName: request.functionName, args: request.args })
      const { receipt, inclusionMs } = await sendAndWait(client, lock, () =>
        clientSender(client).send({ to: request.address, data, gas: request.gas, value: request.value }),
      )
      if (receipt.status !== 'success') {
        const why = (await reason(receipt.blockNumber)) ?? `reverted on chain (gas limit ${gasLimit})`
        throw new PacketExecutionError(p.guid, why, { details: `transaction ${receipt.transactionHash}, gas limit ${gasLimit}` })
      }
      return {
        kind: 'done',
        result: {
          guid: p.guid,
          nonce: p.nonce,
          srcEid: p.srcEid,
          sender: p.sender,
          receiver: p.receiver,
          transactionHash: receipt.transactionHash,
          blockNumber: receipt.blockNumber,
          gasUsed: receipt.gasUsed,
          gasLimit,
          inclusionMs,
        },
      }
    },
  })
}
