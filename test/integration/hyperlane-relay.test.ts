/**
 * Real Hyperlane v3 core contracts (bytecode from @hyperlane-xyz/core) on two anvils, with the
 * local validator and relayer agents standing in for the off-chain ones: A → B delivery, replay
 * and wrong-signer rejections by the contracts themselves, a relayer killed between signing and
 * delivery, a 2-of-3 validator set, a validator resuming from its file store, and messages the
 * recipient rejects (bounded retries with backoff, then kept as rejected). The relayer builds the
 * MessageIdMultisigIsm metadata from the checkpoint stores and sends `Mailbox.process` with viem.
 * The agents work one block deep (their default `confirmations`), so `dispatch` mines a block on
 * top of each message. Messages sent through Sertn's HyperlanePort carry the app's gas limit
 * (`PortMessageSent`): the relayer's first attempt goes by it, without an estimate or simulation.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createWalletClient,
  decodeFunctionData,
  hexToBytes,
  http,
  keccak256,
  parseEventLogs,
  publicActions,
  size,
  toFunctionSelector,
  toHex,
  type Abi,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type LocalAccount,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { HyperlanePort, HyperlaneRejectingRecipient, HyperlaneTestRecipient, LayerZeroTestApp } from '../../contracts/artifacts/index.ts'
import { Mailbox, MerkleTreeHook } from '../../contracts/artifacts/hyperlane/index.ts'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { freePort } from '../../core/process.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import {
  addressToBytes32,
  allowHyperlaneApp,
  connectHyperlanePorts,
  createLocalRelayer,
  createLocalValidator,
  deployHyperlaneCore,
  deployMessageIdMultisigIsm,
  encodeMessageIdMultisigMetadata,
  FileCheckpointStore,
  FileRelayerCursorStore,
  IncrementalMerkleTree,
  MemoryCheckpointStore,
  MemoryRelayerCursorStore,
  parseMessage,
  revertReason,
  signCheckpoint,
  type CheckpointStore,
  type HyperlaneCoreDeployment,
  type LocalRelayerConfig,
  type LocalValidator,
  type RejectedMessage,
  type RelayerCursorStore,
} from '../../plugins/messengers/hyperlane/index.ts'
import { expectRevert, waitUntil } from '../support/chain.ts'

const DOMAIN_A = 1_000_001
const DOMAIN_B = 1_000_002
const key = (label: string) => keccak256(toHex(`sertn hyperlane test ${label}`))
const [v1, v2, v3] = [1, 2, 3].map((i) => privateKeyToAccount(key(`validator ${i}`))) as [LocalAccount, LocalAccount, LocalAccount]
const outsider = privateKeyToAccount(key('outsider'))

let anvilA: AnvilInstance | undefined
let anvilB: AnvilInstance | undefined
let userA: SertnClient // dispatches on A
let relayerB: SertnClient // pays for process on B
let deployerA: SertnClient
let deployerB: SertnClient
let coreA: HyperlaneCoreDeployment
let coreB: HyperlaneCoreDeployment
let recipient: Address // on B, default ISM (v1, 1-of-1)
let recipient2of3: Address // on B, its own ISM (v1, v2, v3; 2-of-3)
let tmp: string
const store1 = new MemoryCheckpointStore(v1.address)
let validator1: LocalValidator
const gas = { dispatch: [] as bigint[], process: [] as bigint[] }

/** Dispatches `body` from A's user to `to` on B, paying the quoted fee, and mines a block on top (one confirmation). */
async function dispatch(to: Address, body: Hex) {
  const args = [DOMAIN_B, addressToBytes32(to), body] as const
  const fee = await userA.readContract({ address: coreA.mailbox, abi: Mailbox.abi, functionName: 'quoteDispatch', args })
  const receipt = await confirm(
    userA,
    await userA.writeContract({ address: coreA.mailbox, abi: Mailbox.abi, functionName: 'dispatch', args, value: fee }),
  )
  gas.dispatch.push(receipt.gasUsed)
  const [dispatched] = parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: receipt.logs })
  const [inserted] = parseEventLogs({ abi: MerkleTreeHook.abi, eventName: 'InsertedIntoTree', logs: receipt.logs })
  if (!dispatched || !inserted) throw new Error('no Dispatch / InsertedIntoTree log')
  await userA.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
  const message = dispatched.args.message
  return { message, id: keccak256(message), index: inserted.args.index, fee, receipt }
}

/** The next block on A: a relayer started from it sees only what the test dispatches next. */
const nextBlockA = async () => (await userA.getBlockNumber({ cacheTime: 0 })) + 1n
const deliveries = (r: Address) => relayerB.readContract({ address: r, abi: HyperlaneTestRecipient.abi, functionName: 'deliveries' })
const isDelivered = (id: Hex) => relayerB.readContract({ address: coreB.mailbox, abi: Mailbox.abi, functionName: 'delivered', args: [id] })

function relayer(stores: CheckpointStore[], cursorStore: RelayerCursorStore, fromBlock: bigint, more: Partial<LocalRelayerConfig> = {}) {
  return createLocalRelayer({
    origin: { client: userA, mailbox: coreA.mailbox, merkleTreeHook: coreA.merkleTreeHook, domain: DOMAIN_A },
    destination: { client: relayerB, mailbox: coreB.mailbox, domain: DOMAIN_B },
    checkpointStores: stores,
    cursorStore,
    fromBlock,
    pollingIntervalMs: 50,
    onDelivered: (d) => gas.process.push(d.gasUsed),
    ...more,
  })
}

/** Simulates `process(metadata, message)` on B and returns the revert reason (or 'ok'). */
async function simulateProcess(metadata: Hex, message: Hex): Promise<string> {
  try {
    await relayerB.simulateContract({ address: coreB.mailbox, abi: Mailbox.abi, functionName: 'process', args: [metadata, message] })
    return 'ok'
  } catch (err) {
    return revertReason(err) ?? `undecoded: ${String(err)}`
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sertn-hyperlane-'))
  // allSettled: if one start fails, the other anvil is still assigned and stopped in afterAll.
  const started = await Promise.allSettled([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31338 })])
  anvilA = started[0].status === 'fulfilled' ? started[0].value : undefined
  anvilB = started[1].status === 'fulfilled' ? started[1].value : undefined
  for (const s of started) if (s.status === 'rejected') throw s.reason
  if (!anvilA || !anvilB) throw new Error('anvil did not start')
  deployerA = createSertnClient(anvilA.chain, anvilAccount(0))
  deployerB = createSertnClient(anvilB.chain, anvilAccount(0))
  userA = createSertnClient(anvilA.chain, anvilAccount(2))
  relayerB = createSertnClient(anvilB.chain, anvilAccount(1))
  // A charges a protocol fee so that quoteDispatch is not trivially 0.
  ;[coreA, coreB] = await Promise.all([
    deployHyperlaneCore(deployerA, { domain: DOMAIN_A, validators: [v1.address], threshold: 1, protocolFee: 1000n }),
    deployHyperlaneCore(deployerB, { domain: DOMAIN_B, validators: [v1.address], threshold: 1 }),
  ])
  recipient = await deployContract(deployerB, HyperlaneTestRecipient, [coreB.mailbox])
  recipient2of3 = await deployContract(deployerB, HyperlaneTestRecipient, [coreB.mailbox])
  const ism2of3 = await deployMessageIdMultisigIsm(deployerB, coreB.ismFactory, [v1.address, v2.address, v3.address], 2)
  await confirm(
    deployerB,
    await deployerB.writeContract({
      address: recipient2of3,
      abi: HyperlaneTestRecipient.abi,
      functionName: 'setInterchainSecurityModule',
      args: [ism2of3],
    }),
  )
  validator1 = createLocalValidator({
    client: userA,
    domain: DOMAIN_A,
    merkleTreeHook: coreA.merkleTreeHook,
    account: v1,
    store: store1,
    pollingIntervalMs: 50,
  })
  validator1.start()
})

afterAll(async () => {
  await validator1?.stop()
  await Promise.allSettled([anvilA?.stop(), anvilB?.stop()])
  if (tmp) await rm(tmp, { recursive: true, force: true })
  if (gas.dispatch.length > 0) console.log(`[hyperlane] gas: dispatch ${gas.dispatch.join(', ')}; process ${gas.process.join(', ')}`)
})

describe('hyperlane A → B with local agents', () => {
  let first: Awaited<ReturnType<typeof dispatch>>

  test('a dispatched message is signed by the validator and delivered once by the relayer', async () => {
    const from = await nextBlockA()
    const r = relayer([store1], new MemoryRelayerCursorStore(), from)
    r.start()
    try {
      const body = toHex('hello from A')
      first = await dispatch(recipient, body)
      expect(first.fee).toBe(1000n)
      const m = parseMessage(first.message)
      expect(m).toMatchObject({
        version: 3,
        origin: DOMAIN_A,
        destination: DOMAIN_B,
        sender: addressToBytes32(userA.account.address),
        recipient: addressToBytes32(recipient),
        body,
      })

      await waitUntil('delivery', async () => (await deliveries(recipient)) === 1n)
      const signed = await store1.get(first.index)
      expect(signed).toMatchObject({ index: first.index, messageId: first.id, origin: DOMAIN_A, validator: v1.address })
      // The validator's mirrored tree agrees with the hook.
      const [root, index] = await userA.readContract({
        address: coreA.merkleTreeHook,
        abi: MerkleTreeHook.abi,
        functionName: 'latestCheckpoint',
      })
      expect(index).toBe(first.index)
      expect(signed!.root).toBe(root)
      const rec = (fn: 'lastBody' | 'lastOrigin' | 'lastSender') =>
        relayerB.readContract({ address: recipient, abi: HyperlaneTestRecipient.abi, functionName: fn })
      expect(await rec('lastBody')).toBe(body)
      expect(await rec('lastOrigin')).toBe(DOMAIN_A)
      expect(await rec('lastSender')).toBe(addressToBytes32(userA.account.address))
      expect(await isDelivered(first.id)).toBe(true)
    } finally {
      await r.stop()
    }
    // More polls deliver nothing more.
    const again = await r.poll()
    expect(again.delivered).toEqual([])
    expect(again.pending).toBe(0)
    expect(await deliveries(recipient)).toBe(1n)
  })

  test('replaying process reverts with "already delivered"', async () => {
    const signed = (await store1.get(first.index))!
    const metadata = encodeMessageIdMultisigMetadata(signed, [signed.signature])
    expect(await simulateProcess(metadata, first.message)).toBe('Mailbox: already delivered')
    // A real transaction reverts too (sent with a fixed gas limit to skip estimation).
    const hash = await relayerB.writeContract({
      address: coreB.mailbox,
      abi: Mailbox.abi,
      functionName: 'process',
      args: [metadata, first.message],
      gas: 500_000n,
    })
    expect((await relayerB.waitForTransactionReceipt({ hash })).status).toBe('reverted')
    expect(await deliveries(recipient)).toBe(1n)
  })

  test('metadata signed by a key outside the validator set reverts with "!threshold"', async () => {
    const from = await nextBlockA()
    const sent = await dispatch(recipient, toHex('forged?'))
    const signed = await waitUntil('validator 1 signature', () => store1.get(sent.index))
    const forged = await signCheckpoint(outsider, {
      origin: DOMAIN_A,
      merkleTreeHook: coreA.merkleTreeHook,
      root: signed.root,
      index: sent.index,
      messageId: sent.id,
    })
    expect(await simulateProcess(encodeMessageIdMultisigMetadata(forged, [forged.signature]), sent.message)).toBe('!threshold')
    // A right signer over the wrong message id fails the same way.
    const wrongId = await signCheckpoint(v1, { ...signed, messageId: keccak256('0x01') })
    expect(await simulateProcess(encodeMessageIdMultisigMetadata(wrongId, [wrongId.signature]), sent.message)).toBe('!threshold')
    // The genuine metadata is accepted, and the relayer then delivers the message.
    expect(await simulateProcess(encodeMessageIdMultisigMetadata(signed, [signed.signature]), sent.message)).toBe('ok')
    const r = relayer([store1], new MemoryRelayerCursorStore(), from)
    const res = await r.poll()
    expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
    expect(await deliveries(recipient)).toBe(2n)
    await r[Symbol.asyncDispose]()
  })

  test('a relayer killed after signing but before delivery is replaced by one that delivers exactly once', async () => {
    const from = await nextBlockA()
    const cursorDir = join(tmp, 'relayer')
    const cursors = new FileRelayerCursorStore(cursorDir)
    const before = await deliveries(recipient)
    const r1 = relayer([store1], cursors, from)
    const sent = await dispatch(recipient, toHex('survives a relayer crash'))
    expect(await r1.scan()).toBe(1) // r1 has seen the message and saved it as pending …
    await waitUntil('validator 1 signature', () => store1.get(sent.index)) // … the validator signed it …
    await r1[Symbol.asyncDispose]() // … and r1 dies before delivering.
    await expect(r1.poll()).rejects.toThrow(/disposed/)
    expect(await isDelivered(sent.id)).toBe(false)
    expect((await cursors.load())?.pending.map((p) => p.messageId)).toEqual([sent.id])
    await copyFile(join(cursorDir, cursors.name), join(cursorDir, 'snapshot.json'))

    const r2 = relayer([store1], new FileRelayerCursorStore(cursorDir), from)
    const res = await r2.poll()
    expect(res.seen).toBe(0) // nothing rescanned: the cursor was past the dispatch block
    expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
    expect((await r2.poll()).delivered).toEqual([])
    expect(await deliveries(recipient)).toBe(before + 1n)
    await r2[Symbol.asyncDispose]()

    // A relayer that crashed after sending `process` but before saving its cursor finds the
    // message delivered and sends nothing.
    const r3 = relayer([store1], new FileRelayerCursorStore(cursorDir, 'snapshot.json'), from)
    const res3 = await r3.poll()
    expect(res3.delivered).toEqual([])
    expect(res3.alreadyDelivered).toEqual([sent.id])
    expect(await deliveries(recipient)).toBe(before + 1n)
    await r3[Symbol.asyncDispose]()
  })

  test('a 2-of-3 validator set delivers with only two validators signing', async () => {
    const from = await nextBlockA()
    const store2 = new MemoryCheckpointStore(v2.address)
    const store3 = new MemoryCheckpointStore(v3.address) // v3 never runs
    const validator2 = createLocalValidator({
      client: userA,
      domain: DOMAIN_A,
      merkleTreeHook: coreA.merkleTreeHook,
      account: v2,
      store: store2,
    })
    const cursor = new MemoryRelayerCursorStore()
    const r = relayer([store1, store2, store3], cursor, from)
    const sent = await dispatch(recipient2of3, toHex('two of three'))
    await waitUntil('validator 1 signature', () => store1.get(sent.index))
    // One signature is not enough: the relayer waits, and waiting is not a failed attempt.
    const waiting = await r.poll()
    expect(waiting).toMatchObject({ seen: 1, delivered: [], pending: 1, rejected: [] })
    expect(await r.poll()).toMatchObject({ delivered: [], pending: 1 })
    expect(cursor.peek()?.pending).toEqual([expect.not.objectContaining({ attempts: expect.anything() })])
    expect(await isDelivered(sent.id)).toBe(false)

    const signed = await validator2.poll()
    expect(signed.map((c) => c.index)).toContain(sent.index)
    const res = await r.poll()
    expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
    expect(await deliveries(recipient2of3)).toBe(1n)
    const tx = await relayerB.getTransaction({ hash: res.delivered[0]!.transactionHash })
    const { args } = decodeFunctionData({ abi: Mailbox.abi, data: tx.input })
    expect(size(args![0] as Hex)).toBe(68 + 2 * 65) // hook ‖ root ‖ index ‖ two signatures
    expect(await store3.latestIndex()).toBeUndefined()
    await r[Symbol.asyncDispose]()
    await validator2[Symbol.asyncDispose]()
  })

  test('a validator resumes from its file store after a restart', async () => {
    const dir = join(tmp, 'checkpoints')
    const make = () =>
      createLocalValidator({
        client: userA,
        domain: DOMAIN_A,
        merkleTreeHook: coreA.merkleTreeHook,
        account: v3,
        store: new FileCheckpointStore(dir, v3.address),
      })
    const count = await userA.readContract({ address: coreA.merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'count' })
    const a = make()
    expect((await a.poll()).map((c) => c.index)).toEqual([...Array(count).keys()])
    await a[Symbol.asyncDispose]()
    const sent = await dispatch(recipient, toHex('after restart'))
    const b = make()
    expect((await b.poll()).map((c) => c.index)).toEqual([sent.index]) // only the new insertion
    const state = await new FileCheckpointStore(dir, v3.address).loadState()
    const root = await userA.readContract({ address: coreA.merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'root' })
    expect(new IncrementalMerkleTree(state!.tree).root()).toBe(root)
    expect(await new FileCheckpointStore(dir, v3.address).latestIndex()).toBe(sent.index)
    await b[Symbol.asyncDispose]()
  })

  test('a message the recipient keeps rejecting is retried with backoff, then rejected and kept in the cursor', async () => {
    const rejecting = await deployContract(deployerB, HyperlaneRejectingRecipient, [coreB.mailbox])
    const from = await nextBlockA()
    const cursorDir = join(tmp, 'rejecting')
    let t = 1_000_000
    const errors: unknown[] = []
    const rejectedSeen: RejectedMessage[] = []
    const make = () =>
      relayer([store1], new FileRelayerCursorStore(cursorDir), from, {
        maxAttempts: 3,
        retryBackoffMs: 1_000,
        maxRetryBackoffMs: 1_500,
        now: () => t,
        onError: (e) => errors.push(e),
        onRejected: (r) => rejectedSeen.push(r),
      })
    const pendingOf = async () => (await new FileRelayerCursorStore(cursorDir).load())!.pending
    const sent = await dispatch(rejecting, toHex('nobody here knows this route'))
    await waitUntil('validator 1 signature', () => store1.get(sent.index))

    const r1 = make()
    // Attempt 1: `process` reverts in the relayer's gas estimate; backoff 1 s.
    expect(await r1.poll()).toMatchObject({ seen: 1, delivered: [], alreadyDelivered: [], rejected: [], pending: 1 })
    expect(await pendingOf()).toEqual([
      expect.objectContaining({
        messageId: sent.id,
        attempts: 1,
        nextAttemptAt: t + 1_000,
        lastError: 'rejected: unknown route',
        dispatchTx: sent.receipt.transactionHash,
      }),
    ])
    expect(String(errors.at(-1))).toMatch(/attempt 1 of 3\): rejected: unknown route; retrying in 1000 ms/)
    // Not due yet: no attempt.
    const errorCount = errors.length
    t += 999
    expect(await r1.poll()).toMatchObject({ delivered: [], rejected: [], pending: 1 })
    expect(errors.length).toBe(errorCount)
    expect((await pendingOf())[0]?.attempts).toBe(1)
    await r1[Symbol.asyncDispose]()

    // A restarted relayer keeps the count. Attempt 2: backoff 2 s, capped at 1.5 s.
    const r2 = make()
    t += 1
    expect(await r2.poll()).toMatchObject({ seen: 0, delivered: [], rejected: [], pending: 1 })
    expect(await pendingOf()).toEqual([expect.objectContaining({ attempts: 2, nextAttemptAt: t + 1_500 })])
    // Attempt 3 is the last: the message moves to `rejected`, with its reason.
    t += 1_500
    const res = await r2.poll()
    const rejectedEntry = {
      messageId: sent.id,
      index: sent.index,
      message: sent.message,
      attempts: 3,
      lastError: 'rejected: unknown route',
      rejectedAt: t,
    }
    expect(res).toMatchObject({ delivered: [], pending: 0, rejected: [expect.objectContaining(rejectedEntry)] })
    expect(rejectedSeen).toEqual([expect.objectContaining(rejectedEntry)])
    expect(await pendingOf()).toEqual([])
    expect(await r2.rejected()).toEqual([expect.objectContaining(rejectedEntry)])
    expect(String(errors.at(-1))).toMatch(/rejected after 3 failed attempts: rejected: unknown route/)
    // … and is never tried again, not even when the same cursor rescans the dispatch block.
    t += 3_600_000
    const before = errors.length
    expect(await r2.poll()).toMatchObject({ delivered: [], rejected: [], pending: 0 })
    await r2[Symbol.asyncDispose]()
    const saved = (await new FileRelayerCursorStore(cursorDir).load())!
    await new FileRelayerCursorStore(cursorDir).save({ ...saved, nextBlock: from.toString() })
    const r3 = make()
    expect(await r3.poll()).toMatchObject({ seen: 0, delivered: [], rejected: [], pending: 0 })
    await r3[Symbol.asyncDispose]()
    expect(errors.length).toBe(before)
    expect(await relayerB.readContract({ address: rejecting, abi: HyperlaneRejectingRecipient.abi, functionName: 'deliveries' })).toBe(0n)
    expect(await isDelivered(sent.id)).toBe(false)
    expect(rejectedSeen).toHaveLength(1)
  })

  test('a message rejected once is delivered on a later attempt once the recipient accepts it', async () => {
    const rejecting = await deployContract(deployerB, HyperlaneRejectingRecipient, [coreB.mailbox])
    const from = await nextBlockA()
    let t = 5_000_000
    const cursor = new MemoryRelayerCursorStore()
    const r = relayer([store1], cursor, from, { retryBackoffMs: 10_000, now: () => t, onError: () => {} })
    const sent = await dispatch(rejecting, toHex('try again later'))
    await waitUntil('validator 1 signature', () => store1.get(sent.index))
    expect(await r.poll()).toMatchObject({ delivered: [], pending: 1 })
    expect(cursor.peek()?.pending[0]).toMatchObject({ attempts: 1, nextAttemptAt: t + 10_000 })
    await confirm(
      deployerB,
      await deployerB.writeContract({
        address: rejecting,
        abi: HyperlaneRejectingRecipient.abi,
        functionName: 'setRejecting',
        args: [false],
      }),
    )
    t += 10_000
    const res = await r.poll()
    expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
    expect(res).toMatchObject({ pending: 0, rejected: [] })
    expect(cursor.peek()).toMatchObject({ pending: [], rejected: [] })
    expect(await relayerB.readContract({ address: rejecting, abi: HyperlaneRejectingRecipient.abi, functionName: 'deliveries' })).toBe(1n)
    await r[Symbol.asyncDispose]()
  })

  test('an unreachable destination RPC is not counted as a failed attempt', async () => {
    const from = await nextBlockA()
    const sent = await dispatch(recipient, toHex('while the node is down'))
    await waitUntil('validator 1 signature', () => store1.get(sent.index))
    const dead = `http://127.0.0.1:${await freePort()}`
    // A node that answers reads but drops the connection when sent a transaction. (Its URL differs
    // from relayerB's by a trailing slash: the account's process-wide send queue is per URL.)
    const failSends: typeof fetch = async (input, init) => {
      if (typeof init?.body === 'string' && init.body.includes('eth_sendRawTransaction')) throw new TypeError('fetch failed')
      return fetch(input, init)
    }
    const readsOnly = createWalletClient({
      chain: anvilB!.chain,
      account: anvilAccount(1),
      pollingInterval: 50,
      transport: http(`${anvilB!.rpcUrl}/`, { retryCount: 0, fetchFn: failSends }),
    }).extend(publicActions)
    const causes = (e: unknown) => {
      const parts: string[] = []
      for (let x: unknown = e; x instanceof Error; x = x.cause) parts.push(x.message)
      return parts.join(' ← ')
    }
    const before = await relayerB.getTransactionCount({ address: relayerB.account.address })
    for (const [destination, failing] of [
      // viem's `delivered` check fails …
      [
        { client: createSertnClient(anvilB!.chain, anvilAccount(1), { rpcUrl: dead }), mailbox: coreB.mailbox, domain: DOMAIN_B },
        /HTTP request failed/,
      ],
      // … or sending `process` does (after its estimate).
      [{ client: readsOnly, mailbox: coreB.mailbox, domain: DOMAIN_B }, /submitting process of message/],
    ] as const) {
      const errors: unknown[] = []
      const cursor = new MemoryRelayerCursorStore()
      const r = relayer([store1], cursor, from, { destination, maxAttempts: 1, onError: (e) => errors.push(e) })
      expect(await r.poll()).toMatchObject({ seen: 1, delivered: [], rejected: [], pending: 1 })
      expect(cursor.peek()?.pending).toEqual([expect.not.objectContaining({ attempts: expect.anything() })])
      expect(String(errors.at(-1))).toMatch(/not counted as an attempt/)
      expect(causes(errors.at(-1))).toMatch(failing)
      await r[Symbol.asyncDispose]()
    }
    expect(await relayerB.getTransactionCount({ address: relayerB.account.address })).toBe(before)
    // With the node back, the same message goes through.
    const r = relayer([store1], new MemoryRelayerCursorStore(), from)
    expect((await r.poll()).delivered.map((d) => d.messageId)).toEqual([sent.id])
    await r[Symbol.asyncDispose]()
  })

  test('a cursor saved before dispatch tx hashes and block hashes were recorded still delivers', async () => {
    const from = await nextBlockA()
    const sent = await dispatch(recipient, toHex('old cursor'))
    await waitUntil('validator 1 signature', () => store1.get(sent.index))
    const cursor = new MemoryRelayerCursorStore()
    const next = (await userA.getBlockNumber({ cacheTime: 0 })) + 1n
    await cursor.save({
      nextBlock: next.toString(),
      pending: [{ message: sent.message, messageId: sent.id, index: sent.index, blockNumber: sent.receipt.blockNumber.toString() }],
    })
    const r = relayer([store1], cursor, from)
    expect((await r.poll()).delivered.map((d) => d.messageId)).toEqual([sent.id])
    await r[Symbol.asyncDispose]()
  })
})

/**
 * A client of `chain` for `account` that records the JSON-RPC methods it sends (and the selectors
 * of its `eth_call`s). Its URL ends in a slash, so its account has its own send queue (keyed by URL).
 */
function recordingClient(chain: Chain, rpcUrl: string, account: Account) {
  const methods: string[] = []
  const callSelectors: string[] = []
  const fetchFn: typeof fetch = async (input, init) => {
    if (typeof init?.body === 'string') {
      const body = JSON.parse(init.body) as { method: string; params?: unknown[] } | { method: string; params?: unknown[] }[]
      for (const { method, params } of Array.isArray(body) ? body : [body]) {
        methods.push(method)
        const data = (params?.[0] as { data?: string; input?: string } | undefined)?.data ?? (params?.[0] as { input?: string })?.input
        if (method === 'eth_call' && typeof data === 'string') callSelectors.push(data.slice(0, 10))
      }
    }
    return fetch(input, init)
  }
  const client: SertnClient = createWalletClient({
    chain,
    account,
    pollingInterval: 50,
    transport: http(`${rpcUrl}/`, { retryCount: 0, fetchFn }),
  }).extend(publicActions)
  const count = (method: string) => methods.filter((m) => m === method).length
  return {
    client,
    /** Gas estimates (viem asks `eth_fillTransaction` where the node has it, as anvil does) and `process` simulations. */
    estimatesAndSimulations: () =>
      count('eth_estimateGas') + count('eth_fillTransaction') + callSelectors.filter((x) => x === PROCESS_SELECTOR).length,
    reset: () => {
      methods.length = 0
      callSelectors.length = 0
    },
  }
}

const PROCESS_SELECTOR = toFunctionSelector('process(bytes,bytes)')
/** A transaction's intrinsic gas: 21,000 plus 4 per zero and 16 per other calldata byte. */
const intrinsic = (data: Hex) => hexToBytes(data).reduce((g, b) => g + (b === 0 ? 4n : 16n), 21_000n)

describe('gas limits from a Sertn port', () => {
  let appA: Address
  let appB: Address
  let b: ReturnType<typeof recordingClient>
  const errorAbi = [...LayerZeroTestApp.abi, ...HyperlanePort.abi].filter((x) => x.type === 'error') as Abi

  beforeAll(async () => {
    appA = await deployContract(deployerA, LayerZeroTestApp, [coreA.port])
    appB = await deployContract(deployerB, LayerZeroTestApp, [coreB.port])
    await allowHyperlaneApp(deployerA, coreA.port, appA)
    await connectHyperlanePorts({ client: deployerA, deployment: coreA }, { client: deployerB, deployment: coreB })
    b = recordingClient(anvilB!.chain, anvilB!.rpcUrl, anvilAccount(5))
  })

  const setAppB = (functionName: 'setBurnGas' | 'setRejecting', arg: bigint | boolean) =>
    deployerB
      .writeContract({ address: appB, abi: LayerZeroTestApp.abi, functionName, args: [arg as never] })
      .then((hash) => confirm(deployerB, hash))
  const appDeliveries = () => relayerB.readContract({ address: appB, abi: LayerZeroTestApp.abi, functionName: 'deliveries' })
  const nonceB = () => relayerB.getTransactionCount({ address: b.client.account.address })

  /** Sends `body` from A's app to B's app through the ports with the gas limit `gasLimit`, and mines a block on top. */
  async function sendViaPort(body: string, gasLimit: bigint) {
    const args = [coreB.sertnDomain, appB, toHex(body), gasLimit] as const
    const fee = await userA.readContract({ address: appA, abi: LayerZeroTestApp.abi, functionName: 'quote', args })
    const receipt = await confirm(
      userA,
      await userA.writeContract({ address: appA, abi: LayerZeroTestApp.abi, functionName: 'send', args, value: fee }),
    )
    const [dispatched] = parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: receipt.logs })
    const [inserted] = parseEventLogs({ abi: MerkleTreeHook.abi, eventName: 'InsertedIntoTree', logs: receipt.logs })
    const [sent] = parseEventLogs({ abi: HyperlanePort.abi, eventName: 'PortMessageSent', logs: receipt.logs })
    if (!dispatched || !inserted || !sent) throw new Error('no Dispatch / InsertedIntoTree / PortMessageSent log')
    await userA.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    const id = keccak256(dispatched.args.message)
    expect(sent.args).toMatchObject({ messageId: id, sender: appA, gasLimit })
    return { message: dispatched.args.message, id, index: inserted.args.index, receipt }
  }

  const portRelayer = (cursorStore: RelayerCursorStore, fromBlock: bigint, more: Partial<LocalRelayerConfig> = {}) =>
    relayer([store1], cursorStore, fromBlock, {
      destination: { client: b.client, mailbox: coreB.mailbox, domain: DOMAIN_B },
      errorAbi,
      ...more,
    })

  test('a fee below the quote reverts with PortInsufficientFee; a surplus goes back to the app in the same call', async () => {
    const args = [coreB.sertnDomain, appB, toHex('surplus'), 100_000n] as const
    const fee = await userA.readContract({ address: appA, abi: LayerZeroTestApp.abi, functionName: 'quote', args })
    if (fee > 0n) {
      const abi = [...LayerZeroTestApp.abi, ...HyperlanePort.abi.filter((x) => x.type === 'error')] as Abi
      const err = await expectRevert(userA.simulateContract({ address: appA, abi, functionName: 'send', args, value: fee - 1n }))
      expect(err).toEqual({ errorName: 'PortInsufficientFee', args: [fee, fee - 1n] })
    }
    const before = await userA.getBalance({ address: appA })
    const receipt = await confirm(
      userA,
      await userA.writeContract({ address: appA, abi: LayerZeroTestApp.abi, functionName: 'send', args, value: fee + 12345n }),
    )
    expect(await userA.getBalance({ address: appA })).toBe(before + 12345n)
    expect(parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: receipt.logs })).toHaveLength(1)
  })

  test('the first attempt goes by the port’s gas limit (kept in the cursor): no estimate, no simulation', async () => {
    const from = await nextBlockA()
    const cursorDir = join(tmp, 'hinted')
    const hint = 300_000n
    const sent = await sendViaPort('by the sender’s gas limit', hint)
    await waitUntil('validator 1 signature', () => store1.get(sent.index))
    // One relayer scans and stops; the hint is in its saved cursor …
    const r1 = portRelayer(new FileRelayerCursorStore(cursorDir), from)
    expect(await r1.scan()).toBe(1)
    await r1[Symbol.asyncDispose]()
    expect((await new FileRelayerCursorStore(cursorDir).load())?.pending).toEqual([
      expect.objectContaining({ messageId: sent.id, gasHint: '300000', dispatchTx: sent.receipt.transactionHash }),
    ])
    // … and the next delivers with it, without estimating or simulating `process`.
    b.reset()
    const nonce = await nonceB()
    const r2 = portRelayer(new FileRelayerCursorStore(cursorDir), from)
    const res = await r2.poll()
    await r2[Symbol.asyncDispose]()
    expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
    expect(b.estimatesAndSimulations()).toBe(0)
    expect(await nonceB()).toBe(nonce + 1)
    const d = res.delivered[0]!
    const tx = await relayerB.getTransaction({ hash: d.transactionHash })
    expect(d).toMatchObject({ gasHint: hint, gasLimit: tx.gas })
    expect(d.estimatedGas).toBeUndefined()
    // hint + the transaction's intrinsic gas + the mailbox/ISM/port overhead (100,000) + the reserve (100,000)
    expect(tx.gas).toBe(hint + intrinsic(tx.input) + 100_000n + 100_000n)
    expect(d.gasUsed).toBeLessThan(tx.gas)
    expect(await appDeliveries()).toBe(1n)
    expect(await isDelivered(sent.id)).toBe(true)
  })

  test('a port’s gas limit above maxGas is rejected at once, without a transaction', async () => {
    const from = await nextBlockA()
    const rejected: RejectedMessage[] = []
    const sent = await sendViaPort('more than the relayer pays', 6_000_000n)
    b.reset()
    const nonce = await nonceB()
    const r = portRelayer(new MemoryRelayerCursorStore(), from, { onRejected: (x) => rejected.push(x), onError: () => {} })
    const res = await r.poll()
    await r[Symbol.asyncDispose]()
    const entry = {
      messageId: sent.id,
      attempts: 1,
      gasHint: '6000000',
      lastError: "the sender's delivery gas limit 6000000 exceeds the relayer's cap of 5000000",
    }
    expect(res).toMatchObject({ delivered: [], pending: 0, rejected: [expect.objectContaining(entry)] })
    expect(rejected).toEqual([expect.objectContaining(entry)])
    expect(b.estimatesAndSimulations()).toBe(0)
    expect(await nonceB()).toBe(nonce)
    expect(await isDelivered(sent.id)).toBe(false)
  })

  test('a first attempt that runs out of gas counts as an attempt; the retry is estimated and delivers', async () => {
    await setAppB('setBurnGas', 300_000n)
    try {
      const from = await nextBlockA()
      let t = 7_000_000
      const cursor = new MemoryRelayerCursorStore()
      const errors: unknown[] = []
      const sent = await sendViaPort('the app under-asks', 10_000n)
      await waitUntil('validator 1 signature', () => store1.get(sent.index))
      const nonce = await nonceB()
      const r = portRelayer(cursor, from, { now: () => t, onError: (e) => errors.push(e) })
      expect(await r.poll()).toMatchObject({ delivered: [], pending: 1, rejected: [] })
      expect(await nonceB()).toBe(nonce + 1) // sent, and reverted
      expect(cursor.peek()?.pending).toEqual([
        expect.objectContaining({
          messageId: sent.id,
          gasHint: '10000',
          attempts: 1,
          nextAttemptAt: t + 1_000,
          lastError: expect.stringMatching(/^process transaction 0x[0-9a-f]{64} reverted \(gas used \d+ of \d+: out of gas\)$/),
        }),
      ])
      expect(String(errors.at(-1))).toMatch(/attempt 1 of 8\)/)
      b.reset()
      t += 1_000
      const res = await r.poll()
      await r[Symbol.asyncDispose]()
      expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
      expect(b.estimatesAndSimulations()).toBeGreaterThan(0)
      const d = res.delivered[0]!
      expect(d.gasHint).toBe(10_000n)
      const estimated = d.estimatedGas!
      expect(d.gasLimit).toBe(estimated + estimated / 5n + 100_000n)
      expect(d.gasUsed).toBeGreaterThan(300_000n)
      expect(await nonceB()).toBe(nonce + 2)
    } finally {
      await setAppB('setBurnGas', 0n)
    }
  })

  test('a recipient that rejects a port message: the reverted first attempt counts, retries are simulated, then it is rejected', async () => {
    await setAppB('setRejecting', true)
    try {
      const from = await nextBlockA()
      let t = 9_000_000
      const cursor = new MemoryRelayerCursorStore()
      const rejected: RejectedMessage[] = []
      const sent = await sendViaPort('nobody home', 200_000n)
      await waitUntil('validator 1 signature', () => store1.get(sent.index))
      const nonce = await nonceB()
      const r = portRelayer(cursor, from, { maxAttempts: 2, now: () => t, onError: () => {}, onRejected: (x) => rejected.push(x) })
      // Attempt 1: sent by the hint, mined, reverted; the reason is replayed with one eth_call.
      expect(await r.poll()).toMatchObject({ delivered: [], pending: 1, rejected: [] })
      expect(await nonceB()).toBe(nonce + 1)
      const reason = `TestAppRejected(${coreA.sertnDomain}, ${addressToBytes32(appA)})`
      expect(cursor.peek()?.pending[0]).toMatchObject({
        attempts: 1,
        lastError: expect.stringMatching(/^process transaction 0x[0-9a-f]{64} reverted \(gas used \d+ of \d+\): TestAppRejected\(/),
      })
      expect(cursor.peek()?.pending[0]?.lastError).toContain(reason)
      // Attempt 2, the last: the estimate fails with the same reason, so no second transaction.
      b.reset()
      t += 1_000
      const res = await r.poll()
      await r[Symbol.asyncDispose]()
      expect(b.estimatesAndSimulations()).toBeGreaterThan(0)
      const entry = { messageId: sent.id, attempts: 2, gasHint: '200000', lastError: reason }
      expect(res).toMatchObject({ delivered: [], pending: 0, rejected: [expect.objectContaining(entry)] })
      expect(rejected).toEqual([expect.objectContaining(entry)])
      expect(await nonceB()).toBe(nonce + 1)
      expect(await isDelivered(sent.id)).toBe(false)
    } finally {
      await setAppB('setRejecting', false)
    }
  })

  test('a message whose sender is not the port that logged a gas limit gets none', async () => {
    // A direct dispatch (sender: A's user) in the same block range as a port message: only the port's own message has a hint.
    const from = await nextBlockA()
    const viaPort = await sendViaPort('from the port', 250_000n)
    const direct = await dispatch(recipient, toHex('from a user'))
    const cursor = new MemoryRelayerCursorStore()
    const r = portRelayer(cursor, from)
    expect(await r.scan()).toBe(2)
    await r[Symbol.asyncDispose]()
    const pending = cursor.peek()!.pending
    expect(pending.find((p) => p.messageId === viaPort.id)?.gasHint).toBe('250000')
    expect(pending.find((p) => p.messageId === direct.id)).not.toHaveProperty('gasHint')
  })
})
