/**
 * The cross-chain contracts over real Hyperlane v3 core contracts on anvils, relayed by the local
 * validator and relayer agents: a consumer on the spoke chain (B) requests; the SpokeGateway
 * escrows and sends the request to the hub's InferenceMarket (chain A), which records it; the hub
 * node submits a real EZKL proof, verified on the hub before the result goes back; the spoke
 * verifies it again with its own verifier and the spoke registry's VKA, pays the node, calls the
 * consumer back and sends a settlement receipt that closes the request on the hub. Failures and
 * refunds settle the same way. Every rejection, on the hub or at the spoke's `Mailbox.process`,
 * is asserted by its exact custom error (or the mailbox's revert string), and the agents are
 * killed and restarted from their file stores mid-delivery. A third anvil (C) hosts a contract at
 * the market's own address, to send a result from the right address on the wrong domain.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  encodeAbiParameters,
  encodePacked,
  keccak256,
  parseAbiParameters,
  parseEventLogs,
  toHex,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { InferenceMarket, ModelRegistry, RecordingConsumer, SpokeGateway, TestHubDispatcher } from '../../contracts/artifacts/index.ts'
import { Mailbox, MerkleTreeHook, ProtocolFee } from '../../contracts/artifacts/hyperlane/index.ts'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { addressAsBytes32, connectSpoke, deployMarket, deploySpoke, type SpokeDeployment } from '../../chains/evm/crosschain.ts'
import {
  confirm,
  DEFAULT_GATEWAY_CONFIG,
  deployContract,
  deployCore,
  registerModel,
  type CoreDeployment,
  type RegisteredModel,
} from '../../chains/evm/deploy.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import { createEzklWasmProver, type InferenceProof } from '../../plugins/provers/ezkl-wasm/index.ts'
import {
  createLocalRelayer,
  createLocalValidator,
  deployHyperlaneCore,
  encodeMessageIdMultisigMetadata,
  FileCheckpointStore,
  FileRelayerCursorStore,
  MemoryCheckpointStore,
  signCheckpoint,
  startLocalAgents,
  type HyperlaneCoreDeployment,
  type LocalAgents,
  type LocalRelayer,
  type LocalValidator,
} from '../../plugins/messengers/hyperlane/index.ts'
import { DEV_ONLY, sampleInputQ } from '../support/artifacts.ts'
import { expectRevert, increaseTime, waitUntil } from '../support/chain.ts'

const HUB = 1_000_001 // chain A: hub registry, gateway and InferenceMarket
const SPOKE = 1_000_002 // chain B: the SpokeGateway
const OTHER = 1_000_003 // chain C: another chain, with a contract at the market's address
const HUB_PROTOCOL_FEE = 1_000n // per message A → B
const SPOKE_PROTOCOL_FEE = 3_000n // per message B → A
const CALLBACK_GAS = 200_000
const REFS = { output: keccak256(toHex('output ref')), proof: keccak256(toHex('proof ref')) }
const ZERO = '0x0000000000000000000000000000000000000000'
/** InferenceMarket.MarketStatus */
const M = { None: 0, Open: 1, ResultSent: 2, FailureSent: 3, Settled: 4 } as const
/** RequestStatus */
const S = { None: 0, Pending: 1, Fulfilled: 2, Failed: 3, Refunded: 4 } as const
/** InferenceErrorCode */
const E = { ModelFailed: 2, ModelUnavailable: 4, Timeout: 5 } as const

const key = (label: string) => keccak256(toHex(`sertn crosschain test ${label}`))
const validatorKey = privateKeyToAccount(key('validator')) as LocalAccount
const outsider = privateKeyToAccount(key('outsider')) as LocalAccount

let tmp: string | undefined
let agentsDir: string
let anvilA: AnvilInstance | undefined
let anvilB: AnvilInstance | undefined
let anvilC: AnvilInstance | undefined
// Chain A (hub)
let hubOwner: SertnClient // deploys everything on A
let hubAgent: SertnClient // pays for `process` on A (agents)
let hubManual: SertnClient // pays for `process` on A (hand-driven relayers)
let hubStranger: SertnClient
let node: SertnClient // the market's node (an account with no role on B)
// Chain B (spoke)
let spokeOwner: SertnClient
let spokeAgent: SertnClient
let spokeManual: SertnClient
let user: SertnClient // owns the consumer
let spokeStranger: SertnClient
// Chain C
let otherDeployer: SertnClient

let coreA: HyperlaneCoreDeployment
let coreB: HyperlaneCoreDeployment
let hubCore: CoreDeployment
let market: Address
let marketNonce: number // the nonce market was deployed with, by hubOwner
let spoke: SpokeDeployment
let hubDemo: RegisteredModel
let spokeDemo: RegisteredModel
let undeployedModel: Hex // registered on both registries, no chain deployment recorded on the hub
let consumer: Address
let input: bigint[]
let otherInput: bigint[]
let proof: InferenceProof
let tamperedProof: Hex
let agents: LocalAgents | undefined
const agentErrors: { who: string; message: string }[] = []
const gas: Record<string, number> = {}

/** Mailbox errors plus an app's, so that a reverted `process` decodes to the app's custom error. */
const processAbi = (app: { abi: Abi | readonly unknown[] }) =>
  [...Mailbox.abi, ...(app.abi as Abi).filter((x) => x.type === 'error')] as Abi
const hubProcessAbi = processAbi(InferenceMarket)
const spokeProcessAbi = processAbi(SpokeGateway)
/** The consumer's ABI plus the gateway's errors, which its calls bubble up. */
const consumerAbi = [...RecordingConsumer.abi, ...SpokeGateway.abi.filter((x) => x.type === 'error')] as Abi

// ─────────────────────────────── Hyperlane plumbing ───────────────────────

type Sent = { message: Hex; id: Hex; index: number }

/** The message a transaction dispatched (its id and merkle tree index). */
function dispatched(receipt: TransactionReceipt): Sent {
  const [d] = parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: receipt.logs })
  const [ins] = parseEventLogs({ abi: MerkleTreeHook.abi, eventName: 'InsertedIntoTree', logs: receipt.logs })
  if (!d || !ins) throw new Error(`no Dispatch / InsertedIntoTree log in ${receipt.transactionHash}`)
  expect(ins.args.messageId).toBe(keccak256(d.args.message))
  return { message: d.args.message, id: ins.args.messageId, index: ins.args.index }
}

const checkpointStore = (domain: number) => new FileCheckpointStore(join(agentsDir, `checkpoints-${domain}`), validatorKey.address)
const cursorStore = (from: number, to: number) => new FileRelayerCursorStore(agentsDir, `relayer-${from}-${to}.json`)

const chainOf = (domain: number) => (domain === HUB ? { client: hubManual, core: coreA } : { client: spokeManual, core: coreB })

/** A validator over the agents' file store for `domain` (it resumes where the agents' stopped). */
function makeValidator(domain: number): LocalValidator {
  const { client, core } = chainOf(domain)
  return createLocalValidator({
    client,
    domain,
    merkleTreeHook: core.merkleTreeHook,
    account: validatorKey,
    store: checkpointStore(domain),
    fromBlock: core.deployBlock,
    pollingIntervalMs: 50,
    onError: (e) => agentErrors.push({ who: `validator ${domain}`, message: String(e) }),
  })
}

/** A relayer over the agents' file cursor for `from → to` (it resumes where the agents' stopped). */
function makeRelayer(from: number, to: number): LocalRelayer {
  const o = chainOf(from)
  const d = chainOf(to)
  return createLocalRelayer({
    origin: { client: o.client, mailbox: o.core.mailbox, merkleTreeHook: o.core.merkleTreeHook, domain: from },
    destination: { client: d.client, mailbox: d.core.mailbox, domain: to },
    checkpointStores: [checkpointStore(from)],
    cursorStore: cursorStore(from, to),
    fromBlock: o.core.deployBlock,
    pollingIntervalMs: 50,
    onError: (e) => agentErrors.push({ who: `relayer ${from}→${to}`, message: errorText(e) }),
  })
}

function errorText(e: unknown): string {
  const parts: string[] = []
  for (let x: unknown = e; x instanceof Error; x = x.cause) parts.push(x.message)
  return parts.join(' ← ')
}

/** One pass of a fresh validator then a fresh relayer (both from the file stores): signs and delivers what is ready. */
async function relayOnce(from: number, to: number) {
  const v = makeValidator(from)
  await v.poll()
  await v[Symbol.asyncDispose]()
  const r = makeRelayer(from, to)
  try {
    return await r.poll()
  } finally {
    await r[Symbol.asyncDispose]()
  }
}

/** Starts the validators (one per chain) and relayers (both ways) in the background, on the file stores. */
function startAgents(): LocalAgents {
  return startLocalAgents({
    chains: [
      {
        name: 'hub',
        domain: HUB,
        client: hubAgent,
        mailbox: coreA.mailbox,
        merkleTreeHook: coreA.merkleTreeHook,
        fromBlock: coreA.deployBlock,
      },
      {
        name: 'spoke',
        domain: SPOKE,
        client: spokeAgent,
        mailbox: coreB.mailbox,
        merkleTreeHook: coreB.merkleTreeHook,
        fromBlock: coreB.deployBlock,
      },
    ],
    validator: validatorKey,
    dir: agentsDir,
    pollingIntervalMs: 50,
    onError: (who, e) => agentErrors.push({ who, message: errorText(e) }),
  })
}

async function stopAgents() {
  const a = agents
  agents = undefined
  await a?.stop()
}

/** The metadata a relayer builds once the validator signed the message's checkpoint. */
async function metadataFor(domain: number, sent: Sent): Promise<Hex> {
  const signed = await waitUntil(`signature of index ${sent.index} on ${domain}`, () => checkpointStore(domain).get(sent.index))
  expect(signed.messageId).toBe(sent.id)
  return encodeMessageIdMultisigMetadata(signed, [signed.signature])
}

/** Simulates the relayer's `process` on the spoke; returns the decoded revert. */
const spokeProcessRevert = async (sent: Sent, metadata?: Hex) =>
  expectRevert(
    spokeManual.simulateContract({
      address: coreB.mailbox,
      abi: spokeProcessAbi,
      functionName: 'process',
      args: [metadata ?? (await metadataFor(HUB, sent)), sent.message],
    }),
  )

/** Simulates the relayer's `process` on the hub; returns the decoded revert. */
const hubProcessRevert = async (sent: Sent) =>
  expectRevert(
    hubManual.simulateContract({
      address: coreA.mailbox,
      abi: hubProcessAbi,
      functionName: 'process',
      args: [await metadataFor(SPOKE, sent), sent.message],
    }),
  )

const deliveredOnSpoke = (id: Hex) =>
  spokeManual.readContract({ address: coreB.mailbox, abi: Mailbox.abi, functionName: 'delivered', args: [id] })
const deliveredOnHub = (id: Hex) =>
  hubManual.readContract({ address: coreA.mailbox, abi: Mailbox.abi, functionName: 'delivered', args: [id] })
const processCount = async (client: SertnClient, mailbox: Address, id: Hex) =>
  (await client.getContractEvents({ address: mailbox, abi: Mailbox.abi, eventName: 'ProcessId', args: { messageId: id }, fromBlock: 0n }))
    .length

// ─────────────────────────────── Sertn plumbing ───────────────────────────

const spokeRequest = (id: bigint) =>
  spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'getRequest', args: [id] })
const hubRequest = (mid: bigint) =>
  hubManual.readContract({ address: market, abi: InferenceMarket.abi, functionName: 'getRequest', args: [mid] })
const marketIdOf = (id: bigint, gateway: Address = spoke.gateway) =>
  hubManual.readContract({
    address: market,
    abi: InferenceMarket.abi,
    functionName: 'marketRequestIdOf',
    args: [SPOKE, addressAsBytes32(gateway), id],
  })
const spokeQuote = (modelId: Hex = spokeDemo.modelId) =>
  spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'quote', args: [modelId, CALLBACK_GAS] })

/** The consumer requests on the spoke, paying the quote; returns the request id and the REQUEST message. */
async function requestOnSpoke(opts: { modelId?: Hex; input?: bigint[] } = {}) {
  const modelId = opts.modelId ?? spokeDemo.modelId
  const value = await spokeQuote(modelId)
  const receipt = await confirm(
    user,
    await user.writeContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: 'request',
      args: [modelId, opts.input ?? input, CALLBACK_GAS],
      value,
    }),
  )
  const [requested] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'InferenceRequested', logs: receipt.logs })
  const [toHub] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'RequestSentToHub', logs: receipt.logs })
  if (!requested || !toHub) throw new Error('no InferenceRequested / RequestSentToHub')
  const sent = dispatched(receipt)
  expect(toHub.args).toEqual({ requestId: requested.args.requestId, messageId: sent.id })
  return { id: requested.args.requestId, escrow: requested.args.escrow, value, sent, receipt }
}

/** The hub market id once the spoke request is recorded there. */
const recorded = (id: bigint, gateway: Address = spoke.gateway) =>
  waitUntil(`hub record of spoke request ${id}`, async () => (await marketIdOf(id, gateway)) || undefined)

type ResultArgs = { input?: bigint[]; output?: readonly bigint[]; proof?: Hex; value?: bigint; from?: SertnClient }

function resultArgs(mid: bigint, a: ResultArgs = {}) {
  return [mid, a.input ?? input, [...(a.output ?? proof.output)], a.proof ?? proof.proof, REFS] as const
}

const quoteResult = (mid: bigint) =>
  node.readContract({ address: market, abi: InferenceMarket.abi, functionName: 'quoteResult', args: resultArgs(mid) })

/** Simulates the node's submitResult on the hub and returns the decoded revert. */
async function submitRevert(mid: bigint, a: ResultArgs = {}) {
  const from = a.from ?? node
  return expectRevert(
    from.simulateContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName: 'submitResult',
      args: resultArgs(mid, a),
      value: a.value ?? (await quoteResult(mid)),
    }),
  )
}

/** The node submits the result on the hub, paying the quote; returns the RESULT message. */
async function submitResult(mid: bigint, value?: bigint) {
  const fee = await quoteResult(mid)
  const receipt = await confirm(
    node,
    await node.writeContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName: 'submitResult',
      args: resultArgs(mid),
      value: value ?? fee,
    }),
  )
  return { fee, receipt, sent: dispatched(receipt) }
}

/** A Sertn RESULT body, as the market encodes it (for stand-in senders). */
const resultBody = (id: bigint, p: { output: readonly bigint[]; proof: Hex } = proof) =>
  encodePacked(
    ['uint8', 'bytes'],
    [
      1,
      encodeAbiParameters(parseAbiParameters('uint256, int256[], int256[], bytes, (bytes32 output, bytes32 proof), address'), [
        id,
        input,
        [...p.output],
        p.proof,
        REFS,
        node.account.address,
      ]),
    ],
  )

/** Dispatches a RESULT for spoke request `id` from `dispatcher` (a TestHubDispatcher on A or C). */
async function dispatchResult(
  client: SertnClient,
  dispatcher: Address,
  id: bigint,
  p: { output: readonly bigint[]; proof: Hex } = proof,
  fee: bigint = HUB_PROTOCOL_FEE,
): Promise<Sent> {
  const receipt = await confirm(
    client,
    await client.writeContract({
      address: dispatcher,
      abi: TestHubDispatcher.abi,
      functionName: 'dispatchResult',
      args: [SPOKE, spoke.gateway, id, input, [...p.output], p.proof, REFS, node.account.address],
      value: fee,
    }),
  )
  const sent = dispatched(receipt)
  expect(sent.message.endsWith(resultBody(id, p).slice(2))).toBe(true) // the TypeScript codec agrees with the contract's
  return sent
}

type Frame = { to?: string; input: string; gasUsed: string; calls?: Frame[] }
/** Gas used by the first call frame to `to` in the transaction (anvil's call tracer). */
async function frameGas(client: SertnClient, hash: Hex, to: Address): Promise<number | undefined> {
  const root = (await client.request({
    method: 'debug_traceTransaction' as never,
    params: [hash, { tracer: 'callTracer' }] as never,
  })) as Frame
  const stack = [root]
  while (stack.length > 0) {
    const f = stack.shift()!
    if (f.to?.toLowerCase() === to.toLowerCase()) return Number(BigInt(f.gasUsed))
    stack.push(...(f.calls ?? []))
  }
  return undefined
}

const flipByte = (hex: Hex, at: number): Hex => {
  const b = hex.slice(2)
  const flipped = (parseInt(b.slice(2 * at, 2 * at + 2), 16) ^ 0x01).toString(16).padStart(2, '0')
  return `0x${b.slice(0, 2 * at)}${flipped}${b.slice(2 * at + 2)}`
}

// ─────────────────────────────── Setup ────────────────────────────────────

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sertn-crosschain-'))
  agentsDir = join(tmp, 'agents')
  // allSettled: whichever anvils start are assigned, so afterAll stops them even if one failed.
  const started = await Promise.allSettled([startAnvil({ chainId: 31337 }), startAnvil({ chainId: 31338 }), startAnvil({ chainId: 31339 })])
  ;[anvilA, anvilB, anvilC] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined))
  for (const s of started) if (s.status === 'rejected') throw s.reason
  const a = anvilA!.chain
  const b = anvilB!.chain
  ;[hubOwner, hubAgent, hubStranger, hubManual, node] = [0, 1, 3, 4, 5].map((i) => createSertnClient(a, anvilAccount(i))) as [
    SertnClient,
    SertnClient,
    SertnClient,
    SertnClient,
    SertnClient,
  ]
  ;[spokeOwner, spokeAgent, user, spokeStranger, spokeManual] = [0, 1, 2, 3, 4].map((i) => createSertnClient(b, anvilAccount(i))) as [
    SertnClient,
    SertnClient,
    SertnClient,
    SertnClient,
    SertnClient,
  ]
  otherDeployer = createSertnClient(anvilC!.chain, anvilAccount(1))

  // One real proof for the sample input, made while the chains are set up.
  const proving = (async () => {
    const artifacts = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
    const x = await sampleInputQ(artifacts)
    const prover = createEzklWasmProver()
    try {
      return { x, p: await prover.proveInference(artifacts, x) }
    } finally {
      await prover.dispose()
    }
  })()
  proving.catch(() => undefined)

  const deployHub = async () => {
    coreA = await deployHyperlaneCore(hubOwner, {
      domain: HUB,
      validators: [validatorKey.address],
      threshold: 1,
      protocolFee: HUB_PROTOCOL_FEE,
    })
    hubCore = await deployCore(hubOwner, DEV_ONLY)
    hubDemo = await registerModel(hubOwner, { registry: hubCore.registry, model: 'sertn-mlp-demo', ...DEV_ONLY })
    marketNonce = await hubOwner.getTransactionCount({ address: hubOwner.account.address, blockTag: 'pending' })
    market = await deployMarket(hubOwner, { registry: hubCore.registry, mailbox: coreA.mailbox, nodes: [node.account.address] })
  }
  const deploySpokeChain = async () => {
    coreB = await deployHyperlaneCore(spokeOwner, {
      domain: SPOKE,
      validators: [validatorKey.address],
      threshold: 1,
      protocolFee: SPOKE_PROTOCOL_FEE,
    })
    spoke = await deploySpoke(spokeOwner, { mailbox: coreB.mailbox, ...DEV_ONLY })
    spokeDemo = await registerModel(spokeOwner, { registry: spoke.registry, model: 'sertn-mlp-demo', ...DEV_ONLY })
    consumer = await deployContract(user, RecordingConsumer, [spoke.gateway])
  }
  await Promise.all([deployHub(), deploySpokeChain()])
  await connectSpoke({
    hub: { client: hubOwner, domain: HUB, market, registry: hubCore.registry },
    spoke: { client: spokeOwner, domain: SPOKE, gateway: spoke.gateway, verifier: spoke.verifier },
    models: [spokeDemo],
  })
  // The same circuit under a second name, registered on both chains but never recorded as deployed on the spoke.
  const [undeployedHub, undeployedSpoke] = await Promise.all([
    registerModel(hubOwner, {
      registry: hubCore.registry,
      model: 'sertn-mlp-demo',
      name: 'sertn-mlp-demo/undeployed',
      vka: hubDemo.vka,
      ...DEV_ONLY,
    }),
    registerModel(spokeOwner, {
      registry: spoke.registry,
      model: 'sertn-mlp-demo',
      name: 'sertn-mlp-demo/undeployed',
      vka: spokeDemo.vka,
      ...DEV_ONLY,
    }),
  ])
  if (undeployedHub.modelId !== undeployedSpoke.modelId) throw new Error('the hub and the spoke owners differ: model ids differ')
  undeployedModel = undeployedHub.modelId

  const { x, p } = await proving
  input = x
  proof = p
  otherInput = input.map((v, i) => (i === 0 ? (v > 0n ? v - 1n : v + 1n) : v))
  tamperedProof = flipByte(proof.proof, 100)
  agents = startAgents()
}, 180_000)

afterAll(async () => {
  await stopAgents().catch(() => undefined)
  await Promise.allSettled([anvilA?.stop(), anvilB?.stop(), anvilC?.stop()])
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

// ─────────────────────────────── Tests ────────────────────────────────────

describe('spoke → hub → spoke over Hyperlane, with the local agents running', () => {
  test('happy path: request on the spoke, recorded on the hub, result verified on both, consumer called back, receipt settles the hub', async () => {
    // Wiring done by connectSpoke.
    expect(await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'hubDomain' })).toBe(HUB)
    expect(await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'hubMarket' })).toBe(
      addressAsBytes32(market),
    )
    expect(
      await hubManual.readContract({
        address: market,
        abi: InferenceMarket.abi,
        functionName: 'isRoute',
        args: [SPOKE, addressAsBytes32(spoke.gateway)],
      }),
    ).toBe(true)
    expect(
      await hubManual.readContract({
        address: hubCore.registry,
        abi: ModelRegistry.abi,
        functionName: 'getChainDeployment',
        args: [spokeDemo.modelId, SPOKE],
      }),
    ).toEqual({ verifier: spoke.verifier, vka: spokeDemo.vka, version: 1 })

    const nodeBefore = await spokeManual.getBalance({ address: node.account.address })
    const feesBefore = await spokeManual.getBalance({ address: coreB.protocolFee })
    const req = await requestOnSpoke()
    gas.spokeRequestInference = Number(req.receipt.gasUsed)
    // The quote covers both messages to the hub; only the rest is escrowed.
    expect(req.value - req.escrow).toBe(2n * SPOKE_PROTOCOL_FEE)
    expect(await spokeManual.getBalance({ address: coreB.protocolFee })).toBe(feesBefore + SPOKE_PROTOCOL_FEE)
    const stored = await spokeRequest(req.id)
    expect(stored).toMatchObject({ requester: consumer, status: S.Pending, escrow: req.escrow, modelId: spokeDemo.modelId })

    // REQUEST relayed B → A and recorded.
    const mid = await recorded(req.id)
    const [rec] = await hubManual.getContractEvents({
      address: market,
      abi: InferenceMarket.abi,
      eventName: 'RequestRecorded',
      args: { marketRequestId: mid },
      fromBlock: 0n,
      strict: true,
    })
    if (!rec) throw new Error('no RequestRecorded')
    expect(rec.args).toEqual({
      marketRequestId: mid,
      origin: SPOKE,
      spokeRequestId: req.id,
      gateway: addressAsBytes32(spoke.gateway),
      request: {
        requestId: req.id,
        modelId: spokeDemo.modelId,
        modelVersion: 1,
        input,
        inputRef: `0x${'00'.repeat(32)}`,
        requester: consumer,
        callbackGasLimit: CALLBACK_GAS,
        escrow: req.escrow,
        deadline: stored.deadline,
      },
    })
    gas.hubProcessRequest = Number((await hubManual.getTransactionReceipt({ hash: rec.transactionHash })).gasUsed)
    expect(await hubRequest(mid)).toMatchObject({
      origin: SPOKE,
      status: M.Open,
      settlement: S.Pending,
      node: ZERO,
      spokeRequestId: req.id,
      gateway: addressAsBytes32(spoke.gateway),
    })

    // The node submits on the hub: verified there, RESULT dispatched, surplus refunded.
    const nodeABefore = await node.getBalance({ address: node.account.address })
    const fee = await quoteResult(mid)
    expect(fee).toBe(HUB_PROTOCOL_FEE)
    const res = await submitResult(mid, fee + 12_345n)
    expect(await node.getBalance({ address: node.account.address })).toBe(
      nodeABefore - fee - res.receipt.gasUsed * res.receipt.effectiveGasPrice,
    )
    gas.hubSubmitResult = Number(res.receipt.gasUsed)
    gas.hubVerifyProof = (await frameGas(node, res.receipt.transactionHash, hubCore.verifier)) ?? -1
    const [resultEvent] = parseEventLogs({ abi: InferenceMarket.abi, eventName: 'ResultDispatched', logs: res.receipt.logs })
    expect(resultEvent?.args).toMatchObject({
      marketRequestId: mid,
      node: node.account.address,
      messageId: res.sent.id,
      output: proof.output,
    })
    expect(await hubRequest(mid)).toMatchObject({ status: M.ResultSent, node: node.account.address })

    // RESULT relayed A → B: verified on the spoke, node paid, consumer called back, RECEIPT sent.
    await waitUntil('spoke fulfilment', async () => (await spokeRequest(req.id)).status === S.Fulfilled)
    const [fulfilled] = await spokeManual.getContractEvents({
      address: spoke.gateway,
      abi: SpokeGateway.abi,
      eventName: 'InferenceFulfilled',
      args: { requestId: req.id },
      fromBlock: 0n,
      strict: true,
    })
    if (!fulfilled) throw new Error('no InferenceFulfilled')
    expect(fulfilled.args).toMatchObject({
      requestId: req.id,
      node: node.account.address,
      output: proof.output,
      artifacts: REFS,
      callbackStatus: 0,
    })
    expect(
      await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [req.id] }),
    ).toEqual(proof.output)
    expect(await spokeManual.getBalance({ address: node.account.address })).toBe(nodeBefore + req.escrow)
    const processResult = await spokeManual.getTransactionReceipt({ hash: fulfilled.transactionHash })
    expect(processResult.to?.toLowerCase()).toBe(coreB.mailbox.toLowerCase())
    const [receiptSent] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'ReceiptSent', logs: processResult.logs })
    expect(receiptSent?.args).toMatchObject({ requestId: req.id, status: S.Fulfilled })
    gas.spokeProcessResult = Number(processResult.gasUsed)
    gas.spokeVerifyProof = (await frameGas(spokeManual, fulfilled.transactionHash, spoke.verifier)) ?? -1
    gas.spokeCallback = Number(fulfilled.args.callbackGasUsed)
    expect(await spokeManual.getBalance({ address: coreB.protocolFee })).toBe(feesBefore + 2n * SPOKE_PROTOCOL_FEE) // the reserve paid the receipt

    // RECEIPT relayed B → A: settled on the hub.
    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
    expect(await hubRequest(mid)).toMatchObject({ status: M.Settled, settlement: S.Fulfilled, node: node.account.address })
    const [settled] = await hubManual.getContractEvents({
      address: market,
      abi: InferenceMarket.abi,
      eventName: 'RequestSettled',
      args: { marketRequestId: mid },
      fromBlock: 0n,
      strict: true,
    })
    expect(settled?.args).toEqual({ marketRequestId: mid, settlement: S.Fulfilled, node: node.account.address })
    gas.hubProcessReceipt = Number((await hubManual.getTransactionReceipt({ hash: settled!.transactionHash })).gasUsed)
    // Each of the three messages was processed exactly once.
    expect(await processCount(hubManual, coreA.mailbox, req.sent.id)).toBe(1)
    expect(await processCount(spokeManual, coreB.mailbox, res.sent.id)).toBe(1)
    expect(await processCount(hubManual, coreA.mailbox, receiptSent!.args.messageId)).toBe(1)
    console.log('[crosschain gas]', JSON.stringify(gas))
  })

  test('failure path: the node fails the request on the hub; the spoke refunds and calls back with the error; the hub settles Failed', async () => {
    const req = await requestOnSpoke()
    const mid = await recorded(req.id)
    const consumerBefore = await spokeManual.getBalance({ address: consumer })
    const fee = await node.readContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName: 'quoteFailure',
      args: [mid, E.ModelFailed, 'model crashed'],
    })
    expect(fee).toBe(HUB_PROTOCOL_FEE)
    const receipt = await confirm(
      node,
      await node.writeContract({
        address: market,
        abi: InferenceMarket.abi,
        functionName: 'failRequest',
        args: [mid, E.ModelFailed, 'model crashed'],
        value: fee,
      }),
    )
    const [ev] = parseEventLogs({ abi: InferenceMarket.abi, eventName: 'FailureDispatched', logs: receipt.logs })
    expect(ev?.args).toMatchObject({ marketRequestId: mid, node: node.account.address, code: E.ModelFailed, reason: 'model crashed' })
    expect((await hubRequest(mid)).status).toBe(M.FailureSent)
    // A failed request cannot then be answered.
    expect(await submitRevert(mid)).toEqual({ errorName: 'MarketRequestNotOpen', args: [mid, M.FailureSent] })

    await waitUntil('spoke failure', async () => (await spokeRequest(req.id)).status === S.Failed)
    const [failed] = await spokeManual.getContractEvents({
      address: spoke.gateway,
      abi: SpokeGateway.abi,
      eventName: 'InferenceFailed',
      args: { requestId: req.id },
      fromBlock: 0n,
      strict: true,
    })
    expect(failed?.args).toMatchObject({
      requestId: req.id,
      node: node.account.address,
      code: E.ModelFailed,
      reason: 'model crashed',
      callbackStatus: 0,
    })
    expect(
      await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'errorCodePlusOne', args: [req.id] }),
    ).toBe(BigInt(E.ModelFailed + 1))
    expect(await spokeManual.getBalance({ address: consumer })).toBe(consumerBefore + req.escrow)

    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
    expect(await hubRequest(mid)).toMatchObject({ status: M.Settled, settlement: S.Failed, node: node.account.address })
  })

  test('refund path: past its deadline the hub refuses the result and anyone refunds on the spoke; the hub settles Refunded', async () => {
    const req = await requestOnSpoke()
    const mid = await recorded(req.id)
    const deadline = (await spokeRequest(req.id)).deadline
    expect(
      await expectRevert(
        spokeStranger.simulateContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'refund', args: [req.id] }),
      ),
    ).toEqual({ errorName: 'GatewayRequestNotExpired', args: [req.id, BigInt(deadline)] })
    // Both clocks move just past the deadline (so they stay in step for the requests made later).
    const passDeadline = async (client: SertnClient) => {
      const { timestamp } = await client.getBlock({ blockTag: 'latest' })
      await increaseTime(client, Math.max(0, Number(BigInt(deadline) - timestamp)) + 1)
    }
    await Promise.all([passDeadline(hubManual), passDeadline(spokeManual)])
    expect(await submitRevert(mid)).toEqual({ errorName: 'MarketRequestExpired', args: [mid, BigInt(deadline)] })

    const consumerBefore = await spokeManual.getBalance({ address: consumer })
    const receipt = await confirm(
      spokeStranger,
      await spokeStranger.writeContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'refund', args: [req.id] }),
    )
    const [sentReceipt] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'ReceiptSent', logs: receipt.logs })
    expect(sentReceipt?.args).toMatchObject({ requestId: req.id, status: S.Refunded })
    expect((await spokeRequest(req.id)).status).toBe(S.Refunded)
    expect(await spokeManual.getBalance({ address: consumer })).toBe(consumerBefore + req.escrow)
    expect(
      await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'errorCodePlusOne', args: [req.id] }),
    ).toBe(BigInt(E.Timeout + 1))

    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
    expect(await hubRequest(mid)).toMatchObject({ status: M.Settled, settlement: S.Refunded, node: ZERO })
    expect(await submitRevert(mid)).toEqual({ errorName: 'MarketRequestNotOpen', args: [mid, M.Settled] })
  })
})

describe('hub rejections', () => {
  let id: bigint
  let mid: bigint

  beforeAll(async () => {
    ;({ id } = await requestOnSpoke())
    mid = await recorded(id)
  })

  test('error: submitResult by an account that is not a node', async () => {
    expect(await submitRevert(mid, { from: hubStranger })).toEqual({
      errorName: 'MarketUnauthorizedNode',
      args: [hubStranger.account.address],
    })
  })

  test('error: submitResult with a tampered proof, or a proof of another output', async () => {
    expect(await submitRevert(mid, { proof: tamperedProof })).toEqual({ errorName: 'MarketInvalidProof', args: [mid] })
    expect(await submitRevert(mid, { output: proof.output.map((v, i) => (i === 0 ? v + 1n : v)) })).toEqual({
      errorName: 'MarketInvalidProof',
      args: [mid],
    })
  })

  test('error: submitResult for another input than the recorded one', async () => {
    expect(await submitRevert(mid, { input: otherInput })).toEqual({ errorName: 'MarketInputMismatch', args: [mid] })
  })

  test('error: submitResult paying less than the messenger fee', async () => {
    const fee = await quoteResult(mid)
    expect(await submitRevert(mid, { value: fee - 1n })).toEqual({ errorName: 'MessengerInsufficientFee', args: [fee, fee - 1n] })
    expect(await submitRevert(mid, { value: 0n })).toEqual({ errorName: 'MessengerInsufficientFee', args: [fee, 0n] })
  })

  test('error: submitResult a second time, and for a request the market never recorded', async () => {
    expect((await hubRequest(mid)).status).toBe(M.Open) // every rejection above left it open
    await submitResult(mid)
    expect(await submitRevert(mid)).toEqual({ errorName: 'MarketRequestNotOpen', args: [mid, M.ResultSent] })
    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
    expect(await submitRevert(mid)).toEqual({ errorName: 'MarketRequestNotOpen', args: [mid, M.Settled] })
    expect(await submitRevert(999n)).toEqual({ errorName: 'MarketRequestNotOpen', args: [999n, M.None] })
    expect((await spokeRequest(id)).status).toBe(S.Fulfilled)
  })

  test('error: submitResult for a model whose circuit is not recorded as deployed on the requesting spoke', async () => {
    const req = await requestOnSpoke({ modelId: undeployedModel })
    const m = await recorded(req.id)
    expect(await submitRevert(m)).toEqual({ errorName: 'MarketModelNotDeployed', args: [undeployedModel, SPOKE, 0, 1] })
    // The node can only fail it, and the spoke refunds it.
    const fee = await node.readContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName: 'quoteFailure',
      args: [m, E.ModelUnavailable, 'not deployed on this chain'],
    })
    await confirm(
      node,
      await node.writeContract({
        address: market,
        abi: InferenceMarket.abi,
        functionName: 'failRequest',
        args: [m, E.ModelUnavailable, 'not deployed on this chain'],
        value: fee,
      }),
    )
    await waitUntil('hub settlement', async () => (await hubRequest(m)).status === M.Settled)
    expect(await hubRequest(m)).toMatchObject({ settlement: S.Failed })
    expect((await spokeRequest(req.id)).status).toBe(S.Failed)
  })

  test('error: REQUEST and RECEIPT messages from senders on the spoke chain the market has not enrolled are rejected at process', async () => {
    // A second SpokeGateway pointed at the market, which never enrolled it.
    const rogue = await deployContract(spokeStranger, SpokeGateway, [
      spokeStranger.account.address,
      spoke.registry,
      DEFAULT_GATEWAY_CONFIG,
      coreB.mailbox,
    ])
    await confirm(
      spokeStranger,
      await spokeStranger.writeContract({
        address: rogue,
        abi: SpokeGateway.abi,
        functionName: 'setHub',
        args: [HUB, addressAsBytes32(market)],
      }),
    )
    const value = await spokeStranger.readContract({
      address: rogue,
      abi: SpokeGateway.abi,
      functionName: 'quote',
      args: [spokeDemo.modelId, 0],
    })
    const rogueRequest = dispatched(
      await confirm(
        spokeStranger,
        await spokeStranger.writeContract({
          address: rogue,
          abi: SpokeGateway.abi,
          functionName: 'requestInference',
          args: [spokeDemo.modelId, input, 0],
          value,
        }),
      ),
    )
    expect(await hubProcessRevert(rogueRequest)).toEqual({ errorName: 'MessengerUnknownRoute', args: [SPOKE, addressAsBytes32(rogue)] })

    // A forged receipt for a real, open request, from a contract on the spoke chain.
    const open = await requestOnSpoke()
    const openMid = await recorded(open.id)
    const dispatcher = await deployContract(spokeStranger, TestHubDispatcher, [coreB.mailbox])
    const body = encodePacked(
      ['uint8', 'bytes'],
      [4, encodeAbiParameters(parseAbiParameters('uint256, uint8, address'), [open.id, S.Refunded, ZERO])],
    )
    const forgedReceipt = dispatched(
      await confirm(
        spokeStranger,
        await spokeStranger.writeContract({
          address: dispatcher,
          abi: TestHubDispatcher.abi,
          functionName: 'dispatchRaw',
          args: [HUB, market, body],
          value: SPOKE_PROTOCOL_FEE,
        }),
      ),
    )
    expect(await hubProcessRevert(forgedReceipt)).toEqual({
      errorName: 'MessengerUnknownRoute',
      args: [SPOKE, addressAsBytes32(dispatcher)],
    })

    // The running relayer tried both and left them undelivered; nothing was recorded or settled.
    for (const sent of [rogueRequest, forgedReceipt]) {
      await waitUntil(`relayer attempt at ${sent.id}`, async () =>
        agentErrors.some((e) => e.who === 'relayer spoke→hub' && e.message.includes(sent.id)),
      )
      expect(await deliveredOnHub(sent.id)).toBe(false)
    }
    expect(await marketIdOf(1n, rogue)).toBe(0n)
    expect((await hubRequest(openMid)).status).toBe(M.Open)
    // The genuine request is still served normally.
    await submitResult(openMid)
    await waitUntil('hub settlement', async () => (await hubRequest(openMid)).status === M.Settled)
    expect(await hubRequest(openMid)).toMatchObject({ settlement: S.Fulfilled })
  })
})

describe('spoke rejections at process (agents stopped; relayed by hand)', () => {
  let id: bigint // pending on the spoke, recorded on the hub
  let mid: bigint
  let result: Sent // the market's genuine RESULT for it, not yet delivered
  let rogueA: Address // a TestHubDispatcher on A, never enrolled on the spoke
  let secondHub: Address // a TestHubDispatcher on A, enrolled by the spoke's owner as a second sender

  beforeAll(async () => {
    await stopAgents()
    ;({ id } = await requestOnSpoke())
    const relayed = await relayOnce(SPOKE, HUB)
    expect(relayed.delivered.length).toBe(1)
    mid = await marketIdOf(id)
    expect(mid).toBeGreaterThan(0n)
    ;({ sent: result } = await submitResult(mid))
    await makeValidator(HUB).poll()
    rogueA = await deployContract(hubStranger, TestHubDispatcher, [coreA.mailbox])
    secondHub = await deployContract(hubStranger, TestHubDispatcher, [coreA.mailbox])
  })

  const stillPending = async (...sent: Sent[]) => {
    for (const s of sent) expect(await deliveredOnSpoke(s.id)).toBe(false)
    expect((await spokeRequest(id)).status).toBe(S.Pending)
  }

  test('error: metadata signed by a key outside the ISM validator set reverts with "!threshold"', async () => {
    const signed = (await checkpointStore(HUB).get(result.index))!
    const forged = await signCheckpoint(outsider, {
      origin: HUB,
      merkleTreeHook: coreA.merkleTreeHook,
      root: signed.root,
      index: result.index,
      messageId: result.id,
    })
    expect(await spokeProcessRevert(result, encodeMessageIdMultisigMetadata(forged, [forged.signature]))).toEqual({
      errorName: 'Error',
      args: ['!threshold'],
    })
    // The right validator over another message id fails the same way.
    const wrongId = await signCheckpoint(validatorKey, { ...signed, messageId: keccak256('0x01') })
    expect(await spokeProcessRevert(result, encodeMessageIdMultisigMetadata(wrongId, [wrongId.signature]))).toEqual({
      errorName: 'Error',
      args: ['!threshold'],
    })
    await stillPending(result)
  })

  test('error: a RESULT from a sender on the hub chain that is not the market', async () => {
    const sent = await dispatchResult(hubStranger, rogueA, id)
    await makeValidator(HUB).poll()
    expect(await spokeProcessRevert(sent)).toEqual({ errorName: 'MessengerUnknownRoute', args: [HUB, addressAsBytes32(rogueA)] })
    await stillPending(sent)
  })

  test("error: a RESULT from the market's address on another domain", async () => {
    // Chain C: its own Hyperlane core (the same validator key signs there), and a dispatcher at the
    // market's address: deployed by the market's deployer with the market's nonce.
    const coreC = await deployHyperlaneCore(otherDeployer, { domain: OTHER, validators: [validatorKey.address], threshold: 1 })
    const imposterDeployer = createSertnClient(anvilC!.chain, anvilAccount(0))
    expect(imposterDeployer.account.address).toBe(hubOwner.account.address)
    await imposterDeployer.request({
      method: 'anvil_setNonce' as never,
      params: [imposterDeployer.account.address, toHex(marketNonce)] as never,
    })
    const imposter = await deployContract(imposterDeployer, TestHubDispatcher, [coreC.mailbox])
    expect(imposter).toBe(market)
    const sent = await dispatchResult(imposterDeployer, imposter, id, proof, 0n) // C charges no protocol fee
    const store = new MemoryCheckpointStore(validatorKey.address)
    const v = createLocalValidator({
      client: otherDeployer,
      domain: OTHER,
      merkleTreeHook: coreC.merkleTreeHook,
      account: validatorKey,
      store,
      fromBlock: coreC.deployBlock,
    })
    await v.poll()
    await v[Symbol.asyncDispose]()
    const signed = (await store.get(sent.index))!
    // The ISM accepts it (the validator signed it), so the route check is what rejects it.
    expect(await spokeProcessRevert(sent, encodeMessageIdMultisigMetadata(signed, [signed.signature]))).toEqual({
      errorName: 'MessengerUnknownRoute',
      args: [OTHER, addressAsBytes32(market)],
    })
    await stillPending(sent)
  })

  test('error: from an enrolled sender, a result for an unknown request, and an invalid proof', async () => {
    await confirm(
      spokeOwner,
      await spokeOwner.writeContract({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'enrollRoute',
        args: [HUB, addressAsBytes32(secondHub)],
      }),
    )
    const unknown = await dispatchResult(hubStranger, secondHub, 999n)
    const tampered = await dispatchResult(hubStranger, secondHub, id, { output: proof.output, proof: tamperedProof })
    const forgedOutput = await dispatchResult(hubStranger, secondHub, id, {
      output: proof.output.map((v, i) => (i === 0 ? v + 1n : v)),
      proof: proof.proof,
    })
    await makeValidator(HUB).poll()
    expect(await spokeProcessRevert(unknown)).toEqual({ errorName: 'GatewayRequestNotPending', args: [999n, S.None] })
    expect(await spokeProcessRevert(tampered)).toEqual({ errorName: 'GatewayInvalidProof', args: [id] })
    expect(await spokeProcessRevert(forgedOutput)).toEqual({ errorName: 'GatewayInvalidProof', args: [id] })
    await stillPending(unknown, tampered, forgedOutput)
  })

  test('error: handle called directly, deliverResult / sendOwnMessage called from outside, local fulfill and fail', async () => {
    const calls = [
      ['handle', [HUB, addressAsBytes32(market), resultBody(id)]],
      ['deliverResult', [id, input, [...proof.output], proof.proof, REFS, node.account.address]],
      ['deliverFailure', [id, E.ModelFailed, 'no', node.account.address]],
      ['sendOwnMessage', [HUB, addressAsBytes32(market), '0x', 0n]],
    ] as const
    for (const [functionName, args] of calls) {
      expect(
        await expectRevert(spokeStranger.simulateContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName, args } as never)),
      ).toEqual({
        errorName: 'MessengerUnauthorizedCaller',
        args: [spokeStranger.account.address],
      })
    }
    // Even the spoke's owner made a node, with a valid proof, cannot settle locally.
    await confirm(
      spokeOwner,
      await spokeOwner.writeContract({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'setNode',
        args: [spokeOwner.account.address, true],
      }),
    )
    expect(
      await expectRevert(
        spokeOwner.simulateContract({
          address: spoke.gateway,
          abi: SpokeGateway.abi,
          functionName: 'fulfill',
          args: [id, input, [...proof.output], proof.proof, REFS],
        }),
      ),
    ).toEqual({ errorName: 'SpokeLocalFulfillDisabled', args: [] })
    expect(
      await expectRevert(
        spokeOwner.simulateContract({
          address: spoke.gateway,
          abi: SpokeGateway.abi,
          functionName: 'fail',
          args: [id, E.ModelFailed, 'no'],
        }),
      ),
    ).toEqual({
      errorName: 'SpokeLocalFailDisabled',
      args: [],
    })
    await confirm(
      spokeOwner,
      await spokeOwner.writeContract({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'setNode',
        args: [spokeOwner.account.address, false],
      }),
    )
    // Routes and the hub are owner-managed.
    for (const [functionName, args] of [
      ['setHub', [HUB, addressAsBytes32(rogueA)]],
      ['enrollRoute', [HUB, addressAsBytes32(rogueA)]],
    ] as const) {
      expect(
        await expectRevert(spokeStranger.simulateContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName, args } as never)),
      ).toEqual({
        errorName: 'OwnedUnauthorized',
        args: [spokeStranger.account.address],
      })
    }
    expect((await spokeRequest(id)).status).toBe(S.Pending)
  })

  test('error: requestInference paying less than the quote, which covers both messages to the hub', async () => {
    const quote = await spokeQuote()
    const hubMessageFee = await spokeManual.readContract({
      address: coreB.mailbox,
      abi: Mailbox.abi,
      functionName: 'quoteDispatch',
      args: [HUB, addressAsBytes32(market), '0x'],
    })
    expect(hubMessageFee).toBe(SPOKE_PROTOCOL_FEE)
    const { fee } = await spokeManual.readContract({
      address: spoke.registry,
      abi: ModelRegistry.abi,
      functionName: 'tryGetRequestTerms',
      args: [spokeDemo.modelId],
    })
    const localPrice = fee + BigInt(DEFAULT_GATEWAY_CONFIG.fulfillGasOverhead + CALLBACK_GAS) * DEFAULT_GATEWAY_CONFIG.gasPrice // what a hub gateway would charge
    expect(quote).toBe(localPrice + 2n * hubMessageFee)
    for (const value of [quote - 1n, localPrice]) {
      expect(
        await expectRevert(
          user.simulateContract({
            address: consumer,
            abi: consumerAbi,
            functionName: 'request',
            args: [spokeDemo.modelId, input, CALLBACK_GAS],
            value,
          }),
        ),
      ).toEqual({ errorName: 'GatewayInsufficientPayment', args: [quote, value] })
    }
  })

  test('the genuine RESULT is then delivered; a replay reverts "already delivered"; a second valid result from another enrolled sender is rejected', async () => {
    const res = await relayOnce(HUB, SPOKE)
    expect(res.delivered.map((d) => d.messageId)).toEqual([result.id]) // the rejected ones stay pending
    expect((await spokeRequest(id)).status).toBe(S.Fulfilled)
    expect(await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [id] })).toEqual(
      proof.output,
    )

    expect(await spokeProcessRevert(result)).toEqual({ errorName: 'Error', args: ['Mailbox: already delivered'] })
    const second = await dispatchResult(hubStranger, secondHub, id)
    await makeValidator(HUB).poll()
    expect(await spokeProcessRevert(second)).toEqual({ errorName: 'GatewayRequestNotPending', args: [id, S.Fulfilled] })
    // The relayer's own attempt fails the same way.
    expect((await relayOnce(HUB, SPOKE)).delivered).toEqual([])
    expect(await deliveredOnSpoke(second.id)).toBe(false)
    await confirm(
      spokeOwner,
      await spokeOwner.writeContract({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'unenrollRoute',
        args: [HUB, addressAsBytes32(secondHub)],
      }),
    )

    // The receipt closes it on the hub.
    const back = await relayOnce(SPOKE, HUB)
    expect(back.delivered.length).toBe(1)
    expect(await hubRequest(mid)).toMatchObject({ status: M.Settled, settlement: S.Fulfilled, node: node.account.address })
  })
})

describe('agents killed mid-delivery', () => {
  test('a relayer disposed after the validator signed but before delivery is replaced by one (same file cursor) that delivers exactly once', async () => {
    const { id } = await requestOnSpoke()
    expect((await relayOnce(SPOKE, HUB)).delivered.length).toBe(1)
    const mid = await marketIdOf(id)
    const { sent } = await submitResult(mid)

    const r1 = makeRelayer(HUB, SPOKE)
    expect(await r1.scan()).toBe(1) // r1 has seen the RESULT and saved it as pending …
    expect((await cursorStore(HUB, SPOKE).load())?.pending.map((p) => p.messageId)).toContain(sent.id)
    const v = makeValidator(HUB)
    expect((await v.poll()).map((c) => c.index)).toEqual([sent.index]) // … the validator signed it …
    await v[Symbol.asyncDispose]()
    await r1[Symbol.asyncDispose]() // … and r1 dies before delivering.
    await expect(r1.poll()).rejects.toThrow(/disposed/)
    expect(await deliveredOnSpoke(sent.id)).toBe(false)

    const r2 = makeRelayer(HUB, SPOKE)
    try {
      const res = await r2.poll()
      expect(res.seen).toBe(0) // nothing rescanned: the cursor was past the dispatch block
      expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
      expect((await r2.poll()).delivered).toEqual([])
    } finally {
      await r2[Symbol.asyncDispose]()
    }
    expect(await processCount(spokeManual, coreB.mailbox, sent.id)).toBe(1)
    const fulfilled = await spokeManual.getContractEvents({
      address: spoke.gateway,
      abi: SpokeGateway.abi,
      eventName: 'InferenceFulfilled',
      args: { requestId: id },
      fromBlock: 0n,
    })
    expect(fulfilled.length).toBe(1) // the consumer was called back once
    expect(await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [id] })).toEqual(
      proof.output,
    )

    expect((await relayOnce(SPOKE, HUB)).delivered.length).toBe(1) // the receipt
    expect(await hubRequest(mid)).toMatchObject({ status: M.Settled, settlement: S.Fulfilled })
  })

  test('a validator disposed before signing is restarted from its file store, signs only the new message, and it is recorded once', async () => {
    const v1 = makeValidator(SPOKE)
    v1.start()
    const count = await spokeManual.readContract({ address: coreB.merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'count' })
    await waitUntil('validator caught up', async () => (await checkpointStore(SPOKE).latestIndex()) === count - 1)
    await v1[Symbol.asyncDispose]() // stopped before the next message exists

    const { id, sent } = await requestOnSpoke()
    const r = makeRelayer(SPOKE, HUB)
    try {
      const waiting = await r.poll()
      expect(waiting.seen).toBe(1)
      expect(waiting.delivered).toEqual([]) // no signature: it waits
      expect(await checkpointStore(SPOKE).get(sent.index)).toBeUndefined()
      expect(await deliveredOnHub(sent.id)).toBe(false)

      const v2 = makeValidator(SPOKE)
      expect((await v2.poll()).map((c) => c.index)).toEqual([sent.index]) // only the new insertion
      await v2[Symbol.asyncDispose]()
      const res = await r.poll()
      expect(res.delivered.map((d) => d.messageId)).toEqual([sent.id])
    } finally {
      await r[Symbol.asyncDispose]()
    }
    const mid = await marketIdOf(id)
    const recordedEvents = await hubManual.getContractEvents({
      address: market,
      abi: InferenceMarket.abi,
      eventName: 'RequestRecorded',
      args: { spokeRequestId: id },
      fromBlock: 0n,
    })
    expect(recordedEvents.length).toBe(1)
    expect(await processCount(hubManual, coreA.mailbox, sent.id)).toBe(1)

    // The background agents, restarted on the same files, finish the round trip.
    agents = startAgents()
    await submitResult(mid)
    await waitUntil('spoke fulfilment', async () => (await spokeRequest(id)).status === S.Fulfilled)
    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
    expect(await hubRequest(mid)).toMatchObject({ settlement: S.Fulfilled, node: node.account.address })
  })
})

describe('deferred receipts and accounting (agents running)', () => {
  test('a receipt the reserve no longer covers is deferred without undoing the settlement, then sent by anyone topping up the fee', async () => {
    const req = await requestOnSpoke() // reserves SPOKE_PROTOCOL_FEE for its receipt
    const mid = await recorded(req.id)
    // The spoke's messenger fee rises above the reserve: a new required hook on B's mailbox.
    const HIGH = 10_000n
    const hook = await deployContract(spokeOwner, ProtocolFee, [HIGH, HIGH, spokeOwner.account.address, spokeOwner.account.address])
    const setRequiredHook = async (h: Address) =>
      confirm(
        spokeOwner,
        await spokeOwner.writeContract({ address: coreB.mailbox, abi: Mailbox.abi, functionName: 'setRequiredHook', args: [h] }),
      )
    await setRequiredHook(hook)
    try {
      const { fee } = await spokeManual.readContract({
        address: spoke.registry,
        abi: ModelRegistry.abi,
        functionName: 'tryGetRequestTerms',
        args: [spokeDemo.modelId],
      })
      expect(await spokeQuote()).toBe(
        fee + BigInt(DEFAULT_GATEWAY_CONFIG.fulfillGasOverhead + CALLBACK_GAS) * DEFAULT_GATEWAY_CONFIG.gasPrice + 2n * HIGH,
      )

      await submitResult(mid)
      await waitUntil('spoke fulfilment', async () => (await spokeRequest(req.id)).status === S.Fulfilled)
      const [deferred] = await spokeManual.getContractEvents({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        eventName: 'ReceiptDeferred',
        fromBlock: 0n,
        strict: true,
      })
      expect(deferred?.args).toEqual({ requestId: req.id, status: S.Fulfilled, reserve: SPOKE_PROTOCOL_FEE })
      expect(
        await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [req.id] }),
      ).toEqual(proof.output)
      const pending = await spokeManual.readContract({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'pendingReceipt',
        args: [req.id],
      })
      expect(pending).toEqual({ status: S.Fulfilled, node: node.account.address, reserve: SPOKE_PROTOCOL_FEE })
      expect((await hubRequest(mid)).status).toBe(M.ResultSent)

      const send = (value: bigint) =>
        spokeStranger.simulateContract({
          address: spoke.gateway,
          abi: SpokeGateway.abi,
          functionName: 'sendReceipt',
          args: [req.id],
          value,
        })
      const missing = HIGH - SPOKE_PROTOCOL_FEE
      expect(await expectRevert(send(missing - 1n))).toEqual({ errorName: 'MessengerInsufficientFee', args: [HIGH, HIGH - 1n] })
      const before = await spokeManual.getBalance({ address: spokeStranger.account.address })
      const receipt = await confirm(spokeStranger, await spokeStranger.writeContract((await send(missing + 500n)).request))
      const [sent] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'ReceiptSent', logs: receipt.logs })
      expect(sent?.args).toMatchObject({ requestId: req.id, status: S.Fulfilled })
      // The surplus came back.
      expect(await spokeManual.getBalance({ address: spokeStranger.account.address })).toBe(
        before - missing - receipt.gasUsed * receipt.effectiveGasPrice,
      )
      expect(await expectRevert(send(HIGH))).toEqual({ errorName: 'SpokeNoPendingReceipt', args: [req.id] })
    } finally {
      await setRequiredHook(coreB.protocolFee)
    }
    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
    expect(await hubRequest(mid)).toMatchObject({ settlement: S.Fulfilled, node: node.account.address })
  })

  test('a receipt cheaper than its reserve (the messenger fee fell) sends the difference to the requester', async () => {
    const req = await requestOnSpoke() // reserves SPOKE_PROTOCOL_FEE for its receipt
    const mid = await recorded(req.id)
    const LOW = SPOKE_PROTOCOL_FEE / 3n
    const hook = await deployContract(spokeOwner, ProtocolFee, [
      SPOKE_PROTOCOL_FEE,
      LOW,
      spokeOwner.account.address,
      spokeOwner.account.address,
    ])
    const setRequiredHook = async (h: Address) =>
      confirm(
        spokeOwner,
        await spokeOwner.writeContract({ address: coreB.mailbox, abi: Mailbox.abi, functionName: 'setRequiredHook', args: [h] }),
      )
    await setRequiredHook(hook)
    try {
      const before = await spokeManual.getBalance({ address: consumer })
      await submitResult(mid)
      await waitUntil('spoke fulfilment', async () => (await spokeRequest(req.id)).status === S.Fulfilled)
      const [sent] = await spokeManual.getContractEvents({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        eventName: 'ReceiptSent',
        args: { requestId: req.id },
        fromBlock: 0n,
        strict: true,
      })
      expect(sent?.args.status).toBe(S.Fulfilled)
      // The consumer (the requester) got back what the receipt did not cost.
      expect(await spokeManual.getBalance({ address: consumer })).toBe(before + SPOKE_PROTOCOL_FEE - LOW)
    } finally {
      await setRequiredHook(coreB.protocolFee)
    }
    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
  })

  test('every request settled and every receipt sent: the spoke gateway and the market hold no funds', async () => {
    const last = await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'lastRequestId' })
    for (let id = 1n; id <= last; id++) {
      expect((await spokeRequest(id)).status).not.toBe(S.Pending)
      expect(
        (await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'pendingReceipt', args: [id] }))
          .status,
      ).toBe(S.None)
    }
    const recordedCount = await hubManual.readContract({ address: market, abi: InferenceMarket.abi, functionName: 'lastRequestId' })
    expect(recordedCount).toBe(last) // each spoke request recorded once (the rogue gateway's never)
    for (let m = 1n; m <= recordedCount; m++) {
      await waitUntil(`hub settlement of ${m}`, async () => (await hubRequest(m)).status === M.Settled)
    }
    expect(await spokeManual.getBalance({ address: spoke.gateway })).toBe(0n)
    expect(await hubManual.getBalance({ address: market })).toBe(0n)
  })
})
