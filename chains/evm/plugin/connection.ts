/** What the EVM plugins share: one chain's clients and the account's send queue, and call joining. */
import { createPublicClient, createWalletClient, defineChain, http, type Account, type Chain, type HttpTransport, type PublicClient, type WalletClient } from 'viem'
import { AccountSender, accountSender } from './sender.ts'

export type EvmConnection = {
  chain: Chain
  publicClient: PublicClient<HttpTransport, Chain>
  walletClient: WalletClient<HttpTransport, Chain, Account>
  /** The process-wide send queue of `account` on this chain (shared by every plugin using the account). */
  sender: AccountSender
}

/** Clients for `rpcUrl` (chain `chainId`, named `chainName`) acting as `account`. */
export function connectEvm(o: { chainName: string; chainId: number; rpcUrl: string; account: Account; pollingIntervalMs: number }): EvmConnection {
  const chain = defineChain({
    id: o.chainId,
    name: o.chainName,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [o.rpcUrl] } },
  })
  const transport = http(o.rpcUrl)
  const publicClient = createPublicClient({ chain, transport, pollingInterval: o.pollingIntervalMs })
  const walletClient = createWalletClient({ chain, transport, account: o.account, pollingInterval: o.pollingIntervalMs })
  const sender = accountSender({ chainId: o.chainId, rpcUrl: o.rpcUrl, address: o.account.address }, () => new AccountSender(publicClient, walletClient))
  return { chain, publicClient, walletClient, sender }
}

/** Runs `run` for `key` unless a call for the same key is in flight, which is then joined. */
export function joinInflight<T>(): (key: string, run: () => Promise<T>) => Promise<T> {
  const inflight = new Map<string, Promise<T>>()
  return (key, run) => {
    const running = inflight.get(key)
    if (running) return running
    const p = run().finally(() => inflight.delete(key))
    inflight.set(key, p)
    return p
  }
}
