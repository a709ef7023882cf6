/**
 * The keeper on a spoke, on the real cross-chain stack (a hub and a spoke over Hyperlane, the local
 * agents running, Temporal and the chain-io worker): a spoke request left unserved past its deadline
 * is refunded by the worker's keeper, and when the messenger's fee has risen above the receipt's
 * reserve (Hyperlane's protocol fee raised after the request), the refund's receipt is deferred;
 * the keeper sends it, paying the difference, and the hub market settles the request as Refunded.
 */
import { parseEventLogs, type Address } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { confirm } from '../../chains/evm/deploy.ts'
import { ProtocolFee } from '../../contracts/artifacts/hyperlane/index.ts'
import { InferenceMarket, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { metrics } from '../../core/metrics.ts'
import { increaseTime, waitUntil } from '../support/chain.ts'
import { startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, CALLBACK_GAS, DEMO_INPUT, startWorkers, type InProcessWorkers } from '../support/stack.ts'

const TIMEOUT_S = 60

let stack: CrossChainStack | undefined
let workers: InProcessWorkers | undefined

beforeAll(async () => {
  stack = await startCrossChainStack()
  const owner = stack.spoke.owner
  const gateway = stack.network.spokes[0]!.spoke.gateway
  const cfg = await owner.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'config' })
  await confirm(
    owner,
    await owner.writeContract({
      address: gateway,
      abi: SpokeGateway.abi,
      functionName: 'setConfig',
      args: [{ ...cfg, requestTimeout: TIMEOUT_S }],
    }),
  )
  workers = await startWorkers(stack, ['chain-io'], {
    config: { ...stack.config, keeper: { ...stack.config.keeper, enabled: true, intervalMs: 300 } },
  })
})

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const counter = async (c: typeof metrics.keeperRefunds, chain: string) =>
  (await c.get()).values.find((v) => v.labels.chain === chain)?.value ?? 0

describe('the keeper on a spoke', () => {
  test('refunds an expired spoke request and sends its deferred receipt, topping up the reserve; the hub market settles it Refunded', async () => {
    const s = stack!.network.spokes[0]!
    const { user, owner } = stack!.spoke
    const hub = stack!.hub.user
    const gateway = s.spoke.gateway
    const [refundsBefore, receiptsBefore] = [await counter(metrics.keeperRefunds, s.name), await counter(metrics.keeperReceipts, s.name)]

    const modelId = s.models[0]!.modelId
    const value = await user.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'quote', args: [modelId, CALLBACK_GAS] })
    const receipt = await confirm(
      user,
      await user.writeContract({
        address: gateway,
        abi: SpokeGateway.abi,
        functionName: 'requestInference',
        args: [modelId, [...DEMO_INPUT], CALLBACK_GAS],
        value,
      }),
    )
    const [requested] = parseEventLogs({ abi: SpokeGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
    const id = requested!.args.requestId
    await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    // The request reaches the hub market before anything else happens.
    const market = stack!.network.hub.market
    const marketId = await waitUntil(
      'the hub market to record the request',
      async () =>
        (await hub.readContract({
          address: market,
          abi: InferenceMarket.abi,
          functionName: 'marketRequestIdOf',
          args: [s.chainId, `0x${gateway.slice(2).toLowerCase().padStart(64, '0')}`, id],
        })) || undefined,
      60_000,
      200,
    )

    // The messenger's fee rises above the receipt reserve the request paid for (Hyperlane's protocol fee: 0 → 1 wei).
    const protocolFee = s.messenger.protocolFee as Address
    await confirm(
      owner,
      await owner.writeContract({ address: protocolFee, abi: ProtocolFee.abi, functionName: 'setProtocolFee', args: [1n] }),
    )

    await increaseTime(owner, TIMEOUT_S + 1)
    const status = async () =>
      (await user.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'getRequest', args: [id] })).status
    await waitUntil('the keeper to refund the expired spoke request', async () => (await status()) === 4, 60_000, 200)
    const deferred = await user.getContractEvents({
      address: gateway,
      abi: SpokeGateway.abi,
      eventName: 'ReceiptDeferred',
      args: { requestId: id },
      fromBlock: 0n,
    })
    expect(deferred).toHaveLength(1)

    // The keeper reads the deferral once a block is on top of it (its confirmations), and sends the receipt.
    await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    await waitUntil(
      'the keeper to send the deferred receipt',
      async () =>
        (await user.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'pendingReceipt', args: [id] })).status === 0,
      60_000,
      200,
    )
    const sent = await user.getContractEvents({
      address: gateway,
      abi: SpokeGateway.abi,
      eventName: 'ReceiptSent',
      args: { requestId: id },
      fromBlock: 0n,
    })
    expect(sent).toHaveLength(1)
    expect(sent[0]!.args.status).toBe(4) // Refunded

    // Relayed to the hub: the market's record is settled as Refunded.
    const record = await waitUntil(
      'the hub market to settle the request',
      async () => {
        const r = await hub.readContract({ address: market, abi: InferenceMarket.abi, functionName: 'getRequest', args: [marketId] })
        return r.status === 4 ? r : undefined // Settled
      },
      60_000,
      200,
    )
    expect(record.settlement).toBe(4) // Refunded
    expect(await counter(metrics.keeperRefunds, s.name)).toBe(refundsBefore + 1)
    expect(await counter(metrics.keeperReceipts, s.name)).toBe(receiptsBefore + 1)
  })
})
