/**
 * The gas of a `fail` depends on its requester: a contract that refuses pushed ETH has its refund
 * held for withdrawal (a new storage slot, about 25k gas more), and an error callback may burn all
 * the gas it is given. An estimate made once per model version with a cheap requester (an EOA: no
 * callback, the refund pushed) ran out of gas for every later `fail` of such a requester — up to
 * 30 reverted transactions per request, which stayed pending. `fail` is estimated per transaction.
 * Real anvil, the deployed contracts, the EVM chain plugin; no proof is needed.
 */
import { parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import { evmChain, MemoryCursorStore } from '../../chains/evm/plugin/index.ts'
import { EthRefusingConsumer, FailGuzzlerConsumer, InferenceGateway } from '../../contracts/artifacts/index.ts'
import type { ChainPlugin } from '../../core/plugins.ts'
import { requestKey, type ChainId, type InferenceRequest, type ModelId, type RequestId } from '../../core/types.ts'
import { startTestChain, type TestChain } from '../support/chain.ts'

const CALLBACK_GAS = 100_000

let t: TestChain
let chain: ChainPlugin

beforeAll(async () => {
  t = await startTestChain()
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

afterAll(async () => {
  await chain?.dispose()
  await t?.stop()
})

/** Requests from the user's EOA, or through `consumer` (a TestConsumerBase); returns the request as the watcher would deliver it. */
async function request(consumer?: Address): Promise<InferenceRequest> {
  const input = [1n, 2n, 3n, 4n]
  const value = await t.user.readContract({
    address: t.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'quote',
    args: [t.demo.modelId, CALLBACK_GAS],
  })
  const hash: Hex = consumer
    ? await t.user.writeContract({
        address: consumer,
        abi: EthRefusingConsumer.abi,
        functionName: 'request',
        args: [t.demo.modelId, input, CALLBACK_GAS],
        value,
        gas: 1_000_000n,
      })
    : await t.user.writeContract({
        address: t.core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'requestInference',
        args: [t.demo.modelId, input, CALLBACK_GAS],
        value,
        gas: 1_000_000n,
      })
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

/** The InferenceFailed event and the held refund of a `fail` transaction. */
async function failedIn(hash: Hex) {
  const receipt = await t.node.getTransactionReceipt({ hash })
  const [failed] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceFailed' })
  const deferred = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'PaymentDeferred' })
  return { receipt, failed: failed!, deferred }
}

describe('fail gas', () => {
  test('behavior: after a cheap requester’s fail (an EOA), an ETH-refusing and a callback-burning requester’s fails land the first time', async () => {
    // The cheap one first: on a cache per model version its estimate would serve every later fail.
    const cheap = await chain.fail(await request(), 'ModelFailed', 'cheap')
    expect(cheap).toMatchObject({ status: 'Failed', alreadySettled: false })
    const cheapGas = (await failedIn(cheap.transactionHash!)).receipt.gasUsed

    const refusing = await deployContract(t.user, EthRefusingConsumer, [t.core.gateway])
    const guzzler = await deployContract(t.user, FailGuzzlerConsumer, [t.core.gateway])
    for (const consumer of [refusing, guzzler]) {
      const r = await request(consumer)
      const out = await chain.fail(r, 'ModelFailed', 'hostile')
      expect(out).toMatchObject({ status: 'Failed', alreadySettled: false })
      expect((await chain.getRequestState(r.requestId)).status).toBe('Failed')
      const { receipt, failed, deferred } = await failedIn(out.transactionHash!)
      expect(receipt.status).toBe('success')
      // The refund is held for the requester, and the failure was told to it.
      expect(deferred.map((d) => d.args.account)).toEqual([consumer])
      expect(failed.args.requestId).toBe(BigInt(r.requestId))
      // It cost more than the cheap one's estimate could cover.
      expect(receipt.gasUsed).toBeGreaterThan(cheapGas + 20_000n)
    }
  })

  test('error: a fail for a dropped event is refused when its id now names another request (reorg), and the new request stays pending', async () => {
    const current = await request()
    // The dropped event of the same id: another input (and so another commitment), another transaction.
    const dropped: InferenceRequest = {
      ...current,
      input: ['9', '9', '9', '9'],
      seenAt: { ...current.seenAt, transactionHash: `0x${'ab'.repeat(32)}` },
    }
    await expect(chain.fail(dropped, 'ModelFailed', 'old workflow')).rejects.toMatchObject({ name: 'RequestSupersededError' })
    // Another requester under the same id is refused too.
    await expect(chain.fail({ ...current, requester: t.node.account.address }, 'ModelFailed', 'x')).rejects.toMatchObject({
      name: 'RequestSupersededError',
    })
    expect((await chain.getRequestState(current.requestId)).status).toBe('Pending')
    // The request's own event still fails it.
    expect(await chain.fail(current, 'ModelFailed', 'its own workflow')).toMatchObject({ status: 'Failed', alreadySettled: false })
  })
})
