/**
 * A transaction that a reorg drops for good must not stall the account's sender. Found by the
 * hour-long chaos soak: after a hub reorg dropped one transaction, one operator's hub transactions
 * all timed out waiting for confirmation until the end of the run. The sender forgot a transaction
 * once the account's nonce passed it; the reorg rolled the nonce back, nobody sent that transaction
 * again, and every later one waited in the pool behind the gap. (Without the sender's nonce watch,
 * the first test fails with "Timed out while waiting for transaction".)
 *
 * On a bare anvil, `anvil_reorg` replaces blocks with empty ones: their transactions are gone, not
 * back in the pool, as when a mempool evicts them.
 */
import type { Hex } from 'viem'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { anvilRpc, startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { AccountSender, type SenderOptions } from '../../chains/evm/plugin/sender.ts'
import { metrics } from '../../core/metrics.ts'
import { waitUntil } from '../support/chain.ts'

let anvil: AnvilInstance
let client: SertnClient
const to = anvilAccount(2).address

beforeEach(async () => {
  anvil = await startAnvil()
  client = createSertnClient(anvil.chain, anvilAccount(1))
})
afterEach(async () => {
  await anvil?.stop()
})

const sender = (o: SenderOptions = {}) => new AccountSender(client as never, client as never, { watchMs: 200, ...o })
const nonceOf = () => client.getTransactionCount({ address: client.account.address })
const gaps = async (how: string) =>
  (await metrics.nonceGaps.get()).values.find((v) => v.labels.chain === anvil.chain.name && v.labels.how === how)?.value ?? 0
/** The first of `hashes` mined on the chain now, with its receipt and transaction. */
async function minedOf(hashes: Hex[]) {
  for (const hash of hashes) {
    const receipt = await client.getTransactionReceipt({ hash }).catch(() => undefined)
    if (receipt) return { hash, receipt, tx: await client.getTransaction({ hash }) }
  }
  return undefined
}

test('behavior: a mined transaction that a reorg dropped is sent again, and a transaction sent after it is mined', async () => {
  const s = sender()
  const resentBefore = await gaps('resent')
  const { hash: first, receipt: a } = await s.sendAndWait({ to, data: '0x', gas: 21_000n, value: 1n })
  expect(a.status).toBe('success')
  expect(s.keptCount).toBe(1)
  // The block holding it replaced by an empty one: the transaction is gone, the nonce back to 0.
  await anvilRpc(client, 'anvil_reorg', [1, []])
  expect(await nonceOf()).toBe(0)
  expect(await client.getTransactionReceipt({ hash: first }).catch(() => undefined)).toBeUndefined()

  const { receipt: b } = await s.sendAndWait({ to, data: '0x', gas: 21_000n, value: 2n }, { timeoutMs: 20_000 })
  expect(b.status).toBe('success')
  // The first transaction is on the chain again, as it was signed (same hash), before the second.
  const again = await minedOf([first])
  expect(again?.receipt.status).toBe('success')
  expect(again?.tx.value).toBe(1n)
  expect(again!.receipt.blockNumber <= b.blockNumber).toBe(true)
  expect(await nonceOf()).toBe(2)
  expect(s.gapsFilled).toBe(1)
  expect(await gaps('resent')).toBe(resentBefore + 1)
}, 60_000)

test('behavior: a free nonce below a transaction in flight, sent by another process and dropped, is filled with an empty transfer to self', async () => {
  // Another process (this worker before a restart) sent the account's nonce 0; it was mined.
  const other = await client.sendTransaction({ to, value: 1n, nonce: 0 })
  await client.waitForTransactionReceipt({ hash: other })
  const filledBefore = await gaps('filled')
  // The new sender reads the account's nonce (1) and sends; the block is not mined yet.
  await anvilRpc(client, 'evm_setAutomine', [false])
  // anvil's miner drops a pooled transaction whose nonce is ahead of the account (a node's pool would
  // queue it): the sender's replacement of transactions not mined sends it again, after 1 s here.
  const s = sender({ fees: { replaceAfterMs: 1_000, bumpPercent: 25 } })
  const hash = await s.send({ to, data: '0x', gas: 21_000n, value: 2n })
  // The other process's transaction is dropped by a reorg: nonce 0 is free, and this sender holds no copy.
  await anvilRpc(client, 'anvil_reorg', [1, []])
  await anvilRpc(client, 'evm_setIntervalMining', [1])
  expect(await nonceOf()).toBe(0)

  const { receipt } = await s.wait(hash, { timeoutMs: 20_000 })
  expect(receipt.status).toBe('success')
  expect(await nonceOf()).toBe(2)
  const filler = (
    await Promise.all(
      Array.from({ length: Number(receipt.blockNumber) }, (_, i) =>
        client.getBlock({ blockNumber: BigInt(i + 1), includeTransactions: true }),
      ),
    )
  )
    .flatMap((b) => b.transactions)
    .find((t) => t.nonce === 0 && t.from.toLowerCase() === client.account.address.toLowerCase())
  expect(filler).toMatchObject({ to: client.account.address.toLowerCase(), value: 0n, input: '0x' })
  // The transaction in flight (or its replacement: anvil dropped it, see above) is the one at nonce 1.
  expect(await client.getTransaction({ hash: receipt.transactionHash })).toMatchObject({ nonce: 1, value: 2n })
  expect(s.gapsFilled).toBe(1)
  expect(await gaps('filled')).toBe(filledBefore + 1)
}, 60_000)

test('behavior: a mined transaction is let go once it is reorgDepth blocks deep, and the watch stops', async () => {
  const s = sender({ reorgDepth: 3 })
  await s.sendAndWait({ to, data: '0x', gas: 21_000n, value: 1n })
  expect(s.keptCount).toBe(1)
  await anvilRpc(client, 'anvil_mine', ['0x2'])
  // Two blocks above it: still kept (a reorg of 3 blocks could drop it).
  await new Promise((r) => setTimeout(r, 600))
  expect(s.keptCount).toBe(1)
  await anvilRpc(client, 'anvil_mine', ['0x1'])
  await waitUntil('the transaction let go', () => s.keptCount === 0, 5_000)
  expect(s.gapsFilled).toBe(0)
}, 60_000)
