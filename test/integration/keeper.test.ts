/**
 * The keeper on a real anvil, Temporal dev server and chain-io worker: a request left unserved past
 * its (short) deadline is refunded by the worker's keeper with no manual call, and its requester
 * gets its escrow back; a second keeper run (`sertn keeper --once`, and another keeper whose view of
 * the chain lags, as another node's may) refunds nothing twice and reports no failure.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseEventLogs } from 'viem'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { evmKeeper, type KeeperChainReport } from '../../chains/evm/plugin/keeper.ts'
import { confirm } from '../../chains/evm/deploy.ts'
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import { metrics } from '../../core/metrics.ts'
import { requestKey } from '../../core/types.ts'
import { keeperCommand } from '../../cli/keeper.ts'
import { increaseTime, waitUntil } from '../support/chain.ts'
import {
  boundedTeardown,
  CALLBACK_GAS,
  DEMO_INPUT,
  mine,
  startTestStack,
  startWorkers,
  type InProcessWorkers,
  type TestStack,
} from '../support/stack.ts'

const TIMEOUT_S = 30

let stack: TestStack | undefined
let workers: InProcessWorkers | undefined

beforeAll(async () => {
  stack = await startTestStack()
  const { owner, core } = stack.chain
  // A short deadline: requests expire TIMEOUT_S seconds (of the chain's clock) after they are made.
  const cfg = await owner.readContract({ address: core.gateway, abi: InferenceGateway.abi, functionName: 'config' })
  await confirm(
    owner,
    await owner.writeContract({
      address: core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'setConfig',
      args: [{ ...cfg, requestTimeout: TIMEOUT_S }],
    }),
  )
  // Only the chain-io worker: nothing serves the request, so it can only expire.
  workers = await startWorkers(stack, ['chain-io'], {
    config: { ...stack.config, keeper: { ...stack.config.keeper, enabled: true, intervalMs: 300 } },
  })
})

afterAll(async () => {
  await boundedTeardown([() => workers?.stop(), () => stack?.stop()], { processGroups: () => stack?.processGroups() ?? [] })
})

const statusOf = async (id: bigint) =>
  (
    await stack!.chain.user.readContract({
      address: stack!.chain.core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'getRequest',
      args: [id],
    })
  ).status

const refundsOf = (id: bigint) =>
  stack!.chain.user.getContractEvents({
    address: stack!.chain.core.gateway,
    abi: InferenceGateway.abi,
    eventName: 'InferenceRefunded',
    args: { requestId: id },
    fromBlock: 0n,
  })

const keeperRefunds = async () => (await metrics.keeperRefunds.get()).values.find((v) => v.labels.chain === 'local')?.value ?? 0

describe('the keeper', () => {
  test('refunds an expired request from the chain-io worker, with no manual call; a second run refunds nothing twice and does not fail', async () => {
    const { user, node, core } = stack!.chain
    const before = await keeperRefunds()
    // The user (an account, so that its balance shows the refund) requests directly from the gateway.
    const value = await user.readContract({
      address: core.gateway,
      abi: InferenceGateway.abi,
      functionName: 'quote',
      args: [stack!.chain.demo.modelId, CALLBACK_GAS],
    })
    const receipt = await confirm(
      user,
      await user.writeContract({
        address: core.gateway,
        abi: InferenceGateway.abi,
        functionName: 'requestInference',
        args: [stack!.chain.demo.modelId, [...DEMO_INPUT], CALLBACK_GAS],
        value,
      }),
    )
    const [requested] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
    const id = requested!.args.requestId
    const key = requestKey(stack!.chain.anvil.chain.id, core.gateway, id)
    await mine(stack!)
    const balance = await user.getBalance({ address: user.account.address })

    // Not expired yet: the keeper leaves it alone.
    await new Promise((r) => setTimeout(r, 1_500))
    expect(await statusOf(id)).toBe(1) // Pending

    // The chain's clock passes the deadline; the worker's keeper refunds it.
    await increaseTime(stack!.chain.owner, TIMEOUT_S + 1)
    await waitUntil('the keeper to refund the expired request', async () => (await statusOf(id)) === 4, 60_000, 200) // Refunded
    const refunds = await refundsOf(id)
    expect(refunds).toHaveLength(1)
    expect(refunds[0]!.args.caller).toBe(node.account.address) // the keeper pays with the node's account
    expect(await user.getBalance({ address: user.account.address })).toBe(balance + requested!.args.escrow)
    expect(await keeperRefunds()).toBe(before + 1)
    expect(workers!.logs.join('\n')).not.toMatch(/keeper.*(failed|cannot start)/)

    // A second run, as an operator would: `sertn keeper --once` on the same state.
    const configFile = join(stack!.dataDir, 'keeper.config.json')
    await writeFile(configFile, JSON.stringify(stack!.config))
    const out: string[] = []
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line))
    let code: number
    try {
      code = await keeperCommand({ once: true, json: true, config: configFile })
    } finally {
      log.mockRestore()
    }
    expect(code).toBe(0)
    const [report] = JSON.parse(out.join('\n')) as KeeperChainReport[]
    expect(report).toMatchObject({ chain: 'local', refunded: [], errors: [] })

    // Another node's keeper whose view lags: it still has the request open when it is due.
    const lagging = join(stack!.dataDir, 'keeper-lagging')
    const head = await user.getBlockNumber({ cacheTime: 0 })
    await mkdir(lagging, { recursive: true })
    const state = { nextBlock: String(head + 1n), open: [{ id: id.toString(), deadline: Number(requested!.args.deadline) }], receipts: [] }
    await writeFile(join(lagging, `local-${core.gateway.toLowerCase()}.json`), JSON.stringify(state))
    const [second] = await evmKeeper({ config: stack!.config, stateDir: lagging }).round()
    expect(second).toMatchObject({ refunded: [], alreadySettled: [key], errors: [], open: 0 })

    expect(await refundsOf(id)).toHaveLength(1)
    expect(await user.getBalance({ address: user.account.address })).toBe(balance + requested!.args.escrow)
    expect(await keeperRefunds()).toBe(before + 1)
  })
})
