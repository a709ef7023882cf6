/**
 * The durable spine end to end on the real local stack: anvil, the Temporal dev server, arlocal,
 * the workers in this process with the EZKL WASM prover. A request on the gateway becomes one
 * workflow that runs the model, proves, stores the output and the proof, and fulfils on-chain.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { InferenceGateway, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { base64UrlIdOf, storageRefOf } from '../../core/storage-ref.ts'
import { requestKey } from '../../core/types.ts'
import { arweaveStorage } from '../../plugins/storage/arweave/index.ts'
import { getRequestStatus, waitForOutcome } from '../../workflows/client.ts'
import { runWorkers } from '../../workflows/worker/index.ts'
import { boundedTeardown, DEMO_INPUT, startTestStack, workflowBundle, type TestStack } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

let stack: TestStack
let workers: Promise<void>
const stop = new AbortController()
let consumer: `0x${string}`

beforeAll(async () => {
  stack = await startTestStack()
  workers = runWorkers({
    config: stack.config,
    roles: ['chain-io', 'inference', 'prover'],
    signal: stop.signal,
    workflowBundle: await workflowBundle(),
    log: () => {},
  })
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([() => stop.abort(), () => workers?.catch(() => {}), () => stack?.stop()], {
    processGroups: () => stack?.processGroups() ?? [],
  })
})

async function request(input: bigint[]): Promise<bigint> {
  const { user, core, demo } = stack.chain
  const value = await user.readContract({
    address: core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'quote',
    args: [demo.modelId, 200_000],
  })
  const { request, result } = await user.simulateContract({
    address: consumer,
    abi: RecordingConsumer.abi,
    functionName: 'request',
    args: [demo.modelId, input, 200_000],
    value,
  })
  await confirm(user, await user.writeContract(request))
  await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never }) // one confirmation
  return result
}

describe('request workflow', () => {
  test('default: a request ends fulfilled on-chain, with its output and proof stored', async () => {
    const input = [...DEMO_INPUT]
    const id = await request(input)
    const key = requestKey(stack.chain.anvil.chain.id, stack.chain.core.gateway, id)

    const outcome = await waitForOutcome(stack.client, key)
    expect(outcome.stage).toBe('fulfilled')
    const onChain = await stack.chain.user.readContract({
      address: stack.chain.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'getRequest',
      args: [id],
    })
    expect(onChain.status).toBe(2)
    const output = await stack.chain.user.readContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: 'outputOf',
      args: [id],
    })
    expect(output.map(String)).toEqual(outcome.output)

    // The stored proof is the delivered one, and reads back hash-checked.
    const storage = arweaveStorage({ port: Number(new URL(stack.arlocal.url).port), wallet: stack.config.storage.arweave.walletFile! })
    try {
      const proof = await storage.get(outcome.storage!.proof)
      expect(proof.length).toBe(3072)
      const doc = JSON.parse(new TextDecoder().decode(await storage.get(outcome.storage!.output))) as { key: string; output: string[] }
      expect(doc).toMatchObject({ key, output: outcome.output })
    } finally {
      await storage.dispose()
    }

    // The storage ids are recorded on-chain with the result.
    const [fulfilled] = await stack.chain.user.getContractEvents({
      address: stack.chain.core.gateway,
      abi: InferenceGateway.abi,
      eventName: 'InferenceFulfilled',
      args: { requestId: id },
      fromBlock: 0n,
    })
    expect(fulfilled!.args.artifacts).toEqual({
      output: storageRefOf(outcome.storage!.output),
      proof: storageRefOf(outcome.storage!.proof),
    })
    expect(base64UrlIdOf(fulfilled!.args.artifacts!.proof)).toBe(outcome.storage!.proof.id)

    const status = await getRequestStatus(stack.client, key)
    expect(status.running).toBe(false)
    for (const stage of ['inference', 'witness', 'prove', 'verify', 'store', 'fulfil'] as const) {
      expect(status.timings[stage], stage).toBeDefined()
    }
    expect(status.timings.prove!.attempts).toBe(1)
  })
})
