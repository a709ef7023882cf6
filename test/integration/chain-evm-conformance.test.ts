/** The ChainPlugin conformance suite for the EVM plugin on anvil (one WASM proof). */
import { parseEventLogs, toHex } from 'viem'
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { evmChain, FileCursorStore } from '../../chains/evm/plugin/index.ts'
import { testChainPlugin, type ChainHarness } from '../../core/conformance/chain.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import type { RequestId } from '../../core/types.ts'
import { createEzklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'
import { DEV_ONLY, sampleInputQ } from '../support/artifacts.ts'
import { startTestChain, type TestChain } from '../support/chain.ts'

const GAS = 100_000
let t: TestChain | undefined

testChainPlugin({
  name: 'evm',
  async setup(): Promise<ChainHarness> {
    t = await startTestChain()
    const chain = t
    const demo = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
    const input = await sampleInputQ(demo)
    const prover = createEzklWasmProver()
    let proof: Awaited<ReturnType<typeof prover.proveInference>>
    try {
      proof = await prover.proveInference(demo, input)
    } finally {
      await prover.dispose()
    }
    return {
      result: { output: proof.output.map(String), proof: proof.proof, instances: proof.instances.map(String) },
      async request() {
        const value = await chain.user.readContract({
          address: chain.core.gateway,
          abi: InferenceGateway.abi,
          functionName: 'quote',
          args: [chain.demo.modelId, GAS],
        })
        const hash = await chain.user.writeContract({
          address: chain.core.gateway,
          abi: InferenceGateway.abi,
          functionName: 'requestInference',
          args: [chain.demo.modelId, input, GAS],
          value,
        })
        const receipt = await chain.user.waitForTransactionReceipt({ hash })
        const [log] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
        return { requestId: log!.args.requestId.toString() as RequestId }
      },
      async mine(n) {
        await chain.owner.request({ method: 'anvil_mine' as never, params: [toHex(n)] as never })
      },
      sentCount: () => chain.node.getTransactionCount({ address: chain.node.account.address, blockTag: 'pending' }),
      cleanup: async () => {
        await chain.stop()
      },
    }
  },
  create: (_h, { confirmations, stateDir }) =>
    evmChain({
      chainName: 'anvil',
      chainId: t!.anvil.chain.id,
      rpcUrl: t!.anvil.rpcUrl,
      gateway: t!.core.gateway,
      account: anvilAccount(1),
      confirmations,
      cursorStore: new FileCursorStore(stateDir),
      pollingIntervalMs: 20,
    }),
})
