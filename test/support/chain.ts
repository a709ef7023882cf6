/**
 * A fresh anvil with Sertn deployed, for integration tests: clients for the roles a test needs,
 * revert decoding, and time travel.
 */
import { BaseError, ContractFunctionRevertedError, type Address, type Hex } from 'viem'
import type { AnvilInstance } from '../../chains/anvil.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { deployCore, registerModel, type CoreDeployment, type DeployCoreParameters, type RegisteredModel } from '../../chains/evm/deploy.ts'
import { LOCAL_CHAINS, startLocalChain } from '../../chains/local.ts'

export type TestChain = {
  anvil: AnvilInstance
  /** Deploys and owns the contracts; registers models. */
  owner: SertnClient
  /** The authorised node. */
  node: SertnClient
  /** A dApp user. */
  user: SertnClient
  /** An account with no role. */
  stranger: SertnClient
  core: CoreDeployment
  demo: RegisteredModel
  stop(): Promise<void>
}

/** Starts anvil (a local hub chain), deploys the core contracts with `node` authorised, and registers the demo model. */
export async function startTestChain(params: DeployCoreParameters = {}): Promise<TestChain> {
  const { anvil, owner, node, user, stranger } = await startLocalChain(LOCAL_CHAINS.hub)
  try {
    const core = await deployCore(owner, { nodes: [node.account.address], allowInsecureSrs: true, ...params })
    const demo = await registerModel(owner, { registry: core.registry, model: 'sertn-mlp-demo', allowInsecureSrs: true })
    return { anvil, owner, node, user, stranger, core, demo, stop: () => anvil.stop() }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/** The custom error a failed contract call reverted with: its name and arguments. */
export function revertOf(err: unknown): { errorName: string; args: readonly unknown[] } | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
  if (!(reverted instanceof ContractFunctionRevertedError) || !reverted.data) return undefined
  return { errorName: reverted.data.errorName, args: reverted.data.args ?? [] }
}

/** Awaits `p`, expecting a revert; returns the custom error (throws if `p` succeeded or failed otherwise). */
export async function expectRevert(p: Promise<unknown>): Promise<{ errorName: string; args: readonly unknown[] }> {
  let result: unknown
  try {
    result = await p
  } catch (err) {
    const r = revertOf(err)
    if (r) return r
    throw err
  }
  throw new Error(`expected a revert, got ${String(result)}`)
}

/** Moves the chain's clock forward and mines a block. */
export async function increaseTime(client: SertnClient, seconds: number): Promise<void> {
  await client.request({ method: 'evm_increaseTime' as never, params: [seconds] as never })
  await client.request({ method: 'evm_mine' as never, params: [] as never })
}

export async function balanceOf(client: SertnClient, address: Address): Promise<bigint> {
  return client.getBalance({ address })
}

export type { Address, Hex }

/**
 * Polls `fn` every `intervalMs` until it yields something other than `undefined` or `false`, and
 * returns that; fails naming `what` after `timeoutMs`.
 */
export async function waitUntil<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
