/**
 * Bench, part 4: requests from a spoke chain served through the hub over real Hyperlane (two
 * anvils mining a block every `blockTime` seconds, the local validator and relayers, Temporal,
 * arlocal, workers in this process), `requests` sequential requests from the example dApp on the
 * spoke.
 *
 * Relay hops, wall clock on this machine:
 * - spokeToHub: the spoke's request transaction (which dispatched the request message) is mined →
 *   the relayer has the hub's `process` receipt (the market recorded the request);
 * - hubToSpoke: the node has the hub's `submitResult` receipt (which dispatched the result) → the
 *   relayer has the spoke's `process` receipt (verified there, consumer called back).
 * Each hop includes one chain wait of its own: the `process` transaction's inclusion on the
 * destination (up to a block time with interval mining). `relayOverheadMs` is the hop minus that
 * inclusion: what the agents add (the validator's and the relayer's polling and work). The goal
 * is at most one block time.
 *
 * Gas by chain and step (medians): spoke `requestInference` (escrow + request message),
 * hub `record` (the relayer's `process` of the request message), hub `submitResult` (verification
 * on the hub + the result message), spoke `process+verify+callback` (plus the receipt message),
 * hub `settle` (the relayer's `process` of the receipt).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { parseEventLogs, type Hex } from 'viem'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { ExampleClassifier, InferenceMarket, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { requestKey } from '../../core/types.ts'
import type { Delivery } from '../../plugins/messengers/hyperlane/index.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { startCrossChainStack } from '../support/crosschain.ts'
import { DEMO_INPUT_SCALE, startWorkers } from '../support/stack.ts'
import { log, median, p50p95 } from './stats.ts'

export type CrossChainBench = {
  relayMs: { spokeToHub: { p50: number; p95: number }; hubToSpoke: { p50: number; p95: number } }
  relayOverheadMs: { spokeToHub: { p50: number; p95: number }; hubToSpoke: { p50: number; p95: number } }
  blockTimeMs: number
  crossChainE2eMs: { p50: number; p95: number }
  gasByChain: { spoke: Record<string, number>; hub: Record<string, number> }
}

type Delivered = Delivery & { at: number }

export async function benchCrossChain({
  requests,
  prover,
  blockTime,
}: {
  requests: number
  prover: 'ezkl-wasm' | 'ezkl-native'
  blockTime: number
}): Promise<CrossChainBench> {
  Runtime.install({ logger: new DefaultLogger('WARN') })
  if (prover === 'ezkl-native') await ensureNativeEzkl()
  const delivered = new Map<Hex, Delivered>()
  const stack = await startCrossChainStack({
    blockTime,
    pollingIntervalMs: 50,
    onDelivered: (_route, d) => void delivered.set(d.messageId, { ...d, at: Date.now() }),
  })
  const config = { ...stack.config, prover: { ...stack.config.prover, plugin: prover } }
  const workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  try {
    const { user } = stack.spoke
    const s = stack.network.spokes[0]!
    const dapp = await deployContract(user, ExampleClassifier, [s.spoke.gateway, s.models[0]!.modelId])
    const price = await user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'price' })
    const samples = {
      spokeToHub: [] as number[],
      hubToSpoke: [] as number[],
      overToHub: [] as number[],
      overToSpoke: [] as number[],
      e2e: [] as number[],
    }
    const gas: Record<string, number[]> = { requestInference: [], record: [], submitResult: [], 'process+verify+callback': [], settle: [] }

    /** Waits (bounded) for the relayer's delivery of `messageId`. */
    const deliveryOf = async (messageId: Hex): Promise<Delivered> => {
      for (let n = 0; n < 6_000; n++) {
        const d = delivered.get(messageId)
        if (d) return d
        await new Promise((r) => setTimeout(r, 10))
      }
      throw new Error(`message ${messageId} was never delivered`)
    }

    const one = async (i: number) => {
      const features = [0.5, -1.25, 2, 0.75].map((x, j) => quantize(x + ((i * 7 + j * 3) % 11) / 10 - 0.5, DEMO_INPUT_SCALE))
      const { request, result: id } = await user.simulateContract({
        address: dapp,
        abi: ExampleClassifier.abi,
        functionName: 'classify',
        args: [features],
        value: price,
      })
      const receipt = await confirm(user, await user.writeContract(request))
      const tRequest = Date.now()
      const [sent] = parseEventLogs({ abi: SpokeGateway.abi, logs: receipt.logs, eventName: 'RequestSentToHub' })
      if (!sent) throw new Error(`no RequestSentToHub in ${receipt.transactionHash}`)
      const key = requestKey(stack.spoke.anvil.chain.id, s.spoke.gateway, id)
      const outcome = await waitForOutcome(stack.client, key)
      if (outcome.stage !== 'fulfilled') throw new Error(`request ${key} ended ${outcome.stage}: ${JSON.stringify(outcome.error)}`)
      const t = outcome.timings
      const toHub = await deliveryOf(sent.args.messageId)
      const submitReceipt = await stack.hub.user.getTransactionReceipt({ hash: t.submit!.transactionHash as Hex })
      const [dispatched] = parseEventLogs({ abi: InferenceMarket.abi, logs: submitReceipt.logs, eventName: 'ResultDispatched' })
      const toSpoke = await deliveryOf(dispatched!.args.messageId)
      const r = {
        spokeToHub: toHub.at - tRequest,
        hubToSpoke: toSpoke.at - (t.submit!.receiptAt ?? toSpoke.at),
        overToHub: toHub.at - tRequest - (toHub.inclusionMs ?? 0),
        overToSpoke: toSpoke.at - (t.submit!.receiptAt ?? toSpoke.at) - (toSpoke.inclusionMs ?? 0),
        e2e: toSpoke.at - tRequest,
        gas: {
          requestInference: Number(receipt.gasUsed),
          record: Number(toHub.gasUsed),
          submitResult: Number(t.submit!.gasUsed),
          'process+verify+callback': Number(t.spokeSettle!.gasUsed),
          settle: Number(t.hubSettle!.gasUsed),
        },
      }
      return r
    }

    log(`cross-chain: warming up (${prover}, block time ${blockTime} s)`)
    await one(1000)
    for (let i = 0; i < requests; i++) {
      const r = await one(i)
      samples.spokeToHub.push(r.spokeToHub)
      samples.hubToSpoke.push(r.hubToSpoke)
      samples.overToHub.push(r.overToHub)
      samples.overToSpoke.push(r.overToSpoke)
      samples.e2e.push(r.e2e)
      for (const [k, v] of Object.entries(r.gas)) gas[k]!.push(v)
      log(
        `cross-chain ${i + 1}/${requests}: spoke→hub ${r.spokeToHub} ms, hub→spoke ${r.hubToSpoke} ms, request → verified on the spoke ${r.e2e} ms`,
      )
    }
    const g = (k: string) => Math.round(median(gas[k]!))
    return {
      relayMs: { spokeToHub: p50p95(samples.spokeToHub), hubToSpoke: p50p95(samples.hubToSpoke) },
      relayOverheadMs: { spokeToHub: p50p95(samples.overToHub), hubToSpoke: p50p95(samples.overToSpoke) },
      blockTimeMs: blockTime * 1000,
      crossChainE2eMs: p50p95(samples.e2e),
      gasByChain: {
        spoke: { requestInference: g('requestInference'), 'process+verify+callback': g('process+verify+callback') },
        hub: { record: g('record'), submitResult: g('submitResult'), settle: g('settle') },
      },
    }
  } finally {
    await workers.stop()
    await stack.stop()
  }
}
