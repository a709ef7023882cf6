/**
 * `sertn deploy` as an operator runs it, against two anvils started as plain chains (not the local
 * stack): a hub, a spoke joined over Hyperlane and one over LayerZero V2 (whose path settings a
 * rerun must read before it sends), the demo model registered on every chain. The CLI is
 * spawned as a child process from a network file. A wrong chain id stops it with one line naming
 * the chain; `--dry-run` prints the estimate measured on forks and sends nothing; a run stopped
 * after a step (SERTN_DEPLOY_STOP_AFTER) resumes from its record and finishes, reusing what it
 * recorded; a rerun of the finished deployment (signed from a keystore) sends no transaction; then
 * `sertn node register` joins the demo model's pool from the configuration and the record it wrote.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { createPublicClient, http, type Address } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilPrivateKey } from '../../chains/evm/clients.ts'
import { NodeRegistry } from '../../contracts/artifacts/index.ts'
import { type DeploymentRecord, readNetworkFile } from '../../cli/deploy.ts'
import { REPO, runSertn } from '../support/cli.ts'
import { boundedTeardown, killProcessGroups } from '../support/stack.ts'

const RUN_TIMEOUT_MS = 240_000
/** The deployer: a funded account of the plain anvils (the CLI only sees its key). */
const DEPLOYER_KEY = anvilPrivateKey(7)
const DEPLOYER = privateKeyToAccount(DEPLOYER_KEY).address
const NODE_KEY = anvilPrivateKey(8)
const NODE = privateKeyToAccount(NODE_KEY).address

let hub: AnvilInstance
let spoke: AnvilInstance
let spokelz: AnvilInstance
let dir: string
const running = new Set<number>()

/** Runs `sertn …` as a child process (its own process group, killed by the teardown if still running). */
const sertn = (args: string[], env: Record<string, string> = {}) => runSertn(args, { env, running, timeoutMs: RUN_TIMEOUT_MS - 10_000 })

const networkFile = (o: { spokeChainId?: number } = {}) => ({
  name: 'e2e',
  hub: { name: 'hub', chainId: 31337, rpcUrl: hub.rpcUrl, confirmations: 0, pollingIntervalMs: 100 },
  spokes: [
    {
      name: 'spoke',
      chainId: o.spokeChainId ?? 31338,
      rpcUrl: spoke.rpcUrl,
      messenger: 'hyperlane',
      confirmations: 0,
      pollingIntervalMs: 100,
    },
    { name: 'spokelz', chainId: 31339, rpcUrl: spokelz.rpcUrl, messenger: 'layerzero', confirmations: 0, pollingIntervalMs: 100 },
  ],
  messaging: { attesters: ['0x1111111111111111111111111111111111111111'], threshold: 1, confirmations: 0 },
  models: [join(REPO, 'circuits', 'sertn-mlp-demo')],
  pool: { epochLength: 20, minimumStake: '1000000000000000000' },
  allowInsecureSrs: true,
})

const files = () => ({
  network: join(dir, 'network.json'),
  record: join(dir, 'deployment.json'),
  config: join(dir, 'sertn.config.json'),
})

const deployArgs = (extra: string[] = []) => [
  'deploy',
  '--network',
  files().network,
  '--record',
  files().record,
  '--config-out',
  files().config,
  ...extra,
]

/** The deployer's transaction count on the hub, the spoke and spokelz. */
async function nonces(): Promise<[number, number, number]> {
  const of = (rpcUrl: string) => createPublicClient({ transport: http(rpcUrl) }).getTransactionCount({ address: DEPLOYER })
  return [await of(hub.rpcUrl), await of(spoke.rpcUrl), await of(spokelz.rpcUrl)]
}

const readRecord = async () => JSON.parse(await readFile(files().record, 'utf8')) as DeploymentRecord

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-deploy-'))
  ;[hub, spoke, spokelz] = await Promise.all([
    startAnvil({ chainId: 31337 }),
    startAnvil({ chainId: 31338 }),
    startAnvil({ chainId: 31339 }),
  ])
  await writeFile(files().network, JSON.stringify(networkFile(), null, 2))
}, 60_000)

afterAll(async () => {
  await boundedTeardown(
    [
      () => killProcessGroups([...running]),
      () => hub?.stop(),
      () => spoke?.stop(),
      () => spokelz?.stop(),
      () => rm(dir, { recursive: true, force: true }),
    ],
    {
      processGroups: () => [hub?.process.pid, spoke?.process.pid, spokelz?.process.pid].filter((p): p is number => p !== undefined),
    },
  )
}, 60_000)

describe('sertn deploy', () => {
  test('error: the network file names the field at fault; allowInsecureSrs is refused on a chain that is not a development chain', async () => {
    const bad = join(dir, 'bad.json')
    await writeFile(
      bad,
      JSON.stringify({ ...networkFile(), messaging: { attesters: ['0x1111111111111111111111111111111111111111'], threshold: 2 } }),
    )
    expect(() => readNetworkFile(bad)).toThrow(/messaging\.threshold: threshold must not exceed the number of attesters/)
    const main = { ...networkFile(), hub: { ...networkFile().hub, chainId: 1 } }
    await writeFile(bad, JSON.stringify(main))
    expect(() => readNetworkFile(bad)).toThrow(/allowInsecureSrs is refused on hub \(chain 1\): not a development chain/)
    expect(readNetworkFile(join(REPO, 'examples', 'network.example.json')).spokes.map((s) => s.messenger)).toEqual([
      'hyperlane',
      'layerzero',
    ])
  })

  test(
    'error: a wrong chain id stops with one line naming the chain, before anything is sent',
    async () => {
      const wrong = join(dir, 'wrong.json')
      await writeFile(wrong, JSON.stringify(networkFile({ spokeChainId: 1337 })))
      const r = await sertn([
        'deploy',
        '--network',
        wrong,
        '--record',
        join(dir, 'wrong-record.json'),
        '--private-key',
        DEPLOYER_KEY,
        '--yes',
      ])
      expect(r.code).toBe(1)
      const said = r.out.split('\n').filter((l) => l.trim() && !l.startsWith('warning:'))
      expect(said).toEqual(['error: chain spoke: the RPC answers chain id 31338, the network file says 1337'])
      expect(await nonces()).toEqual([0, 0, 0])
    },
    RUN_TIMEOUT_MS,
  )

  test(
    'behavior: --dry-run prints what each chain will send and spend, and sends nothing',
    async () => {
      const r = await sertn(deployArgs(['--private-key', DEPLOYER_KEY, '--dry-run']))
      expect(r.code, r.out).toBe(0)
      expect(r.out).toMatch(/hub\s+\d+ transaction\(s\), [\d,]+ gas × [\d.]+ gwei \+ 0\.01 ETH in fees to the registries = [\d.]+ ETH/)
      expect(r.out).toMatch(/spoke\s+\d+ transaction\(s\), [\d,]+ gas/)
      expect(r.out).toMatch(/dry run: \d+ transaction\(s\) would be sent; nothing sent/)
      expect(await nonces()).toEqual([0, 0, 0])
    },
    RUN_TIMEOUT_MS,
  )

  test(
    'behavior: a run stopped after a step resumes from its record and finishes',
    async () => {
      const stopped = await sertn(deployArgs(['--private-key', DEPLOYER_KEY, '--yes']), { SERTN_DEPLOY_STOP_AFTER: 'hub.market' })
      expect(stopped.code, stopped.out).toBe(1)
      expect(stopped.out).toContain('stopped after step hub.market')
      const partial = await readRecord()
      expect(partial.complete).toBe(false)
      expect(Object.keys(partial.steps)).toEqual(['hub.registry', 'hub.nodeRegistry', 'hub.gateway', 'hub.models', 'hub.market'])
      expect(partial.steps['hub.registry']!.transactions.length).toBe(2)
      const [hubSent, spokeSent, spokelzSent] = await nonces()
      expect([spokeSent, spokelzSent]).toEqual([0, 0])

      const resumed = await sertn(deployArgs(['--private-key', DEPLOYER_KEY, '--yes']))
      expect(resumed.code, resumed.out).toBe(0)
      expect(resumed.out).toContain('hub.market: recorded, skipped')
      const record = await readRecord()
      expect(record.complete).toBe(true)
      expect(record.steps['hub.registry']).toEqual(partial.steps['hub.registry'])
      expect(record.network!.hub.core.registry).toBe((partial.steps['hub.registry']!.result as { registry: Address }).registry)
      expect(record.models).toHaveProperty('sertn-mlp-demo')
      const [hubAfter, spokeAfter, spokelzAfter] = await nonces()
      expect(hubAfter).toBeGreaterThan(hubSent)
      expect(spokeAfter).toBeGreaterThan(0)
      expect(spokelzAfter).toBeGreaterThan(0)
      // The node configuration for the network, with the recorded addresses.
      const config = JSON.parse(await readFile(files().config, 'utf8'))
      expect(config.chains.hub.market).toBe(record.network!.hub.market)
      expect(config.chains.spoke).toMatchObject({
        hub: 'hub',
        gateway: record.network!.spokes[0]!.spoke.gateway,
        messenger: { kind: 'hyperlane' },
        infernetCoordinator: record.network!.spokes[0]!.facades!.infernet, // the keeper dispatches its subscriptions
      })
      expect(config.chains.hub.infernetCoordinator).toBe(record.network!.hub.facades!.infernet)
    },
    2 * RUN_TIMEOUT_MS,
  )

  test(
    'behavior: a rerun of the finished deployment, signed from a keystore, sends no transaction',
    async () => {
      const keystore = join(dir, 'deployer.keystore.json')
      const passwordFile = join(dir, 'password')
      await writeFile(keystore, await new Wallet(DEPLOYER_KEY).encrypt('hunter2', { scrypt: { N: 1024 } }))
      await writeFile(passwordFile, 'hunter2\n')
      const before = await nonces()
      const r = await sertn(deployArgs(['--keystore', keystore, '--password-file', passwordFile, '--yes']))
      expect(r.code, r.out).toBe(0)
      expect(r.out).toContain('the deployment is up to date: nothing to send')
      expect(r.out).not.toContain('--private-key')
      expect(await nonces()).toEqual(before)
    },
    RUN_TIMEOUT_MS,
  )

  test(
    'default: sertn node register joins the demo model pool from the deployment config and record',
    async () => {
      const r = await sertn([
        'node',
        'register',
        '--config',
        files().config,
        '--deployment',
        files().record,
        '--private-key',
        NODE_KEY,
        '--json',
      ])
      expect(r.code, r.out).toBe(0)
      const out = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{'))!)
      expect(out).toMatchObject({ ok: true, node: NODE, models: [{ name: 'sertn-mlp-demo', status: 'registered' }] })
      const record = await readRecord()
      const client = createPublicClient({ transport: http(hub.rpcUrl) })
      const m = await client.readContract({
        address: record.network!.hub.core.nodeRegistry,
        abi: NodeRegistry.abi,
        functionName: 'membershipOf',
        args: [NODE, record.models!['sertn-mlp-demo']!],
      })
      expect(m.capacity).toBeGreaterThan(0n)
    },
    RUN_TIMEOUT_MS,
  )
})
