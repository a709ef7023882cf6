/**
 * The balance alarm on a real anvil: balances exported per chain, role and address; one warning
 * when an account falls below `balanceAlarmEth` (`sertn_account_balance_low` 1), one info line when
 * it is topped up (0), and again at the next crossing; the loop reads every interval until aborted.
 */
import { parseEther, toHex, type Address } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { startBalanceMonitor } from '../../chains/evm/plugin/balance.ts'
import { metrics } from '../../core/metrics.ts'
import { captureLogs } from '../support/logs.ts'
import { waitUntil } from '../support/chain.ts'

let anvil: AnvilInstance
let logs: ReturnType<typeof captureLogs>
const node = anvilAccount(5).address
const relayer = anvilAccount(6).address

beforeAll(async () => {
  anvil = await startAnvil()
  logs = captureLogs()
})

afterAll(async () => {
  logs?.restore()
  await anvil?.stop()
})

const setBalance = (address: Address, eth: string) =>
  fetch(anvil.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'anvil_setBalance', params: [address, toHex(parseEther(eth))] }),
  }).then((r) => r.json())
const gauge = async (g: typeof metrics.balanceWei, chain: string, address: Address) =>
  (await g.get()).values.find((v) => v.labels.chain === chain && v.labels.address === address)?.value
const balanceLines = (from: number) => logs.lines.slice(from).filter((l) => l.component === 'balance')

describe('balance alarm', () => {
  test('behavior: one warning per crossing below balanceAlarmEth, one info line when topped up; an account on a chain without an alarm is only exported', async () => {
    const signal = new AbortController()
    const monitor = startBalanceMonitor({
      chains: { balance: { chainId: anvil.chain.id, rpcUrl: anvil.rpcUrl, balanceAlarmEth: 1 } },
      accounts: [
        { role: 'node', address: node },
        { role: 'relayer', address: relayer },
      ],
      intervalMs: 60_000,
      signal: signal.signal,
    })
    await monitor.check()
    const from = logs.lines.length
    expect(await gauge(metrics.balanceWei, 'balance', node)).toBe(Number(parseEther('10000')))
    expect(await gauge(metrics.balanceLow, 'balance', node)).toBe(0)

    await setBalance(node, '0.5')
    await monitor.check()
    await monitor.check()
    expect(await gauge(metrics.balanceWei, 'balance', node)).toBe(Number(parseEther('0.5')))
    expect(await gauge(metrics.balanceLow, 'balance', node)).toBe(1)
    expect(await gauge(metrics.balanceLow, 'balance', relayer)).toBe(0)
    let logged = balanceLines(from)
    expect(logged).toHaveLength(1)
    expect(logged[0]).toMatchObject({ level: 40, chain: 'balance', role: 'node', address: node, balanceEth: '0.5', balanceAlarmEth: 1 })

    await setBalance(node, '2')
    await monitor.check()
    await monitor.check()
    expect(await gauge(metrics.balanceLow, 'balance', node)).toBe(0)
    logged = balanceLines(from)
    expect(logged).toHaveLength(2)
    expect(logged[1]).toMatchObject({ level: 30, role: 'node', address: node, balanceEth: '2' })

    await setBalance(node, '0.1')
    await monitor.check()
    logged = balanceLines(from)
    expect(logged).toHaveLength(3)
    expect(logged[2]).toMatchObject({ level: 40, balanceEth: '0.1' })
    signal.abort()
    await monitor.done
  }, 60_000)

  test('behavior: the loop reads every interval until its signal aborts', async () => {
    const signal = new AbortController()
    await setBalance(relayer, '3')
    const monitor = startBalanceMonitor({
      chains: { loop: { chainId: anvil.chain.id, rpcUrl: anvil.rpcUrl } },
      accounts: [{ role: 'relayer', address: relayer }],
      intervalMs: 50,
      signal: signal.signal,
    })
    await waitUntil('the first read', async () => (await gauge(metrics.balanceWei, 'loop', relayer)) === Number(parseEther('3')))
    await setBalance(relayer, '4')
    await waitUntil('a later read', async () => (await gauge(metrics.balanceWei, 'loop', relayer)) === Number(parseEther('4')))
    expect(await gauge(metrics.balanceLow, 'loop', relayer)).toBeUndefined()
    signal.abort()
    await monitor.done
  }, 60_000)
})
