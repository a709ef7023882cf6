/**
 * `sertn node …` against a fresh hub anvil, the command functions driven in-process: an operator
 * (anvil account 9, which no other role uses) stakes and registers for the demo model, is inactive
 * until the next epoch, cannot withdraw while registered nor while unbonding, withdraws once
 * unbonded, and is told plainly when there is nothing to withdraw or claim, or the model is unknown.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEther, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { anvilPrivateKey } from '../../chains/evm/clients.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import { NodeRegistry } from '../../contracts/artifacts/index.ts'
import {
  nodeClaimCommand,
  nodeLeaveCommand,
  nodeRegisterCommand,
  nodeStatusCommand,
  nodeWithdrawCommand,
  type NodeConnectionOptions,
} from '../../cli/node.ts'
import { startTestChain, type TestChain } from '../support/chain.ts'

const OPERATOR_KEY = anvilPrivateKey(9)
const OPERATOR = privateKeyToAccount(OPERATOR_KEY).address

let chain: TestChain
let registry: Address
/** Whether the registry is the hub gateway's `nodes()` (startTestChain deploys it), not one of this test's own. */
let gatewayHasIt: boolean
let conn: NodeConnectionOptions
let dir: string

type Run = { code: number; stdout: string; stderr: string }

/** Runs a command function, capturing what it prints. */
async function run(fn: () => Promise<number>): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')))
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')))
  try {
    const code = await fn()
    return { code, stdout: out.join('\n'), stderr: err.join('\n') }
  } finally {
    log.mockRestore()
    error.mockRestore()
  }
}

const read = {
  epoch: () => chain.owner.readContract({ address: registry, abi: NodeRegistry.abi, functionName: 'epoch' }),
  start: (e: bigint) => chain.owner.readContract({ address: registry, abi: NodeRegistry.abi, functionName: 'epochStartBlock', args: [e] }),
  stake: () => chain.owner.readContract({ address: registry, abi: NodeRegistry.abi, functionName: 'stakeOf', args: [OPERATOR] }),
}

/** Mines up to block `block` (anvil). */
async function mineTo(block: bigint): Promise<void> {
  const head = await chain.owner.getBlockNumber({ cacheTime: 0 })
  if (block > head) await chain.owner.request({ method: 'anvil_mine' as never, params: [toHex(block - head)] as never })
}

type Status = {
  epoch: string
  stake: string
  pools: string
  memberships: {
    modelId: Hex
    name?: string
    capacity: string
    used: string
    remaining: string
    backlog: string
    active: boolean
    activeFrom: string
    activeUntil: string | null
  }[]
  withdrawable: boolean
  unbondingUntil: { epoch: string; block: string } | null
  earnings: { fulfilled: number; amount: string }
  jobs: { assigned: number; closed: number; reassignedAway: number; slashed: string }
}

async function status(extra: Partial<NodeConnectionOptions> = {}): Promise<Status> {
  const r = await run(() => nodeStatusCommand({ ...conn, ...extra, json: true }))
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as Status
}

beforeAll(async () => {
  chain = await startTestChain()
  const deployed = (chain.core as { nodeRegistry?: Address }).nodeRegistry
  gatewayHasIt = deployed !== undefined
  registry = deployed ?? (await deployContract(chain.owner, NodeRegistry, [chain.owner.account.address, chain.core.registry, 20n, 1n]))
  await chain.owner.sendTransaction({ to: OPERATOR, value: parseEther('100') })
  conn = { rpcUrl: chain.anvil.rpcUrl, registry, gateway: chain.core.gateway, privateKey: OPERATOR_KEY }
  dir = await mkdtemp(join(tmpdir(), 'sertn-cli-node-'))
})

afterAll(async () => {
  await chain?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('sertn node', () => {
  test('register stakes and registers, active from the next epoch; again, it only reports', async () => {
    const r = await run(() => nodeRegisterCommand({ ...conn, models: ['sertn-mlp-demo'], stake: parseEther('2'), capacity: 500n }))
    expect(r.code, r.stderr).toBe(0)
    const e = await read.epoch()
    expect(r.stdout).toContain('staked 2 ETH: 2 ETH in all')
    expect(r.stdout).toContain(`sertn-mlp-demo (${chain.demo.modelId.slice(0, 10)}…): registered with 500 compute units per epoch`)
    expect(r.stdout).toContain(`active from epoch ${e + 1n} (block ${await read.start(e + 1n)})`)
    expect(await read.stake()).toBe(parseEther('2'))

    // Idempotent: reported, not registered again; only the stake's difference is sent.
    const again = await run(() => nodeRegisterCommand({ ...conn, models: [chain.demo.modelId], stake: parseEther('3'), json: true }))
    expect(again.code, again.stderr).toBe(0)
    const j = JSON.parse(again.stdout) as { ok: boolean; staked: { sent: string; total: string }; models: { status: string }[] }
    expect(j.ok).toBe(true)
    expect(j.staked).toMatchObject({ sent: parseEther('1').toString(), total: parseEther('3').toString() })
    expect(j.models.map((m) => m.status)).toEqual(['already-registered'])
    expect(await read.stake()).toBe(parseEther('3'))
  })

  test('status: inactive now, active from the next epoch', async () => {
    const before = await status()
    expect(before.stake).toBe(parseEther('3').toString())
    expect(before.pools).toBe('1')
    expect(before.memberships).toHaveLength(1)
    expect(before.memberships[0]).toMatchObject({ modelId: chain.demo.modelId, capacity: '500', active: false, activeUntil: null })
    expect(before.withdrawable).toBe(false)
    expect(before.earnings).toMatchObject({ fulfilled: 0, amount: '0' })
    expect(before.jobs).toEqual({ assigned: 0, closed: 0, reassignedAway: 0, slashed: '0' })

    await mineTo(await read.start(BigInt(before.epoch) + 1n))
    const after = await status()
    expect(BigInt(after.epoch)).toBe(BigInt(before.epoch) + 1n)
    expect(after.memberships[0]).toMatchObject({ active: true, remaining: '500', used: '0', backlog: '0' })

    // The human view, with the node given by address and the registry found through the hub gateway.
    const human = await run(() =>
      nodeStatusCommand({ rpcUrl: chain.anvil.rpcUrl, node: OPERATOR, ...(gatewayHasIt ? { gateway: chain.core.gateway } : { registry }) }),
    )
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toContain(`node ${OPERATOR} · NodeRegistry ${registry}`)
    expect(human.stdout).toMatch(/model .*: active now; active from epoch \d+, not leaving/)
    expect(human.stdout).toContain('capacity 500 compute units per epoch: used 0, remaining 500 this epoch; 0 job(s) open')
    expect(human.stdout).toContain('earnings    0 ETH for 0 fulfilled request(s) on the hub gateway')
    expect(human.stdout).toContain('jobs        0 assigned, 0 closed (served), 0 reassigned away')
  })

  test('status reads the configuration (hub chain, gateway, node key)', async () => {
    const config = join(dir, 'sertn.config.json')
    await writeFile(
      config,
      JSON.stringify({
        node: { privateKey: OPERATOR_KEY },
        chains: {
          hub: { chainId: chain.anvil.chain.id, rpcUrl: chain.anvil.rpcUrl, gateway: chain.core.gateway, registry: chain.core.registry },
        },
      }),
    )
    const s = await status({
      rpcUrl: undefined,
      privateKey: undefined,
      gateway: undefined,
      config,
      ...(gatewayHasIt ? { registry: undefined } : {}),
    })
    expect(s.memberships[0]).toMatchObject({ modelId: chain.demo.modelId, active: true })
  })

  test('withdraw while registered: the StillRegistered line, exit 1', async () => {
    const r = await run(() => nodeWithdrawCommand(conn))
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(new RegExp(`^error: ${OPERATOR} still serves 1 pool\\(s\\): leave them first \\(\`sertn node leave\`\\)`))
  })

  test('leave, then withdraw while unbonding: the Unbonding line; after it, withdraw; then nothing to withdraw', async () => {
    const left = await run(() => nodeLeaveCommand(conn))
    expect(left.code, left.stderr).toBe(0)
    const e = await read.epoch()
    expect(left.stdout).toContain(
      `leaves the pool at the end of this epoch: active until epoch ${e + 1n} (block ${await read.start(e + 1n)})`,
    )
    const unbonding = await chain.owner.readContract({
      address: registry,
      abi: NodeRegistry.abi,
      functionName: 'unbondingUntil',
      args: [OPERATOR],
    })
    const unbondedAt = await read.start(unbonding)
    expect(left.stdout).toContain(`3 ETH unbonds: it can be withdrawn from epoch ${unbonding} (block ${unbondedAt})`)

    // Leaving again: reported, nothing sent.
    const again = await run(() => nodeLeaveCommand({ ...conn, models: ['sertn-mlp-demo'] }))
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('left already')

    const early = await run(() => nodeWithdrawCommand(conn))
    expect(early.code).toBe(1)
    expect(early.stderr).toContain(
      `error: the stake of ${OPERATOR} is unbonding: it can be withdrawn from epoch ${unbonding} (block ${unbondedAt}, in `,
    )

    await mineTo(unbondedAt)
    const s = await status()
    expect(s.withdrawable).toBe(true)
    expect(s.memberships[0]!.active).toBe(false)
    const balance = await chain.owner.getBalance({ address: OPERATOR })
    const done = await run(() => nodeWithdrawCommand(conn))
    expect(done.code, done.stderr).toBe(0)
    expect(done.stdout).toContain(`withdrew 3 ETH of stake to ${OPERATOR}`)
    expect(await read.stake()).toBe(0n)
    expect(await chain.owner.getBalance({ address: OPERATOR })).toBeGreaterThan(balance + parseEther('2.99'))

    const twice = await run(() => nodeWithdrawCommand({ ...conn, json: true }))
    expect(twice.code).toBe(1)
    expect(JSON.parse(twice.stdout)).toMatchObject({
      ok: false,
      revert: 'NodeRegistryNothingToWithdraw',
      error: `nothing to withdraw: ${OPERATOR} has no stake (never staked, or withdrawn already)`,
    })
  })

  test('claim with no credits: nothing to claim', async () => {
    const r = await run(() => nodeClaimCommand(conn))
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`error: nothing to claim: no slash shares are credited to ${OPERATOR}`)
  })

  test('register for an unknown model: the UnknownModel line, nothing staked', async () => {
    const r = await run(() => nodeRegisterCommand({ ...conn, models: ['no-such-model'], stake: parseEther('1') }))
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /^error: unknown model no-such-model \(0x[0-9a-f]{8}…\): the hub's model registry has no such model; register it first/,
    )
    expect(await read.stake()).toBe(0n)
  })

  test('claim signs as the keystore of --keystore (--password-file); a wrong password stops it', async () => {
    const { encryptKeystore } = await import('../../core/keys.ts')
    const keystore = join(dir, 'operator.keystore')
    await writeFile(keystore, JSON.stringify(await encryptKeystore(OPERATOR_KEY, 'operator')))
    await writeFile(join(dir, 'operator.password'), 'operator\n')
    await writeFile(join(dir, 'wrong.password'), 'nope\n')
    const { privateKey: _, ...noKey } = conn
    const r = await run(() => nodeClaimCommand({ ...noKey, keystore, passwordFile: join(dir, 'operator.password') }))
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`error: nothing to claim: no slash shares are credited to ${OPERATOR}`)
    await expect(nodeClaimCommand({ ...noKey, keystore, passwordFile: join(dir, 'wrong.password') })).rejects.toThrow(
      `wrong password for keystore ${keystore}`,
    )
  })
})
