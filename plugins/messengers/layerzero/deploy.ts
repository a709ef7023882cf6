/**
 * Deploys LayerZero V2 on an EVM chain from the npm packages' own bytecode and wires chains
 * together, then deploys and connects Sertn's {@link LayerZeroPort}s:
 *
 * - {@link deployLayerZeroCore}: EndpointV2(eid, owner), SendUln302 and ReceiveUln302 (registered
 *   on the endpoint), a PriceFeed, an Executor with its ExecutorFeeLib, and a DVN (the local DVN
 *   agent's signers and admins) with its DVNFeeLib; every contract owned by the client's account.
 * - {@link connectLayerZero}: both directions between two cores: on the origin the price of the
 *   destination's gas, the executor's and DVN's destination configs, the send library's default
 *   ULN config (the origin DVN required) and executor config, and the default send library; on
 *   the destination the receive library's default ULN config (the destination DVN required, the
 *   same confirmations) and the default receive library.
 * - {@link deployLayerZeroPort}, {@link setPortPeer}, {@link connectPorts}, {@link allowPortApp};
 *   {@link setAppConfirmations} for one OApp's confirmations.
 */
import { encodeAbiParameters, getAddress, parseEther, parseGwei, zeroAddress, type Abi, type Address } from 'viem'
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
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../../chains/evm/deploy.ts'
import { LayerZeroDeployError } from './errors.ts'
import { addressToBytes32 } from './packet.ts'

export type LayerZeroCoreDeployment = {
  /** This chain's LayerZero endpoint id. */
  eid: number
  endpoint: Address
  sendUln: Address
  receiveUln: Address
  priceFeed: Address
  executor: Address
  executorFeeLib: Address
  /** The DVN contract whose signers and admins are the local DVN agent's. */
  dvn: Address
  dvnFeeLib: Address
  /** The DVN's id (`vid`), signed into every instruction. */
  vid: number
  /** The block before the endpoint's deployment (where agents can start scanning). */
  deployBlock: bigint
}

export type DeployLayerZeroCoreParameters = {
  /** This chain's LayerZero endpoint id (uint32). */
  eid: number
  /** The DVN's multisig signers (the local DVN agent's keys). */
  dvnSigners: readonly Address[]
  /** Signatures an instruction needs (default 1). */
  dvnQuorum?: number
  /** Accounts that may submit DVN instructions (`execute`), besides the deployer (the DVN agent's payer). */
  dvnAdmins?: readonly Address[]
  /** Accounts that may use the Executor contract's own entry points (`execute302`, …), besides the deployer. */
  executorAdmins?: readonly Address[]
  /** The DVN's id (default 1). */
  vid?: number
  /** 10^decimals of the native token, for the fee libraries' USD margins (default 1e18). */
  nativeDecimalsRate?: bigint
}

async function write(
  client: SertnClient,
  request: { address: Address; abi: Abi | readonly unknown[]; functionName: string; args: readonly unknown[] },
) {
  try {
    return await confirm(
      client,
      await client.writeContract({ ...request, abi: request.abi as Abi, args: request.args as unknown[] } as never),
    )
  } catch (err) {
    throw new LayerZeroDeployError(`${request.functionName} on ${request.address} failed`, {
      cause: err,
      details: err instanceof Error ? err.message.split('\n')[0] : String(err),
    })
  }
}

const distinct = (xs: readonly Address[]) => [...new Set(xs.map((x) => getAddress(x)))]

function assertUint32(name: string, v: number) {
  if (!Number.isInteger(v) || v <= 0 || v > 0xffffffff) throw new LayerZeroDeployError(`${name} must be a non-zero uint32, got ${v}`)
}

/** Deploys and initialises a LayerZero V2 core on one chain (every transaction from `client`, which owns it all). */
export async function deployLayerZeroCore(client: SertnClient, params: DeployLayerZeroCoreParameters): Promise<LayerZeroCoreDeployment> {
  const { eid } = params
  assertUint32('eid', eid)
  const vid = params.vid ?? 1
  assertUint32('vid', vid)
  const signers = distinct(params.dvnSigners)
  const quorum = params.dvnQuorum ?? 1
  if (!Number.isInteger(quorum) || quorum < 1 || quorum > signers.length)
    throw new LayerZeroDeployError(`dvnQuorum must be in 1..${signers.length}, got ${quorum}`)
  const owner = getAddress(client.account.address)
  const rate = params.nativeDecimalsRate ?? 10n ** 18n

  const deployBlock = await client.getBlockNumber({ cacheTime: 0 })
  const endpoint = await deployContract(client, EndpointV2, [eid, owner])
  const sendUln = await deployContract(client, SendUln302, [endpoint, 100_000n, 0n])
  const receiveUln = await deployContract(client, ReceiveUln302, [endpoint])
  await write(client, { address: endpoint, abi: EndpointV2.abi, functionName: 'registerLibrary', args: [sendUln] })
  await write(client, { address: endpoint, abi: EndpointV2.abi, functionName: 'registerLibrary', args: [receiveUln] })

  const priceFeed = await deployContract(client, PriceFeed)
  await write(client, { address: priceFeed, abi: PriceFeed.abi, functionName: 'initialize', args: [owner] })
  await write(client, { address: priceFeed, abi: PriceFeed.abi, functionName: 'setEndpoint', args: [endpoint] })

  const executor = await deployContract(client, Executor)
  await write(client, {
    address: executor,
    abi: Executor.abi,
    functionName: 'initialize',
    args: [endpoint, zeroAddress, [sendUln], priceFeed, owner, distinct([owner, ...(params.executorAdmins ?? [])])],
  })
  const executorFeeLib = await deployContract(client, ExecutorFeeLib, [eid, rate])
  await write(client, { address: executor, abi: Executor.abi, functionName: 'setWorkerFeeLib', args: [executorFeeLib] })

  const dvn = await deployContract(client, DVN, [
    eid,
    vid,
    [sendUln],
    priceFeed,
    signers,
    BigInt(quorum),
    distinct([owner, ...(params.dvnAdmins ?? [])]),
  ])
  const dvnFeeLib = await deployContract(client, DVNFeeLib, [eid, rate])
  await write(client, { address: dvn, abi: DVN.abi, functionName: 'setWorkerFeeLib', args: [dvnFeeLib] })

  return { eid, endpoint, sendUln, receiveUln, priceFeed, executor, executorFeeLib, dvn, dvnFeeLib, vid, deployBlock }
}

export type ConnectLayerZeroOptions = {
  /** Origin blocks the DVNs wait for before verifying (the ULN configs' `confirmations`; default 0: local chains). */
  confirmations?: number
  /** The destination's gas price the origin charges for (default 1 gwei; the price ratio is 1:1). */
  gasPrice?: bigint
  /** Calldata gas per byte the price feed charges (default 16). */
  gasPerByte?: number
  /** Gas the executor adds to each message's lzReceive gas in its fee (default 20000). */
  lzReceiveBaseGas?: bigint
  /** Gas the DVN charges for verifying one packet (default 100000). */
  dvnGas?: bigint
  /** Premium of the executor and DVN fees in basis points (default 0: the workers' 12000). */
  multiplierBps?: number
  /** Largest message the send library accepts (default 10000 bytes). */
  maxMessageSize?: number
  /** Most native value a message may ask the executor to deliver (default 1 ether). */
  nativeCap?: bigint
}

export type LayerZeroChain = { client: SertnClient; core: LayerZeroCoreDeployment }

/** `getPrice(uint32)` alone: the feed also has `getPrice(uint16)`, which viem cannot tell apart by its argument. */
const GET_PRICE_ABI = PriceFeed.abi.filter(
  (x) => x.type === 'function' && x.name === 'getPrice' && x.inputs[0]?.type === 'uint32',
) as unknown as readonly [Extract<(typeof PriceFeed.abi)[number], { name: 'getPrice' }>]

/** A value as compared by {@link writeUnlessSet}: numbers and big integers as decimal strings, addresses in lowercase. */
const normalized = (v: unknown): string =>
  JSON.stringify(v, (_, x) => (typeof x === 'bigint' || typeof x === 'number' ? String(x) : typeof x === 'string' ? x.toLowerCase() : x))

/**
 * Sends `request` unless `read()` returns `wanted` already (an object: field by field; an array:
 * item by item), so that connecting a path again sends nothing. A read that fails counts as unset.
 */
async function writeUnlessSet(
  client: SertnClient,
  read: () => Promise<unknown>,
  wanted: Record<string, unknown> | readonly unknown[],
  request: Parameters<typeof write>[1],
) {
  const current = await read().catch(() => undefined)
  const same =
    current !== undefined &&
    (Array.isArray(wanted)
      ? Array.isArray(current) && wanted.every((w, i) => normalized(w) === normalized(current[i]))
      : Object.entries(wanted).every(([k, w]) => normalized(w) === normalized((current as Record<string, unknown>)[k])))
  if (!same) await write(client, request)
}

function ulnConfig(confirmations: number, dvn: Address) {
  return {
    confirmations: BigInt(confirmations),
    requiredDVNCount: 1,
    optionalDVNCount: 0,
    optionalDVNThreshold: 0,
    requiredDVNs: [dvn],
    optionalDVNs: [] as Address[],
  }
}

/** Opens the path `src → dst`: fees and send configuration on `src`, the receive configuration on `dst`. Idempotent. */
export async function connectLayerZeroPath(src: LayerZeroChain, dst: LayerZeroChain, opts: ConnectLayerZeroOptions = {}): Promise<void> {
  const confirmations = opts.confirmations ?? 0
  if (!Number.isInteger(confirmations) || confirmations < 0)
    throw new LayerZeroDeployError(`confirmations must be >= 0, got ${confirmations}`)
  const dstEid = dst.core.eid
  const srcEid = src.core.eid
  const multiplierBps = opts.multiplierBps ?? 0
  const onSrc = async () => {
    const { client, core } = src
    // The price feed keys prices by `eid % 30000`.
    const price = { priceRatio: 10n ** 20n, gasPriceInUnit: opts.gasPrice ?? parseGwei('1'), gasPerByte: opts.gasPerByte ?? 16 }
    await writeUnlessSet(
      client,
      () => client.readContract({ address: core.priceFeed, abi: GET_PRICE_ABI, functionName: 'getPrice', args: [dstEid % 30_000] }),
      price,
      { address: core.priceFeed, abi: PriceFeed.abi, functionName: 'setPrice', args: [[{ eid: dstEid % 30_000, price }]] },
    )
    const executorConfig = {
      lzReceiveBaseGas: opts.lzReceiveBaseGas ?? 20_000n,
      multiplierBps,
      floorMarginUSD: 0n,
      nativeCap: opts.nativeCap ?? parseEther('1'),
      lzComposeBaseGas: 0n,
    }
    await writeUnlessSet(
      client,
      () => client.readContract({ address: core.executor, abi: Executor.abi, functionName: 'dstConfig', args: [dstEid] }),
      Object.values(executorConfig), // the getter's order
      { address: core.executor, abi: Executor.abi, functionName: 'setDstConfig', args: [[{ dstEid, ...executorConfig }]] },
    )
    const dvnConfig = { gas: opts.dvnGas ?? 100_000n, multiplierBps, floorMarginUSD: 0n }
    await writeUnlessSet(
      client,
      () => client.readContract({ address: core.dvn, abi: DVN.abi, functionName: 'dstConfig', args: [dstEid] }),
      Object.values(dvnConfig), // the getter's order
      { address: core.dvn, abi: DVN.abi, functionName: 'setDstConfig', args: [[{ dstEid, ...dvnConfig }]] },
    )
    // The library's own address(0) entry is its default (what the getters return for an OApp with none).
    await writeUnlessSet(
      client,
      () => client.readContract({ address: core.sendUln, abi: SendUln302.abi, functionName: 'getUlnConfig', args: [zeroAddress, dstEid] }),
      ulnConfig(confirmations, core.dvn),
      {
        address: core.sendUln,
        abi: SendUln302.abi,
        functionName: 'setDefaultUlnConfigs',
        args: [[{ eid: dstEid, config: ulnConfig(confirmations, core.dvn) }]],
      },
    )
    const executorOf = { maxMessageSize: opts.maxMessageSize ?? 10_000, executor: core.executor }
    await writeUnlessSet(
      client,
      () =>
        client.readContract({ address: core.sendUln, abi: SendUln302.abi, functionName: 'getExecutorConfig', args: [zeroAddress, dstEid] }),
      executorOf,
      {
        address: core.sendUln,
        abi: SendUln302.abi,
        functionName: 'setDefaultExecutorConfigs',
        args: [[{ eid: dstEid, config: executorOf }]],
      },
    )
    const current = await client.readContract({
      address: core.endpoint,
      abi: EndpointV2.abi,
      functionName: 'defaultSendLibrary',
      args: [dstEid],
    })
    if (getAddress(current) !== getAddress(core.sendUln))
      await write(client, {
        address: core.endpoint,
        abi: EndpointV2.abi,
        functionName: 'setDefaultSendLibrary',
        args: [dstEid, core.sendUln],
      })
  }
  const onDst = async () => {
    const { client, core } = dst
    await writeUnlessSet(
      client,
      () =>
        client.readContract({
          address: core.receiveUln,
          abi: ReceiveUln302.abi,
          functionName: 'getUlnConfig',
          args: [zeroAddress, srcEid],
        }),
      ulnConfig(confirmations, core.dvn),
      {
        address: core.receiveUln,
        abi: ReceiveUln302.abi,
        functionName: 'setDefaultUlnConfigs',
        args: [[{ eid: srcEid, config: ulnConfig(confirmations, core.dvn) }]],
      },
    )
    const current = await client.readContract({
      address: core.endpoint,
      abi: EndpointV2.abi,
      functionName: 'defaultReceiveLibrary',
      args: [srcEid],
    })
    if (getAddress(current) !== getAddress(core.receiveUln))
      await write(client, {
        address: core.endpoint,
        abi: EndpointV2.abi,
        functionName: 'setDefaultReceiveLibrary',
        args: [srcEid, core.receiveUln, 0n],
      })
  }
  if (src.client === dst.client) {
    await onSrc()
    await onDst()
  } else await Promise.all([onSrc(), onDst()])
}

/** Opens both paths between two chains' cores. */
export async function connectLayerZero(a: LayerZeroChain, b: LayerZeroChain, opts: ConnectLayerZeroOptions = {}): Promise<void> {
  if (a.core.eid === b.core.eid) throw new LayerZeroDeployError(`both cores have eid ${a.core.eid}`)
  await connectLayerZeroPath(a, b, opts)
  await connectLayerZeroPath(b, a, opts)
}

const ULN_CONFIG = [
  {
    type: 'tuple',
    components: [
      { name: 'confirmations', type: 'uint64' },
      { name: 'requiredDVNCount', type: 'uint8' },
      { name: 'optionalDVNCount', type: 'uint8' },
      { name: 'optionalDVNThreshold', type: 'uint8' },
      { name: 'requiredDVNs', type: 'address[]' },
      { name: 'optionalDVNs', type: 'address[]' },
    ],
  },
] as const

/**
 * Sets one OApp's ULN `confirmations` for `remoteEid` in a send or receive library (its DVNs stay
 * the defaults; 0 returns to the default confirmations). Sent by the OApp's delegate (a port's owner).
 */
export async function setAppConfirmations(
  client: SertnClient,
  params: { endpoint: Address; library: Address; oapp: Address; remoteEid: number; confirmations: number },
): Promise<void> {
  const config = encodeAbiParameters(ULN_CONFIG, [
    {
      confirmations: BigInt(params.confirmations),
      requiredDVNCount: 0,
      optionalDVNCount: 0,
      optionalDVNThreshold: 0,
      requiredDVNs: [],
      optionalDVNs: [],
    },
  ])
  await write(client, {
    address: params.endpoint,
    abi: EndpointV2.abi,
    functionName: 'setConfig',
    args: [params.oapp, params.library, [{ eid: params.remoteEid, configType: 2, config }]],
  })
}

export type DeployLayerZeroPortParameters = {
  /** This chain's EndpointV2. */
  endpoint: Address
  /** This chain's Sertn domain (its chain id). */
  localDomain: number
  /** Owner of the port and its delegate on the endpoint (default: the client's account). */
  owner?: Address
}

/** Deploys a {@link LayerZeroPort}; the client's account must own it to enrol peers and apps afterwards. */
export async function deployLayerZeroPort(client: SertnClient, params: DeployLayerZeroPortParameters): Promise<Address> {
  assertUint32('localDomain', params.localDomain)
  return deployContract(client, LayerZeroPort, [params.endpoint, getAddress(params.owner ?? client.account.address), params.localDomain])
}

/** The peer port for Sertn domain `domain`, reached as endpoint id `eid` (sent by the port's owner). */
export async function setPortPeer(client: SertnClient, port: Address, peer: { domain: number; eid: number; port: Address }): Promise<void> {
  await write(client, {
    address: port,
    abi: LayerZeroPort.abi,
    functionName: 'setPeerDomain',
    args: [peer.domain, peer.eid, addressToBytes32(peer.port)],
  })
}

export type PortOnChain = { client: SertnClient; port: Address; domain: number; eid: number }

/** Makes two ports each other's peer (each client owns its port). */
export async function connectPorts(a: PortOnChain, b: PortOnChain): Promise<void> {
  await Promise.all([
    setPortPeer(a.client, a.port, { domain: b.domain, eid: b.eid, port: b.port }),
    setPortPeer(b.client, b.port, { domain: a.domain, eid: a.eid, port: a.port }),
  ])
}

/** Allows (or forbids) `app` to send through the port (sent by the port's owner). */
export async function allowPortApp(client: SertnClient, port: Address, app: Address, allowed = true): Promise<void> {
  await write(client, { address: port, abi: LayerZeroPort.abi, functionName: 'setApp', args: [app, allowed] })
}
