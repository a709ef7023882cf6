/**
 * Worker entry: Temporal workers for the configured roles (task queues) and, with `chain-io`, the
 * chain watchers that turn confirmed `InferenceRequested` events into request workflows.
 */
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { Client } from '@temporalio/client'
import { Worker, type WorkerOptions } from '@temporalio/worker'
import type { SertnConfig } from '../../core/config.ts'
import { TOKENS } from '../../core/di.ts'
import { reportChain } from '../../core/health.ts'
import { createLogger, type Logger, requestFields, rootLogger } from '../../core/log.ts'
import { type ContainerPluginKind, loadPluginModules } from '../../core/plugin-modules.ts'
import type { ChainPlugin } from '../../core/plugins.ts'
import type { InferenceRequest } from '../../core/types.ts'
import { privateKeyToAccount } from 'viem/accounts'
import { startBalanceMonitor } from '../../chains/evm/plugin/balance.ts'
import { runKeeper } from '../../chains/evm/plugin/keeper.ts'
import { createActivities } from '../activities/index.ts'
import { resolveSigners } from '../../core/secrets.ts'
import { checkSearchAttributes, startRequestWorkflow, type StandingAside } from '../client.ts'
import { connectTemporalWorker } from '../connection.ts'
import { batchWorkflowIdOf, joinBatchSignal, type TaskQueues } from '../messages.ts'
import { buildContainer, lazyActivityDeps, proverMemoryOf, provingShareOfMemory, type ContainerOverrides } from './container.ts'
import { type HealthServer, startHealthServer, startTemporalProbe } from './health-server.ts'
import { metricsInterceptor } from './interceptors.ts'
import { installTemporalTelemetry } from './telemetry.ts'

export const WORKER_ROLES = ['chain-io', 'inference', 'prover'] as const
export type WorkerRole = (typeof WORKER_ROLES)[number]

export const WORKFLOWS_PATH = fileURLToPath(new URL('../request.workflow.ts', import.meta.url))

export type RunWorkersParameters = {
  config: SertnConfig
  roles: readonly WorkerRole[]
  /** Stops the workers and watchers (graceful: running activities finish or are cancelled). */
  signal: AbortSignal
  overrides?: ContainerOverrides
  /** A prebuilt workflow bundle (tests build it once); otherwise the workflow file is bundled. */
  workflowBundle?: WorkerOptions['workflowBundle']
  /** Where the workers and watchers log (default: the process's root logger). */
  logger?: Logger
  /**
   * Instead of `logger`: each record as a line, `[component] chain: message` (tests read them).
   * @deprecated Use `logger`.
   */
  log?: (line: string) => void
  /** Called with the health server's URL once it listens (`observability.http.port` set). */
  onHealthServer?: (url: string) => void
}

/** The task queues and prover routing a node's workflows are started with. */
export function taskQueuesOf(config: SertnConfig): TaskQueues {
  const { chainIo, inference, prover, proverGpu, batch } = config.temporal.taskQueues
  const r = config.prover.routing
  return {
    chainIo,
    inference,
    prover,
    batch,
    routing: {
      ...(r.gpu ? { gpu: proverGpu } : {}),
      cpuMemoryBytes: r.cpuMemoryBytes ?? provingShareOfMemory(),
      ...(Object.keys(r.pin).length > 0 ? { pin: { ...r.pin } } : {}),
    },
  }
}

/**
 * The plugin kinds the workers of `roles` use: storage everywhere (models are fetched from it),
 * the chains for chain-io, the runtime for inference, the prover for proving. A module plugin of another kind need not be
 * installed on the machine.
 */
export function pluginKindsOf(roles: readonly WorkerRole[]): ContainerPluginKind[] {
  return [
    'storage',
    ...(roles.includes('chain-io') ? (['chain'] as const) : []),
    ...(roles.includes('inference') ? (['runtime'] as const) : []),
    ...(roles.includes('prover') ? (['prover'] as const) : []),
  ]
}

/** The task queue a worker of `role` polls: a prover's is its hardware class's. */
export function queueOfRole(config: SertnConfig, role: WorkerRole): string {
  const q = config.temporal.taskQueues
  if (role === 'chain-io') return q.chainIo
  if (role === 'inference') return q.inference
  return config.prover.hardware === 'gpu' ? q.proverGpu : q.prover
}

/** How often a chain-io worker reads its node account's balance on each chain. */
const BALANCE_INTERVAL_MS = 60_000

/** The node's address from a raw development key (tests that pass their own chains and no signers). */
const nodeAddressOf = (config: SertnConfig) =>
  config.node.privateKey ? privateKeyToAccount(config.node.privateKey as `0x${string}`).address : undefined

/** Runs until `signal` aborts; resolves when every worker and watcher has stopped. */
export async function runWorkers(params: RunWorkersParameters): Promise<void> {
  const { config, roles, signal } = params
  const logger = params.logger ?? (params.log ? lineLoggerOf(params.log) : rootLogger())
  const workerLog = logger.child({ component: 'worker' })
  const http = config.observability.http
  // Before the first connection: Temporal's Runtime takes the logger and, with the endpoint on, its metrics exporter.
  const telemetry = await installTemporalTelemetry({ logger, metrics: http.port !== undefined })
  const queues = taskQueuesOf(config)
  // Only chain-io signs (its chains and markets): provers and inference workers need no key.
  const signers = params.overrides?.signers ?? (roles.includes('chain-io') ? await resolveSigners(config, ['node']) : {})
  // Plugins named by module are imported now, so that a missing one stops the start with a ConfigError.
  const modules = params.overrides?.modules ?? (await loadPluginModules(config, pluginKindsOf(roles)))
  const sertn = buildContainer(config, { ...params.overrides, signers, modules })
  const connection = await connectTemporalWorker(config)
  const probe = new AbortController()
  let server: HealthServer | undefined
  // Batch workflows are started (signal-with-start) from an activity, through this client.
  const client = new Client({ connection, namespace: config.temporal.namespace })
  if (roles.includes('chain-io')) {
    // This role starts the request workflows: one line if the namespace lacks their search attributes.
    const attributes = await checkSearchAttributes(client)
    if (attributes.message) workerLog.warn(attributes.message)
  }
  const deps = lazyActivityDeps(sertn.container)
  deps.batches = {
    join: async (member, input) => {
      await client.workflow.signalWithStart('batchWorkflow', {
        workflowId: batchWorkflowIdOf(member.request),
        taskQueue: config.temporal.taskQueues.batch,
        args: [input],
        signal: joinBatchSignal,
        signalArgs: [member],
      })
    },
  }
  const activities = createActivities(deps)
  const batching = config.batching.enabled
    ? { windowMs: config.batching.windowMs, ...(config.batching.maxSize ? { maxSize: config.batching.maxSize } : {}) }
    : undefined
  const workers: Worker[] = []
  const chainNames = new Map(Object.entries(config.chains).map(([name, c]) => [c.chainId, name] as const))
  const interceptors = { activity: [metricsInterceptor(chainNames)] }
  const workflows = params.workflowBundle ? { workflowBundle: params.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }
  /** A worker on `taskQueue` with the activities (and the workflows, where `withWorkflows`). */
  const workerOn = (taskQueue: string, withWorkflows: boolean, maxConcurrentActivityTaskExecutions: number, heartbeatEverySecond = false) =>
    Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue,
      activities,
      interceptors,
      ...(withWorkflows ? workflows : {}),
      maxConcurrentActivityTaskExecutions,
      // A killed worker's activities are retried elsewhere once their heartbeat times out.
      shutdownGraceTime: '5 seconds',
      // The prover sends its progress at least every second (status queries and the CLI show it).
      // The chain-io hops heartbeat at the SDK's pace (80% of their heartbeat timeout): each
      // heartbeat the server records is a write, and a burst holds hundreds of hops at once.
      ...(heartbeatEverySecond ? { maxHeartbeatThrottleInterval: '1 second' } : {}),
    })
  try {
    const probing = startTemporalProbe(
      () => connection.withDeadline(Date.now() + 5_000, () => connection.workflowService.getSystemInfo({})),
      { signal: probe.signal },
    )
    // The watchers to come are known before the endpoint answers: /readyz says they have not scanned yet.
    const chains = roles.includes('chain-io') ? sertn.container.resolve<ChainPlugin[]>(TOKENS.Chains) : []
    for (const chain of chains) reportChain(chain.chainName, {})
    if (http.port !== undefined) {
      server = await startHealthServer({
        host: http.host,
        port: http.port,
        maxLagBlocks: config.observability.maxLagBlocks,
        requireTemporal: true,
        ...(telemetry.metricsUrl ? { temporalMetricsUrl: telemetry.metricsUrl } : {}),
      })
      workerLog.info({ url: server.url }, `health server on ${server.url} (/metrics, /healthz, /readyz)`)
      params.onHealthServer?.(server.url)
    }
    for (const role of roles) {
      const taskQueue = queueOfRole(config, role)
      workers.push(
        await workerOn(
          taskQueue,
          role === 'chain-io',
          role === 'prover' ? config.prover.poolSize : role === 'chain-io' ? config.temporal.chainIoConcurrency : 16,
          role === 'prover',
        ),
      )
      workerLog.info(
        { role, taskQueue },
        `${role} polling ${taskQueue}${
          role === 'prover' ? ` (${config.prover.hardware} class, up to ${Math.ceil(proverMemoryOf(config) / 2 ** 20)} MiB a proof)` : ''
        }`,
      )
      if (role === 'chain-io') {
        // The batch workflows' own queue, with their storage and delivery: a batch's steps never
        // wait behind the request workflows' tasks and hops.
        const batchQueue = config.temporal.taskQueues.batch
        workers.push(await workerOn(batchQueue, true, 16))
        workerLog.info({ role, taskQueue: batchQueue }, `chain-io polling ${batchQueue} (batch workflows, their storage and delivery)`)
      }
    }
    const running = workers.map((w) => w.run())
    const watchers: Promise<void>[] = []
    if (roles.includes('chain-io')) {
      // The watcher's client shares the workers' connection, so that the server can hand a new
      // workflow's first task straight to this worker (eager start) instead of through matching.
      for (const chain of chains) {
        const watchLog = logger.child({ component: 'watcher', chain: chain.chainName })
        watchers.push(
          chain
            .watchRequests({
              signal,
              onRequest: async (request) => {
                const standAside = request.route ? undefined : await heldByAnother(request, chain, watchLog)
                const r = await startRequestWorkflow(client, request, queues, {
                  eager: true,
                  ...(standAside ? { standAside } : {}),
                  ...(batching ? { batching } : {}),
                })
                watchLog.info(
                  { ...requestFields(request.key), workflow: r === 'duplicate' ? 'duplicate' : 'started' },
                  `request ${request.requestId} → ${
                    r === 'duplicate'
                      ? 'already seen'
                      : standAside
                        ? `workflow ${request.key}, to run once node ${standAside.node}'s window has passed`
                        : `workflow ${request.key}`
                  }`,
                )
              },
              ...(config.chains[chain.chainName]?.startBlock !== undefined
                ? { fromBlock: BigInt(config.chains[chain.chainName]!.startBlock!) }
                : {}),
            })
            .catch((err: unknown) => {
              if (!signal.aborted) watchLog.error({ err }, `stopped: ${String(err)}`)
            }),
        )
      }
      // Refunds expired requests and sends deferred receipts (keeper.enabled), paying with the node's account.
      watchers.push(runKeeper(config, { signal, ...(signers.node ? { account: signers.node.account } : {}) }))
      // The node account's balance on every chain (sertn_account_balance_wei), with its alarm (balanceAlarmEth).
      const node = signers.node?.account.address ?? nodeAddressOf(config)
      if (node)
        watchers.push(
          startBalanceMonitor({
            chains: config.chains,
            accounts: [{ role: 'node', address: node }],
            intervalMs: BALANCE_INTERVAL_MS,
            signal,
          }).done,
        )
    }
    const stop = () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown()
    }
    if (signal.aborted) stop()
    else signal.addEventListener('abort', stop, { once: true })
    await Promise.all([...running, ...watchers])
    probe.abort()
    await probing
  } finally {
    probe.abort()
    await server?.close()
    await sertn.dispose()
    await connection.close()
  }
}

/**
 * The node that holds a hub request's job while its window is open, when it is not this node: its
 * workflow then waits on the server until the window has passed, and costs this node nothing while
 * the other node works. Undefined when the job is this node's, not assigned yet or past its window,
 * or when the registry cannot be read now (the workflow then starts at once and asks again).
 */
async function heldByAnother(request: InferenceRequest, chain: ChainPlugin, log: Logger): Promise<StandingAside | undefined> {
  try {
    const a = await chain.getAssignment(request.requestId)
    if (a.state !== 'Assigned' || a.mine || !a.node || a.windowEnd * 1000 <= Date.now()) return undefined
    return { node: a.node, windowEnd: a.windowEnd }
  } catch (err) {
    log.warn(
      { ...requestFields(request.key), err },
      `request ${request.requestId}: the job book could not be read (${String(err)}); starting its workflow now`,
    )
    return undefined
  }
}

/**
 * A logger whose records reach `log` as lines, `[component] chain: message` (for callers that
 * collect lines, e.g. tests).
 */
function lineLoggerOf(log: (line: string) => void): Logger {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue
        try {
          const r = JSON.parse(text) as { component?: string; chain?: string; msg?: string }
          log(`${r.component ? `[${r.component}] ` : ''}${r.chain ? `${r.chain}: ` : ''}${r.msg ?? ''}`)
        } catch {
          log(text)
        }
      }
      done()
    },
  })
  return createLogger({ level: 'info', format: 'json', destination })
}
