/**
 * `sertn model upgrade`'s chain logic (`upgradeModelOnNetwork`) on a real local network: a hub and
 * a spoke over Hyperlane (chains/local.ts, Sertn deployed by deploySertnNetwork), the demo model
 * registered everywhere. The committed twin model (circuits/sertn-mlp-twin: the same schema, other
 * weights, no batch circuits) is the new build of the demo's name: both registries go to version 2
 * with its artifacts and a new VKA of its code, the hub's record of the spoke's deployment follows
 * (current version, the spoke's version, the spoke's new VKA), a rerun sends no transaction, and a
 * name that is not registered or a signer that does not own the model are refused before anything
 * is sent. Artifacts are not uploaded (their local refs), so no storage runs.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256, type Address } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { modelIdOf, readManifest } from '../../chains/evm/deploy.ts'
import { upgradeModelOnNetwork, type RegistrationChain } from '../../chains/evm/register-model.ts'
import { LOCAL_CHAINS, startLocalNetwork, type LocalNetwork } from '../../chains/local.ts'
import { ModelRegistry } from '../../contracts/artifacts/index.ts'
import type { SertnError } from '../../core/errors.ts'

const DEMO = 'sertn-mlp-demo'
const TWIN = 'sertn-mlp-twin'

let dataDir: string | undefined
let local: LocalNetwork | undefined
let chains: RegistrationChain[]
let owner: Address

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

/** The demo's VKA as deployed with the network (version 1) on a chain. */
function vkaOfDemo(chain: string): Address {
  const n = local!.network
  const models = chain === n.hub.name ? n.hub.models : n.spokes.find((s) => s.name === chain)!.models
  return models.find((m) => m.name === DEMO)!.vka
}
