/**
 * Anvil reorgs around a request, end to end (node watcher with confirmations 2, workers in this
 * process, real proofs):
 * - a request whose transaction a reorg moves into another block before it is confirmed is served
 *   exactly once, as seen in its new block (one workflow, one `InferenceFulfilled`);
 * - a request whose transaction a reorg drops before it is confirmed starts no workflow.
 *
 * anvil 1.7.1's `anvil_reorg` takes positional params `[depth, [[rawTx, blockOffset], …]]`: it drops
 * the newest `depth` blocks and mines `depth` new ones (the head number stays), putting each listed
 * raw transaction into new block `head - depth + 1 + blockOffset`; transactions of the dropped
 * blocks that are not listed are gone (see test/integration/chain-evm-reorg.test.ts).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import type { Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { InferenceGateway, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { waitFor } from '../../core/process.ts'
import type { InferenceRequest } from '../../core/types.ts'
import type { RequestWorkflowInput } from '../../workflows/messages.ts'
import { requestWorkflowHandle, waitForOutcome } from '../../workflows/client.ts'
import {
  boundedTeardown,
  closedExecutionsOf,
  fulfilledEventsOf,
  mine,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  watcherCursorBlock,
  within,
  workflowExists,
  type InProcessWorkers,
  type TestStack,
} from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const CONFIRMATIONS = 2

let stack: TestStack
let workers: InProcessWorkers | undefined
let consumer: `0x${string}`

beforeAll(async () => {
  stack = await startTestStack({ confirmations: CONFIRMATIONS })
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const rpc = <T = unknown>(method: string, params: unknown[]) =>
  stack.chain.owner.request({ method: method as never, params: params as never }) as Promise<T>
const head = () => stack.chain.owner.getBlockNumber({ cacheTime: 0 })
const rawTx = (hash: Hex) => rpc<Hex>('eth_getRawTransactionByHash', [hash])
/** Replaces the newest `depth` blocks; `replay` puts raw transactions into the new blocks (offset 0 = the first new block). */
const reorg = (depth: number, replay: [Hex, number][] = []) => rpc('anvil_reorg', [depth, replay])
const blockHash = async (n: bigint) => (await stack.chain.owner.getBlock({ blockNumber: n })).hash

/** The request the workflow was started with (its first event's input). */
async function workflowInput(key: string): Promise<InferenceRequest> {
  const history = await (await requestWorkflowHandle(stack.client, key)).handle.fetchHistory()
  const payload = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!
  return stack.client.options.loadedDataConverter.payloadConverter.fromPayload<RequestWorkflowInput>(payload).request
}

describe('reorgs around a request', () => {
  test('behavior: a reorg moves the request’s transaction into another block before it is confirmed → served exactly once, from its new block', async () => {
    const r = await requestFromConsumer(stack, consumer) // block B = head
    await mine(stack, 1) // B+1: one confirmation of two
    expect(await head()).toBe(r.block + 1n)
    const oldHash = await blockHash(r.block)

    // Replace B and B+1; the request goes into the new B+1.
    await reorg(2, [[await rawTx(r.hash), 1]])
    const moved = await stack.chain.owner.getTransactionReceipt({ hash: r.hash })
    expect(moved.blockNumber).toBe(r.block + 1n)
    expect(await blockHash(r.block)).not.toBe(oldHash)
    expect(await workflowExists(stack.client, r.key, r.hash)).toBe(false)

    await mine(stack, CONFIRMATIONS) // confirmed in its new block
    const outcome = await within(60_000, 'the request’s outcome', waitForOutcome(stack.client, r.key, 20_000))
    expect(outcome.stage).toBe('fulfilled')
    const seen = await workflowInput(r.key)
    expect(seen.seenAt).toMatchObject({
      blockNumber: (r.block + 1n).toString(),
      blockHash: await blockHash(r.block + 1n),
      transactionHash: r.hash,
    })

    // More blocks: the watcher passes the request's block again without starting anything more.
    await mine(stack, 3)
    const tip = await head()
    await waitFor('the watcher to reach the confirmed tip', async () => (await watcherCursorBlock(stack)) >= tip - BigInt(CONFIRMATIONS), {
      timeoutMs: 20_000,
    })
    expect((await closedExecutionsOf(stack.client, r.key)).map((x) => x.status.name)).toEqual(['COMPLETED'])
    expect(await fulfilledEventsOf(stack, r.id)).toHaveLength(1)
  })

  test('behavior: a reorg drops the request’s transaction before it is confirmed → no workflow is started for it', async () => {
    const r = await requestFromConsumer(stack, consumer) // block C = head
    await reorg(1) // a new, empty block C
    await expect(stack.chain.owner.getTransactionReceipt({ hash: r.hash })).rejects.toThrow()
    const request = await stack.chain.user.readContract({
      address: stack.chain.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'getRequest',
      args: [r.id],
    })
    expect(request.status).toBe(0) // None

    await mine(stack, CONFIRMATIONS + 2)
    const tip = await head()
    await waitFor(
      'the watcher to pass the dropped request’s block',
      async () => (await watcherCursorBlock(stack)) >= tip - BigInt(CONFIRMATIONS),
      { timeoutMs: 20_000 },
    )
    expect(tip - BigInt(CONFIRMATIONS)).toBeGreaterThan(r.block)
    expect(await workflowExists(stack.client, r.key, r.hash)).toBe(false)
    expect(await fulfilledEventsOf(stack, r.id)).toHaveLength(0)
  })
})
