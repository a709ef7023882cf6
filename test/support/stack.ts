/**
 * The local stack for workflow tests: anvil with Sertn deployed, the Temporal dev server
 * (persisted to a file), arlocal with a funded wallet, and a node configuration pointing at them,
 * assembled by the local network module (chains/local.ts). Every process is stopped by `stop()`,
 * in reverse order.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, WorkflowNotFoundError, type WorkflowExecutionInfo } from '@temporalio/client'
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker'
import { parseEventLogs, toHex, type Address, type Hex } from 'viem'
import { anvilPrivateKey } from '../../chains/evm/clients.ts'
import { cursorFileName } from '../../chains/evm/plugin/cursor-store.ts'
import { confirm, readManifest } from '../../chains/evm/deploy.ts'
import { LOCAL_CHAINS, startLocalNetwork, type LocalNetwork } from '../../chains/local.ts'
import { InferenceGateway, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import type { SertnConfig } from '../../core/config.ts'
import { quantize } from '../../core/field.ts'
import { waitFor } from '../../core/process.ts'
import { requestKey, type RequestKey } from '../../core/types.ts'
import type { ArlocalInstance } from '../../plugins/storage/arweave/index.ts'
import { findRequestWorkflows } from '../../workflows/client.ts'
import { requestWorkflowIdOf } from '../../workflows/messages.ts'
import type { TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'
import { runWorkers, WORKFLOWS_PATH, type WorkerRole } from '../../workflows/worker/index.ts'
import type { TestChain } from './chain.ts'

export type TestStack = {
  chain: TestChain
  temporal: TemporalDevServer
  arlocal: ArlocalInstance
  client: Client
  config: SertnConfig
  dataDir: string
  dbFile: string
  /** Restarts the Temporal server on the same port and database. */
  restartTemporal(): Promise<void>
  /** The process groups of the stack's child processes (anvil, Temporal, arlocal), for a last-resort kill. */
  processGroups(): number[]
  stop(): Promise<void>
}

/** The node's private key: anvil account 1 (authorised on the test gateway). */
export function nodePrivateKey(): `0x${string}` {
  return anvilPrivateKey(1)
}

/**
 * A local network of one chain (the hub, named `local` in the configuration) with the node's
 * services, from the local network module; `chain` exposes it as the chain-level tests know it.
 */
export async function startTestStack(options: { confirmations?: number; pollingIntervalMs?: number } = {}): Promise<TestStack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sertn-stack-'))
  let local: LocalNetwork
  try {
    local = await startLocalNetwork({
      chains: [{ name: 'local', chainId: LOCAL_CHAINS.hub.chainId }],
      dataDir,
      services: true,
      ...(options.confirmations !== undefined ? { confirmations: options.confirmations } : {}),
      pollingIntervalMs: options.pollingIntervalMs ?? 50,
    })
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true })
    throw err
  }
  const services = local.services!
  const { anvil, owner, node, user, stranger } = local.hub
  const chain: TestChain = {
    anvil,
    owner,
    node,
    user,
    stranger,
    core: local.network.hub.core,
    demo: local.network.hub.models[0]!,
    stop: () => anvil.stop(),
  }
  return {
    chain,
    get temporal() {
      return services.temporal
    },
    arlocal: services.arlocal,
    client: new Client({ connection: services.connection }),
    config: local.config,
    dataDir,
    dbFile: services.dbFile,
    restartTemporal: () => services.restartTemporal(),
    processGroups: () => local.processGroups(),
    async stop() {
      await local.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined
/** The request workflow bundled once per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger })
  return bundle
}

const noop = () => {}
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop }

// ─────────────── helpers for the spine tests (test/integration/spine-*.test.ts) ───────────────

/** SIGKILLs each process group (one that is gone already is skipped). */
export function killProcessGroups(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
}

/**
 * Teardown that cannot hang or throw: runs `steps` in order within `timeoutMs` in all; when time
 * runs out the remaining steps are abandoned and `processGroups()` are SIGKILLed.
 */
export async function boundedTeardown(
  steps: readonly (() => Promise<unknown> | unknown)[],
  { timeoutMs = 45_000, processGroups = () => [] }: { timeoutMs?: number; processGroups?: () => readonly number[] } = {},
): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))
  const run = (async () => {
    for (const step of steps) {
      try {
        await step()
      } catch (err) {
        console.warn(`[teardown] ${String(err)}`)
      }
    }
  })()
  const how = await Promise.race([run.then(() => 'done' as const), timedOut])
  clearTimeout(timer)
  if (how === 'timeout') {
    console.warn(`[teardown] still running after ${timeoutMs} ms: killing the process groups`)
    killProcessGroups(processGroups())
  }
}

export type InProcessWorkers = {
  /** Everything the workers and watchers logged. */
  logs: string[]
  /** Settles when the workers and watchers have stopped. */
  done: Promise<void>
  /** Stops them (graceful), waiting at most `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>
}

/** Runs `runWorkers` for `roles` in this process with the bundled request workflow. */
export async function startWorkers(
  stack: Pick<TestStack, 'config'>,
  roles: readonly WorkerRole[],
  { config = stack.config }: { config?: SertnConfig } = {},
): Promise<InProcessWorkers> {
  const abort = new AbortController()
  const logs: string[] = []
  const done = runWorkers({ config, roles, signal: abort.signal, workflowBundle: await workflowBundle(), log: (l) => void logs.push(l) })
  done.catch((err: unknown) => logs.push(`[runWorkers] ${String(err)}`))
  return {
    logs,
    done,
    async stop(timeoutMs = 15_000) {
      abort.abort()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([done.catch(() => {}), new Promise((r) => (timer = setTimeout(r, timeoutMs)))])
      clearTimeout(timer)
    },
  }
}

export const CALLBACK_GAS = 200_000

export type MadeRequest = { id: bigint; key: RequestKey; hash: Hex; block: bigint; escrow: bigint }

/**
 * Requests an inference from `consumer` (a RecordingConsumer) paying the quote; returns once the
 * transaction is mined (no confirmation blocks are mined: the caller decides).
 */
export async function requestFromConsumer(
  stack: Pick<TestStack, 'chain'>,
  consumer: Address,
  {
    modelId = stack.chain.demo.modelId,
    input = DEMO_INPUT,
    gas = CALLBACK_GAS,
  }: { modelId?: Hex; input?: readonly bigint[]; gas?: number } = {},
): Promise<MadeRequest> {
  const { user, core, anvil } = stack.chain
  const value = await user.readContract({ address: core.gateway, abi: InferenceGateway.abi, functionName: 'quote', args: [modelId, gas] })
  const { request } = await user.simulateContract({
    address: consumer,
    abi: RecordingConsumer.abi,
    functionName: 'request',
    args: [modelId, [...input], gas],
    value,
  })
  const receipt = await confirm(user, await user.writeContract(request))
  const [log] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  if (!log) throw new Error(`no InferenceRequested in ${receipt.transactionHash}`)
  const id = log.args.requestId
  return {
    id,
    key: requestKey(anvil.chain.id, core.gateway, id),
    hash: receipt.transactionHash,
    block: receipt.blockNumber,
    escrow: log.args.escrow,
  }
}

/** The demo models' input scale (from the demo's manifest). */
export const DEMO_INPUT_SCALE = readManifest('sertn-mlp-demo').manifest.inputScale
/** A valid input for the demo models (4 features at their input scale). */
export const DEMO_INPUT: readonly bigint[] = [0.5, -1.25, 2, 0.75].map((x) => quantize(x, DEMO_INPUT_SCALE))

/** Mines `n` empty blocks. */
export async function mine(stack: Pick<TestStack, 'chain'>, n = 1): Promise<void> {
  await stack.chain.owner.request({ method: 'anvil_mine' as never, params: [toHex(n)] as never })
}

/** The gateway's InferenceFulfilled events for request `id`, on the whole chain. */
export async function fulfilledEventsOf(stack: Pick<TestStack, 'chain'>, id: bigint) {
  return stack.chain.user.getContractEvents({
    address: stack.chain.core.gateway,
    abi: InferenceGateway.abi,
    eventName: 'InferenceFulfilled',
    args: { requestId: id },
    fromBlock: 0n,
  })
}

/** The gateway's InferenceFailed events for request `id`, on the whole chain. */
export async function failedEventsOf(stack: Pick<TestStack, 'chain'>, id: bigint) {
  return stack.chain.user.getContractEvents({
    address: stack.chain.core.gateway,
    abi: InferenceGateway.abi,
    eventName: 'InferenceFailed',
    args: { requestId: id },
    fromBlock: 0n,
  })
}

/** Every execution (run) of every workflow of request `key`, from the visibility store (eventually consistent). */
export async function executionsOf(client: Client, key: string): Promise<WorkflowExecutionInfo[]> {
  return findRequestWorkflows(client, key)
}

/**
 * The executions of `key` once visibility shows it closed (at most `timeoutMs`): visibility lags
 * behind the workflow, so count runs only after the closed one is listed.
 */
export async function closedExecutionsOf(client: Client, key: string, timeoutMs = 15_000): Promise<WorkflowExecutionInfo[]> {
  let runs: WorkflowExecutionInfo[] = []
  await waitFor(
    `visibility to list ${key} closed`,
    async () => {
      runs = await executionsOf(client, key)
      return runs.length > 0 && runs.every((r) => r.status.name !== 'RUNNING')
    },
    { timeoutMs, intervalMs: 200 },
  )
  return runs
}

/**
 * Whether a workflow of request `key` exists (any run): the one for its event in `transactionHash`
 * (read at once), or any listed (visibility lags a start by a moment).
 */
export async function workflowExists(client: Client, key: string, transactionHash?: Hex): Promise<boolean> {
  if (transactionHash) {
    try {
      await client.workflow.getHandle(requestWorkflowIdOf({ key, seenAt: { transactionHash } })).describe()
      return true
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err
    }
  }
  return (await findRequestWorkflows(client, key)).length > 0
}

/** `p`, or a rejection naming `what` after `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The file holding the node's watcher cursor for the stack's gateway (see FileCursorStore). */
export function watcherCursorFile(stack: Pick<TestStack, 'chain' | 'dataDir'>): string {
  return join(stack.dataDir, 'cursors', cursorFileName(`evm-${stack.chain.anvil.chain.id}-${stack.chain.core.gateway.toLowerCase()}`))
}

/** The block the node's watcher has scanned up to (-1 when it has saved no cursor yet). */
export async function watcherCursorBlock(stack: Pick<TestStack, 'chain' | 'dataDir'>): Promise<bigint> {
  try {
    const { blockNumber } = JSON.parse(await readFile(watcherCursorFile(stack), 'utf8')) as { blockNumber: string }
    return BigInt(blockNumber)
  } catch {
    return -1n
  }
}
