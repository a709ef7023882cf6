/**
 * How the local LayerZero agents send a transaction and wait for it: under the lock of their
 * account on the chain, and for that transaction's own receipt. viem's `waitForTransactionReceipt`
 * resolves with a replacement's receipt when another transaction of the account took the nonce;
 * an agent that read it as its own would take a packet for delivered that never was. A replacement
 * with other data is an error here (the packet is tried again); a repriced copy of the same call
 * counts as the transaction.
 */
import type { Hex, TransactionReceipt } from 'viem'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { TransactionReplacedError } from './errors.ts'
import type { SerialLock } from './loop.ts'

export type SentTransaction = { receipt: TransactionReceipt; inclusionMs: number }

/** Runs `send` under `lock`, waits for the receipt of the transaction it sent, and times its inclusion. */
export function sendAndWait(
  client: Pick<SertnClient, 'waitForTransactionReceipt'>,
  lock: SerialLock,
  send: () => Promise<Hex>,
): Promise<SentTransaction> {
  return lock(async () => {
    const started = performance.now()
    const hash = await send()
    let replaced: { reason: string; by: Hex } | undefined
    const receipt = await client.waitForTransactionReceipt({
      hash,
      onReplaced: (r) => {
        replaced = { reason: r.reason, by: r.transaction.hash }
      },
    })
    if (replaced && replaced.reason !== 'repriced') throw new TransactionReplacedError(hash, replaced.by, replaced.reason)
    return { receipt, inclusionMs: Math.round(performance.now() - started) }
  })
}
