/**
 * The batch workflow's branches, fast: the real workflow on the Temporal dev server with stand-in
 * activities (a fake prover, storage and chain) and stand-in members that only wait for their
 * answer. Members that join within the window are proven together in the smallest circuit that
 * fits, stored, delivered in one call and told their rows; a member alone in its window, or in a
 * batch whose delivery fails, is told to go on alone; a batch takes no more callback gas than one
 * message may carry; a spoke's batch is delivered with its rows' market request ids.
 */
import { fileURLToPath } from 'node:url'
import { Client, Connection } from '@temporalio/client'
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
const WINDOW_MS = 1500

let temporal: TemporalDevServer
let client: Client
let worker: Worker
let running: Promise<void>

type Fulfil = (batch: ProvenBatch, marketRequestIds?: readonly (string | undefined)[]) => Promise<BatchOutcome>
const calls = {
  prove: [] as { size: number; members: number }[],
  fulfil: [] as { batch: ProvenBatch; marketIds?: readonly (string | undefined)[] }[],
}
/** Delivers every named row (replaced by some tests). */
const deliverAll: Fulfil = async (batch) => ({
  transactionHash: `0x${'ab'.repeat(32)}`,
  gasUsed: '1000000',
  rows: Object.fromEntries(batch.rows.filter((r) => r != null).map((r) => [r.key, { status: 'Fulfilled', alreadySettled: false }])),
})
let fulfil: Fulfil = deliverAll

const activities = {
  /** A fake prover: each row's output is the sum of its input, then the row's index. */
  async proveBatch(_model: ModelRef, size: number, members: readonly BatchMember[]) {
    calls.prove.push({ size, members: members.length })
    const inputs = [...members.flatMap((m) => m.request.input), ...Array.from({ length: (size - members.length) * 2 }, () => '0')]
    const outputs = Array.from({ length: size }, (_, r) => [String(Number(inputs[2 * r]) + Number(inputs[2 * r + 1])), String(r)]).flat()
    return { inputs, outputs, proof: '0x01' as const, proveMs: 1, attempt: 1 }
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
}, 120_000)

afterAll(async () => {
  worker?.shutdown()
  await running
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
function requests(n: number, options: { callbackGasLimit?: number; spoke?: boolean } = {}): BatchMember[] {
  const gateway = `0x${String(nextGateway++).padStart(40, '0')}` as const
  return Array.from({ length: n }, (_, i) => ({
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
async function join(members: readonly BatchMember[]): Promise<BatchResult[]> {
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
