/**
 * Arweave storage plugin: artifacts as data transactions, read back checked against their SHA-256,
 * found again by tags through GraphQL; plus a local arlocal for development and tests.
 *
 * @example
 * const arlocal = await startArlocal()
 * const { jwk } = await createFundedWallet(undefined, arlocal.url)
 * const storage = arweaveStorage({ port: arlocal.port, wallet: jwk, mineAfterPost: true })
 * const ref = await storage.put(bytes, { contentType: 'application/octet-stream', tags: { 'Sertn-Kind': 'proof' } })
 * const same = await storage.get(ref) // IntegrityError if the bytes do not hash to ref.sha256
 * await storage.dispose()
 * await arlocal.stop()
 */
export {
  APP_NAME,
  type ArweaveStorage,
  type ArweaveStorageOptions,
  arweaveStorage,
  createArweaveStorage,
  MAX_TAG_BYTES,
  PLUGIN_NAME,
  TAG_APP_NAME,
  TAG_CONTENT_TYPE,
  TAG_SHA256,
} from './storage.ts'
export {
  type ArlocalInstance,
  balanceOf,
  createFundedWallet,
  DEFAULT_MINT_WINSTON,
  loadOrCreateLocalWallet,
  mintArlocal,
  startArlocal,
  type StartArlocalOptions,
} from './local.ts'
export { ensureSqlite3Binding, sqlite3Loads } from './sqlite3.ts'
export { type JWKInterface, loadWallet, walletAddress } from './wallet.ts'
