/**
 * A node configured with a chain plugin and a messenger plugin from outside modules
 * (test/fixtures/outside-plugins: written against `sertn/…` only, loaded by path): the worker's
 * container makes the chain's plugin from its module with the chain's settings, and the workflows'
 * chain activities settle requests through it; the messengers resolve the sections that name the
 * messenger module to one plugin of that kind; and the chain and messenger conformance suites run
 * against the plugins as the node loaded them (the messenger's on two anvils, with real Hyperlane
 * contracts and agents under the module's kind).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MockActivityEnvironment } from '@temporalio/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { testChainPlugin } from '../../core/conformance/chain.ts'
import { testMessengerPlugin } from '../../core/conformance/messenger.ts'
import { parseConfig, type SertnConfig } from '../../core/config.ts'
import { TOKENS } from '../../core/di.ts'
import { loadPluginModules, type MakePlugin } from '../../core/plugin-modules.ts'
import type { ChainPlugin } from '../../core/plugins.ts'
import { chainId, type Address, type InferenceRequest } from '../../core/types.ts'
import { configuredMessengers } from '../../plugins/messengers/index.ts'
import { createActivities } from '../../workflows/activities/index.ts'
import { pluginKindsOf } from '../../workflows/worker/index.ts'
import { buildContainerWithModules, lazyActivityDeps } from '../../workflows/worker/container.ts'
import { memoryLedger } from '../fixtures/outside-plugins/chain-memory.ts'

const CHAIN = './test/fixtures/outside-plugins/chain-memory.ts'
const MESSENGER = './test/fixtures/outside-plugins/messenger-wrapped-hyperlane.ts'
const tmp = mkdtempSync(join(tmpdir(), 'sertn-outside-chain-messenger-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const a = (n: number): Address => `0x${n.toString(16).padStart(40, '0')}`
const section = (domain: number, port: number) => ({
  kind: 'wrapped-hyperlane',
  plugin: MESSENGER,
  domain,
  mailbox: a(port + 1),
  merkleTreeHook: a(port + 2),
  port: a(port),
  deployBlock: 1,
})

/** Two chains joined by the module messenger: `memory` served by the module chain plugin, `evm` by the built-in one. */
const config: SertnConfig = parseConfig({
  dataDir: join(tmp, 'data'),
  node: { privateKey: `0x${'11'.repeat(32)}` },
  chains: {
    memory: {
      plugin: CHAIN,
      options: { network: 'node' },
      chainId: 900,
      rpcUrl: 'http://127.0.0.1:9',
      gateway: a(0x900),
      pollingIntervalMs: 10,
      messenger: section(900, 0x100),
    },
    evm: { chainId: 31337, rpcUrl: 'http://127.0.0.1:9', gateway: a(0x31337), messenger: section(31337, 0x200) },
  },
})

/** The first request the chain's watcher delivers. */
async function watchOne(chain: ChainPlugin, fromBlock: bigint): Promise<InferenceRequest> {
  const stop = new AbortController()
  let seen: InferenceRequest | undefined
  const done = chain.watchRequests({
    signal: stop.signal,
    fromBlock,
    onRequest: async (r) => {
      seen ??= r
    },
  })
  const end = Date.now() + 10_000
  while (!seen && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  stop.abort()
  await done
  if (!seen) throw new Error('the watcher delivered no request')
  return seen
}

describe('a chain-io worker configured with an outside chain module', () => {
  it("behavior: the container makes the chain's plugin from its module, and the chain activities settle requests through it", async () => {
    const { container, dispose } = await buildContainerWithModules(config, pluginKindsOf(['chain-io']))
    try {
      const chains = container.resolve<ChainPlugin[]>(TOKENS.Chains)
      expect(chains.map((c) => [c.chainName, c.name])).toEqual([
        ['memory', 'memory'],
        ['evm', 'evm'],
      ])
      const memory = chains[0]!
      expect([memory.chainId, memory.gateway]).toEqual([chainId(900), a(0x900)])
      const ledger = memoryLedger('node')
      const from = ledger.head + 1n
      const first = ledger.request()
      const second = ledger.request()
      ledger.mine(1)
      const request = await watchOne(memory, from)
      expect(request.requestId).toBe(first.requestId)
      // The workflows' activities find the plugin by the request's chain and gateway.
      const activities = createActivities(lazyActivityDeps(container))
      const env = new MockActivityEnvironment()
      const storage = { storage: 'fs', id: 'x', sha256: '00', bytes: 1 }
      const fulfilled = await env.run(activities.fulfillRequest, request, ledger.expected, { output: storage, proof: storage })
      expect(fulfilled).toMatchObject({ status: 'Fulfilled', alreadySettled: false })
      const other = { ...request, requestId: second.requestId, key: request.key.replace(/\d+$/, second.requestId) } as InferenceRequest
      const failed = await env.run(activities.failRequest, other, 'ModelFailed' as const, 'no capacity')
      expect(failed).toMatchObject({ status: 'Failed', alreadySettled: false })
      expect(ledger.rows.map((r) => r.status)).toEqual(['Fulfilled', 'Failed'])
    } finally {
      await dispose()
    }
  })

  it('behavior: the sections naming the messenger module resolve to one plugin of that kind, for both chains', async () => {
    const m = await configuredMessengers(config)
    expect([...m.keys()]).toEqual(['wrapped-hyperlane'])
    const { plugin, chains } = m.get('wrapped-hyperlane')!
    expect(plugin).toMatchObject({ kind: 'messenger', name: 'wrapped-hyperlane' })
    expect(chains.map((c) => [c.name, c.section.kind, c.section.port])).toEqual([
      ['memory', 'wrapped-hyperlane', a(0x100)],
      ['evm', 'wrapped-hyperlane', a(0x200)],
    ])
  })
})

// The conformance suites, against the plugins as the node loads them from their modules.
let makeChain: MakePlugin<'chain'> | undefined
testChainPlugin({
  name: 'memory',
  async setup() {
    const conformance = parseConfig({
      chains: {
        memory: { plugin: CHAIN, options: { network: 'conformance' }, chainId: 901, rpcUrl: 'http://127.0.0.1:9', gateway: a(0x901) },
      },
    })
    makeChain = (await loadPluginModules(conformance, ['chain'])).chains?.memory
    const ledger = memoryLedger('conformance')
    return {
      result: ledger.expected,
      request: async () => ledger.request(),
      mine: async (n) => ledger.mine(n),
      sentCount: async () => ledger.sent,
    }
  },
  create: (_h, { confirmations, stateDir }) =>
    makeChain!({
      chainName: 'memory',
      chainId: chainId(901),
      rpcUrl: 'http://127.0.0.1:9',
      fallbackRpcUrls: [],
      gateway: a(0x901),
      confirmations,
      pollingIntervalMs: 10,
      logRangeBlocks: 2000,
      stateDir,
      signer: () => {
        throw new Error('the memory chain signs nothing')
      },
    }),
})

testMessengerPlugin({
  name: 'wrapped-hyperlane',
  create: async () => (await configuredMessengers(config)).get('wrapped-hyperlane')!.plugin,
})
