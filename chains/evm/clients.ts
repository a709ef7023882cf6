/**
 * viem clients for an EVM chain, one wallet client per account, extended with public actions: the
 * one place Sertn builds its RPC transport.
 *
 * A chain with fallback RPC URLs gets viem's `fallback` transport: each request goes to the primary
 * first and, when it fails (a refused connection fails at once; a hung endpoint after `timeoutMs`),
 * to the next URL. Requests a fallback answered count in `sertn_rpc_failovers_total{chain}`. The
 * transports are not ranked: viem's ranking polls every endpoint for the life of the process.
 */
import {
  createWalletClient,
  fallback,
  http,
  publicActions,
  type Account,
  toHex,
  type Chain,
  type Hex,
  type PublicActions,
  type Transport,
  type WalletClient,
} from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { metrics } from '../../core/metrics.ts'
import { ANVIL_MNEMONIC } from '../anvil.ts'
import type { FeePolicy } from './plugin/sender.ts'

/** What Sertn keeps on its clients: the primary RPC URL (the key of the account's send queue) and the chain's fee policy. */
export type SertnClientExtras = {
  /** The primary RPC URL. */
  readonly rpcUrl?: string
  /** How this client's account pays for and replaces its transactions (see `clientSender`). */
  readonly feePolicy?: FeePolicy
}

export type SertnClient = WalletClient<Transport, Chain, Account> & PublicActions<Transport, Chain, Account> & SertnClientExtras

export type SertnTransportParameters = {
  /** The chain's configured name: the `chain` label of the failover metric. Default: `chain.name`. */
  chainName?: string
  /** Per-request timeout of each endpoint (ms). Default 10 000 (viem's). */
  timeoutMs?: number
}

/**
 * The transport for `urls` (the primary first, then the fallbacks): plain `http` for one URL,
 * viem's `fallback` over them for more, counting requests answered by a fallback.
 */
export function sertnTransport(urls: readonly string[], chainName: string, o: SertnTransportParameters = {}): Transport {
  const unique = [...new Set(urls)]
  const [primary] = unique
  if (!primary) throw new Error('sertnTransport: no RPC URL')
  const one = (url: string) => http(url, { retryCount: 0, ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}) })
  if (unique.length === 1) return one(primary)
  const inner = fallback(unique.map(one), { retryCount: 0 })
  const label = o.chainName ?? chainName
  return (params) => {
    const t = inner(params)
    t.value?.onResponse((r) => {
      if (r.status === 'success' && (r.transport.value as { url?: string } | undefined)?.url !== primary)
        metrics.rpcFailovers.inc({ chain: label })
    })
    return t
  }
}

export type CreateSertnClientParameters = {
  /** The primary RPC URL. Default: the chain's first `rpcUrls.default.http`. */
  rpcUrl?: string
  /** More endpoints, tried in order when the ones before fail (a chain's `fallbackRpcUrls`). */
  fallbackRpcUrls?: readonly string[]
  pollingInterval?: number
  /** The chain's fee policy for this account's send queue (`feePolicyOf(chain.fees)`). */
  fees?: FeePolicy
  /** Per-request timeout of each endpoint (ms). Default 10 000. */
  timeoutMs?: number
}

/**
 * A wallet client (with public actions) for `account` on `chain`.
 * `pollingInterval` (ms) paces receipt and log polling: short for local chains, about a block time
 * for real ones.
 *
 * @example
 * const client = createSertnClient(evmChainOf(c.chainId, name, c.rpcUrl), account, {
 *   fallbackRpcUrls: c.fallbackRpcUrls, fees: feePolicyOf(c.fees), pollingInterval: c.pollingIntervalMs,
 * })
 */
export function createSertnClient(
  chain: Chain,
  account: Account,
  { rpcUrl, fallbackRpcUrls = [], pollingInterval = 50, fees, timeoutMs }: CreateSertnClientParameters = {},
): SertnClient {
  const url = rpcUrl ?? chain.rpcUrls.default.http[0]
  if (!url) throw new Error(`createSertnClient: chain ${chain.name} has no RPC URL`)
  const transport = sertnTransport([url, ...fallbackRpcUrls], chain.name, timeoutMs !== undefined ? { timeoutMs } : {})
  return createWalletClient({ chain, account, pollingInterval, transport })
    .extend(publicActions)
    .extend(() => ({ rpcUrl: url, ...(fees ? { feePolicy: fees } : {}) }))
}

/** The i-th account of anvil's default mnemonic (funded with 10,000 ETH on a fresh anvil). */
export function anvilAccount(index: number): Account {
  return mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index })
}

/** The private key of anvil account `index` (for configuration files read by other processes). */
export function anvilPrivateKey(index: number): Hex {
  return toHex(mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index }).getHdKey().privateKey!)
}
