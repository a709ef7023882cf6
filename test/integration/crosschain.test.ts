/**
 * The cross-chain contracts over real Hyperlane v3 core contracts on anvils, relayed by the local
 * validator and relayer agents: a consumer on the spoke chain (B) requests; the SpokeGateway
 * escrows and sends the request through B's HyperlanePort to A's port, which hands it to the hub's
 * InferenceMarket (chain A), which records it and opens it as a job in the hub's NodeRegistry,
 * assigned to the node of the model's pool; that node submits a real EZKL proof, verified on
 * the hub before the result goes back port to port; the spoke verifies it again with its own
 * verifier and the spoke registry's VKA, pays the node, calls the consumer back and sends a
 * settlement receipt that closes the request on the hub. Failures, refunds and results the spoke
 * rejects settle the same way. Every rejection, on the hub or at the spoke's `Mailbox.process`, is
 * asserted by its exact custom error (the port's, the application's, or the mailbox's revert
 * string), and the agents are killed and restarted from their file stores mid-delivery. A third
 * anvil (C) hosts contracts at the market's and at the hub port's own addresses, to send a result
 * from the right address on the wrong chain.
 *
 * Sertn domains are the anvils' chain ids (routes, registry records, market origins); the
 * Hyperlane domains are distinct ids (mailboxes, agents, checkpoints), mapped by the ports.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  BaseError,
  concat,
  ContractFunctionRevertedError,
  decodeErrorResult,
  encodeAbiParameters,
  encodePacked,
  keccak256,
  parseAbiParameters,
  parseEventLogs,
  slice,
  toHex,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
  zeroHash,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  HyperlanePort,
  InferenceMarket,
  ModelRegistry,
  NodeRegistry,
  RecordingConsumer,
  SpokeGateway,
  TestHubDispatcher,
} from '../../contracts/artifacts/index.ts'
import { Mailbox, MerkleTreeHook, ProtocolFee } from '../../contracts/artifacts/hyperlane/index.ts'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import {
  addressAsBytes32,
  connectSpoke,
  deployMarket,
  deploySpoke,
  recordChainDeployments,
  type SpokeDeployment,
} from '../../chains/evm/crosschain.ts'
import {
  circuitParamsOf,
  confirm,
  DEFAULT_GATEWAY_CONFIG,
  deployContract,
  deployCore,
  registerModel,
  type CoreDeployment,
  type RegisteredModel,
} from '../../chains/evm/deploy.ts'
import { joinPool, mineToNextEpoch, openLocalPools } from '../../chains/evm/nodes.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import { createEzklWasmProver, type InferenceProof } from '../../plugins/provers/ezkl-wasm/index.ts'
import {
  allowHyperlaneApp,
  connectHyperlanePorts,
  createLocalRelayer,
  createLocalValidator,
  deployHyperlaneCore,
  encodeMessageIdMultisigMetadata,
  FileCheckpointStore,
  FileRelayerCursorStore,
  MemoryCheckpointStore,
  parseMessage,
  signCheckpoint,
  startLocalAgents,
  type HyperlaneCoreDeployment,
  type LocalAgents,
  type LocalRelayer,
  type LocalValidator,
} from '../../plugins/messengers/hyperlane/index.ts'
import { DEV_ONLY, sampleInputQ } from '../support/artifacts.ts'
import { expectRevert, increaseTime, waitUntil } from '../support/chain.ts'

// Sertn domains: the chains' ids.
const HUB = 31337 // chain A: hub registry, gateway and InferenceMarket
const SPOKE = 31338 // chain B: the SpokeGateway
const OTHER = 31339 // chain C: another chain, with contracts at the market's and the hub port's addresses
// Hyperlane domains (the mailboxes'), distinct from the Sertn domains: the ports map one to the other.
const HL_HUB = 1_000_001
const HL_SPOKE = 1_000_002
const HL_OTHER = 1_000_003
const HUB_PROTOCOL_FEE = 1_000n // per message A → B
const SPOKE_PROTOCOL_FEE = 3_000n // per message B → A
const CALLBACK_GAS = 200_000
/** The agents sign and relay at the head: the anvils mine a block per transaction and never reorg. */
const CONFIRMATIONS = 0
const REFS = { output: keccak256(toHex('output ref')), proof: keccak256(toHex('proof ref')) }
const ZERO = '0x0000000000000000000000000000000000000000'
const ZERO32: Hex = `0x${'00'.repeat(32)}`
/** SertnMessages' handling gas on the hub (HyperlanePort ignores it: Hyperlane's relayer estimates its own). */
const RECEIPT_GAS = 150_000n
const requestGas = (inputLength: number) => 250_000n + 2_500n * BigInt(inputLength)
/** InferenceMarket.MarketStatus */
const M = { None: 0, Open: 1, ResultSent: 2, FailureSent: 3, Settled: 4 } as const
/** RequestStatus */
const S = { None: 0, Pending: 1, Fulfilled: 2, Failed: 3, Refunded: 4 } as const
/** InferenceErrorCode */
const E = { ModelFailed: 2, ModelUnavailable: 4, Timeout: 5, InvalidResult: 6, NoCapacity: 7 } as const
const errorSelector = (signature: string): Hex => slice(keccak256(toHex(signature)), 0, 4)

const key = (label: string) => keccak256(toHex(`sertn crosschain test ${label}`))
const validatorKey = privateKeyToAccount(key('validator')) as LocalAccount
const outsider = privateKeyToAccount(key('outsider')) as LocalAccount

let tmp: string | undefined
let agentsDir: string
let anvilA: AnvilInstance | undefined
let anvilB: AnvilInstance | undefined
let anvilC: AnvilInstance | undefined
// Chain A (hub)
let hubOwner: SertnClient // deploys everything on A (and owns A's port)
let hubAgent: SertnClient // pays for `process` on A (agents)
let hubManual: SertnClient // pays for `process` on A (hand-driven relayers)
let hubStranger: SertnClient
let node: SertnClient // the market's node (an account with no role on B)
// Chain B (spoke)
let spokeOwner: SertnClient // deploys everything on B (and owns B's port)
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
let hubPortNonce: number // the nonce A's port was deployed with, by hubOwner
let spoke: SpokeDeployment
let hubDemo: RegisteredModel
let spokeDemo: RegisteredModel
let spokeDrift: RegisteredModel // the demo circuit under a third name, recorded as deployed on the spoke (its circuit is updated there later)
let undeployedModel: Hex // registered on both registries, no chain deployment recorded on the hub
let unservedModel: Hex // registered and deployed on both chains, but no node in its pool on the hub
let consumer: Address
let input: bigint[]
let otherInput: bigint[]
let proof: InferenceProof
let tamperedProof: Hex
let agents: LocalAgents | undefined
const agentErrors: { who: string; message: string }[] = []
const gas: Record<string, number> = {}

const errorsOf = (c: { abi: Abi | readonly unknown[] }) => (c.abi as Abi).filter((x) => x.type === 'error')
/** Mailbox errors plus the port's and an application's, so that a reverted `process` decodes to its custom error. */
const processAbi = (app: { abi: Abi | readonly unknown[] }) => [...Mailbox.abi, ...errorsOf(HyperlanePort), ...errorsOf(app)] as Abi
const hubProcessAbi = processAbi(InferenceMarket)
const spokeProcessAbi = processAbi(SpokeGateway)
/** The consumer's ABI plus the gateway's errors, which its calls bubble up. */
const consumerAbi = [...RecordingConsumer.abi, ...errorsOf(SpokeGateway)] as Abi
/** A spoke gateway's or a dispatcher's ABI plus the port's errors, which their sends bubble up. */
const gatewayAbi = [...SpokeGateway.abi, ...errorsOf(HyperlanePort)] as Abi
const dispatcherAbi = [...TestHubDispatcher.abi, ...errorsOf(HyperlanePort)] as Abi

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

/** The port-to-port envelope: `sender app ‖ recipient app ‖ body`. */
const envelope = (sender: Address, recipient: Address, body: Hex): Hex =>
  concat([addressAsBytes32(sender), addressAsBytes32(recipient), body])

/** A message's Hyperlane header and body: from `origin`'s `sender`, to `destination`'s `recipient`. */
function expectHyperlaneMessage(sent: Sent, want: { origin: number; sender: Address; destination: number; recipient: Address; body: Hex }) {
  const m = parseMessage(sent.message)
  expect({ origin: m.origin, sender: m.sender, destination: m.destination, recipient: m.recipient, body: m.body }).toEqual({
    ...want,
    sender: addressAsBytes32(want.sender),
    recipient: addressAsBytes32(want.recipient),
  })
}

const checkpointStore = (domain: number) => new FileCheckpointStore(join(agentsDir, `checkpoints-${domain}`), validatorKey.address)
const cursorStore = (from: number, to: number) => new FileRelayerCursorStore(agentsDir, `relayer-${from}-${to}.json`)

/** The chain of a Hyperlane domain (the relay helpers below take Hyperlane domains). */
const chainOf = (domain: number) => (domain === HL_HUB ? { client: hubManual, core: coreA } : { client: spokeManual, core: coreB })

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
    confirmations: CONFIRMATIONS,
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
    confirmations: CONFIRMATIONS,
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
        domain: HL_HUB,
        client: hubAgent,
        mailbox: coreA.mailbox,
        merkleTreeHook: coreA.merkleTreeHook,
        fromBlock: coreA.deployBlock,
      },
      {
        name: 'spoke',
        domain: HL_SPOKE,
        client: spokeAgent,
        mailbox: coreB.mailbox,
        merkleTreeHook: coreB.merkleTreeHook,
        fromBlock: coreB.deployBlock,
      },
    ],
    validator: validatorKey,
    dir: agentsDir,
    confirmations: CONFIRMATIONS,
    pollingIntervalMs: 50,
    onError: (who, e) => agentErrors.push({ who, message: errorText(e) }),
  })
}

async function stopAgents() {
  const a = agents
  agents = undefined
  await a?.stop()
}

/** The metadata a relayer builds once the validator signed the message's checkpoint (`domain`: the Hyperlane origin). */
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
      args: [metadata ?? (await metadataFor(HL_HUB, sent)), sent.message],
    }),
  )

/** Relays a message from the hub to the spoke by hand (`process` on the spoke); returns the transaction receipt. */
async function processOnSpoke(sent: Sent): Promise<TransactionReceipt> {
  const { request } = await spokeManual.simulateContract({
    address: coreB.mailbox,
    abi: spokeProcessAbi,
    functionName: 'process',
    args: [await metadataFor(HL_HUB, sent), sent.message],
  })
  return confirm(spokeManual, await spokeManual.writeContract(request))
}

/** Simulates the relayer's `process` on the hub; returns the decoded revert. */
const hubProcessRevert = async (sent: Sent) =>
  expectRevert(
    hubManual.simulateContract({
      address: coreA.mailbox,
      abi: hubProcessAbi,
      functionName: 'process',
      args: [await metadataFor(HL_SPOKE, sent), sent.message],
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
const consumerErrorCode = async (id: bigint) =>
  Number(await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'errorCodePlusOne', args: [id] })) -
  1

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

/**
 * The first of a query's logs, once there is one: a transaction's state can be readable a moment
 * before its logs are indexed, so a query right after a state change waits for them.
 */
const firstEvent = <T>(what: string, query: () => Promise<readonly T[]>): Promise<T> =>
  waitUntil(`${what} log`, async () => (await query())[0])

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

/** The node fails an open request on the hub, paying the quote. */
async function failOnHub(mid: bigint, code: number, reason: string) {
  const fee = await node.readContract({
    address: market,
    abi: InferenceMarket.abi,
    functionName: 'quoteFailure',
    args: [mid, code, reason],
  })
  expect(fee).toBe(HUB_PROTOCOL_FEE)
  return confirm(
    node,
    await node.writeContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName: 'failRequest',
      args: [mid, code, reason],
      value: fee,
    }),
  )
}

type ResultFields = { output: readonly bigint[]; proof: Hex }

/** A Sertn RESULT body, as the market encodes it (for stand-in senders). */
const resultBody = (id: bigint, p: ResultFields = proof) =>
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

/** A Sertn REQUEST body, as a spoke gateway encodes it. */
const requestBody = (r: {
  requestId: bigint
  modelId: Hex
  modelVersion: number
  input: readonly bigint[]
  inputRef: Hex
  requester: Address
  callbackGasLimit: number
  escrow: bigint
  deadline: number
  failIfNoCapacity?: boolean
  destinations?: readonly { domain: number; receiver: Address; callbackGasLimit: number }[]
}) =>
  encodePacked(
    ['uint8', 'bytes'],
    [
      8,
      encodeAbiParameters(
        parseAbiParameters([
          'SpokeRequest r',
          'struct SpokeRequest { uint256 requestId; bytes32 modelId; uint32 modelVersion; int256[] input; bytes32 inputRef; address requester; uint32 callbackGasLimit; uint96 escrow; uint40 deadline; bool failIfNoCapacity; Destination[] destinations; }',
          'struct Destination { uint32 domain; address receiver; uint32 callbackGasLimit; }',
        ]),
        [{ ...r, input: [...r.input], failIfNoCapacity: r.failIfNoCapacity ?? false, destinations: [...(r.destinations ?? [])] }],
      ),
    ],
  )

/** A Sertn RECEIPT body, as a spoke gateway encodes it. */
const receiptBody = (id: bigint, status: number, by: Address) =>
  encodePacked(['uint8', 'bytes'], [4, encodeAbiParameters(parseAbiParameters('uint256, uint8, address'), [id, status, by])])

/** The RESULT fields a TestHubDispatcher takes. */
const resultStruct = (id: bigint, p: ResultFields = proof) => ({
  requestId: id,
  input,
  output: [...p.output],
  proof: p.proof,
  refs: REFS,
  node: node.account.address,
})

/**
 * `dispatcher` (a TestHubDispatcher on A or C: not a Sertn port) dispatches a RESULT for spoke
 * request `id` straight through its chain's mailbox to the spoke's port, in an envelope that claims
 * to come from the market.
 */
async function dispatchForgedResult(
  client: SertnClient,
  dispatcher: Address,
  id: bigint,
  opts: { p?: ResultFields; fee?: bigint } = {},
): Promise<Sent> {
  const receipt = await confirm(
    client,
    await client.writeContract({
      address: dispatcher,
      abi: TestHubDispatcher.abi,
      functionName: 'dispatchResult',
      args: [HL_SPOKE, addressAsBytes32(coreB.port), addressAsBytes32(market), addressAsBytes32(spoke.gateway), resultStruct(id, opts.p)],
      value: opts.fee ?? HUB_PROTOCOL_FEE,
    }),
  )
  const sent = dispatched(receipt)
  // The TypeScript codec agrees with the contract's.
  expect(parseMessage(sent.message)).toMatchObject({
    sender: addressAsBytes32(dispatcher),
    destination: HL_SPOKE,
    recipient: addressAsBytes32(coreB.port),
    body: envelope(market, spoke.gateway, resultBody(id, opts.p)),
  })
  return sent
}

/** `dispatcher` (a TestHubDispatcher on A) sends a RESULT for spoke request `id` through A's port, as an application. */
async function sendResultViaPort(client: SertnClient, dispatcher: Address, id: bigint, p: ResultFields = proof): Promise<Sent> {
  const receipt = await confirm(
    client,
    await client.writeContract({
      address: dispatcher,
      abi: TestHubDispatcher.abi,
      functionName: 'sendResult',
      args: [SPOKE, addressAsBytes32(spoke.gateway), resultStruct(id, p)],
      value: HUB_PROTOCOL_FEE,
    }),
  )
  const sent = dispatched(receipt)
  // Port to port; the port stamped the dispatcher as the sender.
  expectHyperlaneMessage(sent, {
    origin: HL_HUB,
    sender: coreA.port,
    destination: HL_SPOKE,
    recipient: coreB.port,
    body: envelope(dispatcher, spoke.gateway, resultBody(id, p)),
  })
  return sent
}

/** The spoke's owner points the route to the hub at `peer` (the hub market stays the gateway's recipient for requests and receipts). */
async function setSpokeRoutePeer(peer: Address) {
  await confirm(
    spokeOwner,
    await spokeOwner.writeContract({
      address: spoke.gateway,
      abi: SpokeGateway.abi,
      functionName: 'setRoute',
      args: [HUB, coreB.port, addressAsBytes32(peer)],
    }),
  )
}

/** The spoke's owner points the gateway back at the hub market (as `connectSpoke` did). */
async function restoreSpokeHub() {
  await confirm(
    spokeOwner,
    await spokeOwner.writeContract({
      address: spoke.gateway,
      abi: SpokeGateway.abi,
      functionName: 'setHub',
      args: [HUB, coreB.port, addressAsBytes32(market)],
    }),
  )
  expect(await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'routeOf', args: [HUB] })).toEqual({
    port: coreB.port,
    peer: addressAsBytes32(market),
  })
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
  const started = await Promise.allSettled([startAnvil({ chainId: HUB }), startAnvil({ chainId: SPOKE }), startAnvil({ chainId: OTHER })])
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
  if (hubOwner.chain.id !== HUB || spokeOwner.chain.id !== SPOKE || otherDeployer.chain.id !== OTHER)
    throw new Error('unexpected chain ids')

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

  const drift = 'sertn-mlp-demo/drift'
  let hubDrift: RegisteredModel | undefined
  const deployHub = async () => {
    coreA = await deployHyperlaneCore(hubOwner, {
      domain: HL_HUB,
      validators: [validatorKey.address],
      threshold: 1,
      protocolFee: HUB_PROTOCOL_FEE,
    })
    // The port is the core's last deployment: its nonce, to put a contract at its address on chain C.
    hubPortNonce = (await hubOwner.getTransactionCount({ address: hubOwner.account.address, blockTag: 'pending' })) - 1
    hubCore = await deployCore(hubOwner, DEV_ONLY)
    hubDemo = await registerModel(hubOwner, { registry: hubCore.registry, model: 'sertn-mlp-demo', ...DEV_ONLY })
    hubDrift = await registerModel(hubOwner, {
      registry: hubCore.registry,
      model: 'sertn-mlp-demo',
      name: drift,
      vka: hubDemo.vka,
      ...DEV_ONLY,
    })
    marketNonce = await hubOwner.getTransactionCount({ address: hubOwner.account.address, blockTag: 'pending' })
    market = await deployMarket(hubOwner, { registry: hubCore.registry, nodeRegistry: hubCore.nodeRegistry })
    await allowHyperlaneApp(hubOwner, coreA.port, market)
  }
  const deploySpokeChain = async () => {
    coreB = await deployHyperlaneCore(spokeOwner, {
      domain: HL_SPOKE,
      validators: [validatorKey.address],
      threshold: 1,
      protocolFee: SPOKE_PROTOCOL_FEE,
    })
    spoke = await deploySpoke(spokeOwner, { ...DEV_ONLY })
    await allowHyperlaneApp(spokeOwner, coreB.port, spoke.gateway)
    spokeDemo = await registerModel(spokeOwner, { registry: spoke.registry, model: 'sertn-mlp-demo', ...DEV_ONLY })
    spokeDrift = await registerModel(spokeOwner, {
      registry: spoke.registry,
      model: 'sertn-mlp-demo',
      name: drift,
      vka: spokeDemo.vka,
      ...DEV_ONLY,
    })
    consumer = await deployContract(user, RecordingConsumer, [spoke.gateway])
  }
  await Promise.all([deployHub(), deploySpokeChain()])
  // The same circuit under a third name, deployed on the spoke, whose pool on the hub has no node.
  const unserved = 'sertn-mlp-demo/unserved'
  const [unservedHub, unservedSpoke] = await Promise.all([
    registerModel(hubOwner, { registry: hubCore.registry, model: 'sertn-mlp-demo', name: unserved, vka: hubDemo!.vka, ...DEV_ONLY }),
    registerModel(spokeOwner, { registry: spoke.registry, model: 'sertn-mlp-demo', name: unserved, vka: spokeDemo.vka, ...DEV_ONLY }),
  ])
  if (unservedHub.modelId !== unservedSpoke.modelId) throw new Error('the hub and the spoke owners differ: model ids differ')
  unservedModel = unservedHub.modelId
  if (hubDrift?.modelId !== spokeDrift.modelId) throw new Error('the hub and the spoke owners differ: model ids differ')
  // As the Hyperlane network deployment does: join the ports, then the applications' routes.
  await connectHyperlanePorts({ client: hubOwner, deployment: coreA }, { client: spokeOwner, deployment: coreB })
  await connectSpoke({
    hub: { client: hubOwner, domain: HUB, market, registry: hubCore.registry, port: coreA.port },
    spoke: {
      client: spokeOwner,
      domain: SPOKE,
      gateway: spoke.gateway,
      verifier: spoke.verifier,
      registry: spoke.registry,
      port: coreB.port,
    },
    models: [spokeDemo, spokeDrift, unservedSpoke],
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
  // The node serves every hub model's pool (the only node there: every request is assigned to it).
  await openLocalPools(hubOwner, hubCore.nodeRegistry, {
    models: [hubDemo.modelId, hubDrift!.modelId, undeployedHub.modelId],
    nodes: [node],
  })

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
    // Wiring: the ports are peers and admit the applications; connectSpoke set the routes and the registry records.
    expect(await hubManual.readContract({ address: coreA.port, abi: HyperlanePort.abi, functionName: 'peerOf', args: [SPOKE] })).toEqual([
      HL_SPOKE,
      addressAsBytes32(coreB.port),
    ])
    expect(await spokeManual.readContract({ address: coreB.port, abi: HyperlanePort.abi, functionName: 'peerOf', args: [HUB] })).toEqual([
      HL_HUB,
      addressAsBytes32(coreA.port),
    ])
    expect(await hubManual.readContract({ address: coreA.port, abi: HyperlanePort.abi, functionName: 'localDomain' })).toBe(HUB)
    expect(await spokeManual.readContract({ address: coreB.port, abi: HyperlanePort.abi, functionName: 'localDomain' })).toBe(SPOKE)
    expect(await hubManual.readContract({ address: coreA.port, abi: HyperlanePort.abi, functionName: 'isApp', args: [market] })).toBe(true)
    expect(
      await spokeManual.readContract({ address: coreB.port, abi: HyperlanePort.abi, functionName: 'isApp', args: [spoke.gateway] }),
    ).toBe(true)
    expect(await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'hubDomain' })).toBe(HUB)
    expect(await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'hubMarket' })).toBe(
      addressAsBytes32(market),
    )
    expect(await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'routeOf', args: [HUB] })).toEqual(
      {
        port: coreB.port,
        peer: addressAsBytes32(market),
      },
    )
    expect(await hubManual.readContract({ address: market, abi: InferenceMarket.abi, functionName: 'routeOf', args: [SPOKE] })).toEqual({
      port: coreA.port,
      peer: addressAsBytes32(spoke.gateway),
    })
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
    ).toEqual({ verifier: spoke.verifier, vka: spokeDemo.vka, version: 1, remoteVersion: 1 })

    const nodeBefore = await spokeManual.getBalance({ address: node.account.address })
    const feesBefore = await spokeManual.getBalance({ address: coreB.protocolFee })
    const req = await requestOnSpoke()
    gas.spokeRequestInference = Number(req.receipt.gasUsed)
    // The quote covers both messages to the hub; only the rest is escrowed.
    expect(req.value - req.escrow).toBe(2n * SPOKE_PROTOCOL_FEE)
    expect(await spokeManual.getBalance({ address: coreB.protocolFee })).toBe(feesBefore + SPOKE_PROTOCOL_FEE)
    const stored = await spokeRequest(req.id)
    expect(stored).toMatchObject({ requester: consumer, status: S.Pending, escrow: req.escrow, modelId: spokeDemo.modelId })
    // The REQUEST goes port to port, in an envelope from the gateway to the market.
    const spokeRequestFields = {
      requestId: req.id,
      modelId: spokeDemo.modelId,
      modelVersion: 1,
      input,
      inputRef: ZERO32,
      requester: consumer,
      callbackGasLimit: CALLBACK_GAS,
      escrow: req.escrow,
      deadline: stored.deadline,
      failIfNoCapacity: false,
      destinations: [],
    }
    expectHyperlaneMessage(req.sent, {
      origin: HL_SPOKE,
      sender: coreB.port,
      destination: HL_HUB,
      recipient: coreA.port,
      body: envelope(spoke.gateway, market, requestBody(spokeRequestFields)),
    })

    // REQUEST relayed B → A and recorded.
    const mid = await recorded(req.id)
    const rec = await firstEvent('RequestRecorded', () =>
      hubManual.getContractEvents({
        address: market,
        abi: InferenceMarket.abi,
        eventName: 'RequestRecorded',
        args: { marketRequestId: mid },
        fromBlock: 0n,
        strict: true,
      }),
    )
    if (!rec) throw new Error('no RequestRecorded')
    expect(rec.args).toEqual({
      marketRequestId: mid,
      origin: SPOKE,
      spokeRequestId: req.id,
      gateway: addressAsBytes32(spoke.gateway),
      request: spokeRequestFields,
    })
    gas.hubProcessRequest = Number((await hubManual.getTransactionReceipt({ hash: rec.transactionHash })).gasUsed)
    expect(await hubRequest(mid)).toMatchObject({
      origin: SPOKE,
      status: M.Open,
      settlement: S.Pending,
      modelVersion: 1,
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
    expectHyperlaneMessage(res.sent, {
      origin: HL_HUB,
      sender: coreA.port,
      destination: HL_SPOKE,
      recipient: coreB.port,
      body: envelope(market, spoke.gateway, resultBody(req.id)),
    })

    // RESULT relayed A → B: verified on the spoke, node paid, consumer called back, RECEIPT sent.
    await waitUntil('spoke fulfilment', async () => (await spokeRequest(req.id)).status === S.Fulfilled)
    const fulfilled = await firstEvent('InferenceFulfilled', () =>
      spokeManual.getContractEvents({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        eventName: 'InferenceFulfilled',
        args: { requestId: req.id },
        fromBlock: 0n,
        strict: true,
      }),
    )
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
    const settled = await firstEvent('RequestSettled', () =>
      hubManual.getContractEvents({
        address: market,
        abi: InferenceMarket.abi,
        eventName: 'RequestSettled',
        args: { marketRequestId: mid },
        fromBlock: 0n,
        strict: true,
      }),
    )
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
    const failed = await firstEvent('InferenceFailed', () =>
      spokeManual.getContractEvents({
        address: spoke.gateway,
        abi: SpokeGateway.abi,
        eventName: 'InferenceFailed',
        args: { requestId: req.id },
        fromBlock: 0n,
        strict: true,
      }),
    )
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

  test('no capacity: a spoke request that chose to fail then gets no job on the hub, is failed NoCapacity, refunded and called back; one that chose to wait is queued', async () => {
    const jobOf = (mid: bigint) =>
      hubManual.readContract({ address: hubCore.nodeRegistry, abi: NodeRegistry.abi, functionName: 'jobOf', args: [market, mid] })
    const requestWith = async (failIfNoCapacity: boolean) => {
      const value = await spokeQuote(unservedModel)
      const params = {
        modelId: unservedModel,
        input: [...input],
        inputRef: zeroHash,
        callbackGasLimit: CALLBACK_GAS,
        modelVersion: 0,
        artifactsHash: zeroHash,
        failIfNoCapacity,
      }
      const receipt = await confirm(
        user,
        await user.writeContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'requestWith', args: [params], value }),
      )
      const [requested] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'InferenceRequested', logs: receipt.logs })
      if (!requested) throw new Error('no InferenceRequested')
      return { id: requested.args.requestId, escrow: requested.args.escrow }
    }
    // Waiting is the default: the job is queued until a node of the pool has capacity.
    const waits = await requestWith(false)
    expect(await jobOf(await recorded(waits.id))).toMatchObject({ state: 1, node: ZERO }) // Queued
    // Failing at once: the market records it but opens no job, and a node fails it for the requester.
    const fails = await requestWith(true)
    const mid = await recorded(fails.id)
    expect((await jobOf(mid)).state).toBe(0) // None
    expect(await submitRevert(mid)).toMatchObject({ errorName: 'NodeRegistryNotAssigned' })
    const consumerBefore = await spokeManual.getBalance({ address: consumer })
    await failOnHub(mid, E.NoCapacity, 'no node of the pool had the capacity')
    await waitUntil('spoke failure', async () => (await spokeRequest(fails.id)).status === S.Failed)
    expect(await consumerErrorCode(fails.id)).toBe(E.NoCapacity)
    expect(await spokeManual.getBalance({ address: consumer })).toBe(consumerBefore + fails.escrow)
    await waitUntil('hub settlement', async () => (await hubRequest(mid)).status === M.Settled)
    expect(await hubRequest(mid)).toMatchObject({ settlement: S.Failed })
    // The queued one is assigned once a node joins the pool (from the next epoch), and served.
    const queued = await recorded(waits.id)
    await joinPool(node, hubCore.nodeRegistry, { models: [unservedModel] })
    await mineToNextEpoch(hubOwner, hubCore.nodeRegistry)
    await confirm(
      hubStranger,
      await hubStranger.writeContract({
        address: hubCore.nodeRegistry,
        abi: NodeRegistry.abi,
        functionName: 'assignQueued',
        args: [market, queued],
      }),
    )
    expect(await jobOf(queued)).toMatchObject({ state: 2, node: node.account.address }) // Assigned
    await submitResult(queued)
    await waitUntil('spoke fulfilment', async () => (await spokeRequest(waits.id)).status === S.Fulfilled)
    await waitUntil('hub settlement', async () => (await hubRequest(queued)).status === M.Settled)
  })
})

describe('hub rejections', () => {
  let id: bigint
  let mid: bigint

  beforeAll(async () => {
    ;({ id } = await requestOnSpoke())
    mid = await recorded(id)
  })

  test('error: submitResult or failRequest by an account the request is not assigned to (the node registry refuses it)', async () => {
    const job = await hubManual.readContract({
      address: hubCore.nodeRegistry,
      abi: NodeRegistry.abi,
      functionName: 'jobOf',
      args: [market, mid],
    })
    expect(job).toMatchObject({ node: node.account.address, state: 2 /* Assigned */ })
    // A valid result, copied from the assigned node: verified, and then refused to anyone else.
    const notAssigned = { errorName: 'NodeRegistryNotAssigned', args: [market, mid, hubStranger.account.address, node.account.address] }
    expect(await submitRevert(mid, { from: hubStranger })).toEqual(notAssigned)
    const fee = await hubStranger.readContract({
      address: market,
      abi: InferenceMarket.abi,
      functionName: 'quoteFailure',
      args: [mid, E.ModelFailed, 'not mine'],
    })
    expect(
      await expectRevert(
        hubStranger.simulateContract({
          address: market,
          abi: InferenceMarket.abi,
          functionName: 'failRequest',
          args: [mid, E.ModelFailed, 'not mine'],
          value: fee,
        }),
      ),
    ).toEqual(notAssigned)
  })

  test('error: submitResult with a tampered proof, or a proof of another output', async () => {
    expect(await submitRevert(mid, { proof: tamperedProof })).toEqual({ errorName: 'ResultInvalidProof', args: [mid] })
    expect(await submitRevert(mid, { output: proof.output.map((v, i) => (i === 0 ? v + 1n : v)) })).toEqual({
      errorName: 'ResultInvalidProof',
      args: [mid],
    })
  })

  test('error: submitResult for another input than the recorded one', async () => {
    expect(await submitRevert(mid, { input: otherInput })).toEqual({ errorName: 'ResultInputMismatch', args: [mid] })
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
    // An unknown request has no origin, hence no route to quote a fee on: pay the usual fee.
    expect(await submitRevert(999n, { value: HUB_PROTOCOL_FEE })).toEqual({ errorName: 'MarketRequestNotOpen', args: [999n, M.None] })
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

  test("error: when the hub and a spoke disagree on a model's circuit, submitResult reverts MarketModelVersionMismatch; the node fails the request, the spoke refunds, the hub settles Failed", async () => {
    const modelId = spokeDrift.modelId
    const deployment = () =>
      hubManual.readContract({
        address: hubCore.registry,
        abi: ModelRegistry.abi,
        functionName: 'getChainDeployment',
        args: [modelId, SPOKE],
      })
    const spokeVersion = async () =>
      (await spokeManual.readContract({ address: spoke.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [modelId] }))
        .version
    expect(await deployment()).toEqual({ verifier: spoke.verifier, vka: spokeDrift.vka, version: 1, remoteVersion: 1 })
    // The model's owner updates its circuit on the spoke's registry only (to the same circuit: what
    // matters is the version, 2 there), and records nothing on the hub.
    const code = await spokeManual.getCode({ address: spokeDrift.vka })
    await confirm(
      spokeOwner,
      await spokeOwner.writeContract({
        address: spoke.registry,
        abi: ModelRegistry.abi,
        functionName: 'updateCircuit',
        args: [modelId, circuitParamsOf(spokeDrift.manifest, spokeDrift.artifacts, spokeDrift.vka, keccak256(code!))],
      }),
    )
    expect(await spokeVersion()).toBe(2)
    expect(await deployment()).toEqual({ verifier: spoke.verifier, vka: spokeDrift.vka, version: 1, remoteVersion: 1 })

    // A request made on the spoke now carries version 2; the hub recorded version 1 there, and refuses to answer it.
    const req = await requestOnSpoke({ modelId })
    const m = await recorded(req.id)
    expect(await hubRequest(m)).toMatchObject({ status: M.Open, modelId, modelVersion: 2 })
    expect(await submitRevert(m)).toEqual({ errorName: 'MarketModelVersionMismatch', args: [modelId, SPOKE, 2, 1] })
    expect((await hubRequest(m)).status).toBe(M.Open)

    // The node fails it instead; the spoke refunds it and calls back with the error; the hub settles Failed.
    const consumerBefore = await spokeManual.getBalance({ address: consumer })
    await failOnHub(m, E.ModelUnavailable, 'circuit versions differ')
    await waitUntil('spoke failure', async () => (await spokeRequest(req.id)).status === S.Failed)
    expect(await spokeManual.getBalance({ address: consumer })).toBe(consumerBefore + req.escrow)
    expect(await consumerErrorCode(req.id)).toBe(E.ModelUnavailable)
    await waitUntil('hub settlement', async () => (await hubRequest(m)).status === M.Settled)
    expect(await hubRequest(m)).toMatchObject({ settlement: S.Failed, node: node.account.address })

    // Once the hub records the spoke's new version, the model is served there again.
    await recordChainDeployments({
      hub: { client: hubOwner, registry: hubCore.registry },
      spoke: { client: spokeOwner, domain: SPOKE, registry: spoke.registry },
      models: [spokeDrift],
    })
    expect(await deployment()).toEqual({ verifier: spoke.verifier, vka: spokeDrift.vka, version: 1, remoteVersion: 2 })
    const again = await requestOnSpoke({ modelId })
    const m2 = await recorded(again.id)
    await submitResult(m2)
    await waitUntil('spoke fulfilment', async () => (await spokeRequest(again.id)).status === S.Fulfilled)
    await waitUntil('hub settlement', async () => (await hubRequest(m2)).status === M.Settled)
    expect(await hubRequest(m2)).toMatchObject({ settlement: S.Fulfilled, node: node.account.address })
  })

  test('error: REQUEST and RECEIPT messages from spoke-chain senders other than the enrolled gateway behind the peer port are rejected', async () => {
    // A second SpokeGateway pointed at the market through the spoke's port, which does not allow it to send.
    const rogue = await deployContract(spokeStranger, SpokeGateway, [spokeStranger.account.address, spoke.registry, DEFAULT_GATEWAY_CONFIG])
    await confirm(
      spokeStranger,
      await spokeStranger.writeContract({
        address: rogue,
        abi: SpokeGateway.abi,
        functionName: 'setHub',
        args: [HUB, coreB.port, addressAsBytes32(market)],
      }),
    )
    const value = await spokeStranger.readContract({
      address: rogue,
      abi: SpokeGateway.abi,
      functionName: 'quote',
      args: [spokeDemo.modelId, 0],
    })
    const rogueRequest = () =>
      spokeStranger.simulateContract({
        address: rogue,
        abi: gatewayAbi,
        functionName: 'requestInference',
        args: [spokeDemo.modelId, input, 0],
        value,
      })
    expect(await expectRevert(rogueRequest())).toEqual({ errorName: 'PortUnauthorizedApp', args: [rogue] })
    // Were the port's owner to allow it, the market still takes requests only from its enrolled gateway.
    await allowHyperlaneApp(spokeOwner, coreB.port, rogue)
    const rogueSent = dispatched(await confirm(spokeStranger, await spokeStranger.writeContract((await rogueRequest()).request)))
    expect(await hubProcessRevert(rogueSent)).toEqual({ errorName: 'MessengerUnknownRoute', args: [SPOKE, addressAsBytes32(rogue)] })

    // A forged receipt for a real, open request, from a contract on the spoke chain.
    const open = await requestOnSpoke()
    const openMid = await recorded(open.id)
    const dispatcher = await deployContract(spokeStranger, TestHubDispatcher, [coreB.mailbox, coreB.port])
    const body = receiptBody(open.id, S.Refunded, ZERO)
    // Straight through the spoke's mailbox to the hub's port, claiming to come from the gateway: not the peer port.
    const forgedReceipt = dispatched(
      await confirm(
        spokeStranger,
        await spokeStranger.writeContract({
          address: dispatcher,
          abi: TestHubDispatcher.abi,
          functionName: 'dispatchRaw',
          args: [HL_HUB, addressAsBytes32(coreA.port), envelope(spoke.gateway, market, body)],
          value: SPOKE_PROTOCOL_FEE,
        }),
      ),
    )
    expect(await hubProcessRevert(forgedReceipt)).toEqual({
      errorName: 'PortUnknownPeer',
      args: [HL_SPOKE, addressAsBytes32(dispatcher)],
    })
    // Through the spoke's port: refused until allowed, then the port names the dispatcher as the sender.
    const sendRaw = () =>
      spokeStranger.simulateContract({
        address: dispatcher,
        abi: dispatcherAbi,
        functionName: 'sendRaw',
        args: [HUB, addressAsBytes32(market), body],
        value: SPOKE_PROTOCOL_FEE,
      })
    expect(await expectRevert(sendRaw())).toEqual({ errorName: 'PortUnauthorizedApp', args: [dispatcher] })
    await allowHyperlaneApp(spokeOwner, coreB.port, dispatcher)
    const portReceipt = dispatched(await confirm(spokeStranger, await spokeStranger.writeContract((await sendRaw()).request)))
    expectHyperlaneMessage(portReceipt, {
      origin: HL_SPOKE,
      sender: coreB.port,
      destination: HL_HUB,
      recipient: coreA.port,
      body: envelope(dispatcher, market, body),
    })
    expect(await hubProcessRevert(portReceipt)).toEqual({
      errorName: 'MessengerUnknownRoute',
      args: [SPOKE, addressAsBytes32(dispatcher)],
    })
    for (const app of [rogue, dispatcher]) {
      await confirm(
        spokeOwner,
        await spokeOwner.writeContract({ address: coreB.port, abi: HyperlanePort.abi, functionName: 'setApp', args: [app, false] }),
      )
    }

    // The running relayer tried all three and left them undelivered; nothing was recorded or settled.
    for (const sent of [rogueSent, forgedReceipt, portReceipt]) {
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
  // Two more requests pending on the spoke and recorded on the hub, to be answered by invalid results.
  let badProofReq: { id: bigint; escrow: bigint; mid: bigint }
  let badOutputReq: { id: bigint; escrow: bigint; mid: bigint }
  let rogueA: Address // a TestHubDispatcher on A, never the spoke's route peer
  let secondHub: Address // a TestHubDispatcher on A, allowed on A's port; the spoke's owner points its hub route at it for some tests

  beforeAll(async () => {
    await stopAgents()
    const reqs = [await requestOnSpoke(), await requestOnSpoke(), await requestOnSpoke()] as const
    const relayed = await relayOnce(HL_SPOKE, HL_HUB)
    expect(relayed.delivered.map((d) => d.messageId)).toEqual(reqs.map((r) => r.sent.id))
    const [main, p, o] = await Promise.all(reqs.map(async (r) => ({ id: r.id, escrow: r.escrow, mid: await marketIdOf(r.id) })))
    for (const r of [main!, p!, o!]) expect(r.mid).toBeGreaterThan(0n)
    ;({ id, mid } = main!)
    badProofReq = p!
    badOutputReq = o!
    ;({ sent: result } = await submitResult(mid))
    await makeValidator(HL_HUB).poll()
    rogueA = await deployContract(hubStranger, TestHubDispatcher, [coreA.mailbox, coreA.port])
    secondHub = await deployContract(hubStranger, TestHubDispatcher, [coreA.mailbox, coreA.port])
    await allowHyperlaneApp(hubOwner, coreA.port, secondHub)
  })

  const stillPending = async (...sent: Sent[]) => {
    for (const s of sent) expect(await deliveredOnSpoke(s.id)).toBe(false)
    expect((await spokeRequest(id)).status).toBe(S.Pending)
  }

  test('error: metadata signed by a key outside the ISM validator set reverts with "!threshold"', async () => {
    const signed = (await checkpointStore(HL_HUB).get(result.index))!
    const forged = await signCheckpoint(outsider, {
      origin: HL_HUB,
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

  test('error: a RESULT dispatched straight through the hub mailbox by a contract that is not the hub port (claiming the market as its sender)', async () => {
    const sent = await dispatchForgedResult(hubStranger, rogueA, id)
    // Addressed straight to the gateway, which is no Hyperlane recipient: applications are reached only through their port.
    const direct = dispatched(
      await confirm(
        hubStranger,
        await hubStranger.writeContract({
          address: rogueA,
          abi: TestHubDispatcher.abi,
          functionName: 'dispatchRaw',
          args: [HL_SPOKE, addressAsBytes32(spoke.gateway), resultBody(id)],
          value: HUB_PROTOCOL_FEE,
        }),
      ),
    )
    await makeValidator(HL_HUB).poll()
    expect(await spokeProcessRevert(sent)).toEqual({ errorName: 'PortUnknownPeer', args: [HL_HUB, addressAsBytes32(rogueA)] })
    const err = await spokeManual
      .simulateContract({
        address: coreB.mailbox,
        abi: spokeProcessAbi,
        functionName: 'process',
        args: [await metadataFor(HL_HUB, direct), direct.message],
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(BaseError)
    expect((err as BaseError).walk((e) => e instanceof ContractFunctionRevertedError)).toBeInstanceOf(ContractFunctionRevertedError)
    await stillPending(sent, direct)
  })

  test("error: a RESULT from contracts at the market's and at the hub port's addresses on another chain", async () => {
    // Chain C: its own Hyperlane core (the same validator key signs there), and dispatchers at the
    // market's and the hub port's addresses: deployed by their deployer with their nonces.
    const coreC = await deployHyperlaneCore(otherDeployer, { domain: HL_OTHER, validators: [validatorKey.address], threshold: 1 })
    const imposterDeployer = createSertnClient(anvilC!.chain, anvilAccount(0))
    expect(imposterDeployer.account.address).toBe(hubOwner.account.address)
    const deployAt = async (nonce: number) => {
      await imposterDeployer.request({
        method: 'anvil_setNonce' as never,
        params: [imposterDeployer.account.address, toHex(nonce)] as never,
      })
      return deployContract(imposterDeployer, TestHubDispatcher, [coreC.mailbox, ZERO])
    }
    const asMarket = await deployAt(marketNonce)
    expect(asMarket).toBe(market)
    const asPort = await deployAt(hubPortNonce)
    expect(asPort).toBe(coreA.port)
    const store = new MemoryCheckpointStore(validatorKey.address)
    const v = createLocalValidator({
      client: otherDeployer,
      domain: HL_OTHER,
      merkleTreeHook: coreC.merkleTreeHook,
      account: validatorKey,
      store,
      fromBlock: coreC.deployBlock,
      confirmations: CONFIRMATIONS,
    })
    try {
      for (const imposter of [asMarket, asPort]) {
        const sent = await dispatchForgedResult(imposterDeployer, imposter, id, { fee: 0n }) // C charges no protocol fee
        await v.poll()
        const signed = (await store.get(sent.index))!
        // The ISM accepts it (the validator signed it), so the spoke port's peer check is what rejects it.
        expect(await spokeProcessRevert(sent, encodeMessageIdMultisigMetadata(signed, [signed.signature]))).toEqual({
          errorName: 'PortUnknownPeer',
          args: [HL_OTHER, addressAsBytes32(imposter)],
        })
        await stillPending(sent)
      }
    } finally {
      await v[Symbol.asyncDispose]()
    }
  })

  test("error: an application the hub port does not allow cannot send; one it allows, through the genuine peer port, is not the gateway's route peer", async () => {
    const send = () =>
      hubStranger.simulateContract({
        address: rogueA,
        abi: dispatcherAbi,
        functionName: 'sendResult',
        args: [SPOKE, addressAsBytes32(spoke.gateway), resultStruct(id)],
        value: HUB_PROTOCOL_FEE,
      })
    expect(await expectRevert(send())).toEqual({ errorName: 'PortUnauthorizedApp', args: [rogueA] })
    await allowHyperlaneApp(hubOwner, coreA.port, rogueA)
    const sent = await sendResultViaPort(hubStranger, rogueA, id)
    await confirm(
      hubOwner,
      await hubOwner.writeContract({ address: coreA.port, abi: HyperlanePort.abi, functionName: 'setApp', args: [rogueA, false] }),
    )
    await makeValidator(HL_HUB).poll()
    // The spoke's port accepts it (from its peer port) and hands it over; the gateway refuses the sender.
    expect(await spokeProcessRevert(sent)).toEqual({ errorName: 'MessengerUnknownRoute', args: [HUB, addressAsBytes32(rogueA)] })
    await stillPending(sent)
  })

  test("error: from the route's peer (the spoke's hub route pointed at a test dispatcher), a result for an unknown request reverts; a tampered proof or a forged output fails its request (refund, InvalidResult callback, Failed receipt to the hub)", async () => {
    await setSpokeRoutePeer(secondHub)
    const receipts: Hex[] = []
    try {
      expect(
        await spokeManual.readContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName: 'routeOf', args: [HUB] }),
      ).toEqual({
        port: coreB.port,
        peer: addressAsBytes32(secondHub),
      })
      const unknown = await sendResultViaPort(hubStranger, secondHub, 999n)
      const tampered = await sendResultViaPort(hubStranger, secondHub, badProofReq.id, { output: proof.output, proof: tamperedProof })
      const forgedOutput = await sendResultViaPort(hubStranger, secondHub, badOutputReq.id, {
        output: proof.output.map((v, i) => (i === 0 ? v + 1n : v)),
        proof: proof.proof,
      })
      await makeValidator(HL_HUB).poll()
      // A result for a request the gateway does not have is rejected at process.
      expect(await spokeProcessRevert(unknown)).toEqual({ errorName: 'GatewayRequestNotPending', args: [999n, S.None] })
      expect(await deliveredOnSpoke(unknown.id)).toBe(false)

      // A result this chain's verifier refuses is delivered, and fails its request.
      for (const [sent, req] of [
        [tampered, badProofReq],
        [forgedOutput, badOutputReq],
      ] as const) {
        expect((await spokeRequest(req.id)).status).toBe(S.Pending)
        const consumerBefore = await spokeManual.getBalance({ address: consumer })
        const nodeBefore = await spokeManual.getBalance({ address: node.account.address })
        const receipt = await processOnSpoke(sent)
        expect(await deliveredOnSpoke(sent.id)).toBe(true)
        const [rejected] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'ResultRejected', logs: receipt.logs })
        expect(rejected?.args).toEqual({
          requestId: req.id,
          node: node.account.address,
          error: errorSelector('ResultInvalidProof(uint256)'),
        })
        const [failed] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'InferenceFailed', logs: receipt.logs })
        expect(failed?.args).toMatchObject({ requestId: req.id, node: node.account.address, code: E.InvalidResult, callbackStatus: 0 })
        expect(parseEventLogs({ abi: SpokeGateway.abi, eventName: 'InferenceFulfilled', logs: receipt.logs })).toEqual([])
        const [receiptSent] = parseEventLogs({ abi: SpokeGateway.abi, eventName: 'ReceiptSent', logs: receipt.logs })
        expect(receiptSent?.args).toMatchObject({ requestId: req.id, status: S.Failed })
        receipts.push(receiptSent!.args.messageId)
        // The receipt goes to the hub market (not to the route's peer), from the gateway, port to port.
        const [receiptMessage] = parseEventLogs({ abi: Mailbox.abi, eventName: 'Dispatch', logs: receipt.logs })
        expect(parseMessage(receiptMessage!.args.message)).toMatchObject({
          origin: HL_SPOKE,
          sender: addressAsBytes32(coreB.port),
          destination: HL_HUB,
          recipient: addressAsBytes32(coreA.port),
          body: envelope(spoke.gateway, market, receiptBody(req.id, S.Failed, node.account.address)),
        })
        expect((await spokeRequest(req.id)).status).toBe(S.Failed)
        // Refunded to the consumer (the requester), called back with InvalidResult; the node is not paid.
        expect(await spokeManual.getBalance({ address: consumer })).toBe(consumerBefore + req.escrow)
        expect(await consumerErrorCode(req.id)).toBe(E.InvalidResult)
        expect(await spokeManual.getBalance({ address: node.account.address })).toBe(nodeBefore)
        expect(
          await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [req.id] }),
        ).toEqual([])
      }
    } finally {
      await restoreSpokeHub()
    }
    await stillPending(result)

    // The Failed receipts settle both requests on the hub.
    const back = await relayOnce(HL_SPOKE, HL_HUB)
    expect(back.delivered.map((d) => d.messageId)).toEqual(receipts)
    for (const req of [badProofReq, badOutputReq]) {
      expect(await hubRequest(req.mid)).toMatchObject({ status: M.Settled, settlement: S.Failed, node: node.account.address })
    }
  })

  test('error: receiveMessage and the port’s handle called directly, deliverResult / sendOwnMessage called from outside, local fulfill and fail, owner-only routes and port', async () => {
    const calls = [
      ['receiveMessage', [HUB, addressAsBytes32(market), resultBody(id)]],
      ['deliverResult', [id, input, [...proof.output], proof.proof, REFS, node.account.address]],
      ['deliverFailure', [id, E.ModelFailed, 'no', node.account.address]],
      ['sendOwnMessage', [HUB, addressAsBytes32(market), '0x', 0n, 0n]],
    ] as const
    for (const [functionName, args] of calls) {
      expect(
        await expectRevert(spokeStranger.simulateContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName, args } as never)),
      ).toEqual({
        errorName: 'MessengerUnauthorizedCaller',
        args: [spokeStranger.account.address],
      })
    }
    // Ether reaches the gateway only as a port's refund while it sends a receipt.
    const paid = await spokeStranger.call({ to: spoke.gateway, value: 1n }).then(
      () => undefined,
      (err: unknown) => err,
    )
    const data = (paid as BaseError).walk((e) => typeof (e as { data?: unknown }).data === 'string') as unknown as { data: Hex }
    expect(decodeErrorResult({ abi: SpokeGateway.abi, data: data.data })).toMatchObject({
      errorName: 'SpokeUnexpectedPayment',
      args: [spokeStranger.account.address, 1n],
    })
    // Only the mailbox may call the port's Hyperlane entry point.
    expect(
      await expectRevert(
        spokeStranger.simulateContract({
          address: coreB.port,
          abi: HyperlanePort.abi,
          functionName: 'handle',
          args: [HL_HUB, addressAsBytes32(coreA.port), envelope(market, spoke.gateway, resultBody(id))],
        }),
      ),
    ).toEqual({ errorName: 'PortUnauthorizedCaller', args: [spokeStranger.account.address] })
    // No one settles on the spoke itself, with a valid proof or not: not the spoke's owner, not the
    // node the hub assigned the request to (answers come from the hub only).
    for (const who of [spokeOwner, createSertnClient(anvilB!.chain, node.account)]) {
      expect(
        await expectRevert(
          who.simulateContract({
            address: spoke.gateway,
            abi: SpokeGateway.abi,
            functionName: 'fulfill',
            args: [id, input, [...proof.output], proof.proof, REFS],
          }),
        ),
      ).toEqual({ errorName: 'SpokeLocalFulfillDisabled', args: [] })
      expect(
        await expectRevert(
          who.simulateContract({
            address: spoke.gateway,
            abi: SpokeGateway.abi,
            functionName: 'fulfillBatch',
            args: [1, [id], input, [...proof.output], proof.proof, REFS],
          }),
        ),
      ).toEqual({ errorName: 'SpokeLocalFulfillDisabled', args: [] })
    }
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
    // Routes, the hub and the port are owner-managed.
    for (const [functionName, args] of [
      ['setHub', [HUB, coreB.port, addressAsBytes32(rogueA)]],
      ['setRoute', [HUB, coreB.port, addressAsBytes32(rogueA)]],
      ['removeRoute', [HUB]],
    ] as const) {
      expect(
        await expectRevert(spokeStranger.simulateContract({ address: spoke.gateway, abi: SpokeGateway.abi, functionName, args } as never)),
      ).toEqual({
        errorName: 'OwnedUnauthorized',
        args: [spokeStranger.account.address],
      })
    }
    for (const [functionName, args] of [
      ['setApp', [spokeStranger.account.address, true]],
      ['setPeer', [HUB, HL_HUB, addressAsBytes32(rogueA)]],
    ] as const) {
      expect(
        await expectRevert(spokeStranger.simulateContract({ address: coreB.port, abi: HyperlanePort.abi, functionName, args } as never)),
      ).toEqual({
        errorName: 'OwnedUnauthorized',
        args: [spokeStranger.account.address],
      })
    }
    expect((await spokeRequest(id)).status).toBe(S.Pending)
  })

  test('error: requestInference paying less than the quote, which covers both messages to the hub', async () => {
    const quote = await spokeQuote()
    // Hyperlane's protocol fee is flat: what the mailbox charges the port for an envelope.
    const hubMessageFee = await spokeManual.readContract({
      address: coreB.mailbox,
      abi: Mailbox.abi,
      functionName: 'quoteDispatch',
      args: [HL_HUB, addressAsBytes32(coreA.port), envelope(spoke.gateway, market, '0x')],
    })
    expect(hubMessageFee).toBe(SPOKE_PROTOCOL_FEE)
    // The port's quotes for the request message (a body sized for the model's input) and for a receipt, as the gateway asks them.
    const portQuote = (body: Hex, gasLimit: bigint) =>
      spokeManual.readContract({
        address: coreB.port,
        abi: HyperlanePort.abi,
        functionName: 'quote',
        args: [HUB, addressAsBytes32(market), body, gasLimit],
        account: spoke.gateway,
      })
    const requestFee = await portQuote(
      requestBody({
        requestId: 0n,
        modelId: ZERO32,
        modelVersion: 0,
        input: input.map(() => 0n),
        inputRef: ZERO32,
        requester: ZERO,
        callbackGasLimit: 0,
        escrow: 0n,
        deadline: 0,
      }),
      requestGas(input.length),
    )
    const receiptFee = await portQuote(receiptBody(0n, S.Fulfilled, ZERO), RECEIPT_GAS)
    expect([requestFee, receiptFee]).toEqual([hubMessageFee, hubMessageFee])
    const { fee } = await spokeManual.readContract({
      address: spoke.registry,
      abi: ModelRegistry.abi,
      functionName: 'tryGetRequestTerms',
      args: [spokeDemo.modelId],
    })
    const localPrice = fee + BigInt(DEFAULT_GATEWAY_CONFIG.fulfillGasOverhead + CALLBACK_GAS) * DEFAULT_GATEWAY_CONFIG.gasPrice // what a hub gateway would charge
    expect(quote).toBe(localPrice + requestFee + receiptFee)
    expect(quote).toBe(localPrice + 2n * SPOKE_PROTOCOL_FEE)
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

  test('the genuine RESULT is then delivered; a replay reverts "already delivered"; a second valid result from another route peer is rejected', async () => {
    const res = await relayOnce(HL_HUB, HL_SPOKE)
    expect(res.delivered.map((d) => d.messageId)).toEqual([result.id]) // the rejected ones stay pending
    expect((await spokeRequest(id)).status).toBe(S.Fulfilled)
    expect(await spokeManual.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [id] })).toEqual(
      proof.output,
    )

    expect(await spokeProcessRevert(result)).toEqual({ errorName: 'Error', args: ['Mailbox: already delivered'] })
    // With the hub route pointed at another sender, its valid result for the fulfilled request is refused by the request's state.
    await setSpokeRoutePeer(secondHub)
    try {
      const second = await sendResultViaPort(hubStranger, secondHub, id)
      await makeValidator(HL_HUB).poll()
      expect(await spokeProcessRevert(second)).toEqual({ errorName: 'GatewayRequestNotPending', args: [id, S.Fulfilled] })
      // The relayer's own attempt fails the same way.
      expect((await relayOnce(HL_HUB, HL_SPOKE)).delivered).toEqual([])
      expect(await deliveredOnSpoke(second.id)).toBe(false)
    } finally {
      await restoreSpokeHub()
    }

    // The receipt closes it on the hub.
    const back = await relayOnce(HL_SPOKE, HL_HUB)
    expect(back.delivered.length).toBe(1)
    expect(await hubRequest(mid)).toMatchObject({ status: M.Settled, settlement: S.Fulfilled, node: node.account.address })
  })
})

describe('agents killed mid-delivery', () => {
  test('a relayer disposed after the validator signed but before delivery is replaced by one (same file cursor) that delivers exactly once', async () => {
    const { id } = await requestOnSpoke()
    expect((await relayOnce(HL_SPOKE, HL_HUB)).delivered.length).toBe(1)
    const mid = await marketIdOf(id)
    const { sent } = await submitResult(mid)

    const r1 = makeRelayer(HL_HUB, HL_SPOKE)
    expect(await r1.scan()).toBe(1) // r1 has seen the RESULT and saved it as pending …
    expect((await cursorStore(HL_HUB, HL_SPOKE).load())?.pending.map((p) => p.messageId)).toContain(sent.id)
    const v = makeValidator(HL_HUB)
    expect((await v.poll()).map((c) => c.index)).toEqual([sent.index]) // … the validator signed it …
    await v[Symbol.asyncDispose]()
    await r1[Symbol.asyncDispose]() // … and r1 dies before delivering.
    await expect(r1.poll()).rejects.toThrow(/disposed/)
    expect(await deliveredOnSpoke(sent.id)).toBe(false)

    const r2 = makeRelayer(HL_HUB, HL_SPOKE)
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

    expect((await relayOnce(HL_SPOKE, HL_HUB)).delivered.length).toBe(1) // the receipt
    expect(await hubRequest(mid)).toMatchObject({ status: M.Settled, settlement: S.Fulfilled })
  })

  test('a validator disposed before signing is restarted from its file store, signs only the new message, and it is recorded once', async () => {
    const v1 = makeValidator(HL_SPOKE)
    v1.start()
    const count = await spokeManual.readContract({ address: coreB.merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'count' })
    await waitUntil('validator caught up', async () => (await checkpointStore(HL_SPOKE).latestIndex()) === count - 1)
    await v1[Symbol.asyncDispose]() // stopped before the next message exists

    const { id, sent } = await requestOnSpoke()
    const r = makeRelayer(HL_SPOKE, HL_HUB)
    try {
      const waiting = await r.poll()
      expect(waiting.seen).toBe(1)
      expect(waiting.delivered).toEqual([]) // no signature: it waits
      expect(await checkpointStore(HL_SPOKE).get(sent.index)).toBeUndefined()
      expect(await deliveredOnHub(sent.id)).toBe(false)

      const v2 = makeValidator(HL_SPOKE)
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
      const deferred = await firstEvent('ReceiptDeferred', () =>
        spokeManual.getContractEvents({
          address: spoke.gateway,
          abi: SpokeGateway.abi,
          eventName: 'ReceiptDeferred',
          fromBlock: 0n,
          strict: true,
        }),
      )
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
      const sent = await firstEvent('ReceiptSent', () =>
        spokeManual.getContractEvents({
          address: spoke.gateway,
          abi: SpokeGateway.abi,
          eventName: 'ReceiptSent',
          args: { requestId: req.id },
          fromBlock: 0n,
          strict: true,
        }),
      )
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
