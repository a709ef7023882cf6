/**
 * The chaos checker across three chains (real local stack: a hub, a Hyperlane spoke and a
 * LayerZero spoke with their agents, the Temporal dev server, arlocal, the workers in this
 * process): a request on each chain, served with real proofs and, from the spokes, settled on the
 * hub by their receipts. The record checks clean, the spokes' gateways holding exactly their
 * receipt reserves and nothing else, the market holding nothing and agreeing with each spoke.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { joinPool, mineToNextEpoch } from '../../chains/evm/nodes.ts'
import { registerModelOnNetwork } from '../../chains/evm/register-model.ts'
import { arweaveStorage, createFundedWallet } from '../../plugins/storage/arweave/index.ts'
import { LOCAL_ACCOUNTS, LOCAL_CHAINS } from '../../chains/local.ts'
import { InferenceGateway, InferenceMarket, RecordingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { waitFor } from '../../core/process.ts'
import { modelDir } from '../../core/manifest.ts'
import { requestKey } from '../../core/types.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { summarize } from '../chaos/check.ts'
import { checkRun } from '../chaos/checker.ts'
import type { ChaosChain, ChaosRecord, ChaosRequest } from '../chaos/record.ts'
import { increaseTime } from '../support/chain.ts'
import { deploySpokeConsumer, requestOnSpoke, startCrossChainStack, type CrossChainStack } from '../support/crosschain.ts'
import { boundedTeardown, CALLBACK_GAS, DEMO_INPUT, startWorkers, within, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

let stack: CrossChainStack
let workers: InProcessWorkers | undefined
let record: ChaosRecord

beforeAll(async () => {
  stack = await startCrossChainStack({ spokes: [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz] })
  const { network } = stack
  const hubClients = stack.local.chains[network.hub.name]!
  const chains: ChaosChain[] = [
    {
      name: network.hub.name,
      chainId: network.hub.chainId,
      rpcUrl: hubClients.anvil.rpcUrl,
      role: 'hub',
      gateway: network.hub.core.gateway,
      registry: network.hub.core.registry,
      fromBlock: (await hubClients.user.getBlockNumber()) + 1n,
      confirmations: 1,
    },
  ]
  for (const s of network.spokes)
    chains.push({
      name: s.name,
      chainId: s.chainId,
      rpcUrl: stack.spokes[s.name]!.anvil.rpcUrl,
      role: 'spoke',
      messenger: s.messenger.kind as 'hyperlane' | 'layerzero',
      gateway: s.spoke.gateway,
      registry: s.spoke.registry,
      fromBlock: (await stack.spokes[s.name]!.user.getBlockNumber()) + 1n,
      confirmations: 1,
    })
  // The demo's circuit under a name of its own on every chain, its artifacts on arlocal (the
  // proofs are re-checked against what the registries pin there), served by the hub's node.
  const { jwk } = await createFundedWallet(undefined, stack.arlocal.url)
  const publisher = arweaveStorage({ port: stack.arlocal.port, wallet: jwk, mineAfterPost: true })
  let modelId: Hex
  try {
    modelId = (
      await registerModelOnNetwork({
        model: 'sertn-mlp-demo',
        name: 'chaos-xmlp',
        chains: [
          { name: network.hub.name, client: hubClients.owner, registry: network.hub.core.registry, hub: true },
          ...network.spokes.map((s) => ({ name: s.name, client: stack.spokes[s.name]!.owner, registry: s.spoke.registry })),
        ],
        storage: publisher,
        allowInsecureSrs: true,
      })
    ).modelId
  } finally {
    await publisher.dispose()
  }
  await joinPool(hubClients.node, network.hub.core.nodeRegistry, { models: [modelId] })
  await mineToNextEpoch(hubClients.owner, network.hub.core.nodeRegistry)
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])

  const requests: ChaosRequest[] = []
  const consumers: ChaosRecord['consumers'] = []
  // On the hub's own gateway.
  const hubModel = modelId
  const hubConsumer = await deployContract(hubClients.user, RecordingConsumer, [network.hub.core.gateway])
  consumers.push({ chain: network.hub.name, address: hubConsumer, behaviour: 'recording' })
  const value = await hubClients.user.readContract({
    address: network.hub.core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'quote',
    args: [hubModel, CALLBACK_GAS],
  })
  const hash = await hubClients.user.writeContract({
    address: hubConsumer,
    abi: RecordingConsumer.abi,
    functionName: 'request',
    args: [hubModel, [...DEMO_INPUT], CALLBACK_GAS],
    value,
  })
  const receipt = await confirm(hubClients.user, hash)
  const [announced] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  await hubClients.user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
  requests.push({
    chain: network.hub.name,
    requestId: announced!.args.requestId,
    key: requestKey(network.hub.chainId, network.hub.core.gateway, announced!.args.requestId),
    consumer: hubConsumer,
    modelId: hubModel,
    input: [...DEMO_INPUT],
    callbackGasLimit: CALLBACK_GAS,
    txHash: hash,
    sentAt: Date.now(),
  })
  // On each spoke.
  for (const s of network.spokes) {
    const consumer = await deploySpokeConsumer(stack, s.name)
    consumers.push({ chain: s.name, address: consumer, behaviour: 'recording' })
    const r = await requestOnSpoke(stack, consumer, { spoke: s.name, modelId })
    requests.push({
      chain: s.name,
      requestId: r.id,
      key: r.key,
      consumer,
      modelId,
      input: [...DEMO_INPUT],
      callbackGasLimit: CALLBACK_GAS,
      txHash: r.hash,
      sentAt: r.minedAt,
    })
  }
  for (const q of requests) expect((await within(240_000, `${q.key} served`, waitForOutcome(stack.client, q.key))).stage).toBe('fulfilled')
  // The spokes' receipts settle their requests on the hub.
  for (const q of requests.slice(1)) {
    const chain = chains.find((c) => c.name === q.chain)!
    await waitFor(
      `the hub to settle ${q.key}`,
      async () => {
        const gw = `0x${chain.gateway.slice(2).toLowerCase().padStart(64, '0')}` as const
        const mid = await hubClients.user.readContract({
          address: network.hub.market,
          abi: InferenceMarket.abi,
          functionName: 'marketRequestIdOf',
          args: [chain.chainId, gw, q.requestId],
        })
        const m = await hubClients.user.readContract({
          address: network.hub.market,
          abi: InferenceMarket.abi,
          functionName: 'getRequest',
          args: [mid],
        })
        return m.status === 4
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    )
  }
  await workers.stop()
  workers = undefined

  record = {
    seed: 15,
    startedAt: Date.now(),
    chains,
    hub: { market: network.hub.market, nodeRegistry: network.hub.core.nodeRegistry },
    nodes: [anvilAccount(LOCAL_ACCOUNTS.node).address as Address],
    models: { [modelId]: modelDir('sertn-mlp-demo') },
    storageUrl: stack.arlocal.url,
    consumers,
    requests,
    invalid: [],
    faults: [],
  }
}, 900_000)

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

describe('the chaos checker across three chains', () => {
  test('default: hub, Hyperlane and LayerZero requests check clean: one outcome each, fees and reserves accounted for, hub book agreeing', async () => {
    const r = await checkRun(record)
    console.log(summarize(r))
    expect(r.all).toEqual([])
    expect(r).toMatchObject({ requests: 3, fulfilled: 3, lost: 0, doubled: 0, violations: 0, outputsChecked: 3, proofsChecked: 3 })
    expect(r.settlementsTraced).toBeGreaterThanOrEqual(3)
    for (const c of r.chains) expect(c.balance - c.owes).toBeGreaterThanOrEqual(0n)
  })

  test('behavior: a spoke request that expires unserved is refunded there and closed on the hub by its receipt: still clean', async () => {
    const spoke = stack.network.spokes[0]!
    const { user } = stack.spokes[spoke.name]!
    const consumer = record.consumers.find((c) => c.chain === spoke.name)!.address
    const r = await requestOnSpoke(stack, consumer, { spoke: spoke.name, modelId: record.requests[0]!.modelId })
    const hub = stack.local.chains[stack.network.hub.name]!.user
    const gw = `0x${spoke.spoke.gateway.slice(2).toLowerCase().padStart(64, '0')}` as const
    const marketRequest = async () => {
      const mid = await hub.readContract({
        address: stack.network.hub.market,
        abi: InferenceMarket.abi,
        functionName: 'marketRequestIdOf',
        args: [spoke.chainId, gw, r.id],
      })
      return mid === 0n
        ? undefined
        : hub.readContract({ address: stack.network.hub.market, abi: InferenceMarket.abi, functionName: 'getRequest', args: [mid] })
    }
    await waitFor('the hub to record it', async () => (await marketRequest()) !== undefined, { timeoutMs: 60_000, intervalMs: 500 })
    const config = await user.readContract({ address: spoke.spoke.gateway, abi: SpokeGateway.abi, functionName: 'config' })
    await increaseTime(user, config.requestTimeout + 1)
    const hash = await user.writeContract({ address: spoke.spoke.gateway, abi: SpokeGateway.abi, functionName: 'refund', args: [r.id] })
    expect((await user.waitForTransactionReceipt({ hash })).status).toBe('success')
    await waitFor('the refund receipt to settle it on the hub', async () => (await marketRequest())?.status === 4, {
      timeoutMs: 120_000,
      intervalMs: 500,
    })
    const report = await checkRun(
      {
        ...record,
        requests: [
          ...record.requests,
          {
            chain: spoke.name,
            requestId: r.id,
            key: r.key,
            consumer,
            modelId: record.requests[0]!.modelId,
            input: [...DEMO_INPUT],
            callbackGasLimit: CALLBACK_GAS,
            txHash: r.hash,
            sentAt: r.minedAt,
            expectExpiry: true,
          },
        ],
      },
      { proofs: 0 },
    )
    console.log(summarize(report))
    expect(report.all).toEqual([])
    expect(report).toMatchObject({ requests: 4, fulfilled: 3, refunded: 1, lost: 0, violations: 0 })
  })
})
