/**
 * Bench, part 4: requests from spoke chains served through the hub, one spoke over real Hyperlane
 * and one over real LayerZero V2 (three anvils mining a block every `blockTime` seconds, each
 * messenger's local agents, Temporal, arlocal, workers in this process), `requests` sequential
 * requests from the example dApp on each spoke. Figures are by messenger.
 *
 * Relay hops, wall clock on this machine:
 * - spokeToHub: the spoke's request transaction (which dispatched the request message) is mined →
 *   the relayer has the hub's `process` receipt (the market recorded the request);
 * - hubToSpoke: the node has the hub's `submitResult` receipt (which dispatched the result) → the
 *   relayer has the spoke's `process` receipt (verified there, consumer called back).
 * Each hop includes the chain waits of its own: the inclusion of the destination transactions the
 * network needs (Hyperlane: the relayer's `process`; LayerZero: the DVN's verification, then the
 * executor's `lzReceive`), up to a block time each with interval mining. `relayOverheadMs` is the
 * hop minus those inclusions: what the agents add (their polling and work). The agents attest at
 * 0 confirmations here, so no confirmation wait is in the hop. The goal is at most 100 ms at p50.
 *
 * Gas by chain and step (medians): spoke `requestInference` (escrow + request message),
 * hub `record` (the relayer's `process` of the request message), hub `submitResult` (verification
 * on the hub + the result message), spoke `process+verify+callback` (plus the receipt message),
 * hub `settle` (the relayer's `process` of the receipt).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { parseEventLogs, type Hex } from 'viem'
import { deployContract } from '../../chains/evm/deploy.ts'
import { ExampleClassifier, InferenceMarket, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { requestKey } from '../../core/types.ts'
import { LOCAL_CHAINS } from '../../chains/local.ts'
import type { MessengerAgentEvent } from '../../core/plugins.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { startCrossChainStack } from '../support/crosschain.ts'
import { startWorkers } from '../support/stack.ts'
import { classify } from './dapp.ts'
import { log, median, p50p95 } from './stats.ts'

type P = { p50: number; p95: number }
type Hops = { spokeToHub: P; hubToSpoke: P }

export type CrossChainBench = {
  /** By messenger (hyperlane, layerzero). */
  relayMs: Record<string, Hops>
  relayOverheadMs: Record<string, Hops>
  blockTimeMs: number
  crossChainE2eMs: Record<string, P>
  gasByChain: Record<string, { spoke: Record<string, number>; hub: Record<string, number> }>
}

type Delivered = MessengerAgentEvent & { at: number }

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
    spokes: [LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz],
    blockTime,
    pollingIntervalMs: 50,
    agentConfirmations: 0,
    onAgentEvent: (_kind, e) => {
      if (e.type === 'delivered') delivered.set(e.messageId, { ...e, at: Date.now() })
    },
  })
  const config = { ...stack.config, prover: { ...stack.config.prover, plugin: prover } }
  const workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  try {
    const out: CrossChainBench = { relayMs: {}, relayOverheadMs: {}, blockTimeMs: blockTime * 1000, crossChainE2eMs: {}, gasByChain: {} }
    for (const s of stack.network.spokes) {
      const messenger = s.messenger.kind
      const { user, anvil } = stack.spokes[s.name]!
      const dapp = await deployContract(user, ExampleClassifier, [s.spoke.gateway, s.models[0]!.modelId])
      const price = await user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'price' })
      const samples = {
        spokeToHub: [] as number[],
        hubToSpoke: [] as number[],
        overToHub: [] as number[],
        overToSpoke: [] as number[],
        e2e: [] as number[],
      }
      const gas: Record<string, number[]> = {
        requestInference: [],
        record: [],
        submitResult: [],
        'deliver+verify+callback': [],
        settle: [],
      }

      /** Waits (bounded) for the agents' delivery of `messageId`. */
      const deliveryOf = async (messageId: Hex): Promise<Delivered> => {
        for (let n = 0; n < 6_000; n++) {
          const d = delivered.get(messageId)
          if (d) return d
          await new Promise((r) => setTimeout(r, 10))
        }
        throw new Error(`message ${messageId} was never delivered`)
      }

      const one = async (i: number) => {
        const { id, receipt } = await classify(user, dapp, price, i)
        const tRequest = Date.now()
        const [sent] = parseEventLogs({ abi: SpokeGateway.abi, logs: receipt.logs, eventName: 'RequestSentToHub' })
        if (!sent) throw new Error(`no RequestSentToHub in ${receipt.transactionHash}`)
        const key = requestKey(anvil.chain.id, s.spoke.gateway, id)
        const outcome = await waitForOutcome(stack.client, key)
        if (outcome.stage !== 'fulfilled') throw new Error(`request ${key} ended ${outcome.stage}: ${JSON.stringify(outcome.error)}`)
        const t = outcome.timings
        const toHub = await deliveryOf(sent.args.messageId)
        const submitReceipt = await stack.hub.user.getTransactionReceipt({ hash: t.submit!.transactionHash as Hex })
        const [dispatched] = parseEventLogs({ abi: InferenceMarket.abi, logs: submitReceipt.logs, eventName: 'ResultDispatched' })
        const toSpoke = await deliveryOf(dispatched!.args.messageId)
        return {
          spokeToHub: toHub.at - tRequest,
          hubToSpoke: toSpoke.at - (t.submit!.receiptAt ?? toSpoke.at),
          overToHub: toHub.at - tRequest - (toHub.inclusionMs ?? 0),
          overToSpoke: toSpoke.at - (t.submit!.receiptAt ?? toSpoke.at) - (toSpoke.inclusionMs ?? 0),
          e2e: toSpoke.at - tRequest,
          gas: {
            requestInference: Number(receipt.gasUsed),
            record: Number(toHub.gasUsed),
            submitResult: Number(t.submit!.gasUsed),
            'deliver+verify+callback': Number(t.spokeSettle!.gasUsed),
            settle: Number(t.hubSettle!.gasUsed),
          },
        }
      }

      log(`cross-chain over ${messenger}: warming up (${prover}, block time ${blockTime} s)`)
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
          `cross-chain ${messenger} ${i + 1}/${requests}: spoke→hub ${r.spokeToHub} ms (agents ${r.overToHub}), ` +
            `hub→spoke ${r.hubToSpoke} ms (agents ${r.overToSpoke}), request → verified on the spoke ${r.e2e} ms`,
        )
      }
      const g = (k: string) => Math.round(median(gas[k]!))
      out.relayMs[messenger] = { spokeToHub: p50p95(samples.spokeToHub), hubToSpoke: p50p95(samples.hubToSpoke) }
      out.relayOverheadMs[messenger] = { spokeToHub: p50p95(samples.overToHub), hubToSpoke: p50p95(samples.overToSpoke) }
      out.crossChainE2eMs[messenger] = p50p95(samples.e2e)
      out.gasByChain[messenger] = {
        spoke: { requestInference: g('requestInference'), 'deliver+verify+callback': g('deliver+verify+callback') },
        hub: { record: g('record'), submitResult: g('submitResult'), settle: g('settle') },
      }
    }
    return out
  } finally {
    await workers.stop()
    await stack.stop()
  }
}
