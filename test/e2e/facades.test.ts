/**
 * The drop-in oracle facades on the local network (a hub, a spoke over Hyperlane and one over
 * LayerZero V2, their real contracts and local agents, the node's workers in this process, real
 * EZKL proofs verified on chain): a consumer written for ORA's onchain AI oracle (an `AIOracleCallbackReceiver`, Prompt
 * style) and one written with Ritual Infernet's `CallbackConsumer`, each deployed unchanged against
 * the chain's facade (`SertnAIOracle`, `SertnInfernetCoordinator`, deployed with the network), get
 * the output the gateway verified, on each spoke and on the hub. Refused with the facade's custom
 * errors: an unknown model id or container, an underpaid request, an input of the wrong shape or
 * encoding, unsupported subscriptions; callbacks from anyone but the oracle; a second delivery.
 * No one calls the Infernet facade's `dispatch` by hand: the chain-io worker's keeper picks each
 * subscription up, as Infernet nodes do. Then, with the workers stopped, requests whose deadline
 * passes are refunded through the facades.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import {
  encodeAbiParameters,
  keccak256,
  parseAbi,
  parseEventLogs,
  toFunctionSelector,
  zeroAddress,
  type Abi,
  type AbiItem,
  type AbiParameter,
  type Address,
  type Hex,
} from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract, facadeIdsOf } from '../../chains/evm/deploy.ts'
import { evmKeeper } from '../../chains/evm/plugin/keeper.ts'
import { LOCAL_CHAINS } from '../../chains/local.ts'
import {
  InfernetCallbackConsumer,
  InferenceGateway,
  OraPromptConsumer,
  SertnAIOracle,
  SertnInfernetCoordinator,
} from '../../contracts/artifacts/index.ts'
import { requestKey } from '../../core/types.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { expectRevert, increaseTime, waitUntil } from '../support/chain.ts'
import { startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, DEMO_INPUT, startWorkers, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

/** The demo model's ids on the facades (it is the local stack's first model). */
const ORA_MODEL = 1n
const CONTAINER = 'sertn-mlp-demo'
const ORA_CALLBACK_GAS = 300_000n
const encodeInts = (xs: readonly bigint[]): Hex => encodeAbiParameters([{ type: 'int256[]' }], [[...xs]])
const DEMO_BYTES = encodeInts(DEMO_INPUT)
const STATUS = { Pending: 1, Finalized: 2, Failed: 3 } as const
const SUB = { Created: 1, Requested: 2, Fulfilled: 3, Failed: 4, Cancelled: 5 } as const

const errorsOf = (abi: Abi) => abi.filter((x) => x.type === 'error')
const ORA_ABI = [...OraPromptConsumer.abi, ...errorsOf(SertnAIOracle.abi as Abi)] as Abi
const INFERNET_ABI = [...InfernetCallbackConsumer.abi, ...errorsOf(SertnInfernetCoordinator.abi as Abi)] as Abi

let stack: CrossChainStack
let workers: InProcessWorkers | undefined

/** A chain of the network with its facades and consumers written for the other oracles. */
type Side = {
  name: string
  user: SertnClient
  owner: SertnClient
  gateway: Address
  ora: Address
  infernet: Address
  prompt: Address
  callbackConsumer: Address
  /** The node's account on the chain (its keeper dispatches the Infernet subscriptions). */
  node: Address
}
const sides: Record<string, Side> = {}

/** A contract write, simulated first (so that a revert names its custom error), then mined and confirmed. */
type Write = { address: Address; abi: Abi | readonly unknown[]; functionName: string; args?: readonly unknown[]; value?: bigint }

async function send(client: SertnClient, p: Write) {
  const { request } = await client.simulateContract(p as Parameters<SertnClient['simulateContract']>[0])
  const receipt = await confirm(client, await client.writeContract(request as never))
  await client.request({ method: 'anvil_mine' as never, params: ['0x1'] as never }) // the watchers' confirmation
  return receipt
}

async function setUpSide(name: string): Promise<Side> {
  const isHub = name === stack.network.hub.name
  const c = isHub ? stack.hub : stack.spokes[name]!
  const facades = isHub ? stack.network.hub.facades : stack.network.spokes.find((s) => s.name === name)!.facades
  const gateway = isHub ? stack.network.hub.core.gateway : stack.network.spokes.find((s) => s.name === name)!.spoke.gateway
  if (!facades) throw new Error(`no facades on ${name}`)
  // Deployed exactly as on their own networks: the oracle's address / the registry's address.
  const prompt = await deployContract(c.user, OraPromptConsumer, [facades.ora])
  await send(c.user, {
    address: prompt,
    abi: OraPromptConsumer.abi,
    functionName: 'setCallbackGasLimit',
    args: [ORA_MODEL, ORA_CALLBACK_GAS],
  })
  const callbackConsumer = await deployContract(c.user, InfernetCallbackConsumer, [facades.infernet, CONTAINER])
  const node = stack.local.chains[name]!.node.account.address
  return { name, user: c.user, owner: c.owner, gateway, ora: facades.ora, infernet: facades.infernet, prompt, callbackConsumer, node }
}

beforeAll(async () => {
  stack = await startCrossChainStack({ spokes: [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz] })
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  for (const name of [stack.network.hub.name, ...stack.network.spokes.map((s) => s.name)]) sides[name] = await setUpSide(name)
}, 300_000)

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

/** The spoke joined to the hub over Hyperlane. */
const spoke = () => sides[LOCAL_CHAINS.spoke.name]!
const hub = () => sides[stack.network.hub.name]!

/** Requests through the Prompt-style consumer, paying its `estimateFee`; the gateway request id. */
async function oraRequest(s: Side, input: Hex = DEMO_BYTES): Promise<{ id: bigint; fee: bigint }> {
  const fee = await s.user.readContract({ address: s.prompt, abi: OraPromptConsumer.abi, functionName: 'estimateFee', args: [ORA_MODEL] })
  const receipt = await send(s.user, {
    address: s.prompt,
    abi: OraPromptConsumer.abi,
    functionName: 'calculateAIResult',
    args: [ORA_MODEL, input],
    value: fee,
  })
  const [log] = parseEventLogs({ abi: SertnAIOracle.abi, logs: receipt.logs, eventName: 'AICallbackRequest' })
  if (!log) throw new Error('no AICallbackRequest')
  expect(log.args.account).toBe(s.prompt)
  expect(log.args.callbackContract).toBe(s.prompt)
  expect(log.args.gasLimit).toBe(ORA_CALLBACK_GAS)
  return { id: log.args.requestId, fee }
}

/**
 * Deposits the fee for the Infernet consumer and has it request; the node's keeper dispatches the
 * subscription (`dispatchBy`, when the worker is stopped, runs a keeper pass), as Infernet nodes
 * pick subscriptions up. Returns the subscription and the gateway request it became.
 */
async function infernetRequest(
  s: Side,
  inputs: Hex = DEMO_BYTES,
  dispatchBy?: () => Promise<unknown>,
): Promise<{ subscriptionId: number; id: bigint }> {
  const fee = await s.user.readContract({
    address: s.infernet,
    abi: SertnInfernetCoordinator.abi,
    functionName: 'feeOf',
    args: [CONTAINER],
  })
  await send(s.user, {
    address: s.infernet,
    abi: SertnInfernetCoordinator.abi,
    functionName: 'deposit',
    args: [s.callbackConsumer],
    value: fee,
  })
  const created = await send(s.user, {
    address: s.callbackConsumer,
    abi: InfernetCallbackConsumer.abi,
    functionName: 'request',
    args: [inputs],
  })
  const [sub] = parseEventLogs({ abi: SertnInfernetCoordinator.abi, logs: created.logs, eventName: 'SubscriptionCreated' })
  if (!sub) throw new Error('no SubscriptionCreated')
  const subscriptionId = sub.args.id
  const dispatched = await waitUntil(
    `the keeper to dispatch subscription ${subscriptionId} on ${s.name}`,
    async () => {
      await dispatchBy?.()
      const [d] = await s.user.getContractEvents({
        address: s.infernet,
        abi: SertnInfernetCoordinator.abi,
        eventName: 'InfernetSubscriptionDispatched',
        args: { id: subscriptionId },
        fromBlock: created.blockNumber,
      })
      return d
    },
    60_000,
    100,
  )
  expect(dispatched.args.dispatcher).toBe(s.node) // the node's keeper, not this test
  // The watchers' confirmation of the gateway request (the test's chains mine only on transactions).
  await s.user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
  return { subscriptionId, id: dispatched.args.requestId! }
}

/** Waits for the request's verified result; returns the output the gateway verified and delivered. */
async function verifiedOutput(s: Side, id: bigint): Promise<readonly bigint[]> {
  const outcome = await waitForOutcome(stack.client, requestKey(s.user.chain.id, s.gateway, id))
  expect(outcome.stage).toBe('fulfilled')
  const [fulfilled] = await s.user.getContractEvents({
    address: s.gateway,
    abi: InferenceGateway.abi,
    eventName: 'InferenceFulfilled',
    args: { requestId: id },
    fromBlock: 0n,
  })
  if (!fulfilled) throw new Error(`no InferenceFulfilled for ${id}`)
  const output = fulfilled.args.output!
  expect(output.map(String)).toEqual(outcome.output)
  expect(fulfilled.args.callbackStatus).toBe(0) // the facade's callback succeeded
  return output
}

async function expectOraResult(s: Side): Promise<void> {
  const { id } = await oraRequest(s)
  expect(await s.user.readContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'isFinalized', args: [id] })).toBe(false)
  const output = await verifiedOutput(s, id)
  const [, modelId, input, delivered] = await s.user.readContract({
    address: s.prompt,
    abi: OraPromptConsumer.abi,
    functionName: 'requests',
    args: [id],
  })
  expect(modelId).toBe(ORA_MODEL)
  expect(input).toBe(DEMO_BYTES)
  expect(delivered).toBe(encodeInts(output))
  // Final at once (verified before delivery), through the receiver's own view too.
  expect(await s.user.readContract({ address: s.prompt, abi: OraPromptConsumer.abi, functionName: 'isFinalized', args: [id] })).toBe(true)
  const [result] = await s.user.getContractEvents({
    address: s.ora,
    abi: SertnAIOracle.abi,
    eventName: 'AICallbackResult',
    args: { requestId: id },
    fromBlock: 0n,
  })
  expect(result?.args).toMatchObject({ account: s.prompt, invoker: s.gateway, output: encodeInts(output) })
  const [called] = await s.user.getContractEvents({
    address: s.ora,
    abi: SertnAIOracle.abi,
    eventName: 'AIOracleCallbackCalled',
    args: { requestId: id },
    fromBlock: 0n,
  })
  expect(called?.args.succeeded).toBe(true)
  // At most once: a second delivery, even from the gateway's address, is refused by the facade.
  const again = await expectRevert(
    s.user.simulateContract({
      account: s.gateway,
      address: s.ora,
      abi: SertnAIOracle.abi,
      functionName: 'rawOnInferenceResult',
      args: [id, [...output]],
    }),
  )
  expect(again.errorName).toBe('SertnAIOracleRequestNotPending')
}

async function expectInfernetResult(s: Side): Promise<void> {
  const { subscriptionId, id } = await infernetRequest(s)
  const output = await verifiedOutput(s, id)
  const [called] = await s.user.getContractEvents({
    address: s.infernet,
    abi: SertnInfernetCoordinator.abi,
    eventName: 'InfernetCallbackCalled',
    args: { id: subscriptionId },
    fromBlock: 0n,
  })
  expect(called?.args.succeeded).toBe(true)
  const read = (functionName: 'outputs' | 'inputsSeen' | 'nodes') =>
    s.user.readContract({ address: s.callbackConsumer, abi: InfernetCallbackConsumer.abi, functionName, args: [subscriptionId] })
  expect(await read('outputs')).toBe(encodeInts(output))
  expect(await read('inputsSeen')).toBe(encodeAbiParameters([{ type: 'bytes32' }], [keccak256(DEMO_BYTES)]))
  expect(await read('nodes')).toBe(s.gateway)
  const sub = await s.user.readContract({
    address: s.infernet,
    abi: SertnInfernetCoordinator.abi,
    functionName: 'getSubscription',
    args: [subscriptionId],
  })
  expect(sub).toMatchObject({ owner: s.callbackConsumer, status: SUB.Fulfilled, requestId: id })
}

/** An ABI item's shape, names aside: what must match the published interface for a contract to work unchanged. */
function shapeOf(item: AbiItem): string {
  const params = (xs: readonly AbiParameter[] = []) =>
    xs.map((x) => `${x.type}${(x as { indexed?: boolean }).indexed ? ' indexed' : ''}`).join(',')
  if (item.type === 'function')
    return `function ${item.name}(${params(item.inputs)}) ${item.stateMutability} returns (${params(item.outputs)})`
  if (item.type === 'event' || item.type === 'error') return `${item.type} ${item.name}(${params(item.inputs)})`
  return item.type
}

/** Checks that `abi` has each item of `published` (human-readable, as ORA's and Ritual's sources declare them). */
function expectPublishedAbi(abi: Abi, published: readonly string[]): void {
  for (const expected of parseAbi(published as string[]) as Abi) {
    const name = (expected as { name: string }).name
    const actual = abi.find((x) => x.type === expected.type && (x as { name?: string }).name === name)
    expect(actual && shapeOf(actual), name).toBe(shapeOf(expected))
  }
}

describe('drop-in oracle interfaces', () => {
  test('default: the facades, the bases and the consumers have the ABI ORA and Ritual publish', () => {
    // ORA's IAIOracle and AIOracleCallbackReceiver (ora-io/OAO), and the selectors its AIOracle calls.
    expectPublishedAbi(SertnAIOracle.abi as Abi, [
      'event AICallbackRequest(address indexed account, uint256 indexed requestId, uint256 modelId, bytes input, address callbackContract, uint64 gasLimit, bytes callbackData)',
      'event AICallbackResult(address indexed account, uint256 indexed requestId, address invoker, bytes output)',
      'function requestCallback(uint256 modelId, bytes input, address callbackContract, uint64 gasLimit, bytes callbackData) payable returns (uint256)',
      'function estimateFee(uint256 modelId, uint256 gasLimit) view returns (uint256)',
      'function isFinalized(uint256 requestId) view returns (bool)',
    ])
    expectPublishedAbi(OraPromptConsumer.abi as Abi, [
      'function aiOracle() view returns (address)',
      'error UnauthorizedCallbackSource(address expected, address found)',
      'event AICallbackError(uint256 indexed requestId, uint8 indexed code, bytes message, bytes callbackData)',
      'function aiOracleCallback(uint256 requestId, bytes output, bytes callbackData)',
      'function isFinalized(uint256 requestId) view returns (bool)',
      'function aiOracleCallbackError(uint256 requestId, uint8 code, bytes message, bytes callbackData)',
    ])
    expect(toFunctionSelector('function aiOracleCallback(uint256,bytes,bytes)')).toBe('0xb0347814')
    expect(toFunctionSelector('function aiOracleCallbackError(uint256,uint8,bytes,bytes)')).toBe('0x8e6fd006')
    // infernet-sdk v1.1.0: the Registry's and Coordinator's members a consumer uses, and BaseConsumer's.
    expectPublishedAbi(SertnInfernetCoordinator.abi as Abi, [
      'function COORDINATOR() view returns (address)',
      'function id() view returns (uint32)',
      'event SubscriptionCreated(uint32 indexed id)',
      'event SubscriptionCancelled(uint32 indexed id)',
      'event SubscriptionFulfilled(uint32 indexed id, address indexed node)',
      'function createSubscription(string containerId, uint32 frequency, uint32 period, uint16 redundancy, bool lazy, address paymentToken, uint256 paymentAmount, address wallet, address verifier) returns (uint32)',
      'function cancelSubscription(uint32 subscriptionId)',
    ])
    expectPublishedAbi(InfernetCallbackConsumer.abi as Abi, [
      'error NotCoordinator()',
      'function getContainerInputs(uint32 subscriptionId, uint32 interval, uint32 timestamp, address caller) view returns (bytes)',
      'function rawReceiveCompute(uint32 subscriptionId, uint32 interval, uint16 redundancy, address node, bytes input, bytes output, bytes proof, bytes32 containerId, uint256 index)',
    ])
    expect(toFunctionSelector('function NotCoordinator()')).toBe('0x9ec853e6')
  })

  test('default: the network deploys both facades on every chain with the demo model mapped', async () => {
    expect(facadeIdsOf(stack.network.hub.models)[0]).toEqual({ oraModelId: ORA_MODEL, infernetContainerId: CONTAINER })
    for (const s of Object.values(sides)) {
      const models = s.name === hub().name ? stack.network.hub.models : stack.network.spokes.find((x) => x.name === s.name)!.models
      expect(await s.user.readContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'sertnModelOf', args: [ORA_MODEL] })).toBe(
        models[0]!.modelId,
      )
      const container = await s.user.readContract({
        address: s.infernet,
        abi: SertnInfernetCoordinator.abi,
        functionName: 'containerOf',
        args: [CONTAINER],
      })
      expect(container.modelId).toBe(models[0]!.modelId)
      // The fee is the gateway's quote with the consumer's gas and the facade's.
      const fee = await s.user.readContract({
        address: s.prompt,
        abi: OraPromptConsumer.abi,
        functionName: 'estimateFee',
        args: [ORA_MODEL],
      })
      const overhead = await s.user.readContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'FACADE_GAS_OVERHEAD' })
      const quote = await s.user.readContract({
        address: s.gateway,
        abi: InferenceGateway.abi,
        functionName: 'quote',
        args: [models[0]!.modelId, Number(ORA_CALLBACK_GAS + ORA_CALLBACK_GAS / 63n + overhead)],
      })
      expect(fee).toBe(quote)
    }
  })

  test.each([
    ['hyperlane', LOCAL_CHAINS.spoke.name],
    ['layerzero', LOCAL_CHAINS.spokelz.name],
  ])(
    'behavior: an ORA Prompt-style consumer on the %s spoke gets the output verified there',
    async (_, name) => {
      await expectOraResult(sides[name]!)
    },
    240_000,
  )

  test.each([
    ['hyperlane', LOCAL_CHAINS.spoke.name],
    ['layerzero', LOCAL_CHAINS.spokelz.name],
  ])(
    'behavior: an Infernet CallbackConsumer on the %s spoke gets the output verified there',
    async (_, name) => {
      await expectInfernetResult(sides[name]!)
    },
    240_000,
  )

  test('behavior: both consumers on the hub get the output verified there', async () => {
    await expectOraResult(hub())
    await expectInfernetResult(hub())
  }, 300_000)

  test('error: callbacks from anyone but the oracle are refused', async () => {
    const s = spoke()
    const ora = await expectRevert(
      s.user.simulateContract({
        address: s.prompt,
        abi: OraPromptConsumer.abi,
        functionName: 'aiOracleCallback',
        args: [1n, encodeInts([1n, 2n]), '0x'],
      }),
    )
    expect(ora).toEqual({ errorName: 'UnauthorizedCallbackSource', args: [s.ora, s.user.account.address] })
    const infernet = await expectRevert(
      s.user.simulateContract({
        address: s.callbackConsumer,
        abi: InfernetCallbackConsumer.abi,
        functionName: 'rawReceiveCompute',
        args: [1, 1, 1, s.user.account.address, '0x', encodeInts([1n, 2n]), '0x', `0x${'0'.repeat(64)}`, 0n],
      }),
    )
    expect(infernet.errorName).toBe('NotCoordinator')
    for (const address of [s.ora, s.infernet]) {
      const forged = await expectRevert(
        s.user.simulateContract({ address, abi: SertnAIOracle.abi, functionName: 'rawOnInferenceResult', args: [1n, [1n, 2n]] }),
      )
      expect(forged.errorName).toBe('SertnConsumerOnlyGateway')
    }
  })

  test('error: an unknown model id or container, an underpaid request, a wrong-shape input', async () => {
    const s = spoke()
    const fee = await s.user.readContract({ address: s.prompt, abi: OraPromptConsumer.abi, functionName: 'estimateFee', args: [ORA_MODEL] })
    const ora = (modelId: bigint, input: Hex, value: bigint) =>
      expectRevert(
        s.user.simulateContract({ address: s.prompt, abi: ORA_ABI, functionName: 'calculateAIResult', args: [modelId, input], value }),
      )
    expect(await ora(999n, DEMO_BYTES, fee)).toEqual({ errorName: 'SertnAIOracleUnknownModel', args: [999n] })
    expect(await ora(ORA_MODEL, DEMO_BYTES, fee - 1n)).toEqual({ errorName: 'SertnAIOracleInsufficientFee', args: [fee, fee - 1n] })
    expect(await ora(ORA_MODEL, encodeInts(DEMO_INPUT.slice(0, 3)), fee)).toEqual({
      errorName: 'SertnAIOracleInputShapeMismatch',
      args: [BigInt(DEMO_INPUT.length), 3n],
    })
    // An id the owner mapped to a model this chain does not have.
    const elsewhere = `0x${'ab'.repeat(32)}` as Hex
    await send(s.owner, { address: s.ora, abi: SertnAIOracle.abi, functionName: 'setModel', args: [77n, elsewhere] })
    const direct = (modelId: bigint) =>
      expectRevert(
        s.user.simulateContract({
          address: s.ora,
          abi: SertnAIOracle.abi,
          functionName: 'requestCallback',
          args: [modelId, DEMO_BYTES, zeroAddress, 0n, '0x'],
          value: fee,
        }),
      )
    expect(await direct(77n)).toEqual({ errorName: 'SertnFacadeModelUnsupported', args: [elsewhere] })
    // The Prompt consumer set no callback gas for it: ORA's rule (a callback needs gas) answers first.
    expect(await ora(77n, DEMO_BYTES, fee)).toEqual({ errorName: 'SertnAIOracleInvalidGasLimit', args: [s.prompt, 0n] })
    await send(s.owner, { address: s.ora, abi: SertnAIOracle.abi, functionName: 'setModel', args: [77n, `0x${'0'.repeat(64)}`] })
    expect(await direct(77n)).toEqual({ errorName: 'SertnAIOracleUnknownModel', args: [77n] })
    const mapping = await expectRevert(
      s.user.simulateContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'setModel', args: [78n, elsewhere] }),
    )
    expect(mapping.errorName).toBe('OwnedUnauthorized')
    const text = '0x48656c6c6f2c20776f726c6421' as Hex // a text prompt, as ORA's LLM models take
    expect(await ora(ORA_MODEL, text, fee)).toEqual({ errorName: 'SertnAIOracleInvalidInput', args: [13n] })
    const estimate = await expectRevert(
      s.user.simulateContract({ address: s.prompt, abi: ORA_ABI, functionName: 'estimateFee', args: [999n] }),
    )
    expect(estimate.errorName).toBe('SertnAIOracleUnknownModel')

    // Infernet: a container the facade does not map, an unsupported subscription, no deposit, too low a payment.
    const unknown = await deployContract(s.user, InfernetCallbackConsumer, [s.infernet, 'llama3-8b'])
    const sub = (consumer: Address, redundancy: number, token: Address, amount: bigint) =>
      expectRevert(
        s.user.simulateContract({
          address: consumer,
          abi: INFERNET_ABI,
          functionName: 'requestWith',
          args: [DEMO_BYTES, redundancy, token, amount],
        }),
      )
    expect(await sub(unknown, 1, zeroAddress, 0n)).toEqual({ errorName: 'SertnInfernetUnknownContainer', args: ['llama3-8b'] })
    expect((await sub(s.callbackConsumer, 2, zeroAddress, 0n)).errorName).toBe('SertnInfernetUnsupportedRedundancy')
    expect((await sub(s.callbackConsumer, 1, s.prompt, 0n)).errorName).toBe('SertnInfernetUnsupportedPaymentToken')
    const balance = await s.user.readContract({
      address: s.infernet,
      abi: SertnInfernetCoordinator.abi,
      functionName: 'balanceOf',
      args: [s.callbackConsumer],
    })
    const ifee = await s.user.readContract({
      address: s.infernet,
      abi: SertnInfernetCoordinator.abi,
      functionName: 'feeOf',
      args: [CONTAINER],
    })
    expect(await sub(s.callbackConsumer, 1, zeroAddress, 0n)).toEqual({
      errorName: 'SertnInfernetInsufficientBalance',
      args: [s.callbackConsumer, ifee, balance],
    })
    expect(await sub(s.callbackConsumer, 1, zeroAddress, ifee - 1n)).toEqual({
      errorName: 'SertnInfernetPaymentTooLow',
      args: [ifee, ifee - 1n],
    })

    // A wrong-shape input is found when the subscription is dispatched; its owner cancels it and gets the fee back.
    await send(s.user, {
      address: s.infernet,
      abi: SertnInfernetCoordinator.abi,
      functionName: 'deposit',
      args: [s.callbackConsumer],
      value: ifee,
    })
    const created = await send(s.user, {
      address: s.callbackConsumer,
      abi: InfernetCallbackConsumer.abi,
      functionName: 'request',
      args: [encodeInts([1n, 2n, 3n, 4n, 5n])],
    })
    const [log] = parseEventLogs({ abi: SertnInfernetCoordinator.abi, logs: created.logs, eventName: 'SubscriptionCreated' })
    const id = log!.args.id
    const dispatch = await expectRevert(
      s.user.simulateContract({ address: s.infernet, abi: SertnInfernetCoordinator.abi, functionName: 'dispatch', args: [id] }),
    )
    expect(dispatch).toEqual({ errorName: 'SertnInfernetInputShapeMismatch', args: [id, BigInt(DEMO_INPUT.length), 5n] })
    const depositOf = () =>
      s.user.readContract({ address: s.infernet, abi: SertnInfernetCoordinator.abi, functionName: 'balanceOf', args: [s.callbackConsumer] })
    expect(await depositOf()).toBe(balance)
    await send(s.user, { address: s.callbackConsumer, abi: InfernetCallbackConsumer.abi, functionName: 'cancel', args: [id] })
    expect(await depositOf()).toBe(balance + ifee)
    const cancelled = await s.user.readContract({
      address: s.infernet,
      abi: SertnInfernetCoordinator.abi,
      functionName: 'getSubscription',
      args: [id],
    })
    expect(cancelled.status).toBe(SUB.Cancelled)
    const again = await expectRevert(
      s.user.simulateContract({ address: s.infernet, abi: SertnInfernetCoordinator.abi, functionName: 'dispatch', args: [id] }),
    )
    expect(again).toEqual({ errorName: 'SertnInfernetSubscriptionNotOpen', args: [id, SUB.Cancelled] })
  })

  test('error: a request Sertn cannot serve in time is refunded through the facade', async () => {
    await workers?.stop()
    workers = undefined
    const s = spoke()
    // Through the Prompt-style consumer (it takes no ETH: its refund is held for it), straight
    // from an account with no callback (refunded at once), and an Infernet subscription.
    const viaPrompt = await oraRequest(s)
    const fee = await s.user.readContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'estimateFee', args: [ORA_MODEL, 0n] })
    const direct = await send(s.user, {
      address: s.ora,
      abi: SertnAIOracle.abi,
      functionName: 'requestCallback',
      args: [ORA_MODEL, DEMO_BYTES, zeroAddress, 0n, '0x'],
      value: fee,
    })
    const [directLog] = parseEventLogs({ abi: SertnAIOracle.abi, logs: direct.logs, eventName: 'AICallbackRequest' })
    const directId = directLog!.args.requestId
    // No worker runs now: a keeper pass (`sertn keeper --once` does the same) dispatches it.
    const keeper = evmKeeper({ config: stack.config })
    const sub = await infernetRequest(s, DEMO_BYTES, () => keeper.dispatch(s.name))
    const escrowOf = async (id: bigint) =>
      (await s.user.readContract({ address: s.gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [id] })).escrow
    const escrows = [await escrowOf(viaPrompt.id), await escrowOf(directId), await escrowOf(sub.id)]
    const deadline = (
      await s.user.readContract({ address: s.gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [sub.id] })
    ).deadline
    const now = (await s.user.getBlock()).timestamp
    await increaseTime(s.user, Number(BigInt(deadline) - now + 1n))

    const userBefore = await s.user.getBalance({ address: s.user.account.address })
    const depositBefore = await s.user.readContract({
      address: s.infernet,
      abi: SertnInfernetCoordinator.abi,
      functionName: 'balanceOf',
      args: [s.callbackConsumer],
    })
    for (const id of [viaPrompt.id, directId, sub.id]) {
      // The keeper's job, done here by the owner's account so that the user's balance moves by the refund alone.
      await send(s.owner, { address: s.gateway, abi: InferenceGateway.abi, functionName: 'refund', args: [id] })
    }

    expect(await s.user.readContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'owed', args: [s.prompt] })).toBe(escrows[0])
    expect(await s.user.getBalance({ address: s.user.account.address })).toBe(userBefore + escrows[1]!)
    const failed = await s.user.getContractEvents({
      address: s.ora,
      abi: SertnAIOracle.abi,
      eventName: 'AIOracleRequestFailed',
      fromBlock: 0n,
    })
    expect(failed.map((e) => [e.args.requestId, e.args.account, e.args.refund])).toEqual([
      [viaPrompt.id, s.prompt, escrows[0]],
      [directId, s.user.account.address, escrows[1]],
    ])
    for (const id of [viaPrompt.id, directId]) {
      const r = await s.user.readContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'getRequest', args: [id] })
      expect(r.status).toBe(STATUS.Failed)
      expect(await s.user.readContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'isFinalized', args: [id] })).toBe(false)
    }
    expect(
      await s.user.readContract({
        address: s.infernet,
        abi: SertnInfernetCoordinator.abi,
        functionName: 'balanceOf',
        args: [s.callbackConsumer],
      }),
    ).toBe(depositBefore + escrows[2]!)
    const subscription = await s.user.readContract({
      address: s.infernet,
      abi: SertnInfernetCoordinator.abi,
      functionName: 'getSubscription',
      args: [sub.subscriptionId],
    })
    expect(subscription.status).toBe(SUB.Failed)
    expect(
      await s.user.readContract({
        address: s.callbackConsumer,
        abi: InfernetCallbackConsumer.abi,
        functionName: 'outputs',
        args: [sub.subscriptionId],
      }),
    ).toBe('0x')
    // What a spoke's receipt left of its reserve is no one's: the facades' owner may sweep it, and
    // only it: the refund held for the Prompt consumer and the Infernet deposit stay.
    for (const facade of [s.ora, s.infernet]) {
      await send(s.owner, { address: facade, abi: SertnAIOracle.abi, functionName: 'sweep', args: [s.owner.account.address] })
      expect(await s.user.readContract({ address: facade, abi: SertnAIOracle.abi, functionName: 'surplus' })).toBe(0n)
    }
    expect(await s.user.getBalance({ address: s.ora })).toBe(escrows[0])
    expect(await s.user.getBalance({ address: s.infernet })).toBe(depositBefore + escrows[2]!)
    const swept = await expectRevert(
      s.user.simulateContract({ address: s.ora, abi: SertnAIOracle.abi, functionName: 'sweep', args: [s.user.account.address] }),
    )
    expect(swept.errorName).toBe('OwnedUnauthorized')
  }, 120_000)
})
