/**
 * viem clients for an EVM chain, one wallet client per account, extended with public actions: the
 * one place Sertn builds its RPC transport.
 *
 * A chain with fallback RPC URLs gets viem's `fallback` transport: each request goes to the primary
 * first and, when it fails (a refused connection fails at once; a hung endpoint after `timeoutMs`),
 * to the next URL; a primary that failed is passed over for a while ({@link sertnTransport}).
 * Requests a fallback answered count in `sertn_rpc_failovers_total{chain}`. The transports are not
 * ranked: viem's ranking pings every endpoint for the life of the process (and keeps it alive).
 */
import {
  createTransport,
  createWalletClient,
  fallback,
  HttpRequestError,
  http,
  TimeoutError,
  publicActions,
  type Account,
  toHex,
  type Chain,
  type EIP1193RequestFn,
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
  /**
   * After the primary fails to answer (refused, reset, timed out), requests go to the fallbacks first
   * for this long (ms), then the primary is tried again. Default 30 000.
   */
  primaryCooldownMs?: number
}

/**
 * The transport for `urls` (the primary first, then the fallbacks): plain `http` for one URL, else
 * viem's `fallback` over them. A primary that failed to answer is passed over for
 * `primaryCooldownMs` (a hung endpoint would otherwise cost every request its timeout: measured
 * here, 2 s per request with a 2 s timeout, against 44 ms for a refused connection); JSON-RPC
 * errors (a revert, a nonce too low) come from a live endpoint and change nothing. Requests a
 * fallback answered count in `sertn_rpc_failovers_total{chain}`.
 */
export function sertnTransport(urls: readonly string[], chainName: string, o: SertnTransportParameters = {}): Transport {
  const unique = [...new Set(urls)]
  const [primary, ...rest] = unique
  if (!primary) throw new Error('sertnTransport: no RPC URL')
  const one = (url: string) => http(url, { retryCount: 0, ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}) })
  if (rest.length === 0) return one(primary)
  const label = o.chainName ?? chainName
  const cooldownMs = o.primaryCooldownMs ?? 30_000
  const primaryFirst = fallback(unique.map(one), { retryCount: 0 })
  const primaryLast = fallback([...rest, primary].map(one), { retryCount: 0 })
  let primaryDownUntil = 0
  return (params) => {
    const first = primaryFirst(params)
    const last = primaryLast(params)
    for (const t of [first, last]) {
      t.value?.onResponse((r) => {
        const url = (r.transport.value as { url?: string } | undefined)?.url
        if (url === primary) {
          if (r.status === 'success') primaryDownUntil = 0
          else if (r.error instanceof HttpRequestError || r.error instanceof TimeoutError) primaryDownUntil = Date.now() + cooldownMs
        } else if (r.status === 'success') metrics.rpcFailovers.inc({ chain: label })
      })
    }
    return createTransport(
      {
        key: 'fallback',
        name: 'Sertn fallback',
        type: 'fallback',
        retryCount: 0,
        request: ((args, options) => (Date.now() < primaryDownUntil ? last : first).request(args as never, options)) as EIP1193RequestFn,
      },
      { primary, fallbacks: rest },
    )
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
