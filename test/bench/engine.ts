/**
 * Bench, part 1: proving times with @ezkljs/engine and on-chain gas for the demo model.
 *
 * Engine timings are medians over `runs`; gas comes from receipts: `verifier` is a transaction
 * calling the verifier alone with the same proof and instances, `callback` the gas the consumer's
 * callback used (from the InferenceFulfilled event).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { keccak256, parseEventLogs, toHex } from 'viem'
import { LOCAL_CHAINS, startLocalChain } from '../../chains/local.ts'
import { confirm, deployContract, deployCore, registerModel } from '../../chains/evm/deploy.ts'
import { openLocalPools } from '../../chains/evm/nodes.ts'
import { ExampleClassifier, Halo2VerifierReusable, InferenceGateway } from '../../contracts/artifacts/index.ts'
import { quantize, toFelt } from '../../core/field.ts'
import { loadModelArtifacts, modelDir } from '../../core/manifest.ts'
import { createEzklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'

import { log, median } from './stats.ts'

export const MODEL = 'sertn-mlp-demo'

export type EngineBench = {
  model: string
  logrows: number
  ms: { witness: number; prove: number; verify: number }
  proofBytes: number
  gas: { requestInference: number; fulfill: number; verifier: number; callback: number }
}

export async function benchEngineAndGas(RUNS: number): Promise<EngineBench> {
  const artifacts = await loadModelArtifacts(modelDir(MODEL), { allowInsecureSrs: true /* local anvil only */ })
  const sample = JSON.parse(readFileSync(join(modelDir(MODEL), 'input.json'), 'utf8')) as { input_data: number[][] }
  const input = sample.input_data[0]!.map((x) => quantize(x, artifacts.manifest.inputScale))

  const prover = createEzklWasmProver()
  const chain = await startLocalChain(LOCAL_CHAINS.hub)
  const { anvil, owner, node, user } = chain
  try {
    log(`warming up the WASM engine (${MODEL}, logrows ${artifacts.manifest.logrows})`)
    await prover.proveInference(artifacts, input)
    const times = { witness: [] as number[], prove: [] as number[], verify: [] as number[] }
    let last = await prover.proveInference(artifacts, input)
    for (let i = 0; i < RUNS; i++) {
      last = await prover.proveInference(artifacts, input)
      times.witness.push(last.witnessMs)
      times.prove.push(last.proveMs)
      times.verify.push(last.verifyMs)
      log(
        `run ${i + 1}/${RUNS}: witness ${last.witnessMs.toFixed(0)} ms, prove ${last.proveMs.toFixed(0)} ms, verify ${last.verifyMs.toFixed(0)} ms`,
      )
    }

    const core = await deployCore(owner, { allowInsecureSrs: true })
    const model = await registerModel(owner, { registry: core.registry, model: MODEL, allowInsecureSrs: true })
    await openLocalPools(owner, core.nodeRegistry, { models: [model.modelId], nodes: [node] })
    const classifier = await deployContract(user, ExampleClassifier, [core.gateway, model.modelId])

    // requestInference, as the gateway's own cost (an EOA requester).
    const value = await user.readContract({
      address: core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'quote',
      args: [model.modelId, 200_000],
    })
    const direct = await confirm(
      user,
      await user.writeContract({
        address: core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'requestInference',
        args: [model.modelId, input, 200_000],
        value,
      }),
    )

    // Storage ids as a node records them (non-zero, so their calldata costs what it will).
    const refs = { output: keccak256(toHex('bench-output')), proof: keccak256(toHex('bench-proof')) }
    // The dApp path: the example consumer requests, the node fulfils, the consumer is called back.
    const price = await user.readContract({ address: classifier, abi: ExampleClassifier.abi, functionName: 'price' })
    const { request, result: id } = await user.simulateContract({
      address: classifier,
      abi: ExampleClassifier.abi,
      functionName: 'classify',
      args: [input],
      value: price,
    })
    await confirm(user, await user.writeContract(request))
    const fulfilled = await confirm(
      node,
      await node.writeContract({
        address: core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'fulfill',
        args: [id, input, last.output, last.proof, refs],
      }),
    )
    const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: fulfilled.logs, eventName: 'InferenceFulfilled' })
    if (event?.args.callbackStatus !== 0) throw new Error('the consumer callback did not succeed')

    // The verifier alone, with the same proof and instances the gateway built.
    const instances = [...input, ...last.output].map(toFelt)
    const verified = await confirm(
      node,
      await node.writeContract({
        address: core.verifier,
        abi: Halo2VerifierReusable.abi,
        functionName: 'verifyProof',
        args: [model.vka, last.proof, instances],
      }),
    )

    const gas = {
      requestInference: Number(direct.gasUsed),
      fulfill: Number(fulfilled.gasUsed),
      verifier: Number(verified.gasUsed),
      callback: Number(event.args.callbackGasUsed),
    }
    log(
      `gas: fulfill ${gas.fulfill} = verifier ${gas.verifier} + callback ${gas.callback} + gateway ${gas.fulfill - gas.verifier - gas.callback}`,
    )
    const result = {
      model: MODEL,
      logrows: artifacts.manifest.logrows,
      ms: { witness: Math.round(median(times.witness)), prove: Math.round(median(times.prove)), verify: Math.round(median(times.verify)) },
      proofBytes: (last.proof.length - 2) / 2,
      gas,
    }
    return result
  } finally {
    await prover.dispose()
    await anvil.stop()
  }
}
