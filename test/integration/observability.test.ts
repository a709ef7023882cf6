/**
 * The worker's observability on the real local stack (anvil, the Temporal dev server, arlocal):
 * a chain-io + inference + prover worker set through runWorkers with the health endpoint on a free
 * port serves one request; `/metrics` and `/readyz` are scraped before and after, and the
 * request's counters, the watcher's last scanned block, Temporal's own SDK metrics and the
 * request's log records (keyed by its request key, Temporal's included) are checked.
 */
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { InferenceGateway, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { createLogger } from '../../core/log.ts'
import { requestKey } from '../../core/types.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import { runWorkers } from '../../workflows/worker/index.ts'
import { boundedTeardown, DEMO_INPUT, startTestStack, type TestStack, workflowBundle } from '../support/stack.ts'

let stack: TestStack
let workers: Promise<void>
const stop = new AbortController()
let consumer: `0x${string}`
let url: string
const records: Record<string, unknown>[] = []

beforeAll(async () => {
  stack = await startTestStack()
  const destination = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const l of chunk.toString().split('\n')) if (l) records.push(JSON.parse(l) as Record<string, unknown>)
      done()
    },
  })
  let onUrl!: (u: string) => void
  const listening = new Promise<string>((r) => (onUrl = r))
  workers = runWorkers({
    config: { ...stack.config, observability: { ...stack.config.observability, http: { host: '127.0.0.1', port: 0 } } },
    roles: ['chain-io', 'inference', 'prover'],
    signal: stop.signal,
    workflowBundle: await workflowBundle(),
    // Debug: Temporal's own "Activity started" and "Workflow started" lines carry the workflow id.
    logger: createLogger({ level: 'debug', format: 'json', destination }),
    onHealthServer: onUrl,
  })
  workers.catch(() => undefined)
  url = await Promise.race([listening, workers.then(() => Promise.reject(new Error('runWorkers ended before its health server listened')))])
  consumer = await deployContract(stack.chain.user, RecordingConsumer, [stack.chain.core.gateway])
})

afterAll(async () => {
  await boundedTeardown([() => stop.abort(), () => workers?.catch(() => {}), () => stack?.stop()], {
    processGroups: () => stack?.processGroups() ?? [],
  })
})

type Ready = { ready: boolean; reasons: string[]; chains: Record<string, { lastScannedBlock?: number; head?: number; lagBlocks?: number }> }

const readyz = async () => {
  const r = await fetch(`${url}/readyz`)
  return { status: r.status, body: (await r.json()) as Ready }
}
const scrape = async () => {
  const r = await fetch(`${url}/metrics`)
  expect(r.status).toBe(200)
  return r.text()
}
/** The sum of a metric's samples whose line matches `labels` (a regex over the whole sample line). */
const sample = (text: string, line: RegExp): number =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#') && line.test(l))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe('observability', () => {
  test('behavior: one request moves its counters, the watcher and the readiness; Temporal SDK metrics and keyed logs come out', async () => {
    const chain = 'local'
    // Ready once Temporal answered and the watcher scanned.
    const before = await until('/readyz 200', async () => {
      const r = await readyz()
      return r.status === 200 ? r.body : undefined
    })
    expect(before.reasons).toEqual([])
    const scannedBefore = before.chains[chain]!.lastScannedBlock!
    expect(scannedBefore).toBeGreaterThanOrEqual(0)
    const m0 = await scrape()
    const proveOk = new RegExp(`^sertn_requests_total\\{chain="${chain}",stage="proveInference",outcome="ok"\\}`)
    const fulfilGas = new RegExp(`^sertn_gas_used_total\\{chain="${chain}",operation="fulfill"\\}`)
    expect(sample(m0, proveOk)).toBe(0)
    expect(sample(m0, fulfilGas)).toBe(0)

    // One request, confirmed by one block.
    const { user, core, demo } = stack.chain
    const value = await user.readContract({
      address: core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'quote',
      args: [demo.modelId, 200_000],
    })
    const { request, result: id } = await user.simulateContract({
      address: consumer,
      abi: RecordingConsumer.abi,
      functionName: 'request',
      args: [demo.modelId, [...DEMO_INPUT], 200_000],
      value,
    })
    const receipt = await confirm(user, await user.writeContract(request))
    await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    const key = requestKey(stack.chain.anvil.chain.id, core.gateway, id)
    expect((await waitForOutcome(stack.client, key)).stage).toBe('fulfilled')

    const m1 = await scrape()
    expect(sample(m1, proveOk)).toBe(1)
    for (const stage of ['resolveModel', 'runInference', 'uploadResult', 'fulfillRequest'])
      expect(
        sample(m1, new RegExp(`^sertn_requests_total\\{chain="${chain}",stage="${stage}",outcome="ok"\\}`)),
        stage,
      ).toBeGreaterThanOrEqual(1)
    expect(sample(m1, /^sertn_stage_duration_seconds_count\{stage="proveInference",outcome="ok"\}/)).toBe(1)
    expect(
      sample(m1, new RegExp(`^sertn_proving_duration_seconds_count\\{model="[^"]+",prover="${stack.config.prover.plugin}",rows="1"\\}`)),
    ).toBe(1)
    expect(sample(m1, fulfilGas)).toBeGreaterThan(100_000)
    expect(sample(m1, new RegExp(`^sertn_gas_spent_wei_total\\{chain="${chain}",operation="fulfill"\\}`))).toBeGreaterThan(0)
    expect(sample(m1, new RegExp(`^sertn_watcher_last_scanned_block\\{chain="${chain}"\\}`))).toBeGreaterThanOrEqual(
      Number(receipt.blockNumber),
    )
    expect(sample(m1, /^sertn_prover_slots /)).toBe(stack.config.prover.poolSize)
    // Temporal's own SDK metrics, from the Runtime's exporter, on the same endpoint.
    expect(m1).toMatch(/^temporal_\w+/m)

    // The watcher scanned past the request's block, and stays ready.
    const after = await readyz()
    expect(after.status).toBe(200)
    expect(after.body.chains[chain]!.lastScannedBlock!).toBeGreaterThan(scannedBefore)
    expect(after.body.chains[chain]!.lastScannedBlock!).toBeGreaterThanOrEqual(Number(receipt.blockNumber))
    expect((await fetch(`${url}/healthz`)).status).toBe(200)

    // Logs: the watcher's record and Temporal's workflow and activity records carry the request's key.
    const keyed = records.filter((r) => r.requestKey === key)
    expect(keyed.find((r) => r.component === 'watcher')).toMatchObject({
      chain,
      requestId: id.toString(),
      chainId: stack.chain.anvil.chain.id,
    })
    expect(keyed.some((r) => r.component === 'temporal-activity' || (r.component === 'temporal-worker' && r.activityType))).toBe(true)
    expect(keyed.some((r) => r.workflowType === 'requestWorkflow')).toBe(true)
  })
})
