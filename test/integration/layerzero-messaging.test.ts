/**
 * Real LayerZero V2 contracts (EndpointV2, SendUln302, ReceiveUln302, DVN, Executor, fee libraries
 * and PriceFeed from the @layerzerolabs npm packages' bytecode) on two anvils, Sertn's
 * LayerZeroPort on each, and the local DVN and executor agents standing in for LayerZero's
 * off-chain network: delivery both ways exactly once, forged senders and origins refused by the
 * ports and the endpoint, replays refused by the endpoint, agents killed between verification and
 * execution that resume from their file cursors without delivering twice, and a message that its
 * recipient rejects kept as rejected (and delivered once requeued after the recipient accepts).
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getAbiItem, keccak256, parseEventLogs, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { LayerZeroPort, LayerZeroTestApp } from '../../contracts/artifacts/index.ts'
import { EndpointV2 } from '../../contracts/artifacts/layerzero/index.ts'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { clientSender } from '../../chains/evm/plugin/sender.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import {
  addressToBytes32,
  allowPortApp,
  connectLayerZero,
  connectPorts,
  createLocalDvn,
  createLocalExecutor,
  decodePacket,
  deployLayerZeroCore,
  deployLayerZeroPort,
  FilePacketCursorStore,
  lzReceiveGasLimit,
  lzReceiveOption,
  MemoryPacketCursorStore,
  setAppConfirmations,
  setPortPeer,
  startLayerZeroAgents,
  type Delivery,
  type LayerZeroAgents,
  type LayerZeroCoreDeployment,
  type LocalDvnConfig,
  type LocalExecutorConfig,
  type PacketCursorStore,
  type RejectedPacket,
  type Verification,
} from '../../plugins/messengers/layerzero/index.ts'
import { expectRevert, waitUntil } from '../support/chain.ts'

const DOMAIN_A = 31337
const DOMAIN_B = 31339
const EID_A = 40_101
const EID_B = 40_102
const GAS_LIMIT = 100_000n
const signer = privateKeyToAccount(keccak256(toHex('sertn layerzero test dvn signer')))
const PACKET_DELIVERED = getAbiItem({ abi: EndpointV2.abi, name: 'PacketDelivered' })
/** The test app's ABI with the port's errors, which its calls to the port may revert with. */
const APP_ABI = [...LayerZeroTestApp.abi, ...LayerZeroPort.abi.filter((x) => x.type === 'error')] as const

let anvilA: AnvilInstance | undefined
let anvilB: AnvilInstance | undefined
let tmp: string | undefined
const running: LayerZeroAgents[] = []
/** Clients: the deployer owns everything; the DVN agent submits DVN instructions; the executor pays lzReceive; a user sends. */
const c = {} as Record<'deployerA' | 'deployerB' | 'dvnA' | 'dvnB' | 'execA' | 'execB' | 'userA' | 'userB', SertnClient>
let coreA: LayerZeroCoreDeployment
let coreB: LayerZeroCoreDeployment
let portA: Address
let portB: Address
let appA: Address
let appB: Address
const gas = { send: [] as bigint[], lzReceive: [] as bigint[], dvnExecute: [] as bigint[] }
const latency: { totalMs: number; verifiedMs: number; dvnInclusionMs: number; executorInclusionMs: number }[] = []

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sertn-layerzero-'))
  // allSettled: if one start fails, the other anvil is still assigned and stopped in afterAll.
  const started = await Promise.allSettled([startAnvil({ chainId: DOMAIN_A }), startAnvil({ chainId: DOMAIN_B })])
  anvilA = started[0].status === 'fulfilled' ? started[0].value : undefined
  anvilB = started[1].status === 'fulfilled' ? started[1].value : undefined
  for (const s of started) if (s.status === 'rejected') throw s.reason
  if (!anvilA || !anvilB) throw new Error('anvil did not start')
  const roles = { deployer: 0, dvn: 1, exec: 2, user: 3 } as const
  for (const [role, index] of Object.entries(roles)) {
    c[`${role}A` as keyof typeof c] = createSertnClient(anvilA.chain, anvilAccount(index))
    c[`${role}B` as keyof typeof c] = createSertnClient(anvilB.chain, anvilAccount(index))
  }
  const coreParams = { dvnSigners: [signer.address], dvnAdmins: [c.dvnA.account.address] }
  ;[coreA, coreB] = await Promise.all([
    deployLayerZeroCore(c.deployerA, { eid: EID_A, ...coreParams }),
    deployLayerZeroCore(c.deployerB, { eid: EID_B, ...coreParams }),
  ])
  await connectLayerZero({ client: c.deployerA, core: coreA }, { client: c.deployerB, core: coreB })
  ;[portA, portB] = await Promise.all([
    deployLayerZeroPort(c.deployerA, { endpoint: coreA.endpoint, localDomain: DOMAIN_A }),
    deployLayerZeroPort(c.deployerB, { endpoint: coreB.endpoint, localDomain: DOMAIN_B }),
  ])
  await connectPorts(
    { client: c.deployerA, port: portA, domain: DOMAIN_A, eid: EID_A },
    { client: c.deployerB, port: portB, domain: DOMAIN_B, eid: EID_B },
  )
  ;[appA, appB] = await Promise.all([
    deployContract(c.deployerA, LayerZeroTestApp, [portA]),
    deployContract(c.deployerB, LayerZeroTestApp, [portB]),
  ])
  await Promise.all([allowPortApp(c.deployerA, portA, appA), allowPortApp(c.deployerB, portB, appB)])
})

afterAll(async () => {
  await Promise.allSettled(running.map((a) => a.stop()))
  await Promise.allSettled([anvilA?.stop(), anvilB?.stop()])
  if (tmp) await rm(tmp, { recursive: true, force: true })
  if (gas.send.length > 0)
    console.log(
      `[layerzero] gas: app send (port + endpoint + ULN) ${gas.send.join(', ')}; DVN.execute (verify + commit) ${gas.dvnExecute.join(', ')}; lzReceive ${gas.lzReceive.join(', ')}`,
    )
  if (latency.length > 0) {
    const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)
    const own = latency.map((l) => l.totalMs - l.dvnInclusionMs - l.executorInclusionMs)
    const dvnOwn = latency.map((l) => l.verifiedMs - l.dvnInclusionMs)
    const execOwn = latency.map((l) => l.totalMs - l.verifiedMs - l.executorInclusionMs)
    console.log(
      `[layerzero] per hop (ms), origin receipt → delivery receipt: ${latency.map((l) => l.totalMs).join(', ')}; ` +
        `destination inclusion (DVN.execute + lzReceive, submit → receipt): ${latency.map((l) => l.dvnInclusionMs + l.executorInclusionMs).join(', ')}; ` +
        `agents' own time: ${own.join(', ')} (mean ${mean(own)}: DVN ${mean(dvnOwn)}, executor ${mean(execOwn)})`,
    )
  }
})

type Side = 'A' | 'B'
const other = (s: Side): Side => (s === 'A' ? 'B' : 'A')
const domainOf = (s: Side) => (s === 'A' ? DOMAIN_A : DOMAIN_B)
const user = (s: Side) => (s === 'A' ? c.userA : c.userB)

/** The user sends `body` from `app` on `from` to `to` on the other chain, paying the quote; the PacketSent decoded. */
async function send(from: Side, app: Address, to: Address, body: Hex, gasLimit = GAS_LIMIT) {
  const client = user(from)
  const args = [domainOf(other(from)), to, body, gasLimit] as const
  const fee = await client.readContract({ address: app, abi: LayerZeroTestApp.abi, functionName: 'quote', args })
  const receipt = await confirm(
    client,
    await client.writeContract({ address: app, abi: LayerZeroTestApp.abi, functionName: 'send', args, value: fee }),
  )
  const at = performance.now()
  gas.send.push(receipt.gasUsed)
  const [sent] = parseEventLogs({ abi: LayerZeroPort.abi, eventName: 'PortMessageSent', logs: receipt.logs })
  const [packetSent] = parseEventLogs({ abi: EndpointV2.abi, eventName: 'PacketSent', logs: receipt.logs })
  if (!sent || !packetSent) throw new Error('no PortMessageSent / PacketSent log')
  const packet = decodePacket(packetSent.args.encodedPayload)
  expect(packet.guid).toBe(sent.args.messageId)
  return { guid: packet.guid, packet, options: packetSent.args.options, fee, receipt, at }
}

const deliveries = (s: Side, app: Address) => user(s).readContract({ address: app, abi: LayerZeroTestApp.abi, functionName: 'deliveries' })
const nextBlock = async (s: Side) => (await user(s).getBlockNumber({ cacheTime: 0 })) + 1n

/** PacketDelivered logs on `s`'s endpoint for this packet. */
async function deliveredLogs(s: Side, packet: { srcEid: number; sender: Hex; nonce: bigint; receiver: Address }) {
  const core = s === 'A' ? coreA : coreB
  const logs = await user(s).getLogs({ address: core.endpoint, event: PACKET_DELIVERED, fromBlock: core.deployBlock, strict: true })
  return logs.filter(
    (l) =>
      l.args.receiver === packet.receiver &&
      l.args.origin.srcEid === packet.srcEid &&
      l.args.origin.sender === packet.sender &&
      l.args.origin.nonce === packet.nonce,
  )
}

/** A DVN for A → B (the DVN agent's client on B submits; signs with `signer`). */
function dvnAB(cursorStore: PacketCursorStore, fromBlock: bigint, more: Partial<LocalDvnConfig> = {}) {
  return createLocalDvn({
    origin: { client: c.dvnA, endpoint: coreA.endpoint, eid: EID_A },
    destination: { client: c.dvnB, endpoint: coreB.endpoint, receiveUln: coreB.receiveUln, dvn: coreB.dvn, eid: EID_B },
    signers: [signer],
    cursorStore,
    fromBlock,
    pollingIntervalMs: 50,
    onVerified: (v) => gas.dvnExecute.push(v.gasUsed),
    ...more,
  })
}

/** An executor for A → B (the executor's client on B pays). */
function executorAB(cursorStore: PacketCursorStore, fromBlock: bigint, more: Partial<LocalExecutorConfig> = {}) {
  return createLocalExecutor({
    origin: { client: c.execA, endpoint: coreA.endpoint, eid: EID_A },
    destination: { client: c.execB, endpoint: coreB.endpoint, eid: EID_B },
    cursorStore,
    fromBlock,
    pollingIntervalMs: 50,
    errorAbi: LayerZeroTestApp.abi,
    onDelivered: (d) => gas.lzReceive.push(d.gasUsed),
    ...more,
  })
}

describe('layerzero messaging with the local agents running', () => {
  let agents: LayerZeroAgents
  const verified = new Map<Hex, { v: Verification; at: number }>()
  const delivered = new Map<Hex, { d: Delivery; at: number }>()
  let first: Awaited<ReturnType<typeof send>>

  beforeAll(() => {
    const chain = (s: Side) => ({
      name: s,
      core: s === 'A' ? coreA : coreB,
      dvnClient: s === 'A' ? c.dvnA : c.dvnB,
      executorClient: s === 'A' ? c.execA : c.execB,
    })
    agents = startLayerZeroAgents({
      chains: [chain('A'), chain('B')],
      dvnSigners: [signer],
      pollingIntervalMs: 50,
      errorAbi: LayerZeroTestApp.abi,
      onVerified: (_r, v) => {
        verified.set(v.guid, { v, at: performance.now() })
        gas.dvnExecute.push(v.gasUsed)
      },
      onDelivered: (_r, d) => {
        delivered.set(d.guid, { d, at: performance.now() })
        gas.lzReceive.push(d.gasUsed)
      },
    })
    running.push(agents)
  })
  afterAll(async () => {
    await agents?.stop()
  })

  /** Waits for the delivery of `sent` and records the hop's latency. */
  async function deliveredOnce(sent: Awaited<ReturnType<typeof send>>) {
    const d = await waitUntil('delivery', () => delivered.get(sent.guid), 20_000, 5)
    const v = verified.get(sent.guid)!
    latency.push({
      totalMs: Math.round(d.at - sent.at),
      verifiedMs: Math.round(v.at - sent.at),
      dvnInclusionMs: v.v.inclusionMs,
      executorInclusionMs: d.d.inclusionMs,
    })
    return d.d
  }

  test('a message sent A → B is verified by the DVN contract and delivered exactly once', async () => {
    const body = toHex('hello from A')
    first = await send('A', appA, appB, body)
    expect(first.fee).toBeGreaterThan(0n)
    expect(first.packet).toMatchObject({ srcEid: EID_A, dstEid: EID_B, sender: addressToBytes32(portA), receiver: portB, nonce: 1n })
    // The port built the executor option on chain: the app's gas, the 1/64 kept back by its call, and the port's overhead.
    const overhead = await c.userA.readContract({ address: portA, abi: LayerZeroPort.abi, functionName: 'RECEIVE_GAS_OVERHEAD' })
    expect(lzReceiveOption(first.options)).toEqual({ gas: GAS_LIMIT + GAS_LIMIT / 63n + overhead, value: 0n })
    expect(await c.userA.readContract({ address: portA, abi: LayerZeroPort.abi, functionName: 'optionsFor', args: [GAS_LIMIT] })).toBe(
      first.options,
    )
    const d = await deliveredOnce(first)
    expect(d).toMatchObject({ guid: first.guid, nonce: 1n, srcEid: EID_A, receiver: portB })
    expect(await deliveries('B', appB)).toBe(1n)
    const read = (fn: 'lastOrigin' | 'lastSender' | 'lastBody') =>
      c.userB.readContract({ address: appB, abi: LayerZeroTestApp.abi, functionName: fn })
    expect(await read('lastOrigin')).toBe(DOMAIN_A)
    expect(await read('lastSender')).toBe(addressToBytes32(appA))
    expect(await read('lastBody')).toBe(body)
    // The DVN and the executor sent through their accounts' process-wide queues, which every other
    // sender from those accounts in this process shares (no two of them take one nonce).
    expect(clientSender(c.dvnB).submitted).toBeGreaterThan(0)
    expect(clientSender(c.execB).submitted).toBeGreaterThan(0)
    const receipt = await c.userB.getTransactionReceipt({ hash: d.transactionHash })
    const [received] = parseEventLogs({ abi: LayerZeroPort.abi, eventName: 'PortMessageReceived', logs: receipt.logs })
    expect(received?.args).toMatchObject({ origin: DOMAIN_A, recipient: appB, messageId: first.guid, sender: addressToBytes32(appA) })
    expect(await deliveredLogs('B', first.packet)).toHaveLength(1)
    // More polls do nothing more.
    const polled = await agents.pollAll()
    for (const r of [...polled.dvns.values(), ...polled.executors.values()])
      expect(r).toMatchObject({ completed: [], pending: 0, rejected: [] })
    expect(await deliveries('B', appB)).toBe(1n)
    expect(await deliveredLogs('B', first.packet)).toHaveLength(1)
  })

  test('the reverse direction, B → A, and a few more messages each way are delivered once each', async () => {
    const back = await send('B', appB, appA, toHex('hello from B'))
    expect(back.packet).toMatchObject({ srcEid: EID_B, dstEid: EID_A, sender: addressToBytes32(portB), receiver: portA })
    await deliveredOnce(back)
    expect(await deliveries('A', appA)).toBe(1n)
    expect(await c.userA.readContract({ address: appA, abi: LayerZeroTestApp.abi, functionName: 'lastOrigin' })).toBe(DOMAIN_B)
    expect(await deliveredLogs('A', back.packet)).toHaveLength(1)
    for (let i = 0; i < 3; i++) {
      await deliveredOnce(await send('A', appA, appB, toHex(`A #${i}`)))
      await deliveredOnce(await send('B', appB, appA, toHex(`B #${i}`)))
    }
    expect(await deliveries('B', appB)).toBe(4n)
    expect(await deliveries('A', appA)).toBe(4n)
  })

  test('a fee below the quote reverts with PortInsufficientFee; a surplus is refunded to the app', async () => {
    const args = [DOMAIN_B, appB, toHex('cheap'), GAS_LIMIT] as const
    const fee = await c.userA.readContract({ address: appA, abi: LayerZeroTestApp.abi, functionName: 'quote', args })
    const err = await expectRevert(c.userA.simulateContract({ address: appA, abi: APP_ABI, functionName: 'send', args, value: fee - 1n }))
    expect(err).toEqual({ errorName: 'PortInsufficientFee', args: [fee, fee - 1n] })
    const before = await c.userA.getBalance({ address: appA })
    const receipt = await confirm(
      c.userA,
      await c.userA.writeContract({ address: appA, abi: LayerZeroTestApp.abi, functionName: 'send', args, value: fee + 12345n }),
    )
    expect(await c.userA.getBalance({ address: appA })).toBe(before + 12345n)
    const [sent] = parseEventLogs({ abi: LayerZeroPort.abi, eventName: 'PortMessageSent', logs: receipt.logs })
    await waitUntil('delivery', () => delivered.get(sent!.args.messageId), 20_000, 5)
    expect(await deliveries('B', appB)).toBe(5n)
  })

  test('a replayed lzReceive of a delivered packet reverts on the endpoint', async () => {
    const p = first.packet
    const request = {
      address: coreB.endpoint,
      abi: EndpointV2.abi,
      functionName: 'lzReceive',
      args: [{ srcEid: p.srcEid, sender: p.sender, nonce: p.nonce }, p.receiver, p.guid, p.message, '0x'],
    } as const
    const err = await expectRevert(c.execB.simulateContract(request))
    expect(err).toEqual({ errorName: 'LZ_PayloadHashNotFound', args: [`0x${'0'.repeat(64)}`, p.payloadHash] })
    // A real transaction reverts too (a fixed gas limit skips the estimate).
    const hash = await c.execB.writeContract({ ...request, gas: 500_000n })
    expect((await c.execB.waitForTransactionReceipt({ hash })).status).toBe('reverted')
    expect(await deliveredLogs('B', p)).toHaveLength(1)
    expect(await deliveries('B', appB)).toBe(5n)
  })
})

describe('forged senders and origins', () => {
  test('an app the port does not allow cannot send', async () => {
    const stranger = await deployContract(c.deployerA, LayerZeroTestApp, [portA])
    const err = await expectRevert(
      c.userA.simulateContract({
        address: stranger,
        abi: APP_ABI,
        functionName: 'send',
        args: [DOMAIN_B, appB, toHex('let me in'), GAS_LIMIT],
        value: 10n ** 16n,
      }),
    )
    expect(err).toEqual({ errorName: 'PortUnauthorizedApp', args: [stranger] })
    // Nor may anyone call the port directly, nor send to a domain without a peer.
    expect(
      await expectRevert(
        c.userA.simulateContract({
          address: portA,
          abi: LayerZeroPort.abi,
          functionName: 'send',
          args: [DOMAIN_B, addressToBytes32(appB), '0x', 1n],
        }),
      ),
    ).toEqual({ errorName: 'PortUnauthorizedApp', args: [c.userA.account.address] })
    expect(
      await expectRevert(c.userA.readContract({ address: appA, abi: APP_ABI, functionName: 'quote', args: [1, appB, '0x', 1n] })),
    ).toEqual({ errorName: 'PortUnknownDomain', args: [1] })
  })

  test('only the endpoint may call lzReceive, and only the app’s port may deliver to it', async () => {
    const origin = { srcEid: EID_A, sender: addressToBytes32(portA), nonce: 99n }
    const envelope = `0x${addressToBytes32(appA).slice(2)}${addressToBytes32(appB).slice(2)}` as Hex
    expect(
      await expectRevert(
        c.userB.simulateContract({
          address: portB,
          abi: LayerZeroPort.abi,
          functionName: 'lzReceive',
          args: [origin, keccak256('0x01'), envelope, c.userB.account.address, '0x'],
        }),
      ),
    ).toEqual({ errorName: 'PortUnauthorizedCaller', args: [c.userB.account.address] })
    expect(
      await expectRevert(
        c.userB.simulateContract({
          address: appB,
          abi: LayerZeroTestApp.abi,
          functionName: 'receiveMessage',
          args: [DOMAIN_A, addressToBytes32(appA), '0x'],
        }),
      ),
    ).toEqual({ errorName: 'TestAppNotPort', args: [c.userB.account.address] })
  })

  test('a packet from an OApp that is not the peer port is refused by the endpoint and never reaches the recipient', async () => {
    // A rogue port on A, claiming B's port as its peer and allowing a rogue app, sends to appB.
    const roguePort = await deployLayerZeroPort(c.deployerA, { endpoint: coreA.endpoint, localDomain: DOMAIN_A })
    await setPortPeer(c.deployerA, roguePort, { domain: DOMAIN_B, eid: EID_B, port: portB })
    const rogueApp = await deployContract(c.deployerA, LayerZeroTestApp, [roguePort])
    await allowPortApp(c.deployerA, roguePort, rogueApp)
    const from = await nextBlock('A')
    const before = await deliveries('B', appB)
    const sent = await send('A', rogueApp, appB, toHex('I am port A, honest'))
    expect(sent.packet).toMatchObject({ sender: addressToBytes32(roguePort), receiver: portB })

    let t = 1_000_000
    const rejected: RejectedPacket[] = []
    const dvn = dvnAB(new MemoryPacketCursorStore(), from, {
      maxAttempts: 2,
      now: () => t,
      onError: () => {},
      onRejected: (r) => rejected.push(r),
    })
    // The DVN verifies, but the endpoint refuses to take the packet: portB's peer for A is portA.
    expect(await dvn.poll()).toMatchObject({ seen: 1, completed: [], pending: 1 })
    const [pending] = await dvn.pending()
    expect(pending).toMatchObject({ guid: sent.guid, attempts: 1, lastError: expect.stringMatching(/LZ_PathNotInitializable/) })
    t += 1_000
    expect(await dvn.poll()).toMatchObject({
      completed: [],
      pending: 0,
      rejected: [expect.objectContaining({ guid: sent.guid, attempts: 2 })],
    })
    expect(rejected.map((r) => r.guid)).toEqual([sent.guid])
    await dvn[Symbol.asyncDispose]()

    // The packet was never verified, so nobody can execute it …
    const p = sent.packet
    const request = {
      address: coreB.endpoint,
      abi: EndpointV2.abi,
      functionName: 'lzReceive',
      args: [{ srcEid: EID_A, sender: p.sender, nonce: p.nonce }, portB, p.guid, p.message, '0x'],
    } as const
    expect(await expectRevert(c.execB.simulateContract(request))).toEqual({ errorName: 'LZ_InvalidNonce', args: [p.nonce] })
    // … and were the endpoint to hand it over anyway (a call from the endpoint's address), portB refuses a non-peer.
    expect(
      await expectRevert(
        c.userB.simulateContract({
          account: coreB.endpoint,
          address: portB,
          abi: LayerZeroPort.abi,
          functionName: 'lzReceive',
          args: [{ srcEid: EID_A, sender: p.sender, nonce: p.nonce }, p.guid, p.message, c.execB.account.address, '0x'],
        }),
      ),
    ).toEqual({ errorName: 'PortUnknownPeer', args: [EID_A, p.sender] })
    expect(await deliveries('B', appB)).toBe(before)
    expect(await deliveredLogs('B', sent.packet)).toHaveLength(0)
  })
})

describe('agents killed between verification and execution', () => {
  test('a DVN and an executor restarted from their file cursors deliver exactly once', async () => {
    const dir = join(tmp!, 'restart')
    const dvnStore = () => new FilePacketCursorStore(dir, 'dvn.json')
    const execStore = (name = 'executor.json') => new FilePacketCursorStore(dir, name)
    const from = await nextBlock('A')
    const before = await deliveries('B', appB)
    const sent = await send('A', appA, appB, toHex('survives a crash'))

    // The first DVN sees the packet and dies before verifying it.
    const dvn1 = dvnAB(dvnStore(), from)
    expect(await dvn1.scan()).toBe(1)
    await dvn1[Symbol.asyncDispose]()
    await expect(dvn1.poll()).rejects.toThrow(/disposed/)
    // The executor sees it too (pending, not verified: waiting is not an attempt) …
    const exec1 = executorAB(execStore(), from)
    expect(await exec1.poll()).toMatchObject({ seen: 1, completed: [], pending: 1 })
    expect((await execStore().load())?.pending).toEqual([expect.not.objectContaining({ attempts: expect.anything() })])

    // … a second DVN resumes from the file, verifies, and is stopped through its AbortSignal …
    const controller = new AbortController()
    const dvn2 = dvnAB(dvnStore(), from, { onVerified: () => controller.abort() })
    dvn2.start(controller.signal)
    try {
      await waitUntil('the DVN stopped', () => controller.signal.aborted, 20_000, 5)
    } finally {
      controller.abort()
      await dvn2.stop()
    }
    expect((await dvnStore().load())?.pending).toEqual([])
    // … and the executor dies before calling lzReceive.
    await exec1[Symbol.asyncDispose]()
    expect(await deliveries('B', appB)).toBe(before)
    await copyFile(join(dir, 'executor.json'), join(dir, 'executor-snapshot.json'))

    // A restarted executor delivers it, once.
    const exec2 = executorAB(execStore(), from)
    const res = await exec2.poll()
    expect(res).toMatchObject({ seen: 0, pending: 0 })
    expect(res.completed.map((d) => d.guid)).toEqual([sent.guid])
    expect((await exec2.poll()).completed).toEqual([])
    await exec2[Symbol.asyncDispose]()
    // An executor that crashed after sending lzReceive but before saving its cursor finds it delivered and sends nothing.
    const nonce = await c.execB.getTransactionCount({ address: c.execB.account.address })
    const exec3 = executorAB(execStore('executor-snapshot.json'), from)
    expect(await exec3.poll()).toMatchObject({ completed: [], alreadyCompleted: [sent.guid], pending: 0 })
    await exec3[Symbol.asyncDispose]()
    // So does a DVN that rescans the block: the packet is delivered, nothing to verify.
    const dvn3 = dvnAB(new MemoryPacketCursorStore(), from)
    expect(await dvn3.poll()).toMatchObject({ seen: 1, completed: [], alreadyCompleted: [sent.guid] })
    await dvn3[Symbol.asyncDispose]()
    expect(await c.execB.getTransactionCount({ address: c.execB.account.address })).toBe(nonce)
    expect(await deliveries('B', appB)).toBe(before + 1n)
    expect(await deliveredLogs('B', sent.packet)).toHaveLength(1)
  })
})

describe('a message its recipient rejects', () => {
  test('is retried with backoff, then kept as rejected and reported; requeued after the recipient accepts, it is delivered once', async () => {
    const rejecting = await deployContract(c.deployerB, LayerZeroTestApp, [portB])
    await confirm(
      c.deployerB,
      await c.deployerB.writeContract({ address: rejecting, abi: LayerZeroTestApp.abi, functionName: 'setRejecting', args: [true] }),
    )
    const from = await nextBlock('A')
    const sent = await send('A', appA, rejecting, toHex('not now'))
    const dvn = dvnAB(new MemoryPacketCursorStore(), from)
    expect((await dvn.poll()).completed.map((v) => v.guid)).toEqual([sent.guid])
    await dvn[Symbol.asyncDispose]()

    const dir = join(tmp!, 'rejecting')
    let t = 5_000_000
    const errors: unknown[] = []
    const reported: RejectedPacket[] = []
    const make = () =>
      executorAB(new FilePacketCursorStore(dir), from, {
        maxAttempts: 3,
        retryBackoffMs: 1_000,
        maxRetryBackoffMs: 1_500,
        now: () => t,
        onError: (e) => errors.push(e),
        onRejected: (r) => reported.push(r),
      })
    const pendingOf = async () => (await new FilePacketCursorStore(dir).load())!.pending
    const reason = `TestAppRejected(${DOMAIN_A}, ${addressToBytes32(appA)})`
    const txCount = () => c.execB.getTransactionCount({ address: c.execB.account.address })

    const e1 = make()
    // Attempt 1 is sent without a simulation: it reverts on chain.
    const n0 = await txCount()
    expect(await e1.poll()).toMatchObject({ seen: 1, completed: [], rejected: [], pending: 1 })
    expect(await txCount()).toBe(n0 + 1)
    expect(await pendingOf()).toEqual([
      expect.objectContaining({
        guid: sent.guid,
        attempts: 1,
        nextAttemptAt: t + 1_000,
        lastError: reason,
        txHash: sent.receipt.transactionHash,
      }),
    ])
    expect(String(errors.at(-1))).toMatch(/attempt 1 of 3\): TestAppRejected/)
    // Not due yet: no attempt.
    t += 999
    expect(await e1.poll()).toMatchObject({ completed: [], pending: 1 })
    expect((await pendingOf())[0]?.attempts).toBe(1)
    await e1[Symbol.asyncDispose]()

    // A restarted executor keeps the count; retries are simulated first: no more reverted transactions.
    const e2 = make()
    t += 1
    expect(await e2.poll()).toMatchObject({ seen: 0, completed: [], pending: 1 })
    expect(await pendingOf()).toEqual([expect.objectContaining({ attempts: 2, nextAttemptAt: t + 1_500 })])
    t += 1_500
    const res = await e2.poll()
    const entry = { guid: sent.guid, nonce: sent.packet.nonce.toString(), attempts: 3, lastError: reason, rejectedAt: t }
    expect(res).toMatchObject({ completed: [], pending: 0, rejected: [expect.objectContaining(entry)] })
    expect(reported).toEqual([expect.objectContaining(entry)])
    expect(await e2.rejected()).toEqual([expect.objectContaining(entry)])
    expect(await txCount()).toBe(n0 + 1)
    // Kept, never tried again.
    t += 3_600_000
    expect(await e2.poll()).toMatchObject({ completed: [], rejected: [], pending: 0 })
    expect(await deliveries('B', rejecting)).toBe(0n)
    expect(await deliveredLogs('B', sent.packet)).toHaveLength(0)

    // The recipient accepts now; the operator requeues the packet, and it is delivered once.
    await confirm(
      c.deployerB,
      await c.deployerB.writeContract({ address: rejecting, abi: LayerZeroTestApp.abi, functionName: 'setRejecting', args: [false] }),
    )
    expect(await e2.requeue([sent.guid])).toBe(1)
    const again = await e2.poll()
    expect(again.completed.map((d) => d.guid)).toEqual([sent.guid])
    expect(again).toMatchObject({ pending: 0, rejected: [] })
    expect(await e2.rejected()).toEqual([])
    expect(await deliveries('B', rejecting)).toBe(1n)
    expect(await deliveredLogs('B', sent.packet)).toHaveLength(1)
    await e2[Symbol.asyncDispose]()
  })

  test('the executor pays at most its maximum gas: a recipient that burns more runs out and is retried', async () => {
    expect(lzReceiveGasLimit(100_000n)).toBe(100_000n + 10_000n + 60_000n)
    expect(lzReceiveGasLimit(10_000_000n, { maxGas: 1_000_000n })).toBe(1_000_000n)
    const burner = await deployContract(c.deployerB, LayerZeroTestApp, [portB])
    await confirm(
      c.deployerB,
      await c.deployerB.writeContract({ address: burner, abi: LayerZeroTestApp.abi, functionName: 'setBurnGas', args: [400_000n] }),
    )
    const from = await nextBlock('A')
    const sent = await send('A', appA, burner, toHex('burn'), 500_000n)
    const dvn = dvnAB(new MemoryPacketCursorStore(), from)
    await dvn.poll()
    await dvn[Symbol.asyncDispose]()
    const cursor = new MemoryPacketCursorStore()
    const capped = executorAB(cursor, from, { maxGas: 300_000n, onError: () => {} })
    expect(await capped.poll()).toMatchObject({ completed: [], pending: 1 })
    expect(cursor.peek()?.pending[0]).toMatchObject({ attempts: 1, lastError: expect.stringMatching(/reverted/) })
    await capped[Symbol.asyncDispose]()
    // An executor willing to pay the packet's gas delivers it.
    const generous = executorAB(new MemoryPacketCursorStore(), from)
    const res = await generous.poll()
    expect(res.completed.map((d) => d.guid)).toEqual([sent.guid])
    expect(res.completed[0]!.gasLimit).toBe(lzReceiveGasLimit(lzReceiveOption(sent.options)!.gas))
    expect(await deliveries('B', burner)).toBe(1n)
    await generous[Symbol.asyncDispose]()
  })
})

describe('confirmations', () => {
  test("the DVN waits for the receiver's ULN confirmations on the origin before verifying", async () => {
    const confirmations = { endpoint: coreB.endpoint, library: coreB.receiveUln, oapp: portB, remoteEid: EID_A }
    await setAppConfirmations(c.deployerB, { ...confirmations, confirmations: 2 })
    try {
      const from = await nextBlock('A')
      const sent = await send('A', appA, appB, toHex('two blocks deep'))
      const cursor = new MemoryPacketCursorStore()
      const dvn = dvnAB(cursor, from)
      const mine = () => c.userA.request({ method: 'evm_mine' as never, params: [] as never })
      expect(await dvn.poll()).toMatchObject({ seen: 1, completed: [], pending: 1 })
      await mine()
      expect(await dvn.poll()).toMatchObject({ completed: [], pending: 1 })
      expect(cursor.peek()?.pending).toEqual([expect.not.objectContaining({ attempts: expect.anything() })])
      await mine()
      const res = await dvn.poll()
      expect(res.completed).toEqual([expect.objectContaining({ guid: sent.guid, confirmations: 2n })])
      await dvn[Symbol.asyncDispose]()
      const exec = executorAB(new MemoryPacketCursorStore(), from)
      expect((await exec.poll()).completed.map((d) => d.guid)).toEqual([sent.guid])
      await exec[Symbol.asyncDispose]()
    } finally {
      await setAppConfirmations(c.deployerB, { ...confirmations, confirmations: 0 })
    }
  })
})
