/**
 * `@sertn/client` against the real local cross-chain stack: a hub and a spoke joined over
 * Hyperlane (real contracts, local agents), the node's workers in this process, arlocal. A model is
 * registered with its artifacts uploaded to arlocal (as `sertn model register` does), so that
 * verifyResult reads the registered circuit and the stored proof from storage. `sertn verify`
 * runs as a child process against the same stack.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import type { Address, Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ExampleClassifier, InferenceGateway, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import { followClassification, sendClassifyRequest } from '../../cli/request.ts'
import { Progress } from '../../cli/progress.ts'
import { joinPool, mineToNextEpoch } from '../../chains/evm/nodes.ts'
import { registerModelOnNetwork, type NetworkRegistration } from '../../chains/evm/register-model.ts'
import { arweaveStorage, createFundedWallet } from '../../plugins/storage/arweave/index.ts'
import {
  CallbackGasLimitTooHighError,
  InputShapeError,
  InsufficientPaymentError,
  ModelNotFoundError,
  sertnActions,
  type Hop,
  type StorageOption,
  WaitTimeoutError,
} from '../../client/index.ts'
import { runSertn } from '../support/cli.ts'
import { deploySpokeConsumer, requestOnSpoke, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, CALLBACK_GAS, DEMO_INPUT, startWorkers, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

let stack: CrossChainStack
let workers: InProcessWorkers
let model: NetworkRegistration
let consumer: Address

const spoke = () => stack.network.spokes[0]!
const storage = (): StorageOption => ({ gatewayUrl: stack.arlocal.url })
/** The spoke's user, with the Sertn actions on the spoke's gateway, following the hub. */
const client = () =>
  stack.spoke.user.extend(sertnActions({ gateway: spoke().spoke.gateway, storage: storage(), hub: { client: stack.hub.user } }))

beforeAll(async () => {
  stack = await startCrossChainStack()
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  const { jwk } = await createFundedWallet(undefined, stack.arlocal.url)
  const publisher = arweaveStorage({ port: stack.arlocal.port, wallet: jwk, mineAfterPost: true })
  try {
    model = await registerModelOnNetwork({
      model: 'sertn-mlp-demo',
      name: 'client-mlp',
      chains: [
        { name: stack.network.hub.name, client: stack.hub.owner, registry: stack.network.hub.core.registry, hub: true },
        { name: spoke().name, client: stack.spoke.owner, registry: spoke().spoke.registry },
      ],
      storage: publisher,
      allowInsecureSrs: true,
    })
  } finally {
    await publisher.dispose()
  }
  const nodeRegistry = stack.network.hub.core.nodeRegistry
  await joinPool(stack.local.chains[stack.network.hub.name]!.node, nodeRegistry, { models: [model.modelId] })
  await mineToNextEpoch(stack.hub.owner, nodeRegistry)
  consumer = await deploySpokeConsumer(stack)
}, 600_000)

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const SPOKE_HOPS = ['sentToHub', 'recordedOnHub', 'assigned', 'dispatched', 'fulfilled', 'receiptSent', 'settled']

describe('the client on the local stack', () => {
  let served: { key: string; requestId: bigint; hops: Hop[]; txHash: Hex; price: bigint }

  test('default: a request from the spoke is awaited to its verified callback, with the hops in order', async () => {
    const c = client()
    const price = await c.quote({ modelId: model.modelId, callbackGasLimit: CALLBACK_GAS })
    const made = await c.requestInference({ modelId: model.modelId, input: DEMO_INPUT, callbackGasLimit: CALLBACK_GAS })
    expect(made.price).toBe(price)
    expect(made.key).toBe(`req:${spoke().chainId}:${spoke().spoke.gateway.toLowerCase()}:${made.requestId}`)
    await stack.spoke.user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never }) // the watcher's confirmation

    // A consumer contract's request beside it: its callback runs.
    const viaConsumer = await requestOnSpoke(stack, consumer, { modelId: model.modelId })
    const progress: Hop[] = []
    const [mine, theirs] = await Promise.all([
      c.waitForResult({ key: made.key, until: 'settled', onProgress: (h) => progress.push(h), timeoutMs: 400_000, pollingIntervalMs: 300 }),
      c.waitForResult({ requestId: viaConsumer.id, timeoutMs: 400_000, pollingIntervalMs: 300 }),
    ])
    expect(progress.map((h) => h.hop)).toEqual(SPOKE_HOPS)
    expect(mine.hops).toEqual(progress)
    const hub = stack.network.hub.chainId
    expect(progress.map((h) => h.chainId)).toEqual([spoke().chainId, hub, hub, hub, spoke().chainId, spoke().chainId, hub])
    // The request's own transaction sent it to the hub; the receipt left with the delivery.
    expect(progress[0]!.transactionHash).toBe(made.transactionHash)
    expect(progress[5]!.transactionHash).toBe(progress[4]!.transactionHash)
    const marketIds = new Set(progress.slice(1, 4).map((h) => h.marketRequestId))
    expect(marketIds.size).toBe(1)
    expect(progress[6]!.status).toBe('Fulfilled')
    // Verified on the spoke: an account has no code to call back; the consumer's callback succeeded.
    expect(mine.request.status).toBe('Fulfilled')
    expect(mine.request.fulfilled.callbackStatus).toBe('Skipped')
    expect(theirs.request.fulfilled.callbackStatus).toBe('Succeeded')
    const recorded = await stack.spoke.user.readContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: 'outputOf',
      args: [viaConsumer.id],
    })
    expect(recorded).toEqual(theirs.request.fulfilled.output)
    served = { key: made.key, requestId: made.requestId, hops: progress, txHash: made.transactionHash, price }
  }, 600_000)

  test('behavior: a hub request: awaited on the hub with its assignment; a wait gives up at its timeout or its signal', async () => {
    const hub = stack.hub.user.extend(sertnActions({ gateway: stack.network.hub.core.gateway }))
    const made = await hub.requestInference({ modelId: model.modelId, input: DEMO_INPUT, callbackGasLimit: CALLBACK_GAS })
    await stack.hub.user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    const early = await hub.waitForResult({ key: made.key, timeoutMs: 1, pollingIntervalMs: 250 }).catch((e: unknown) => e)
    expect(early).toBeInstanceOf(WaitTimeoutError)
    expect((early as Error).message).toMatch(new RegExp(`^request ${made.key}: no result within 1 ms`))
    const aborted = new AbortController()
    aborted.abort(new Error('stop'))
    await expect(hub.waitForResult({ key: made.key, signal: aborted.signal })).rejects.toThrow(/aborted/)

    const hops: Hop[] = []
    const { request } = await hub.waitForResult({
      key: made.key,
      onProgress: (h) => hops.push(h),
      timeoutMs: 300_000,
      pollingIntervalMs: 300,
    })
    expect(hops.map((h) => h.hop)).toEqual(['assigned', 'fulfilled'])
    expect(hops.every((h) => h.chainId === stack.network.hub.chainId)).toBe(true)
    expect(hops[0]!.node).toBe(request.fulfilled.node)
    expect(request).toMatchObject({ spoke: false, status: 'Fulfilled', fulfilled: { callbackStatus: 'Skipped' } })
  }, 300_000)

  test('default: getRequest and getModel return what the chain records', async () => {
    expect(served, 'needs the served request').toBeDefined()
    const c = client()
    const m = await c.getModel({ modelId: model.modelId })
    expect(m).toMatchObject({
      modelId: model.modelId,
      name: 'client-mlp',
      version: 1,
      active: true,
      inputShape: [1, 4],
      outputShape: [1, 3],
      inputLength: 4,
      outputLength: 3,
      inputVisibility: 'public',
      outputVisibility: 'public',
      insecureSrs: true,
      artifacts: model.artifacts,
      artifactIndexId: model.index,
      registry: spoke().spoke.registry,
    })
    expect(m.inputScale).toBe(model.chains[spoke().name]!.manifest.inputScale)
    expect(m.pricing.fee).toBe(BigInt(m.pricing.computeUnits) * m.pricing.unitPrice)
    expect(m.pricing.fee).toBeGreaterThan(0n)

    const r = await c.getRequest({ key: served.key })
    const fulfilled = served.hops.find((h) => h.hop === 'fulfilled')!
    expect(r).toMatchObject({
      key: served.key,
      requestId: served.requestId,
      status: 'Fulfilled',
      spoke: true,
      requester: stack.spoke.user.account.address,
      modelId: model.modelId,
      modelVersion: 1,
      callbackGasLimit: CALLBACK_GAS,
      input: [...DEMO_INPUT],
      requested: { transactionHash: served.txHash },
      sentToHub: { transactionHash: served.txHash },
      receiptSent: { status: 'Fulfilled', transactionHash: fulfilled.transactionHash },
    })
    expect(r.fulfilled).toMatchObject({
      transactionHash: fulfilled.transactionHash,
      node: fulfilled.node,
      callbackStatus: 'Skipped',
    })
    expect(r.fulfilled!.output).toHaveLength(3)
    expect(r.fulfilled!.storage.proofId).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(r.fulfilled!.storage.outputId).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(r.failed).toBeUndefined()
    // The same through the plain action, by gateway and id.
    const { getRequest } = await import('../../client/index.ts')
    expect(await getRequest(stack.spoke.user, { gateway: spoke().spoke.gateway, requestId: served.requestId })).toEqual(r)
  }, 120_000)

  test('default: verifyResult re-checks the delivered result: valid; invalid for a tampered proof and for a mismatched output, naming the part', async () => {
    expect(served, 'needs the served request').toBeDefined()
    const c = client()
    const ok = await c.verifyResult({ key: served.key })
    expect(ok.valid, ok.reason).toBe(true)
    expect(Object.values(ok.checks).every((x) => x.ok)).toBe(true)
    expect(ok.instances.output).toEqual(ok.expected.output)
    expect(ok.instances.input).toEqual(ok.expected.input)

    // A storage that serves the proof with one byte flipped.
    const request = await c.getRequest({ key: served.key })
    const proofId = request.fulfilled!.storage.proofId!
    const tampering: StorageOption = {
      fetch: async (id) => {
        const res = await fetch(`${stack.arlocal.url}/${id}`)
        const bytes = new Uint8Array(await res.arrayBuffer())
        if (id === proofId) bytes[100] = bytes[100]! ^ 0x01
        return bytes
      },
    }
    const tampered = await c.verifyResult({ key: served.key, storage: tampering })
    expect(tampered.valid).toBe(false)
    expect(tampered.failed).toBe('proof')
    expect(tampered.reason).toMatch(/does not verify/)
    expect(tampered.checks.input.ok && tampered.checks.output.ok && tampered.checks.artifacts.ok).toBe(true)

    // A storage whose output document (the proof's instances) is garbage: the proof still verifies
    // against the request's input and the delivered output, but the document's instances are unknown.
    const outputId = request.fulfilled!.storage.outputId!
    const garbled: StorageOption = {
      fetch: async (id) =>
        id === outputId
          ? new TextEncoder().encode('not json')
          : new Uint8Array(await (await fetch(`${stack.arlocal.url}/${id}`)).arrayBuffer()),
    }
    const unreadable = await c.verifyResult({ key: served.key, storage: garbled })
    expect(unreadable).toMatchObject({ valid: false, failed: 'input', checks: { proof: { ok: true }, artifacts: { ok: true } } })
    expect(unreadable.reason).toMatch(/is not JSON/)

    // An output other than the one the proof was made for.
    const other = request.fulfilled!.output.map((x, i) => (i === 1 ? x + 1n : x))
    const mismatched = await c.verifyResult({ key: served.key, output: other })
    expect(mismatched.valid).toBe(false)
    expect(mismatched.failed).toBe('output')
    expect(mismatched.reason).toMatch(/output instances are not the given output: element 1/)
    expect(mismatched.checks.proof.ok).toBe(true)
  }, 180_000)

  test('default: sertn verify <key> prints what verifyResult checked; exit 1 when storage serves no such proof', async () => {
    expect(served, 'needs the served request').toBeDefined()
    const config = join(stack.dataDir, 'client-verify.config.json')
    await writeFile(config, JSON.stringify(stack.config))
    const running = new Set<number>()
    const json = await runSertn(['verify', served.key, '--config', config, '--json'], { running, timeoutMs: 120_000 })
    expect(json.code, json.out).toBe(0)
    const lines = json.out.split('\n')
    const doc = JSON.parse(lines.slice(lines.indexOf('{'), lines.lastIndexOf('}') + 1).join('\n')) as Record<string, unknown>
    const r = await client().getRequest({ key: served.key })
    expect(doc).toMatchObject({
      key: served.key,
      valid: true,
      proofId: r.fulfilled!.storage.proofId,
      outputId: r.fulfilled!.storage.outputId,
      transactionHash: r.fulfilled!.transactionHash,
      model: { modelId: model.modelId, name: 'client-mlp', version: 1 },
      input: DEMO_INPUT.map(String),
      output: r.fulfilled!.output.map(String),
      checks: { artifacts: { ok: true }, proof: { ok: true }, input: { ok: true }, output: { ok: true } },
    })

    const human = await runSertn(['verify', served.key, '--config', config], { running, timeoutMs: 120_000 })
    expect(human.code, human.out).toBe(0)
    for (const part of ['artifacts', 'proof', 'input', 'output']) expect(human.out).toMatch(new RegExp(`✓ ${part}\\s`))
    expect(human.out).toMatch(/^valid$/m)

    // A storage gateway that does not hold the artifacts: a storage error, not a verdict.
    const elsewhere = await runSertn(['verify', served.key, '--config', config, '--storage', 'http://127.0.0.1:9'], {
      running,
      timeoutMs: 120_000,
    })
    expect(elsewhere.code).toBe(1)
    expect(elsewhere.out).toMatch(/StorageReadError|cannot read/)
  }, 300_000)

  test('default: sertn request’s path (the example dApp on the spoke) quotes, sends and reads its verified result through the client', async () => {
    const { user } = stack.spoke
    const gateway = spoke().spoke.gateway
    const dapp = await deployContract(user, ExampleClassifier, [gateway, model.modelId])
    const progress = new Progress()
    const sent = await sendClassifyRequest(progress, {
      chain: 'spoke',
      user,
      gateway,
      dapp,
      model: 'sertn-mlp-demo',
      features: [0.5, -1.25, 2, 0.75],
      mine: true,
    })
    expect(sent.price).toBe(await client().quote({ modelId: model.modelId, callbackGasLimit: CALLBACK_GAS }))
    const followed = await followClassification(progress, {
      operators: [{ client: stack.client, namespace: stack.config.temporal.namespace }],
      user,
      sent,
      confirmations: 1,
      prover: stack.config.prover.plugin,
      arlocalUrl: stack.arlocal.url,
    })
    expect(followed.ok).toBe(true)
    const r = await client().getRequest({ key: sent.key })
    expect(r.fulfilled?.callbackStatus).toBe('Succeeded')
  }, 300_000)

  test('error: a wrong model id, an underpaid request and a callback gas limit above the cap each surface a typed error that says what to change', async () => {
    const c = client()
    const wrong = `0x${'77'.repeat(32)}` as Hex
    const unknown = await c.requestInference({ modelId: wrong, input: DEMO_INPUT, callbackGasLimit: CALLBACK_GAS }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(ModelNotFoundError)
    expect((unknown as ModelNotFoundError).errorName).toBe('GatewayUnknownModel')
    expect((unknown as Error).message).toContain(`model ${wrong} is not registered on this chain's registry: check the model id (getModel)`)
    await expect(c.getModel({ modelId: wrong })).rejects.toBeInstanceOf(ModelNotFoundError)

    const price = await c.quote({ modelId: model.modelId, callbackGasLimit: CALLBACK_GAS })
    const underpaid = await c
      .requestInference({ modelId: model.modelId, input: DEMO_INPUT, callbackGasLimit: CALLBACK_GAS, value: price - 1n })
      .catch((e: unknown) => e)
    expect(underpaid).toBeInstanceOf(InsufficientPaymentError)
    expect((underpaid as InsufficientPaymentError).required).toBe(price)
    expect((underpaid as Error).message).toContain(
      `pay at least ${price.toLocaleString('en-US')} wei (quote(modelId, callbackGasLimit)); ${(price - 1n).toLocaleString('en-US')} wei was sent`,
    )

    const cfg = await stack.spoke.user.readContract({ address: spoke().spoke.gateway, abi: InferenceGateway.abi, functionName: 'config' })
    const tooMuch = cfg.maxCallbackGasLimit + 1
    const gas = await c.requestInference({ modelId: model.modelId, input: DEMO_INPUT, callbackGasLimit: tooMuch }).catch((e: unknown) => e)
    expect(gas).toBeInstanceOf(CallbackGasLimitTooHighError)
    expect((gas as Error).message).toContain(
      `callbackGasLimit ${tooMuch.toLocaleString('en-US')} is above this gateway's cap ${cfg.maxCallbackGasLimit.toLocaleString('en-US')}: lower it`,
    )

    // The input is checked against the registered shape before anything is sent.
    const before = await stack.spoke.user.getTransactionCount({ address: stack.spoke.user.account.address })
    await expect(
      c.requestInference({ modelId: model.modelId, input: DEMO_INPUT.slice(0, 3), callbackGasLimit: CALLBACK_GAS }),
    ).rejects.toBeInstanceOf(InputShapeError)
    expect(await stack.spoke.user.getTransactionCount({ address: stack.spoke.user.account.address })).toBe(before)
  }, 120_000)
})

describe('a result settled in a batch', () => {
  test('behavior: verifyResult re-checks a batch proof against the batch circuit, with the request’s own row', async () => {
    // The node again, now batching (native prover): two requests inside one window share a proof.
    await workers.stop()
    workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], {
      config: { ...stack.config, prover: { ...stack.config.prover, plugin: 'ezkl-native' }, batching: { enabled: true, windowMs: 4_000 } },
    })
    const c = client()
    const first = await c.requestInference({ modelId: model.modelId, input: DEMO_INPUT, callbackGasLimit: CALLBACK_GAS })
    const other = DEMO_INPUT.map((x, i) => (i === 0 ? -x : x))
    const second = await c.requestInference({ modelId: model.modelId, input: other, callbackGasLimit: CALLBACK_GAS })
    await stack.spoke.user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    const done = await Promise.all([first, second].map((m) => c.waitForResult({ key: m.key, timeoutMs: 400_000, pollingIntervalMs: 300 })))
    expect(done[0]!.request.fulfilled.storage.proofId).toBe(done[1]!.request.fulfilled.storage.proofId)

    const [a, b] = await Promise.all([c.verifyResult({ key: first.key }), c.verifyResult({ key: second.key })])
    for (const v of [a, b]) {
      expect(v.valid, v.reason).toBe(true)
      expect(v.batch?.size).toBeGreaterThan(1)
      expect(v.checks.artifacts.detail).toMatch(/batch circuit/)
    }
    expect(new Set([a.batch!.row, b.batch!.row]).size).toBe(2)
    // One request's output is not the other's.
    const swapped = await c.verifyResult({ key: first.key, output: done[1]!.request.fulfilled.output })
    expect(swapped.valid).toBe(false)
    expect(swapped.failed).toBe('output')
  }, 600_000)
})
