/**
 * `sertn start`: the whole local stack in one command, persisted under one data directory
 * (default `.data`), then one demo request from the spoke followed hop by hop through the hub.
 *
 *   hub anvil        chain 31337 on port 8545, --state .data/anvil-hub-state.json (loaded at start,
 *                    written on exit and every 10 s): the market, the hub's own gateway
 *   spoke anvil      chain 31338 on port 8546, --state .data/anvil-spoke-state.json: a SpokeGateway
 *                    joined to the hub over Hyperlane
 *   spokelz anvil    chain 31339 on port 8547, --state .data/anvil-spokelz-state.json: a SpokeGateway
 *                    joined to the hub over LayerZero V2
 *   contracts        the network (the local network module: every chain, each messenger's real
 *                    contracts and Sertn's ports, routes), reused from .data/deployment.json when
 *                    every chain has it, else deployed; an ExampleClassifier on each chain
 *   Temporal         dev server with its UI, SQLite in .data/temporal.db; a namespace per operator
 *                    (`default`, `operator-2`)
 *   arlocal          data in .data/arlocal, a funded wallet in .data/arweave-wallet.json
 *   operator 1       anvil account 1, namespace default: its workers chain-io, inference, prover, one
 *                    process each: `sertn worker --role R --config .data/sertn.config.json`
 *   operator 2       anvil account 5, namespace operator-2, cursors and models in .data/operator-2: one
 *                    worker process with the three roles, `sertn worker --config .data/sertn.operator-2.config.json`
 *   relay            `sertn relay --config .data/sertn.config.json`: the messengers' local agents
 *                    (Hyperlane validator and relayers, LayerZero DVN and executor), state in .data/relay
 *
 * Both operators are staked in every model's pool of the hub's node registry, which assigns each
 * request (the hub gateway's own, and each spoke request the hub market records) to one of them by
 * a stake-weighted draw: both operators' watchers see every request and start a workflow for it in
 * their own namespace, only the assigned one serves it, the other's ends `settled-elsewhere`. The
 * demo says which operator served each request. (Operator 2 runs its roles in one process: on a
 * small machine six worker processes cost a second of start-up CPU and a few hundred MB each, and
 * nothing in the demo needs its roles apart; operator 1's show the split.)
 *
 * Workers and the relay run as child processes, each in its own process group, and are started
 * again when they die. The keys are local dev keys (see accounts.ts): insecure by design.
 *
 * Confirmations: the node's watcher serves a request once one block is mined on top of it. anvil
 * automines (a block per transaction), so deployments and requests are instant, and the stack mines
 * the confirming block itself: `request` and the demo mine one empty block after theirs, and while
 * the stack runs it mines one on a chain whenever that chain's newest block holds a request (from any
 * sender). Interval mining (`--block-time 1`) would do it too, but costs up to a second per
 * transaction and grows the chains (and their state files) by a block a second forever.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops everything it started, in order: the workers and the relay,
 * arlocal and Temporal, then the anvils (SIGTERM, so that they write their state). So does a
 * failure at any step. A second Ctrl-C kills at once.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Client, type Connection } from '@temporalio/client'
import type { Address } from 'viem'
import type { SertnClient } from '../chains/evm/clients.ts'
import { LOCAL_ATTESTER, type LocalChain, localNetworkConfig, startLocalChain } from '../chains/local.ts'
import { FileCursorStore } from '../chains/evm/plugin/index.ts'
import { InferenceGateway } from '../contracts/artifacts/index.ts'
import type { SertnConfig } from '../core/config.ts'
import { publishModelArtifacts } from '../core/artifacts.ts'
import { SertnError } from '../core/errors.ts'
import { modelDir } from '../core/manifest.ts'
import { freePort, startProcess, type ManagedProcess } from '../core/process.ts'
import { ensureNativeEzkl } from '../plugins/provers/ezkl-native/index.ts'
import { arweaveStorage, loadOrCreateLocalWallet, startArlocal, type ArlocalInstance } from '../plugins/storage/arweave/index.ts'
import { connectTemporalClient } from '../workflows/connection.ts'
import { ensureTemporalCli, findTemporalCli, TEMPORAL_CLI_VERSION } from '../workflows/worker/temporal-cli.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../workflows/worker/temporal-dev-server.ts'
import { queueOfRole, WORKER_ROLES, type WorkerRole } from '../workflows/worker/index.ts'
import {
  DEMO_MODEL,
  isSertnProcess,
  readJson,
  REPO_ROOT,
  SERTN_CLI,
  shown,
  STACK_CHAIN_SPECS,
  STACK_CHAINS,
  STACK_OPERATORS,
  STACK_SPOKES,
  stackPaths,
  type ChainDeployment,
  type Deployment,
  type StackChain,
  type StackInfo,
  type StackPaths,
} from './common.ts'
import { ensureDeployment, networkOf, type StackClients } from './deployment.ts'
import { Progress } from './progress.ts'
import { followClassification, sendClassifyRequest } from './request.ts'
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
  ports: { hub: number; spoke: number; spokelz: number; arlocal: number; temporal: number; ui: number }
  /** Delete the data directory's stack files first. */
  reset: boolean
  /** Print the child processes' output. */
  verbose: boolean
}

const CONFIRMATIONS = 1
/** How often the watchers, the market plugin and the relay poll the local chains. */
const POLLING_MS = 100
const MAX_RESTARTS = 5

/** Stopped by SIGINT/SIGTERM, or by a child process that died. */
class Interrupted extends SertnError {
  override name = 'Interrupted'
}

type Child = { name: string; proc: ManagedProcess; stop: () => Promise<void> }

export async function startCommand(opts: StartOptions): Promise<number> {
  const paths = stackPaths(opts.dataDir)
  const progress = new Progress()
  mkdirSync(paths.dataDir, { recursive: true })
  acquireLock(paths)
  const t0 = performance.now()

  // Every process started (stopped by stopAll: workers and relay, then arlocal and Temporal, then the anvils).
  const children: Child[] = []
  const anvils: Partial<Record<StackChain, LocalChain>> = {}
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
      progress.line(`${sig} again: killing every process now (the chains' state since their last save is lost)`)
      process.exit(130) // core/process.ts SIGKILLs every child's group on exit
    }
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const exitText = (name: string, code: number | null, proc: ManagedProcess) =>
    `${name} exited unexpectedly (${code === null ? 'killed by a signal' : `code ${code}`})${proc.output() ? `; its last output:\n${proc.output()}` : ''}`
  /** Records a started process; one that starts after the stop began is stopped at once. */
  const adopt = (child: Child) => {
    children.push(child)
    if (stopping) void child.stop()
  }
  /** An anvil, Temporal or arlocal exiting on its own stops the stack. */
  const watchChild = (name: string, proc: ManagedProcess, stop: () => Promise<void> = () => proc.stop()) => {
    adopt({ name, proc, stop })
    void proc.exited.then((code) => {
      if (stopping || shutdown.signal.aborted) return
      crashed = exitText(name, code, proc)
      shutdown.abort(new Interrupted(`${name} exited`))
    })
  }
  /**
   * A worker or the relay that exits on its own is started again (Temporal retries what a worker was
   * running once its heartbeat or start-to-close timeout passes; the relay resumes from its stores);
   * after MAX_RESTARTS restarts in all the stack stops.
   */
  let restarts = 0
  const supervise = (name: string, start: () => ManagedProcess, resumes: string): Child => {
    const entry: Child = { name, proc: start(), stop: () => entry.proc.stop(10_000) }
    adopt(entry)
    const watch = (proc: ManagedProcess) =>
      void proc.exited.then((code) => {
        if (stopping || shutdown.signal.aborted) return
        if (++restarts > MAX_RESTARTS) {
          crashed = `${exitText(name, code, proc)}\n(${MAX_RESTARTS} restarts of workers and the relay already: giving up; run with --verbose to see their output)`
          shutdown.abort(new Interrupted(`${name} exited`))
          return
        }
        entry.proc = start()
        progress.warn(`${exitText(name, code, proc).split(';')[0]}; restarted it (pid ${entry.proc.pid}); ${resumes}`)
        watch(entry.proc)
      })
    watch(entry.proc)
    return entry
  }
  /** Rejects when the stack is stopping, so that a long step does not keep it waiting. */
  const interruptible = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (shutdown.signal.aborted) return reject(shutdown.signal.reason)
      const onAbort = () => reject(shutdown.signal.reason)
      shutdown.signal.addEventListener('abort', onAbort, { once: true })
      p.then(resolve, reject).finally(() => shutdown.signal.removeEventListener('abort', onAbort))
    })
  /** Steps running side by side: the stop waits (a while) for them to settle, so that none starts a process after it. */
  const branches: Promise<unknown>[] = []
  const branch = <T>(p: Promise<T>): Promise<T> => {
    branches.push(p.catch(() => undefined))
    return p
  }
  /** Between the steps of a branch: stop there once the stack is stopping (interrupted, or another step failed). */
  const goOn = () => {
    if (shutdown.signal.aborted) throw shutdown.signal.reason
    if (stopping) throw new Interrupted('stopping')
  }

  let temporalClient: Client | undefined
  let exitCode = 0
  try {
    if (opts.reset) reset(paths, progress)
    if (existsSync(paths.legacyAnvilState))
      progress.warn(
        `${shown(paths.legacyAnvilState)} is the chain of an older, single-chain stack and is not used (the hub and the spoke have their own state files); remove it, or start with --reset`,
      )
    const ports = await resolvePorts(opts.ports)

    // The Temporal CLI: found, or built with Go into .tools/bin once.
    const found = findTemporalCli()
    if (found) progress.done('Temporal CLI', 0, shown(found))
    else {
      progress.line(
        `… building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into .tools/bin: first run only, about 5 minutes (later starts reuse it)`,
      )
      const started = performance.now()
      const path = await interruptible(ensureTemporalCli((l) => progress.line(dim(l))))
      progress.done('Temporal CLI (built)', performance.now() - started, shown(path))
    }

    // The anvils, the contracts (once arlocal has a wallet: artifacts are uploaded) and Temporal ‖ arlocal and its wallet ‖ the native prover's venv.
    const storage = branch(
      (async () => {
        const arlocal = await progress.step(
          'arlocal',
          () => startArlocal({ port: ports.arlocal, persistDir: paths.arlocal, echo: opts.verbose }),
          (a) => `${a.url}, data ${shown(a.dataDir)}`,
        )
        watchChild('arlocal', arlocal.process, () => arlocal.stop())
        goOn()
        const wallet = await progress.step(
          'arweave wallet',
          () => loadOrCreateLocalWallet(arlocal.url, paths.arweaveWallet),
          (w) => `${w.address.slice(0, 12)}… ${w.created ? 'created and funded' : 'reused'} (${shown(paths.arweaveWallet)})`,
        )
        return { arlocal, wallet }
      })(),
    )
    const chainsAndTemporal = branch(
      (async () => {
        await settledAll(
          STACK_CHAINS.map(async (name) => {
            const file = paths.chainState[name]
            const hadState = existsSync(file)
            const chain = await progress.step(
              `${name} anvil`,
              () => startChain(name, file, ports[name], opts.verbose, progress),
              (c) =>
                `${c.rpcUrl}, chain ${c.anvil.chain.id}${c.spec.messenger ? ` (${c.spec.messenger} to the hub)` : ''}, ` +
                `${hadState && existsSync(file) ? `state loaded from ${shown(file)}` : `new chain (saved to ${shown(file)})`}`,
            )
            anvils[name] = chain
            watchChild(`${name} anvil`, chain.anvil.process, () => chain.anvil.stop())
          }),
        )
        goOn()
        const clients = clientsOf(anvils as Record<StackChain, LocalChain>)
        const models = [...new Set([DEMO_MODEL, opts.model])]
        // Models are registered with their artifacts in storage, as operators fetch them.
        const { arlocal } = await storage
        const publisher = arweaveStorage({
          host: '127.0.0.1',
          port: Number(new URL(arlocal.url).port),
          protocol: 'http',
          wallet: paths.arweaveWallet,
        })
        const ensured = await progress
          .step(
            'contracts',
            (step) =>
              ensureDeployment(paths.deployment, clients, {
                models,
                dappModel: opts.model,
                validator: LOCAL_ATTESTER,
                publish: async (model) => (await publishModelArtifacts(publisher, modelDir(model))).refs,
                log: (l) => step.note(l),
              }),
            (r) =>
              `${r.action === 'reused' ? 'reused' : r.action === 'deployed' ? 'deployed' : 'reused, updated'}: ` +
              `hub gateway ${r.deployment.hub.gateway}, market ${r.deployment.hub.market} · ` +
              STACK_SPOKES.map((c) => `${c} gateway ${r.deployment[c].gateway} (${r.deployment[c].messengers[0]?.kind})`).join(' · ') +
              (r.notes.length ? ` (${r.notes.join('; ')})` : ''),
          )
          .finally(() => publisher.dispose())
        if (ensured.action === 'deployed' && existsSync(paths.relay)) {
          rmSync(paths.relay, { recursive: true, force: true })
          progress.line(dim(`  cleared the relay's state of the previous contracts (${shown(paths.relay)})`))
        }
        await checkHistories(paths, clients, ensured.deployment, progress)
        goOn()
        // A namespace per operator: each runs its own workflow per request (the workflow id is the
        // request key). The server creates those an existing database lacks.
        const extraNamespaces = paths.operators.slice(1).map((o) => o.namespace)
        const temporal = await progress.step(
          'Temporal dev server',
          () =>
            startTemporalDevServer({
              port: ports.temporal,
              uiPort: ports.ui,
              dbFile: paths.temporalDb,
              extraNamespaces,
              echo: opts.verbose,
            }),
          (t) => `${t.address}, UI ${t.uiUrl}, namespaces ${[t.namespace, ...extraNamespaces].join(', ')}`,
        )
        watchChild('Temporal', temporal.process, () => temporal.stop())
        return { clients, deployment: ensured.deployment, temporal }
      })(),
    )
    const native =
      opts.prover === 'ezkl-native'
        ? branch(
            progress.step(
              'native ezkl (.tools/venv)',
              () => ensureNativeEzkl(),
              (p) => shown(p),
              { announce: true },
            ),
          )
        : Promise.resolve(undefined)
    const [{ clients, deployment, temporal }, { arlocal }] = await interruptible(Promise.all([chainsAndTemporal, storage, native]))
    const chains = anvils as Record<StackChain, LocalChain>
    progress.line(dim(`  Temporal UI: ${temporal.uiUrl}`))
    const connection = await connectTemporalClient({ address: temporal.address })
    temporalClient = new Client({ connection, namespace: temporal.namespace })

    // The operators' nodes: a configuration each, their workers (operator 1: a process per role;
    // operator 2: one process with every role), and the relay between the chains (operator 1's).
    const configs = writeNodeConfigs(paths, { chains, deployment, temporal, arlocal, prover: opts.prover })
    const operators = paths.operators.map((o, i) => ({
      ...o,
      address: clients.hub.nodes[i]!.account.address,
      nodeConfig: configs[i]!,
      client: i === 0 ? temporalClient! : new Client({ connection, namespace: o.namespace }),
    }))
    const [workers, relay] = await Promise.all([
      progress.step(
        'workers',
        async (step) => {
          const entries = operators.flatMap((o, i) =>
            (i === 0 ? WORKER_ROLES.map((r) => [r]) : [[...WORKER_ROLES]]).map((roles) => ({
              operator: o,
              roles,
              entry: supervise(
                i === 0 ? `worker ${roles.join(',')}` : `${o.namespace} worker`,
                () => startWorker(roles, o.config, i === 0 ? 'worker' : `${o.namespace} worker`, opts.verbose),
                'Temporal retries what it was running',
              ),
            })),
          )
          await interruptible(waitForWorkers(connection, configs, step))
          return entries
        },
        (ws) => {
          const of = (o: (typeof operators)[number]) =>
            ws
              .filter((w) => w.operator === o)
              .map((w) => `${w.roles.join('+')} (pid ${w.entry.proc.pid})`)
              .join(', ')
          return `${operators.map((o) => `${o.name}: ${of(o)}`).join('; ')} polling; prover ${opts.prover}`
        },
        { announce: true },
      ),
      progress.step(
        'relay',
        async () => {
          const entry = supervise('relay', () => startRelay(paths.config, opts.verbose), 'it resumes from its checkpoints and cursors')
          await interruptible(waitForRelay(entry))
          return entry
        },
        (r) =>
          `${STACK_SPOKES.map((c) => `hub ⇄ ${c} (${deployment[c].messengers[0]?.kind})`).join(', ')}, attester ${LOCAL_ATTESTER} ` +
          `(local dev key), state ${shown(paths.relay)} (pid ${r.proc.pid})`,
      ),
    ])
    const info: StackInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      rpcUrls: Object.fromEntries(STACK_CHAINS.map((c) => [c, chains[c].rpcUrl])) as Record<StackChain, string>,
      temporal: temporal.address,
      temporalUi: temporal.uiUrl!,
      arlocal: arlocal.url,
      namespace: temporal.namespace,
      operators: operators.map((o) => ({ name: o.name, address: o.address, namespace: o.namespace, config: o.config })),
    }
    writeFileSync(paths.stack, `${JSON.stringify(info, null, 2)}\n`)
    progress.line(dim(`  stack ready in ${fmtMs(performance.now() - t0)}`))

    // A demo request on each spoke (one over each messenger), followed hop by hop through the hub and back.
    for (const chain of STACK_SPOKES) {
      const on = deployment[chain]
      const user = clients[chain].user
      progress.line(`\n${out.bold(`demo request on the ${chain}`)} ${dim(`(joined to the hub over ${on.messengers[0]?.kind})`)}`)
      const sent = await interruptible(
        sendClassifyRequest(progress, {
          chain,
          user,
          gateway: on.gateway,
          dapp: on.dapps[opts.model]!,
          model: opts.model,
          features: opts.features,
          mine: true,
        }),
      )
      const result = await interruptible(
        followClassification(progress, {
          operators,
          user,
          sent,
          confirmations: CONFIRMATIONS,
          prover: opts.prover,
          arlocalUrl: arlocal.url,
          temporalUi: temporal.uiUrl,
          hub: {
            client: clients.hub.owner,
            nodeRegistry: deployment.hub.nodeRegistry,
            gateway: deployment.hub.gateway,
            fromBlock: BigInt(deployment.hub.deployedAtBlock),
          },
          signal: shutdown.signal,
        }),
      )
      if (!result.ok) exitCode = 1
    }

    if (!opts.once) {
      progress.pause()
      console.log(
        endpoints(paths, info, deployment, [
          ...workers.map((w) => ({ name: `${w.operator.name} ${w.roles.join('+')}`, proc: w.entry.proc })),
          { name: 'relay', proc: relay.proc },
        ]),
      )
      console.log(
        `\n${out.bold('stack running; Ctrl-C to stop')}\n` +
          out.dim(
            `  another request:  npx tsx cli/sertn.ts request --features 1,-2,0.5,3 --wait   (--chain spokelz: over LayerZero; --chain hub: the hub's own gateway)\n`,
          ) +
          out.dim(`  a request's state: npx tsx cli/sertn.ts status <request-key | id [--chain hub]>`),
      )
      const recordHead = headRecorder(paths)
      const logs = STACK_CHAINS.map((name) =>
        watchGateway(name, clients[name].owner, deployment[name].gateway, progress, shutdown.signal, (head) => recordHead(name, head)),
      )
      await new Promise<void>((resolve) => shutdown.signal.addEventListener('abort', () => resolve(), { once: true }))
      await Promise.all(logs)
      exitCode = crashed ? 1 : 0
    }
  } catch (err) {
    if (!(err instanceof Interrupted) && !shutdown.signal.aborted) throw err
    exitCode = crashed ? 1 : 130
  } finally {
    stopping = true
    // Let steps still running (an anvil or arlocal starting) settle, so that nothing they start outlives the stop.
    await Promise.race([Promise.allSettled(branches), new Promise((r) => setTimeout(r, 30_000).unref())])
    await temporalClient?.connection.close().catch(() => {})
    await stopAll(children, progress, paths)
    rmSync(paths.stack, { force: true })
    if (crashed) progress.line(`error: ${crashed}`)
  }
  return exitCode
}

/** Like Promise.all, but waits for every promise to settle before it rejects with the first failure. */
async function settledAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  return results.map((r) => (r as PromiseFulfilledResult<T>).value)
}

/** Clients on each chain: the owner (deploys), the operators' nodes, the dApps' user. */
function clientsOf(chains: Record<StackChain, LocalChain>): StackClients {
  return Object.fromEntries(
    STACK_CHAINS.map((c) => [c, { owner: chains[c].owner, node: chains[c].node, nodes: chains[c].nodes, user: chains[c].user }]),
  ) as StackClients
}

/** Starts a chain's anvil on its persisted state; an unreadable state file is moved aside (a new chain). */
async function startChain(name: StackChain, stateFile: string, port: number, verbose: boolean, progress: Progress): Promise<LocalChain> {
  const start = () => startLocalChain({ ...STACK_CHAIN_SPECS[name], port, stateFile }, { echo: verbose, operators: STACK_OPERATORS })
  try {
    return await start()
  } catch (err) {
    if (!existsSync(stateFile)) throw err
    const aside = `${stateFile}.unreadable-${new Date().toISOString().replace(/[:.]/g, '-')}`
    renameSync(stateFile, aside)
    progress.warn(`the ${name} anvil could not load ${shown(stateFile)}; moved it to ${shown(aside)} and starting a new ${name} chain`)
    return start()
  }
}

/**
 * Clears what the node and the relay remember when a chain no longer matches it: the node's history
 * (Temporal workflows, watcher cursors, the relay's state) when a chain lost blocks its watcher had
 * seen, or only the relay's state when a chain is below the head the stack last saw of it (its
 * agents would skip the chain's new messages).
 */
async function checkHistories(paths: StackPaths, clients: StackClients, deployment: Deployment, progress: Progress): Promise<void> {
  for (const name of STACK_CHAINS) {
    let why: string | undefined
    for (const o of paths.operators) why ??= await checkNodeHistory(o.cursors, clients[name].owner, deployment[name].gateway)
    if (why) {
      progress.warn(
        `the ${name} chain: ${why}: clearing the node's history (the Temporal database, the watcher cursors, the relay's state)`,
      )
      clearNodeHistory(paths)
      return
    }
  }
  const seen = readJson<Partial<Record<StackChain, string>>>(paths.heads) ?? {}
  for (const name of STACK_CHAINS) {
    const head = await clients[name].owner.getBlockNumber({ cacheTime: 0 })
    const last = seen[name]
    if (last !== undefined && BigInt(last) > head && existsSync(paths.relay)) {
      progress.warn(
        `the ${name} chain is at block ${head}, below block ${last} seen before: clearing the relay's state (${shown(paths.relay)}); ` +
          `it rescans from the messengers' deployment`,
      )
      rmSync(paths.relay, { recursive: true, force: true })
      break
    }
  }
  rmSync(paths.heads, { force: true })
}

/**
 * Records the newest head seen of each chain (see {@link checkHistories}): kept in memory, and
 * written to the file only when a head moved.
 */
function headRecorder(paths: StackPaths): (chain: StackChain, head: bigint) => void {
  const seen: Partial<Record<StackChain, string>> = {}
  return (chain, head) => {
    if (seen[chain] === head.toString()) return
    seen[chain] = head.toString()
    writeFileSync(paths.heads, `${JSON.stringify(seen)}\n`)
  }
}

/**
 * Why the node's history (Temporal workflows, watcher cursors) no longer matches a chain, if it
 * does not: the chain lost blocks the watcher had seen (anvil was killed before saving its state,
 * or the state file was removed), so request ids would be reused and their workflows taken as done.
 */
async function checkNodeHistory(cursors: string, client: SertnClient, gateway: Address): Promise<string | undefined> {
  const cursor = await new FileCursorStore(cursors).load(`evm-${client.chain.id}-${gateway.toLowerCase()}`).catch(() => undefined)
  if (!cursor) return undefined
  const last = cursor.recentHashes.at(-1)
  const head = await client.getBlockNumber({ cacheTime: 0 })
  if (!last) return BigInt(cursor.blockNumber) > head ? 'the chain is behind what the node had seen' : undefined
  if (BigInt(last.number) > head) return `the chain is at block ${head}, the node had seen block ${last.number}`
  const block = await client.getBlock({ blockNumber: BigInt(last.number) })
  return block.hash === last.hash ? undefined : `block ${last.number} is not the one the node had seen (a new chain)`
}

function clearNodeHistory(paths: StackPaths): void {
  for (const o of paths.operators) rmSync(o.cursors, { recursive: true, force: true })
  rmSync(paths.relay, { recursive: true, force: true })
  rmSync(paths.heads, { force: true })
  for (const f of readdirSync(paths.dataDir))
    if (f === 'temporal.db' || f.startsWith('temporal.db-')) rmSync(join(paths.dataDir, f), { force: true })
}

function reset(paths: StackPaths, progress: Progress): void {
  const removed: string[] = []
  const stateFiles = [...Object.values(paths.chainState), paths.legacyAnvilState]
  const hyperlaneState = join(paths.dataDir, 'hyperlane') // the relay's state of older stacks
  for (const p of [
    ...stateFiles,
    paths.deployment,
    ...paths.operators.flatMap((o) => (o.dataDir === paths.dataDir ? [o.config] : [o.config, o.dataDir])),
    paths.arlocal,
    paths.arweaveWallet,
    paths.cursors,
    paths.relay,
    paths.heads,
    hyperlaneState,
  ]) {
    if (existsSync(p)) {
      rmSync(p, { recursive: true, force: true })
      removed.push(shown(p))
    }
  }
  for (const f of readdirSync(paths.dataDir)) {
    const path = join(paths.dataDir, f)
    if (f === 'temporal.db' || f.startsWith('temporal.db-') || stateFiles.some((s) => path.startsWith(`${s}.`))) {
      rmSync(path, { force: true })
      removed.push(shown(path))
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
  hub: ['--hub-port', 'the hub anvil (JSON-RPC)'],
  spoke: ['--spoke-port', 'the spoke anvil (JSON-RPC)'],
  spokelz: ['--spokelz-port', 'the spokelz anvil (JSON-RPC)'],
  arlocal: ['--arlocal-port', 'arlocal (Arweave)'],
  temporal: ['--temporal-port', 'the Temporal server (gRPC)'],
  ui: ['--ui-port', 'the Temporal UI'],
} as const

async function resolvePorts(ports: StartOptions['ports']): Promise<StartOptions['ports']> {
  const resolved = { ...ports }
  const keys = Object.keys(PORT_FLAGS) as (keyof typeof PORT_FLAGS)[]
  const problems: string[] = []
  const chosen = new Map<number, keyof typeof PORT_FLAGS>()
  for (const k of keys) {
    const p = resolved[k]
    if (p === 0) continue
    const other = chosen.get(p)
    if (other) problems.push(`${PORT_FLAGS[k][0]} and ${PORT_FLAGS[other][0]} are both ${p}; give each its own port`)
    else if (!(await portIsFree(p))) {
      const [flag, what] = PORT_FLAGS[k]
      problems.push(`port ${p} for ${what} is in use; pick another with ${flag} ${p + 1} (or ${flag} 0 for any free port)`)
    }
    chosen.set(p, k)
  }
  if (problems.length) {
    throw new SertnError(problems.length === 1 ? problems[0]! : `ports in use:\n  ${problems.join('\n  ')}`, {
      details: 'Is another `sertn start`, Temporal server, anvil or arlocal running? Stop it, or choose other ports.',
    })
  }
  // Free ports for the 0s, distinct from each other and from the chosen ones.
  for (const k of keys) {
    if (resolved[k] !== 0) continue
    let p = await freePort()
    while (chosen.has(p)) p = await freePort()
    resolved[k] = p
    chosen.set(p, k)
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

/**
 * Writes each operator's node configuration (all values parsed, defaults filled in): every chain
 * from the deployment (the local network module's `localNetworkConfig`: the hub with its market and
 * messengers, each spoke with its hub and its messenger) and the local keys; operator 1's (which the
 * relay reads too) in `sertn.config.json`, each other operator's with its own node key, Temporal
 * namespace and data directory (as the local network module's `startLocalNetwork` configures its
 * operators) in `sertn.operator-<n>.config.json`. The agents attest at 0 confirmations: the anvils
 * mine a block per transaction, and nothing would mine one on top of a message that no request follows.
 */
function writeNodeConfigs(
  paths: StackPaths,
  s: {
    chains: Record<StackChain, LocalChain>
    deployment: Deployment
    temporal: TemporalDevServer
    arlocal: ArlocalInstance
    prover: ProverName
  },
): SertnConfig[] {
  return paths.operators.map((o) => {
    const config = localNetworkConfig({
      network: networkOf(s.deployment),
      rpcUrls: Object.fromEntries(STACK_CHAINS.map((c) => [c, s.chains[c].rpcUrl])),
      dataDir: o.dataDir,
      pollingIntervalMs: POLLING_MS,
      confirmations: CONFIRMATIONS,
      agentConfirmations: 0,
      startBlocks: Object.fromEntries(STACK_CHAINS.map((c) => [c, s.deployment[c].deployedAtBlock])),
      overrides: {
        ...(o.node ? { node: o.node } : {}),
        temporal: { address: s.temporal.address, namespace: o.namespace },
        prover: { plugin: s.prover },
        storage: { arweave: { url: s.arlocal.url, walletFile: paths.arweaveWallet } },
      },
    })
    writeFileSync(o.config, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
    return config
  })
}

/** `sertn worker --role R,… --config FILE` in its own process group, named `<name>:<roles>`. */
function startWorker(roles: readonly WorkerRole[], configFile: string, name: string, echo: boolean): ManagedProcess {
  return startProcess({
    name: `${name}:${roles.join(',')}`,
    command: process.execPath,
    args: ['--import', 'tsx', SERTN_CLI, 'worker', '--role', roles.join(','), '--config', configFile, '--log-level', 'warn'],
    cwd: REPO_ROOT,
    echo,
  })
}

/** `sertn relay --config FILE` in its own process group. */
function startRelay(configFile: string, echo: boolean): ManagedProcess {
  return startProcess({
    name: 'relay',
    command: process.execPath,
    args: ['--import', 'tsx', SERTN_CLI, 'relay', '--config', configFile],
    cwd: REPO_ROOT,
    echo,
  })
}

/** Waits until the (current) relay process says its agents run (its `relay pid …` record). */
async function waitForRelay(entry: Child): Promise<void> {
  const deadline = Date.now() + 60_000
  while (!/relay pid \d+/.test(entry.proc.output())) {
    if (Date.now() > deadline)
      throw new SertnError('the relay did not start within 60 s', {
        details: `${entry.proc.output() ? `Its last output:\n${entry.proc.output()}\n` : ''}Run with --verbose to see its output.`,
      })
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * Waits until every role's task queue has a poller in every operator's namespace (workflow tasks
 * for chain-io, activities otherwise).
 */
async function waitForWorkers(connection: Connection, configs: SertnConfig[], step: { note(t: string | undefined): void }): Promise<void> {
  const queues = configs.flatMap((config, i) => {
    const who = configs.length > 1 ? `operator ${i + 1} ` : ''
    const namespace = config.temporal.namespace
    return [
      { role: `${who}chain-io`, namespace, name: config.temporal.taskQueues.chainIo, type: 1 /* TASK_QUEUE_TYPE_WORKFLOW */ },
      { role: `${who}inference`, namespace, name: config.temporal.taskQueues.inference, type: 2 /* TASK_QUEUE_TYPE_ACTIVITY */ },
      { role: `${who}prover`, namespace, name: queueOfRole(config, 'prover'), type: 2 },
    ]
  })
  const deadline = Date.now() + 180_000
  for (;;) {
    const waiting: string[] = []
    for (const q of queues) {
      const r = await connection.workflowService
        .describeTaskQueue({ namespace: q.namespace, taskQueue: { name: q.name, kind: 1 }, taskQueueType: q.type })
        .catch(() => undefined)
      if (!r?.pollers?.length) waiting.push(q.role)
    }
    if (waiting.length === 0) return
    step.note(`waiting for ${waiting.join(', ')}`)
    if (Date.now() > deadline)
      throw new SertnError(`the workers did not start polling within 180 s (waiting for ${waiting.join(', ')})`, {
        details: 'Run with --verbose to see their output.',
      })
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * While the stack runs: prints a chain's gateway events, and mines a block on top of any block that
 * holds a request (the watcher's one confirmation) so that requests from any sender are served.
 */
async function watchGateway(
  chain: StackChain,
  client: SertnClient,
  gateway: Address,
  progress: Progress,
  signal: AbortSignal,
  onHead: (head: bigint) => void,
): Promise<void> {
  let next = (await client.getBlockNumber({ cacheTime: 0 }).catch(() => 0n)) + 1n
  const say = (s: string) => progress.line(`${dim(new Date().toISOString().slice(11, 19))} ${chain.padEnd(7)}  ${s}`)
  const status = (id: unknown) => `sertn status ${String(id)}${chain === 'hub' ? ' --chain hub' : ''}`
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, 250))
    if (signal.aborted) break
    try {
      const head = await client.getBlockNumber({ cacheTime: 0 })
      onHead(head)
      if (head < next) continue
      // The spoke's SpokeGateway emits the same request and settlement events (IInferenceGateway's).
      const logs = await client.getContractEvents({ address: gateway, abi: InferenceGateway.abi, fromBlock: next, toBlock: head })
      let requestInHead = false
      for (const log of logs) {
        const a = log.args as Record<string, unknown>
        if (log.eventName === 'InferenceRequested') {
          say(`request #${String(a.requestId)} in block ${log.blockNumber} from ${String(a.requester)} → ${status(a.requestId)}`)
          if (log.blockNumber === head) requestInHead = true
        } else if (log.eventName === 'InferenceFulfilled') {
          say(
            `request #${String(a.requestId)} fulfilled${chain !== 'hub' ? ' (result from the hub, verified here)' : ''} ` +
              `(callback ${['succeeded', 'failed', 'skipped'][Number(a.callbackStatus)] ?? '?'}), tx ${log.transactionHash}`,
          )
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

function endpoints(paths: StackPaths, info: StackInfo, d: Deployment, processes: { name: string; proc: ManagedProcess }[]): string {
  const { bold, dim } = out
  const dapps = (on: Record<string, Address>) =>
    Object.entries(on)
      .map(([m, a]) => `${a} (${m})`)
      .join(', ')
  const ports = (c: { messengers: { kind: string; port: string }[] }) => c.messengers.map((m) => `${m.kind} port ${m.port}`).join(', ')
  const facades = (c: ChainDeployment) =>
    c.facades ? [`    facades    ${dim(`ORA IAIOracle ${c.facades.ora}, Infernet registry/coordinator ${c.facades.infernet}`)}`] : []
  return [
    `\n${bold('local stack')} ${dim(`(data in ${shown(paths.dataDir)}; local dev keys, insecure)`)}`,
    `  hub          ${info.rpcUrls.hub}  ${dim(`anvil, chain id ${d.hub.chainId}, state ${shown(paths.chainState.hub)}`)}`,
    `    market     ${d.hub.market}  ${dim(`serves the spokes' requests; ${ports(d.hub)}`)}`,
    `    gateway    ${d.hub.gateway}  ${dim(`registry ${d.hub.registry}`)}`,
    `    dApp       ${dapps(d.hub.dapps)}  ${dim('ExampleClassifier (sertn request --chain hub)')}`,
    ...facades(d.hub),
    ...STACK_SPOKES.flatMap((c) => [
      `  ${c.padEnd(11)}  ${info.rpcUrls[c]}  ${dim(`anvil, chain id ${d[c].chainId}, state ${shown(paths.chainState[c])}`)}`,
      `    gateway    ${d[c].gateway}  ${dim(`SpokeGateway, registry ${d[c].registry}; ${ports(d[c])}`)}`,
      `    dApp       ${dapps(d[c].dapps)}  ${dim(`ExampleClassifier (sertn request${c === 'spoke' ? '' : ` --chain ${c}`})`)}`,
      ...facades(d[c]),
    ]),
    `  Temporal     ${info.temporal}  ${dim(
      `namespace${info.operators && info.operators.length > 1 ? `s ${info.operators.map((o) => o.namespace).join(', ')}` : ` ${info.namespace}`}, ` +
        `database ${shown(paths.temporalDb)}`,
    )}`,
    `  Temporal UI  ${info.temporalUi}`,
    `  arweave      ${info.arlocal}  ${dim(`arlocal, data ${shown(paths.arlocal)}`)}`,
    ...(info.operators ?? []).map(
      (o, i) =>
        `  ${o.name.padEnd(11)}  ${o.address}  ${dim(
          `node in every model's pool, namespace ${o.namespace}, config ${shown(o.config)}${i === 0 ? ' (the relay reads it too)' : ''}`,
        )}`,
    ),
    `  processes    ${processes.map((p) => `${p.name} (pid ${p.proc.pid})`).join(', ')}`,
  ].join('\n')
}

/** Stops the workers and the relay, then arlocal and Temporal, then the anvils (which write their state on SIGTERM). */
async function stopAll(children: Child[], progress: Progress, paths: StackPaths): Promise<void> {
  if (children.length === 0) return
  const t0 = performance.now()
  const step = progress.begin('stop', { announce: true })
  const stopped: string[] = []
  const group = async (names: (n: string) => boolean) => {
    // In the stack's own order (the anvils start side by side, so `children` has them as they came up).
    const rank = (name: string) => STACK_CHAINS.findIndex((c) => `${c} anvil` === name)
    const chosen = children.filter((c) => names(c.name)).sort((a, b) => rank(a.name) - rank(b.name))
    if (!chosen.length) return
    step.note(`stopping ${chosen.map((c) => c.name).join(', ')}`)
    await Promise.allSettled(chosen.map((c) => c.stop()))
    stopped.push(...chosen.map((c) => c.name))
  }
  await group((n) => n.includes('worker') || n === 'relay')
  await group((n) => n === 'arlocal' || n === 'Temporal')
  await group((n) => n.endsWith('anvil'))
  const saved = STACK_CHAINS.filter((c) => stopped.includes(`${c} anvil`) && existsSync(paths.chainState[c])).map((c) =>
    shown(paths.chainState[c]),
  )
  step.done(`${stopped.join(', ')}${saved.length ? `; chains saved to ${saved.join(', ')}` : ''}`, performance.now() - t0)
}
