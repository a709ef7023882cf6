/**
 * `sertn demo`: the whole verified-inference path on a local anvil, stage by stage.
 *
 * The node stakes and joins the model's pool in the node registry (active from the next epoch: the
 * local chain is mined to it). A dApp contract (ExampleClassifier) requests an inference from the
 * gateway and pays the quote; the registry assigns it to the node, which picks the request up from
 * the chain, runs the model with onnxruntime, makes the witness and the proof with the EZKL WASM
 * engine (in a worker thread), checks the proof off-chain, and fulfils the request; the gateway
 * verifies the proof on-chain against the request's input and calls the dApp back, which keeps the
 * verified label.
 */
import { formatEther, parseEventLogs, type Hex } from 'viem'
import { LOCAL_CHAINS, startLocalChain } from '../chains/local.ts'
import { confirm, deployContract, deployCore, registerModel, writeWithMargin } from '../chains/evm/deploy.ts'
import { openLocalPools } from '../chains/evm/nodes.ts'
import { ExampleClassifier, InferenceGateway } from '../contracts/artifacts/index.ts'
import { dequantize, quantize } from '../core/field.ts'
import { NO_STORAGE_REF } from '../core/storage-ref.ts'
import { loadModelArtifacts, modelDir } from '../core/manifest.ts'
import { createEzklWasmProver } from '../plugins/provers/ezkl-wasm/index.ts'
import { createOnnxRuntime } from '../plugins/runtimes/onnx/index.ts'
import { bold, dim, fmtMs, stage } from './ui.ts'

export type DemoOptions = {
  model: string
  /** Features as real numbers. */
  features: number[]
}

export async function runDemo(opts: DemoOptions): Promise<void> {
  const started = performance.now()
  const prover = createEzklWasmProver()
  const runtime = createOnnxRuntime()
  const chain = await stage(
    'start anvil',
    () => startLocalChain(LOCAL_CHAINS.hub),
    (c) => c.rpcUrl,
  )
  const { owner, node, user } = chain
  const stop = async () => {
    await Promise.allSettled([prover.dispose(), runtime.dispose(), chain.anvil.stop()])
  }
  const onSignal = () => {
    process.stderr.write('\ninterrupted: stopping anvil and workers\n')
    void stop().then(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const artifacts = await stage(
      'load model artifacts',
      () => loadModelArtifacts(modelDir(opts.model), { allowInsecureSrs: true /* a local anvil */ }),
      (a) =>
        `${a.manifest.name}: logrows ${a.manifest.logrows}, hashes checked${a.manifest.srs.insecure ? ', SRS is local (dev only)' : ''}`,
    )
    const core = await stage(
      'deploy verifier, registry, node registry, gateway',
      () => deployCore(owner, { allowInsecureSrs: true }),
      (d) => `gateway ${d.gateway}`,
    )
    const model = await stage(
      'register model (pinned VKA)',
      () => registerModel(owner, { registry: core.registry, model: opts.model, allowInsecureSrs: true }),
      (m) => `id ${m.modelId.slice(0, 10)}…, VKA ${m.vka}`,
    )
    await stage(
      'node joins the model’s pool',
      () => openLocalPools(owner, core.nodeRegistry, { models: [model.modelId], nodes: [node] }),
      (epoch) => `staked, registered, active from epoch ${epoch}`,
    )
    const dapp = await stage(
      'deploy dApp (ExampleClassifier)',
      () => deployContract(user, ExampleClassifier, [core.gateway, model.modelId]),
      (a) => a,
    )

    const input = opts.features.map((x) => quantize(x, artifacts.manifest.inputScale))
    const requested = await stage(
      'dApp requests inference',
      async () => {
        const price = await user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'price' })
        const { request, result } = await user.simulateContract({
          address: dapp,
          abi: ExampleClassifier.abi,
          functionName: 'classify',
          args: [input],
          value: price,
        })
        const receipt = await writeWithMargin(user, request)
        return { id: result, price, gas: receipt.gasUsed, block: receipt.blockNumber }
      },
      (r) => `request #${r.id}, paid ${formatEther(r.price)} ETH, ${r.gas} gas`,
    )

    const seen = await stage(
      'node sees InferenceRequested',
      async () => {
        const logs = await node.getContractEvents({
          address: core.gateway,
          abi: InferenceGateway.abi,
          eventName: 'InferenceRequested',
          fromBlock: requested.block,
          toBlock: requested.block,
        })
        const log = logs.find((l) => l.args.requestId === requested.id)
        if (!log?.args.input) throw new Error(`request ${requested.id} not found in block ${requested.block}`)
        return log.args
      },
      (a) => `input [${a.input!.join(', ')}] at scale ${artifacts.manifest.inputScale}`,
    )
    const requestInput = [...seen.input!]

    const ort = await stage(
      'inference (onnxruntime)',
      () =>
        runtime.run(
          artifacts,
          requestInput.map((q) => dequantize(q, artifacts.manifest.inputScale)),
        ),
      (r) => `[${r.output.map((x) => x.toFixed(4)).join(', ')}]`,
    )
    const witness = await stage(
      'witness (ezkl WASM)',
      () => prover.witness(artifacts, requestInput),
      (w) => `output [${w.output.join(', ')}] at scale ${artifacts.manifest.outputScale}`,
    )
    const proof = await stage(
      'prove (ezkl WASM, worker thread)',
      () => prover.prove(artifacts, witness.witness),
      (p) => `${(p.proof.length - 2) / 2} bytes`,
    )
    await stage('verify off-chain', async () => {
      const v = await prover.verify(artifacts, proof.proofJson)
      if (!v.ok) throw new Error(`the proof does not verify: ${v.reason}`)
      return v
    })
    const fulfilled = await stage(
      'fulfil: verify on-chain + callback',
      async () => {
        const { request } = await node.simulateContract({
          address: core.gateway,
          abi: InferenceGateway.abi,
          functionName: 'fulfill',
          args: [requested.id, requestInput, witness.output, proof.proof as Hex, { output: NO_STORAGE_REF, proof: NO_STORAGE_REF }],
        })
        const receipt = await confirm(node, await node.writeContract(request))
        const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceFulfilled' })
        return { gas: receipt.gasUsed, callback: event!.args.callbackStatus }
      },
      (f) => `${f.gas} gas, callback ${['succeeded', 'failed', 'skipped'][f.callback] ?? '?'}`,
    )
    if (fulfilled.callback !== 0) throw new Error('the dApp callback did not succeed')

    const result = await stage('read the verified result from the dApp', () =>
      user.readContract({ address: dapp, abi: ExampleClassifier.abi, functionName: 'classification', args: [requested.id] }),
    )
    const scores = witness.output.map((q) => dequantize(q, artifacts.manifest.outputScale))
    const maxDiff = Math.max(...scores.map((s, i) => Math.abs(s - ort.output[i]!)))
    console.log(
      `\n${bold('verified result')}: label ${result.label}, score ${dequantize(result.score, artifacts.manifest.outputScale).toFixed(4)}` +
        `  ${dim(`(scores [${scores.map((s) => s.toFixed(4)).join(', ')}], |circuit − onnxruntime| ≤ ${maxDiff.toExponential(2)})`)}` +
        `\n${dim(`total ${fmtMs(performance.now() - started)}`)}`,
    )
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await stop()
  }
}
