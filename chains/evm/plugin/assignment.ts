/**
 * A node's view of the hub's job book (NodeRegistry): which node a request is assigned to and
 * until when, and moving a stuck job on (reassigning it once its window has passed, assigning it
 * once capacity frees). Shared by the chain plugin (the hub gateway's requests: the gateway is the
 * job's market) and the market plugin (spoke requests: the market is). The node registry's address
 * is read once from the market's `nodes()`.
 */
import { encodeFunctionData, getAddress, zeroAddress, type Account, type Address } from 'viem'
import { InferenceGateway, NodeRegistry } from '../../../contracts/artifacts/index.ts'
import { PluginError } from '../../../core/errors.ts'
import { JOB_STATES, type Assignment, type AssignmentStep, type JobBook } from '../../../core/plugins.ts'
import { transient } from './errors.ts'
import { revertOrThrow } from './rejections.ts'
import { sendAndWait, type EvmConnection } from './connection.ts'
import { recordGas } from './gas-metrics.ts'

/** The job book of one market (a gateway or the hub market), as `account` sees it. */
export function jobBook(o: {
  conn: EvmConnection
  /** The contract whose requests are the jobs (its `nodes()` names the node registry). */
  market: Address
  account: Account
  pluginId: string
  /** The chain's configured name (gas metrics). */
  chainName?: string
  pollingIntervalMs: number
  receiptTimeoutMs?: number
}): JobBook {
  const { publicClient } = o.conn
  let registry: Promise<Address> | undefined
  const nodeRegistry = () => {
    registry ??= (async () => {
      // `nodes()` has the same signature on the gateway and the market.
      const a = await publicClient.readContract({ address: o.market, abi: InferenceGateway.abi, functionName: 'nodes' })
      if (a === zeroAddress) throw new PluginError(o.pluginId, `${o.market} has no node registry: nobody is assigned its requests`)
      return getAddress(a)
    })().catch((err) => {
      registry = undefined
      throw err instanceof PluginError ? err : transient(`${o.pluginId}: reading the node registry of ${o.market}`, err)
    })
    return registry
  }

  async function getAssignment(id: string): Promise<Assignment> {
    const address = await nodeRegistry()
    try {
      const j = await publicClient.readContract({ address, abi: NodeRegistry.abi, functionName: 'jobOf', args: [o.market, BigInt(id)] })
      const node = j.node === zeroAddress ? undefined : getAddress(j.node)
      return {
        state: JOB_STATES[j.state] ?? 'None',
        ...(node ? { node } : {}),
        mine: node !== undefined && node === getAddress(o.account.address),
        windowEnd: Number(j.windowEnd),
        deadline: Number(j.deadline),
        misses: j.misses,
      }
    } catch (err) {
      throw transient(`${o.pluginId}: reading the assignment of request ${id}`, err)
    }
  }

  /**
   * Reassigns the job if its window has passed, or assigns it if it is queued; 'unchanged' when
   * the chain says there is nothing to do now (the window is open, no node has capacity, another
   * node moved it first). The call is simulated first, so nothing is sent in vain.
   */
  async function advanceAssignment(id: string): Promise<AssignmentStep> {
    const address = await nodeRegistry()
    const current = await getAssignment(id)
    const functionName = current.state === 'Assigned' ? 'reassign' : current.state === 'Queued' ? 'assignQueued' : undefined
    if (!functionName) return 'unchanged'
    const what = `${functionName} ${o.market}/${id}`
    const call = { address, abi: NodeRegistry.abi, functionName, args: [o.market, BigInt(id)], account: o.account } as const
    let gas: bigint
    try {
      // On the pending block: its timestamp is now, where the window's end is checked (the latest
      // block of a quiet chain can be older than the window).
      await publicClient.simulateContract({ ...call, blockTag: 'pending' } as never)
      gas = await publicClient.estimateContractGas({ ...call, blockTag: 'pending' } as never)
    } catch (err) {
      revertOrThrow(what, err) // RPC trouble throws (retryable); a revert means: not now
      return 'unchanged'
    }
    const sent = await sendAndWait(
      o.conn,
      // The draw walks the pool: leave room for a pool that changed since the estimate.
      { to: address, data: encodeFunctionData(call as never), gas: gas + gas / 2n },
      { what, pollingIntervalMs: o.pollingIntervalMs, receiptTimeoutMs: o.receiptTimeoutMs },
    )
    if (o.chainName !== undefined) recordGas(o.chainName, functionName, sent.receipt)
    if (sent.receipt.status !== 'success') return 'unchanged' // someone moved it between our simulation and our transaction
    return functionName === 'reassign' ? 'reassigned' : 'assigned'
  }

  return { getAssignment, advanceAssignment }
}
