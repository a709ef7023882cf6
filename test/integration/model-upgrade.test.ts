/**
 * `sertn model upgrade`'s chain logic (`upgradeModelOnNetwork`) on a real local network: a hub and
 * a spoke over Hyperlane (chains/local.ts, Sertn deployed by deploySertnNetwork), the demo model
 * registered everywhere. The committed twin model (circuits/sertn-mlp-twin: the same schema, other
 * weights, no batch circuits) is the new build of the demo's name: both registries go to version 2
 * with its artifacts and a new VKA of its code, the hub's record of the spoke's deployment follows
 * (current version, the spoke's version, the spoke's new VKA), a rerun sends no transaction, and a
 * name that is not registered or a signer that does not own the model are refused before anything
 * is sent. Artifacts are not uploaded there (their local refs). Then the CLI itself, as an operator
 * runs it (`sertn model register` then `sertn model upgrade --config`, artifacts uploaded to
 * arlocal): each chain's version before → after is printed, a rerun is up to date, and an
 * unregistered name exits 1 with the refusal.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { keccak256, type Address } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { modelIdOf, readManifest } from '../../chains/evm/deploy.ts'
import { upgradeModelOnNetwork, type RegistrationChain } from '../../chains/evm/register-model.ts'
import { LOCAL_CHAINS, startLocalNetwork, type LocalNetwork } from '../../chains/local.ts'
import { ModelRegistry } from '../../contracts/artifacts/index.ts'
import type { SertnError } from '../../core/errors.ts'
import { loadOrCreateLocalWallet, startArlocal, type ArlocalInstance } from '../../plugins/storage/arweave/index.ts'

const CLI = fileURLToPath(new URL('../../cli/sertn.ts', import.meta.url))
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))

const DEMO = 'sertn-mlp-demo'
const TWIN = 'sertn-mlp-twin'

let dataDir: string | undefined
let local: LocalNetwork | undefined
let chains: RegistrationChain[]
let owner: Address
let arlocal: ArlocalInstance | undefined

const registryOf = (name: string) => chains.find((c) => c.name === name)!
const nonces = () => Promise.all(chains.map((c) => c.client.getTransactionCount({ address: c.client.account.address })))

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sertn-upgrade-'))
  local = await startLocalNetwork({
    chains: [LOCAL_CHAINS.hub, LOCAL_CHAINS.spoke],
    dataDir,
    models: [DEMO],
    agents: false, // nothing is relayed: the upgrade is sent on each chain by the owner
    pollingIntervalMs: 50,
  })
  const spoke = local.network.spokes[0]!
  chains = [
    { name: local.network.hub.name, client: local.hub.owner, registry: local.network.hub.core.registry, hub: true },
    { name: spoke.name, client: local.chains[spoke.name]!.owner, registry: spoke.spoke.registry },
  ]
  owner = local.hub.owner.account.address
}, 300_000)

afterAll(async () => {
  await arlocal?.stop()
  await local?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
}, 60_000)

describe('upgradeModelOnNetwork', () => {
  test('the demo name upgraded to the twin build: version 2 on both registries with its artifacts and VKA, the hub records the spoke current', async () => {
    const modelId = modelIdOf(owner, DEMO)
    const demoHash = readManifest(DEMO).artifactsHash
    const twinHash = readManifest(TWIN).artifactsHash
    expect(twinHash).not.toBe(demoHash)
    for (const c of chains) {
      const m = await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [modelId] })
      expect([c.name, m.version, m.artifactsHash]).toEqual([c.name, 1, demoHash])
    }

    const steps: string[] = []
    const r = await upgradeModelOnNetwork({ model: TWIN, name: DEMO, chains, allowInsecureSrs: true, onProgress: (s) => steps.push(s) })
    expect(r.modelId).toBe(modelId)
    expect(r.artifacts.manifestHash).toBe(twinHash)

    const vkaCode = (await chains[0]!.client.getCode({ address: r.chains.hub!.model.vka }))!
    for (const c of chains) {
      const up = r.chains[c.name]!
      expect([c.name, up.before, up.after, up.updated]).toEqual([c.name, 1, 2, true])
      const m = await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [modelId] })
      expect(m.version).toBe(2)
      expect(m.artifactsHash).toBe(twinHash)
      expect(m.vka).toBe(up.model.vka)
      // A VKA of the twin's code (its verifying key), deployed anew on this chain.
      const code = await c.client.getCode({ address: m.vka })
      expect(code).toBe(vkaCode)
      expect(m.vkaCodeHash).toBe(keccak256(code!))
      expect(m.vka.toLowerCase()).not.toBe(vkaOfDemo(c.name).toLowerCase())
      // The twin has no batch circuits: the new version has none.
      expect(
        await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getBatchSizes', args: [modelId] }),
      ).toEqual([])
    }

    const hub = registryOf('hub')
    const spoke = registryOf('spoke')
    const deployment = await hub.client.readContract({
      address: hub.registry,
      abi: ModelRegistry.abi,
      functionName: 'getChainDeployment',
      args: [modelId, spoke.client.chain.id],
    })
    expect(deployment.version).toBe(2) // the hub's current version: not stale
    expect(deployment.remoteVersion).toBe(2) // the spoke's version
    expect(deployment.vka).toBe(r.chains.spoke!.model.vka)
    expect(new Set(steps)).toEqual(new Set(['check', 'update', 'record']))
  }, 300_000)

  test('a rerun sends nothing: every chain is at this build, the hub record is current', async () => {
    const before = await nonces()
    const r = await upgradeModelOnNetwork({ model: TWIN, name: DEMO, chains, allowInsecureSrs: true })
    expect(await nonces()).toEqual(before)
    for (const c of chains)
      expect([c.name, r.chains[c.name]!.before, r.chains[c.name]!.after, r.chains[c.name]!.updated]).toEqual([c.name, 2, 2, false])
  }, 120_000)

  test('error: a name that is not registered is refused, pointing at `sertn model register`, before anything is sent', async () => {
    const before = await nonces()
    const err = await upgradeModelOnNetwork({ model: TWIN, chains, allowInsecureSrs: true }).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'ModelRegistrationError' })
    expect((err as SertnError).shortMessage).toMatch(
      /^sertn-mlp-twin is not registered on hub \(model id 0x[0-9a-f]{64}, from 0x[0-9a-fA-F]{40} and the name\)$/,
    )
    expect((err as SertnError).details).toMatch(/^Register it first: sertn model register sertn-mlp-twin /)
    expect(await nonces()).toEqual(before)
  }, 120_000)

  test('error: a signer that does not own the model is refused, naming the owner, before anything is sent', async () => {
    const strangers: RegistrationChain[] = chains.map((c) => ({ ...c, client: local!.chains[c.name]!.stranger as SertnClient }))
    const stranger = strangers[0]!.client.account.address
    const before = await strangers[0]!.client.getTransactionCount({ address: stranger })
    const err = await upgradeModelOnNetwork({ model: DEMO, owner, chains: strangers, allowInsecureSrs: true }).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'ModelRegistrationError' })
    expect((err as SertnError).shortMessage).toBe(`${DEMO} on hub is owned by ${owner}, not by the signer ${stranger}`)
    expect(await strangers[0]!.client.getTransactionCount({ address: stranger })).toBe(before)
  }, 120_000)
})

describe('sertn model upgrade (the CLI, artifacts uploaded to arlocal)', () => {
  let configFile: string
  const NAME = 'cli-upgraded'

  beforeAll(async () => {
    arlocal = await startArlocal()
    const walletFile = join(dataDir!, 'arweave-wallet.json')
    await loadOrCreateLocalWallet(arlocal.url, walletFile)
    configFile = join(dataDir!, 'sertn.config.json')
    await writeFile(configFile, JSON.stringify({ ...local!.config, storage: { arweave: { url: arlocal.url, walletFile } } }, null, 2))
  }, 120_000)

  test('register the demo build, upgrade it to the twin build: each version printed before → after; a rerun is up to date', async () => {
    const reg = await sertn(['model', 'register', 'circuits/sertn-mlp-demo', '--name', NAME, '--config', configFile])
    expect(reg.code, reg.output).toBe(0)
    const up = await sertn(['model', 'upgrade', 'circuits/sertn-mlp-twin', '--name', NAME, '--config', configFile])
    expect(up.code, up.output).toBe(0)
    expect(up.output).toContain(`${NAME}: upgraded`)
    expect(up.output).toMatch(/hub\s+version 1 → 2, VKA 0x[0-9a-fA-F]{40}/)
    expect(up.output).toMatch(/spoke\s+version 1 → 2, VKA 0x[0-9a-fA-F]{40}/)
    const modelId = modelIdOf(owner, NAME)
    for (const c of chains) {
      const m = await c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getModel', args: [modelId] })
      expect([c.name, m.version, m.artifactsHash]).toEqual([c.name, 2, readManifest(TWIN).artifactsHash])
    }
    const hub = registryOf('hub')
    const spoke = registryOf('spoke')
    const d = await hub.client.readContract({
      address: hub.registry,
      abi: ModelRegistry.abi,
      functionName: 'getChainDeployment',
      args: [modelId, spoke.client.chain.id],
    })
    expect([d.version, d.remoteVersion]).toEqual([2, 2])

    const before = await nonces()
    const again = await sertn(['model', 'upgrade', 'circuits/sertn-mlp-twin', '--name', NAME, '--config', configFile])
    expect(again.code, again.output).toBe(0)
    expect(again.output).toContain(`${NAME}: up to date`)
    expect(again.output).toMatch(/hub\s+version 2 → 2: at this build already/)
    expect(await nonces()).toEqual(before)

    // `model register` of the current build is a no-op too (the registration read back); of the old build, refused with a pointer here.
    const registered = await sertn(['model', 'register', 'circuits/sertn-mlp-twin', '--name', NAME, '--config', configFile])
    expect(registered.code, registered.output).toBe(0)
    expect(await nonces()).toEqual(before)
    const old = await sertn(['model', 'register', 'circuits/sertn-mlp-demo', '--name', NAME, '--config', configFile])
    expect(old.code, old.output).toBe(1)
    expect(old.output).toContain(`${NAME} is registered on hub with other artifacts`)
    expect(old.output).toContain(`sertn model upgrade circuits/sertn-mlp-demo --name ${NAME}`)
    expect(await nonces()).toEqual(before)
  }, 600_000)

  test('error: an unregistered name exits 1, saying to register it first', async () => {
    const r = await sertn(['model', 'upgrade', 'circuits/sertn-mlp-twin', '--name', 'never-registered', '--config', configFile])
    expect(r.code, r.output).toBe(1)
    expect(r.output).toContain('never-registered is not registered on hub')
    expect(r.output).toContain('Register it first: sertn model register circuits/sertn-mlp-twin --name never-registered')
  }, 120_000)
})

/** Runs the CLI in its own process group (killed after 5 minutes), with its exit code and output. */
async function sertn(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {}
  }, 300_000)
  try {
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
    return { code, output }
  } finally {
    clearTimeout(timer)
    try {
      process.kill(-child.pid!, 'SIGKILL') // anything it left behind
    } catch {}
  }
}

/** The demo's VKA as deployed with the network (version 1) on a chain. */
function vkaOfDemo(chain: string): Address {
  const n = local!.network
  const models = chain === n.hub.name ? n.hub.models : n.spokes.find((s) => s.name === chain)!.models
  return models.find((m) => m.name === DEMO)!.vka
}
