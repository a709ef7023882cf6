/** viem clients for an EVM chain, one wallet client per account, extended with public actions. */
import {
  createWalletClient,
  http,
  publicActions,
  type Account,
  toHex,
  type Chain,
  type Hex,
  type HttpTransport,
  type PublicActions,
  type WalletClient,
} from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { ANVIL_MNEMONIC } from '../anvil.ts'

export type SertnClient = WalletClient<HttpTransport, Chain, Account> & PublicActions<HttpTransport, Chain, Account>

/**
 * A wallet client (with public actions) for `account` on `chain`.
 * `pollingInterval` (ms) paces receipt and log polling: short for local chains, about a block time
 * for real ones.
 */
export function createSertnClient(
  chain: Chain,
  account: Account,
  { rpcUrl, pollingInterval = 50 }: { rpcUrl?: string; pollingInterval?: number } = {},
): SertnClient {
  const url = rpcUrl ?? chain.rpcUrls.default.http[0]
  return createWalletClient({ chain, account, pollingInterval, transport: http(url, { retryCount: 0 }) }).extend(publicActions)
}

/** The i-th account of anvil's default mnemonic (funded with 10,000 ETH on a fresh anvil). */
export function anvilAccount(index: number): Account {
  return mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index })
}

/** The private key of anvil account `index` (for configuration files read by other processes). */
export function anvilPrivateKey(index: number): Hex {
  return toHex(mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index }).getHdKey().privateKey!)
}
