/**
 * The chaos run's network: the local network module's hub, Hyperlane spoke and LayerZero spoke
 * (chains/local.ts) with two operators and batching on, the messengers' agents in this process
 * (restartable), and each operator's node as separate OS processes, one per role (`sertn worker
 * --role chain-io|inference|prover --config <operator's file>`), each in its own process group, so
 * that a fault can SIGKILL or SIGSTOP a real process. The node reaches every chain through a TCP
 * proxy (test/support/rpc-proxy.ts) that a fault can cut; the agents, the load and the run's own
 * reads go to anvil directly. A miner mines an empty block on every chain each second, so that
 * requests and messages get their confirmations.
 *
 * `stop()` stops everything (continuing stalled workers first); `processGroups()` lists every child
 * process group for a last-resort kill.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Connection } from '@temporalio/client'
import { LOCAL_CHAINS, startLocalNetwork, type LocalNetwork } from '../../chains/local.ts'
import type { SertnConfig } from '../../core/config.ts'
import { startProcess, type ManagedProcess } from '../../core/process.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { queueOfRole, WORKER_ROLES, type WorkerRole } from '../../workflows/worker/index.ts'
import { REPO } from '../support/cli.ts'
import { startRpcProxy, type RpcProxy } from '../support/rpc-proxy.ts'

/** One worker process of an operator (replaced when a fault kills it). */
export type ChaosWorker = {
  operator: number
  role: WorkerRole
  proc: ManagedProcess
  /** Processes of this slot started so far (1 for the first). */
  starts: number
}

export type ChaosNetworkOptions = {
  dataDir: string
  operators?: number
  /** Seconds an assigned operator has before its job may be reassigned. */
  reassignWindowSeconds?: number
  /**
   * Jobs an operator holds at once before the rest wait queued (NodeRegistry.maxOpenJobs; default
   * 16, a batch: about what an operator on this machine serves within the window).
   */
  maxOpenJobs?: number
  /** The batch window (ms) and the most rows per batch. */
  batchWindowMs?: number
  batchMaxSize?: number
  /** Polling interval of the node's watchers and the agents (ms). */
  pollingIntervalMs?: number
  /** Seconds between the miner's empty blocks on every chain. */
  mineEverySeconds?: number
  log: (line: string) => void
}

export type ChaosNetwork = {
  local: LocalNetwork
  /** The node's RPC proxy per chain. */
  proxies: Record<string, RpcProxy>
  /** Each operator's configuration as its workers read it (RPCs through the proxies). */
  configs: SertnConfig[]
  configFiles: string[]
  workers: ChaosWorker[]
  connection: Connection
  /** The workers of `operator`. */
  workersOf(operator: number): ChaosWorker[]
  /** SIGKILLs a worker's process group and waits for it to exit. */
  kill(w: ChaosWorker): Promise<void>
  /** Starts a new process for a worker's slot (after a kill). */
  restart(w: ChaosWorker): void
  /** SIGSTOP or SIGCONT to every worker of `operator`. */
  signalOperator(operator: number, signal: 'SIGSTOP' | 'SIGCONT'): void
  /**
   * Stops the miner's empty blocks until the returned release is called, once the blocks it is
   * mining now are mined (a reorganisation must not race a block being mined: see
   * `withAnvilMiningPaused`).
   */
  holdMiner(): Promise<() => void>
  /** Waits until every operator's roles poll their task queues (at most `timeoutMs`). */
  waitForWorkers(timeoutMs?: number): Promise<void>
  processGroups(): number[]
  stop(): Promise<void>
}

/** Starts the chaos run's network (see the module's notes); on failure stops what it started. */
export async function startChaosNetwork(o: ChaosNetworkOptions): Promise<ChaosNetwork> {
  const operators = o.operators ?? 2
  const pollingIntervalMs = o.pollingIntervalMs ?? 200
  await ensureNativeEzkl()
  const local = await startLocalNetwork({
    // The checker calls and traces at every block of the run: keep them all (a 1,000-request run
    // outgrows anvil's default, a few thousand blocks).
    chains: [LOCAL_CHAINS.hub, LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz].map((c) => ({ ...c, historyStates: 100_000 })),
    dataDir: o.dataDir,
    services: true,
    publishArtifacts: true,
    operators,
    pollingIntervalMs,
    pool: { window: BigInt(o.reassignWindowSeconds ?? 30), maxOpenJobs: BigInt(o.maxOpenJobs ?? 16) },
    config: {
      prover: { plugin: 'ezkl-native' },
      batching: { enabled: true, windowMs: o.batchWindowMs ?? 3000, maxSize: o.batchMaxSize ?? 16 },
    },
    log: (line) => o.log(`[network] ${line}`),
  })
  const proxies: Record<string, RpcProxy> = {}
  const workers: ChaosWorker[] = []
  const logs: WriteStream[] = []
  const stalled = new Set<number>()
  let miner: NodeJS.Timeout | undefined
  let minerHolds = 0
  let mining: Promise<unknown> = Promise.resolve()
  const logDir = join(o.dataDir, 'logs')
  mkdirSync(logDir, { recursive: true })

  const spawnWorker = (w: Omit<ChaosWorker, 'proc'>, file: string): ManagedProcess => {
    const name = `operator-${w.operator + 1}-${w.role}`
    const out = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' })
    logs.push(out)
    out.write(`--- start ${w.starts} at ${new Date().toISOString()}\n`)
    return startProcess({
      name,
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        'cli/sertn.ts',
        'worker',
        '--role',
        w.role,
        '--config',
        file,
        '--log-level',
        'warn',
        '--log-format',
        'json',
      ],
      cwd: REPO,
      onLine: (line) => out.write(`${line}\n`),
    })
  }

  const stop = async () => {
    if (miner) clearInterval(miner)
    for (const op of stalled)
      signalGroups(
        workers.filter((w) => w.operator === op),
        'SIGCONT',
      )
    await Promise.allSettled(workers.map((w) => w.proc.stop(10_000)))
    await Promise.allSettled(Object.values(proxies).map((p) => p.stop()))
    await local.stop()
    for (const l of logs) l.end()
  }

  try {
    for (const [name, chain] of Object.entries(local.chains)) proxies[name] = await startRpcProxy(chain.anvil.port)
    const configs = local.operators.map((op) => ({
      ...op.config,
      chains: Object.fromEntries(Object.entries(op.config.chains).map(([name, c]) => [name, { ...c, rpcUrl: proxies[name]!.url }])),
    })) as SertnConfig[]
    const configFiles: string[] = []
    for (const [i, config] of configs.entries()) {
      const file = join(o.dataDir, `operator-${i + 1}.config.json`)
      await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
      configFiles.push(file)
    }
    for (let operator = 0; operator < configs.length; operator++)
      for (const role of WORKER_ROLES) {
        const slot = { operator, role, starts: 1 }
        workers.push({ ...slot, proc: spawnWorker(slot, configFiles[operator]!) })
      }

    // An empty block on every chain every second or so: confirmations for requests and messages.
    const everyMs = (o.mineEverySeconds ?? 1) * 1000
    miner = setInterval(() => {
      if (minerHolds > 0) return
      mining = Promise.allSettled(
        Object.values(local.chains).map((c) => c.owner.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })),
      )
    }, everyMs)

    const connection = local.services!.connection
    const waitForWorkers = async (timeoutMs = 240_000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const waiting: string[] = []
        for (const [i, config] of configs.entries())
          for (const role of WORKER_ROLES) {
            const r = await connection.workflowService
              .describeTaskQueue({
                namespace: config.temporal.namespace,
                taskQueue: { name: queueOfRole(config, role), kind: 1 },
                taskQueueType: role === 'chain-io' ? 1 : 2,
              })
              .catch(() => undefined)
            if (!r?.pollers?.length) waiting.push(`operator ${i + 1} ${role}`)
          }
        if (waiting.length === 0) return
        const dead = workers.find((w) => w.proc.output() && !stalled.has(w.operator) && exitedSync(w))
        if (dead) throw new Error(`worker ${dead.proc.name} exited:\n${dead.proc.output()}`)
        if (Date.now() > deadline) throw new Error(`the workers did not poll within ${timeoutMs} ms (waiting for ${waiting.join(', ')})`)
        await new Promise((r) => setTimeout(r, 500))
      }
    }

    return {
      local,
      proxies,
      configs,
      configFiles,
      workers,
      connection,
      workersOf: (operator) => workers.filter((w) => w.operator === operator),
      async kill(w) {
        try {
          process.kill(-w.proc.pid, 'SIGKILL')
        } catch {
          // gone already
        }
        await w.proc.exited
      },
      restart(w) {
        w.starts++
        w.proc = spawnWorker(w, configFiles[w.operator]!)
      },
      signalOperator(operator, signal) {
        if (signal === 'SIGSTOP') stalled.add(operator)
        else stalled.delete(operator)
        signalGroups(
          workers.filter((w) => w.operator === operator),
          signal,
        )
      },
      async holdMiner() {
        minerHolds++
        // anvil answers in milliseconds; a stalled one is not waited for beyond 5 s.
        await Promise.race([mining, new Promise((r) => setTimeout(r, 5000))])
        return () => void minerHolds--
      },
      waitForWorkers,
      processGroups: () => [...workers.map((w) => w.proc.pid), ...local.processGroups()],
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

const exitCodes = new WeakMap<ManagedProcess, boolean>()
/** Whether a worker's process has exited (tracked from its `exited` promise). */
function exitedSync(w: ChaosWorker): boolean {
  if (!exitCodes.has(w.proc)) {
    exitCodes.set(w.proc, false)
    const p = w.proc
    void p.exited.then(() => exitCodes.set(p, true))
  }
  return exitCodes.get(w.proc) === true
}

function signalGroups(workers: readonly ChaosWorker[], signal: NodeJS.Signals): void {
  for (const w of workers) {
    try {
      process.kill(-w.proc.pid, signal)
    } catch {
      // gone
    }
  }
}
