/**
 * A request id reused after a reorg deeper than the confirmations, through the workflows on the real
 * local stack (anvil, the Temporal dev server with Sertn's search attributes, arlocal, workers in
 * this process, a real proof):
 * - request A is confirmed and its workflow starts; a reorg drops A's transaction; request B, another
 *   transaction with another input, gets A's id and key. B gets a workflow of its own (the id names
 *   the event's transaction), A's is terminated, and B is fulfilled once with B's input — before,
 *   B's start was "already seen" and A's workflow proved A's input and failed B;
 * - B's event delivered again (a watcher that lost its cursor re-reads the chain) starts nothing;
 * - lookups by key (`getRequestStatus`, `waitForOutcome`) show the newest workflow and name the other;
 * - the workflows are listed by their search attributes through the client's visibility API
 *   (`SertnChain = … AND SertnStage = …`, `SertnRequestKey = …`), and their stage, model and node
 *   are kept in them; the new workflow's history, with those upserts, replays.
 */
import { rm } from 'node:fs/promises'
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker'
import type { Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { InferenceGateway, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { waitFor } from '../../core/process.ts'
import { getRequestStatus, requestWorkflowHandle, startRequestWorkflow, waitForOutcome } from '../../workflows/client.ts'
import { requestWorkflowIdOf, SEARCH_ATTRIBUTES, type RequestWorkflowInput } from '../../workflows/messages.ts'
import { taskQueuesOf } from '../../workflows/worker/index.ts'
import {
  boundedTeardown,
  DEMO_INPUT,
  DEMO_INPUT_SCALE,
  failedEventsOf,
  fulfilledEventsOf,
  mine,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  watcherCursorBlock,
  watcherCursorFile,
  within,
  type InProcessWorkers,
  type TestStack,
  workflowBundle,
} from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

let stack: TestStack
/** The chain-io worker and the watcher (the workflows' own queue). */
let chainIo: InProcessWorkers | undefined
/** The inference and prover workers: started once the reorg is done, so that A's workflow waits for them meanwhile. */
let provers: InProcessWorkers | undefined
let consumer: Hex

beforeAll(async () => {
  stack = await startTestStack({ confirmations: 1 })
  chainIo = await startWorkers(stack, ['chain-io'])
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([() => provers?.stop(), () => chainIo?.stop(), () => stack?.stop()], {
    processGroups: () => stack?.processGroups() ?? [],
  })
})

const rpc = (method: string, params: unknown[]) => stack.chain.owner.request({ method: method as never, params: params as never })
const head = () => stack.chain.owner.getBlockNumber({ cacheTime: 0 })
const INPUT_B = [1, 0.25, -0.5, 1.5].map((x) => quantize(x, DEMO_INPUT_SCALE))

/** The request a workflow was started with. */
async function inputOf(workflowId: string): Promise<RequestWorkflowInput['request']> {
  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory()
  const payload = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!
  return stack.client.options.loadedDataConverter.payloadConverter.fromPayload<RequestWorkflowInput>(payload).request
}

/** The ids of the workflows that `query` lists (visibility lags a moment: waits until `expected` holds). */
async function listed(query: string, expected: (ids: string[]) => boolean): Promise<string[]> {
  let ids: string[] = []
  await waitFor(
    `visibility to list ${query}`,
    async () => {
      ids = []
      for await (const w of stack.client.workflow.list({ query })) ids.push(w.workflowId)
      return expected(ids)
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  )
  return ids
}

describe('a request id reused after a reorg', () => {
  test('behavior: the new request gets its own workflow and is fulfilled with its input; the dropped one’s workflow is terminated; lookups by key show the newest', async () => {
    const chainId = stack.chain.anvil.chain.id
    // A: confirmed, its workflow started; it waits at `proving` (no inference or prover worker yet).
    const a = await requestFromConsumer(stack, consumer, { input: DEMO_INPUT })
    await mine(stack, 1)
    const idA = requestWorkflowIdOf({ key: a.key, seenAt: { transactionHash: a.hash } })
    await waitFor('A’s workflow to wait for its proof', async () => (await getRequestStatus(stack.client, a.key)).stage === 'proving', {
      timeoutMs: 30_000,
      intervalMs: 200,
    })
    expect((await getRequestStatus(stack.client, a.key)).workflowId).toBe(idA)

    // A reorg deeper than the confirmations drops A's block and the one on top.
    await rpc('anvil_reorg', [2, []])
    await expect(stack.chain.owner.getTransactionReceipt({ hash: a.hash })).rejects.toThrow()

    // B: another transaction and input, the same id and key.
    const b = await requestFromConsumer(stack, consumer, { input: INPUT_B })
    expect(b.id).toBe(a.id)
    expect(b.key).toBe(a.key)
    expect(b.hash).not.toBe(a.hash)
    await mine(stack, 1)
    const idB = requestWorkflowIdOf({ key: b.key, seenAt: { transactionHash: b.hash } })
    await waitFor(
      'A’s workflow to be terminated',
      async () => (await stack.client.workflow.getHandle(idA).describe()).status.name === 'TERMINATED',
      { timeoutMs: 30_000, intervalMs: 200 },
    )
    expect((await inputOf(idB)).input).toEqual(INPUT_B.map(String))
    expect(chainIo!.logs.filter((l) => l.includes(`request ${b.id} → already seen`))).toEqual([])

    provers = await startWorkers(stack, ['inference', 'prover'])
    const outcome = await within(90_000, 'B’s outcome', waitForOutcome(stack.client, b.key, 20_000))
    expect(outcome.stage).toBe('fulfilled')
    // Fulfilled once, with B's output; never failed.
    expect(await fulfilledEventsOf(stack, b.id)).toHaveLength(1)
    expect(await failedEventsOf(stack, b.id)).toHaveLength(0)
    const delivered = await stack.chain.user.readContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: 'outputOf',
      args: [b.id],
    })
    expect(delivered.map(String)).toEqual(outcome.output)
    const onChain = await stack.chain.user.readContract({
      address: stack.chain.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'getRequest',
      args: [b.id],
    })
    expect(onChain.requester).toBe(consumer)

    // Lookups by key: the newest workflow, and the other named.
    const status = await getRequestStatus(stack.client, b.key)
    expect(status).toMatchObject({ stage: 'fulfilled', running: false, workflowId: idB, others: [idA] })
    expect((await requestWorkflowHandle(stack.client, b.key)).workflowId).toBe(idB)

    // The same event again: started directly, and from a watcher that lost its cursor and re-reads
    // the chain from block 0 (where A is gone and B is).
    const queues = taskQueuesOf(stack.config)
    expect(await startRequestWorkflow(stack.client, await inputOf(idB), queues)).toBe('duplicate')
    await chainIo!.stop()
    await rm(watcherCursorFile(stack))
    chainIo = await startWorkers(stack, ['chain-io'])
    await mine(stack, 1)
    const tip = await head()
    await waitFor('the watcher to re-read the chain', async () => (await watcherCursorBlock(stack)) >= tip - 1n, { timeoutMs: 30_000 })
    expect(chainIo.logs.filter((l) => l.endsWith(`: request ${b.id} → already seen`))).toHaveLength(1)
    expect((await stack.client.workflow.getHandle(idB).describe()).status.name).toBe('COMPLETED')
    expect(await fulfilledEventsOf(stack, b.id)).toHaveLength(1)

    // Search attributes, through the client's visibility API.
    const fulfilledHere = await listed(`SertnChain = '${chainId}' AND SertnStage = 'fulfilled'`, (ids) => ids.includes(idB))
    expect(fulfilledHere).not.toContain(idA)
    expect((await listed(`SertnRequestKey = '${b.key}'`, (ids) => ids.length === 2)).sort()).toEqual([idA, idB].sort())
    const stageOfA = await listed(`SertnRequestKey = '${a.key}' AND SertnStage = 'proving'`, (ids) => ids.length > 0)
    expect(stageOfA).toEqual([idA])
    const node = stack.chain.node.account.address.toLowerCase()
    const model = stack.chain.demo.modelId.toLowerCase()
    expect(
      await listed(`SertnModel = '${model}' AND SertnNode = '${node}' AND SertnStage = 'fulfilled'`, (ids) => ids.includes(idB)),
    ).toContain(idB)
    const attributes = (await stack.client.workflow.getHandle(idB).describe()).typedSearchAttributes
    expect(Object.fromEntries(Object.entries(SEARCH_ATTRIBUTES).map(([name, k]) => [name, attributes.get(k)]))).toEqual({
      requestKey: b.key,
      chain: String(chainId),
      model,
      node,
      stage: 'fulfilled',
    })
    // Its history, with the upserts (new commands, behind patched('search-attributes')), replays.
    await Worker.runReplayHistory(
      { workflowBundle: await workflowBundle() },
      await stack.client.workflow.getHandle(idB).fetchHistory(),
      idB,
    )
  }, 300_000)
})
