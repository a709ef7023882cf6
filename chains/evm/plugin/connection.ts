/** What the EVM plugins share: one chain's clients and the account's send queue, and call joining. */
import {
  createPublicClient,
  createWalletClient,
  type Account,
  type Chain,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem'
import { evmChainOf } from '../chain.ts'
import { sertnTransport } from '../clients.ts'
import { ConfigError } from '../../../core/errors.ts'
import { transient } from './errors.ts'
import { AccountSender, accountSender, type FeePolicy, type TxRequest } from './sender.ts'

export type EvmConnection = {
  chain: Chain
  publicClient: PublicClient<Transport, Chain>
  walletClient: WalletClient<Transport, Chain, Account>
  /** The process-wide send queue of `account` on this chain (shared by every plugin using the account). */
  sender: AccountSender
}

/**
 * Clients for `rpcUrl` (chain `chainId`, named `chainName`) acting as `account`, failing over to
 * `fallbackRpcUrls` in order; the account's send queue pays by `fees`.
 */
export function connectEvm(o: {
  chainName: string
  chainId: number
  rpcUrl: string
  fallbackRpcUrls?: readonly string[]
  account: Account
  pollingIntervalMs: number
  fees?: FeePolicy
}): EvmConnection {
  const chain = evmChainOf(o.chainId, o.chainName, o.rpcUrl)
  const transport = sertnTransport([o.rpcUrl, ...(o.fallbackRpcUrls ?? [])], o.chainName)
  const publicClient = createPublicClient({ chain, transport, pollingInterval: o.pollingIntervalMs })
  const walletClient = createWalletClient({ chain, transport, account: o.account, pollingInterval: o.pollingIntervalMs })
  const sender = accountSender(
    { chainId: o.chainId, rpcUrl: o.rpcUrl, address: o.account.address },
    () => new AccountSender(publicClient, walletClient, { chainName: o.chainName, ...(o.fees ? { fees: o.fees } : {}) }),
  )
  return { chain, publicClient, walletClient, sender }
}

/** Throws a ConfigError naming `what` for a fee policy nodes would refuse (a bump under 10%) or that makes no sense. */
export function checkFeePolicy(what: string, fees: FeePolicy | undefined): void {
  if (!fees) return
  if (!Number.isSafeInteger(fees.replaceAfterMs) || fees.replaceAfterMs < 1)
    throw new ConfigError(`${what}: fees.replaceAfterMs must be a positive integer (got ${fees.replaceAfterMs})`)
  if (!Number.isSafeInteger(fees.bumpPercent) || fees.bumpPercent < 10)
    throw new ConfigError(`${what}: fees.bumpPercent must be an integer ≥ 10, the smallest raise nodes accept (got ${fees.bumpPercent})`)
  if (fees.maxFeePerGas !== undefined && fees.maxFeePerGas <= 0n)
    throw new ConfigError(`${what}: fees.maxFeePerGasGwei must be positive (got ${fees.maxFeePerGas} wei)`)
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

/** What a sent transaction came to: its hash, receipt, and the chain's inclusion wait. */
export type SentTransaction = { hash: Hex; receipt: TransactionReceipt; inclusionMs: number; receiptAt: number }

/**
 * Sends `tx` in the account's turn and awaits its receipt outside the queue (a chain that mines at
 * once has it already; else it is polled). A transaction the sender replaced with higher fees (it
 * was stuck) is reported by the replacement that was mined: `hash` is the mined transaction's.
 * `what` names the call in errors: RPC and timeout failures become retryable
 * {@link ChainTransientError}s. The receipt may say reverted.
 */
export async function sendAndWait(
  conn: EvmConnection,
  tx: TxRequest,
  o: { what: string; confirmations?: number; pollingIntervalMs: number; receiptTimeoutMs?: number },
): Promise<SentTransaction> {
  // From here to the receipt the chain includes the transaction (anvil mines inside the send).
  const submittedAt = performance.now()
  let hash: Hex
  try {
    hash = await conn.sender.send(tx)
  } catch (err) {
    throw transient(`${o.what}: sending`, err)
  }
  try {
    const confirmations = o.confirmations ?? 0
    const mined = confirmations === 0 ? await conn.publicClient.getTransactionReceipt({ hash }).catch(() => undefined) : undefined
    if (mined) conn.sender.mined(hash)
    const { receipt } = mined
      ? { receipt: mined }
      : await conn.sender.wait(hash, {
          confirmations: confirmations + 1,
          pollingIntervalMs: o.pollingIntervalMs,
          timeoutMs: o.receiptTimeoutMs ?? 120_000,
        })
    return { hash: receipt.transactionHash, receipt, inclusionMs: performance.now() - submittedAt, receiptAt: Date.now() }
  } catch (err) {
    throw transient(`${o.what}: waiting for transaction ${hash}`, err)
  }
}

/** A gas estimate made once per `key` (e.g. per model version: verification costs the same each time). */
export function estimateOnce(conn: EvmConnection): (key: string, call: unknown) => Promise<bigint> {
  const estimates = new Map<string, bigint>()
  return async (key, call) => {
    const known = estimates.get(key)
    if (known !== undefined) return known
    const estimate = await conn.publicClient.estimateContractGas(call as never)
    estimates.set(key, estimate)
    return estimate
  }
}
