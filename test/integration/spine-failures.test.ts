/**
 * Bad input ends in the error callback with a refund, never in silence (real local stack, workers
 * in this process; the prover worker separately, so that it can be held back):
 * - a model registered on-chain that this node has no artifacts for → the workflow fails the
 *   request with `ModelUnavailable`: the consumer's error callback runs, its escrow comes back, the
 *   gateway says Failed;
 * - a model whose circuit changes after the request and before the node proves → `fulfill` is
 *   rejected (`GatewayModelVersionChanged`) → the workflow fails the request with
 *   `ModelUnavailable` and a refund;
 * - requests of the wrong shape, oversized or unpaid are refused on-chain by the gateway itself
 *   (`GatewayInputShapeMismatch`, `GatewayInputTooLarge`, `GatewayInsufficientPayment`; every case
 *   is tested in test/integration/gateway.test.ts): the transaction reverts, no
 *   `InferenceRequested` is emitted, so they never reach a workflow — checked here once end to end.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { encodeFunctionData, keccak256, toHex, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { circuitParamsOf, confirm, deployContract, readManifest, registerModel } from '../../chains/evm/deploy.ts'
import { localArtifactRefs } from '../../core/artifacts.ts'
import { modelDir } from '../../core/manifest.ts'
import { InferenceGateway, ModelRegistry, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { waitFor } from '../../core/process.ts'
import { INFERENCE_ERROR_CODES } from '../../core/types.ts'
import { requestWorkflowHandle, waitForOutcome, waitForWorkflow } from '../../workflows/client.ts'
import { balanceOf, expectRevert, joinPools } from '../support/chain.ts'
import {
  boundedTeardown,
  CALLBACK_GAS,
  closedExecutionsOf,
  DEMO_INPUT,
  failedEventsOf,
  fulfilledEventsOf,
  mine,
  requestFromConsumer,
  startTestStack,
  startWorkers,
  within,
  type InProcessWorkers,
  type MadeRequest,
  type TestStack,
} from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const FAILED = 3
const MODEL_UNAVAILABLE = INFERENCE_ERROR_CODES.indexOf('ModelUnavailable')

let stack: TestStack
let workers: InProcessWorkers | undefined
let prover: InProcessWorkers | undefined
let consumer: Address
const served: string[] = []

beforeAll(async () => {
  stack = await startTestStack()
  workers = await startWorkers(stack, ['chain-io', 'inference'])
  prover = await startWorkers(stack, ['prover'])
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([() => prover?.stop(), () => workers?.stop(), () => stack?.stop()], {
    processGroups: () => stack?.processGroups() ?? [],
  })
})

/** Checks that `r` ended Failed on-chain with ModelUnavailable: one InferenceFailed, the consumer called back and refunded. */
async function expectFailedWithRefund(r: MadeRequest, consumerBefore: bigint) {
  const { user, core } = stack.chain
  const onChain = await user.readContract({ address: core.gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [r.id] })
  expect(onChain.status).toBe(FAILED)
  expect(await user.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'errorCodePlusOne', args: [r.id] })).toBe(
    BigInt(MODEL_UNAVAILABLE + 1),
  )
  expect(await balanceOf(user, consumer)).toBe(consumerBefore + r.escrow)
  const failed = await failedEventsOf(stack, r.id)
  expect(failed).toHaveLength(1)
  expect(failed[0]!.args.code).toBe(MODEL_UNAVAILABLE)
  expect(await fulfilledEventsOf(stack, r.id)).toHaveLength(0)
  expect((await closedExecutionsOf(stack.client, r.key)).map((x) => x.status.name)).toEqual(['COMPLETED'])
}

describe('requests the node cannot serve end in the error callback with a refund', () => {
  test('error: a model registered on-chain that the node has no artifacts for → failed with ModelUnavailable, refunded', async () => {
    // The demo's circuit, registered with artifacts that no model directory and no storage holds.
    const refs = await localArtifactRefs(modelDir('sertn-mlp-demo'))
    const unknown = await registerModel(stack.chain.owner, {
      registry: stack.chain.core.registry,
      model: 'sertn-mlp-demo',
      name: 'no-such-model',
      artifacts: { ...refs, manifestHash: keccak256(toHex('no such manifest')) },
      vka: stack.chain.demo.vka,
      allowInsecureSrs: true,
    })
    await joinPools(stack.chain, [unknown.modelId]) // the node serves it (and finds no artifacts)
    const r = await requestFromConsumer(stack, consumer, { modelId: unknown.modelId })
    served.push(r.key)
    const before = await balanceOf(stack.chain.user, consumer) // the escrow is with the gateway now
    expect(r.escrow).toBeGreaterThan(0n)
    await mine(stack, 1)

    const outcome = await within(60_000, 'the outcome', waitForOutcome(stack.client, r.key, 20_000))
    expect(outcome.stage).toBe('failed')
    expect(outcome.error?.code).toBe('ModelUnavailable')
    expect(outcome.error?.reason).toMatch(/^PluginError: .*not found/)
    await expectFailedWithRefund(r, before)
  })

  test('error: the model’s circuit changes after the request, before the node proves → fulfil rejected (ModelVersionChanged) → failed with ModelUnavailable, refunded', async () => {
    const { owner, core, demo } = stack.chain
    // The twin (same architecture, other weights) under its own id: the node has its artifacts.
    const twin = await registerModel(owner, { registry: core.registry, model: 'sertn-mlp-twin', allowInsecureSrs: true })
    await joinPools(stack.chain, [twin.modelId])

    await prover!.stop() // hold the proof back until the circuit has changed
    prover = undefined
    const r = await requestFromConsumer(stack, consumer, { modelId: twin.modelId })
    served.push(r.key)
    const before = await balanceOf(stack.chain.user, consumer)
    await mine(stack, 1)
    await waitForWorkflow(stack.client, r.key, 20_000)
    await waitFor('the proof to wait for a prover', () => pendingActivity(r.key, 'proveInference'), { timeoutMs: 20_000 })

    // The owner moves the model to another circuit (the demo's VKA): version 1 → 2.
    await updateCircuit(twin.modelId, demo.vka)
    const terms = await owner.readContract({
      address: core.registry,
      abi: ModelRegistry.abi,
      functionName: 'getModel',
      args: [twin.modelId],
    })
    expect(terms.version).toBe(2)

    prover = await startWorkers(stack, ['prover'])
    const outcome = await within(60_000, 'the outcome', waitForOutcome(stack.client, r.key))
    expect(outcome.stage).toBe('failed')
    expect(outcome.error?.code).toBe('ModelUnavailable')
    expect(outcome.error?.reason).toMatch(/^ModelVersionChangedError: .*GatewayModelVersionChanged/)
    expect(outcome.timings.prove?.attempts).toBe(1)
    await expectFailedWithRefund(r, before)
  })

  test('error: requests of the wrong shape, oversized or unpaid revert on-chain and leave no workflow', async () => {
    const { user, core, demo } = stack.chain
    const price = await user.readContract({
      address: core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'quote',
      args: [demo.modelId, CALLBACK_GAS],
    })
    const bad = [
      { why: 'GatewayInputShapeMismatch', input: DEMO_INPUT.slice(0, 3), value: price },
      { why: 'GatewayInputTooLarge', input: Array.from({ length: 1025 }, () => 1n), value: price },
      { why: 'GatewayInsufficientPayment', input: DEMO_INPUT, value: 0n },
    ]
    for (const { why, input, value } of bad) {
      const call = {
        address: core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'requestInference',
        args: [demo.modelId, [...input], CALLBACK_GAS],
      } as const
      expect((await expectRevert(user.simulateContract({ ...call, value }))).errorName).toBe(why)
      // Sent anyway (explicit gas, no estimate): mined, reverted, no event.
      const hash = await user.sendTransaction({ to: core.gateway, data: encodeFunctionData(call), value, gas: 3_000_000n })
      const receipt = await user.waitForTransactionReceipt({ hash })
      expect(receipt.status).toBe('reverted')
      expect(receipt.logs).toEqual([])
    }

    // A good request after them is the next id, and the only workflow started since.
    const control = await requestFromConsumer(stack, consumer)
    served.push(control.key)
    await mine(stack, 1)
    expect((await within(60_000, 'the control request’s outcome', waitForOutcome(stack.client, control.key, 20_000))).stage).toBe(
      'fulfilled',
    )
    await closedExecutionsOf(stack.client, control.key)
    const all: string[] = []
    for await (const w of stack.client.workflow.list({ query: `WorkflowType = 'requestWorkflow'` })) all.push(w.workflowId.split('@')[0]!)
    expect(all.sort()).toEqual([...served].sort())
    expect(control.id).toBe(BigInt(served.length))
  })
})

async function pendingActivity(key: string, type: string): Promise<boolean> {
  const raw = await stack.client.workflowService.describeWorkflowExecution({
    namespace: stack.client.options.namespace,
    execution: { workflowId: (await requestWorkflowHandle(stack.client, key)).workflowId },
  })
  return (raw.pendingActivities ?? []).some((a) => a.activityType?.name === type)
}

/** The model owner points `modelId` at another VKA (the rest of the circuit unchanged). */
async function updateCircuit(modelId: Hex, vka: Address) {
  const { owner, core } = stack.chain
  const artifacts = await owner.readContract({
    address: core.registry,
    abi: ModelRegistry.abi,
    functionName: 'getArtifacts',
    args: [modelId],
  })
  const code = await owner.getCode({ address: vka })
  await confirm(
    owner,
    await owner.writeContract({
      address: core.registry,
      abi: ModelRegistry.abi,
      functionName: 'updateCircuit',
      args: [modelId, circuitParamsOf(readManifest('sertn-mlp-twin').manifest, artifacts, vka, keccak256(code!))],
    }),
  )
}
