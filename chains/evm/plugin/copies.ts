/**
 * Fan-out copies as an EVM chain shows them: the `InferenceCopied` or `CopyRejected` event of the
 * contract that delivers copies there (a spoke's gateway, or the hub's market). Shared by the
 * chain and market plugins.
 */
import { getAbiItem, type Address, type PublicClient } from 'viem'
import { SpokeGateway } from '../../../contracts/artifacts/index.ts'
import type { CopyArrival } from '../../../core/plugins.ts'
import { CALLBACK_STATUSES, type ChainId, type Hex, type RequestId } from '../../../core/types.ts'
import { addressAsBytes32 } from '../crosschain.ts'
import { transient } from './errors.ts'

const COPIED = getAbiItem({ abi: SpokeGateway.abi, name: 'InferenceCopied' })
const REJECTED = getAbiItem({ abi: SpokeGateway.abi, name: 'CopyRejected' })

/** Finds (and caches) copies arriving at one contract. */
export function copyFinder(publicClient: PublicClient, at: Address, what: string) {
  const found = new Map<string, CopyArrival>()
  return async function findCopy(
    origin: ChainId,
    gateway: Address,
    requestId: RequestId,
    fromBlock?: string,
  ): Promise<CopyArrival | undefined> {
    const key = `${origin}:${gateway.toLowerCase()}:${requestId}`
    const known = found.get(key)
    if (known) return known
    try {
      const range = {
        address: at,
        args: { origin, requestId: BigInt(requestId) },
        fromBlock: fromBlock ? BigInt(fromBlock) : 0n,
        toBlock: 'latest' as const,
        strict: true as const,
      }
      const from = addressAsBytes32(gateway).toLowerCase()
      const [copied, rejected] = await Promise.all([
        publicClient.getLogs({ ...range, event: COPIED }),
        publicClient.getLogs({ ...range, event: REJECTED }),
      ])
      const c = copied.find((l) => l.args.gateway.toLowerCase() === from)
      const r = rejected.find((l) => l.args.gateway.toLowerCase() === from)
      const log = c ?? r
      if (!log) return undefined
      const receipt = await publicClient.getTransactionReceipt({ hash: log.transactionHash })
      const arrival: CopyArrival = {
        status: c ? 'Copied' : 'Rejected',
        transactionHash: log.transactionHash,
        blockNumber: log.blockNumber.toString(),
        gasUsed: receipt.gasUsed.toString(),
        ...(c ? { callback: CALLBACK_STATUSES[c.args.callbackStatus] ?? 'Failed' } : {}),
        ...(r && !c ? { error: r.args.error as Hex } : {}),
        observedAt: Date.now(),
      }
      found.set(key, arrival)
      return arrival
    } catch (err) {
      throw transient(`${what}: looking for the copy of request ${requestId} of ${gateway} on chain ${origin}`, err)
    }
  }
}
