/**
 * The local stack's accounts (from the local network module, chains/local.ts). INSECURE, for local
 * chains only: the anvil accounts are the well-known `test test … junk` mnemonic's, and the
 * attester key is derived from a public label, so anyone can sign with any of them. Never use them
 * on a chain that holds value.
 *
 *   owner     anvil account 0: deploys and owns every contract on every chain
 *   node      anvil account 1: the node's account (serves requests, submits results to the market)
 *   user      anvil account 2: the example dApps' user (deploys them and sends requests)
 *   relayer   anvil account 3: pays the messengers' local agents' deliveries (`sertn relay`)
 *   attester  keccak256("sertn local stack validator (insecure, local only)"): signs the chains'
 *             Hyperlane checkpoints and the LayerZero DVN's instructions (threshold 1)
 */
import { LOCAL_ACCOUNTS } from '../chains/local.ts'

export const OWNER_ACCOUNT = LOCAL_ACCOUNTS.owner
export const NODE_ACCOUNT = LOCAL_ACCOUNTS.node
export const USER_ACCOUNT = LOCAL_ACCOUNTS.user
export const RELAYER_ACCOUNT = LOCAL_ACCOUNTS.relayer

export { LOCAL_ATTESTER, LOCAL_ATTESTER_KEY, LOCAL_ATTESTER_LABEL } from '../chains/local.ts'
export { anvilPrivateKey } from '../chains/evm/clients.ts'

/** How a command is told which key to sign with, as cast's wallet options: a raw key, or a keystore and its password file. */
export type KeyOptions = {
  /** A raw key (`--private-key`). */
  privateKey?: `0x${string}` | undefined
  /** A keystore file (`--keystore FILE`). */
  keystore?: string | undefined
  /** Its password, alone in a file (`--password-file FILE`); without it, a terminal prompt. */
  passwordFile?: string | undefined
}

/**
 * The key of `--private-key`, or of `--keystore` (decrypted with `--password-file`, else asked for
 * on a terminal); undefined when neither is given.
 */
export async function keyFromOptions(o: KeyOptions): Promise<`0x${string}` | undefined> {
  if (o.privateKey !== undefined) return o.privateKey
  if (o.keystore === undefined) return undefined
  const [{ readKeystore }, { readPassword }] = await Promise.all([import('../core/keys.ts'), import('./keys.ts')])
  return readKeystore(o.keystore, await readPassword(o.passwordFile, `Password for keystore ${o.keystore}: `))
}
