/**
 * A fresh anvil with Sertn deployed, for integration tests: clients for the roles a test needs
 * (the node staked in the demo model's pool and active), revert decoding, and time travel.
 */
import type { Address, Hex } from 'viem'
import type { AnvilInstance } from '../../chains/anvil.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { deployCore, registerModel, type CoreDeployment, type DeployCoreParameters, type RegisteredModel } from '../../chains/evm/deploy.ts'
import { openLocalPools } from '../../chains/evm/nodes.ts'
import { decodedRevertOf } from '../../chains/evm/plugin/rejections.ts'
import { LOCAL_CHAINS, startLocalChain } from '../../chains/local.ts'

export type TestChain = {
  anvil: AnvilInstance
  /** Deploys and owns the contracts; registers models. */
  owner: SertnClient
  /** The node: in the demo model's pool, and so assigned its requests (the only node there). */
  node: SertnClient
  /** A dApp user. */
  user: SertnClient
  /** An account with no role. */
  stranger: SertnClient
  core: CoreDeployment
  demo: RegisteredModel
  stop(): Promise<void>
}

/**
 * Starts anvil (a local hub chain), deploys the core contracts, registers the demo model, and has
 * `node` join its pool (mined to the epoch where it is active).
 */
export async function startTestChain(params: DeployCoreParameters = {}): Promise<TestChain> {
  const { anvil, owner, node, user, stranger } = await startLocalChain(LOCAL_CHAINS.hub)
  try {
    const core = await deployCore(owner, { allowInsecureSrs: true, ...params })
    const demo = await registerModel(owner, { registry: core.registry, model: 'sertn-mlp-demo', allowInsecureSrs: true })
    await openLocalPools(owner, core.nodeRegistry, { models: [demo.modelId], nodes: [node] })
    return { anvil, owner, node, user, stranger, core, demo, stop: () => anvil.stop() }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/**
 * The custom error a failed contract call reverted with: its name and arguments (decoded with the
 * called contract's ABI, or else with every Sertn contract's errors: a revert bubbled up from a
 * nested call, such as the node registry's refusal of a node the job is not assigned to).
 */
export function revertOf(err: unknown): { errorName: string; args: readonly unknown[] } | undefined {
  return decodedRevertOf(err)
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

/** Has the test chain's node join the pools of `models` (registered since) and mines to the epoch where it serves them. */
export async function joinPools(t: Pick<TestChain, 'owner' | 'node' | 'core'>, models: readonly Hex[]): Promise<void> {
  await openLocalPools(t.owner, t.core.nodeRegistry, { models, nodes: [t.node] })
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
