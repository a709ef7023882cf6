/**
 * Issue 13's operator path end to end, every step as an operator runs it: two plain anvils (a hub
 * and a spoke joined over Hyperlane), a Temporal dev server and arlocal; keystores made with
 * `sertn keys new` for the deployer, the node, the relayer and the validator (funded by the test
 * from anvil's prefunded account); `sertn deploy` from a network file (the demo model registered
 * on both chains); `sertn node register` with the node's keystore from the written configuration
 * and the deployment record; then `sertn worker` and `sertn relay` as child processes configured
 * only from files (the written configuration, a secrets file naming the keystores: no raw key). A
 * consumer on the spoke requests an inference; the verified result comes back to it; `/metrics`
 * and `/readyz` of the worker, scraped before and after, show the request's counters rise and each
 * chain's watcher move with its lag reported; the relay's `/metrics` count its deliveries.
 * SERTN_E2E_DEBUG=1 echoes the worker's and the relay's logs.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Address, type Hex, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type AnvilInstance, startAnvil } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { mineToNextEpoch } from '../../chains/evm/nodes.ts'
import { confirm, deployContract } from '../../chains/evm/transactions.ts'
import type { DeploymentRecord } from '../../cli/deploy.ts'
import { RecordingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { freePort, type ManagedProcess, startProcess } from '../../core/process.ts'
import { type ArlocalInstance, loadOrCreateLocalWallet, startArlocal } from '../../plugins/storage/arweave/index.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'
import { waitUntil } from '../support/chain.ts'
import { REPO, runSertn } from '../support/cli.ts'
import { boundedTeardown, CALLBACK_GAS, DEMO_INPUT, killProcessGroups } from '../support/stack.ts'

const RUN_TIMEOUT_MS = 240_000
const ROLES = ['deployer', 'node', 'relayer', 'validator'] as const
type Role = (typeof ROLES)[number]

let hub: AnvilInstance
let spoke: AnvilInstance
let temporal: TemporalDevServer
let arlocal: ArlocalInstance
let dir: string
const running = new Set<number>()
const daemons: ManagedProcess[] = []
const address = {} as Record<Role, Address>
let workerPort: number
let relayPort: number
let record: DeploymentRecord

const path = (name: string) => join(dir, name)
const keystore = (role: Role) => path(`keystores/${role}`)

/** Runs `sertn …` to its end as a child process (its own process group, killed by the teardown if still running). */
const sertn = (args: string[]) => runSertn(args, { env: { SERTN_SECRETS: '' }, running, timeoutMs: RUN_TIMEOUT_MS - 10_000 })

/** Starts a long-running `sertn …` (stopped by the teardown); its output goes to `lines`. */
function daemon(name: string, args: string[], lines: string[]): ManagedProcess {
  const proc = startProcess({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', 'cli/sertn.ts', ...args],
    cwd: REPO,
    env: { ...process.env, SERTN_SECRETS: '' },
    onLine: (line) => {
      lines.push(line)
      if (process.env.SERTN_E2E_DEBUG) console.log(`[${name}] ${line.slice(0, 400)}`)
      if (lines.length > 2000) lines.shift()
    },
  })
  daemons.push(proc)
  return proc
}

/** The sum of a metric's samples whose labels include `labels` (0 when none). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3])
  }
  return sum
}

const scrape = async (port: number, p: '/metrics' | '/readyz' | '/healthz') => {
  const r = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(5_000) })
  return { status: r.status, body: await r.text() }
}

type Readiness = {
  ready: boolean
  chains: Record<string, { lastScannedBlock?: number; head?: number; lagBlocks?: number }>
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-operator-'))
  ;[hub, spoke, temporal, arlocal, workerPort, relayPort] = await Promise.all([
    startAnvil({ chainId: 31337 }),
    startAnvil({ chainId: 31338 }),
    startTemporalDevServer(),
    startArlocal(),
    freePort(),
    freePort(),
  ])
}, 120_000)

afterAll(async () => {
  await boundedTeardown(
    [
      () => killProcessGroups([...running]),
      ...daemons.map((d) => () => d.stop()),
      () => hub?.stop(),
      () => spoke?.stop(),
      () => temporal?.stop(),
      () => arlocal?.stop(),
      () => rm(dir, { recursive: true, force: true }),
    ],
    {
      processGroups: () =>
        [...daemons.map((d) => d.pid), hub?.process.pid, spoke?.process.pid, temporal?.process.pid, arlocal?.process.pid].filter(
          (p): p is number => p !== undefined,
        ),
    },
  )
}, 60_000)

describe('an operator runs Sertn from files', () => {
  test(
    'default: keystores from sertn keys, funded; sertn deploy from a network file signed from the keystore',
    async () => {
      await mkdir(path('passwords'), { recursive: true })
      await Promise.all(ROLES.map((r) => writeFile(path(`passwords/${r}`), `${r}-password\n`)))
      for (const r of await Promise.all(
        ROLES.map((role) =>
          sertn(['keys', 'new', role, '--keystore-dir', path('keystores'), '--password-file', path(`passwords/${role}`)]),
        ),
      )) {
        expect(r.code, r.out).toBe(0)
      }
      const made = await Promise.all(
        ROLES.map((role) => sertn(['keys', 'address', keystore(role), '--password-file', path(`passwords/${role}`)])),
      )
      ROLES.forEach((role, i) => {
        const a = /0x[0-9a-fA-F]{40}/.exec(made[i]!.out)
        expect(a, made[i]!.out).not.toBeNull()
        address[role] = a![0] as Address
      })
      // Funding the accounts is the test's business: anvil's first account pays; arlocal mints the
      // node's Arweave wallet (an operator brings its own).
      await loadOrCreateLocalWallet(arlocal.url, path('arweave-wallet.json'))
      for (const chain of [hub, spoke]) {
        const bank = createSertnClient(chain.chain, anvilAccount(0), { rpcUrl: chain.rpcUrl })
        for (const role of ROLES) await confirm(bank, await bank.sendTransaction({ to: address[role], value: parseEther('100') }))
      }

      const network = {
        name: 'operator-e2e',
        hub: { name: 'hub', chainId: 31337, rpcUrl: hub.rpcUrl, confirmations: 0, pollingIntervalMs: 200 },
        spokes: [{ name: 'spoke', chainId: 31338, rpcUrl: spoke.rpcUrl, messenger: 'hyperlane', confirmations: 0, pollingIntervalMs: 200 }],
        messaging: { attesters: [address.validator], threshold: 1, confirmations: 0, submitters: [address.relayer] },
        models: [join(REPO, 'circuits', 'sertn-mlp-demo')],
        pool: { epochLength: 20, minimumStake: '1000000000000000000' },
        allowInsecureSrs: true,
        nodeConfig: {
          dataDir: path('data'),
          secretsFile: path('sertn.secrets.json'),
          temporal: { address: temporal.address, namespace: temporal.namespace },
          storage: { arweave: { url: arlocal.url, walletFile: path('arweave-wallet.json') } },
          observability: { logFormat: 'json', logLevel: 'info' },
        },
      }
      await writeFile(path('network.json'), JSON.stringify(network, null, 2))
      const r = await sertn([
        'deploy',
        '--network',
        path('network.json'),
        '--record',
        path('deployment.json'),
        '--config-out',
        path('sertn.config.json'),
        '--keystore',
        keystore('deployer'),
        '--password-file',
        path('passwords/deployer'),
        '--yes',
      ])
      expect(r.code, r.out).toBe(0)
      record = JSON.parse(await readFile(path('deployment.json'), 'utf8')) as DeploymentRecord
      expect(record.complete).toBe(true)
      expect(record.models).toHaveProperty('sertn-mlp-demo')
    },
    2 * RUN_TIMEOUT_MS,
  )

  test(
    'default: sertn node register with the node keystore joins the pool, active from the next epoch',
    async () => {
      const secrets = Object.fromEntries(
        (['node', 'relayer', 'validator'] as const).map((role) => [
          role,
          { keystore: keystore(role), passwordFile: path(`passwords/${role}`) },
        ]),
      )
      await writeFile(path('sertn.secrets.json'), JSON.stringify(secrets, null, 2))
      const r = await sertn([
        'node',
        'register',
        '--config',
        path('sertn.config.json'),
        '--deployment',
        path('deployment.json'),
        '--keystore',
        keystore('node'),
        '--password-file',
        path('passwords/node'),
        '--json',
      ])
      expect(r.code, r.out).toBe(0)
      const out = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{'))!)
      expect(out).toMatchObject({ ok: true, node: address.node, models: [{ name: 'sertn-mlp-demo', status: 'registered' }] })
      // A join takes effect from the next epoch: the test moves the hub there.
      const client = createSertnClient(hub.chain, anvilAccount(0), { rpcUrl: hub.rpcUrl })
      await mineToNextEpoch(client, record.network!.hub.core.nodeRegistry)
    },
    RUN_TIMEOUT_MS,
  )

  test(
    'default: a worker and a relay configured from files serve a spoke request; /metrics and /readyz show it',
    async () => {
      const written = JSON.parse(await readFile(path('sertn.config.json'), 'utf8'))
      // The relay attests after the network file's confirmations (0 here: the anvils mine on demand).
      expect(written.relay).toEqual({ confirmations: 0 })
      const withPort = (port: number) => ({ ...written, observability: { ...written.observability, http: { host: '127.0.0.1', port } } })
      await writeFile(path('worker.config.json'), JSON.stringify(withPort(workerPort), null, 2))
      await writeFile(path('relay.config.json'), JSON.stringify(withPort(relayPort), null, 2))
      for (const f of ['sertn.config.json', 'worker.config.json', 'relay.config.json', 'sertn.secrets.json'])
        expect(await readFile(path(f), 'utf8'), f).not.toMatch(/privateKey|0x[0-9a-fA-F]{64}/)

      const workerLines: string[] = []
      const relayLines: string[] = []
      const worker = daemon('sertn-worker', ['worker', '--config', path('worker.config.json')], workerLines)
      const relay = daemon('sertn-relay', ['relay', '--config', path('relay.config.json')], relayLines)
      const tail = () => `worker:\n${workerLines.slice(-40).join('\n')}\nrelay:\n${relayLines.slice(-40).join('\n')}`
      const exited = Promise.race([worker.closed, relay.closed]).then((code) => {
        throw new Error(`a daemon exited (${code}) before the test ended\n${tail()}`)
      })
      exited.catch(() => {})

      // Ready: Temporal reached, each chain's watcher scanned.
      const readyBefore = await Promise.race([
        exited,
        waitUntil(
          'the worker to be ready',
          async () => {
            const r = await scrape(workerPort, '/readyz').catch(() => undefined)
            return r?.status === 200 ? (JSON.parse(r.body) as Readiness) : undefined
          },
          120_000,
          500,
        ),
      ]).catch((err) => {
        throw new Error(`${String(err)}\n${tail()}`)
      })
      expect(Object.keys(readyBefore.chains).sort()).toEqual(['hub', 'spoke'])
      const before = (await scrape(workerPort, '/metrics')).body
      expect((await scrape(relayPort, '/healthz')).status).toBe(200)

      // A consumer on the spoke requests, paying the quote.
      const s = record.network!.spokes[0]!
      const user = createSertnClient(spoke.chain, anvilAccount(1), { rpcUrl: spoke.rpcUrl }) as SertnClient
      const consumer = await deployContract(user, RecordingConsumer, [s.spoke.gateway])
      const modelId = record.models!['sertn-mlp-demo']! as Hex
      const value = await user.readContract({
        address: s.spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'quote',
        args: [modelId, CALLBACK_GAS],
      })
      const { request } = await user.simulateContract({
        address: consumer,
        abi: RecordingConsumer.abi,
        functionName: 'request',
        args: [modelId, [...DEMO_INPUT], CALLBACK_GAS],
        value,
      })
      const receipt = await confirm(user, await user.writeContract(request))
      const requested = receipt.logs.length
      expect(requested).toBeGreaterThan(0)
      const id = (
        await user.getContractEvents({
          address: s.spoke.gateway,
          abi: SpokeGateway.abi,
          eventName: 'InferenceRequested',
          fromBlock: receipt.blockNumber,
          toBlock: receipt.blockNumber,
        })
      )[0]!.args.requestId!

      // The verified result reaches the consumer on the spoke (through the hub and back).
      const fulfilled = await Promise.race([
        exited,
        waitUntil(
          'the verified callback on the spoke',
          async () => {
            const at = { address: s.spoke.gateway, abi: SpokeGateway.abi, args: { requestId: id }, fromBlock: receipt.blockNumber }
            const [failed] = await user.getContractEvents({ ...at, eventName: 'InferenceFailed' })
            if (failed) throw new Error(`request ${id} failed on the spoke: ${failed.args.reason}`)
            return (await user.getContractEvents({ ...at, eventName: 'InferenceFulfilled' }))[0]
          },
          300_000,
          1_000,
        ),
      ]).catch((err) => {
        throw new Error(`${String(err)}\n${tail()}`)
      })
      expect(fulfilled.args.node?.toLowerCase()).toBe(address.node.toLowerCase())
      expect(fulfilled.args.callbackStatus).toBe(0)
      const output = await user.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [id] })
      expect(output).toEqual(fulfilled.args.output)

      // The worker's metrics moved with the request: its steps, stage durations, proving and gas.
      // The callback can be seen here before the node's own hop activity (it polls the spoke) has
      // ended: wait, bounded, for its last stage to be counted.
      const after = await waitUntil(
        'the worker counting the spoke settlement',
        async () => {
          const body = (await scrape(workerPort, '/metrics')).body
          const labels = { chain: 'spoke', stage: 'awaitSpokeSettlement', outcome: 'ok' }
          return metric(body, 'sertn_requests_total', labels) >= 1 ? body : undefined
        },
        60_000,
        500,
      )
      if (process.env.SERTN_E2E_DEBUG)
        console.log(
          after
            .split('\n')
            .filter((l) => l.startsWith('sertn_'))
            .join('\n'),
        )
      for (const stage of ['awaitAssignment', 'runInference', 'proveInference', 'uploadResult', 'submitToHub', 'awaitSpokeSettlement']) {
        const labels = { chain: 'spoke', stage, outcome: 'ok' }
        expect(metric(after, 'sertn_requests_total', labels), stage).toBe(metric(before, 'sertn_requests_total', labels) + 1)
        const timed = { stage, outcome: 'ok' }
        expect(metric(after, 'sertn_stage_duration_seconds_count', timed), stage).toBe(
          metric(before, 'sertn_stage_duration_seconds_count', timed) + 1,
        )
      }
      for (const [name, labels] of [
        ['sertn_proving_duration_seconds_count', { model: 'sertn-mlp-demo' }],
        ['sertn_gas_used_total', { chain: 'hub', operation: 'submitResult' }],
        ['sertn_gas_spent_wei_total', { chain: 'hub', operation: 'submitResult' }],
      ] as const) {
        expect(metric(after, name, labels), name).toBeGreaterThan(metric(before, name, labels))
      }
      // The relay's deliveries both ways are counted too.
      const relayed = (await scrape(relayPort, '/metrics')).body
      for (const chain of ['hub', 'spoke'])
        expect(metric(relayed, 'sertn_gas_used_total', { chain, operation: 'hyperlane delivery' }), chain).toBeGreaterThan(0)
      // The keeper runs as the node signer from the secrets file.
      expect(
        workerLines.some((l) => l.includes('"msg":"keeper running"')),
        tail(),
      ).toBe(true)
      // Each chain's watcher scanned further, and its lag is reported.
      const readyAfter = JSON.parse((await scrape(workerPort, '/readyz')).body) as Readiness
      for (const chain of ['hub', 'spoke']) {
        expect(metric(after, 'sertn_watcher_last_scanned_block', { chain }), chain).toBeGreaterThan(
          metric(before, 'sertn_watcher_last_scanned_block', { chain }),
        )
        expect(after).toMatch(new RegExp(`^sertn_watcher_lag_blocks\\{chain="${chain}"\\} \\d+$`, 'm'))
        expect(readyAfter.chains[chain]!.lastScannedBlock!).toBeGreaterThan(readyBefore.chains[chain]!.lastScannedBlock!)
        expect(readyAfter.chains[chain]!.lagBlocks).toBeTypeOf('number')
      }
    },
    2 * RUN_TIMEOUT_MS,
  )
})
