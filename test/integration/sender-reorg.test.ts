/**
 * A node transaction that a reorg drops for good must not stall the account's sender. Found by the
 * hour-long chaos soak: after a hub reorg dropped one transaction, one operator's hub transactions
 * all timed out waiting for confirmation until the end of the run. The sender forgets a transaction
 * once the account's nonce passes it; the reorg rolls the nonce back, nobody sends that transaction
 * again, and every later one waits behind the gap.
 *
 * Skipped until the sender is fixed (issue 15's open defect). Run without the skip, it fails today with
 * "Timed out while waiting for transaction".
 */
import { expect, test } from 'vitest'
import { anvilRpc, startAnvil } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient } from '../../chains/evm/clients.ts'
import { AccountSender } from '../../chains/evm/plugin/sender.ts'

test.skip('skipped until the sender fills a nonce gap left by a reorg: a transaction sent after a reorg dropped an earlier one is mined', async () => {
  const anvil = await startAnvil()
  try {
    const client = createSertnClient(anvil.chain, anvilAccount(1))
    const sender = new AccountSender(client as never, client as never)
    const to = anvilAccount(2).address
    const { receipt: first } = await sender.sendAndWait({ to, data: '0x', gas: 21_000n, value: 1n })
    expect(first.status).toBe('success')
    // The block holding it replaced by an empty one: the transaction is gone, the nonce back to 0.
    await anvilRpc(client, 'anvil_reorg', [1, []])
    expect(await client.getTransactionCount({ address: client.account.address })).toBe(0)
    const { receipt } = await sender.sendAndWait({ to, data: '0x', gas: 21_000n, value: 2n }, { timeoutMs: 20_000 })
    expect(receipt.status).toBe('success')
  } finally {
    await anvil.stop()
  }
}, 60_000)
