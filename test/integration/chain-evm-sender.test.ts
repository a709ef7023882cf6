/**
 * The EVM chain plugin's settlement on a real anvil with a real proof: concurrent fulfil/fail calls
 * from one account without nonce collisions, idempotent retries that send nothing, non-retryable
 * errors for rejected results, enough gas for the largest callbacks, and a race lost to another
 * node (the one the request was reassigned to once our window passed) reported as already settled.
 */
import { NO_STORAGE_REF } from '../../core/storage-ref.ts'
import { DEV_ONLY } from '../support/artifacts.ts'
import { parseEventLogs, parseGwei, toHex, type Address, type Hex } from 'viem'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { GasGuzzlerConsumer, InferenceGateway, NodeRegistry, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { DEFAULT_NODE_POOL, mineToNextEpoch, openLocalPools } from '../../chains/evm/nodes.ts'
import {
  evmChain,
  InvalidProofError,
  InvalidResultError,
  MemoryCursorStore,
  RequestExpiredError,
  RequestSettledError,
} from '../../chains/evm/plugin/index.ts'
import { isRetryable, PluginError } from '../../core/errors.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import type { ChainPlugin } from '../../core/plugins.ts'
import { requestKey, type ChainId, type InferenceRequest, type ModelId, type ProvenResult, type RequestId } from '../../core/types.ts'
import { createEzklWasmProver, type EzklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'
import { increaseTime, startTestChain, type TestChain, waitUntil } from '../support/chain.ts'
import { sampleInputQ } from '../support/artifacts.ts'

const GAS = 200_000

let t: TestChain
let prover: EzklWasmProver | undefined
let chain: ChainPlugin
let input: bigint[]
let result: ProvenResult
let recording: Address

beforeAll(async () => {
  t = await startTestChain()
  const demo = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
  input = await sampleInputQ(demo)
  prover = createEzklWasmProver()
  // The one proof of this file: every request below asks for the same input.
  const proof = await prover.proveInference(demo, input)
  await prover.dispose()
  prover = undefined
  result = { output: proof.output.map(String), proof: proof.proof, instances: proof.instances.map(String) }
  recording = await deployContract(t.user, RecordingConsumer, [t.core.gateway])
  chain = evmChain({
    chainName: 'anvil',
    chainId: t.anvil.chain.id,
    rpcUrl: t.anvil.rpcUrl,
    gateway: t.core.gateway,
    account: anvilAccount(1), // t.node's account
    cursorStore: new MemoryCursorStore(),
    pollingIntervalMs: 20,
  })
})

afterEach(async () => {
  if (t) {
    await rpc('evm_setIntervalMining', [0])
    await rpc('evm_setAutomine', [true])
  }
})

afterAll(async () => {
  await prover?.dispose()
  await chain?.dispose()
  await t?.stop()
})

// ─────────────────────────────── helpers ───────────────────────────────

const rpc = (method: string, params: unknown[]) => t.owner.request({ method: method as never, params: params as never })
const nonces = async () => ({
  latest: await t.node.getTransactionCount({ address: t.node.account.address, blockTag: 'latest' }),
  pending: await t.node.getTransactionCount({ address: t.node.account.address, blockTag: 'pending' }),
})

/** A request as the watcher would deliver it, from the requesting transaction's receipt. */
async function requestOf(hash: Hex): Promise<InferenceRequest> {
  const receipt = await t.user.waitForTransactionReceipt({ hash })
  const [log] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  const a = log!.args
  return {
    key: requestKey(t.anvil.chain.id, t.core.gateway, a.requestId),
    chainId: t.anvil.chain.id as ChainId,
    gateway: t.core.gateway,
    requestId: a.requestId.toString() as RequestId,
    modelId: a.modelId as ModelId,
    modelVersion: a.modelVersion,
    requester: a.requester,
    input: a.input.map(String),
    callbackGasLimit: a.callbackGasLimit,
    escrow: a.escrow.toString(),
    deadline: a.deadline,
    seenAt: {
      blockNumber: log!.blockNumber.toString(),
      blockHash: log!.blockHash,
      transactionHash: log!.transactionHash,
      logIndex: log!.logIndex,
    },
  }
}

/** Requests through `consumer` (RecordingConsumer-compatible), or from the user's EOA. */
async function sendRequest(opts: { consumer?: Address; gas?: number } = {}): Promise<Hex> {
  const gas = opts.gas ?? GAS
  const value = await t.user.readContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'quote',
    args: [t.demo.modelId, gas],
  })
  if (opts.consumer) {
    return t.user.writeContract({
      address: opts.consumer,
      abi: RecordingConsumer.abi,
      functionName: 'request',
      args: [t.demo.modelId, input, gas],
      value,
      gas: 1_000_000n,
    })
  }
  return t.user.writeContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'requestInference',
    args: [t.demo.modelId, input, gas],
    value,
    gas: 1_000_000n,
  })
}
const request = async (opts: { consumer?: Address; gas?: number } = {}) => requestOf(await sendRequest(opts))

async function expectRejected<E>(p: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(type)
  expect(isRetryable(err)).toBe(false)
  return err as E
}

// ─────────────────────────────── tests ─────────────────────────────────

describe('sending', () => {
  test('behavior: 10 concurrent fulfils and 5 concurrent fails from one account all land, a few blocks for all of them', async () => {
    const requests: InferenceRequest[] = []
    for (let i = 0; i < 15; i++) requests.push(await request({ consumer: recording }))
    const before = await nonces()
    // Blocks every second, so that receipts take a while: sends must not wait for each other's receipts.
    await rpc('evm_setAutomine', [false])
    await rpc('evm_setIntervalMining', [1])
    const outcomes = await Promise.all(
      requests.map((r, i) => (i < 10 ? chain.fulfill(r, result) : chain.fail(r, 'ModelFailed', `attempt ${i} failed`))),
    )
    for (const [i, o] of outcomes.entries()) {
      expect(o).toMatchObject({ status: i < 10 ? 'Fulfilled' : 'Failed', alreadySettled: false })
      expect(o.transactionHash).toMatch(/^0x[0-9a-f]{64}$/)
    }
    // One transaction each, consecutive nonces, no gaps or replacements.
    const txs = await Promise.all(outcomes.map((o) => t.node.getTransaction({ hash: o.transactionHash! })))
    expect(txs.map((tx) => tx.nonce).sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => before.pending + i))
    expect(await nonces()).toEqual({ latest: before.latest + 15, pending: before.pending + 15 })
    // Receipts were awaited outside the send queue: 15 transactions share a few one-second blocks
    // (a queue that waited for each receipt would need 15). A loaded machine may spread them more.
    expect(new Set(outcomes.map((o) => o.blockNumber)).size).toBeLessThanOrEqual(5)
    for (const [i, r] of requests.entries()) {
      expect((await chain.getRequestState(r.requestId)).status).toBe(i < 10 ? 'Fulfilled' : 'Failed')
    }
    const delivered = await t.user.readContract({
      address: recording,
      abi: RecordingConsumer.abi,
      functionName: 'outputOf',
      args: [BigInt(requests[0]!.requestId)],
    })
    expect(delivered.map(String)).toEqual(result.output)
  })

  test('behavior: a second fulfil of a fulfilled request is alreadySettled and sends nothing; concurrent duplicates share one transaction', async () => {
    const r = await request()
    const before = await nonces()
    const [a, b] = await Promise.all([chain.fulfill(r, result), chain.fulfill(r, result)])
    expect(a).toEqual(b)
    expect(a).toMatchObject({ status: 'Fulfilled', alreadySettled: false })
    const after = await nonces()
    expect(after).toEqual({ latest: before.latest + 1, pending: before.pending + 1 })

    const again = await chain.fulfill(r, result)
    expect(again).toEqual({ status: 'Fulfilled', alreadySettled: true })
    expect(await nonces()).toEqual(after)
  })

  test('behavior: the node account used outside the plugin: the stale nonce is resynced and the call lands', async () => {
    await chain.fail(await request(), 'Unknown', 'warm the nonce counter')
    // Two transactions the plugin does not know about.
    await confirm(t.node, await t.node.sendTransaction({ to: t.node.account.address, value: 0n }))
    await confirm(t.node, await t.node.sendTransaction({ to: t.node.account.address, value: 0n }))
    const before = await nonces()
    const r = await request()
    const out = await chain.fulfill(r, result)
    expect(out).toMatchObject({ status: 'Fulfilled', alreadySettled: false })
    expect((await t.node.getTransaction({ hash: out.transactionHash! })).nonce).toBe(before.latest)
  })

  test('behavior: callbacks at the maximum gas limit get their gas (the gas limit has room for callbackGasLimit·64/63 + reserve)', async () => {
    const guzzler = await deployContract(t.user, GasGuzzlerConsumer, [t.core.gateway])
    for (const consumer of [recording, guzzler]) {
      const r = await request({ consumer, gas: 2_000_000 })
      const out = await chain.fulfill(r, result)
      expect(out.status).toBe('Fulfilled')
      const receipt = await t.node.getTransactionReceipt({ hash: out.transactionHash! })
      const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceFulfilled' })
      // Succeeded for the recorder; the guzzler burns its whole limit and fails, but settlement stands.
      expect(event!.args.callbackStatus).toBe(consumer === recording ? 0 : 1)
      if (consumer === guzzler) expect(event!.args.callbackGasUsed).toBeGreaterThanOrEqual(2_000_000n)
    }
  })

  test('behavior: fail truncates a reason longer than the gateway accepts', async () => {
    const r = await request({ consumer: recording })
    const out = await chain.fail(r, 'InvalidInput', `${'é'.repeat(200)}`)
    const receipt = await t.node.getTransactionReceipt({ hash: out.transactionHash! })
    const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceFailed' })
    expect(new TextEncoder().encode(event!.args.reason).length).toBeLessThanOrEqual(256)
    expect(event!.args.reason.endsWith('…')).toBe(true)
    expect(event!.args.code).toBe(1)
  })
})

describe('rejections', () => {
  test('error: an invalid proof is a non-retryable InvalidProofError and sends nothing', async () => {
    const r = await request()
    const before = await nonces()
    const forged = { ...result, output: result.output.map((v, i) => (i === 0 ? String(BigInt(v) + 1n) : v)) }
    const err = await expectRejected(chain.fulfill(r, forged), InvalidProofError)
    expect(err.message).toContain(`ResultInvalidProof(${r.requestId})`)
    expect(err.errorName).toBe('ResultInvalidProof')
    const bytes = result.proof.slice(2)
    const tampered =
      `0x${bytes.slice(0, 200)}${(parseInt(bytes.slice(200, 202), 16) ^ 1).toString(16).padStart(2, '0')}${bytes.slice(202)}` as Hex
    await expectRejected(chain.fulfill(r, { ...result, proof: tampered }), InvalidProofError)
    const shape = await expectRejected(chain.fulfill(r, { ...result, output: result.output.slice(1) }), InvalidResultError)
    expect(shape.errorName).toBe('ResultOutputShapeMismatch')
    const wrongInput = await expectRejected(
      chain.fulfill({ ...r, input: r.input.map((v, i) => (i === 0 ? String(BigInt(v) + 1n) : v)) }, result),
      InvalidResultError,
    )
    expect(wrongInput.errorName).toBe('ResultInputMismatch')
    expect(await nonces()).toEqual(before)
    expect((await chain.getRequestState(r.requestId)).status).toBe('Pending')
  })

  test('error: settled the other way: fulfil of a failed request and fail of a fulfilled one are non-retryable; a repeated fail is alreadySettled', async () => {
    const failed = await request()
    await chain.fail(failed, 'ProvingFailed', 'out of memory')
    const before = await nonces()
    const e1 = await expectRejected(chain.fulfill(failed, result), RequestSettledError)
    expect(e1.status).toBe('Failed')
    expect(e1.message).toMatch(/GatewayRequestNotPending\(\d+, 3\)/)
    expect(await chain.fail(failed, 'ProvingFailed', 'out of memory')).toEqual({ status: 'Failed', alreadySettled: true })

    const fulfilled = await request()
    await chain.fulfill(fulfilled, result)
    const after = await nonces()
    expect(after.latest).toBe(before.latest + 1)
    const e2 = await expectRejected(chain.fail(fulfilled, 'Unknown', ''), RequestSettledError)
    expect(e2.status).toBe('Fulfilled')
    expect(await nonces()).toEqual(after)
  })

  test('behavior: another node settles it between our simulation and our transaction (reassigned to it once our window passed): alreadySettled after the revert', async () => {
    // Assigned to our node (the pool's only one so far); then the stranger joins the pool, and our window passes.
    const r = await request()
    const id = BigInt(r.requestId)
    const job = () =>
      t.owner.readContract({ address: t.core.nodeRegistry, abi: NodeRegistry.abi, functionName: 'jobOf', args: [t.core.gateway, id] })
    expect((await job()).node).toBe(t.node.account.address)
    await openLocalPools(t.owner, t.core.nodeRegistry, { models: [t.demo.modelId], nodes: [t.stranger] })
    await increaseTime(t.owner, Number(DEFAULT_NODE_POOL.window) + 1)
    const before = await nonces()
    await rpc('evm_setAutomine', [false])
    const ours = chain.fulfill(r, result)
    await waitUntil('our transaction in the pool', async () => (await nonces()).pending === before.pending + 1)
    // The stranger reassigns the job (to itself: the only other node) and fulfils it, paying a
    // higher tip, so anvil orders both before ours in the next block.
    const tip = { gas: 3_000_000n, maxPriorityFeePerGas: parseGwei('50'), maxFeePerGas: parseGwei('100') }
    await t.stranger.writeContract({
      address: t.core.nodeRegistry,
      abi: NodeRegistry.abi,
      functionName: 'reassign',
      args: [t.core.gateway, id],
      ...tip,
    })
    await t.stranger.writeContract({
      address: t.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'fulfill',
      args: [id, input, result.output.map(BigInt), result.proof, { output: NO_STORAGE_REF, proof: NO_STORAGE_REF }],
      ...tip,
    })
    await rpc('evm_mine', [])
    expect(await ours).toEqual({ status: 'Fulfilled', alreadySettled: true })
    expect(await job()).toMatchObject({ node: t.stranger.account.address, state: 3 /* Closed */, misses: 1 })
    // Our transaction was sent (and reverted): the nonce moved by one.
    expect((await nonces()).latest).toBe(before.latest + 1)
    const block = await t.node.getBlock({ blockTag: 'latest' })
    expect(block.transactions).toHaveLength(3)
    const ourReceipt = await t.node.getTransactionReceipt({ hash: block.transactions[2]! })
    expect(ourReceipt.from.toLowerCase()).toBe(t.node.account.address.toLowerCase())
    expect(ourReceipt.status).toBe('reverted')

    // The stranger leaves the pool again (from the next epoch): the requests below are our node's.
    await rpc('evm_setAutomine', [true])
    await confirm(
      t.stranger,
      await t.stranger.writeContract({
        address: t.core.nodeRegistry,
        abi: NodeRegistry.abi,
        functionName: 'leave',
        args: [t.demo.modelId],
      }),
    )
    await mineToNextEpoch(t.owner, t.core.nodeRegistry)
  })

  test('error: an expired request is a non-retryable RequestExpiredError; fail still ends it', async () => {
    const r = await request()
    await increaseTime(t.owner, 3601)
    const err = await expectRejected(chain.fulfill(r, result), RequestExpiredError)
    expect(err.errorName).toBe('GatewayRequestExpired')
    expect(await chain.fail(r, 'Timeout', 'too late')).toMatchObject({ status: 'Failed', alreadySettled: false })
  })
})

describe('reads and lifecycle', () => {
  test('behavior: getRequestState and head', async () => {
    const r = await request()
    expect(await chain.getRequestState(r.requestId)).toEqual({ status: 'Pending', requester: t.user.account.address, deadline: r.deadline })
    expect((await chain.getRequestState('999999' as RequestId)).status).toBe('None')
    expect((await chain.head()).blockNumber).toBe(await t.owner.getBlockNumber({ cacheTime: 0 }))
    expect(chain.flags.reorgSafe).toBe(true)
    expect(toHex(chain.chainId)).toBe(toHex(t.anvil.chain.id))
  })

  test('error: after dispose every call fails with PluginError', async () => {
    const p = evmChain({
      chainName: 'anvil',
      chainId: t.anvil.chain.id,
      rpcUrl: t.anvil.rpcUrl,
      gateway: t.core.gateway,
      account: anvilAccount(1),
      cursorStore: new MemoryCursorStore(),
    })
    await p.dispose()
    const r = await request()
    await expect(p.fulfill(r, result)).rejects.toBeInstanceOf(PluginError)
    await expect(p.fail(r, 'Unknown', '')).rejects.toBeInstanceOf(PluginError)
    await expect(p.getRequestState(r.requestId)).rejects.toBeInstanceOf(PluginError)
  })
})
