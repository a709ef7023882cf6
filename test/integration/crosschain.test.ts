/**
 * A spoke gateway on chain B receives results from a stand-in hub sender on chain A through real
 * Hyperlane core contracts and the local validator and relayer: the result is verified on the
 * spoke (real EZKL proof, real Halo2 verifier, the spoke registry's pinned VKA) before the node is
 * paid and the consumer called back; unauthenticated, replayed-result and invalid-proof messages
 * are rejected with custom errors, leaving the request pending and the message undelivered.
 */
import { DEV_ONLY } from '../support/artifacts.ts'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { encodeAbiParameters, encodePacked, keccak256, parseAbiParameters, toFunctionSelector, parseEventLogs, toHex, type Abi, type Address, type Hex, type LocalAccount } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Halo2VerifierReusable, ModelRegistry, RecordingConsumer, SpokeGateway, TestHubDispatcher } from '../../contracts/artifacts/index.ts'
import { Mailbox, MerkleTreeHook } from '../../contracts/artifacts/hyperlane/index.ts'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { confirm, DEFAULT_GATEWAY_CONFIG, DEFAULT_REGISTRATION_FEE, deployContract, registerModel, type RegisteredModel } from '../../chains/evm/deploy.ts'
import { quantize } from '../../core/field.ts'
import { NO_STORAGE_REF } from '../../core/storage-ref.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import { createEzklWasmProver, type InferenceProof } from '../../plugins/provers/ezkl-wasm/index.ts'
import {
  addressToBytes32,
  createLocalRelayer,
  createLocalValidator,
  deployHyperlaneCore,
  encodeMessageIdMultisigMetadata,
  MemoryCheckpointStore,
  MemoryRelayerCursorStore,
  type HyperlaneCoreDeployment,
  type LocalValidator,
} from '../../plugins/messengers/hyperlane/index.ts'
import { expectRevert } from '../support/chain.ts'

const HUB = 1_000_001 // chain A: the hub (stand-in sender)
const SPOKE = 1_000_002 // chain B: the spoke gateway
const PENDING = 1
const FULFILLED = 2
const CALLBACK_GAS = 200_000
const REFS = { output: keccak256(toHex('output ref')), proof: keccak256(toHex('proof ref')) }
const validatorKey = privateKeyToAccount(keccak256(toHex('sertn spoke test validator'))) as LocalAccount
/** The hub-registered node that served the request: paid on the spoke, never sends anything there. */
const hubNode = privateKeyToAccount(keccak256(toHex('sertn spoke test hub node'))).address

let anvilA: AnvilInstance | undefined
let anvilB: AnvilInstance | undefined
let hubUser: SertnClient // dispatches on A
let spokeOwner: SertnClient
let spokeRelayer: SertnClient // pays for process on B
let spokeNode: SertnClient // an authorised local node on B
let spokeStranger: SertnClient
let coreA: HyperlaneCoreDeployment
let coreB: HyperlaneCoreDeployment
let hub: Address // enrolled dispatcher on A
let rogue: Address // a dispatcher on A enrolled only for another domain
let gateway: Address
let registry: Address
let verifier: Address
let demo: RegisteredModel
let consumer: Address
let input: bigint[]
let proof: InferenceProof
const store = new MemoryCheckpointStore(validatorKey.address)
let validator: LocalValidator
const gas: Record<string, bigint> = {}

/** Mailbox errors plus the spoke's, so a reverted `process` decodes to the spoke's custom error. */
const processAbi = [...Mailbox.abi, ...SpokeGateway.abi.filter((x) => x.type === 'error')] as Abi

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function resultBody(id: bigint, p: { output: readonly bigint[]; proof: Hex }, node: Address = hubNode): Hex {
  const payload = encodeAbiParameters(
    parseAbiParameters('uint256, int256[], int256[], bytes, (bytes32 output, bytes32 proof), address'),
    [id, input, [...p.output], p.proof, REFS, node],
  )
  return encodePacked(['uint8', 'bytes'], [1, payload])
}

/** Dispatches a Result for spoke request `id` from `from` (a TestHubDispatcher on A). */
async function dispatchResult(from: Address, id: bigint, p: { output: readonly bigint[]; proof: Hex } = proof) {
  const body = resultBody(id, p)
  const fee = await hubUser.readContract({ address: coreA.mailbox, abi: Mailbox.abi, functionName: 'quoteDispatch', args: [SPOKE, addressToBytes32(gateway), body] })
  const receipt = await confirm(
    hubUser,
    await hubUser.writeContract({
      address: from,
      abi: TestHubDispatcher.abi,
      functionName: 'dispatchResult',
      args: [SPOKE, gateway, id, input, [...p.output], p.proof, REFS, hubNode],
      value: fee,
    }),
  )
  const [dispatched] = parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: receipt.logs })
  const [inserted] = parseEventLogs({ abi: MerkleTreeHook.abi, eventName: 'InsertedIntoTree', logs: receipt.logs })
  if (!dispatched || !inserted) throw new Error('no Dispatch / InsertedIntoTree log')
  // The contract's codec and the TypeScript one agree byte for byte.
  expect(dispatched.args.message.endsWith(body.slice(2))).toBe(true)
  return { message: dispatched.args.message, id: keccak256(dispatched.args.message), index: inserted.args.index }
}

/** The metadata the relayer would build, once the validator has signed the message's checkpoint. */
async function metadataFor(index: number): Promise<Hex> {
  const signed = await waitUntil('validator signature', () => store.get(index))
  return encodeMessageIdMultisigMetadata(signed, [signed.signature])
}

/** Simulates the relayer's `process` on B; returns the decoded custom error. */
async function processRevert(sent: { message: Hex; index: number }) {
  const metadata = await metadataFor(sent.index)
  return expectRevert(
    spokeRelayer.simulateContract({ address: coreB.mailbox, abi: processAbi, functionName: 'process', args: [metadata, sent.message] }),
  )
}

function relayer(fromBlock: bigint, errors: unknown[] = []) {
  return createLocalRelayer({
    origin: { client: hubUser, mailbox: coreA.mailbox, merkleTreeHook: coreA.merkleTreeHook, domain: HUB },
    destination: { client: spokeRelayer, mailbox: coreB.mailbox, domain: SPOKE },
    checkpointStores: [store],
    cursorStore: new MemoryRelayerCursorStore(),
    fromBlock,
    pollingIntervalMs: 50,
    onError: (e) => errors.push(e),
  })
}

const nextBlockA = async () => (await hubUser.getBlockNumber({ cacheTime: 0 })) + 1n
const requestOf = (id: bigint) => spokeOwner.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'getRequest', args: [id] })
const isDelivered = (id: Hex) => spokeRelayer.readContract({ address: coreB.mailbox, abi: Mailbox.abi, functionName: 'delivered', args: [id] })

async function request(): Promise<bigint> {
  const value = await spokeOwner.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'quote', args: [demo.modelId, CALLBACK_GAS] })
  const { request, result } = await spokeStranger.simulateContract({
    address: consumer,
    abi: RecordingConsumer.abi,
    functionName: 'request',
    args: [demo.modelId, input, CALLBACK_GAS],
    value,
  })
  await confirm(spokeStranger, await spokeStranger.writeContract(request))
  return result
}

beforeAll(async () => {
  const started = await Promise.allSettled([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31338 })])
  anvilA = started[0].status === 'fulfilled' ? started[0].value : undefined
  anvilB = started[1].status === 'fulfilled' ? started[1].value : undefined
  for (const s of started) if (s.status === 'rejected') throw s.reason
  if (!anvilA || !anvilB) throw new Error('anvil did not start')
  const deployerA = createSertnClient(anvilA.chain, anvilAccount(0))
  hubUser = createSertnClient(anvilA.chain, anvilAccount(2))
  ;[spokeOwner, spokeRelayer, spokeNode, spokeStranger] = [0, 1, 2, 3].map((i) => createSertnClient(anvilB!.chain, anvilAccount(i))) as [
    SertnClient,
    SertnClient,
    SertnClient,
    SertnClient,
  ]
  const artifactsP = loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
  ;[coreA, coreB] = await Promise.all([
    deployHyperlaneCore(deployerA, { domain: HUB, validators: [validatorKey.address], threshold: 1, protocolFee: 1000n }),
    deployHyperlaneCore(spokeOwner, { domain: SPOKE, validators: [validatorKey.address], threshold: 1 }),
  ])
  hub = await deployContract(deployerA, TestHubDispatcher, [coreA.mailbox])
  rogue = await deployContract(deployerA, TestHubDispatcher, [coreA.mailbox])

  verifier = await deployContract(spokeOwner, Halo2VerifierReusable)
  registry = await deployContract(spokeOwner, ModelRegistry, [spokeOwner.account.address, DEFAULT_REGISTRATION_FEE])
  gateway = await deployContract(spokeOwner, SpokeGateway, [spokeOwner.account.address, registry, DEFAULT_GATEWAY_CONFIG, coreB.mailbox])
  demo = await registerModel(spokeOwner, { registry, verifier, name: 'sertn-mlp-demo', allowInsecureSrs: true })
  const write = async (functionName: 'enrollRoute' | 'setNode', args: readonly unknown[]) =>
    confirm(spokeOwner, await spokeOwner.writeContract({ address: gateway, abi: SpokeGateway.abi, functionName, args } as never))
  await write('enrollRoute', [HUB, addressToBytes32(hub)])
  await write('enrollRoute', [HUB + 7, addressToBytes32(rogue)]) // the right sender on another domain only
  await write('setNode', [spokeNode.account.address, true])
  consumer = await deployContract(spokeStranger, RecordingConsumer, [gateway])

  const sample = JSON.parse(readFileSync(join(modelDir('sertn-mlp-demo'), 'input.json'), 'utf8')) as { input_data: number[][] }
  const artifacts = await artifactsP
  input = sample.input_data[0]!.map((x) => quantize(x, artifacts.manifest.inputScale))
  const prover = createEzklWasmProver()
  try {
    proof = await prover.proveInference(artifacts, input)
  } finally {
    await prover.dispose()
  }
  validator = createLocalValidator({ client: hubUser, domain: HUB, merkleTreeHook: coreA.merkleTreeHook, account: validatorKey, store, pollingIntervalMs: 50 })
  validator.start()
}, 300_000)

afterAll(async () => {
  await validator?.stop()
  await Promise.allSettled([anvilA?.stop(), anvilB?.stop()])
  if (Object.keys(gas).length > 0) console.log(`[spoke] gas: ${Object.entries(gas).map(([k, v]) => `${k} ${v}`).join('; ')}`)
})

describe('hub → spoke results over Hyperlane', () => {
  let first: bigint

  test('default: a result from the enrolled hub sender is relayed, verified on the spoke, pays the node and calls the consumer back', async () => {
    expect(await spokeOwner.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'interchainSecurityModule' })).toBe(
      '0x0000000000000000000000000000000000000000',
    )
    first = await request()
    const escrow = (await requestOf(first)).escrow
    const nodeBefore = await spokeRelayer.getBalance({ address: hubNode })
    const r = relayer(await nextBlockA())
    r.start()
    let sent
    try {
      sent = await dispatchResult(hub, first)
      await waitUntil('delivery', () => isDelivered(sent!.id))
    } finally {
      await r.stop()
    }
    const stored = await requestOf(first)
    expect(stored.status).toBe(FULFILLED)
    expect(await spokeRelayer.getBalance({ address: hubNode })).toBe(nodeBefore + escrow)
    expect(await spokeRelayer.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [first] })).toEqual(proof.output)

    // The process transaction carries the gateway's own fulfilment event.
    const [event] = await spokeRelayer.getContractEvents({ address: gateway, abi: SpokeGateway.abi, eventName: 'InferenceFulfilled', fromBlock: 0n, strict: true })
    if (!event) throw new Error('no InferenceFulfilled event')
    expect(event.args).toMatchObject({ requestId: first, node: hubNode, output: proof.output, artifacts: REFS, callbackStatus: 0 })
    const receipt = await spokeRelayer.getTransactionReceipt({ hash: event.transactionHash })
    gas.process = receipt.gasUsed
    gas.callback = event.args.callbackGasUsed
    // Per-frame gas from anvil's call tracer: process → handle → deliverResult → verifyProof / callback.
    type Frame = { to: string; input: string; gasUsed: string; calls?: Frame[] }
    const root = (await spokeRelayer.request({ method: 'debug_traceTransaction' as never, params: [event.transactionHash, { tracer: 'callTracer' }] as never })) as Frame
    const frames: Frame[] = []
    const walk = (f: Frame) => (frames.push(f), f.calls?.forEach(walk))
    walk(root)
    const to = (a: Address) => frames.filter((f) => f.to.toLowerCase() === a.toLowerCase())
    const handleFrame = to(gateway).find((f) => f.input.startsWith(toFunctionSelector('handle(uint32,bytes32,bytes)')))
    const verifyFrame = to(verifier)[0]
    if (handleFrame) gas.handle = BigInt(handleFrame.gasUsed)
    if (verifyFrame) gas.verifier = BigInt(verifyFrame.gasUsed)
  })

  test('error: a message from a sender that is not enrolled is rejected by process with the route error', async () => {
    const id = await request()
    const errors: unknown[] = []
    const r = relayer(await nextBlockA(), errors)
    // The stand-in hub user dispatches directly (an EOA sender), and `rogue` is enrolled only on another domain.
    const fromEoa = await (async () => {
      const body = resultBody(id, proof)
      const receipt = await confirm(hubUser, await hubUser.writeContract({
        address: coreA.mailbox,
        abi: Mailbox.abi,
        functionName: 'dispatch',
        args: [SPOKE, addressToBytes32(gateway), body],
        value: await hubUser.readContract({ address: coreA.mailbox, abi: Mailbox.abi, functionName: 'quoteDispatch', args: [SPOKE, addressToBytes32(gateway), body] }),
      }))
      const [d] = parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: receipt.logs })
      const [ins] = parseEventLogs({ abi: MerkleTreeHook.abi, eventName: 'InsertedIntoTree', logs: receipt.logs })
      return { message: d!.args.message, id: keccak256(d!.args.message), index: ins!.args.index }
    })()
    const fromRogue = await dispatchResult(rogue, id)

    expect(await processRevert(fromEoa)).toEqual({ errorName: 'MessengerUnknownRoute', args: [HUB, addressToBytes32(hubUser.account.address)] })
    expect(await processRevert(fromRogue)).toEqual({ errorName: 'MessengerUnknownRoute', args: [HUB, addressToBytes32(rogue)] })
    // The relayer's own attempt fails the same way and the messages stay undelivered.
    const res = await r.poll()
    expect(res).toMatchObject({ seen: 2, delivered: [], pending: 2 })
    expect(errors.length).toBeGreaterThanOrEqual(2)
    expect(String(errors[0])).toContain('0x') // viem cannot name it with the mailbox ABI; the selector is decoded above
    expect(await isDelivered(fromEoa.id)).toBe(false)
    expect(await isDelivered(fromRogue.id)).toBe(false)
    expect((await requestOf(id)).status).toBe(PENDING)
    await r[Symbol.asyncDispose]()

    // An invalid proof inside an authentic message: verified on the spoke and rejected.
    const bytes = proof.proof.slice(2)
    const flipped = (parseInt(bytes.slice(200, 202), 16) ^ 0x01).toString(16).padStart(2, '0')
    const tampered = `0x${bytes.slice(0, 200)}${flipped}${bytes.slice(202)}` as Hex
    const bad = await dispatchResult(hub, id, { output: proof.output, proof: tampered })
    expect(await processRevert(bad)).toEqual({ errorName: 'GatewayInvalidProof', args: [id] })
    const forged = await dispatchResult(hub, id, { output: proof.output.map((v, i) => (i === 0 ? v + 1n : v)), proof: proof.proof })
    expect(await processRevert(forged)).toEqual({ errorName: 'GatewayInvalidProof', args: [id] })
    expect(await isDelivered(bad.id)).toBe(false)
    expect((await requestOf(id)).status).toBe(PENDING)

    // The rejections left the request open: the genuine result from the hub settles it.
    const good = await dispatchResult(hub, id)
    const { request: tx } = await spokeRelayer.simulateContract({ address: coreB.mailbox, abi: processAbi, functionName: 'process', args: [await metadataFor(good.index), good.message] })
    await confirm(spokeRelayer, await spokeRelayer.writeContract(tx))
    expect((await requestOf(id)).status).toBe(FULFILLED)
  })

  test('error: a second result for an already-fulfilled request is rejected with the gateway error', async () => {
    const again = await dispatchResult(hub, first)
    expect(await processRevert(again)).toEqual({ errorName: 'GatewayRequestNotPending', args: [first, FULFILLED] })
    expect(await isDelivered(again.id)).toBe(false)
  })

  test('error: unknown request, unknown message kind, and an unenrolled route', async () => {
    const unknown = await dispatchResult(hub, 999n)
    expect(await processRevert(unknown)).toEqual({ errorName: 'GatewayRequestNotPending', args: [999n, 0] })

    const raw = await confirm(hubUser, await hubUser.writeContract({ address: hub, abi: TestHubDispatcher.abi, functionName: 'dispatchRaw', args: [SPOKE, gateway, '0x02'], value: 1000n }))
    const [d] = parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: raw.logs })
    const [ins] = parseEventLogs({ abi: MerkleTreeHook.abi, eventName: 'InsertedIntoTree', logs: raw.logs })
    expect(await processRevert({ message: d!.args.message, index: ins!.args.index })).toEqual({ errorName: 'SertnMessagesUnknownKind', args: [2] })

    const id = await request()
    const sent = await dispatchResult(hub, id)
    await confirm(spokeOwner, await spokeOwner.writeContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'unenrollRoute', args: [HUB, addressToBytes32(hub)] }))
    try {
      expect(await processRevert(sent)).toEqual({ errorName: 'MessengerUnknownRoute', args: [HUB, addressToBytes32(hub)] })
    } finally {
      await confirm(spokeOwner, await spokeOwner.writeContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'enrollRoute', args: [HUB, addressToBytes32(hub)] }))
    }
    expect(await processRevert(sent).catch(() => 'ok')).toBe('ok') // accepted again once re-enrolled
  })
})

describe('spoke entry points outside the mailbox', () => {
  test('error: handle called directly, not by the mailbox', async () => {
    const id = await request()
    const err = await expectRevert(
      spokeStranger.simulateContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'handle', args: [HUB, addressToBytes32(hub), resultBody(id, proof)] }),
    )
    expect(err).toEqual({ errorName: 'MessengerUnauthorizedCaller', args: [spokeStranger.account.address] })
  })

  test('error: deliverResult called by anyone but the gateway itself', async () => {
    const id = await request()
    const err = await expectRevert(
      spokeStranger.simulateContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'deliverResult', args: [id, input, proof.output, proof.proof, REFS, hubNode] }),
    )
    expect(err).toEqual({ errorName: 'MessengerUnauthorizedCaller', args: [spokeStranger.account.address] })
  })

  test('error: local nodes cannot fulfil on a spoke, even with a valid proof', async () => {
    const id = await request()
    const err = await expectRevert(
      spokeNode.simulateContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'fulfill', args: [id, input, proof.output, proof.proof, { output: NO_STORAGE_REF, proof: NO_STORAGE_REF }] }),
    )
    expect(err).toEqual({ errorName: 'SpokeLocalFulfillDisabled', args: [] })
    expect((await requestOf(id)).status).toBe(PENDING)
  })

  test('error: routes and the ISM are owner-managed', async () => {
    for (const [functionName, args] of [
      ['enrollRoute', [HUB, addressToBytes32(rogue)]],
      ['unenrollRoute', [HUB, addressToBytes32(hub)]],
      ['setInterchainSecurityModule', [spokeStranger.account.address]],
    ] as const) {
      const err = await expectRevert(spokeStranger.simulateContract({ address: gateway, abi: SpokeGateway.abi, functionName, args } as never))
      expect(err).toEqual({ errorName: 'OwnedUnauthorized', args: [spokeStranger.account.address] })
    }
    expect(await spokeOwner.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'isRoute', args: [HUB, addressToBytes32(hub)] })).toBe(true)
  })
})
