/**
 * Arweave wallets: an RSA private key as a JWK, given as an object or read from a JSON file, and
 * its address (base64url of the SHA-256 of the key's modulus).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { JWKInterface } from 'arweave/node/lib/wallet.js'
import { PluginError } from '../../../core/errors.ts'

export type { JWKInterface }

/** The fields a JWK needs to sign Arweave transactions. */
const PRIVATE_FIELDS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const

/**
 * The wallet `wallet` names: the JWK itself, or the path of a JSON file holding it.
 *
 * @throws {PluginError} (not retryable) when the file cannot be read or is not an RSA private JWK
 */
export function loadWallet(plugin: string, wallet: JWKInterface | string): JWKInterface {
  let jwk: unknown = wallet
  if (typeof wallet === 'string') {
    try {
      jwk = JSON.parse(readFileSync(wallet, 'utf8')) as unknown
    } catch (err) {
      throw new PluginError(plugin, `cannot read the wallet file ${wallet}`, { details: String(err), cause: err })
    }
  }
  const where = typeof wallet === 'string' ? `the wallet file ${wallet}` : 'the wallet'
  if (typeof jwk !== 'object' || jwk === null) throw new PluginError(plugin, `${where} is not a JWK object`)
  const fields = jwk as Record<string, unknown>
  if (fields.kty !== 'RSA') throw new PluginError(plugin, `${where} is not an RSA JWK (kty is ${String(fields.kty)})`)
  const missing = PRIVATE_FIELDS.filter((f) => typeof fields[f] !== 'string' || fields[f] === '')
  if (missing.length > 0) throw new PluginError(plugin, `${where} is not an RSA private key: it lacks ${missing.join(', ')}`)
  return jwk as JWKInterface
}

/** The Arweave address of a wallet: base64url(sha256(modulus)). */
export function walletAddress(jwk: Pick<JWKInterface, 'n'>): string {
  return createHash('sha256').update(Buffer.from(jwk.n, 'base64url')).digest('base64url')
}
