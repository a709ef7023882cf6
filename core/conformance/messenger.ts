/**
 * The conformance suite of MessengerPlugin: on two anvils (distinct chain ids) it deploys the
 * network with `plugin.deploy`, joins the ports with `connect`, puts a test application
 * (LayerZeroTestApp, which works on any IMessengerPort) on each port with `allowApp`, runs the
 * plugin's local agents (file state in a temporary folder) and checks, each as its own test:
 *
 * 1. a message is delivered exactly once, both ways, with its origin, sender and body, and reported;
 * 2. `plugin.quote` is the port's own quote, and a send paying one wei less reverts;
 * 3. forged origins and senders are refused: an application the port has not allowed cannot send,
 *    a stranger cannot call the recipient, cannot make its port the genuine port's peer, and a
 *    message from a stranger's deployment (a second `plugin.deploy`, same attesters) to the genuine
 *    recipient is ignored or rejected by agents serving it, reported, and never delivered;
 * 4. re-executing a delivered message's delivery transaction reverts;
 * 5. agents stopped right after a send (and 30, 80 ms and a random delay after) and restarted from
 *    the same folder deliver every message exactly once;
 * 6. a message its recipient rejects is retried, reported `rejected`, and kept: once the recipient
 *    accepts, agents deliver it exactly once.
 *
 * @example
 * // test/conformance/messenger-hyperlane.test.ts
 * testMessengerPlugin({ name: 'hyperlane', create: () => hyperlaneMessenger })
 *
 * The checks are plain async functions ({@link messengerChecks}) over a {@link MessengerFixture},
 * so that a test can run one against a deliberately broken plugin and expect it to fail.
 *
 * Retries: the suite's agents run with short retry settings (`maxAttempts` 3, backoff 100 ms, at
 * most 200 ms), so that a rejection is reported within a second or two.
 *
 * How some checks go about it: the stranger's message (3) can only reach the genuine destination
 * through agents that serve the stranger's origin deployment, so the suite stops its own agents and
 * runs a set over [the stranger's origin, the genuine destination] (same payer, same attester key:
 * the worst case). The replay (4) is sent by the user account, not the agents' payer (no nonce race
 * with running agents). "Killed" (5) is `MessengerAgents.stop()`, the only handle the interface
 * gives. A rejected message (6), once its recipient accepts, is requeued by the operator
 * (`MessengerAgents.requeue`) and must then be delivered exactly once: the agents kept it.
 *
 * Accounts (anvil's mnemonic): 0 deploys and owns the network and the ports, 1 pays for the agents'
 * deliveries (the only account the agents send from), 2 deploys the test applications and sends,
 * 3 is the stranger; account 4's key is the attester (validator / DVN signer).
 */
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  BaseError,
  ContractFunctionRevertedError,
  getAddress,
  parseEventLogs,
  toHex,
  type Address,
  type Hex,
  type TransactionReceipt,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, anvilPrivateKey, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import { HyperlanePort, LayerZeroTestApp } from '../../contracts/artifacts/index.ts'
import { ConfigError, SertnError } from '../errors.ts'
import type {
  MessengerAgentEvent,
  MessengerAgents,
  MessengerDeployment,
  MessengerDeployOptions,
  MessengerEndpoint,
  MessengerMessage,
  MessengerPlugin,
} from '../plugins.ts'

/** A message the agents reported delivered (what a replay hook re-submits). */
export interface DeliveredMessage {
  /** The network's id for the message. */
  readonly messageId: Hex
  /** The destination transaction that delivered it. */
  readonly transactionHash: Hex
  /** `origin→destination` chain names. */
  readonly route: string
  /** The Sertn domains (chain ids). */
  readonly origin: number
  readonly destination: number
}

export interface MessengerConformanceOptions {
  /** The plugin's name (`MessengerPlugin.name`), also the suite's title. */
  readonly name: string
  /** The plugin; disposed when the suite ends. */
  readonly create: () => MessengerPlugin<SertnClient> | Promise<MessengerPlugin<SertnClient>>
  /** Runs after the chains are stopped, even when the suite failed. */
  readonly cleanup?: () => Promise<void>
  /**
   * Re-submits a delivered message through the network's own entry point on the destination; the
   * promise must reject (the network refuses the replay). Default: the suite sends the delivery
   * transaction's own `to`, `data` and value again (Hyperlane `process`, LayerZero `lzReceive`),
   * from another account than the agents' payer, and expects it to revert.
   */
  readonly replay?: (delivered: DeliveredMessage, endpoints: readonly MessengerEndpoint<SertnClient>[]) => Promise<unknown>
  /** The two chains' ids (default 31337 and 31339). */
  readonly chainIds?: readonly [number, number]
  /** A protocol fee per message for `plugin.deploy`, where the network has one (default 1 gwei). */
  readonly fee?: bigint
  /** How long a delivery may take before the suite calls it lost (default 30 s). */
  readonly deliveryTimeoutMs?: number
  /** How long to watch before concluding that nothing more is delivered (default 1 s). */
  readonly quietMs?: number
  /** How long a rejection (or a report of a forged message) may take (default 60 s). */
  readonly rejectTimeoutMs?: number
}

/** One of the two chains, with its accounts and the plugin's deployment on it. */
export interface MessengerSide {
  readonly name: string
  /** Its Sertn domain: the chain id. */
  readonly domain: number
  readonly anvil: AnvilInstance
  /** Deploys and owns the network and the port. */
  readonly owner: SertnClient
  /** Pays for the agents' deliveries. */
  readonly payer: SertnClient
  /** Deploys the test applications (their owner) and sends through them. */
  readonly user: SertnClient
  /** Owns nothing of the genuine deployment. */
  readonly stranger: SertnClient
  readonly deployment: MessengerDeployment
  /** The deployment with the owner's client (connect, allowApp, quote). */
  readonly endpoint: MessengerEndpoint<SertnClient>
  /** The deployment with the payer's client (what the agents serve). */
  readonly agentEndpoint: MessengerEndpoint<SertnClient>
}

/** An agent event and which set of agents reported it. */
export interface RecordedEvent {
  /** `main` (the suite's agents), or the label a check gave the agents it started. */
  readonly source: string
  readonly event: MessengerAgentEvent
}

/** Two chains with the plugin deployed and connected, and its agents running. */
export interface MessengerFixture {
  readonly options: MessengerConformanceOptions
  readonly plugin: MessengerPlugin<SertnClient>
  readonly sides: readonly [MessengerSide, MessengerSide]
  readonly attesterKey: Hex
  readonly deployOptions: MessengerDeployOptions
  /** Every event any agents reported, in order. */
  readonly events: RecordedEvent[]
  /** The agents' most recent errors (`who: message`), for failure messages. */
  readonly errors: string[]
  /** What the suite observed that is not a failure (printed at teardown). */
  readonly findings: string[]
  /** Starts the suite's agents from their folder (no-op when running). */
  startAgents(): Promise<void>
  /** Stops the suite's agents (no-op when stopped). */
  stopAgents(): Promise<void>
  /** The suite's running agents (undefined while stopped). */
  agents(): MessengerAgents | undefined
  /** Starts another set of agents, stopped at teardown at the latest. */
  runAgents(endpoints: readonly MessengerEndpoint<SertnClient>[], dir: string | undefined, source: string): Promise<MessengerAgents>
  /** A fresh temporary folder, removed at teardown. */
  tempDir(label: string): Promise<string>
}

const GAS_LIMIT = 200_000n
const DEFAULT_CHAIN_IDS = [31337, 31339] as const
const NAMES = ['alpha', 'beta'] as const

/**
 * IMessengerPort's errors, its PortMessageSent event and the views the suite reads (`peerOf`,
 * `quote`): every port has them. Interfaces have no artifact of their own, so they are taken from a
 * port that implements it; a port's own additions are left out.
 */
const PORT_ABI = HyperlanePort.abi.filter(
  (x) =>
    (x.type === 'error' && x.name.startsWith('Port')) ||
    (x.type === 'event' && x.name === 'PortMessageSent') ||
    (x.type === 'function' && (x.name === 'peerOf' || x.name === 'quote')),
)
/** The test application's ABI with the port's errors, which its calls to the port may revert with. */
const APP_ABI = [...LayerZeroTestApp.abi, ...PORT_ABI.filter((x) => x.type === 'error')] as const

// ─────────────────────────────── the fixture ───────────────────────────

/** Each fixture's teardown. */
const fixtures = new WeakMap<MessengerFixture, () => Promise<void>>()

/** Starts two anvils, deploys and connects the plugin on them, and starts its agents. Cleans up after itself if it fails. */
export async function setUpMessengerFixture(options: MessengerConformanceOptions): Promise<MessengerFixture> {
  const started: MessengerAgents[] = []
  const dirs: string[] = []
  const anvils: AnvilInstance[] = []
  let plugin: MessengerPlugin<SertnClient> | undefined
  let main: MessengerAgents | undefined
  const events: RecordedEvent[] = []
  const errors: string[] = []
  const findings: string[] = []
  let torn = false

  const teardown = async () => {
    if (torn) return
    torn = true
    try {
      await Promise.allSettled(started.map((a) => a.stop()))
      await Promise.allSettled(anvils.map((a) => a.stop()))
      await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })))
      await plugin?.dispose().catch(() => undefined)
    } finally {
      await options.cleanup?.()
      for (const f of findings) console.info(`[messenger conformance ${options.name}] ${f}`)
    }
  }

  try {
    const [idA, idB] = options.chainIds ?? DEFAULT_CHAIN_IDS
    if (idA === idB) throw new ConfigError('chainIds: the two chains need distinct chain ids')
    // allSettled: if one start fails, the other anvil is still stopped.
    const starts = await Promise.allSettled([startAnvil({ chainId: idA }), startAnvil({ chainId: idB })])
    for (const s of starts) if (s.status === 'fulfilled') anvils.push(s.value)
    for (const s of starts) if (s.status === 'rejected') throw s.reason
    plugin = await options.create()
    const p = plugin
    const attesterKey = anvilPrivateKey(4)
    const deployOptions: MessengerDeployOptions = {
      attesters: [privateKeyToAccount(attesterKey).address],
      threshold: 1,
      submitters: [anvilAccount(1).address],
      fee: options.fee ?? 1_000_000_000n,
    }
    const sides = (await Promise.all(
      anvils.map(async (anvil, i): Promise<MessengerSide> => {
        const [owner, payer, user, stranger] = [0, 1, 2, 3].map((a) => createSertnClient(anvil.chain, anvilAccount(a))) as [
          SertnClient,
          SertnClient,
          SertnClient,
          SertnClient,
        ]
        const name = NAMES[i]!
        const domain = anvil.chain.id
        const deployment = await p.deploy({ name, domain, client: owner }, deployOptions)
        return {
          name,
          domain,
          anvil,
          owner,
          payer,
          user,
          stranger,
          deployment,
          endpoint: { chain: { name, domain, client: owner }, deployment },
          agentEndpoint: { chain: { name, domain, client: payer }, deployment },
        }
      }),
    )) as unknown as [MessengerSide, MessengerSide]
    await p.connect(sides[0].endpoint, sides[1].endpoint)
    const mainDir = await mkdtemp(join(tmpdir(), 'sertn-messenger-conformance-'))
    dirs.push(mainDir)

    const runAgents = async (endpoints: readonly MessengerEndpoint<SertnClient>[], dir: string | undefined, source: string) => {
      const agents = p.startAgents({
        endpoints,
        ...(dir !== undefined ? { dir } : {}),
        attesterKey,
        confirmations: 0,
        pollingIntervalMs: 50,
        maxAttempts: 3,
        retryBackoffMs: 100,
        maxRetryBackoffMs: 200,
        errorAbi: APP_ABI,
        onEvent: (event) => void events.push({ source, event }),
        onError: (who, err) => {
          errors.push(`${source} ${who}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
          if (errors.length > 200) errors.splice(0, errors.length - 200)
        },
      })
      started.push(agents)
      await withTimeout(agents.ready, options.deliveryTimeoutMs ?? 30_000, `${source} agents ready`)
      return agents
    }

    const fixture: MessengerFixture = {
      options,
      plugin: p,
      sides,
      attesterKey,
      deployOptions,
      events,
      errors,
      findings,
      async startAgents() {
        main ??= await runAgents(
          sides.map((s) => s.agentEndpoint),
          mainDir,
          'main',
        )
      },
      async stopAgents() {
        const a = main
        main = undefined
        await a?.stop()
      },
      agents: () => main,
      runAgents,
      async tempDir(label) {
        const d = await mkdtemp(join(tmpdir(), `sertn-messenger-${label}-`))
        dirs.push(d)
        return d
      },
    }
    fixtures.set(fixture, teardown)
    await fixture.startAgents()
    return fixture
  } catch (err) {
    await teardown()
    throw err
  }
}

/** Stops every agent and chain the fixture started and removes its folders. Idempotent. */
export async function tearDownMessengerFixture(fixture: MessengerFixture | undefined): Promise<void> {
  if (fixture) await fixtures.get(fixture)?.()
}

// ─────────────────────────────── helpers ───────────────────────────────

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SertnError(`${what}: not within ${ms} ms`, { retryable: true })), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `read` until `done` holds or `timeoutMs` passed (bounded); returns the last value read. */
async function pollUntil<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const v = await read()
    if (done(v) || performance.now() >= deadline) return v
    await sleep(intervalMs)
  }
}

const bytes32 = (a: Address): Hex => `0x${getAddress(a).slice(2).toLowerCase().padStart(64, '0')}`
const sameId = (a: Hex, b: Hex) => a.toLowerCase() === b.toLowerCase()

/** The custom error (or reason) a failed call reverted with; undefined when it did not revert. */
function revertOf(err: unknown): string | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
  if (reverted instanceof ContractFunctionRevertedError)
    return reverted.data?.errorName ?? reverted.reason ?? reverted.signature ?? 'reverted without a reason'
  // eth_call reverts not decoded against an ABI (replays).
  const text = err.message.toLowerCase()
  return text.includes('revert') ? (err.shortMessage ?? 'reverted') : undefined
}

/** What `p` did: `ok`, or the revert; other errors are thrown. */
async function outcomeOf(p: Promise<unknown>): Promise<{ ok: true } | { ok: false; revert: string }> {
  try {
    await p
    return { ok: true }
  } catch (err) {
    const revert = revertOf(err)
    if (revert === undefined) throw err
    return { ok: false, revert }
  }
}

/** The recent agent errors, for failure messages. */
const recentErrors = (f: MessengerFixture) => (f.errors.length === 0 ? '' : `; recent agent errors: ${f.errors.slice(-4).join(' | ')}`)

type Apps = readonly [Address, Address]

/** Deploys a test application on each port (owned by the user) and lets it send. */
async function deployApps(f: MessengerFixture, allow = true): Promise<Apps> {
  const apps = (await Promise.all(
    f.sides.map(async (s) => {
      const app = await deployContract(s.user, LayerZeroTestApp, [getAddress(String(s.deployment.port))])
      if (allow) await f.plugin.allowApp(s.endpoint, app)
      return app
    }),
  )) as unknown as Apps
  return apps
}

type AppState = { deliveries: bigint; origin: number; sender: Hex; body: Hex }

async function appState(client: SertnClient, app: Address): Promise<AppState> {
  const read = <N extends 'deliveries' | 'lastOrigin' | 'lastSender' | 'lastBody'>(functionName: N) =>
    client.readContract({ address: app, abi: LayerZeroTestApp.abi, functionName })
  const [deliveries, origin, sender, body] = await Promise.all([
    read('deliveries'),
    read('lastOrigin'),
    read('lastSender'),
    read('lastBody'),
  ])
  return { deliveries, origin, sender, body }
}

const deliveries = (client: SertnClient, app: Address) =>
  client.readContract({ address: app, abi: LayerZeroTestApp.abi, functionName: 'deliveries' })

type Sent = { messageId: Hex; from: 0 | 1; to: 0 | 1; route: string; body: Hex; fee: bigint; receipt: TransactionReceipt }

/** Sends `body` from `apps[from]` to `apps[1 - from]` as the user, paying the plugin's quote. */
async function send(f: MessengerFixture, from: 0 | 1, apps: Apps, body: Hex = toHex(randomBytes(96))): Promise<Sent> {
  const to = (1 - from) as 0 | 1
  const src = f.sides[from]
  const dst = f.sides[to]
  const message: MessengerMessage = { destination: dst.domain, recipient: apps[to], body, gasLimit: GAS_LIMIT }
  const fee = await f.plugin.quote(src.endpoint, message)
  const receipt = await appSend(
    src.user,
    apps[from],
    [dst.domain, apps[to], body, GAS_LIMIT],
    fee,
    `a send paying plugin.quote (${fee} wei) must succeed (${src.name}→${dst.name})`,
  )
  const [sent] = parseEventLogs({ abi: PORT_ABI, eventName: 'PortMessageSent', logs: receipt.logs })
  expect(sent, `the port must emit PortMessageSent for a send (${src.name}→${dst.name})`).toBeDefined()
  return { messageId: sent!.args.messageId, from, to, route: `${src.name}→${dst.name}`, body, fee, receipt }
}

/** Sends through a test application and returns the receipt; fails naming `what` (with the revert) when it does not succeed. */
async function appSend(
  client: SertnClient,
  app: Address,
  args: readonly [number, Address, Hex, bigint],
  value: bigint,
  what: string,
): Promise<TransactionReceipt> {
  let receipt: TransactionReceipt | undefined
  const outcome = await outcomeOf(
    (async () => {
      const hash = await client.writeContract({ address: app, abi: APP_ABI, functionName: 'send', args, value })
      receipt = await client.waitForTransactionReceipt({ hash })
    })(),
  )
  expect(outcome.ok ? receipt!.status : `reverted: ${outcome.revert}`, what).toBe('success')
  return receipt!
}

/** Waits (bounded) until `app` on side `to` has at least `count` deliveries; returns its count. */
const waitDeliveries = (f: MessengerFixture, to: 0 | 1, app: Address, count: bigint, timeoutMs = f.options.deliveryTimeoutMs ?? 30_000) =>
  pollUntil(
    () => deliveries(f.sides[to].user, app),
    (n) => n >= count,
    timeoutMs,
  )

const eventsOf = (f: MessengerFixture, id: Hex, types: readonly MessengerAgentEvent['type'][], source?: string) =>
  f.events.filter((e) => sameId(e.event.messageId, id) && types.includes(e.event.type) && (source === undefined || e.source === source))

/** Waits (bounded) for an event of `types` about message `id`. */
const waitEvent = (f: MessengerFixture, id: Hex, types: readonly MessengerAgentEvent['type'][], timeoutMs: number, source?: string) =>
  pollUntil(
    async () => eventsOf(f, id, types, source)[0],
    (e) => e !== undefined,
    timeoutMs,
  )

const quiet = (f: MessengerFixture) => sleep(f.options.quietMs ?? 1000)

/** Sends a message, waits until it is delivered and reported, and returns it with its delivery. */
async function sendAndDeliver(f: MessengerFixture, from: 0 | 1, apps: Apps): Promise<{ sent: Sent; delivered: DeliveredMessage }> {
  const sent = await send(f, from, apps)
  const to = sent.to
  const count = await waitDeliveries(f, to, apps[to], 1n)
  expect(count, `a message sent once must be delivered exactly once (${sent.route}, message ${sent.messageId})${recentErrors(f)}`).toBe(1n)
  const timeout = f.options.deliveryTimeoutMs ?? 30_000
  const reported = await waitEvent(f, sent.messageId, ['delivered'], timeout)
  expect(reported, `the agents must report a delivered event for message ${sent.messageId} (${sent.route})`).toBeDefined()
  expect(reported!.event.transactionHash, `a delivered event must carry the delivery transaction (${sent.route})`).toMatch(
    /^0x[0-9a-f]{64}$/i,
  )
  return {
    sent,
    delivered: {
      messageId: sent.messageId,
      transactionHash: reported!.event.transactionHash!,
      route: sent.route,
      origin: f.sides[from].domain,
      destination: f.sides[to].domain,
    },
  }
}

// ─────────────────────────────── the checks ────────────────────────────

/** 1. A message is delivered exactly once, both ways, intact, and reported. */
async function deliversOnceBothWays(f: MessengerFixture): Promise<void> {
  const apps = await deployApps(f)
  const sent = [await send(f, 0, apps), await send(f, 1, apps)]
  for (const s of sent) {
    const count = await waitDeliveries(f, s.to, apps[s.to], 1n)
    expect(count, `a message sent once must be delivered exactly once (${s.route}, message ${s.messageId})${recentErrors(f)}`).toBe(1n)
    const state = await appState(f.sides[s.to].user, apps[s.to])
    expect(state.origin, `the recipient must see the sender's chain id as the origin (${s.route})`).toBe(f.sides[s.from].domain)
    expect(state.sender.toLowerCase(), `the recipient must see the sending application as the sender (${s.route})`).toBe(
      bytes32(apps[s.from]),
    )
    expect(state.body, `the body must arrive intact (${s.route})`).toBe(s.body)
    const reported = await waitEvent(f, s.messageId, ['delivered'], f.options.deliveryTimeoutMs ?? 30_000)
    expect(reported, `the agents must report a delivered event with the message id ${s.messageId} (${s.route})`).toBeDefined()
  }
  await quiet(f)
  for (const s of sent) {
    expect(
      await deliveries(f.sides[s.to].user, apps[s.to]),
      `a message sent once must be delivered exactly once, also after a further wait (${s.route})`,
    ).toBe(1n)
    expect(eventsOf(f, s.messageId, ['delivered']).length, `a message must be reported delivered exactly once (${s.route})`).toBe(1)
    expect(
      eventsOf(f, s.messageId, ['rejected', 'ignored']),
      `a delivered message must not be reported rejected or ignored (${s.route})`,
    ).toEqual([])
  }
}

/** 2. `plugin.quote` is the port's own quote, and paying one wei less reverts. */
async function quotesThePortFee(f: MessengerFixture): Promise<void> {
  const apps = await deployApps(f)
  const cases: { from: 0 | 1; body: Hex; gasLimit: bigint }[] = [
    { from: 0, body: '0x', gasLimit: GAS_LIMIT },
    { from: 0, body: toHex(randomBytes(100)), gasLimit: GAS_LIMIT },
    { from: 0, body: toHex(randomBytes(1000)), gasLimit: 1_000_000n },
    { from: 1, body: toHex(randomBytes(100)), gasLimit: GAS_LIMIT },
  ]
  for (const c of cases) {
    const src = f.sides[c.from]
    const to = (1 - c.from) as 0 | 1
    const dst = f.sides[to]
    const what = `${src.name}→${dst.name}, ${(c.body.length - 2) / 2} bytes, gas ${c.gasLimit}`
    const quoted = await f.plugin.quote(src.endpoint, { destination: dst.domain, recipient: apps[to], body: c.body, gasLimit: c.gasLimit })
    const portQuote = await src.user.readContract({
      address: apps[c.from],
      abi: APP_ABI,
      functionName: 'quote',
      args: [dst.domain, apps[to], c.body, c.gasLimit],
    })
    expect(quoted, `plugin.quote must equal the port's own quote (${what})`).toBe(portQuote)
  }
  const src = f.sides[0]
  const dst = f.sides[1]
  const body = toHex(randomBytes(100))
  const args = [dst.domain, apps[1], body, GAS_LIMIT] as const
  const fee = await f.plugin.quote(src.endpoint, { destination: dst.domain, recipient: apps[1], body, gasLimit: GAS_LIMIT })
  if (fee === 0n) {
    f.findings.push('the quote is 0: the check that paying one wei less reverts was skipped')
  } else {
    const simulated = await outcomeOf(
      src.user.simulateContract({ address: apps[0], abi: APP_ABI, functionName: 'send', args, value: fee - 1n, account: src.user.account }),
    )
    expect(simulated.ok, `a send paying one wei less than the quote (${fee} wei) must revert`).toBe(false)
    const hash = await src.user.writeContract({
      address: apps[0],
      abi: APP_ABI,
      functionName: 'send',
      args,
      value: fee - 1n,
      gas: 1_000_000n,
    })
    const receipt = await src.user.waitForTransactionReceipt({ hash })
    expect(receipt.status, `a send paying one wei less than the quote must revert on chain (${simulated.ok ? '' : simulated.revert})`).toBe(
      'reverted',
    )
  }
  await appSend(src.user, apps[0], args, fee, 'a send paying exactly plugin.quote must be accepted')
}

/** 3a. An application the port has not allowed cannot send. */
async function refusesUnallowedApp(f: MessengerFixture): Promise<void> {
  const [allowed] = await deployApps(f)
  const src = f.sides[0]
  const dst = f.sides[1]
  const stray = await deployContract(src.user, LayerZeroTestApp, [getAddress(String(src.deployment.port))])
  const body = toHex(randomBytes(32))
  const fee = await f.plugin.quote(src.endpoint, { destination: dst.domain, recipient: allowed, body, gasLimit: GAS_LIMIT })
  const outcome = await outcomeOf(
    src.user.simulateContract({
      address: stray,
      abi: APP_ABI,
      functionName: 'send',
      args: [dst.domain, allowed, body, GAS_LIMIT],
      value: fee,
      account: src.user.account,
    }),
  )
  expect(
    outcome.ok ? 'sent' : outcome.revert,
    'an application the port has not allowed must not be able to send (PortUnauthorizedApp)',
  ).toBe('PortUnauthorizedApp')
}

/** 3b. A stranger cannot call the recipient's receiveMessage: only its port delivers. */
async function refusesStrangerCall(f: MessengerFixture): Promise<void> {
  const apps = await deployApps(f)
  const dst = f.sides[1]
  const args = [f.sides[0].domain, bytes32(apps[0]), toHex(randomBytes(32))] as const
  const outcome = await outcomeOf(
    dst.stranger.simulateContract({ address: apps[1], abi: APP_ABI, functionName: 'receiveMessage', args, account: dst.stranger.account }),
  )
  expect(outcome.ok, "a stranger's direct call to the recipient's receiveMessage must be refused").toBe(false)
  const hash = await dst.stranger.writeContract({ address: apps[1], abi: APP_ABI, functionName: 'receiveMessage', args, gas: 500_000n })
  expect((await dst.stranger.waitForTransactionReceipt({ hash })).status, "a stranger's receiveMessage must revert on chain").toBe(
    'reverted',
  )
  expect(await deliveries(dst.user, apps[1]), "a stranger's direct call must not count as a delivery").toBe(0n)
}

/**
 * 3c. A stranger's deployment (a second `plugin.deploy` on the origin by another account, with the
 * same attesters) cannot reach the genuine recipient: the stranger cannot make its port the genuine
 * port's peer, and agents serving the stranger's origin and the genuine destination ignore or
 * reject its message to the genuine recipient, report it, and never deliver it.
 */
async function refusesStrangerPort(f: MessengerFixture): Promise<void> {
  const apps = await deployApps(f)
  const [a, b] = f.sides
  const genuinePeer = await readPeer(b.owner, b.deployment, a.domain)
  const strangerA = await f.plugin.deploy({ name: `${a.name}-stranger`, domain: a.domain, client: a.stranger }, f.deployOptions)
  const strangerEndA: MessengerEndpoint<SertnClient> = {
    chain: { name: `${a.name}-stranger`, domain: a.domain, client: a.stranger },
    deployment: strangerA,
  }
  // The stranger tries to join its port and the genuine one (it signs for both sides).
  const joined = await f.plugin
    .connect(strangerEndA, { chain: { name: b.name, domain: b.domain, client: b.stranger }, deployment: b.deployment })
    .then(
      () => true,
      () => false,
    )
  const peerAfter = await readPeer(b.owner, b.deployment, a.domain)
  expect(
    peerAfter,
    `a stranger must not be able to make its port the genuine port's peer (connect ${joined ? 'succeeded' : 'failed'})`,
  ).toEqual(genuinePeer)
  // Without a peer for the destination the stranger deploys the network there too and joins its own two ports.
  if ((await readPeer(a.stranger, strangerA, b.domain)).peer === ZERO32) {
    const strangerB = await f.plugin.deploy({ name: `${b.name}-stranger`, domain: b.domain, client: b.stranger }, f.deployOptions)
    await f.plugin.connect(strangerEndA, {
      chain: { name: `${b.name}-stranger`, domain: b.domain, client: b.stranger },
      deployment: strangerB,
    })
  }
  const strangerApp = await deployContract(a.stranger, LayerZeroTestApp, [getAddress(String(strangerA.port))])
  await f.plugin.allowApp(strangerEndA, strangerApp)
  const body = toHex(randomBytes(64))
  const fee = await f.plugin.quote(strangerEndA, { destination: b.domain, recipient: apps[1], body, gasLimit: GAS_LIMIT })
  const receipt = await appSend(a.stranger, strangerApp, [b.domain, apps[1], body, GAS_LIMIT], fee, "the stranger's port must send")
  const [sent] = parseEventLogs({ abi: PORT_ABI, eventName: 'PortMessageSent', logs: receipt.logs })
  expect(sent, "the stranger's port must send (PortMessageSent)").toBeDefined()
  const id = sent!.args.messageId

  // Agents serving the stranger's origin deployment and the genuine destination (the suite's own agents are stopped meanwhile: one payer).
  await f.stopAgents()
  try {
    const forgedEndA: MessengerEndpoint<SertnClient> = {
      chain: { name: `${a.name}-stranger`, domain: a.domain, client: a.payer },
      deployment: strangerA,
    }
    const payer = b.agentEndpoint.chain.client
    const nonceBefore = await payer.getTransactionCount({ address: payer.account.address, blockTag: 'pending' })
    const forged = await f.runAgents([forgedEndA, b.agentEndpoint], await f.tempDir('forged'), 'forged')
    try {
      const timeout = f.options.rejectTimeoutMs ?? 60_000
      const reported = await waitEvent(f, id, ['ignored', 'rejected', 'delivered'], timeout, 'forged')
      expect(
        reported?.event.type,
        `agents must ignore (and report) a message from a port that is not the destination port's peer, not attempt it (message ${id})${recentErrors(f)}`,
      ).toBe('ignored')
      await quiet(f)
      expect(
        await payer.getTransactionCount({ address: payer.account.address, blockTag: 'pending' }),
        "a message from a stranger's port must not cost the agents a transaction on the destination",
      ).toBe(nonceBefore)
    } finally {
      await forged.stop()
    }
  } finally {
    await f.startAgents()
  }
  expect(eventsOf(f, id, ['delivered']), `a message from a stranger's port must never be delivered (message ${id})`).toEqual([])
  expect(await deliveries(b.user, apps[1]), "a message from a stranger's port must never reach the genuine recipient").toBe(0n)
}

const ZERO32: Hex = `0x${'0'.repeat(64)}`

async function readPeer(client: SertnClient, deployment: MessengerDeployment, domain: number) {
  const [networkDomain, peer] = await client.readContract({
    address: getAddress(String(deployment.port)),
    abi: PORT_ABI,
    functionName: 'peerOf',
    args: [domain],
  })
  return { networkDomain, peer: peer.toLowerCase() as Hex }
}

/** 4. Re-executing a delivered message on the destination fails. */
async function refusesReplay(f: MessengerFixture): Promise<void> {
  const apps = await deployApps(f)
  const { sent, delivered } = await sendAndDeliver(f, 0, apps)
  const dst = f.sides[sent.to]
  if (f.options.replay) {
    const outcome = await f.options.replay(delivered, [f.sides[0].agentEndpoint, f.sides[1].agentEndpoint]).then(
      () => 'accepted',
      () => 'refused',
    )
    expect(outcome, `re-executing a delivered message must be refused by the network (message ${sent.messageId})`).toBe('refused')
  } else {
    // The delivery transaction, sent again by another account than the agents' payer (no nonce race with them).
    const tx = await dst.user.getTransaction({ hash: delivered.transactionHash })
    expect(tx.to, 'the delivery transaction must call a contract').toBeTruthy()
    const request = { to: tx.to!, data: tx.input, value: tx.value }
    const simulated = await outcomeOf(dst.user.call({ ...request, account: dst.user.account }))
    expect(simulated.ok, `re-executing a delivered message must revert (message ${sent.messageId}, tx ${delivered.transactionHash})`).toBe(
      false,
    )
    const hash = await dst.user.sendTransaction({ ...request, gas: tx.gas })
    const receipt = await dst.user.waitForTransactionReceipt({ hash })
    expect(receipt.status, `re-executing a delivered message must revert on chain (message ${sent.messageId})`).toBe('reverted')
  }
  await quiet(f)
  expect(await deliveries(dst.user, apps[sent.to]), 'a replayed message must not be delivered again').toBe(1n)
}

/** 5. Agents stopped right after a send and restarted from the same folder deliver each message exactly once. */
async function survivesRestarts(f: MessengerFixture): Promise<void> {
  const apps = await deployApps(f)
  const delays = [0, 30, 80, randomInt(0, 150)]
  const all: Sent[] = []
  for (const [i, delay] of delays.entries()) {
    const sent = [await send(f, 0, apps), await send(f, 1, apps)]
    all.push(...sent)
    await sleep(delay)
    await f.stopAgents()
    await f.startAgents()
    const expected = BigInt(i + 1)
    for (const s of sent) {
      const count = await waitDeliveries(f, s.to, apps[s.to], expected)
      expect(
        count,
        `an agent stopped ${delay} ms after a send and restarted must deliver the message exactly once (${s.route}, message ${s.messageId})${recentErrors(f)}`,
      ).toBe(expected)
    }
  }
  await quiet(f)
  for (const to of [0, 1] as const)
    expect(
      await deliveries(f.sides[to].user, apps[to]),
      `agents stopped and restarted after ${delays.length} sends each way (at ${delays.join(', ')} ms) must deliver each exactly once (to ${f.sides[to].name})`,
    ).toBe(BigInt(delays.length))
  for (const s of all)
    expect(
      eventsOf(f, s.messageId, ['delivered']).length,
      `a message must be reported delivered at most once across restarts (${s.route}, ${s.messageId})`,
    ).toBeLessThanOrEqual(1)
}

/** 6. A message its recipient rejects is retried, reported `rejected`, kept, and delivered once the recipient accepts. */
async function keepsRejected(f: MessengerFixture): Promise<void> {
  const apps = await deployApps(f)
  const [, b] = f.sides
  const setRejecting = async (rejecting: boolean) => {
    const hash = await b.user.writeContract({ address: apps[1], abi: APP_ABI, functionName: 'setRejecting', args: [rejecting] })
    expect(
      (await b.user.waitForTransactionReceipt({ hash })).status,
      `the test application's owner must be able to set it rejecting=${rejecting}`,
    ).toBe('success')
  }
  await setRejecting(true)
  const sent = await send(f, 0, apps)
  const timeout = f.options.rejectTimeoutMs ?? 60_000
  const rejected = await waitEvent(f, sent.messageId, ['rejected'], timeout)
  expect(
    rejected,
    `a message its recipient rejects must be retried and then reported rejected within ${timeout} ms (message ${sent.messageId})${recentErrors(f)}`,
  ).toBeDefined()
  expect(await deliveries(b.user, apps[1]), 'a message its recipient rejects must not count as delivered').toBe(0n)
  expect(eventsOf(f, sent.messageId, ['delivered']), 'a message its recipient rejects must not be reported delivered').toEqual([])

  await setRejecting(false)
  // Kept across a restart: the operator requeues it, and it is delivered once.
  await f.stopAgents()
  await f.startAgents()
  const requeued = await f.agents()!.requeue([sent.messageId])
  expect(requeued, `a rejected message must be kept by the agents, to be requeued (message ${sent.messageId})`).toBeGreaterThanOrEqual(1)
  const count = await waitDeliveries(f, 1, apps[1], 1n)
  expect(
    count,
    `a message its recipient rejected must be kept, and delivered exactly once when it accepts (message ${sent.messageId})${recentErrors(f)}`,
  ).toBe(1n)
  await quiet(f)
  expect(await deliveries(b.user, apps[1]), 'a message redelivered after a rejection must be delivered exactly once').toBe(1n)
}

/** The suite's checks, each a plain async function over a fixture (a broken plugin's run is expected to reject). */
export const messengerChecks = {
  deliversOnceBothWays,
  quotesThePortFee,
  refusesUnallowedApp,
  refusesStrangerCall,
  refusesStrangerPort,
  refusesReplay,
  survivesRestarts,
  keepsRejected,
} satisfies Record<string, (f: MessengerFixture) => Promise<void>>

/** Declares the suite (a vitest `describe`) for one messenger plugin. */
export function testMessengerPlugin(options: MessengerConformanceOptions): void {
  describe(`MessengerPlugin conformance: ${options.name}`, () => {
    let fixture: MessengerFixture | undefined
    const f = () => {
      if (!fixture) throw new SertnError('the messenger fixture did not start (see beforeAll)')
      return fixture
    }

    beforeAll(async () => {
      fixture = await setUpMessengerFixture(options)
    }, 300_000)

    afterAll(async () => {
      await tearDownMessengerFixture(fixture)
    }, 60_000)

    it('default: a messenger plugin with its name and boolean flags', () => {
      expect(f().plugin.kind, 'a messenger plugin must be of kind messenger').toBe('messenger')
      expect(f().plugin.name, 'the plugin must carry its name').toBe(options.name)
      expect(f().plugin.flags.localAgents, 'the plugin must flag whether it runs local agents').toBeTypeOf('boolean')
      expect(f().plugin.parseDeployment(f().sides[0].deployment, 'messenger')).toMatchObject({
        kind: options.name,
        port: f().sides[0].deployment.port,
      })
    })

    it('behavior: a message is delivered exactly once both ways, with its origin, sender and body, and reported delivered', () =>
      messengerChecks.deliversOnceBothWays(f()))

    it("behavior: plugin.quote is the port's own quote; paying one wei less reverts", () => messengerChecks.quotesThePortFee(f()))

    it('error: an application the port has not allowed cannot send (PortUnauthorizedApp)', () => messengerChecks.refusesUnallowedApp(f()))

    it("error: a stranger's direct call to the recipient's receiveMessage is refused", () => messengerChecks.refusesStrangerCall(f()))

    it("error: a stranger's deployment cannot become the peer, and its message to the genuine recipient is reported and never delivered", () =>
      messengerChecks.refusesStrangerPort(f()))

    it('error: re-executing a delivered message on the destination reverts', () => messengerChecks.refusesReplay(f()))

    it('behavior: agents stopped right after a send (0, 30, 80 ms and a random delay) and restarted deliver each message exactly once', () =>
      messengerChecks.survivesRestarts(f()))

    it('behavior: a message its recipient rejects is retried, reported rejected, kept, and delivered once when it accepts', () =>
      messengerChecks.keepsRejected(f()))
  })
}
