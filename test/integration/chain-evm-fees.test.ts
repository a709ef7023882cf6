/**
 * The account send queue's fee cap and replacement of stuck transactions, on a real anvil with
 * automine off: a transaction whose fee fell below the base fee is sent again with the same nonce
 * and a higher fee and mined once (the caller gets the mined transaction's receipt); a replacement
 * never goes above `fees.maxFeePerGasGwei`, and at the cap the sender waits with one warning.
 */
import { parseGwei, toHex, type Hex } from 'viem'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { connectEvm, sendAndWait, type EvmConnection } from '../../chains/evm/plugin/connection.ts'
import type { FeePolicy } from '../../chains/evm/plugin/sender.ts'
import { metrics } from '../../core/metrics.ts'
import { captureLogs } from '../support/logs.ts'
import { waitUntil } from '../support/chain.ts'

let anvil: AnvilInstance
let admin: SertnClient
let logs: ReturnType<typeof captureLogs>

beforeAll(async () => {
  anvil = await startAnvil()
  admin = createSertnClient(anvil.chain, anvilAccount(0), { rpcUrl: anvil.rpcUrl })
  logs = captureLogs()
})

afterEach(async () => {
  await rpc('evm_setAutomine', [true])
})

afterAll(async () => {
  logs?.restore()
  await anvil?.stop()
})

const rpc = (method: string, params: unknown[]) => admin.request({ method: method as never, params: params as never })
const gwei = (n: string) => parseGwei(n)
const replacedCount = async (chain: string) =>
  (await metrics.transactionsReplaced.get()).values.find((v) => v.labels.chain === chain)?.value ?? 0
const pending = async () => Number(((await rpc('txpool_status', [])) as { pending: Hex }).pending)

/** A connection of anvil account `index` (its own send queue) with fee policy `fees`, on chain label `chainName`. */
function connect(index: number, chainName: string, fees: FeePolicy): EvmConnection {
  return connectEvm({ chainName, chainId: anvil.chain.id, rpcUrl: anvil.rpcUrl, account: anvilAccount(index), pollingIntervalMs: 20, fees })
}

/** A base fee of `fee` from the next block on, and that block mined. */
async function setBaseFee(fee: bigint) {
  await rpc('anvil_setNextBlockBaseFeePerGas', [toHex(fee)])
  await rpc('evm_mine', [])
}

describe('replacement', () => {
  test('behavior: a transaction left under the base fee is sent again with a higher fee and mined once', async () => {
    await setBaseFee(gwei('1'))
    await rpc('evm_setAutomine', [false])
    const conn = connect(2, 'fees-stuck', { replaceAfterMs: 1_000, bumpPercent: 25 })
    const from = conn.walletClient.account.address
    const nonce = await admin.getTransactionCount({ address: from })
    const before = await replacedCount('fees-stuck')
    const to = anvilAccount(9).address
    const sent = sendAndWait(conn, { to, data: '0x', gas: 21_000n, value: 1n }, { what: 'a transfer', pollingIntervalMs: 20 })
    await waitUntil('the first transaction in the pool', async () => conn.sender.submitted === 1 && (await pending()) === 1)
    const [first] = Object.values(((await rpc('txpool_content', [])) as { pending: Record<string, Record<string, { hash: Hex }>> }).pending)
      .flatMap((byNonce) => Object.values(byNonce))
      .map((t) => t.hash)
    // The base fee jumps far above what the transaction offers: the next block leaves it out.
    await setBaseFee(gwei('100'))
    expect(await admin.getTransactionCount({ address: from })).toBe(nonce)
    await waitUntil('the replacement', () => conn.sender.replaced === 1, 10_000)
    await rpc('evm_mine', [])
    const { hash, receipt } = await sent

    expect(receipt.status).toBe('success')
    expect(hash).not.toBe(first)
    expect(receipt.transactionHash).toBe(hash)
    const mined = await admin.getTransaction({ hash })
    expect(mined.nonce).toBe(nonce)
    expect(mined.maxFeePerGas! >= gwei('100')).toBe(true)
    // The nonce was used once: one transaction of the account on chain, the first one never mined.
    expect(await admin.getTransactionCount({ address: from })).toBe(nonce + 1)
    await expect(admin.getTransactionReceipt({ hash: first! })).rejects.toThrow(/could not be found/)
    expect(await replacedCount('fees-stuck')).toBe(before + 1)
    expect(conn.sender.replaced).toBe(1)
  }, 60_000)

  test('behavior: replacements stop at fees.maxFeePerGasGwei, with one warning, and the transaction is mined at the cap', async () => {
    await setBaseFee(gwei('1'))
    await rpc('evm_setAutomine', [false])
    const cap = gwei('2.5')
    const conn = connect(3, 'fees-cap', { maxFeePerGas: cap, replaceAfterMs: 200, bumpPercent: 25 })
    const from = conn.walletClient.account.address
    const logged = logs.lines.length
    const sent = sendAndWait(
      conn,
      { to: anvilAccount(9).address, data: '0x', gas: 21_000n, value: 1n },
      { what: 'a transfer', pollingIntervalMs: 20 },
    )
    // 2.2 gwei first (1.2 × base fee + 1 gwei tip), then 2.5 (25% more would be 2.75), then no more.
    await waitUntil('a warning at the cap', () => logs.lines.slice(logged).some((l) => l.setting === 'fees.maxFeePerGasGwei'), 10_000)
    await new Promise((r) => setTimeout(r, 1_000)) // five more checks at the cap
    const warnings = logs.lines.slice(logged).filter((l) => l.setting === 'fees.maxFeePerGasGwei')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ level: 40, component: 'sender', chain: 'fees-cap' })
    expect(conn.sender.replaced).toBe(1)
    expect(await replacedCount('fees-cap')).toBe(1)
    await rpc('evm_mine', [])
    const { hash, receipt } = await sent
    expect(receipt.status).toBe('success')
    const mined = await admin.getTransaction({ hash })
    expect(mined.maxFeePerGas).toBe(cap)
    expect(await admin.getTransactionCount({ address: from })).toBe(mined.nonce + 1)
  }, 60_000)

  test('behavior: a first send is held to the cap', async () => {
    await setBaseFee(gwei('1'))
    const cap = gwei('1.5')
    const conn = connect(4, 'fees-first', { maxFeePerGas: cap, replaceAfterMs: 60_000, bumpPercent: 25 })
    const { hash, receipt } = await sendAndWait(
      conn,
      { to: anvilAccount(9).address, data: '0x', gas: 21_000n },
      { what: 'a transfer', pollingIntervalMs: 20 },
    )
    expect(receipt.status).toBe('success')
    const mined = await admin.getTransaction({ hash })
    expect(mined.maxFeePerGas).toBe(cap)
    expect(mined.maxPriorityFeePerGas! <= cap).toBe(true)
  }, 60_000)

  test('fault: a transaction whose RPC is gone for good (its chain shut down) is no longer watched after 5 failed checks, with one warning', async () => {
    const gone = await startAnvil()
    try {
      const local = createSertnClient(gone.chain, anvilAccount(0), { rpcUrl: gone.rpcUrl })
      await local.request({ method: 'evm_setAutomine' as never, params: [false] as never })
      const conn = connectEvm({
        chainName: 'fees-gone',
        chainId: gone.chain.id,
        rpcUrl: gone.rpcUrl,
        account: anvilAccount(5),
        pollingIntervalMs: 20,
        fees: { replaceAfterMs: 100, bumpPercent: 25 },
      })
      const logged = logs.lines.length
      const sent = sendAndWait(
        conn,
        { to: anvilAccount(9).address, data: '0x', gas: 21_000n, value: 1n },
        { what: 'a transfer', pollingIntervalMs: 20, receiptTimeoutMs: 2_000 },
      ).catch((err: unknown) => err)
      await waitUntil('the transaction sent', () => conn.sender.submitted === 1 && conn.sender.tracked === 1)
      await gone.stop()
      await waitUntil('the transaction no longer watched', () => conn.sender.tracked === 0, 10_000)
      const stopped = logs.lines.slice(logged).filter((l) => String(l.msg).startsWith('stopped watching a transaction'))
      expect(stopped).toHaveLength(1)
      expect(stopped[0]).toMatchObject({ level: 40, chain: 'fees-gone', checks: 5 })
      await sent
    } finally {
      await gone.stop()
    }
  }, 60_000)
})
