/**
 * `sertn start`: the whole local stack in one command, persisted under one data directory
 * (default `.data`), then one demo request followed stage by stage.
 *
 *   anvil            --state .data/anvil-state.json (loaded at start, written on exit and every 10 s)
 *   contracts        reused from .data/deployment.json when the chain has them, else deployed
 *   Temporal         dev server with its UI, SQLite in .data/temporal.db
 *   arlocal          data in .data/arlocal, a funded wallet in .data/arweave-wallet.json
 *   workers          chain-io, inference, prover: `sertn worker --role R --config .data/sertn.config.json`,
 *                    one child process each, in its own process group
 *
 * Confirmations: the node's watcher serves a request once one block is mined on top of it. anvil
 * automines (a block per transaction), so deployments and requests are instant, and the stack mines
 * the confirming block itself: `request` and the demo mine one empty block after theirs, and while
 * the stack runs it mines one whenever the newest block holds a request (from any sender). Interval
 * mining (`--block-time 1`) would do it too, but costs up to a second per transaction and grows the
 * chain (and its state file) by a block a second forever.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops everything it started, in order: workers, arlocal, Temporal,
 * then anvil (SIGTERM, so that it writes its state). A second Ctrl-C kills at once.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Client, Connection } from '@temporalio/client'
import { toHex, type Address } from 'viem'
import { startAnvil, type AnvilInstance } from '../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../chains/evm/clients.ts'
import { FileCursorStore } from '../chains/evm/plugin/index.ts'
import { InferenceGateway } from '../contracts/artifacts/index.ts'
import { parseConfig, type SertnConfig } from '../core/config.ts'
import { SertnError } from '../core/errors.ts'
import { freePort, startProcess, type ManagedProcess } from '../core/process.ts'
import { ensureNativeEzkl } from '../plugins/provers/ezkl-native/index.ts'
import { loadOrCreateLocalWallet, startArlocal, type ArlocalInstance } from '../plugins/storage/arweave/index.ts'
import { ensureTemporalCli, findTemporalCli, TEMPORAL_CLI_VERSION } from '../workflows/worker/temporal-cli.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../workflows/worker/temporal-dev-server.ts'
import { WORKER_ROLES, type WorkerRole } from '../workflows/worker/index.ts'
import {
  DEMO_MODEL,
  isSertnProcess,
  LOCAL_CHAIN,
  readJson,
  REPO_ROOT,
  SERTN_CLI,
  shown,
  stackPaths,
  type Deployment,
  type StackInfo,
  type StackPaths,
} from './common.ts'
import { ensureDeployment } from './deployment.ts'
import { Progress } from './progress.ts'
import { followClassification, sendClassifyRequest, USER_ACCOUNT } from './request.ts'
import { dim, fmtMs, out } from './ui.ts'

export type ProverName = SertnConfig['prover']['plugin']

export type StartOptions = {
  dataDir: string
  /** Stop everything after the demo request. */
  once: boolean
  prover: ProverName
  /** The demo request's model and features. */
  model: string
  features: number[]
  /** 0 = any free port. */
  ports: { anvil: number; arlocal: number; temporal: number; ui: number }
  /** Delete the data directory's stack files first. */
  reset: boolean
  /** Print the child processes' output. */
  verbose: boolean
}

/** anvil's accounts: 0 deploys and owns the contracts, 1 is the node, 2 the dApp's user. */
const OWNER_ACCOUNT = 0
const NODE_ACCOUNT = 1
const CONFIRMATIONS = 1
const MAX_WORKER_RESTARTS = 5
const CIRCUITS = join(REPO_ROOT, 'circuits')

function nodePrivateKey(): `0x${string}` {
  const account = anvilAccount(NODE_ACCOUNT) as ReturnType<typeof anvilAccount> & { getHdKey(): { privateKey: Uint8Array | null } }
  return toHex(account.getHdKey().privateKey!)
}

/** Stopped by SIGINT/SIGTERM, or by a child process that died. */
class Interrupted extends SertnError {
  override name = 'Interrupted'
}

export async function startCommand(opts: StartOptions): Promise<number> {
  const paths = stackPaths(opts.dataDir)
  const progress = new Progress()
  mkdirSync(paths.dataDir, { recursive: true })
  acquireLock(paths)
  const t0 = performance.now()

  // Every process started (stopped by stopAll: workers, then arlocal and Temporal, then anvil).
  const children: { name: string; proc: ManagedProcess; stop: () => Promise<void> }[] = []
  let anvil: AnvilInstance | undefined
  const shutdown = new AbortController()
  let crashed: string | undefined
  let stopping = false
  let signals = 0
  const onSignal = (sig: NodeJS.Signals) => {
    signals++
    if (signals === 1) {
      progress.line(`\n${sig}: stopping the stack (again to kill at once)`)
      shutdown.abort(new Interrupted(sig))
    } else {
      progress.line(`${sig} again: killing every process now (anvil's state since its last save is lost)`)
      process.exit(130) // core/process.ts SIGKILLs every child's group on exit
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const exitText = (name: string, code: number | null, proc: ManagedProcess) =>
    `${name} exited unexpectedly (${code === null ? 'killed by a signal' : `code ${code}`})${proc.output() ? `; its last output:\n${proc.output()}` : ''}`
  /** anvil, Temporal or arlocal exiting on its own stops the stack. */
  const watchChild = (name: string, proc: ManagedProcess, stop: () => Promise<void> = () => proc.stop()) => {
    children.push({ name, proc, stop })
    void proc.exited.then((code) => {
      if (stopping || shutdown.signal.aborted) return
      crashed = exitText(name, code, proc)
      shutdown.abort(new Interrupted(`${name} exited`))
    })
  }
  /**
   * A worker that exits on its own is started again (Temporal retries what it was running, once its
   * heartbeat or start-to-close timeout passes); after MAX_WORKER_RESTARTS the stack stops.
   */
  let workerRestarts = 0
  const superviseWorker = (role: WorkerRole, configFile: string): ManagedProcess => {
    const entry = { name: `worker ${role}`, proc: startWorker(role, configFile, opts.verbose), stop: () => entry.proc.stop(10_000) }
    children.push(entry)
    const watch = (proc: ManagedProcess) =>
      void proc.exited.then((code) => {
        if (stopping || shutdown.signal.aborted) return
        if (++workerRestarts > MAX_WORKER_RESTARTS) {
          crashed = `${exitText(entry.name, code, proc)}\n(${MAX_WORKER_RESTARTS} worker restarts already: giving up)`
          shutdown.abort(new Interrupted(`${entry.name} exited`))
          return
        }
        entry.proc = startWorker(role, configFile, opts.verbose)
        progress.warn(`${exitText(entry.name, code, proc).split(';')[0]}; restarted it (pid ${entry.proc.pid}); Temporal retries what it was running`)
        watch(entry.proc)
      })
    watch(entry.proc)
    return entry.proc
  }
  /** Rejects when the stack is stopping, so that a long step does not keep it waiting. */
  const interruptible = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (shutdown.signal.aborted) return reject(shutdown.signal.reason)
      const onAbort = () => reject(shutdown.signal.reason)
      shutdown.signal.addEventListener('abort', onAbort, { once: true })
      p.then(resolve, reject).finally(() => shutdown.signal.removeEventListener('abort', onAbort))
    })

  let temporalClient: Client | undefined
  let exitCode = 0
  try {
    if (opts.reset) reset(paths, progress)
    const ports = await resolvePorts(opts.ports)

    // The Temporal CLI: found, or built with Go into .tools/bin once.
    const found = findTemporalCli()
    if (found) progress.done('Temporal CLI', 0, shown(found))
    else {
      progress.line(`… building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into .tools/bin: first run only, about 5 minutes (later starts reuse it)`)
      const started = performance.now()
      const path = await interruptible(ensureTemporalCli((l) => progress.line(dim(l))))
      progress.done('Temporal CLI (built)', performance.now() - started, shown(path))
    }

    // anvil, the contracts and Temporal ‖ arlocal and its wallet ‖ the native prover's venv.
    const chainAndTemporal = (async () => {
      const hadState = existsSync(paths.anvilState)
      anvil = await progress.step('anvil', () => startChain(paths, ports.anvil, opts.verbose, progress), (a) =>
        `${a.rpcUrl}, chain ${a.chain.id}, ${hadState && existsSync(paths.anvilState) ? `state loaded from ${shown(paths.anvilState)}` : `new chain (saved to ${shown(paths.anvilState)})`}`,
      )
      watchChild('anvil', anvil.process, () => anvil!.stop())
      const clients = {
        owner: createSertnClient(anvil.chain, anvilAccount(OWNER_ACCOUNT)),
        node: createSertnClient(anvil.chain, anvilAccount(NODE_ACCOUNT)),
        user: createSertnClient(anvil.chain, anvilAccount(USER_ACCOUNT)),
      }
      const models = [...new Set([DEMO_MODEL, opts.model])]
      const ensured = await progress.step(
        'contracts',
        () => ensureDeployment(paths.deployment, clients, { models, dappModel: opts.model }),
        (r) =>
          `${r.action === 'reused' ? 'reused' : r.action === 'deployed' ? 'deployed' : 'reused, updated'}: gateway ${r.deployment.gateway}` +
          (r.notes.length ? ` (${r.notes.join('; ')})` : ''),
      )
      const history = await checkNodeHistory(paths, clients.owner, ensured.deployment)
      if (history) {
        progress.warn(`${history}: clearing the node's history (the Temporal database and the watcher cursors)`)
        clearNodeHistory(paths)
      }
      const temporal = await progress.step(
        'Temporal dev server',
        () => startTemporalDevServer({ port: ports.temporal, uiPort: ports.ui, dbFile: paths.temporalDb, echo: opts.verbose }),
        (t) => `${t.address}, UI ${t.uiUrl}`,
      )
      watchChild('Temporal', temporal.process, () => temporal.stop())
      return { clients, deployment: ensured.deployment, temporal }
    })()
    const storage = (async () => {
      const arlocal = await progress.step('arlocal', () => startArlocal({ port: ports.arlocal, persistDir: paths.arlocal, echo: opts.verbose }), (a) => `${a.url}, data ${shown(a.dataDir)}`)
      watchChild('arlocal', arlocal.process, () => arlocal.stop())
      const wallet = await progress.step('arweave wallet', () => loadOrCreateLocalWallet(arlocal.url, paths.arweaveWallet), (w) =>
        `${w.address.slice(0, 12)}… ${w.created ? 'created and funded' : 'reused'} (${shown(paths.arweaveWallet)})`,
      )
      return { arlocal, wallet }
    })()
    const native = opts.prover === 'ezkl-native' ? progress.step('native ezkl (.tools/venv)', () => ensureNativeEzkl(), (p) => shown(p), { announce: true }) : Promise.resolve(undefined)
    const [{ clients, deployment, temporal }, { arlocal }] = await interruptible(Promise.all([chainAndTemporal, storage, native]))
    progress.line(dim(`  Temporal UI: ${temporal.uiUrl}`))
    temporalClient = new Client({ connection: await Connection.connect({ address: temporal.address }), namespace: temporal.namespace })

    // The node: its configuration and three workers.
    const config = writeNodeConfig(paths, { anvil: anvil!, deployment, temporal, arlocal, prover: opts.prover })
    const workers = await progress.step(
      'workers',
      async (step) => {
        const procs = WORKER_ROLES.map((role) => ({ role, proc: superviseWorker(role, paths.config) }))
        await interruptible(waitForWorkers(temporalClient!, config, step))
        return procs
      },
      (ws) => `${ws.map((w) => `${w.role} (pid ${w.proc.pid})`).join(', ')} polling; prover ${opts.prover}`,
      { announce: true },
    )
    const info: StackInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      rpcUrl: anvil!.rpcUrl,
      temporal: temporal.address,
      temporalUi: temporal.uiUrl!,
      arlocal: arlocal.url,
      namespace: temporal.namespace,
    }
    writeFileSync(paths.stack, `${JSON.stringify(info, null, 2)}\n`)
    progress.line(dim(`  stack ready in ${fmtMs(performance.now() - t0)}`))

    // The demo request, followed stage by stage.
    const dapp = deployment.dapps[opts.model]!
    const sent = await interruptible(sendClassifyRequest(progress, { user: clients.user, deployment, dapp, model: opts.model, features: opts.features, mine: true }))
    const result = await interruptible(
      followClassification(progress, {
        client: temporalClient,
        user: clients.user,
        sent,
        confirmations: CONFIRMATIONS,
        prover: opts.prover,
        arlocalUrl: arlocal.url,
        temporalUi: temporal.uiUrl,
        namespace: temporal.namespace,
        signal: shutdown.signal,
      }),
    )
    if (!result.ok) exitCode = 1

    if (!opts.once) {
      progress.pause()
      console.log(endpoints(paths, info, deployment, workers))
      console.log(
        `\n${out.bold('stack running; Ctrl-C to stop')}\n` +
          out.dim(`  another request:  npx tsx cli/sertn.ts request --features 1,-2,0.5,3 --wait\n`) +
          out.dim(`  a request's state: npx tsx cli/sertn.ts status <request-key | id>`),
      )
      const chainLog = watchGateway(clients.owner, deployment.gateway, progress, shutdown.signal)
      await new Promise<void>((resolve) => shutdown.signal.addEventListener('abort', () => resolve(), { once: true }))
      await chainLog
      exitCode = crashed ? 1 : 0
    }
  } catch (err) {
    if (!(err instanceof Interrupted) && !shutdown.signal.aborted) throw err
    exitCode = crashed ? 1 : 130
  } finally {
    stopping = true
    await temporalClient?.connection.close().catch(() => {})
    await stopAll(children, progress, paths, anvil !== undefined)
    rmSync(paths.stack, { force: true })
    if (crashed) progress.line(`error: ${crashed}`)
  }
  return exitCode
}

/** Starts anvil on the persisted state; an unreadable state file is moved aside (a new chain). */
async function startChain(paths: StackPaths, port: number, verbose: boolean, progress: Progress): Promise<AnvilInstance> {
  const start = () => startAnvil({ port, stateFile: paths.anvilState, stateIntervalSeconds: 10, echo: verbose })
  try {
    return await start()
  } catch (err) {
    if (!existsSync(paths.anvilState)) throw err
    const aside = `${paths.anvilState}.unreadable-${new Date().toISOString().replace(/[:.]/g, '-')}`
    renameSync(paths.anvilState, aside)
    progress.warn(`anvil could not load ${shown(paths.anvilState)}; moved it to ${shown(aside)} and starting a new chain`)
    return start()
  }
}

/**
 * Why the node's history (Temporal workflows, watcher cursors) no longer matches the chain, if it
 * does not: the chain lost blocks the watcher had seen (anvil was killed before saving its state,
 * or the state file was removed), so request ids would be reused and their workflows taken as done.
 */
async function checkNodeHistory(paths: StackPaths, client: SertnClient, deployment: Deployment): Promise<string | undefined> {
  const cursor = await new FileCursorStore(paths.cursors).load(`evm-${deployment.chainId}-${deployment.gateway.toLowerCase()}`).catch(() => undefined)
  if (!cursor) return undefined
  const last = cursor.recentHashes.at(-1)
  const head = await client.getBlockNumber()
  if (!last) return BigInt(cursor.blockNumber) > head ? 'the chain is behind what the node had seen' : undefined
  if (BigInt(last.number) > head) return `the chain is at block ${head}, the node had seen block ${last.number}`
  const block = await client.getBlock({ blockNumber: BigInt(last.number) })
  return block.hash === last.hash ? undefined : `block ${last.number} is not the one the node had seen (a new chain)`
}

function clearNodeHistory(paths: StackPaths): void {
  rmSync(paths.cursors, { recursive: true, force: true })
  for (const f of readdirSync(paths.dataDir)) if (f === 'temporal.db' || f.startsWith('temporal.db-')) rmSync(join(paths.dataDir, f), { force: true })
}

function reset(paths: StackPaths, progress: Progress): void {
  const removed: string[] = []
  for (const p of [paths.anvilState, paths.deployment, paths.config, paths.arlocal, paths.arweaveWallet, paths.cursors]) {
    if (existsSync(p)) {
      rmSync(p, { recursive: true, force: true })
      removed.push(shown(p))
    }
  }
  for (const f of readdirSync(paths.dataDir)) {
    if (f === 'temporal.db' || f.startsWith('temporal.db-') || f.startsWith('anvil-state.json.')) {
      rmSync(join(paths.dataDir, f), { force: true })
      removed.push(shown(join(paths.dataDir, f)))
    }
  }
  progress.line(dim(`reset: ${removed.length ? `removed ${removed.join(', ')}` : 'nothing to remove'}`))
}

/** Takes the data directory for this process, or says who has it. */
function acquireLock(paths: StackPaths): void {
  const held = readJson<Partial<StackInfo>>(paths.stack)
  if (held?.pid && held.pid !== process.pid && isSertnProcess(held.pid)) {
    throw new SertnError(`a stack is already running from ${shown(paths.dataDir)} (pid ${held.pid}, since ${held.startedAt ?? '?'})`, {
      details: `Stop it first (Ctrl-C in its terminal, or \`kill -INT ${held.pid}\`), or start another one with --data-dir DIR and other ports.`,
    })
  }
  writeFileSync(paths.stack, `${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() })}\n`)
}

const PORT_FLAGS = {
  anvil: ['--anvil-port', 'anvil (JSON-RPC)'],
  arlocal: ['--arlocal-port', 'arlocal (Arweave)'],
  temporal: ['--temporal-port', 'the Temporal server (gRPC)'],
  ui: ['--ui-port', 'the Temporal UI'],
} as const

async function resolvePorts(ports: StartOptions['ports']): Promise<StartOptions['ports']> {
  const resolved = { ...ports }
  const taken: string[] = []
  for (const k of Object.keys(PORT_FLAGS) as (keyof typeof PORT_FLAGS)[]) {
    if (resolved[k] === 0) {
      resolved[k] = await freePort()
      continue
    }
    if (!(await portIsFree(resolved[k]))) {
      const [flag, what] = PORT_FLAGS[k]
      taken.push(`port ${resolved[k]} for ${what} is in use; pick another with ${flag} ${resolved[k] + 1} (or ${flag} 0 for any free port)`)
    }
  }
  if (taken.length) {
    throw new SertnError(taken.length === 1 ? taken[0]! : `ports in use:\n  ${taken.join('\n  ')}`, {
      details: 'Is another `sertn start`, Temporal server, anvil or arlocal running? Stop it, or choose other ports.',
    })
  }
  return resolved
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/** Writes the node configuration the workers read (all values parsed, defaults filled in). */
function writeNodeConfig(
  paths: StackPaths,
  s: { anvil: AnvilInstance; deployment: Deployment; temporal: TemporalDevServer; arlocal: ArlocalInstance; prover: ProverName },
): SertnConfig {
  const config = parseConfig(
    {
      dataDir: paths.dataDir,
      node: { privateKey: nodePrivateKey() },
      chains: {
        [LOCAL_CHAIN]: {
          chainId: s.anvil.chain.id,
          rpcUrl: s.anvil.rpcUrl,
          gateway: s.deployment.gateway,
          registry: s.deployment.registry,
          confirmations: CONFIRMATIONS,
          pollingIntervalMs: 100,
          startBlock: s.deployment.deployedAtBlock,
        },
      },
      temporal: { address: s.temporal.address, namespace: s.temporal.namespace },
      prover: { plugin: s.prover },
      storage: { arweave: { url: s.arlocal.url, walletFile: paths.arweaveWallet } },
      models: { dir: CIRCUITS, allowInsecureSrs: true /* a local anvil */ },
    },
    'the local stack configuration',
  )
  writeFileSync(paths.config, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
  return config
}

/** `sertn worker --role R --config FILE` in its own process group. */
function startWorker(role: WorkerRole, configFile: string, echo: boolean): ManagedProcess {
  return startProcess({
    name: `worker:${role}`,
    command: process.execPath,
    args: ['--import', 'tsx', SERTN_CLI, 'worker', '--role', role, '--config', configFile, '--log-level', 'warn'],
    cwd: REPO_ROOT,
    echo,
  })
}

/** Waits until every role's task queue has a poller (workflow tasks for chain-io, activities otherwise). */
async function waitForWorkers(client: Client, config: SertnConfig, step: { note(t: string | undefined): void }): Promise<void> {
  const queues = [
    { role: 'chain-io', name: config.temporal.taskQueues.chainIo, type: 1 /* TASK_QUEUE_TYPE_WORKFLOW */ },
    { role: 'inference', name: config.temporal.taskQueues.inference, type: 2 /* TASK_QUEUE_TYPE_ACTIVITY */ },
    { role: 'prover', name: config.temporal.taskQueues.prover, type: 2 },
  ]
  const deadline = Date.now() + 180_000
  for (;;) {
    const waiting: string[] = []
    for (const q of queues) {
      const r = await client.workflowService
        .describeTaskQueue({ namespace: config.temporal.namespace, taskQueue: { name: q.name, kind: 1 }, taskQueueType: q.type })
        .catch(() => undefined)
      if (!r?.pollers?.length) waiting.push(q.role)
    }
    if (waiting.length === 0) return
    step.note(`waiting for ${waiting.join(', ')}`)
    if (Date.now() > deadline) throw new SertnError(`the workers did not start polling within 180 s (waiting for ${waiting.join(', ')})`, { details: 'Run with --verbose to see their output.' })
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * While the stack runs: prints the gateway's events, and mines a block on top of any block that
 * holds a request (the watcher's one confirmation) so that requests from any sender are served.
 */
async function watchGateway(client: SertnClient, gateway: Address, progress: Progress, signal: AbortSignal): Promise<void> {
  let next = (await client.getBlockNumber().catch(() => 0n)) + 1n
  const say = (s: string) => progress.line(`${dim(new Date().toISOString().slice(11, 19))} ${s}`)
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, 250))
    if (signal.aborted) break
    try {
      const head = await client.getBlockNumber()
      if (head < next) continue
      const logs = await client.getContractEvents({ address: gateway, abi: InferenceGateway.abi, fromBlock: next, toBlock: head })
      let requestInHead = false
      for (const log of logs) {
        const a = log.args as Record<string, unknown>
        if (log.eventName === 'InferenceRequested') {
          say(`request #${String(a.requestId)} in block ${log.blockNumber} from ${String(a.requester)} → sertn status ${String(a.requestId)}`)
          if (log.blockNumber === head) requestInHead = true
        } else if (log.eventName === 'InferenceFulfilled') {
          say(`request #${String(a.requestId)} fulfilled (callback ${['succeeded', 'failed', 'skipped'][Number(a.callbackStatus)] ?? '?'}), tx ${log.transactionHash}`)
        } else if (log.eventName === 'InferenceFailed') {
          say(`request #${String(a.requestId)} failed: ${String(a.reason ?? a.code)}`)
        } else if (log.eventName === 'InferenceRefunded') {
          say(`request #${String(a.requestId)} refunded after its deadline`)
        }
      }
      next = head + 1n
      if (requestInHead) await client.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
    } catch {
      // anvil restarting or stopping: try again on the next tick
    }
  }
}

function endpoints(paths: StackPaths, info: StackInfo, deployment: Deployment, workers: { role: string; proc: ManagedProcess }[]): string {
  const { bold, dim } = out
  const dapps = Object.entries(deployment.dapps).map(([m, a]) => `${a} (${m})`).join(', ')
  return [
    `\n${bold('local stack')} ${dim(`(data in ${shown(paths.dataDir)})`)}`,
    `  chain        ${info.rpcUrl}  ${dim(`anvil, chain id ${deployment.chainId}, state ${shown(paths.anvilState)}`)}`,
    `  gateway      ${deployment.gateway}  ${dim(`registry ${deployment.registry}`)}`,
    `  dApp         ${dapps}  ${dim('ExampleClassifier')}`,
    `  Temporal     ${info.temporal}  ${dim(`namespace ${info.namespace}, database ${shown(paths.temporalDb)}`)}`,
    `  Temporal UI  ${info.temporalUi}`,
    `  arweave      ${info.arlocal}  ${dim(`arlocal, data ${shown(paths.arlocal)}`)}`,
    `  workers      ${workers.map((w) => `${w.role} (pid ${w.proc.pid})`).join(', ')}  ${dim(`config ${shown(paths.config)}`)}`,
  ].join('\n')
}

/** Stops the workers, then arlocal and Temporal, then anvil (which writes its state on SIGTERM). */
async function stopAll(children: { name: string; proc: ManagedProcess; stop: () => Promise<void> }[], progress: Progress, paths: StackPaths, hadAnvil: boolean): Promise<void> {
  if (children.length === 0) return
  const t0 = performance.now()
  const step = progress.begin('stop', { announce: true })
  const stopped: string[] = []
  const group = async (names: (n: string) => boolean) => {
    const chosen = children.filter((c) => names(c.name))
    if (!chosen.length) return
    step.note(`stopping ${chosen.map((c) => c.name).join(', ')}`)
    await Promise.allSettled(chosen.map((c) => c.stop()))
    stopped.push(...chosen.map((c) => c.name))
  }
  await group((n) => n.startsWith('worker'))
  await group((n) => n === 'arlocal' || n === 'Temporal')
  await group((n) => n === 'anvil')
  step.done(`${stopped.join(', ')}${hadAnvil && existsSync(paths.anvilState) ? `; chain saved to ${shown(paths.anvilState)}` : ''}`, performance.now() - t0)
}
