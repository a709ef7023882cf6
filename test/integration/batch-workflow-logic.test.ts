/**
 * The batch workflow's branches, fast: the real workflow on the Temporal dev server with stand-in
 * activities (a fake prover, storage and chain) and stand-in members that only wait for their
 * answer. Members that join within the window are proven together in the smallest circuit that
 * fits, stored, delivered in one call and told their rows; a member alone in its window, or in a
 * batch whose delivery fails, is told to go on alone; a batch takes no more callback gas than one
 * message may carry; a spoke's batch is delivered with its rows' market request ids. Prover
 * routing: a batch circuit goes to the GPU class's queue when it needs more memory than the CPU
 * class offers (by its manifest's figure, or by what a prover measured), or when it is pinned there.
 */
import { fileURLToPath } from 'node:url'
import { Client, Connection } from '@temporalio/client'
import { Context } from '@temporalio/activity'
import { ApplicationFailure } from '@temporalio/common'
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker'
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { ModelRef } from '../../core/artifacts.ts'
import type { BatchOutcome, ProvenBatch } from '../../core/plugins.ts'
import type { ChainId, InferenceRequest, RequestKey } from '../../core/types.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'
import {
  joinBatchSignal,
  MAX_BATCH_CALLBACK_GAS,
  type BatchMember,
  type BatchResult,
  type BatchWorkflowInput,
} from '../../workflows/messages.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const QUEUE = 'batch-logic'
const GPU_QUEUE = 'batch-logic-gpu'
const MiB = 2 ** 20
const WINDOW_MS = 1500

let temporal: TemporalDevServer
let client: Client
let worker: Worker
let gpuWorker: Worker
let running: Promise<void>
let gpuRunning: Promise<void>

type Fulfil = (batch: ProvenBatch, marketRequestIds?: readonly (string | undefined)[]) => Promise<BatchOutcome>
const calls = {
  prove: [] as { size: number; members: number; queue?: string }[],
  fulfil: [] as { batch: ProvenBatch; marketIds?: readonly (string | undefined)[] }[],
}
/** Delivers every named row (replaced by some tests). */
const deliverAll: Fulfil = async (batch) => ({
  transactionHash: `0x${'ab'.repeat(32)}`,
  gasUsed: '1000000',
  rows: Object.fromEntries(batch.rows.filter((r) => r != null).map((r) => [r.key, { status: 'Fulfilled', alreadySettled: false }])),
})
let fulfil: Fulfil = deliverAll
/** The peak memory the fake prover reports for a proof of `size` rows (none: it measures nothing). */
let measure: (size: number) => number | undefined = () => undefined

const activities = {
  /** A fake prover: each row's output is the sum of its input, then the row's index. */
  async proveBatch(_model: ModelRef, size: number, members: readonly BatchMember[]) {
    const queue = Context.current().info.taskQueue
    calls.prove.push({ size, members: members.length, ...(queue !== QUEUE ? { queue } : {}) })
    const inputs = [...members.flatMap((m) => m.request.input), ...Array.from({ length: (size - members.length) * 2 }, () => '0')]
    const outputs = Array.from({ length: size }, (_, r) => [String(Number(inputs[2 * r]) + Number(inputs[2 * r + 1])), String(r)]).flat()
    const peak = measure(size)
    return {
      inputs,
      outputs,
      proof: '0x01' as const,
      proveMs: 1,
      provedOn: { queue, ...(peak !== undefined ? { peakMemoryBytes: peak } : {}) },
      attempt: 1,
    }
  },
  async storeBatch(batchId: string) {
    const artifact = (kind: string) => ({ storage: 'test', id: `${kind}:${batchId}`, sha256: '00', bytes: 1 })
    return { output: artifact('output'), proof: artifact('proof'), ms: 1, attempt: 1 }
  },
  async fulfillBatch(batch: ProvenBatch, marketIds?: readonly (string | undefined)[]) {
    calls.fulfil.push({ batch, ...(marketIds ? { marketIds } : {}) })
    return { ...(await fulfil(batch, marketIds)), ms: 1, attempt: 1 }
  },
}

beforeAll(async () => {
  temporal = await startTemporalDevServer()
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) })
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address: temporal.address }),
    taskQueue: QUEUE,
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../support/workflows/batch-members.ts', import.meta.url)),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    }),
    activities,
  })
  running = worker.run()
  // A prover of the GPU class: the same activities, polling its own queue.
  gpuWorker = await Worker.create({
    connection: await NativeConnection.connect({ address: temporal.address }),
    taskQueue: GPU_QUEUE,
    activities: { proveBatch: activities.proveBatch },
  })
  gpuRunning = gpuWorker.run()
}, 120_000)

afterAll(async () => {
  worker?.shutdown()
  gpuWorker?.shutdown()
  await running
  await gpuRunning
  await temporal?.stop()
})

const model: ModelRef = {
  modelId: `0x${'0d'.repeat(32)}`,
  name: 'demo',
  version: 1,
  artifacts: {
    manifestHash: `0x${'01'.repeat(32)}`,
    index: `0x${'02'.repeat(32)}`,
    compiledHash: `0x${'03'.repeat(32)}`,
    vkHash: `0x${'04'.repeat(32)}`,
    settingsHash: `0x${'05'.repeat(32)}`,
    srsHash: `0x${'06'.repeat(32)}`,
  },
  inputVisibility: 'public',
  outputVisibility: 'public',
}

let nextGateway = 1
/** `n` requests of one gateway (each test its own, so each its own batch workflow). */
function requests(n: number, options: { callbackGasLimit?: number; spoke?: boolean; after?: BatchMember } = {}): BatchMember[] {
  // `after`: more requests of the same gateway (the same batch workflow), numbered on from it.
  const gateway = options.after?.request.gateway ?? (`0x${String(nextGateway++).padStart(40, '0')}` as const)
  const from = options.after ? Number(options.after.request.requestId) : 0
  return Array.from({ length: n }, (_, j) => j + from).map((i) => ({
    request: {
      key: `req:31337:${gateway}:${i + 1}` as RequestKey,
      chainId: 31337 as ChainId,
      gateway,
      requestId: String(i + 1),
      modelId: model.modelId,
      modelVersion: 1,
      requester: `0x${'0e'.repeat(20)}`,
      input: [String(i), String(10 * i)],
      callbackGasLimit: options.callbackGasLimit ?? 200_000,
      escrow: '1',
      deadline: Math.floor(Date.now() / 1000) + 3600,
      seenAt: { blockNumber: '1', blockHash: `0x${'00'.repeat(32)}`, transactionHash: `0x${'00'.repeat(32)}`, logIndex: 0 },
      ...(options.spoke
        ? { route: { hubChain: 'hub', hubChainId: 31337 as ChainId, market: `0x${'0f'.repeat(20)}`, originDomain: 31338 } }
        : {}),
    } as InferenceRequest,
    ...(options.spoke ? { marketRequestId: String(100 + i) } : {}),
  }))
}

/** Starts a waiting member per request, then joins each to its batch workflow as a request workflow does; returns their answers. */
async function join(members: readonly BatchMember[], overrides: Partial<BatchWorkflowInput> = {}): Promise<BatchResult[]> {
  const handles = await Promise.all(
    members.map((m) => client.workflow.start('memberWorkflow', { workflowId: m.request.key, taskQueue: QUEUE, args: [] })),
  )
  const first = members[0]!.request
  const input: BatchWorkflowInput = {
    chainId: first.chainId,
    gateway: first.gateway,
    model,
    sizes: [16, 64],
    batching: { windowMs: WINDOW_MS },
    queues: { chainIo: QUEUE, inference: QUEUE, prover: QUEUE },
    ...overrides,
  }
  for (const m of members)
    await client.workflow.signalWithStart('batchWorkflow', {
      workflowId: `batch:${first.chainId}:${first.gateway}:${model.modelId}:1`,
      taskQueue: QUEUE,
      args: [input],
      signal: joinBatchSignal,
      signalArgs: [m],
    })
  return Promise.all(handles.map((h) => h.result() as Promise<BatchResult>))
}

const clear = () => {
  calls.prove.length = 0
  calls.fulfil.length = 0
  fulfil = deliverAll
  measure = () => undefined
}

test('members that join within the window are proven in the smallest circuit that fits, stored, delivered in one call and told their rows', async () => {
  clear()
  const members = requests(3)
  const results = await join(members)
  expect(calls.prove).toEqual([{ size: 16, members: 3 }])
  expect(calls.fulfil).toHaveLength(1)
  const { batch } = calls.fulfil[0]!
  expect(batch.size).toBe(16)
  // Padding rows: null (JSON has no undefined in arrays).
  expect(batch.rows.map((r) => r?.key ?? null)).toEqual([...members.map((m) => m.request.key), ...Array.from({ length: 13 }, () => null)])
  expect(batch.storage?.proof.id).toMatch(/^proof:batch:/)
  for (const [i, r] of results.entries()) {
    expect(r).toMatchObject({ kind: 'delivered', size: 16, rows: 3, row: { status: 'Fulfilled' }, transactionHash: `0x${'ab'.repeat(32)}` })
    if (r.kind === 'delivered') {
      expect(r.output).toEqual([String(11 * i), String(i)])
      expect(r.storage?.output.id).toBe(`output:${r.batchId}`)
    }
  }
})

test('a member alone in its window goes on alone, without a proof', async () => {
  clear()
  const [result] = await join(requests(1))
  expect(result).toEqual({ kind: 'solo', reason: 'alone in its batch window' })
  expect(calls.prove).toEqual([])
})

test('when the batch cannot be delivered (a rejection), each member is told to go on alone, with the reason', async () => {
  clear()
  fulfil = async () => {
    throw ApplicationFailure.nonRetryable('the gateway refused the batch', 'GatewayRejectedError')
  }
  const results = await join(requests(2))
  for (const r of results) {
    expect(r.kind).toBe('solo')
    if (r.kind === 'solo') expect(r.reason).toMatch(/failed: the gateway refused the batch/)
  }
})

test('a batch takes no more callback gas than one message may carry: the member past it waits for the next batch', async () => {
  clear()
  const gas = Math.floor(MAX_BATCH_CALLBACK_GAS / 2) - 1
  const results = await join(requests(3, { callbackGasLimit: gas }))
  expect(calls.prove).toEqual([{ size: 16, members: 2 }])
  expect(results.map((r) => r.kind)).toEqual(['delivered', 'delivered', 'solo'])
})

test("a spoke's batch is delivered with each row's market request id (padding rows none)", async () => {
  clear()
  const members = requests(2, { spoke: true })
  const results = await join(members)
  expect(results.map((r) => r.kind)).toEqual(['delivered', 'delivered'])
  expect(calls.fulfil[0]!.marketIds).toEqual(['100', '101', ...Array.from({ length: 14 }, () => null)])
})

/** Routing with a GPU class: CPU provers offer 500 MiB a proof; the 16-row circuit needs 200 MiB, the 64-row one 760 MiB. */
const routed = (pin?: Record<string, 'cpu' | 'gpu'>): Partial<BatchWorkflowInput> => ({
  queues: {
    chainIo: QUEUE,
    inference: QUEUE,
    prover: QUEUE,
    routing: { gpu: GPU_QUEUE, cpuMemoryBytes: 500 * MiB, ...(pin ? { pin } : {}) },
  },
  proving: [
    { size: 16, memoryBytes: 200 * MiB },
    { size: 64, memoryBytes: 760 * MiB },
  ],
})

test('a batch circuit that needs more memory than a CPU prover offers goes to the GPU class; one that fits stays on the CPU class', async () => {
  clear()
  const small = await join(requests(3), routed())
  const big = await join(requests(20), routed())
  expect(calls.prove).toEqual([
    { size: 16, members: 3 },
    { size: 64, members: 20, queue: GPU_QUEUE },
  ])
  expect(small[0]).toMatchObject({
    kind: 'delivered',
    prover: { queue: QUEUE, hardware: 'cpu', reason: "needs 200 MiB, within the CPU provers' 500 MiB" },
  })
  expect(big[0]).toMatchObject({
    kind: 'delivered',
    prover: { queue: GPU_QUEUE, hardware: 'gpu', reason: "needs 760 MiB, over the CPU provers' 500 MiB" },
  })
})

test("a batch circuit a prover measured above the CPU class's memory goes to the GPU class from the next batch on", async () => {
  clear()
  measure = (size) => (size === 16 ? 600 * MiB : undefined)
  const first = requests(2)
  const before = await join(first, routed())
  const after = await join(requests(2, { after: first[1]! }), routed())
  expect(calls.prove).toEqual([
    { size: 16, members: 2 },
    { size: 16, members: 2, queue: GPU_QUEUE },
  ])
  expect(before[0]).toMatchObject({ kind: 'delivered', prover: { hardware: 'cpu', peakMemoryBytes: 600 * MiB } })
  expect(after[0]).toMatchObject({ kind: 'delivered', prover: { hardware: 'gpu', reason: "needs 600 MiB, over the CPU provers' 500 MiB" } })
})

test('a pin names the class outright: a model size pinned to the GPU class goes there whatever its memory', async () => {
  clear()
  const results = await join(requests(2), routed({ 'demo@16': 'gpu' }))
  expect(calls.prove).toEqual([{ size: 16, members: 2, queue: GPU_QUEUE }])
  expect(results[0]).toMatchObject({ kind: 'delivered', prover: { queue: GPU_QUEUE, reason: 'pinned to gpu (demo@16)' } })
})
