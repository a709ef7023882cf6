/**
 * `sertn start --once` end to end, as a user runs it: a child process that starts three anvils (the
 * hub, a spoke joined over Hyperlane and a spoke joined over LayerZero V2), deploys the network,
 * starts the Temporal dev server (a namespace per operator), arlocal, two node operators' workers
 * (operator 1: three worker processes; operator 2: one with every role, its own key and namespace)
 * and the relay in a temporary data directory (any free ports), serves a demo request from each
 * spoke through the hub and back to a verified result, printing every hop and which operator the
 * hub assigned it to, stops everything and exits 0. A second run on the same directory reuses the
 * persisted chains and the contracts and serves new requests.
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const RUN_TIMEOUT_MS = 180_000

type Run = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

let dataDir: string
const running = new Set<number>()

/** Processes whose command line mentions `dir` (anvil --state, temporal --db-filename, arlocal --db, workers and relay --config). */
function processesUsing(dir: string): { pid: number; cmd: string }[] {
  if (!existsSync('/proc')) return []
  const found: { pid: number; cmd: string }[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ')
      if (cmd.includes(dir)) found.push({ pid: Number(entry), cmd })
    } catch {
      // gone
    }
  }
  return found
}

/** Samples the processes using `dir` every 250 ms until `stop()`, which returns every command line seen. */
function sampleProcesses(dir: string): { stop: () => Set<string> } {
  const seen = new Set<string>()
  const sample = () => {
    for (const p of processesUsing(dir)) seen.add(p.cmd)
  }
  const timer = setInterval(sample, 250)
  return {
    stop: () => {
      clearInterval(timer)
      return seen
    },
  }
}

/** The operators' node accounts (anvil accounts 1 and 5). */
const OPERATORS = { 'operator 1': '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', 'operator 2': '0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc' }
const NAMESPACES = { 'operator 1': 'default', 'operator 2': 'operator-2' }
type OperatorName = keyof typeof OPERATORS

/**
 * Which operator served each demo request, in order, as the progress (`✔ assigned … operator N
 * (0x…) in epoch E, window 120 s`) and the summary (`operator  served by operator N (0x…), namespace
 * …`) say; they must agree, and the other operator's workflow stood aside.
 */
function servedBy(r: Run, output: string): OperatorName[] {
  const assigned = [
    ...r.stderr.matchAll(/✔ assigned +\d[\d.]* m?s {2}(operator [12]) \((0x[0-9a-fA-F]{4})…([0-9a-fA-F]{4})\) in epoch \d+, window 120 s/g),
  ]
  const summary = [
    ...r.stdout.matchAll(
      /operator {2}served by (operator [12]) \((0x[0-9a-fA-F]{40})\), namespace (\S+) · (operator [12]) (?:stood aside \(settled-elsewhere\)|stands aside \(its workflow looks again once the window has passed\))/g,
    ),
  ]
  expect(assigned.length, output).toBe(2)
  expect(summary.length, output).toBe(2)
  return summary.map((m, i) => {
    const name = m[1] as OperatorName
    expect(m[2], output).toBe(OPERATORS[name])
    expect(m[3], output).toBe(NAMESPACES[name])
    expect(m[4], output).not.toBe(name)
    const a = assigned[i]!
    expect(a[1], output).toBe(name)
    expect(`${a[2]}…${a[3]}`).toBe(`${OPERATORS[name].slice(0, 6)}…${OPERATORS[name].slice(-4)}`)
    return name
  })
}

/** Runs `sertn …` in its own process group; on timeout, SIGINT (a clean stop), then SIGKILL. */
function sertn(args: string[], timeoutMs = RUN_TIMEOUT_MS): Promise<Run> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/sertn.ts', ...args], {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    const pid = child.pid!
    running.add(pid)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const interrupt = setTimeout(() => {
      stderr += `\n[test] no exit after ${timeoutMs} ms: SIGINT\n`
      try {
        process.kill(-pid, 'SIGINT')
      } catch {
        // gone
      }
    }, timeoutMs)
    const kill = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, timeoutMs + 20_000)
    child.once('exit', (code, signal) => {
      clearTimeout(interrupt)
      clearTimeout(kill)
      running.delete(pid)
      // Let the pipes drain.
      setTimeout(() => resolvePromise({ code, signal, stdout, stderr }), 50)
    })
  })
}

const ANY_PORTS = [
  ...['--hub-port', '0', '--spoke-port', '0', '--spokelz-port', '0'],
  ...['--temporal-port', '0', '--ui-port', '0', '--arlocal-port', '0'],
]
/** How many times `re` matches `text`. */
const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, `${re.flags.replace('g', '')}g`))?.length ?? 0

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sertn-cli-start-'))
})

afterAll(async () => {
  // Whatever is left (a run that hung): the CLI's group, then anything else using the directory.
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  for (const p of processesUsing(dataDir)) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  await rm(dataDir, { recursive: true, force: true })
})

/** The hops of a spoke's request, as the progress prints them (label, then what happened). */
const HOPS = [
  /✔ spoke → hub {2}request relayed +\d[\d.]* m?s {2}recorded by the hub market as #\d+ · tx 0x/,
  /✔ hub {2}result verified and sent +\d[\d.]* m?s {2}verified on the hub, sent to the spoke · tx 0x[0-9a-f…]+, \d+k gas/,
  /✔ hub → spoke {2}result delivered +\d[\d.]* m?s {2}verified on the spoke, callback · tx 0x[0-9a-f…]+, \d+k gas/,
  /✔ spoke → hub {2}receipt settled +\d[\d.]* m?s {2}settled on the hub \(Fulfilled\)/,
]

type ChainRecord = { gateway: string; dapps: Record<string, string>; messengers: { kind: string; port: string }[] }
type DeploymentRecord = { nodes: string[]; hub: ChainRecord & { market: string }; spoke: ChainRecord; spokelz: ChainRecord }

describe('sertn start --once', () => {
  test(
    'starts the hub and both spokes, serves a demo request from each spoke → hub → spoke to a verified result, stops everything, exits 0',
    async () => {
      const sampler = sampleProcesses(dataDir)
      const r = await sertn(['start', '--once', '--data-dir', dataDir, ...ANY_PORTS])
      const seen = [...sampler.stop()]
      const output = `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
      expect(r.code, output).toBe(0)
      // Both operators' workers ran: operator 1's three processes, operator 2's one (every role, its own configuration).
      const workers = seen.filter((c) => / worker --role /.test(c))
      for (const role of ['chain-io', 'inference', 'prover'])
        expect(
          workers.some((c) => c.includes(`--role ${role} --config ${join(dataDir, 'sertn.config.json')}`)),
          `operator 1 ${role}\n${workers.join('\n')}`,
        ).toBe(true)
      expect(
        workers.some((c) => c.includes(`--role chain-io,inference,prover --config ${join(dataDir, 'sertn.operator-2.config.json')}`)),
        `operator 2\n${workers.join('\n')}`,
      ).toBe(true)
      expect(r.stderr, output).toMatch(
        /✔ workers .* operator 1: chain-io \(pid \d+\), inference \(pid \d+\), prover \(pid \d+\); operator 2: chain-io\+inference\+prover \(pid \d+\) polling/,
      )
      expect(r.stderr).toMatch(/Temporal dev server .* namespaces default, operator-2/)
      // The hub assigned each demo request to one operator: the output names it.
      servedBy(r, output)
      // One request from each spoke: over Hyperlane (31338), then over LayerZero (31339).
      expect(r.stdout, output).toMatch(/verified result: label [0-2], score -?\d+\.\d{4} .*on the spoke\)/)
      expect(r.stdout, output).toMatch(/verified result: label [0-2], score -?\d+\.\d{4} .*on the spokelz\)/)
      expect(r.stdout).toMatch(/request +#1 +req:31338:0x[0-9a-f]{40}:1/)
      expect(r.stdout).toMatch(/request +#1 +req:31339:0x[0-9a-f]{40}:1/)
      expect(count(r.stdout, /arweave +output \S+/)).toBe(2)
      expect(r.stdout).toMatch(/hub +market request #1 \(Settled: Fulfilled\), result tx 0x[0-9a-f]{64}/)
      expect(r.stdout).toMatch(/hub +market request #2 \(Settled: Fulfilled\), result tx 0x[0-9a-f]{64}/)
      expect(count(r.stdout, /spoke +delivery tx 0x[0-9a-f]{64}/)).toBe(2)
      expect(count(r.stdout, /\d[\d.]* m?s from the request's block to the verified result on the spoke; settled on the hub/)).toBe(2)
      expect(r.stderr).toMatch(/demo request on the spoke \(joined to the hub over hyperlane\)/)
      expect(r.stderr).toMatch(/demo request on the spokelz \(joined to the hub over layerzero\)/)
      for (const stage of [
        'hub anvil',
        'spoke anvil',
        'spokelz anvil',
        'contracts',
        'Temporal dev server',
        'arlocal',
        'workers',
        'relay',
        'request on the spoke',
        'request on the spokelz',
        'watch',
        'inference',
        'witness',
        'prove',
        'verify',
        'store',
        'callback',
        'stop',
      ])
        expect(r.stderr, `stage ${stage}\n${output}`).toMatch(new RegExp(`✔ ${stage}`))
      for (const hop of HOPS) expect(count(r.stderr, hop), `hop ${hop}\n${output}`).toBe(2)
      expect(r.stderr).toMatch(/hub anvil .* chain 31337, new chain/)
      expect(r.stderr).toMatch(/spoke anvil .* chain 31338 \(hyperlane to the hub\), new chain/)
      expect(r.stderr).toMatch(/spokelz anvil .* chain 31339 \(layerzero to the hub\), new chain/)
      expect(r.stderr).toMatch(
        /contracts .* deployed: hub gateway 0x[0-9a-fA-F]{40}, market 0x[0-9a-fA-F]{40} · spoke gateway 0x[0-9a-fA-F]{40} \(hyperlane\) · spokelz gateway 0x[0-9a-fA-F]{40} \(layerzero\) \(no deployment recorded yet\)/,
      )
      expect(r.stderr).toMatch(/relay .* hub ⇄ spoke \(hyperlane\), hub ⇄ spokelz \(layerzero\)/)
      expect(r.stderr).toMatch(/stop .*operator-2 worker.*relay.*hub anvil, spoke anvil, spokelz anvil; chains saved/)

      // The node's configuration has every chain, each with its messengers, and the relay.
      const config = JSON.parse(readFileSync(join(dataDir, 'sertn.config.json'), 'utf8')) as {
        chains: Record<string, { chainId: number; market?: string; hub?: string; messenger?: unknown }>
        relay: { validatorKey?: string; relayerKey?: string }
      }
      expect(config.chains.hub).toMatchObject({
        chainId: 31337,
        messenger: [
          { kind: 'hyperlane', domain: 31337 },
          { kind: 'layerzero', eid: 41337 },
        ],
      })
      expect(config.chains.hub!.market).toMatch(/^0x/)
      expect(config.chains.spoke).toMatchObject({ chainId: 31338, hub: 'hub', messenger: { kind: 'hyperlane', domain: 31338 } })
      expect(config.chains.spokelz).toMatchObject({ chainId: 31339, hub: 'hub', messenger: { kind: 'layerzero', eid: 41339 } })
      expect(config.relay.validatorKey).toMatch(/^0x[0-9a-f]{64}$/)
      expect(config.relay.relayerKey).toMatch(/^0x[0-9a-f]{64}$/)
      // Operator 2's: the same chains, its own key, namespace and data directory.
      type NodeConfig = { dataDir: string; node: { privateKey: string }; temporal: { address: string; namespace: string }; chains: unknown }
      const [one, two] = ['sertn.config.json', 'sertn.operator-2.config.json'].map(
        (f) => JSON.parse(readFileSync(join(dataDir, f), 'utf8')) as NodeConfig,
      )
      expect(one!.temporal.namespace).toBe('default')
      expect(two!.temporal).toEqual({ ...one!.temporal, namespace: 'operator-2' })
      expect(two!.dataDir).toBe(join(dataDir, 'operator-2'))
      expect(two!.node.privateKey).not.toBe(one!.node.privateKey)
      expect(two!.chains).toEqual(config.chains)

      // Persisted for the next start; nothing left running.
      for (const f of [
        'anvil-hub-state.json',
        'anvil-spoke-state.json',
        'anvil-spokelz-state.json',
        'deployment.json',
        'sertn.config.json',
        'temporal.db',
        'arweave-wallet.json',
        'relay/hyperlane',
        'relay/layerzero',
        'sertn.operator-2.config.json',
        'operator-2/cursors',
      ])
        expect(existsSync(join(dataDir, f)), f).toBe(true)
      const deployment = JSON.parse(readFileSync(join(dataDir, 'deployment.json'), 'utf8')) as DeploymentRecord
      expect(deployment.nodes).toEqual(Object.values(OPERATORS))
      expect(Object.keys(deployment.hub.dapps)).toEqual(['sertn-mlp-demo'])
      expect(Object.keys(deployment.spoke.dapps)).toEqual(['sertn-mlp-demo'])
      expect(Object.keys(deployment.spokelz.dapps)).toEqual(['sertn-mlp-demo'])
      expect(deployment.hub.messengers.map((m) => m.kind)).toEqual(['hyperlane', 'layerzero'])
      expect(deployment.spokelz.messengers.map((m) => m.kind)).toEqual(['layerzero'])
      expect(existsSync(join(dataDir, 'stack.json'))).toBe(false)
      expect(processesUsing(dataDir)).toEqual([])
    },
    RUN_TIMEOUT_MS + 30_000,
  )

  test(
    'a second start reuses the persisted chains and the contracts and serves new requests',
    async () => {
      const first = JSON.parse(readFileSync(join(dataDir, 'deployment.json'), 'utf8')) as DeploymentRecord
      const r = await sertn(['start', '--once', '--data-dir', dataDir, ...ANY_PORTS])
      const output = `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
      expect(r.code, output).toBe(0)
      expect(r.stderr, output).toMatch(/hub anvil .* state loaded from /)
      expect(r.stderr).toMatch(/spoke anvil .* state loaded from /)
      expect(r.stderr).toMatch(/spokelz anvil .* state loaded from /)
      expect(r.stderr).toMatch(
        new RegExp(
          `contracts .* reused: hub gateway ${first.hub.gateway}, market ${first.hub.market} · ` +
            `spoke gateway ${first.spoke.gateway} \\(hyperlane\\) · spokelz gateway ${first.spokelz.gateway} \\(layerzero\\)\n`,
        ),
      )
      expect(r.stderr).toMatch(/arweave wallet .* reused/)
      expect(r.stderr).not.toMatch(/clearing/)
      for (const hop of HOPS) expect(count(r.stderr, hop), `hop ${hop}\n${output}`).toBe(2)
      expect(r.stdout).toMatch(/request +#2 +req:31338:/)
      expect(r.stdout).toMatch(/request +#2 +req:31339:/)
      expect(r.stdout).toMatch(/hub +market request #3 /)
      expect(r.stdout).toMatch(/hub +market request #4 /)
      expect(r.stdout).toMatch(/verified result: label [0-2]/)
      servedBy(r, output)
      expect(JSON.parse(readFileSync(join(dataDir, 'deployment.json'), 'utf8'))).toEqual(first)
      expect(processesUsing(dataDir)).toEqual([])
    },
    RUN_TIMEOUT_MS + 30_000,
  )
})
