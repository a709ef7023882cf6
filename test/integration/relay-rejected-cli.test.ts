/**
 * `sertn relay rejected` and `sertn relay retry` on a real local network (a hub, a spoke over
 * Hyperlane and a spoke over LayerZero V2, each messenger's real contracts) with the real relay
 * running as its own process (`sertn relay --config …`): a message from the hub to each spoke whose
 * recipient rejects it (the fault tests' LayerZeroTestApp, which works on any Sertn port) is given
 * up on by the agents, listed by the CLI with its reason, route, id and attempts, and, once the
 * recipient accepts, retried through the CLI (a request the running relay applies) and delivered
 * exactly once.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseEventLogs, toFunctionSelector, toHex, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { LOCAL_CHAINS, startLocalNetwork, type LocalNetwork } from '../../chains/local.ts'
import { relayRejectedCommand, relayRetryCommand } from '../../cli/relay.ts'
import { LayerZeroPort, LayerZeroTestApp } from '../../contracts/artifacts/index.ts'
import type { RejectedRelayMessage } from '../../core/plugins.ts'
import { allowHyperlaneApp } from '../../plugins/messengers/hyperlane/index.ts'
import { allowPortApp } from '../../plugins/messengers/layerzero/index.ts'
import { waitUntil } from '../support/chain.ts'

const CLI = fileURLToPath(new URL('../../cli/sertn.ts', import.meta.url))
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))

let dataDir: string | undefined
let local: LocalNetwork | undefined
let relay: ChildProcess | undefined
let relayOutput = ''
let configFile: string
/** Per spoke: the sending app on the hub (on the port of the spoke's messenger) and the rejecting app on the spoke. */
const apps = {} as Record<'spoke' | 'spokelz', { hub: Address; spoke: Address; spokeOwner: SertnClient }>

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sertn-relay-cli-'))
  local = await startLocalNetwork({
    chains: [LOCAL_CHAINS.hub, LOCAL_CHAINS.spoke, LOCAL_CHAINS.spokelz],
    dataDir,
    models: [],
    agents: false, // the relay runs as its own process, as `sertn relay`
    pollingIntervalMs: 50,
  })
  const hubOwner = local.hub.owner
  for (const name of ['spoke', 'spokelz'] as const) {
    const s = local.network.spokes.find((x) => x.name === name)!
    const hubPort = local.network.hub.messengers[s.messenger.kind]!.port
    const spokeOwner = local.chains[name]!.owner
    const hub = await deployContract(hubOwner, LayerZeroTestApp, [hubPort])
    const spoke = await deployContract(spokeOwner, LayerZeroTestApp, [s.messenger.port])
    if (s.messenger.kind === 'hyperlane') await allowHyperlaneApp(hubOwner, hubPort, hub)
    else await allowPortApp(hubOwner, hubPort, hub)
    await setRejecting(spokeOwner, spoke, true)
    apps[name] = { hub, spoke, spokeOwner }
  }
  // Few attempts, short backoff: a rejected message is given up on in about a second.
  const config = { ...local.config, relay: { ...local.config.relay, maxAttempts: 2, retryBackoffMs: 200, maxRetryBackoffMs: 400 } }
  configFile = join(dataDir, 'sertn.config.json')
  await writeFile(configFile, JSON.stringify(config, null, 2))
  relay = spawn(process.execPath, ['--import', 'tsx', CLI, 'relay', '--config', configFile], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SERTN_LOG_FORMAT: 'json' },
  })
  const collect = (d: Buffer) => {
    relayOutput += d.toString()
  }
  relay.stdout!.on('data', collect)
  relay.stderr!.on('data', collect)
  await waitUntil('the relay to start', () => /relay pid \d+/.test(relayOutput) || relay!.exitCode !== null, 120_000, 100)
  if (relay.exitCode !== null) throw new Error(`the relay exited (${relay.exitCode}):\n${relayOutput}`)
})

afterAll(async () => {
  if (relay?.pid && relay.exitCode === null) {
    const exited = new Promise((r) => relay!.once('exit', r))
    process.kill(-relay.pid, 'SIGTERM')
    const timer = setTimeout(() => {
      try {
        process.kill(-relay!.pid!, 'SIGKILL')
      } catch {
        // gone
      }
    }, 10_000)
    await exited
    clearTimeout(timer)
  }
  await local?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

async function setRejecting(owner: SertnClient, app: Address, rejecting: boolean) {
  await confirm(
    owner,
    await owner.writeContract({ address: app, abi: LayerZeroTestApp.abi, functionName: 'setRejecting', args: [rejecting] }),
  )
}

/** The hub's app sends `body` to the spoke's app; returns the messenger's id for it. */
async function sendToSpoke(name: 'spoke' | 'spokelz', body: string): Promise<Hex> {
  const owner = local!.hub.owner
  const args = [LOCAL_CHAINS[name].chainId, apps[name].spoke, toHex(body), 100_000n] as const
  const value = await owner.readContract({ address: apps[name].hub, abi: LayerZeroTestApp.abi, functionName: 'quote', args })
  const receipt = await confirm(
    owner,
    await owner.writeContract({ address: apps[name].hub, abi: LayerZeroTestApp.abi, functionName: 'send', args, value }),
  )
  const [sent] = parseEventLogs({ abi: LayerZeroPort.abi, eventName: 'PortMessageSent', logs: receipt.logs })
  if (!sent) throw new Error('no PortMessageSent')
  return sent.args.messageId
}

const deliveries = (name: 'spoke' | 'spokelz') =>
  apps[name].spokeOwner.readContract({ address: apps[name].spoke, abi: LayerZeroTestApp.abi, functionName: 'deliveries' })

/** Runs a CLI command function in this process, capturing what it prints on standard output. */
async function cli(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = []
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')))
  try {
    return { code: await fn(), out: lines.join('\n') }
  } finally {
    log.mockRestore()
  }
}

const rejectedNow = async () =>
  JSON.parse((await cli(() => relayRejectedCommand({ config: configFile, json: true }))).out) as (RejectedRelayMessage & {
    retryRequested: boolean
  })[]

describe('sertn relay rejected / retry', () => {
  test('lists the messages both messengers gave up on, and retried once the recipient accepts, they are delivered once', async () => {
    expect(await rejectedNow()).toEqual([])
    const hl = await sendToSpoke('spoke', 'to a rejecting app over hyperlane')
    const lz = await sendToSpoke('spokelz', 'to a rejecting app over layerzero')

    const listed = await waitUntil(
      'both messages to be rejected',
      async () => {
        const r = await rejectedNow()
        return r.length >= 2 ? r : undefined
      },
      90_000,
      250,
    )
    // The relay names Sertn's own errors; the test app's comes as its raw data (selector, then its arguments).
    const reason = new RegExp(`^custom error ${toFunctionSelector('TestAppRejected(uint32,bytes32)')}`)
    expect(listed).toHaveLength(2)
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          messenger: 'hyperlane',
          route: 'hub→spoke',
          messageId: hl,
          agent: 'relayer',
          attempts: 2,
          reason: expect.stringMatching(reason),
          retryRequested: false,
        }),
        expect.objectContaining({
          messenger: 'layerzero',
          route: 'hub→spokelz',
          messageId: lz,
          agent: 'executor',
          attempts: 2,
          reason: expect.stringMatching(reason),
          retryRequested: false,
        }),
      ]),
    )
    for (const m of listed) expect(m.originTransaction).toMatch(/^0x[0-9a-f]{64}$/)
    const text = await cli(() => relayRejectedCommand({ config: configFile, json: false }))
    expect(text.code).toBe(0)
    expect(text.out).toContain(`${hl}  hyperlane hub→spoke`)
    expect(text.out).toContain(`${lz}  layerzero hub→spokelz`)
    expect(text.out).toMatch(/relayer gave up after 2 attempt\(s\) at .*: custom error 0x/)
    expect(await deliveries('spoke')).toBe(0n)
    expect(await deliveries('spokelz')).toBe(0n)

    // An id that is not a rejected message is refused, naming it.
    const bogus = `0x${'ab'.repeat(32)}` as Hex
    await expect(relayRetryCommand({ config: configFile, json: true, ids: [bogus] })).rejects.toThrow(`not a rejected message: ${bogus}`)

    // The cause is gone; the operator retries the Hyperlane message by id, then everything left (--all).
    await setRejecting(apps.spoke.spokeOwner, apps.spoke.spoke, false)
    await setRejecting(apps.spokelz.spokeOwner, apps.spokelz.spoke, false)
    const one = await cli(() => relayRetryCommand({ config: configFile, json: true, ids: [hl] }))
    expect(one.code).toBe(0)
    expect(JSON.parse(one.out)).toEqual({ requested: [hl], taken: true, stillRejected: [] })
    await waitUntil('the Hyperlane message to be delivered', async () => (await deliveries('spoke')) === 1n, 60_000, 200)
    const rest = await cli(() => relayRetryCommand({ config: configFile, json: true, ids: 'all' }))
    expect(JSON.parse(rest.out)).toEqual({ requested: [lz], taken: true, stillRejected: [] })
    await waitUntil('the LayerZero message to be delivered', async () => (await deliveries('spokelz')) === 1n, 60_000, 200)

    // Delivered once each, and nothing is left rejected.
    await new Promise((r) => setTimeout(r, 1_000))
    expect(await deliveries('spoke')).toBe(1n)
    expect(await deliveries('spokelz')).toBe(1n)
    expect(await rejectedNow()).toEqual([])
    const none = await cli(() => relayRetryCommand({ config: configFile, json: false, ids: 'all' }))
    expect(none.out).toBe('no rejected messages to retry')
    expect(relayOutput).toMatch(/retry requested for 1 message\(s\): 1 moved back to pending/)
  })
})
