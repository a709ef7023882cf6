/**
 * `npm run chaos -- --requests N --seed S [--rate R] [--faults kind,kind|all|none] [--settle-timeout SECONDS] [--keep]`
 * `npm run soak` (`--soak SECONDS`: requests at a steady rate, no bursts, for that long; default an hour)
 *
 * A chaos run: the local network of test/chaos/network.ts (hub, Hyperlane spoke, LayerZero spoke,
 * two operators whose workers are a process per role, batching on, the node's RPCs behind proxies),
 * a seeded load of valid and invalid requests from several consumers on every chain (load.ts), and
 * a seeded fault schedule injected while it runs (faults.ts). Then it waits, within a bound, until
 * every accepted request has its terminal outcome on chain, writes the run's ChaosRecord as JSON,
 * checks it from the chains alone (checker.ts `checkRun`), prints a summary and, as its last line, one
 * JSON object: requests, lost, doubled, violations, deliveriesPerSecond, p50Ms, p95Ms, seed, … .
 * Exit 0 when nothing was lost or doubled and the check found no violation.
 *
 * Every worker process's memory and open file descriptors are sampled while it runs, and each
 * workflow's Temporal history length and size read at the end (resources.ts): the summary gives
 * their growth per hour after the warm-up, and the JSON line their figures (`resources`).
 *
 * A progress line every few seconds (stderr): sent, settled, pending, the fault under way. Logs of
 * every worker process and of the network go to <data dir>/logs. Ctrl-C stops everything it
 * started (a second Ctrl-C exits at once; the child processes' process groups die with it).
 * --keep keeps the data directory and the network running after the summary, until Ctrl-C.
 */
import { mkdirSync, createWriteStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Client } from '@temporalio/client'
import { killProcessGroups } from '../support/stack.ts'
import { p50p95 } from '../bench/stats.ts'
import { FaultRunner } from './faults.ts'
import { consumersOf, LoadSender, OutcomeWatcher, prepareLoadChains, type LoadChain } from './load.ts'
import { startChaosNetwork, type ChaosNetwork } from './network.ts'
import { FAULT_KINDS, planFaults, planLoad, type FaultKind } from './plan.ts'
import type { ChaosFault, ChaosRecord, ChaosReport } from './record.ts'
import { checkRun } from './checker.ts'
import { saveChaosRecord } from './record-io.ts'
import { formatResourceReport, resourceJson, ResourceSampler, temporalHistoryStats, type HistoryStats } from './resources.ts'

/**
 * The hub's reassignment window (s). Well above what a request takes here under load (closed jobs:
 * p50 14 s, p90 27 s at 0.5 requests a second with faults): at 30 s, the faults' slowdowns made both
 * operators miss windows, three misses an epoch suspended each, and the pool stalled epoch after
 * epoch. A stall lasts longer than it, so that the stalled operator's jobs are reassigned.
 */
const REASSIGN_WINDOW_S = 90

const say = (line: string) => console.error(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`)

type Args = {
  requests: number
  seed: number
  rate: number
  faults: FaultKind[]
  settleTimeoutS: number
  keep: boolean
  /** A soak: a steady rate (no bursts) for this many seconds. */
  soakS?: number
}

function parse(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '20' },
      seed: { type: 'string', default: '1' },
      rate: { type: 'string', default: '0.5' },
      faults: { type: 'string', default: 'all' },
      'settle-timeout': { type: 'string', default: '900' },
      keep: { type: 'boolean', default: false },
      soak: { type: 'string' },
    },
  })
  const num = (name: string, v: string, min: number) => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${v}"`)
    return n
  }
  const faults =
    values.faults === 'all'
      ? [...FAULT_KINDS]
      : values.faults === 'none' || values.faults === ''
        ? []
        : values.faults.split(',').map((k) => k.trim())
  const unknown = faults.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k))
  if (unknown.length) throw new Error(`--faults: unknown kind(s) ${unknown.join(', ')}; kinds are ${FAULT_KINDS.join(', ')} (or all, none)`)
  const rate = num('rate', values.rate, 0.01)
  const soakS = values.soak === undefined ? undefined : num('soak', values.soak, 60)
  return {
    // A soak sends what its rate gives over its length.
    requests: soakS !== undefined ? Math.round(soakS * rate) : Math.floor(num('requests', values.requests, 1)),
    seed: Math.floor(num('seed', values.seed, 0)),
    rate,
    ...(soakS !== undefined ? { soakS } : {}),
    faults: faults as FaultKind[],
    settleTimeoutS: num('settle-timeout', values['settle-timeout'], 1),
    keep: values.keep,
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The checker's report, from the chains alone (checker.ts). */
async function check(record: ChaosRecord): Promise<{ report: ChaosReport; by: string }> {
  return { report: await checkRun(record), by: 'checker.ts checkRun' }
}

async function main(): Promise<number> {
  let args: Args
  try {
    args = parse(process.argv.slice(2))
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`)
    return 2
  }
  const chainNames = ['hub', 'spoke', 'spokelz']
  const burst = args.soakS !== undefined ? { burstChance: 0 } : {}
  let loadPlan = planLoad({ seed: args.seed, requests: args.requests, rate: args.rate, chains: chainNames, ...burst })
  const faultPlan = planFaults({
    seed: args.seed,
    kinds: args.faults,
    chains: chainNames,
    operators: 2,
    loadMs: loadPlan.at(-1)?.at ?? 0,
    reassignWindowMs: REASSIGN_WINDOW_S * 1000,
  })
  // Faults hit work in flight: a load shorter than the fault schedule is sent more slowly, to span it.
  const scheduleMs = faultPlan.reduce((t, f) => t + f.gapMs + f.durationMs + 5_000, 0)
  let rate = args.rate
  const plannedMs = loadPlan.at(-1)?.at ?? 0
  if (scheduleMs > plannedMs && plannedMs > 0) {
    // The load's span scales with 1/rate (the same draws, gaps stretched).
    rate = Math.floor(((args.rate * plannedMs) / scheduleMs) * 1000) / 1000
    loadPlan = planLoad({ seed: args.seed, requests: args.requests, rate, chains: chainNames, ...burst })
  }
  const loadMs = loadPlan.at(-1)?.at ?? 0
  say(
    `seed ${args.seed}: ${args.requests} requests (+${loadPlan.length - args.requests} invalid) at ${rate}/s${rate !== args.rate ? ` (--rate ${args.rate} slowed to span the faults)` : ''} over ~${Math.round(loadMs / 1000)} s; ` +
      `faults: ${faultPlan.map((f) => `${f.kind}${f.operator !== undefined ? `@op${f.operator + 1}` : ''}${f.chain ? `@${f.chain}` : ''}${f.messenger ? `@${f.messenger}` : ''} +${Math.round(f.gapMs / 1000)}s/${Math.round(f.durationMs / 1000)}s`).join(', ') || 'none'}`,
  )

  const dataDir = await mkdtemp(join(tmpdir(), 'sertn-chaos-'))
  mkdirSync(join(dataDir, 'logs'), { recursive: true })
  const netLog = createWriteStream(join(dataDir, 'logs', 'network.log'), { flags: 'a' })
  const abort = new AbortController()
  let interrupts = 0
  let net: ChaosNetwork | undefined
  const onSignal = (sig: string) => {
    interrupts++
    if (interrupts > 1) {
      say(`${sig} again: exiting now`)
      killProcessGroups(net?.processGroups() ?? [])
      process.exit(130)
    }
    say(`${sig}: stopping (again to exit at once)`)
    abort.abort()
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))
  const aborted = () => abort.signal.aborted

  let exitCode = 1
  let finalOutput: string | undefined
  try {
    say(`starting the network (data ${dataDir})`)
    const t0net = Date.now()
    net = await startChaosNetwork({
      dataDir,
      reassignWindowSeconds: REASSIGN_WINDOW_S,
      log: (l) => netLog.write(`${new Date().toISOString()} ${l}\n`),
    })
    await net.waitForWorkers()
    const sampler = new ResourceSampler({
      workers: () => net!.workers.map((w) => ({ name: w.proc.name, pid: w.proc.pid })),
      everyMs: args.soakS !== undefined ? 15_000 : 5_000,
    })
    sampler.start()
    say(
      `network up in ${Math.round((Date.now() - t0net) / 1000)} s: 3 chains, 2 operators × 3 worker processes, RPC proxies ${Object.entries(
        net.proxies,
      )
        .map(([n, p]) => `${n} ${p.url}`)
        .join(', ')}`,
    )
    if (aborted()) return 130

    let chains = await prepareLoadChains(net)
    await warmUp(chains, abort.signal)
    sampler.mark('warm-up done')
    if (aborted()) return 130
    // The run's blocks start after the warm-up.
    chains = await Promise.all(chains.map(async (c) => ({ ...c, fromBlock: (await c.user.getBlockNumber()) + 1n })))

    const sender = new LoadSender(chains, args.seed)
    const watcher = new OutcomeWatcher(chains)
    const pending = () => sender.requests.filter((r) => watcher.settledAt(r.key) === undefined).length
    const clients = net.configs.map((c) => new Client({ connection: net!.connection, namespace: c.temporal.namespace }))
    const busyQuery: Record<string, string> = {
      prover: `SertnStage IN ('proving', 'batching') AND ExecutionStatus = 'Running'`,
      inference: `SertnStage IN ('loading-input', 'inference') AND ExecutionStatus = 'Running'`,
      'chain-io': `WorkflowType = 'requestWorkflow' AND ExecutionStatus = 'Running'`,
    }
    const busy = async (operator: number, role: string) => (await clients[operator]!.workflow.count(busyQuery[role])).count > 0
    let loadDone = false
    const faults = new FaultRunner({
      net,
      plan: faultPlan,
      sender,
      pending,
      busy,
      loadDone: () => loadDone,
      signal: abort.signal,
      log: say,
    })
    const startedAt = Date.now()

    let watching = true
    const watchLoop = (async () => {
      while (watching) {
        await watcher.poll().catch((err: unknown) => netLog.write(`watcher: ${String(err)}\n`))
        await sleep(500)
      }
    })()
    const progress = setInterval(() => {
      const settled = sender.requests.length - pending()
      say(
        `t+${Math.round((Date.now() - startedAt) / 1000)}s sent ${sender.requests.length}/${args.requests} (+${sender.invalid.length} invalid) settled ${settled} pending ${pending()}` +
          ` fault: ${faults.active ?? '-'}`,
      )
    }, 5000)

    const faultRun = faults.run()
    for (const p of loadPlan) {
      const wait = startedAt + p.at - Date.now()
      if (wait > 0) await sleep(wait)
      if (aborted()) break
      void sender.send(p)
    }
    await sender.drain()
    loadDone = true
    await faultRun
    const lastFaultAt = faults.faults.reduce<number | undefined>((m, f) => Math.max(m ?? 0, f.until ?? f.at), undefined)
    say(
      `load sent (${sender.requests.length} accepted, ${sender.invalid.length} invalid); faults done; waiting for every outcome (≤ ${args.settleTimeoutS} s)`,
    )
    const settleDeadline = Date.now() + args.settleTimeoutS * 1000
    while (!aborted() && pending() > 0 && Date.now() < settleDeadline) await sleep(500)
    await watcher.poll().catch(() => {})
    watching = false
    await watchLoop
    clearInterval(progress)
    await sampler.sample()
    sampler.stop()
    const history = await temporalHistoryStats(
      net.connection,
      net.configs.map((c) => c.temporal.namespace),
    ).catch((err: unknown) => void say(`Temporal history sizes not read: ${String(err)}`))

    const record: ChaosRecord = {
      seed: args.seed,
      startedAt,
      ...(lastFaultAt !== undefined ? { lastFaultAt } : {}),
      chains: chains.map((c) => ({
        name: c.name,
        chainId: c.chainId,
        rpcUrl: net!.local.chains[c.name]!.rpcUrl,
        role: c.role,
        ...(c.messenger ? { messenger: c.messenger } : {}),
        gateway: c.gateway,
        registry: c.registry,
        fromBlock: c.fromBlock,
        confirmations: net!.configs[0]!.chains[c.name]!.confirmations,
      })),
      hub: { market: net.local.network.hub.market, nodeRegistry: net.local.network.hub.core.nodeRegistry },
      nodes: net.local.operators.map((o) => o.client.account.address),
      models: Object.fromEntries(chains.map((c) => [c.modelId, join(net!.configs[0]!.models.dir, c.modelName)])),
      storageUrl: net.local.services!.arlocal.url,
      consumers: consumersOf(chains),
      requests: sender.requests,
      invalid: sender.invalid,
      faults: faults.faults,
    }
    // Outside the data directory, so that it outlives a run without --keep.
    const recordFile = join(tmpdir(), `sertn-chaos-record-seed${args.seed}-${startedAt}.json`)
    await saveChaosRecord(recordFile, record)
    const { report, by } = await check(record)
    // Every violation and what could not be checked, beside the record (the summary names the first).
    const reportFile = recordFile.replace(/\.json$/, '-report.json')
    await writeFile(reportFile, `${JSON.stringify(report, (_, x) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`)

    const summary = summarize({
      args,
      record,
      report,
      by,
      watcher,
      surprises: sender.surprises,
      recordFile,
      keep: args.keep,
      resources: { report: sampler.report(), ...(history ? { history } : {}) },
    })
    exitCode = summary.code
    // Printed once the network is stopped, so that the JSON line is the last line of the output.
    finalOutput = `${summary.text}\n${summary.json}`
    if (args.keep && !aborted()) {
      console.log(summary.text)
      say(`--keep: the network keeps running (data ${dataDir}); Ctrl-C to stop`)
      for (const c of record.chains) say(`  ${c.name} ${c.rpcUrl}`)
      await new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }))
    }
    return aborted() && !args.keep ? 130 : exitCode
  } finally {
    say('stopping the network')
    await net?.stop().catch((err: unknown) => say(`stop: ${String(err)}`))
    netLog.end()
    if (!args.keep) await rm(dataDir, { recursive: true, force: true }).catch(() => {})
    if (finalOutput) console.log(args.keep ? finalOutput.split('\n').at(-1) : finalOutput)
  }
}

/** One request per chain, served before the run (workers, model and proving keys warm); not part of the run. */
async function warmUp(chains: readonly LoadChain[], signal: AbortSignal): Promise<void> {
  const t0 = Date.now()
  say('warm-up: one request per chain')
  const watcher = new OutcomeWatcher(chains)
  const keys: string[] = []
  const sender = new LoadSender(chains, -1)
  for (const c of chains)
    await sender.send({
      index: -1,
      at: 0,
      chain: c.name,
      burst: false,
      kind: 'valid',
      consumer: 0,
      features: [0.5, -1.25, 2, 0.75],
      callbackGas: 200_000,
    })
  if (sender.surprises.length) throw new Error(`warm-up: ${sender.surprises.join('; ')}`)
  keys.push(...sender.requests.map((r) => r.key))
  const deadline = Date.now() + 600_000
  let lastSaid = Date.now()
  while (!signal.aborted) {
    await watcher.poll()
    if (Date.now() - lastSaid > 15_000) {
      lastSaid = Date.now()
      say(
        `warm-up: ${keys.filter((k) => watcher.settledAt(k) !== undefined).length}/${keys.length} served after ${Math.round((Date.now() - t0) / 1000)} s`,
      )
    }
    if (keys.every((k) => watcher.settledAt(k) !== undefined)) break
    if (Date.now() > deadline)
      throw new Error(
        `warm-up: not every warm-up request was served within 600 s (${keys.filter((k) => watcher.settledAt(k) === undefined).join(', ')})`,
      )
    await sleep(500)
  }
  const kinds = keys.map((k) => watcher.outcomes.get(k)?.[0]?.kind)
  say(`warm-up done in ${Math.round((Date.now() - t0) / 1000)} s (${kinds.join(', ')})`)
}

function fmtS(ms: number | undefined): string {
  return ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(1)} s`
}

function summarize(p: {
  args: Args
  record: ChaosRecord
  report: ChaosReport
  by: string
  watcher: OutcomeWatcher
  surprises: readonly string[]
  recordFile: string
  keep: boolean
  resources: { report: ReturnType<ResourceSampler['report']>; history?: HistoryStats }
}): { code: number; text: string; json: string } {
  const { record, report, watcher } = p
  const settled = record.requests.filter((r) => watcher.settledAt(r.key) !== undefined)
  const latencies = settled.map((r) => watcher.settledAt(r.key)! - r.sentAt)
  const { p50, p95 } = p50p95(latencies)
  const firstSent = Math.min(...record.requests.map((r) => r.sentAt))
  const lastSettled = Math.max(...settled.map((r) => watcher.settledAt(r.key)!))
  const deliveriesPerSecond =
    settled.length && lastSettled > firstSent ? Math.round((settled.length / ((lastSettled - firstSent) / 1000)) * 100) / 100 : 0
  const byKind = new Map<string, number>()
  for (const r of settled) {
    const k = watcher.outcomes.get(r.key)![0]!.kind
    byKind.set(k, (byKind.get(k) ?? 0) + 1)
  }
  const nodes = record.nodes.map((n) => n.toLowerCase())
  const servedBy = nodes.map((n) => settled.filter((r) => watcher.outcomes.get(r.key)![0]!.node?.toLowerCase() === n).length)
  const recoveryMs =
    record.lastFaultAt !== undefined && settled.length === record.requests.length
      ? Math.max(0, lastSettled - record.lastFaultAt)
      : undefined
  const perFault = record.faults.map((f) => ({ f, recovery: faultRecovery(f, record, watcher) }))

  const lines = [
    '',
    `chaos run, seed ${record.seed}`,
    `  requests   ${record.requests.length} accepted (${[...byKind].map(([k, n]) => `${n} ${k}`).join(', ') || 'none settled'}), ${record.invalid.length} invalid sent`,
    ...(() => {
      const expiring = record.requests.filter((r) => r.expectExpiry)
      if (expiring.length === 0) return []
      const first = (r: (typeof expiring)[number]) => watcher.outcomes.get(r.key)?.[0]
      const refunded = expiring.filter((r) => first(r)?.kind === 'refunded').length
      const timedOut = expiring.filter((r) => first(r)?.kind === 'failed' && first(r)?.failure?.code === 5).length
      return [
        `  expiring   ${expiring.length} sent with a 1 s timeout: ${refunded} refunded after their deadline, ${timedOut} failed with Timeout by their node`,
      ]
    })(),
    ...settled
      .flatMap((r) => {
        const f = watcher.outcomes.get(r.key)![0]!.failure
        return f ? [`  failed     ${r.key} (${r.chain}, consumer ${r.consumer}): code ${f.code}, ${f.reason}`] : []
      })
      .slice(0, 10),
    `  operators  ${servedBy.map((n, i) => `operator ${i + 1} served ${n}`).join(', ')}`,
    `  throughput ${deliveriesPerSecond} outcomes/s (first request mined → last outcome seen)`,
    `  latency    p50 ${p50} ms, p95 ${p95} ms (request mined → its outcome event seen on its chain)`,
    `  faults     ${record.faults.length === 0 ? 'none' : `${record.faults.length}, in order (start, since the load began, kind, target, how long):`}`,
    ...perFault.map(
      ({ f, recovery }) =>
        `    ${new Date(f.at).toISOString().slice(11, 19)} +${fmtS(f.at - record.startedAt)} ${f.kind.padEnd(16)} ${f.target.padEnd(28)} lasted ${fmtS((f.until ?? f.at) - f.at)}; ` +
        `recovery ${recovery.text}`,
    ),
    `  recovery   every outcome ${fmtS(recoveryMs)} after the last fault ended`,
    `  check      by ${p.by}: fulfilled ${report.fulfilled}, failed ${report.failed}, refunded ${report.refunded}, invalid refused ${report.invalidRefused}/${record.invalid.length}; ` +
      `lost ${report.lost}, doubled ${report.doubled}, violations ${report.violations}`,
    ...(report.firstViolation
      ? [`  first violation: ${report.firstViolation.rule} ${report.firstViolation.subject}: ${report.firstViolation.message}`]
      : []),
    ...(report.violations > 0
      ? [
          `  violations ${[...new Set(report.all.map((x) => x.rule))].map((rule) => `${report.all.filter((x) => x.rule === rule).length} ${rule}`).join(', ')} (all in the report file)`,
        ]
      : []),
    ...('notChecked' in report ? (report.notChecked as string[]).map((x) => `  not checked ${x}`) : []),
    ...formatResourceReport(p.resources.report, p.resources.history),
    ...(p.surprises.length ? [`  load surprises (${p.surprises.length}): ${p.surprises.slice(0, 5).join('; ')}`] : []),
    `  record     ${p.recordFile} (the report: ${p.recordFile.replace(/\.json$/, '-report.json')})${p.keep ? '' : ' (the chains are gone: --keep keeps them for a second check)'}`,
  ]
  const ok = report.lost === 0 && report.doubled === 0 && report.violations === 0 && settled.length === record.requests.length
  const json = JSON.stringify({
    requests: record.requests.length,
    invalid: record.invalid.length,
    invalidRefused: report.invalidRefused,
    fulfilled: report.fulfilled,
    failed: report.failed,
    refunded: report.refunded,
    lost: report.lost,
    doubled: report.doubled,
    violations: report.violations,
    deliveriesPerSecond,
    p50Ms: p50,
    p95Ms: p95,
    recoveryMs: recoveryMs ?? null,
    recoveryByFault: Object.fromEntries(perFault.map(({ f, recovery }) => [`${f.kind} ${f.target}`, recovery.ms ?? null])),
    faults: record.faults.map((f) => f.kind),
    expiring: record.requests.filter((r) => r.expectExpiry).length,
    resources: resourceJson(p.resources.report, p.resources.history),
    seed: record.seed,
  })
  return { code: ok ? 0 : 1, text: lines.join('\n'), json }
}

/**
 * A fault's recovery: of the requests in flight when it began, how long after it ended the last
 * reached its outcome (n/a when none was in flight; "not recovered" when one never did).
 */
function faultRecovery(f: ChaosFault, record: ChaosRecord, watcher: OutcomeWatcher): { ms?: number; text: string } {
  const inFlight = record.requests.filter((r) => r.sentAt <= f.at && (watcher.settledAt(r.key) ?? Number.POSITIVE_INFINITY) > f.at)
  if (inFlight.length === 0) return { text: 'n/a (nothing in flight)' }
  const ends = inFlight.map((r) => watcher.settledAt(r.key))
  if (ends.some((e) => e === undefined))
    return { text: `not recovered (${ends.filter((e) => e === undefined).length} of ${inFlight.length} in flight never settled)` }
  const ms = Math.max(0, Math.max(...(ends as number[])) - (f.until ?? f.at))
  let other = ''
  const stalled = f.kind === 'stall-operator' ? Number(/operator (\d+)/.exec(f.target)?.[1]) - 1 : -1
  if (stalled >= 0) {
    const node = record.nodes[stalled]?.toLowerCase()
    const elsewhere = inFlight.filter((r) => (watcher.outcomes.get(r.key)?.[0]?.node?.toLowerCase() ?? node) !== node).length
    other = `, ${elsewhere} served by another operator`
  }
  return { ms, text: `${fmtS(ms)} for the ${inFlight.length} request(s) in flight${other}` }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exit(1)
  },
)
