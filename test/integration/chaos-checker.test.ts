/**
 * The chaos checker on a real local stack (anvil with Sertn, the Temporal dev server, arlocal, the
 * workers in this process): real requests from a recording and a reverting consumer served with
 * real proofs (one alone, three in a batch whose rebates stay claimable), two invalid requests sent as real reverting transactions, one request that expires
 * and is refunded. The record of that run checks clean; then each rule is shown to fail on what the
 * chains really hold: another model's onnx, a record that disagrees with the chain, an invalid
 * transaction expected to fail otherwise, a gateway holding a wei it does not owe, a storage
 * gateway serving tampered proofs, a request left unserved past its deadline. (Doubled outcomes
 * and payments to the wrong node cannot be produced without faking the contracts, which refuse them.)
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { encodeFunctionData, toHex, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deployContract } from '../../chains/evm/deploy.ts'
import { registerModelOnNetwork } from '../../chains/evm/register-model.ts'
import { arweaveStorage, createFundedWallet } from '../../plugins/storage/arweave/index.ts'
import { InferenceGateway, RecordingConsumer, RevertingConsumer } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { modelDir } from '../../core/manifest.ts'
import { startProcess } from '../../core/process.ts'
import { base64UrlIdOf } from '../../core/storage-ref.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { summarize } from '../chaos/check.ts'
import { checkRun, type ChaosCheckReport, type CheckRunOptions } from '../chaos/checker.ts'
import type { ChaosRecord, ChaosRequest } from '../chaos/record.ts'
import { chaosRecordFromJson, chaosRecordToJson, saveChaosRecord } from '../chaos/record-io.ts'
import { REPO } from '../support/cli.ts'
import { increaseTime, joinPools } from '../support/chain.ts'
import {
  boundedTeardown,
  CALLBACK_GAS,
  DEMO_INPUT,
  DEMO_INPUT_SCALE,
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

let stack: TestStack
let workers: InProcessWorkers | undefined
let tamperer: Server | undefined
let record: ChaosRecord
let fulfilledKeys: string[]
let timeout: number
/** The model served (the demo's circuit, its artifacts on arlocal). */
let modelId: Hex
/** The served batch's request ids (its rebate claim). */
let batch: bigint[]

const ZERO: Address = '0x0000000000000000000000000000000000000000'

beforeAll(async () => {
  stack = await startTestStack()
  const { user, owner, core, anvil, stranger } = stack.chain
  // The demo model under a name of its own, its artifacts published on arlocal (the proofs are
  // re-checked against the circuit the registry pins there), served by the stack's node.
  const { jwk } = await createFundedWallet(undefined, stack.arlocal.url)
  const publisher = arweaveStorage({ port: stack.arlocal.port, wallet: jwk, mineAfterPost: true })
  try {
    const registered = await registerModelOnNetwork({
      model: 'sertn-mlp-demo',
      name: 'chaos-mlp',
      chains: [{ name: 'local', client: owner, registry: core.registry, hub: true }],
      storage: publisher,
      allowInsecureSrs: true,
    })
    modelId = registered.modelId
  } finally {
    await publisher.dispose()
  }
  await joinPools(stack.chain, [modelId])
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'])
  const recording = await deployContract(user, RecordingConsumer, [core.gateway])
  const reverting = await deployContract(user, RevertingConsumer, [core.gateway])
  const fromBlock = (await user.getBlockNumber()) + 1n
  const requests: ChaosRequest[] = []
  const recordOf = (r: MadeRequest, consumer: Address, input: readonly bigint[], expectExpiry?: boolean): ChaosRequest => ({
    chain: 'hub',
    requestId: r.id,
    key: r.key,
    consumer,
    modelId,
    input: [...input],
    callbackGasLimit: CALLBACK_GAS,
    txHash: r.hash,
    sentAt: Date.now(),
    ...(expectExpiry ? { expectExpiry } : {}),
  })

  // Served: one alone, then three in a batch (its rebates owed): two for the recording consumer, one for the reverting one.
  const other = [1.5, 0.25, -3, 1].map((x) => quantize(x, DEMO_INPUT_SCALE))
  const third = [-0.5, 2.5, 0.75, -1.5].map((x) => quantize(x, DEMO_INPUT_SCALE))
  const serve = async (batch: [Address, readonly bigint[]][]) => {
    const made: ChaosRequest[] = []
    for (const [consumer, input] of batch)
      made.push(recordOf(await requestFromConsumer(stack, consumer, { modelId, input }), consumer, input))
    await mine(stack, 1)
    for (const q of made) expect((await within(180_000, `${q.key} served`, waitForOutcome(stack.client, q.key))).stage).toBe('fulfilled')
    requests.push(...made)
  }
  await serve([[recording, DEMO_INPUT]])
  await workers.stop()
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], {
    config: { ...stack.config, prover: { ...stack.config.prover, plugin: 'ezkl-native' }, batching: { enabled: true, windowMs: 4_000 } },
  })
  await serve([
    [recording, other],
    [reverting, DEMO_INPUT],
    [recording, third],
  ])
  fulfilledKeys = requests.map((q) => q.key)
  await workers.stop()
  workers = undefined
  const rebates = await user.getContractEvents({ address: core.gateway, abi: InferenceGateway.abi, eventName: 'BatchRebate', fromBlock })
  expect(rebates).toHaveLength(1) // the batch's rows, in the order the batch named them
  expect([...rebates[0]!.args.requestIds!].sort()).toEqual([requests[1]!.requestId, requests[2]!.requestId, requests[3]!.requestId])
  batch = rebates[0]!.args.requestIds as bigint[]

  // Invalid: unpaid and the wrong shape, sent anyway with an explicit gas limit (mined, reverted).
  const invalid: ChaosRecord['invalid'] = []
  const price = await user.readContract({
    address: core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'quote',
    args: [modelId, CALLBACK_GAS],
  })
  for (const [kind, expectedError, input, value] of [
    ['unpaid', 'GatewayInsufficientPayment', DEMO_INPUT, 0n],
    ['wrong-shape', 'GatewayInputShapeMismatch', DEMO_INPUT.slice(0, 3), price],
  ] as const) {
    const data = encodeFunctionData({
      abi: InferenceGateway.abi,
      functionName: 'requestInference',
      args: [modelId, [...input], CALLBACK_GAS],
    })
    const hash = await user.sendTransaction({ to: core.gateway, data, value, gas: 3_000_000n })
    expect((await user.waitForTransactionReceipt({ hash })).status).toBe('reverted')
    invalid.push({ chain: 'hub', kind, expectedError, txHash: hash })
  }

  // Expires unserved (no workers now) and is refunded by anyone after its deadline.
  const config = await user.readContract({ address: core.gateway, abi: InferenceGateway.abi, functionName: 'config' })
  timeout = config.requestTimeout
  const expiring = await requestFromConsumer(stack, recording, { modelId })
  requests.push(recordOf(expiring, recording, DEMO_INPUT, true))
  await increaseTime(user, timeout + 1)
  const refund = await stranger.writeContract({
    address: core.gateway,
    abi: InferenceGateway.abi,
    functionName: 'refund',
    args: [expiring.id],
  })
  expect((await stranger.waitForTransactionReceipt({ hash: refund })).status).toBe('success')

  record = {
    seed: 15,
    startedAt: Date.now(),
    chains: [
      {
        name: 'hub',
        chainId: anvil.chain.id,
        rpcUrl: anvil.rpcUrl,
        role: 'hub',
        gateway: core.gateway,
        registry: core.registry,
        fromBlock,
        confirmations: 1,
      },
    ],
    hub: { market: ZERO, nodeRegistry: core.nodeRegistry },
    nodes: [stack.chain.node.account.address],
    models: { [modelId]: modelDir('sertn-mlp-demo') },
    storageUrl: stack.arlocal.url,
    consumers: [
      { chain: 'hub', address: recording, behaviour: 'recording' },
      { chain: 'hub', address: reverting, behaviour: 'reverting' },
    ],
    requests,
    invalid,
    faults: [],
  }
}, 600_000)

afterAll(async () => {
  await boundedTeardown(
    [() => new Promise((r) => (tamperer ? tamperer.close(r) : r(undefined))), () => workers?.stop(), () => stack?.stop()],
    {
      processGroups: () => stack?.processGroups() ?? [],
    },
  )
})

/** The record, changed by `edit` (a deep copy through its JSON). */
function recordWith(edit: (r: ChaosRecord) => void): ChaosRecord {
  const copy = chaosRecordFromJson(chaosRecordToJson(record))
  edit(copy)
  return copy
}

async function check(r: ChaosRecord, options: CheckRunOptions = {}): Promise<ChaosCheckReport> {
  const report = await checkRun(r, options)
  console.log(summarize(report))
  return report
}

const rulesOf = (r: ChaosCheckReport) => [...new Set(r.all.map((x) => x.rule))]

describe('the chaos checker', () => {
  test('default: the run checks clean: every request ended once, every wei accounted for, outputs and proofs verified', async () => {
    const r = await check(record)
    expect(r.all).toEqual([])
    expect(r).toMatchObject({
      requests: 5,
      fulfilled: 4,
      failed: 0,
      refunded: 1,
      pending: 0,
      lost: 0,
      doubled: 0,
      invalidRefused: 2,
      violations: 0,
      outputsChecked: 4,
      proofsChecked: 4,
      proofsToCheck: 4,
      settlementsTraced: 3,
    })
    expect(r.firstViolation).toBeUndefined()
    expect(r.chains[0]!.balance).toBe(r.chains[0]!.owes)
  })

  test("error: outputs re-run on another model's onnx (the twin's weights) → an output violation per fulfilled request", async () => {
    const r = await check(
      recordWith((x) => {
        x.models = { [modelId]: modelDir('sertn-mlp-twin') }
      }),
      { proofs: 0 },
    )
    expect(rulesOf(r)).toEqual(['output'])
    expect(r.all.map((x) => x.subject).sort()).toEqual([...fulfilledKeys].sort())
    expect(r.firstViolation!.message).toMatch(/onnxruntime \(sertn-mlp-twin\) gives .* the tolerance is 0\.01/)
  })

  test('error: a record whose input differs from the chain’s → an accepted violation (the chain’s input is what is checked)', async () => {
    const r = await check(
      recordWith((x) => {
        x.requests[1]!.input[0] = x.requests[1]!.input[0]! + 1n
      }),
      { proofs: 0, skipOutputs: true },
    )
    expect(r.all).toHaveLength(1)
    expect(r.firstViolation).toMatchObject({ rule: 'accepted', subject: record.requests[1]!.key })
    expect(r.firstViolation!.message).toMatch(/the record disagrees with the chain: input/)
  })

  test('error: a fulfilled request the record says was meant to expire → an expiry violation', async () => {
    const r = await check(
      recordWith((x) => {
        const q = x.requests.find((y) => y.key === fulfilledKeys[0])!
        q.expectExpiry = true
      }),
      { proofs: 0, skipOutputs: true },
    )
    expect(r.all).toHaveLength(1)
    expect(r.firstViolation).toMatchObject({ rule: 'expiry', subject: fulfilledKeys[0] })
    expect(r.firstViolation!.message).toMatch(/meant to expire .* but it was fulfilled in 0x/)
  })

  test('error: an invalid transaction expected to revert with another error → an invalid violation', async () => {
    const r = await check(
      recordWith((x) => {
        x.invalid[0]!.expectedError = 'GatewayUnknownModel'
      }),
      { proofs: 0, skipOutputs: true },
    )
    expect(r.all).toHaveLength(1)
    expect(r.firstViolation!.rule).toBe('invalid')
    expect(r.firstViolation!.message).toBe('unpaid: reverted with GatewayInsufficientPayment, GatewayUnknownModel was expected')
    expect(r.invalidRefused).toBe(1)
  })

  test('error: the gateway holds a wei it does not owe → a ledger violation', async () => {
    const { owner, core } = stack.chain
    const balance = await owner.getBalance({ address: core.gateway })
    await owner.request({ method: 'anvil_setBalance' as never, params: [core.gateway, toHex(balance + 1n)] as never })
    try {
      const r = await check(record, { proofs: 0, skipOutputs: true })
      expect(r.all).toHaveLength(1)
      expect(r.firstViolation).toMatchObject({ rule: 'ledger', subject: core.gateway })
      expect(r.firstViolation!.message).toMatch(/over by 1$/)
    } finally {
      await owner.request({ method: 'anvil_setBalance' as never, params: [core.gateway, toHex(balance)] as never })
    }
  })

  test('error: a storage gateway serving tampered proofs → a proof violation per fulfilled request', async () => {
    const { user, core } = stack.chain
    const events = await user.getContractEvents({
      address: core.gateway,
      abi: InferenceGateway.abi,
      eventName: 'InferenceFulfilled',
      fromBlock: 0n,
    })
    const proofIds = new Set(events.map((e) => base64UrlIdOf(e.args.artifacts!.proof as Hex)))
    expect(proofIds.size).toBe(2) // one alone, one for the batch
    tamperer = await tamperingProxy(stack.arlocal.url, proofIds)
    const url = `http://127.0.0.1:${(tamperer.address() as AddressInfo).port}`
    const r = await check(
      recordWith((x) => {
        x.storageUrl = url
      }),
      { skipOutputs: true },
    )
    expect(rulesOf(r)).toEqual(['proof'])
    expect(r.all.map((x) => x.subject).sort()).toEqual([...fulfilledKeys].sort())
    for (const v of r.all) expect(v.message).toMatch(/^proof: the proof .* does not verify/)
  })

  test('behavior: once the batch’s rebates are released, the gateway owes them no more and still balances', async () => {
    const before = await check(record, { proofs: 0, skipOutputs: true })
    const { stranger, core } = stack.chain
    const hash = await stranger.writeContract({
      address: core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'releaseBatch',
      args: [batch],
    })
    expect((await stranger.waitForTransactionReceipt({ hash })).status).toBe('success')
    const after = await check(record, { proofs: 0, skipOutputs: true })
    expect(after.violations).toBe(0)
    expect(before.chains[0]!.owes - after.chains[0]!.owes).toBeGreaterThan(0n)
    expect(after.chains[0]!.balance).toBe(after.chains[0]!.owes)
  })

  test('default: `tsx test/chaos/check.ts <record.json>` prints a summary and the report as one JSON line; exit 0 clean, 1 on a violation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chaos-check-'))
    try {
      const clean = join(dir, 'clean.json')
      const wrong = join(dir, 'wrong.json')
      await saveChaosRecord(clean, record)
      await saveChaosRecord(
        wrong,
        recordWith((x) => {
          x.invalid[1]!.expectedError = 'GatewayInputTooLarge'
        }),
      )
      const ok = await runCheck(clean)
      expect(ok.code).toBe(0)
      expect(ok.out).toContain('requests 5: 4 fulfilled, 0 failed, 1 refunded, 0 pending, 0 lost, 0 doubled')
      expect(JSON.parse(ok.json)).toMatchObject({ requests: 5, violations: 0, chains: [{ name: 'hub', balance: expect.any(String) }] })
      const bad = await runCheck(wrong)
      expect(bad.code).toBe(1)
      expect(JSON.parse(bad.json).firstViolation).toMatchObject({ rule: 'invalid' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('error: a request left unserved: pending within its deadline, lost after it (never refunded)', async () => {
    const recording = record.consumers[0]!.address
    const r = await requestFromConsumer(stack, recording, { modelId })
    const pending = await check(record, { proofs: 0, skipOutputs: true })
    expect(pending).toMatchObject({ requests: 6, pending: 1, lost: 0, violations: 0 })

    await increaseTime(stack.chain.user, timeout + 1)
    const lost = await check(record, { proofs: 0, skipOutputs: true })
    expect(lost).toMatchObject({ requests: 6, pending: 0, lost: 1, violations: 1 })
    expect(lost.firstViolation).toMatchObject({ rule: 'lost', subject: r.key })
    // Its escrow is still owed, and held: the gateway's ledger balances.
    expect(lost.chains[0]!.balance).toBe(lost.chains[0]!.owes)
  })
})

/** Runs the checker's command line on `file` (proofs not re-verified: the tests above do). */
async function runCheck(file: string): Promise<{ code: number | null; out: string; json: string }> {
  const lines: string[] = []
  const proc = startProcess({
    name: 'chaos-check',
    command: process.execPath,
    args: ['--import', 'tsx', 'test/chaos/check.ts', file, '--proofs', '0'],
    cwd: REPO,
    onLine: (line) => lines.push(line),
  })
  const timer = setTimeout(() => void proc.stop(), 60_000)
  try {
    const code = await proc.closed
    return { code, out: lines.join('\n'), json: lines.find((l) => l.startsWith('{"requests"')) ?? '' }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * An HTTP proxy in front of `upstream` (arlocal) that serves each of `proofIds` with one byte
 * flipped in the middle, and everything else as it is.
 */
async function tamperingProxy(upstream: string, proofIds: ReadonlySet<string>): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      try {
        const answer = await fetch(`${upstream}${req.url}`, { method: req.method ?? 'GET' })
        const body = new Uint8Array(await answer.arrayBuffer())
        if (proofIds.has((req.url ?? '').replace(/^\//, '')) && body.byteLength > 0) body[body.byteLength >> 1]! ^= 0x01
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' })
        res.end(body)
      } catch (err) {
        res.writeHead(502)
        res.end(String(err))
      }
    })()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return server
}
