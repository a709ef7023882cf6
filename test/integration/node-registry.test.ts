/**
 * NodeRegistry on anvil: staking and registration per model (minimum stake, known model, non-zero
 * capacity), activation in the epoch after registration, leaving at the boundary and unbonding,
 * capacity spent by the market and never exceeded (a property test over random pools and unit
 * streams), slashing with the requester's share, and suspension after too many misses.
 */
import fc from 'fast-check'
import { parseEther, toHex, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { NodeRegistry } from '../../contracts/artifacts/index.ts'
import { expectRevert, startTestChain, type TestChain } from '../support/chain.ts'

const EPOCH = 10 // blocks
const UNBONDING = 2 // epochs
const MIN = parseEther('1')

let chain: TestChain
let registry: Address
let model: Hex

beforeAll(async () => {
  chain = await startTestChain()
  model = chain.demo.modelId
}, 120_000)

afterAll(async () => {
  await chain?.stop()
})

/** A fresh NodeRegistry (the owner is its market, so the tests can spend and slash). */
async function freshRegistry(): Promise<Address> {
  const r = await deployContract(chain.owner, NodeRegistry, [
    chain.owner.account.address,
    chain.core.registry,
    BigInt(EPOCH),
    BigInt(UNBONDING),
  ])
  await write(chain.owner, r, 'setMarket', [chain.owner.account.address])
  await write(chain.owner, r, 'setMinimumStake', [model, MIN])
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

/** Mines the first block of the next epoch (reads at the head, and the next transactions, are then in it). */
async function nextEpoch(): Promise<void> {
  const e = await epoch()
  const start = await read<bigint>('epochStartBlock', [e + 1n])
  const head = await chain.owner.getBlockNumber({ cacheTime: 0 })
  const n = start - head
  if (n > 0n) await chain.owner.request({ method: 'anvil_mine' as never, params: [toHex(n)] as never })
}

describe('NodeRegistry', () => {
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

  test('a node registered in epoch e is active from e+1, serves its capacity, and leaves at the next boundary', async () => {
    const node = chain.node
    await write(node, registry, 'stake', [], MIN) // 1.5 ETH in all
    await write(node, registry, 'register', [model, 100n])
    const registeredIn = await epoch()
    expect((await read<{ activeFrom: bigint }>('membershipOf', [node.account.address, model])).activeFrom).toBe(registeredIn + 1n)
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(false)
    expect(await expectRevert(simulate(chain.owner, 'useCapacity', [node.account.address, model, 1n]))).toEqual({
      errorName: 'NodeRegistryNotActive',
      args: [node.account.address, model, registeredIn],
    })
    expect(await expectRevert(simulate(node, 'register', [model, 50n]))).toMatchObject({ errorName: 'NodeRegistryAlreadyRegistered' })

    await nextEpoch()
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(true)
    expect(await read<bigint>('remainingCapacity', [node.account.address, model])).toBe(100n)
    await write(chain.owner, registry, 'useCapacity', [node.account.address, model, 60n])
    expect(await read<bigint>('remainingCapacity', [node.account.address, model])).toBe(40n)
    expect(await expectRevert(simulate(chain.owner, 'useCapacity', [node.account.address, model, 41n]))).toEqual({
      errorName: 'NodeRegistryCapacityExceeded',
      args: [node.account.address, model, 40n, 41n],
    })
    expect(await expectRevert(simulate(node, 'useCapacity', [node.account.address, model, 1n]))).toEqual({
      errorName: 'NodeRegistryNotMarket',
      args: [node.account.address],
    })

    // Leaving: still active to the end of this epoch, not in the next; the stake unbonds.
    await write(node, registry, 'leave', [model])
    const leftIn = await epoch()
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(true)
    expect(await expectRevert(simulate(node, 'leave', [model]))).toMatchObject({ errorName: 'NodeRegistryNotRegistered' })
    expect(await expectRevert(simulate(node, 'withdraw', []))).toEqual({
      errorName: 'NodeRegistryUnbonding',
      args: [node.account.address, leftIn + 1n + BigInt(UNBONDING)],
    })
    await nextEpoch()
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(false)
    expect(await expectRevert(simulate(node, 'withdraw', []))).toMatchObject({ errorName: 'NodeRegistryUnbonding' })
    for (let i = 0; i < UNBONDING; i++) await nextEpoch()
    const before = await node.getBalance({ address: node.account.address })
    const receipt = await write(node, registry, 'withdraw', [])
    const after = await node.getBalance({ address: node.account.address })
    expect(after - before + receipt.gasUsed * receipt.effectiveGasPrice).toBe(MIN + MIN / 2n)
    expect(await expectRevert(simulate(node, 'withdraw', []))).toEqual({
      errorName: 'NodeRegistryNothingToWithdraw',
      args: [node.account.address],
    })
  })

  test('error: withdrawing while still registered', async () => {
    const node = chain.user
    await write(node, registry, 'stake', [], MIN)
    await write(node, registry, 'register', [model, 10n])
    expect(await expectRevert(simulate(node, 'withdraw', []))).toEqual({
      errorName: 'NodeRegistryStillRegistered',
      args: [node.account.address, 1n],
    })
  })

  test('slashing: the requester gets its share, the protocol the rest; too many misses suspend the node for the epoch', async () => {
    registry = await freshRegistry()
    await write(chain.owner, registry, 'setMaxMissesPerEpoch', [2n])
    const node = chain.node
    await write(node, registry, 'stake', [], parseEther('3'))
    await write(node, registry, 'register', [model, 5n])
    await nextEpoch()
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(true)
    const requester = chain.stranger.account.address
    const before = await chain.owner.getBalance({ address: requester })
    await write(chain.owner, registry, 'slash', [node.account.address, parseEther('0.5'), requester, parseEther('0.2')])
    expect(await chain.owner.getBalance({ address: requester })).toBe(before + parseEther('0.2'))
    expect(await read<bigint>('stakeOf', [node.account.address])).toBe(parseEther('2.5'))
    expect(await read<bigint>('protocolBalance')).toBe(parseEther('0.3'))
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(true)
    await write(chain.owner, registry, 'slash', [node.account.address, parseEther('0.5'), requester, 0n])
    expect(await read<bigint>('missesOf', [node.account.address, await epoch()])).toBe(2n)
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(false) // suspended
    expect(await expectRevert(simulate(chain.owner, 'slash', [node.account.address, parseEther('9'), requester, 0n]))).toMatchObject({
      errorName: 'NodeRegistryInvalidSlash',
    })
    await nextEpoch()
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(true) // a new epoch
    // Below the minimum after slashes: no longer eligible.
    await write(chain.owner, registry, 'setMinimumStake', [model, parseEther('2.6')])
    expect(await read<boolean>('isActive', [node.account.address, model])).toBe(false)
  })

  test('property: the market can never spend more than a node committed in an epoch', async () => {
    registry = await freshRegistry()
    const node = chain.user
    await write(node, registry, 'stake', [], MIN)
    await write(node, registry, 'register', [model, 40n])
    await nextEpoch()
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 8 }), async (units) => {
        await nextEpoch()
        let used = 0
        for (const u of units) {
          const fits = used + u <= 40
          try {
            await simulate(chain.owner, 'useCapacity', [node.account.address, model, BigInt(u)])
            expect(fits, `spending ${u} after ${used} of 40 must revert`).toBe(true)
            await write(chain.owner, registry, 'useCapacity', [node.account.address, model, BigInt(u)])
            used += u
          } catch (err) {
            if (fits) throw err
          }
        }
        expect(40n - (await read<bigint>('remainingCapacity', [node.account.address, model]))).toBe(BigInt(used))
        expect(used).toBeLessThanOrEqual(40)
      }),
      { numRuns: 12 },
    )
  }, 120_000)
  test("property: assignment over random pools and request streams never exceeds a node's capacity, goes only to eligible nodes, and refuses when none has room", async () => {
    const accounts = [chain.node, chain.user, chain.stranger]
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ stake: fc.integer({ min: 1, max: 4 }), capacity: fc.integer({ min: 1, max: 12 }) }), {
          minLength: 1,
          maxLength: accounts.length,
        }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 7 }),
        fc.integer({ min: 0, max: 2 }),
        async (pool, requests, excludeIndex) => {
          registry = await freshRegistry()
          const nodes = pool.map((_, i) => accounts[i]!)
          for (const [i, p] of pool.entries()) {
            await write(nodes[i]!, registry, 'stake', [], MIN * BigInt(p.stake))
            await write(nodes[i]!, registry, 'register', [model, BigInt(p.capacity)])
          }
          await nextEpoch()
          const exclude = (nodes[excludeIndex] ?? chain.owner).account.address
          const used = new Map<string, number>()
          for (const [r, units] of requests.entries()) {
            const eligible = pool.filter(
              (p, i) => nodes[i]!.account.address !== exclude && p.capacity - (used.get(nodes[i]!.account.address) ?? 0) >= units,
            )
            const seed = toHex(BigInt(r * 7919 + units), { size: 32 })
            if (eligible.length === 0) {
              expect((await expectRevert(simulate(chain.owner, 'assign', [model, BigInt(units), seed, exclude]))).errorName).toBe(
                'NodeRegistryNoCapacity',
              )
              continue
            }
            const { result } = (await simulate(chain.owner, 'assign', [model, BigInt(units), seed, exclude])) as { result: Address }
            await write(chain.owner, registry, 'assign', [model, BigInt(units), seed, exclude])
            const i = nodes.findIndex((n) => n.account.address === result)
            expect(i, `assigned to a node of the pool (${result})`).toBeGreaterThanOrEqual(0)
            expect(result, 'never to the excluded node').not.toBe(exclude)
            const after = (used.get(result) ?? 0) + units
            expect(after, `node ${i} given more than its capacity ${pool[i]!.capacity}`).toBeLessThanOrEqual(pool[i]!.capacity)
            used.set(result, after)
          }
          for (const [i, n] of nodes.entries()) {
            const remaining = await read<bigint>('remainingCapacity', [n.account.address, model])
            expect(Number(remaining)).toBe(pool[i]!.capacity - (used.get(n.account.address) ?? 0))
          }
        },
      ),
      { numRuns: 10 },
    )
  }, 300_000)
})
