/**
 * Sends transactions from one account without nonce collisions: one serialized queue per account
 * (per chain and RPC endpoint, per process). The queue only signs and submits; receipts are awaited
 * by the callers outside it, so many transactions can be in flight in the same block.
 *
 * The local nonce counter starts from the account's `pending` transaction count and is re-read
 * after any failed submission (a nonce error, or an error that leaves it unknown whether the node
 * accepted the transaction); a nonce error is retried a few times with the fresh nonce.
 */
import {
  BaseError,
  Eip1559FeesNotSupportedError,
  keccak256,
  NonceTooHighError,
  NonceTooLowError,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type HttpTransport,
  type PublicClient,
  type WalletClient,
} from 'viem'
import type { SertnClient } from '../clients.ts'

export type TxRequest = { to: Address; data: Hex; gas: bigint; value?: bigint }

type Fees = { type: 'eip1559'; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { type: 'legacy'; gasPrice: bigint }

/** Whether `err` says the nonce we used was wrong (taken, or ahead of the account). */
export function isNonceError(err: unknown): boolean {
  if (err instanceof BaseError && err.walk((e) => e instanceof NonceTooLowError || e instanceof NonceTooHighError)) return true
  const text = err instanceof BaseError ? `${err.shortMessage} ${err.details}` : String(err)
  return /nonce too low|nonce too high|invalid nonce|nonce has already been used|replacement transaction underpriced|already known|known transaction/i.test(
    text,
  )
}

/** Whether the node already has exactly this transaction (a resubmission of ours). */
function isAlreadyKnown(err: unknown): boolean {
  const text = err instanceof BaseError ? `${err.shortMessage} ${err.details}` : String(err)
  return /already known|known transaction|already imported/i.test(text)
}

const MAX_NONCE_RETRIES = 3

/** One account's send queue. */
export class AccountSender {
  private nonce: number | undefined
  private tail: Promise<unknown> = Promise.resolve()
  /** Transactions this queue submitted (for tests and metrics). */
  submitted = 0

  constructor(
    private readonly publicClient: PublicClient<HttpTransport, Chain>,
    private readonly walletClient: WalletClient<HttpTransport, Chain, Account>,
  ) {}

  get address(): Address {
    return this.walletClient.account.address
  }

  private cachedFees: { at: number; fees: Promise<Fees> } | undefined

  /**
   * Fees for a transaction sent now (read outside the queue), reused for a second: viem's estimate
   * leaves twice the base fee as headroom, so a second-old estimate still lands.
   */
  private fees(): Promise<Fees> {
    const now = Date.now()
    if (this.cachedFees && now - this.cachedFees.at < 1000) return this.cachedFees.fees
    const fees = this.readFees()
    this.cachedFees = { at: now, fees }
    fees.catch(() => {
      if (this.cachedFees?.fees === fees) this.cachedFees = undefined
    })
    return fees
  }

  private async readFees(): Promise<Fees> {
    try {
      const { maxFeePerGas, maxPriorityFeePerGas } = await this.publicClient.estimateFeesPerGas({ type: 'eip1559' })
      return { type: 'eip1559', maxFeePerGas, maxPriorityFeePerGas }
    } catch (err) {
      if (err instanceof Eip1559FeesNotSupportedError) return { type: 'legacy', gasPrice: await this.publicClient.getGasPrice() }
      throw err
    }
  }

  /** Signs and submits `tx` in this account's turn; resolves with its hash once the node accepted it. */
  async send(tx: TxRequest): Promise<Hex> {
    const fees = await this.fees()
    const turn = this.tail.then(() => this.submit(tx, fees))
    this.tail = turn.catch(() => undefined)
    return turn
  }

  private async submit(tx: TxRequest, fees: Fees): Promise<Hex> {
    for (let attempt = 0; ; attempt++) {
      this.nonce ??= await this.publicClient.getTransactionCount({ address: this.address, blockTag: 'pending' })
      const nonce = this.nonce
      try {
        const hash = await this.submitWithNonce(tx, fees, nonce)
        this.nonce = nonce + 1
        this.submitted++
        return hash
      } catch (err) {
        // Whatever happened, the next turn re-reads the nonce from the node.
        this.nonce = undefined
        if (attempt < MAX_NONCE_RETRIES && isNonceError(err)) continue
        throw err
      }
    }
  }

  private async submitWithNonce(tx: TxRequest, fees: Fees, nonce: number): Promise<Hex> {
    const account = this.walletClient.account
    const chain = this.walletClient.chain
    if (account.type === 'local') {
      const serialized = await account.signTransaction(
        fees.type === 'eip1559'
          ? {
              chainId: chain.id,
              type: 'eip1559',
              to: tx.to,
              data: tx.data,
              gas: tx.gas,
              value: tx.value,
              nonce,
              maxFeePerGas: fees.maxFeePerGas,
              maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
            }
          : { chainId: chain.id, type: 'legacy', to: tx.to, data: tx.data, gas: tx.gas, value: tx.value, nonce, gasPrice: fees.gasPrice },
      )
      const hash = keccak256(serialized)
      try {
        return await this.publicClient.sendRawTransaction({ serializedTransaction: serialized })
      } catch (err) {
        if (isAlreadyKnown(err)) return hash
        throw err
      }
    }
    return this.walletClient.sendTransaction({ account, chain, to: tx.to, data: tx.data, gas: tx.gas, value: tx.value, nonce, ...fees })
  }
}

const senders = new Map<string, AccountSender>()

/** The process-wide send queue of `account` on chain `chainId` through `rpcUrl`. */
export function accountSender(key: { chainId: number; rpcUrl: string; address: Address }, make: () => AccountSender): AccountSender {
  const k = `${key.chainId}|${key.rpcUrl}|${key.address.toLowerCase()}`
  let s = senders.get(k)
  if (!s) {
    s = make()
    senders.set(k, s)
  }
  return s
}

/**
 * The process-wide send queue of a client's account. Every sender from one account in a process
 * (the node, each messenger's agents) goes through it: two loops that each read the account's
 * nonce would give two transactions one nonce, and the one with the higher fee replaces the other
 * in the node's pool while its sender waits for a receipt that never comes.
 */
export function clientSender(client: SertnClient): AccountSender {
  return accountSender(
    { chainId: client.chain.id, rpcUrl: client.transport.url ?? `client ${client.uid}`, address: client.account.address },
    () => new AccountSender(client as unknown as PublicClient<HttpTransport, Chain>, client),
  )
}
