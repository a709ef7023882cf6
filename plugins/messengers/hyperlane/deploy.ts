/**
 * Deploys the Hyperlane v3 core on one EVM chain from `@hyperlane-xyz/core`'s own bytecode:
 * Mailbox(domain), MerkleTreeHook (default hook), ProtocolFee (required hook), a
 * StaticMessageIdMultisigIsm made by its factory (default ISM) and a ValidatorAnnounce; then
 * Sertn's HyperlanePort over the mailbox. Ports are joined pairwise ({@link connectHyperlanePorts})
 * and admit the Sertn applications allowed to send ({@link allowHyperlaneApp}).
 */
import { getAddress, type Address, type Hex } from 'viem'
import { HyperlanePort } from '../../../contracts/artifacts/index.ts'
import {
  Mailbox,
  MerkleTreeHook,
  ProtocolFee,
  StaticMessageIdMultisigIsmFactory,
  ValidatorAnnounce,
} from '../../../contracts/artifacts/hyperlane/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../../chains/evm/deploy.ts'

export type HyperlaneCoreDeployment = {
  domain: number
  mailbox: Address
  merkleTreeHook: Address
  protocolFee: Address
  ismFactory: Address
  /** The mailbox's default ISM: a StaticMessageIdMultisigIsm over `validators`. */
  ism: Address
  validatorAnnounce: Address
  /** Sertn's port on this chain (a Hyperlane recipient over the mailbox). */
  port: Address
  /** The chain's Sertn domain (its chain id). */
  sertnDomain: number
  /** The block the mailbox was deployed in (where agents can start scanning). */
  deployBlock: bigint
}

export type DeployHyperlaneCoreParameters = {
  /** This chain's Hyperlane domain id. */
  domain: number
  /** The default ISM's validators, in the order their signatures must appear in metadata. */
  validators: readonly Address[]
  threshold: number
  /** Owner of the mailbox and the protocol fee hook; the client's account by default. */
  owner?: Address
  /** Protocol fee per dispatch (wei); 0 by default. */
  protocolFee?: bigint
  maxProtocolFee?: bigint
  /** Receives the protocol fees; the owner by default. */
  beneficiary?: Address
}

/** Deploys and initialises a Hyperlane core (sending all transactions from `client`). */
export async function deployHyperlaneCore(client: SertnClient, params: DeployHyperlaneCoreParameters): Promise<HyperlaneCoreDeployment> {
  const { domain, threshold } = params
  const validators = params.validators.map((v) => getAddress(v))
  if (!Number.isInteger(domain) || domain < 0 || domain > 0xffffffff) throw new Error(`domain must be a uint32, got ${domain}`)
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > validators.length || threshold > 255)
    throw new Error(`threshold must be in 1..${validators.length}, got ${threshold}`)
  if (new Set(validators).size !== validators.length) throw new Error('validators must be distinct')
  const owner = getAddress(params.owner ?? client.account.address)
  const fee = params.protocolFee ?? 0n

  const deployBlock = await client.getBlockNumber({ cacheTime: 0 })
  const mailbox = await deployContract(client, Mailbox, [domain])
  const merkleTreeHook = await deployContract(client, MerkleTreeHook, [mailbox])
  const protocolFee = await deployContract(client, ProtocolFee, [
    params.maxProtocolFee ?? (fee > 0n ? fee : 1n),
    fee,
    params.beneficiary ?? owner,
    owner,
  ])
  const ismFactory = await deployContract(client, StaticMessageIdMultisigIsmFactory)
  const { result: ism, request } = await client.simulateContract({
    address: ismFactory,
    abi: StaticMessageIdMultisigIsmFactory.abi,
    functionName: 'deploy',
    args: [validators, threshold],
  })
  await confirm(client, await client.writeContract(request))
  if (!(await client.getCode({ address: ism }))) throw new Error(`ISM factory did not deploy ${ism}`)
  await confirm(
    client,
    await client.writeContract({
      address: mailbox,
      abi: Mailbox.abi,
      functionName: 'initialize',
      args: [owner, ism, merkleTreeHook, protocolFee],
    }),
  )
  const validatorAnnounce = await deployContract(client, ValidatorAnnounce, [mailbox])
  const sertnDomain = client.chain.id
  const port = await deployContract(client, HyperlanePort, [owner, mailbox, sertnDomain])
  return {
    domain,
    mailbox,
    merkleTreeHook,
    protocolFee,
    ismFactory,
    ism: getAddress(ism),
    validatorAnnounce,
    port,
    sertnDomain,
    deployBlock,
  }
}

/** What joining two ports needs of each side. */
export type PortEnd = Pick<HyperlaneCoreDeployment, 'port' | 'domain' | 'sertnDomain'>

const bytes32 = (a: Address): Hex => `0x${getAddress(a).slice(2).toLowerCase().padStart(64, '0')}`

/** Makes two chains' ports peers of each other (each sent by its own chain's port owner). Idempotent. */
export async function connectHyperlanePorts(
  a: { client: SertnClient; deployment: PortEnd },
  b: { client: SertnClient; deployment: PortEnd },
): Promise<void> {
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    const [networkDomain, peer] = await from.client.readContract({
      address: from.deployment.port,
      abi: HyperlanePort.abi,
      functionName: 'peerOf',
      args: [to.deployment.sertnDomain],
    })
    if (networkDomain === to.deployment.domain && peer.toLowerCase() === bytes32(to.deployment.port)) continue
    await confirm(
      from.client,
      await from.client.writeContract({
        address: from.deployment.port,
        abi: HyperlanePort.abi,
        functionName: 'setPeer',
        args: [to.deployment.sertnDomain, to.deployment.domain, bytes32(to.deployment.port)],
      }),
    )
  }
}

/** Allows the Sertn application `app` to send through the chain's port. Idempotent. */
export async function allowHyperlaneApp(client: SertnClient, port: Address, app: Address): Promise<void> {
  if (await client.readContract({ address: port, abi: HyperlanePort.abi, functionName: 'isApp', args: [app] })) return
  await confirm(client, await client.writeContract({ address: port, abi: HyperlanePort.abi, functionName: 'setApp', args: [app, true] }))
}

/** Deploys another StaticMessageIdMultisigIsm from an existing factory (e.g. for one recipient). */
export async function deployMessageIdMultisigIsm(
  client: SertnClient,
  ismFactory: Address,
  validators: readonly Address[],
  threshold: number,
): Promise<Address> {
  const { result, request } = await client.simulateContract({
    address: ismFactory,
    abi: StaticMessageIdMultisigIsmFactory.abi,
    functionName: 'deploy',
    args: [validators.map((v) => getAddress(v)), threshold],
  })
  await confirm(client, await client.writeContract(request))
  return getAddress(result)
}
