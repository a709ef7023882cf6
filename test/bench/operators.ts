/**
 * Bench, part 5: a network of operators on the local hub (anvil, the Temporal dev server with a
 * namespace per operator, arlocal). Each operator runs its workers as its own process
 * (`sertn worker` with its own configuration: key, namespace, data directory), as independent
 * operators would on their own machines.
 *
 * - throughput: the same burst of `requests` requests, served by a pool of one operator, then by a
 *   pool of two (a fresh network each): verified deliveries per second, from the first request's
 *   receipt to the last fulfilment on-chain; `operatorScaling` is two operators' rate over one's.
 * - gas: a hub request's transaction in all, and the part of it that opens and assigns its job in
 *   the node registry (`openJob`, read from the transaction's call trace); a reassignment (`reassign`:
 *   the missing node slashed, another drawn) made by the live operator's workflow once the stopped
 *   operator's window has passed.
 *
 * Each operator's worker process is pinned to a core of its own (`taskset -c i`: operator 1 on core 0,
 * operator 2 on core 1, the one-operator baseline on core 0), standing for the machine each operator
 * brings; the chain, Temporal and storage run unpinned beside them. Without `taskset`, or with one
 * core, nothing is pinned (`pinned: false` in the result) and the operators share the CPU.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getAddress, parseEventLogs, type Address, type Hex } from 'viem'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { mineToNextEpoch } from '../../chains/evm/nodes.ts'
import { LOCAL_CHAINS, startLocalNetwork, type LocalNetwork } from '../../chains/local.ts'
import { InferenceGateway, NodeRegistry, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { startProcess, type ManagedProcess } from '../../core/process.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { waitUntil } from '../support/chain.ts'
import { requestFromConsumer, type MadeRequest } from '../support/stack.ts'
import { log } from './stats.ts'

/** Whether operators' workers can be pinned to a core each. */
const PINNED = (() => {
  if (availableParallelism() < 2) return false
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const SERTN_CLI = join(REPO_ROOT, 'cli', 'sertn.ts')

export type OperatorsBench = {
  operators: OperatorScaling & {
    requests: number
    /** Whether each operator's workers ran on a core of their own. */
    pinned: boolean
    /** The same with the native prover. */
    native: OperatorScaling & { requests: number }
  }
  gasNodes: {
    /** A hub request's transaction in all (the request, its escrow, its job opened and assigned). */
    requestInference: number
    /** The part of it in `NodeRegistry.openJob`: the draw over the pool and the job's record. */
    openJob: number
    /** `NodeRegistry.reassign`: the missing node slashed, its miss counted, another node drawn. */
    reassign: number
  }
}

type Network = {
  local: LocalNetwork
  dataDir: string
  workers: ManagedProcess[]
  consumer: Address
  stop(): Promise<void>
}

async function startNetwork(operators: number, prover: 'ezkl-wasm' | 'ezkl-native'): Promise<Network> {
  const dataDir = await mkdtemp(join(tmpdir(), `sertn-bench-operators-${operators}-`))
  const local = await startLocalNetwork({
    chains: [{ name: 'hub', chainId: LOCAL_CHAINS.hub.chainId }],
    dataDir,
    services: true,
    // The watchers' default: polling faster buys the burst nothing and costs every core on the machine.
    pollingIntervalMs: 250,
    operators,
    config: { prover: { plugin: prover, poolSize: 1 } },
  })
  const workers: ManagedProcess[] = []
  const stop = async () => {
    for (const w of workers) await w.stop(10_000).catch(() => {})
    await local.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
  try {
    for (const [i, op] of local.operators.entries()) {
      const file = join(dataDir, `operator-${i + 1}.config.json`)
      await writeFile(file, `${JSON.stringify(op.config, null, 2)}\n`, { mode: 0o600 })
      const worker = [process.execPath, '--import', 'tsx', SERTN_CLI, 'worker', '--config', file, '--log-level', 'warn']
      const [command, ...args] = PINNED ? ['taskset', '-c', String(i % availableParallelism()), ...worker] : worker
      workers.push(startProcess({ name: `operator-${i + 1}`, command: command!, args, cwd: REPO_ROOT }))
    }
    const consumer = await deployContract(local.hub.user, RecordingConsumer, [local.network.hub.core.gateway])
    return { local, dataDir, workers, consumer, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

const stackOf = (n: Network) => ({
  chain: { ...n.local.hub, core: n.local.network.hub.core, demo: n.local.network.hub.models[0]!, stop: async () => {} },
})

async function fulfilments(n: Network, fromBlock: bigint): Promise<Map<bigint, { node: Address; blockNumber: bigint }>> {
  const events = await n.local.hub.user.getContractEvents({
    address: n.local.network.hub.core.gateway,
    abi: InferenceGateway.abi,
    eventName: 'InferenceFulfilled',
    fromBlock,
  })
  return new Map(events.map((e) => [e.args.requestId!, { node: getAddress(e.args.node!), blockNumber: e.blockNumber }]))
}

/** A warm-up request (workers up, model loaded), then the burst; deliveries per second over the burst. */
async function burstRate(n: Network, requests: number): Promise<{ rate: number; served: Address[] }> {
  const hub = n.local.hub.owner
  const warm = await requestFromConsumer(stackOf(n), n.consumer)
  await hub.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
  await waitUntil('the warm-up request fulfilled', async () => (await fulfilments(n, warm.block)).has(warm.id), 300_000, 100)
  const made: MadeRequest[] = []
  const t0 = Date.now()
  for (let i = 0; i < requests; i++) made.push(await requestFromConsumer(stackOf(n), n.consumer))
  await hub.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
  const done = await waitUntil(
    `${requests} requests fulfilled`,
    async () => {
      const f = await fulfilments(n, made[0]!.block)
      return made.every((r) => f.has(r.id)) ? f : undefined
    },
    900_000,
    // The bench's own polling shares the machine with the operators: a light touch.
    200,
  )
  const seconds = (Date.now() - t0) / 1000
  return { rate: requests / seconds, served: made.map((r) => done.get(r.id)!.node) }
}

/** The gas of the `openJob` call inside a request's transaction, from anvil's call tracer. */
async function openJobGas(n: Network, hash: Hex): Promise<number> {
  type Call = { to?: string; input: string; gasUsed: string; calls?: Call[] }
  const trace = (await n.local.hub.owner.request({
    method: 'debug_traceTransaction' as never,
    params: [hash, { tracer: 'callTracer' }] as never,
  })) as Call
  const registry = n.local.network.hub.core.nodeRegistry.toLowerCase()
  const find = (c: Call): Call | undefined => (c.to?.toLowerCase() === registry ? c : c.calls?.map(find).find(Boolean))
  const call = find(trace)
  if (!call) throw new Error(`no call to the node registry in ${hash}`)
  return Number(BigInt(call.gasUsed))
}

/** Stops the second operator, shortens the window, and waits for the first operator's workflow to reassign one of its jobs. */
async function reassignGas(n: Network): Promise<number> {
  const { owner } = n.local.hub
  const registry = n.local.network.hub.core.nodeRegistry
  await n.workers[1]!.stop(10_000)
  const setWindow = async (seconds: bigint) =>
    confirm(
      owner,
      await owner.writeContract({
        address: registry,
        abi: NodeRegistry.abi,
        functionName: 'setPenalty',
        args: [
          await penalty(n),
          await owner.readContract({ address: registry, abi: NodeRegistry.abi, functionName: 'requesterShareBps' }),
          seconds,
        ],
      }),
    )
  await setWindow(3n)
  await mineToNextEpoch(owner, registry)
  const stopped = n.local.operators[1]!.client.account.address
  for (let i = 0; i < 16; i++) {
    const r = await requestFromConsumer(stackOf(n), n.consumer)
    await owner.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    const job = await owner.readContract({
      address: registry,
      abi: NodeRegistry.abi,
      functionName: 'jobOf',
      args: [n.local.network.hub.core.gateway, r.id],
    })
    if (getAddress(job.node) !== getAddress(stopped)) continue
    const log = await waitUntil(
      'the reassignment',
      async () => {
        const logs = await owner.getContractEvents({
          address: registry,
          abi: NodeRegistry.abi,
          eventName: 'JobReassigned',
          args: { id: r.id },
          fromBlock: 0n,
        })
        return logs[0]
      },
      120_000,
      100,
    )
    const receipt = await owner.getTransactionReceipt({ hash: log.transactionHash })
    if (parseEventLogs({ abi: NodeRegistry.abi, logs: receipt.logs, eventName: 'Slashed' }).length !== 1)
      throw new Error('the reassignment slashed nobody')
    return Number(receipt.gasUsed)
  }
  throw new Error('16 requests and none assigned to the stopped operator')
}

async function penalty(n: Network): Promise<bigint> {
  return n.local.hub.owner.readContract({
    address: n.local.network.hub.core.nodeRegistry,
    abi: NodeRegistry.abi,
    functionName: 'missPenalty',
  })
}

/** One prover's burst, served by one operator and then by two. */
export type OperatorScaling = {
  prover: 'ezkl-wasm' | 'ezkl-native'
  /** Verified deliveries per second with one operator, and with two. */
  deliveriesPerSecond: { one: number; two: number }
  /** Two operators' rate over one's (goal: at least 1.8). */
  operatorScaling: number
  /** Requests each of the two operators served. */
  servedByEach: number[]
}

async function scaling(
  requests: number,
  prover: 'ezkl-wasm' | 'ezkl-native',
  onTwo?: (n: Network) => Promise<void>,
): Promise<OperatorScaling> {
  const rates: number[] = []
  let servedByEach: number[] = []
  for (const operators of [1, 2]) {
    log(`operators: ${requests} requests, ${operators} operator(s), ${prover}`)
    const n = await startNetwork(operators, prover)
    try {
      const { rate, served } = await burstRate(n, requests)
      rates.push(rate)
      log(`operators: ${operators} operator(s), ${prover}: ${rate.toFixed(2)} verified deliveries/s`)
      if (operators === 2) {
        servedByEach = n.local.operators.map((o) => served.filter((a) => a === getAddress(o.client.account.address)).length)
        await onTwo?.(n)
      }
    } finally {
      await n.stop()
    }
  }
  const [one, two] = rates as [number, number]
  return { prover, deliveriesPerSecond: { one: round2(one), two: round2(two) }, operatorScaling: round2(two / one), servedByEach }
}

/**
 * The burst with each operator's default prover (the WASM engine: single-threaded, so one core is
 * exactly what each operator brings), then with the native prover (multi-threaded, here held to
 * the same one core, where the proof is so short that the machine's shared chain, Temporal and
 * storage weigh as much as the proving).
 */
export async function benchOperators({ requests, nativeRequests }: { requests: number; nativeRequests: number }): Promise<OperatorsBench> {
  await ensureNativeEzkl()
  let gasNodes: OperatorsBench['gasNodes'] | undefined
  const wasm = await scaling(requests, 'ezkl-wasm', async (n) => {
    const r = await requestFromConsumer(stackOf(n), n.consumer)
    const receipt = await n.local.hub.owner.getTransactionReceipt({ hash: r.hash })
    gasNodes = { requestInference: Number(receipt.gasUsed), openJob: await openJobGas(n, r.hash), reassign: await reassignGas(n) }
    log(`operators: gas: request ${gasNodes.requestInference} (openJob ${gasNodes.openJob}), reassign ${gasNodes.reassign}`)
  })
  const native = await scaling(nativeRequests, 'ezkl-native')
  return { operators: { requests, ...wasm, pinned: PINNED, native: { requests: nativeRequests, ...native } }, gasNodes: gasNodes! }
}

const round2 = (x: number) => Math.round(x * 100) / 100
