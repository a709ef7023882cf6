/**
 * The worked example consumer (LoanRiskScorer) on the real local stack: anvil with Sertn deployed
 * and the demo model registered, the Temporal dev server, arlocal, and the node's workers in this
 * process (the EZKL WASM prover). The lender pins the model version and artifacts hash it reads
 * from the registry, pays the quote, and the application is decided by a result the gateway
 * verified against the request's input; a pin to another artifacts hash is refused.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { confirm, deployContract } from '../../chains/evm/transactions.ts'
import { InferenceGateway, LoanRiskScorer, ModelRegistry } from '../../contracts/artifacts/index.ts'
import { expectRevert, waitUntil } from '../support/chain.ts'
import { boundedTeardown, DEMO_INPUT, mine, startTestStack, startWorkers, type InProcessWorkers, type TestStack } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const DECISION = { Pending: 1, Approved: 2, Declined: 3 } as const
const PENDING = 1
const FULFILLED = 2
const CALLBACK_SUCCEEDED = 0

let stack: TestStack
let workers: InProcessWorkers | undefined
let scorer: Address
let pinned: { version: number; artifactsHash: Hex }

beforeAll(async () => {
  stack = await startTestStack()
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  const { user, core, demo } = stack.chain
  const terms = await user.readContract({
    address: core.registry,
    abi: ModelRegistry.abi,
    functionName: 'tryGetRequestTerms',
    args: [demo.modelId],
  })
  pinned = { version: terms.version, artifactsHash: terms.artifactsHash }
  // The demo model scores 3 classes: the lender reads them as risk grades and approves grades 0 and 1.
  scorer = await deployContract(user, LoanRiskScorer, [core.gateway, demo.modelId, pinned.version, pinned.artifactsHash, 3, 1, 100_000])
})

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

describe('the example consumer on the real gateway', () => {
  test('default: an application is decided by a verified result of the pinned model', { timeout: 240_000 }, async () => {
    const { user, core } = stack.chain
    const price = await user.readContract({ address: scorer, abi: LoanRiskScorer.abi, functionName: 'price' })
    expect(price).toBe(
      await user.readContract({
        address: core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'quote',
        args: [stack.chain.demo.modelId, 100_000],
      }),
    )
    const { request, result: id } = await user.simulateContract({
      address: scorer,
      abi: LoanRiskScorer.abi,
      functionName: 'applyForLoan',
      args: [[...DEMO_INPUT]],
      value: price,
    })
    const requested = await confirm(user, await user.writeContract(request))
    const [event] = parseEventLogs({ abi: InferenceGateway.abi, logs: requested.logs, eventName: 'InferenceRequested' })
    expect(event?.args).toMatchObject({ requestId: id, requester: scorer, modelVersion: pinned.version, input: [...DEMO_INPUT] })
    await mine(stack)

    const settled = await waitUntil(
      'the gateway to settle the request',
      async () => {
        const r = await user.readContract({ address: core.gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [id] })
        return r.status !== PENDING && r
      },
      200_000,
      250,
    )
    expect(settled.status).toBe(FULFILLED)
    const [fulfilled] = await user.getContractEvents({
      address: core.gateway,
      abi: InferenceGateway.abi,
      eventName: 'InferenceFulfilled',
      args: { requestId: id },
      fromBlock: requested.blockNumber,
    })
    expect(fulfilled?.args.callbackStatus).toBe(CALLBACK_SUCCEEDED)
    const output = fulfilled!.args.output!
    expect(output).toHaveLength(3)
    // The consumer decided on the very output the gateway verified.
    const grade = output.reduce((best, v, i, a) => (v > a[best]! ? i : best), 0)
    const application = await user.readContract({ address: scorer, abi: LoanRiskScorer.abi, functionName: 'application', args: [id] })
    expect(application).toMatchObject({
      applicant: user.account.address,
      grade,
      decision: grade <= 1 ? DECISION.Approved : DECISION.Declined,
    })
    expect(
      (await user.readContract({ address: core.gateway, abi: InferenceGateway.abi, functionName: 'getRequest', args: [id] })).status,
    ).toBe(FULFILLED)
    expect(
      await user.readContract({
        address: scorer,
        abi: LoanRiskScorer.abi,
        functionName: 'openApplicationOf',
        args: [user.account.address],
      }),
    ).toBe(0n)
  })

  test('security: a lender pinned to other artifacts is refused by the real gateway', async () => {
    const { user, core, demo } = stack.chain
    const other: Hex = `0x${'bb'.repeat(32)}`
    const stale = await deployContract(user, LoanRiskScorer, [core.gateway, demo.modelId, pinned.version, other, 3, 1, 100_000])
    const price = await user.readContract({ address: stale, abi: LoanRiskScorer.abi, functionName: 'price' })
    const r = await expectRevert(
      user.simulateContract({
        address: stale,
        abi: LoanRiskScorer.abi,
        functionName: 'applyForLoan',
        args: [[...DEMO_INPUT]],
        value: price,
      }),
    )
    expect(r).toEqual({ errorName: 'GatewayModelArtifactsMismatch', args: [other, pinned.artifactsHash] })
  })
})
