/**
 * The local stack's accounts. INSECURE, for local chains only: the anvil accounts are the
 * well-known `test test … junk` mnemonic's, and the validator key is derived from a public label,
 * so anyone can sign with any of them. Never use them on a chain that holds value.
 *
 *   owner     anvil account 0: deploys and owns every contract on both chains
 *   node      anvil account 1: the node's account (serves requests, submits results to the market)
 *   user      anvil account 2: the example dApps' user (deploys them and sends requests)
 *   relayer   anvil account 3: pays for delivering Hyperlane messages (`sertn relay`)
 *   validator keccak256("sertn local stack validator (insecure, local only)"): signs the chains'
 *             Hyperlane checkpoints; the ISMs on both chains trust it (threshold 1)
 */
import { keccak256, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'

export const OWNER_ACCOUNT = 0
export const NODE_ACCOUNT = 1
export const USER_ACCOUNT = 2
export const RELAYER_ACCOUNT = 3

/** The label the local validator's key is derived from (public: the key is not a secret). */
export const LOCAL_VALIDATOR_LABEL = 'sertn local stack validator (insecure, local only)'
/** The local validator's signing key (insecure: derived from a public label). */
export const LOCAL_VALIDATOR_KEY: Hex = keccak256(toHex(LOCAL_VALIDATOR_LABEL))
export const LOCAL_VALIDATOR: Address = privateKeyToAccount(LOCAL_VALIDATOR_KEY).address

export { anvilPrivateKey } from '../chains/evm/clients.ts'
