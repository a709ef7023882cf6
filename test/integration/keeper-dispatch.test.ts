/**
 * The keeper's Infernet dispatch on a real anvil with the network's SertnInfernetCoordinator and a
 * consumer written with infernet-sdk's `CallbackConsumer` (no worker runs: each keeper here is
 * called by hand): a subscription is dispatched once even when two keepers (two nodes' accounts)
 * race for it; one cancelled by its consumer is skipped, whether the keeper sees the cancellation or
 * only finds it when due; a keeper resumes from its state file (it finds a subscription made while
 * it was down, which a keeper without state, starting at the head, does not); and a subscription
 * whose dispatch keeps reverting (inputs of the wrong shape) is retried a bounded number of times,
 * across a restart, then given up with a warning, and never tried again.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pino from 'pino'
import { encodeAbiParameters, parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { evmKeeper, type InfernetDispatchState } from '../../chains/evm/plugin/keeper.ts'
import { InfernetCallbackConsumer, SertnInfernetCoordinator } from '../../contracts/artifacts/index.ts'
import type { SertnConfig } from '../../core/config.ts'
import { metrics } from '../../core/metrics.ts'
import { boundedTeardown, DEMO_INPUT, mine, startTestStack, type TestStack } from '../support/stack.ts'

const CONTAINER = 'sertn-mlp-demo'
const encodeInts = (xs: readonly bigint[]): Hex => encodeAbiParameters([{ type: 'int256[]' }], [[...xs]])
const SUB = { Created: 1, Requested: 2, Cancelled: 5 } as const

let stack: TestStack | undefined
let coordinator: Address
let consumer: Address

beforeAll(async () => {
  stack = await startTestStack()
  // The network deployment's facade, as the local network's configuration names it.
  coordinator = stack.config.chains.local!.infernetCoordinator as Address
  expect(coordinator).toMatch(/^0x[0-9a-fA-F]{40}$/)
  consumer = await deployContract(stack.chain.user, InfernetCallbackConsumer, [coordinator, CONTAINER])
}, 180_000)

afterAll(async () => {
  await boundedTeardown([() => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

async function write(
  client: SertnClient,
  p: { address: Address; abi: readonly unknown[]; functionName: string; args?: readonly unknown[]; value?: bigint },
) {
  const { request } = await client.simulateContract(p as Parameters<SertnClient['simulateContract']>[0])
  return confirm(client, await client.writeContract(request as never))
}

/** Funds the consumer's deposit and has it create a subscription with `inputs`; mines its confirmation. */
async function subscribe(inputs: Hex = encodeInts(DEMO_INPUT)): Promise<number> {
  const { user } = stack!.chain
  const fee = await user.readContract({ address: coordinator, abi: SertnInfernetCoordinator.abi, functionName: 'feeOf', args: [CONTAINER] })
  await write(user, { address: coordinator, abi: SertnInfernetCoordinator.abi, functionName: 'deposit', args: [consumer], value: fee })
  const receipt = await write(user, { address: consumer, abi: InfernetCallbackConsumer.abi, functionName: 'request', args: [inputs] })
  const [created] = parseEventLogs({ abi: SertnInfernetCoordinator.abi, logs: receipt.logs, eventName: 'SubscriptionCreated' })
  await mine(stack!)
  return created!.args.id
}

const statusOf = async (id: number) =>
  (
    await stack!.chain.user.readContract({
      address: coordinator,
      abi: SertnInfernetCoordinator.abi,
      functionName: 'getSubscription',
      args: [id],
    })
  ).status

const dispatchesOf = (id: number) =>
  stack!.chain.user.getContractEvents({
    address: coordinator,
    abi: SertnInfernetCoordinator.abi,
    eventName: 'InfernetSubscriptionDispatched',
    args: { id },
    fromBlock: 0n,
  })

const counted = async (outcome: string) =>
  (await metrics.keeperDispatches.get()).values.find((v) => v.labels.chain === 'local' && v.labels.outcome === outcome)?.value ?? 0

const stateDir = () => mkdtemp(join(stack!.dataDir, 'keeper-'))
const stateFile = (dir: string) => join(dir, `local-infernet-${coordinator.toLowerCase()}.json`)

/** A logger that keeps its lines. */
function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const lines: string[] = []
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) })
  return { logger, lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

/** The test stack's configuration without `startBlock`: a keeper with no state starts at the head. */
function withoutStartBlock(config: SertnConfig): SertnConfig {
  const { startBlock: _, ...local } = config.chains.local!
  return { ...config, chains: { local } }
}

describe("the keeper's Infernet dispatch", () => {
  test('dispatches a subscription once when two keepers race for it, and neither reports a failure', async () => {
    const before = { dispatched: await counted('dispatched'), already: await counted('already_dispatched') }
    const id = await subscribe()
    // Two nodes' keepers (the node's account and another), each with its own state.
    const a = evmKeeper({ config: stack!.config, stateDir: await stateDir() })
    const b = evmKeeper({ config: stack!.config, stateDir: await stateDir(), account: stack!.chain.stranger.account })
    const [[ra], [rb]] = await Promise.all([a.dispatch(), b.dispatch()])
    expect(ra!.errors).toEqual([])
    expect(rb!.errors).toEqual([])
    expect([...ra!.dispatched, ...rb!.dispatched]).toEqual([id])
    expect([...ra!.alreadyDispatched, ...rb!.alreadyDispatched]).toEqual([id])
    expect(await dispatchesOf(id)).toHaveLength(1)
    expect(await statusOf(id)).toBe(SUB.Requested)
    expect(await counted('dispatched')).toBe(before.dispatched + 1)
    expect(await counted('already_dispatched')).toBe(before.already + 1)
    // Next passes: nothing is waiting, nothing is sent again.
    await mine(stack!)
    const [again] = await a.dispatch()
    expect(again).toMatchObject({ dispatched: [], waiting: 0, errors: [] })
    expect(await dispatchesOf(id)).toHaveLength(1)
  })

  test('skips a subscription its consumer cancelled: seen cancelled, or found cancelled when due', async () => {
    const before = await counted('cancelled')
    const id = await subscribe()
    await write(stack!.chain.user, { address: consumer, abi: InfernetCallbackConsumer.abi, functionName: 'cancel', args: [id] })
    await mine(stack!)
    expect(await statusOf(id)).toBe(SUB.Cancelled)

    // A keeper that reads its creation and its cancellation together never tries it.
    const [seen] = await evmKeeper({ config: stack!.config, stateDir: await stateDir() }).dispatch()
    expect(seen).toMatchObject({ dispatched: [], cancelled: [], waiting: 0, errors: [] })

    // A keeper whose state still has it waiting (it read the creation, not the cancellation, before a restart).
    const lagging = await stateDir()
    const head = await stack!.chain.user.getBlockNumber({ cacheTime: 0 })
    const state: InfernetDispatchState = { nextBlock: String(head + 1n), waiting: [{ id, attempts: 0 }] }
    await writeFile(stateFile(lagging), JSON.stringify(state))
    const [due] = await evmKeeper({ config: stack!.config, stateDir: lagging }).dispatch()
    expect(due).toMatchObject({ dispatched: [], cancelled: [id], waiting: 0, errors: [] })

    expect(await dispatchesOf(id)).toHaveLength(0)
    expect(await counted('cancelled')).toBe(before + 1)
  })

  test('resumes from its state file: a subscription made while it was down is dispatched', async () => {
    const config = withoutStartBlock(stack!.config)
    const dir = await stateDir()
    // First run: no state, so it starts at the head, and saves where it is.
    const [first] = await evmKeeper({ config, stateDir: dir, logger: capture().logger }).dispatch()
    expect(first).toMatchObject({ dispatched: [], waiting: 0, errors: [] })
    const saved = JSON.parse(await readFile(stateFile(dir), 'utf8')) as InfernetDispatchState
    expect(BigInt(saved.nextBlock)).toBeGreaterThan(0n)

    // While it is down, a consumer subscribes.
    const id = await subscribe()
    // A keeper with no state starts at the head, after it: it never sees it.
    const [fresh] = await evmKeeper({ config, stateDir: await stateDir(), logger: capture().logger }).dispatch()
    expect(fresh).toMatchObject({ dispatched: [], waiting: 0 })
    expect(await statusOf(id)).toBe(SUB.Created)
    // The restarted keeper reads on from its state file and dispatches it.
    const [resumed] = await evmKeeper({ config, stateDir: dir }).dispatch()
    expect(resumed).toMatchObject({ dispatched: [id], errors: [] })
    expect(await dispatchesOf(id)).toHaveLength(1)
    const after = JSON.parse(await readFile(stateFile(dir), 'utf8')) as InfernetDispatchState
    expect(BigInt(after.nextBlock)).toBeGreaterThan(BigInt(saved.nextBlock))
    expect(after.waiting).toEqual([])
  })

  test('retries a subscription whose dispatch reverts a bounded number of times, across a restart, then warns and stops', async () => {
    const before = { retrying: await counted('retrying'), undispatchable: await counted('undispatchable') }
    // Five inputs for a model of four: the facade's dispatch reverts SertnInfernetInputShapeMismatch.
    const id = await subscribe(encodeInts([1n, 2n, 3n, 4n, 5n]))
    const dir = await stateDir()
    const dispatchRetry = { attempts: 3, backoffMs: 100 }
    const first = capture()
    const [one] = await evmKeeper({ config: stack!.config, stateDir: dir, dispatchRetry, logger: first.logger }).dispatch()
    expect(one).toMatchObject({ dispatched: [], undispatchable: [], waiting: 1 })
    expect(one!.errors.join()).toMatch(/SertnInfernetInputShapeMismatch/)
    const saved = JSON.parse(await readFile(stateFile(dir), 'utf8')) as InfernetDispatchState
    expect(saved.waiting).toMatchObject([{ id, attempts: 1 }])

    // Restarted: the attempts so far count (the state file keeps them).
    const log = capture()
    const keeper = evmKeeper({ config: stack!.config, stateDir: dir, dispatchRetry, logger: log.logger })
    let gaveUp: number[] = []
    for (let i = 0; i < 50 && gaveUp.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100))
      gaveUp = (await keeper.dispatch())[0]!.undispatchable
    }
    expect(gaveUp).toEqual([id])
    expect(await counted('retrying')).toBe(before.retrying + 2)
    expect(await counted('undispatchable')).toBe(before.undispatchable + 1)
    const warning = log.lines().find((l) => l.level === 40 && l.subscriptionId === id)
    expect(warning?.attempts).toBe(3)
    expect(warning?.msg).toMatch(
      /cannot be dispatched \(SertnInfernetInputShapeMismatch.*gave up after 3 attempts.*getContainerInputs.*cancelSubscription/,
    )

    // Given up: later passes, and a restart, never try it again.
    const lines = log.lines().length
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 250))
      expect((await keeper.dispatch())[0]).toMatchObject({ undispatchable: [], waiting: 0, errors: [] })
    }
    expect((await evmKeeper({ config: stack!.config, stateDir: dir, dispatchRetry }).dispatch())[0]).toMatchObject({
      waiting: 0,
      errors: [],
    })
    expect(
      log
        .lines()
        .slice(lines)
        .filter((l) => l.subscriptionId === id),
    ).toEqual([])
    expect(await counted('retrying')).toBe(before.retrying + 2)
    expect(await statusOf(id)).toBe(SUB.Created) // still its owner's to cancel, or anyone's to dispatch once it can be
    expect(await dispatchesOf(id)).toHaveLength(0)
  })
})
