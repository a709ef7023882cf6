/**
 * Two operators on the local stack (the hub's gateway, the Temporal dev server with a namespace
 * per operator, arlocal), each with its own key, workers and watchers, sharing the demo model's
 * pool in the hub's NodeRegistry:
 * - a burst is shared between them, neither exceeding its capacity in any epoch, every request
 *   fulfilled once by the node it was assigned to, the other node running nothing for it (its
 *   workflow waits on the server until the holder's window has passed);
 * - a node registered in epoch e is assigned nothing before e + 1; leaving, its stake stays bonded;
 * - an operator whose workers are gone has its requests reassigned after their window (by the other
 *   operator's workflows), is slashed, and every request is still fulfilled exactly once; every wei
 *   of escrow, stake, slash and credit is accounted for;
 * - a copy of the assigned node's `fulfill` sent first by the other node is rejected on-chain
 *   (NodeRegistryNotAssigned), and only the assigned node is paid.
 */
import { Client } from '@temporalio/client'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeFunctionData, getAddress, parseEther, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { mineToNextEpoch } from '../../chains/evm/nodes.ts'
import { LOCAL_CHAINS, startLocalNetwork, type LocalNetwork } from '../../chains/local.ts'
import { InferenceGateway, NodeRegistry, RecordingConsumer } from '../../contracts/artifacts/index.ts'
import { getRequestStatus, requestWorkflowHandle } from '../../workflows/client.ts'
import { expectRevert, waitUntil } from '../support/chain.ts'
import { boundedTeardown, requestFromConsumer, startWorkers, type InProcessWorkers, type MadeRequest } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

/** Compute units each operator commits per epoch (the demo model costs 1 per request). */
const CAPACITY = 8n
/** Seconds an assigned node has to answer: long enough for a burst of a full capacity's proofs. */
const WINDOW = 120n
/** The window while one operator is down (the test waits it out). */
const SHORT_WINDOW = 6n
const PENALTY = parseEther('0.1')
const SHARE_BPS = 4000n

let dataDir: string
let local: LocalNetwork
let consumer: Address
let registry: Address
const workers: InProcessWorkers[] = []

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'sertn-operators-'))
  local = await startLocalNetwork({
    chains: [{ name: 'local', chainId: LOCAL_CHAINS.hub.chainId }],
    dataDir,
    services: true,
    pollingIntervalMs: 50,
    operators: 2,
    nodeCapacity: CAPACITY,
    // Long epochs (the test moves them on), a short window, and no suspension to get in the way.
    pool: { epochLength: 100n, window: WINDOW, missPenalty: PENALTY, requesterShareBps: SHARE_BPS, maxMissesPerEpoch: 0n },
  })
  registry = local.network.hub.core.nodeRegistry
  consumer = await deployContract(local.hub.user, RecordingConsumer, [local.network.hub.core.gateway])
  for (const op of local.operators) workers.push(await startWorkers({ config: op.config }, ['chain-io', 'inference', 'prover']))
}, 300_000)

afterAll(async () => {
  if (process.env.SERTN_TEST_LOGS) for (const [i, w] of workers.entries()) console.log(`operator ${i + 1}:\n${w.logs.join('\n')}`)
  await boundedTeardown([...workers.map((w) => () => w.stop()), () => local?.stop(), () => rm(dataDir, { recursive: true, force: true })], {
    processGroups: () => local?.processGroups() ?? [],
  })
})

const stack = () => ({
  chain: { ...local.hub, core: local.network.hub.core, demo: local.network.hub.models[0]!, stop: async () => {} },
})
const model = () => local.network.hub.models[0]!.modelId
const gateway = () => local.network.hub.core.gateway
const operatorAddress = (i: number): Address => local.operators[i]!.client.account.address

const read = <T>(functionName: string, args: readonly unknown[] = []) =>
  local.hub.owner.readContract({ address: registry, abi: NodeRegistry.abi, functionName, args } as never) as Promise<T>

type Job = { node: Address; state: number; misses: number }
const jobOf = (id: bigint) => read<Job>('jobOf', [gateway(), id])

async function mineOne(): Promise<void> {
  await local.hub.owner.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
}

/** `n` requests from the consumer, then one block on top (the watchers' confirmation). */
async function burst(n: number): Promise<MadeRequest[]> {
  const made: MadeRequest[] = []
  for (let i = 0; i < n; i++) made.push(await requestFromConsumer(stack(), consumer))
  await mineOne()
  return made
}

async function fulfilledBy(id: bigint): Promise<Address[]> {
  const events = await local.hub.user.getContractEvents({
    address: gateway(),
    abi: InferenceGateway.abi,
    eventName: 'InferenceFulfilled',
    args: { requestId: id },
    fromBlock: 0n,
  })
  return events.map((e) => getAddress(e.args.node!))
}

/** Waits until every request is fulfilled (the chain says so), and returns who fulfilled each. */
async function awaitFulfilled(made: readonly MadeRequest[], timeoutMs = 180_000): Promise<Address[]> {
  return waitUntil(
    `${made.length} requests fulfilled`,
    async () => {
      const nodes = await Promise.all(made.map((r) => fulfilledBy(r.id)))
      return nodes.every((n) => n.length > 0) ? nodes.map((n) => n[0]!) : undefined
    },
    timeoutMs,
    250,
  )
}

/** Per node and epoch, the units its assignments spent, from the registry's own CapacityUsed events. */
async function capacityByEpoch(): Promise<Map<string, bigint>> {
  const logs = await local.hub.owner.getContractEvents({
    address: registry,
    abi: NodeRegistry.abi,
    eventName: 'CapacityUsed',
    fromBlock: 0n,
  })
  const used = new Map<string, bigint>()
  for (const l of logs) {
    const key = `${getAddress(l.args.node!)}@${l.args.epoch}`
    used.set(key, l.args.used! > (used.get(key) ?? 0n) ? l.args.used! : (used.get(key) ?? 0n))
  }
  return used
}

describe('two operators on the local stack', () => {
  test('behavior: a burst is shared between the operators, neither exceeds its capacity, each request is fulfilled once by its assigned node', async () => {
    await mineToNextEpoch(local.hub.owner, registry)
    const made = await burst(12) // 12 units: more than one operator's 8
    const served = await awaitFulfilled(made)
    for (const [i, r] of made.entries()) {
      expect(await fulfilledBy(r.id)).toHaveLength(1)
      const job = await jobOf(r.id)
      expect(job.state).toBe(3) // Closed
      expect(getAddress(job.node)).toBe(served[i])
    }
    const counts = [0, 1].map((i) => served.filter((n) => n === operatorAddress(i)).length)
    expect(counts[0]! + counts[1]!).toBe(12)
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(4) // 12 - 8: the other operator took the rest
    for (const [key, used] of await capacityByEpoch()) expect(used, key).toBeLessThanOrEqual(CAPACITY)
    // The other operator ran nothing for a request it did not hold: its workflow waits on the
    // server for the holder's window to pass, and its status says who holds the request.
    for (const [i, r] of made.entries()) {
      const other = served[i] === operatorAddress(0) ? 1 : 0
      const client = new Client({ connection: local.services!.connection, namespace: local.operators[other]!.config.temporal.namespace })
      const description = await (await requestWorkflowHandle(client, r.key)).handle.describe()
      expect(description.historyLength, `operator ${other + 1}'s workflow for ${r.key}`).toBeLessThanOrEqual(2)
      expect(await getRequestStatus(client, r.key)).toMatchObject({
        stage: 'awaiting-assignment',
        assignment: { node: served[i], mine: false },
      })
    }
  }, 300_000)

  test('behavior: a node registered in epoch e is assigned nothing before e + 1; leaving, its stake stays bonded (withdraw refused)', async () => {
    const late = local.hub.stranger
    await confirm(
      late,
      await late.writeContract({ address: registry, abi: NodeRegistry.abi, functionName: 'stake', args: [], value: parseEther('50') }),
    )
    await confirm(
      late,
      await late.writeContract({ address: registry, abi: NodeRegistry.abi, functionName: 'register', args: [model(), 100n] }),
    )
    const e = await read<bigint>('epoch')
    expect((await read<{ activeFrom: bigint }>('membershipOf', [late.account.address, model()])).activeFrom).toBe(e + 1n)
    // The operators' capacity left in this epoch is 4 units: two requests fit, and they go to them.
    const made = await burst(2)
    const served = await awaitFulfilled(made)
    expect(served).not.toContain(getAddress(late.account.address))
    const assignedToLate = await local.hub.owner.getContractEvents({
      address: registry,
      abi: NodeRegistry.abi,
      eventName: 'JobAssigned',
      args: { node: late.account.address },
      fromBlock: 0n,
    })
    expect(assignedToLate).toEqual([])
    expect(await read<bigint>('epoch')).toBe(e)
    // It leaves before it ever serves: its stake unbonds, and withdrawing now is refused.
    await confirm(late, await late.writeContract({ address: registry, abi: NodeRegistry.abi, functionName: 'leave', args: [model()] }))
    const refused = await expectRevert(
      late.simulateContract({ address: registry, abi: NodeRegistry.abi, functionName: 'withdraw', account: late.account }),
    )
    expect(refused.errorName).toBe('NodeRegistryUnbonding')
  }, 300_000)

  test('fault: an operator whose workers are gone is slashed and its requests are reassigned and fulfilled once; every wei is accounted for', async () => {
    const [, second] = workers
    await second!.stop()
    const setWindow = async (window: bigint) =>
      confirm(
        local.hub.owner,
        await local.hub.owner.writeContract({
          address: registry,
          abi: NodeRegistry.abi,
          functionName: 'setPenalty',
          args: [PENALTY, SHARE_BPS, window],
        }),
      )
    await setWindow(SHORT_WINDOW)
    await mineToNextEpoch(local.hub.owner, registry)
    const stakeBefore = await read<bigint>('stakeOf', [operatorAddress(1)])
    // Requests until at least two are assigned to the stopped operator (at most 8: the other's capacity).
    const made: (MadeRequest & { assignedTo: Address })[] = []
    const toStopped = () => made.filter((r) => r.assignedTo === operatorAddress(1)).length
    while (toStopped() < 2 && made.length < 8) {
      const [r] = await burst(1)
      made.push({ ...r!, assignedTo: getAddress((await jobOf(r!.id)).node) })
    }
    expect(toStopped()).toBeGreaterThanOrEqual(2)
    const served = await awaitFulfilled(made)
    for (const [i, r] of made.entries()) {
      expect(await fulfilledBy(r.id)).toHaveLength(1)
      expect(served[i]).toBe(operatorAddress(0))
      const job = await jobOf(r.id)
      expect(job.state).toBe(3)
      expect(job.misses).toBe(r.assignedTo === operatorAddress(1) ? 1 : 0)
    }
    const missed = BigInt(toStopped())
    expect(await read<bigint>('stakeOf', [operatorAddress(1)])).toBe(stakeBefore - missed * PENALTY)
    const share = (PENALTY * SHARE_BPS) / 10_000n
    expect(await read<bigint>('creditOf', [consumer])).toBe(missed * share)

    // Solvency: the gateway holds exactly the escrow of pending requests and what it owes; the
    // registry exactly the stakes, the protocol's share and the requesters' credits.
    const last = await local.hub.owner.readContract({ address: gateway(), abi: InferenceGateway.abi, functionName: 'lastRequestId' })
    let pendingEscrow = 0n
    for (let id = 1n; id <= last; id++) {
      const r = await local.hub.owner.readContract({
        address: gateway(),
        abi: InferenceGateway.abi,
        functionName: 'getRequest',
        args: [id],
      })
      if (r.status === 1) pendingEscrow += r.escrow
    }
    const owed = (
      await Promise.all(
        [operatorAddress(0), operatorAddress(1), consumer].map((a) =>
          local.hub.owner.readContract({ address: gateway(), abi: InferenceGateway.abi, functionName: 'owed', args: [a] }),
        ),
      )
    ).reduce((a, b) => a + b, 0n)
    expect(await local.hub.owner.getBalance({ address: gateway() })).toBe(pendingEscrow + owed)
    const pool = await read<Address[]>('poolNodes', [model()])
    const stakes = (await Promise.all(pool.map((n) => read<bigint>('stakeOf', [n])))).reduce((a, b) => a + b, 0n)
    const held = stakes + (await read<bigint>('protocolBalance')) + (await read<bigint>('creditOf', [consumer]))
    expect(await local.hub.owner.getBalance({ address: registry })).toBe(held)
    await setWindow(WINDOW)
    // Restart the stopped operator for the next test.
    workers[1] = await startWorkers({ config: local.operators[1]!.config }, ['chain-io', 'inference', 'prover'])
  }, 300_000)

  test("error: a copy of the assigned node's fulfil sent first by the other node is rejected; only the assigned node is paid", async () => {
    await mineToNextEpoch(local.hub.owner, registry)
    const hub = local.hub.owner
    const [r] = await burst(1)
    const assigned = getAddress((await jobOf(r!.id)).node)
    const copier: SertnClient = local.operators.find((o) => o.client.account.address !== assigned)!.client
    // Hold blocks: the assigned node's fulfil waits in the pool, where the copier reads it.
    await hub.request({ method: 'evm_setAutomine' as never, params: [false] as never })
    try {
      const pending = await waitUntil(
        "the assigned node's fulfil in the transaction pool",
        async () => {
          const block = (await hub.request({ method: 'eth_getBlockByNumber' as never, params: ['pending', true] as never })) as {
            transactions: { from: Address; to: Address; input: Hex; hash: Hex }[]
          }
          return block.transactions.find(
            (t) =>
              getAddress(t.from) === assigned &&
              getAddress(t.to) === gateway() &&
              decodeFunctionData({ abi: InferenceGateway.abi, data: t.input }).args[0] === r!.id,
          )
        },
        120_000,
        100,
      )
      const copy = await copier.sendTransaction({
        to: gateway(),
        data: pending.input,
        gas: 3_000_000n,
        account: copier.account,
        chain: copier.chain,
      })
      await hub.request({ method: 'evm_mine' as never, params: [] as never })
      const original = await hub.waitForTransactionReceipt({ hash: pending.hash })
      const copied = await hub.waitForTransactionReceipt({ hash: copy })
      expect(original.status).toBe('success')
      expect(copied.status).toBe('reverted')
      // Why: the same call from the copier, on the state before that block, is refused by the registry.
      const { args } = decodeFunctionData({ abi: InferenceGateway.abi, data: pending.input })
      const refused = await expectRevert(
        hub.simulateContract({
          address: gateway(),
          abi: [...InferenceGateway.abi, ...NodeRegistry.abi.filter((x) => x.type === 'error')],
          functionName: 'fulfill',
          args: args as never,
          account: copier.account,
          blockNumber: copied.blockNumber - 1n,
        } as never),
      )
      expect(refused).toEqual({ errorName: 'NodeRegistryNotAssigned', args: [gateway(), r!.id, copier.account.address, assigned] })
    } finally {
      await hub.request({ method: 'evm_setAutomine' as never, params: [true] as never })
    }
    expect(await fulfilledBy(r!.id)).toEqual([assigned])
  }, 300_000)
})
