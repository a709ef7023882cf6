/**
 * The balance alarm: reads each signing account's balance on each chain every interval, exports it
 * (`sertn_account_balance_wei{chain, role, address}`), and, on a chain with `balanceAlarmEth`, warns
 * once when an account falls below it (`sertn_account_balance_low` 1) and says so once it is topped
 * up again (back to 0). A failed read is logged and tried at the next interval; nothing else changes.
 *
 * @example
 * // In the chain-io worker, beside the watchers:
 * const monitor = startBalanceMonitor({ chains: config.chains, accounts: [{ role: 'node', address }], signal })
 * await monitor.done
 */
import { createPublicClient, formatEther, getAddress, parseEther, type Address, type Chain, type PublicClient, type Transport } from 'viem'
import { componentLogger } from '../../../core/log.ts'
import { metrics } from '../../../core/metrics.ts'
import { evmChainOf } from '../chain.ts'
import { sertnTransport } from '../clients.ts'

/** A chain as the monitor needs it: a chain's configuration section (`chainId`, `rpcUrl`, `fallbackRpcUrls`, `balanceAlarmEth`). */
export type BalanceMonitorChain = {
  chainId: number
  rpcUrl: string
  fallbackRpcUrls?: readonly string[]
  /** Warn below this many ether; no alarm when absent. */
  balanceAlarmEth?: number | undefined
}

/** An account the process signs with, and its role (`node`, `relayer`, `validator`: the metrics' `role` label). */
export type BalanceMonitorAccount = {
  role: string
  address: Address
  /** The chains (configured names) it signs on. Default: every chain. */
  chains?: readonly string[]
}

export type BalanceMonitorParameters = {
  /** The chains by configured name (the configuration's `chains`). */
  chains: Readonly<Record<string, BalanceMonitorChain>>
  accounts: readonly BalanceMonitorAccount[]
  /** Between two rounds of reads. Default 60 000 ms. */
  intervalMs?: number
  /** Stops the loop. */
  signal: AbortSignal
}

export type BalanceMonitor = {
  /** Reads every balance once now (the loop also does, every interval); resolves when done. */
  check(): Promise<void>
  /** Settles when the loop has stopped (after `signal` aborted). */
  done: Promise<void>
}

/** Starts the loop: a first round at once, then one every `intervalMs`, until `signal` aborts. */
export function startBalanceMonitor(p: BalanceMonitorParameters): BalanceMonitor {
  const log = componentLogger('balance')
  const intervalMs = p.intervalMs ?? 60_000
  const clients = new Map<string, Pick<PublicClient<Transport, Chain>, 'getBalance'>>()
  const clientOf = (name: string, c: BalanceMonitorChain) => {
    let client = clients.get(name)
    if (!client) {
      client = createPublicClient({
        chain: evmChainOf(c.chainId, name, c.rpcUrl),
        transport: sertnTransport([c.rpcUrl, ...(c.fallbackRpcUrls ?? [])], name),
      })
      clients.set(name, client)
    }
    return client
  }
  /** Accounts below their chain's alarm, by `chain|address`. */
  const low = new Set<string>()

  async function checkOne(name: string, c: BalanceMonitorChain, a: BalanceMonitorAccount) {
    const address = getAddress(a.address)
    const labels = { chain: name, role: a.role, address }
    let balance: bigint
    try {
      balance = await clientOf(name, c).getBalance({ address })
    } catch (err) {
      log.warn({ err, ...labels }, 'reading the balance failed; trying again at the next interval')
      return
    }
    metrics.balanceWei.set(labels, Number(balance))
    if (c.balanceAlarmEth === undefined) return
    const alarm = parseEther(String(c.balanceAlarmEth))
    const key = `${name}|${address}`
    const fields = { ...labels, balanceEth: formatEther(balance), balanceAlarmEth: c.balanceAlarmEth }
    if (balance < alarm) {
      metrics.balanceLow.set(labels, 1)
      if (!low.has(key)) {
        low.add(key)
        log.warn(fields, `the ${a.role} account holds less than balanceAlarmEth on ${name}: top it up, or its transactions will stop`)
      }
    } else {
      metrics.balanceLow.set(labels, 0)
      if (low.delete(key)) log.info(fields, `the ${a.role} account on ${name} is topped up`)
    }
  }

  async function check() {
    const reads: Promise<void>[] = []
    for (const [name, c] of Object.entries(p.chains))
      for (const a of p.accounts) if (!a.chains || a.chains.includes(name)) reads.push(checkOne(name, c, a))
    await Promise.all(reads)
  }

  const done = (async () => {
    while (!p.signal.aborted) {
      await check()
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, intervalMs)
        function finish() {
          clearTimeout(timer)
          p.signal.removeEventListener('abort', finish)
          resolve()
        }
        p.signal.addEventListener('abort', finish, { once: true })
      })
    }
  })()
  return { check, done }
}
