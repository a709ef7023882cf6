/**
 * NodeRegistry on anvil: staking and registration per model (minimum stake, known model, non-zero
 * capacity, bounded pools), activation in the epoch after registration, leaving at the boundary and
 * unbonding; the book of jobs: a market's requests opened as jobs and assigned to an eligible node
 * (a property test over random pools and request streams: capacity never exceeded, assigned iff
 * some node has room, queued otherwise), closed only by the assigned node, reassigned after the
 * window with a slash (the requester's share credited and claimed), misses counted and too many
 * suspending the node, queued jobs assigned once capacity returns.
 */
import fc from 'fast-check'
import { keccak256, parseEther, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { anvilPrivateKey, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { LOCAL_OPERATOR_ACCOUNTS } from '../../chains/local.ts'
import { NodeRegistry } from '../../contracts/artifacts/index.ts'
import { expectRevert, increaseTime, startTestChain, type TestChain } from '../support/chain.ts'

const EPOCH = 20 // blocks
const UNBONDING = 2 // epochs
const MIN = parseEther('1')
const PENALTY = parseEther('0.1')
const SHARE_BPS = 5000n
const WINDOW = 120 // seconds
const FAR = 2n ** 39n // a deadline far in the future (uint40)

/** A job's states (NodeRegistry.JobState). */
const STATE = { None: 0, Queued: 1, Assigned: 2, Closed: 3, Lapsed: 4 } as const
const ZERO: Address = '0x0000000000000000000000000000000000000000'

type Job = {
  node: Address
  windowEnd: number
  state: number
  misses: number
  requester: Address
  deadline: number
  units: number
  modelId: Hex
}

let chain: TestChain
/** Operators' clients: anvil accounts 1, 5, 6, 7. */
let operators: SertnClient[]
let registry: Address
let model: Hex
let market: Address
let nextId = 1n

beforeAll(async () => {
  chain = await startTestChain()
  model = chain.demo.modelId
  market = chain.owner.account.address
  operators = LOCAL_OPERATOR_ACCOUNTS.map((i) => createSertnClient(chain.anvil.chain, privateKeyToAccount(anvilPrivateKey(i))))
}, 120_000)

afterAll(async () => {
  await chain?.stop()
})

/** A fresh NodeRegistry (the owner is its market, so the tests open and close jobs themselves). */
async function freshRegistry(epochLength = EPOCH): Promise<Address> {
  const r = await deployContract(chain.owner, NodeRegistry, [
    chain.owner.account.address,
    chain.core.registry,
    BigInt(epochLength),
    BigInt(UNBONDING),
  ])
  await write(chain.owner, r, 'setMarket', [market, true])
  await write(chain.owner, r, 'setMinimumStake', [model, MIN])
  await write(chain.owner, r, 'setPenalty', [PENALTY, SHARE_BPS, BigInt(WINDOW)])
  return r
}

async function write(client: SertnClient, address: Address, functionName: string, args: readonly unknown[], value?: bigint) {
  const hash = await client.writeContract({ address, abi: NodeRegistry.abi, functionName, args, ...(value ? { value } : {}) } as never)
  return confirm(client, hash)
}

const simulate = (client: SertnClient, functionName: string, args: readonly unknown[], value?: bigint) =>
  client.simulateContract({
    address: registry,
    abi: NodeRegistry.abi,
    functionName,
    args,
    account: client.account,
    ...(value ? { value } : {}),
  } as never)

const read = <T>(functionName: string, args: readonly unknown[] = []) =>
  chain.owner.readContract({ address: registry, abi: NodeRegistry.abi, functionName, args } as never) as Promise<T>

const epoch = () => read<bigint>('epoch')
/** A node's backlog for the model: its jobs assigned and not closed, reassigned or lapsed. */
const backlog = async (n: SertnClient) => (await read<{ open: bigint }>('membershipOf', [n.account.address, model])).open
const jobOf = (id: bigint) => read<Job>('jobOf', [market, id])
const isActive = (node: SertnClient) => read<boolean>('isActive', [node.account.address, model])

/** Opens a job for `units` (requested by the user) and returns its id and record. */
async function openJob(units: number, deadline = FAR, queue = true): Promise<{ id: bigint; job: Job }> {
  const id = nextId++
  await write(chain.owner, registry, 'openJob', [id, model, units, chain.user.account.address, deadline, queue])
  return { id, job: await jobOf(id) }
}

/** Stakes `stake` and registers `node` for the model with `capacity`. */
async function join(node: SertnClient, capacity: bigint, stake = MIN) {
  await write(node, registry, 'stake', [], stake)
  await write(node, registry, 'register', [model, capacity])
}

/** Mines the first block of the next epoch (reads at the head, and the next transactions, are then in it). */
async function nextEpoch(): Promise<void> {
  const e = await epoch()
  const start = await read<bigint>('epochStartBlock', [e + 1n])
  const head = await chain.owner.getBlockNumber({ cacheTime: 0 })
  const n = start - head
  if (n > 0n) await chain.owner.request({ method: 'anvil_mine' as never, params: [toHex(n)] as never })
}

describe('NodeRegistry: operators', () => {
  beforeAll(async () => {
    registry = await freshRegistry()
  })

  test('error: registering below the minimum stake, for an unknown model, or with zero capacity', async () => {
    const node = chain.node
    expect(await expectRevert(simulate(node, 'register', [model, 100n]))).toEqual({
      errorName: 'NodeRegistryStakeBelowMinimum',
      args: [model, MIN, 0n],
    })
    await write(node, registry, 'stake', [], MIN / 2n)
    expect(await expectRevert(simulate(node, 'register', [model, 100n]))).toEqual({
      errorName: 'NodeRegistryStakeBelowMinimum',
      args: [model, MIN, MIN / 2n],
    })
    const unknown = `0x${'ab'.repeat(32)}` as Hex
    expect(await expectRevert(simulate(node, 'register', [unknown, 100n]))).toEqual({
      errorName: 'NodeRegistryUnknownModel',
      args: [unknown],
    })
    expect(await expectRevert(simulate(node, 'register', [model, 0n]))).toEqual({ errorName: 'NodeRegistryZeroCapacity', args: [] })
    expect(await expectRevert(simulate(node, 'stake', [], 0n))).toEqual({ errorName: 'NodeRegistryInvalidParameter', args: [] })
  })

  test('a node registered in epoch e is active from e+1, is assigned jobs up to its capacity, and leaves at the next boundary', async () => {
    const node = chain.node
    const who = node.account.address
    await write(node, registry, 'stake', [], MIN) // 1.5 ETH in all
    await write(node, registry, 'register', [model, 100n])
    const registeredIn = await epoch()
    expect((await read<{ activeFrom: bigint }>('membershipOf', [who, model])).activeFrom).toBe(registeredIn + 1n)
    expect(await isActive(node)).toBe(false)
    // Not active yet: a job waits in the queue.
    const early = await openJob(10)
    expect(early.job).toMatchObject({ state: STATE.Queued, node: ZERO, units: 10, modelId: model, requester: chain.user.account.address })
    expect(await expectRevert(simulate(node, 'register', [model, 50n]))).toMatchObject({ errorName: 'NodeRegistryAlreadyRegistered' })

    await nextEpoch()
    expect(await isActive(node)).toBe(true)
    expect(await read<bigint>('remainingCapacity', [who, model])).toBe(100n)
    const served = await openJob(60)
    expect(served.job).toMatchObject({ state: STATE.Assigned, node: who })
    expect(await read<bigint>('remainingCapacity', [who, model])).toBe(40n)
    expect(await read<bigint>('usedCapacity', [who, model, await epoch()])).toBe(60n)
    // 41 units do not fit in the 40 left: queued, nothing spent.
    expect((await openJob(41)).job).toMatchObject({ state: STATE.Queued, node: ZERO })
    // A requester who chose to fail rather than wait: no job is opened (the market fails the request).
    const refused = await openJob(41, FAR, false)
    expect(refused.job).toMatchObject({ state: STATE.None, node: ZERO })
    expect(await read<boolean>('hasJob', [market, refused.id])).toBe(false)
    expect(await read<bigint>('remainingCapacity', [who, model])).toBe(40n)
    // Only markets open jobs, and each once.
    expect(await expectRevert(simulate(node, 'openJob', [99n, model, 1, who, FAR, true]))).toEqual({
      errorName: 'NodeRegistryNotMarket',
      args: [who],
    })
    expect(await expectRevert(simulate(chain.owner, 'openJob', [served.id, model, 1, who, FAR, true]))).toEqual({
      errorName: 'NodeRegistryJobExists',
      args: [market, served.id],
    })

    // Leaving: still active to the end of this epoch, not in the next; the stake unbonds.
    await write(node, registry, 'leave', [model])
    const leftIn = await epoch()
    expect(await isActive(node)).toBe(true)
    expect(await expectRevert(simulate(node, 'leave', [model]))).toMatchObject({ errorName: 'NodeRegistryNotRegistered' })
    expect(await expectRevert(simulate(node, 'withdraw', []))).toEqual({
      errorName: 'NodeRegistryUnbonding',
      args: [who, leftIn + 1n + BigInt(UNBONDING)],
    })
    await nextEpoch()
    expect(await isActive(node)).toBe(false)
    expect((await openJob(1)).job.state).toBe(STATE.Queued)
    expect(await expectRevert(simulate(node, 'withdraw', []))).toMatchObject({ errorName: 'NodeRegistryUnbonding' })
    for (let i = 0; i < UNBONDING; i++) await nextEpoch()
    const before = await node.getBalance({ address: who })
    const receipt = await write(node, registry, 'withdraw', [])
    const after = await node.getBalance({ address: who })
    expect(after - before + receipt.gasUsed * receipt.effectiveGasPrice).toBe(MIN + MIN / 2n)
    expect(await expectRevert(simulate(node, 'withdraw', []))).toEqual({
      errorName: 'NodeRegistryNothingToWithdraw',
      args: [who],
    })
  })

  test('error: withdrawing while still registered', async () => {
    const node = chain.user
    await join(node, 10n)
    expect(await expectRevert(simulate(node, 'withdraw', []))).toEqual({
      errorName: 'NodeRegistryStillRegistered',
      args: [node.account.address, 1n],
    })
  })

  test('a node whose stake falls below the model’s minimum is no longer eligible', async () => {
    registry = await freshRegistry()
    const node = operators[1]!
    await join(node, 10n, parseEther('2'))
    await nextEpoch()
    expect(await isActive(node)).toBe(true)
    await write(chain.owner, registry, 'setMinimumStake', [model, parseEther('2.5')])
    expect(await isActive(node)).toBe(false)
    expect(await read<bigint>('remainingCapacity', [node.account.address, model])).toBe(0n)
    expect((await openJob(1)).job.state).toBe(STATE.Queued)
  })

  test('error: a pool holds at most MAX_POOL_SIZE nodes', async () => {
    registry = await freshRegistry()
    const max = await read<bigint>('MAX_POOL_SIZE')
    const clients = Array.from({ length: Number(max) + 1 }, (_, i) =>
      createSertnClient(chain.anvil.chain, privateKeyToAccount(keccak256(toHex(`node-registry test pool member ${i}`)))),
    )
    for (const c of clients)
      await chain.owner.request({ method: 'anvil_setBalance' as never, params: [c.account.address, toHex(parseEther('2'))] as never })
    const members = clients.slice(0, Number(max))
    const extra = clients[Number(max)]!
    for (let i = 0; i < members.length; i += 16) await Promise.all(members.slice(i, i + 16).map((c) => join(c, 1n)))
    expect(await read<Address[]>('poolNodes', [model])).toHaveLength(Number(max))
    await write(extra, registry, 'stake', [], MIN)
    expect(await expectRevert(simulate(extra, 'register', [model, 1n]))).toEqual({
      errorName: 'NodeRegistryPoolFull',
      args: [model, max],
    })
  }, 120_000)
})

describe('NodeRegistry: jobs', () => {
  test('closeJob: only the assigned node closes its job; zero settles any open job; a closed job stays closed', async () => {
    registry = await freshRegistry()
    const [a, b] = operators as [SertnClient, SertnClient]
    await join(a, 10n)
    await join(b, 10n)
    await nextEpoch()
    const { id, job } = await openJob(1)
    expect(job.state).toBe(STATE.Assigned)
    const other = job.node === a.account.address ? b.account.address : a.account.address
    for (const who of [other, chain.stranger.account.address]) {
      expect(await expectRevert(simulate(chain.owner, 'closeJob', [id, who]))).toEqual({
        errorName: 'NodeRegistryNotAssigned',
        args: [market, id, who, job.node],
      })
    }
    // Only the market closes jobs: a node cannot close its own.
    expect(await expectRevert(simulate(a, 'closeJob', [id, job.node]))).toMatchObject({ errorName: 'NodeRegistryNotMarket' })
    await write(chain.owner, registry, 'closeJob', [id, job.node])
    expect((await jobOf(id)).state).toBe(STATE.Closed)
    // Once closed, even its node is no longer assigned; settling it otherwise is a no-op.
    expect(await expectRevert(simulate(chain.owner, 'closeJob', [id, job.node]))).toEqual({
      errorName: 'NodeRegistryNotAssigned',
      args: [market, id, job.node, job.node],
    })
    await write(chain.owner, registry, 'closeJob', [id, ZERO])
    expect((await jobOf(id)).state).toBe(STATE.Closed)
    // A job nobody holds (unknown here) cannot be closed by a node.
    expect(await expectRevert(simulate(chain.owner, 'closeJob', [12345n, a.account.address]))).toEqual({
      errorName: 'NodeRegistryNotAssigned',
      args: [market, 12345n, a.account.address, ZERO],
    })
    // A queued job is settled by a refund (node zero).
    const queued = await openJob(11) // more than any node's capacity
    expect(queued.job.state).toBe(STATE.Queued)
    await write(chain.owner, registry, 'closeJob', [queued.id, ZERO])
    expect((await jobOf(queued.id)).state).toBe(STATE.Closed)
  })

  test('reassign: refused while the window is open; after it, the node is slashed (the requester’s share credited and claimable once), its miss counted, and the job goes to the other node', async () => {
    registry = await freshRegistry()
    const [a, b] = operators as [SertnClient, SertnClient]
    await join(a, 10n, parseEther('2'))
    await join(b, 10n, parseEther('2'))
    await nextEpoch()
    const { id, job } = await openJob(3)
    expect(job.state).toBe(STATE.Assigned)
    const missed = job.node
    const other = missed === a.account.address ? b.account.address : a.account.address
    expect(await expectRevert(simulate(chain.stranger, 'reassign', [market, id]))).toEqual({
      errorName: 'NodeRegistryWindowOpen',
      args: [market, id, BigInt(job.windowEnd)],
    })

    await increaseTime(chain.owner, WINDOW + 1)
    const e = await epoch()
    await write(chain.stranger, registry, 'reassign', [market, id]) // anyone may
    const after = await jobOf(id)
    expect(after).toMatchObject({ state: STATE.Assigned, node: other, misses: 1 })
    expect(after.windowEnd).toBeGreaterThan(job.windowEnd)
    expect(await read<bigint>('stakeOf', [missed])).toBe(parseEther('2') - PENALTY)
    expect(await read<bigint>('missesOf', [missed, e])).toBe(1n)
    const share = (PENALTY * SHARE_BPS) / 10_000n
    expect(await read<bigint>('creditOf', [chain.user.account.address])).toBe(share)
    expect(await read<bigint>('protocolBalance')).toBe(PENALTY - share)
    // The new node's capacity is spent; the missed node keeps what it had spent.
    expect(await read<bigint>('usedCapacity', [other, model, e])).toBe(3n)
    // The missed node cannot close the job any more; the new one can.
    expect(await expectRevert(simulate(chain.owner, 'closeJob', [id, missed]))).toEqual({
      errorName: 'NodeRegistryNotAssigned',
      args: [market, id, missed, other],
    })

    // The requester claims its share, once.
    const user = chain.user
    const before = await user.getBalance({ address: user.account.address })
    const receipt = await write(user, registry, 'claim', [])
    expect((await user.getBalance({ address: user.account.address })) - before + receipt.gasUsed * receipt.effectiveGasPrice).toBe(share)
    expect(await read<bigint>('creditOf', [user.account.address])).toBe(0n)
    expect(await expectRevert(simulate(user, 'claim', []))).toEqual({
      errorName: 'NodeRegistryNothingToWithdraw',
      args: [user.account.address],
    })
    // The protocol's part goes to the owner's choice of address.
    const to = chain.stranger.account.address
    const held = await chain.owner.getBalance({ address: to })
    await write(chain.owner, registry, 'withdrawProtocol', [to])
    expect(await chain.owner.getBalance({ address: to })).toBe(held + PENALTY - share)

    // A closed job cannot be reassigned.
    await write(chain.owner, registry, 'closeJob', [id, other])
    expect(await expectRevert(simulate(chain.stranger, 'reassign', [market, id]))).toEqual({
      errorName: 'NodeRegistryJobNotReassignable',
      args: [market, id, STATE.Closed],
    })
  })

  test('reassign after the request’s deadline: the node is slashed and the job lapses (nobody is assigned)', async () => {
    registry = await freshRegistry()
    const a = operators[0]!
    await join(a, 10n)
    await nextEpoch()
    const now = (await chain.owner.getBlock({ blockTag: 'latest' })).timestamp
    const { id, job } = await openJob(1, now + 60n)
    expect(job).toMatchObject({ state: STATE.Assigned, node: a.account.address })
    await increaseTime(chain.owner, WINDOW + 1)
    await write(chain.stranger, registry, 'reassign', [market, id])
    expect(await jobOf(id)).toMatchObject({ state: STATE.Lapsed, node: ZERO, misses: 1 })
    expect(await read<bigint>('stakeOf', [a.account.address])).toBe(MIN - PENALTY)
    expect(await expectRevert(simulate(chain.stranger, 'reassign', [market, id]))).toMatchObject({
      errorName: 'NodeRegistryJobNotReassignable',
    })
  })

  test('too many misses suspend a node for the rest of the epoch; a queued job is assigned once a new epoch brings capacity back', async () => {
    registry = await freshRegistry(60) // room for every step in one epoch
    await write(chain.owner, registry, 'setMaxMissesPerEpoch', [2n])
    const node = operators[2]!
    const who = node.account.address
    await join(node, 10n, parseEther('3'))
    await nextEpoch()
    const e = await epoch()

    const first = await openJob(4)
    expect(first.job.node).toBe(who)
    await increaseTime(chain.owner, WINDOW + 1)
    await write(chain.stranger, registry, 'reassign', [market, first.id])
    // The only node missed it: nobody else may take it, so it waits.
    expect(await jobOf(first.id)).toMatchObject({ state: STATE.Queued, node: ZERO, misses: 1 })
    expect(await isActive(node)).toBe(true) // one miss of two allowed

    const second = await openJob(4)
    expect(second.job.node).toBe(who)
    await increaseTime(chain.owner, WINDOW + 1)
    await write(chain.stranger, registry, 'reassign', [market, second.id])
    expect(await read<bigint>('missesOf', [who, e])).toBe(2n)
    expect(await isActive(node)).toBe(false) // suspended
    expect(await read<bigint>('stakeOf', [who])).toBe(parseEther('3') - 2n * PENALTY)
    const third = await openJob(1)
    expect(third.job.state).toBe(STATE.Queued)
    expect(await expectRevert(simulate(chain.stranger, 'assignQueued', [market, third.id]))).toEqual({
      errorName: 'NodeRegistryNoCapacity',
      args: [model, 1n, e],
    })
    expect(await epoch()).toBe(e)

    await nextEpoch()
    expect(await isActive(node)).toBe(true) // a new epoch
    await write(chain.stranger, registry, 'assignQueued', [market, third.id])
    const assigned = await jobOf(third.id)
    expect(assigned).toMatchObject({ state: STATE.Assigned, node: who })
    expect(await read<bigint>('usedCapacity', [who, model, e + 1n])).toBe(1n)
    expect(await expectRevert(simulate(chain.stranger, 'assignQueued', [market, third.id]))).toEqual({
      errorName: 'NodeRegistryJobNotReassignable',
      args: [market, third.id, STATE.Assigned],
    })
  })

  test('the less busy of two drawn nodes gets the job: equal nodes take turns, a node with a backlog is passed over, and a closed or reassigned job leaves its node’s backlog', async () => {
    registry = await freshRegistry()
    const [a, b] = operators as [SertnClient, SertnClient]
    await join(a, 100n, parseEther('2'))
    await join(b, 100n, parseEther('6')) // three times a's stake: drawn first more often, not given more work
    await nextEpoch()
    const opened: { id: bigint; node: Address }[] = []
    for (let i = 0; i < 8; i++) {
      const { id, job } = await openJob(1)
      opened.push({ id, node: job.node })
      const [x, y] = [await backlog(a), await backlog(b)]
      expect(x + y).toBe(BigInt(i + 1))
      expect(x > y ? x - y : y - x, `after ${i + 1} jobs: backlogs ${x} and ${y}`).toBeLessThanOrEqual(1n)
    }
    // b answers all of its jobs: the next two jobs go to b, whose backlog is now the shorter.
    for (const j of opened.filter((j) => j.node === b.account.address)) await write(chain.owner, registry, 'closeJob', [j.id, j.node])
    expect(await backlog(b)).toBe(0n)
    expect(await backlog(a)).toBe(4n)
    for (let i = 0; i < 2; i++) expect((await openJob(1)).job.node).toBe(b.account.address)
    // A job reassigned away leaves the missing node's backlog and joins the other's.
    const held = opened.find((j) => j.node === a.account.address)!
    await increaseTime(chain.owner, WINDOW + 1)
    await write(chain.stranger, registry, 'reassign', [market, held.id])
    expect((await jobOf(held.id)).node).toBe(b.account.address)
    expect(await backlog(a)).toBe(3n)
    expect(await backlog(b)).toBe(3n)
    // Registering again (after leaving) keeps the backlog the node still holds.
    await write(a, registry, 'leave', [model])
    await nextEpoch()
    await write(a, registry, 'register', [model, 50n])
    expect(await backlog(a)).toBe(3n)
  })

  test('maxOpenJobs: a node holding that many jobs is passed over; with every node full a job is queued (not assigned, missed and slashed), and assignQueued gives it to the first node that closes one; 0 lifts the limit', async () => {
    registry = await freshRegistry()
    const [a, b] = operators as [SertnClient, SertnClient]
    await join(a, 100n)
    await join(b, 100n)
    await nextEpoch()
    expect(await expectRevert(simulate(a, 'setMaxOpenJobs', [2n]))).toMatchObject({
      errorName: expect.stringMatching(/Owner|Unauthorized/),
    })
    await write(chain.owner, registry, 'setMaxOpenJobs', [2n])
    expect(await read<bigint>('maxOpenJobs')).toBe(2n)
    const held: { id: bigint; node: Address }[] = []
    for (let i = 0; i < 4; i++) {
      const { id, job } = await openJob(1)
      expect(job.state, `job ${i + 1} of 4 fits the two nodes' backlogs`).toBe(STATE.Assigned)
      held.push({ id, node: job.node })
    }
    expect([await backlog(a), await backlog(b)]).toEqual([2n, 2n])
    // The fifth waits: no node is below the limit, though both have capacity left.
    const fifth = await openJob(1)
    expect(fifth.job.state).toBe(STATE.Queued)
    expect(await expectRevert(simulate(chain.stranger, 'assignQueued', [market, fifth.id]))).toMatchObject({
      errorName: 'NodeRegistryNoCapacity',
    })
    // b answers one job: the queued one goes to b, with a fresh window.
    const answered = held.find((j) => j.node === b.account.address)!
    await write(chain.owner, registry, 'closeJob', [answered.id, answered.node])
    await write(chain.stranger, registry, 'assignQueued', [market, fifth.id])
    const moved = await jobOf(fifth.id)
    expect(moved.state).toBe(STATE.Assigned)
    expect(moved.node).toBe(b.account.address)
    expect(await backlog(b)).toBe(2n)
    // A reassignment away from a node that missed goes only to a node below the limit: none is, so it queues.
    const missed = held.find((j) => j.node === a.account.address)!
    await increaseTime(chain.owner, WINDOW + 1)
    await write(chain.stranger, registry, 'reassign', [market, missed.id])
    expect((await jobOf(missed.id)).state).toBe(STATE.Queued)
    expect(await backlog(a)).toBe(1n)
    // 0: no limit again.
    await write(chain.owner, registry, 'setMaxOpenJobs', [0n])
    for (let i = 0; i < 3; i++) expect((await openJob(1)).job.state).toBe(STATE.Assigned)
  })

  test('property: over random pools and request streams, a job is assigned iff some eligible node has the units left, never past a node’s capacity; queued otherwise', async () => {
    const E = 40 // blocks: the stream fits in one epoch
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ stake: fc.integer({ min: 1, max: 4 }), capacity: fc.integer({ min: 1, max: 12 }) }), {
          minLength: 1,
          maxLength: operators.length,
        }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 10 }),
        async (pool, units) => {
          registry = await freshRegistry(E)
          const nodes = pool.map((_, i) => operators[i]!)
          for (const [i, p] of pool.entries()) await join(nodes[i]!, BigInt(p.capacity), MIN * BigInt(p.stake))
          await nextEpoch()
          const e = await epoch()
          const used = new Map<Address, number>(nodes.map((n) => [n.account.address, 0]))
          for (const u of units) {
            const eligible = nodes.filter((n, i) => pool[i]!.capacity - used.get(n.account.address)! >= u).map((n) => n.account.address)
            const { job } = await openJob(u)
            if (eligible.length === 0) {
              expect(job, `${u} units with none left: queued`).toMatchObject({ state: STATE.Queued, node: ZERO })
            } else {
              expect(job.state, `${u} units with room at ${eligible.join(', ')}: assigned`).toBe(STATE.Assigned)
              expect(eligible, 'assigned to a node with the units left').toContain(job.node)
              used.set(job.node, used.get(job.node)! + u)
            }
            for (const [i, n] of nodes.entries()) {
              const spent = await read<bigint>('usedCapacity', [n.account.address, model, e])
              expect(Number(spent), `node ${i}'s capacity`).toBeLessThanOrEqual(pool[i]!.capacity)
              expect(Number(spent)).toBe(used.get(n.account.address))
            }
          }
          expect(await epoch(), 'the stream stayed in one epoch').toBe(e)
          for (const [i, n] of nodes.entries()) {
            const remaining = await read<bigint>('remainingCapacity', [n.account.address, model])
            expect(Number(remaining)).toBe(pool[i]!.capacity - used.get(n.account.address)!)
          }
        },
      ),
      { numRuns: 12 },
    )
  }, 300_000)
})
