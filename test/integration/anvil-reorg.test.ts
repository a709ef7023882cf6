/**
 * Reorganising a busy anvil. anvil 1.7 unwinds blocks (`anvil_reorg`) without taking its mining
 * lock: a block automined at that moment can stay in the new chain with its logs while its state is
 * rolled back. A chaos run saw the hub market record one spoke request twice after its reorg fault
 * (the market refuses a second record of a request, so no real chain could show both). The chaos
 * run's reorg now runs inside `withAnvilMiningPaused`.
 *
 * The first test is that run in small: senders record keys in a contract that refuses a key twice
 * and send again whatever a reorg dropped, while the chain is reorganised every 100 ms. With a plain
 * `anvil_reorg` in place of the pause, this test failed in both of two runs (4 keys and 1 key
 * recorded twice), and a probe of the same scenario doubled keys in 6 of 7 runs (some of its
 * reorgs failed with "resource not found"); with the pause, none of 7 runs did.
 */
import { encodeFunctionData, parseAbi, type Address, type Hex } from 'viem'
import { expect, test } from 'vitest'
import { ANVIL_MAX_REORG_DEPTH, type AnvilInstance, anvilReorg, anvilRpc, startAnvil, withAnvilMiningPaused } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient } from '../../chains/evm/clients.ts'
import { compileSolidity } from '../../contracts/solc.ts'

const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract OnceRecorder {
    mapping(uint256 => bool) public seen;
    uint256 public count;
    event Recorded(uint256 indexed key);
    function record(uint256 key) external {
        require(!seen[key], "recorded already");
        seen[key] = true;
        count++;
        emit Recorded(key);
    }
}`
const abi = parseAbi([
  'function seen(uint256) view returns (bool)',
  'function count() view returns (uint256)',
  'function record(uint256)',
  'event Recorded(uint256 indexed key)',
])

async function deploy(anvil: AnvilInstance) {
  const compiled = compileSolidity({ 'OnceRecorder.sol': { content: SOURCE } }).contracts['OnceRecorder.sol']!.OnceRecorder!
  const wallet = (i: number) => createSertnClient(anvil.chain, anvilAccount(i))
  const client = wallet(0)
  const hash = await wallet(0).deployContract({ abi: compiled.abi, bytecode: compiled.bytecode })
  const address = (await client.waitForTransactionReceipt({ hash })).contractAddress as Address
  return { client, wallet, address }
}

test('reorgs inside withAnvilMiningPaused, while six senders record keys: no key recorded twice, logs and state agree', async () => {
  const anvil = await startAnvil()
  try {
    const { client, wallet, address } = await deploy(anvil)
    const fromBlock = await client.getBlockNumber()
    let stop = false
    let next = 1n
    // Each sender takes the next key and sends it until the chain has it (a reorg may drop it).
    const sender = async (i: number) => {
      const w = wallet(i)
      while (!stop) {
        const key = next++
        for (let tries = 0; tries < 20 && !stop; tries++) {
          try {
            if (await client.readContract({ address, abi, functionName: 'seen', args: [key] })) break
            const data = encodeFunctionData({ abi, functionName: 'record', args: [key] })
            const hash: Hex = await w.sendTransaction({ to: address, data, gas: 100_000n })
            await client.waitForTransactionReceipt({ hash, timeout: 3000, pollingInterval: 100 }).catch(() => undefined)
          } catch {
            // a nonce or a receipt lost to a reorg: look again
          }
        }
      }
    }
    let reorgs = 0
    const reorger = async () => {
      while (!stop) {
        await new Promise((r) => setTimeout(r, 100))
        const depth = 1 + (reorgs % 6)
        await withAnvilMiningPaused(client, () => anvilRpc(client, 'anvil_reorg', [depth, []]))
        reorgs++
      }
    }
    const jobs = [...[1, 2, 3, 4, 5, 6].map(sender), reorger()]
    await new Promise((r) => setTimeout(r, 15_000))
    stop = true
    await Promise.all(jobs)

    expect(await anvilRpc(client, 'anvil_getAutomine'), 'automine is on again').toBe(true)
    const logs = await client.getLogs({ address, event: abi[3], fromBlock, toBlock: 'latest' })
    const times = new Map<bigint, number>()
    for (const l of logs) times.set(l.args.key!, (times.get(l.args.key!) ?? 0) + 1)
    const twice = [...times].filter(([, n]) => n > 1).map(([k, n]) => `key ${k}: ${n} records`)
    expect(reorgs, 'the chain was reorganised throughout').toBeGreaterThan(20)
    expect(times.size, 'keys were recorded throughout').toBeGreaterThan(50)
    expect(twice, 'no key recorded twice').toEqual([])
    expect(await client.readContract({ address, abi, functionName: 'count' }), 'one count per record event').toBe(BigInt(logs.length))
    for (const key of times.keys())
      expect(await client.readContract({ address, abi, functionName: 'seen', args: [key] }), `key ${key} is in the state`).toBe(true)
  } finally {
    await anvil.stop()
  }
}, 120_000)

test('withAnvilMiningPaused: nothing is mined inside; afterwards automine is back and what was sent is mined', async () => {
  const anvil = await startAnvil()
  try {
    const { client, wallet, address } = await deploy(anvil)
    const data = encodeFunctionData({ abi, functionName: 'record', args: [7n] })
    const hash = await withAnvilMiningPaused(client, async () => {
      const head = await client.getBlockNumber({ cacheTime: 0 })
      const h = await wallet(1).sendTransaction({ to: address, data, gas: 100_000n })
      await new Promise((r) => setTimeout(r, 500))
      expect(await client.getBlockNumber({ cacheTime: 0 }), 'no block while paused').toBe(head)
      return h
    })
    const receipt = await client.waitForTransactionReceipt({ hash, timeout: 5000 })
    expect(receipt.status).toBe('success')
    expect(await anvilRpc(client, 'anvil_getAutomine')).toBe(true)
  } finally {
    await anvil.stop()
  }
}, 60_000)

test('withAnvilMiningPaused on an interval-mining anvil: no block inside, blocks again afterwards', async () => {
  const anvil = await startAnvil({ blockTime: 1 })
  try {
    const client = createSertnClient(anvil.chain, anvilAccount(0))
    await withAnvilMiningPaused(
      client,
      async () => {
        const head = await client.getBlockNumber({ cacheTime: 0 })
        await new Promise((r) => setTimeout(r, 2500))
        expect(await client.getBlockNumber({ cacheTime: 0 }), 'no block while paused').toBe(head)
      },
      { blockTime: 1 },
    )
    const after = await client.getBlockNumber({ cacheTime: 0 })
    await new Promise((r) => setTimeout(r, 2500))
    expect(await client.getBlockNumber({ cacheTime: 0 }), 'blocks again').toBeGreaterThan(after)
  } finally {
    await anvil.stop()
  }
}, 60_000)

/**
 * A soak's drop-tx fault reorganised the hub 11 blocks deep at block 4,908: from then on every hub
 * contract answered calls with no data ("returned no data (0x)"), and the run stalled. Once a chain
 * is about 1,000 blocks long, anvil keeps only its newest states (about 10) in memory; a deeper
 * reorg rolls back onto a state read from its disk cache, which has lost the contracts' code. On a
 * bare anvil after 1,200 blocks, a 10-block reorg lost the code in one scenario of two, 11 and 12 in
 * every one; 5 to 9 never did.
 */
async function longChain() {
  const anvil = await startAnvil({ maxPersistedStates: 2_000 })
  const { client, address } = await deploy(anvil)
  await anvilRpc(client, 'anvil_mine', ['0x4b0'])
  await client.writeContract({ address, abi, functionName: 'record', args: [7n] })
  const code = await client.getCode({ address })
  expect(code?.length).toBeGreaterThan(2)
  return { anvil, client, address, code }
}

test('anvilReorg after 1,200 blocks: at ANVIL_MAX_REORG_DEPTH the contracts keep their code; deeper is refused', async () => {
  const { anvil, client, address, code } = await longChain()
  try {
    await anvilReorg(client, ANVIL_MAX_REORG_DEPTH, [])
    expect(await client.getCode({ address })).toBe(code)
    // The record (in the newest block) is gone with its block; the contract still answers.
    expect(await client.readContract({ address, abi, functionName: 'seen', args: [7n] })).toBe(false)
    await expect(anvilReorg(client, ANVIL_MAX_REORG_DEPTH + 1, [])).rejects.toThrow(
      `a reorg of anvil is 1 to ${ANVIL_MAX_REORG_DEPTH} blocks deep, not ${ANVIL_MAX_REORG_DEPTH + 1}`,
    )
    expect(await client.getCode({ address })).toBe(code)
  } finally {
    await anvil.stop()
  }
}, 120_000)

test("anvil defect behind ANVIL_MAX_REORG_DEPTH: after 1,200 blocks a raw 12-block anvil_reorg loses the contracts' code (when an anvil upgrade fixes it, this fails: raise the limit)", async () => {
  const { anvil, client, address } = await longChain()
  try {
    await anvilRpc(client, 'anvil_reorg', [12, []])
    expect(await client.getCode({ address })).toBeUndefined()
  } finally {
    await anvil.stop()
  }
}, 120_000)
