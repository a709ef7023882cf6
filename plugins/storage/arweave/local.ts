/**
 * A local Arweave for development and tests: arlocal (npm `arlocal`) in a child process of its own
 * process group, bound to 127.0.0.1, with its database in a directory that is either temporary
 * (deleted by `stop()`) or kept across restarts (`persistDir`); and wallets funded on it.
 *
 * @example
 * const arlocal = await startArlocal({ persistDir: '.sertn/arlocal' })
 * const { jwk } = await loadOrCreateLocalWallet(arlocal.url, '.sertn/arlocal/wallet.json')
 * const storage = arweaveStorage({ port: arlocal.port, wallet: jwk })
 * …
 * await arlocal.stop() // a later startArlocal with the same persistDir finds the data again
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Arweave from 'arweave'
import { PluginError } from '../../../core/errors.ts'
import { freePort, type ManagedProcess, startProcess, waitFor } from '../../../core/process.ts'
import { ensureSqlite3Binding } from './sqlite3.ts'
import { type JWKInterface, loadWallet, walletAddress } from './wallet.ts'

const PLUGIN = 'arlocal'
const SERVER_SCRIPT = fileURLToPath(new URL('./arlocal-server.mjs', import.meta.url))
/** arlocal-server.mjs exits with this code when sqlite3's native binding is missing. */
const EXIT_SQLITE3_MISSING = 3

export type StartArlocalOptions = {
  /** Port on 127.0.0.1; a free one by default. */
  port?: number
  /**
   * Keep the database (SQLite index, data files, wallets, and arlocal's request log `logs`) in this
   * directory, so that a later start with the same directory serves the same data. Default: a new
   * temporary directory, deleted by `stop()`.
   */
  persistDir?: string
  /** Compile sqlite3's native binding when it is missing (see sqlite3.ts; default true). */
  buildSqlite3?: boolean
  /** How long to wait for arlocal to answer (default 30 s). */
  startTimeoutMs?: number
  /** Print arlocal's output. */
  echo?: boolean
}

export type ArlocalInstance = {
  /** `http://127.0.0.1:<port>` */
  url: string
  host: '127.0.0.1'
  port: number
  /** Where the database lives. */
  dataDir: string
  /** Whether `dataDir` outlives `stop()`. */
  persistent: boolean
  process: ManagedProcess
  /** SIGTERM to arlocal's process group (SIGKILL after 3 s); deletes a temporary `dataDir`. Idempotent. */
  stop(): Promise<void>
}

/**
 * Starts arlocal on 127.0.0.1 and waits until it answers `/info`.
 *
 * @throws {PluginError} (plugin `arlocal`, retryable) when it does not start, with its last output
 */
export async function startArlocal(options: StartArlocalOptions = {}): Promise<ArlocalInstance> {
  const port = options.port ?? (await freePort())
  const persistent = options.persistDir !== undefined
  const dataDir = options.persistDir !== undefined ? resolve(options.persistDir) : mkdtempSync(join(tmpdir(), 'sertn-arlocal-'))
  mkdirSync(dataDir, { recursive: true })
  try {
    let started = await launch(port, dataDir, persistent, options)
    if (started === 'sqlite3-missing' && (options.buildSqlite3 ?? true)) {
      await ensureSqlite3Binding({ echo: options.echo ?? false })
      started = await launch(port, dataDir, persistent, options)
    }
    if (started === 'sqlite3-missing')
      throw new PluginError(PLUGIN, "arlocal cannot start: sqlite3's native binding is missing", {
        details:
          'compile it with ensureSqlite3Binding() (plugins/storage/arweave/sqlite3.ts) or by hand: ' +
          'cd node_modules/sqlite3 && node ../node-gyp/bin/node-gyp.js rebuild --nodedir=/usr',
      })
    const proc = started
    let stopped: Promise<void> | undefined
    return {
      url: `http://127.0.0.1:${port}`,
      host: '127.0.0.1',
      port,
      dataDir,
      persistent,
      process: proc,
      stop() {
        stopped ??= proc.stop().then(() => {
          if (!persistent) rmSync(dataDir, { recursive: true, force: true })
        })
        return stopped
      },
    }
  } catch (err) {
    if (!persistent) rmSync(dataDir, { recursive: true, force: true })
    throw err
  }
}

/** Starts the server script; resolves when it answers, or 'sqlite3-missing'. */
async function launch(
  port: number,
  dataDir: string,
  persistent: boolean,
  options: StartArlocalOptions,
): Promise<ManagedProcess | 'sqlite3-missing'> {
  const args = [SERVER_SCRIPT, '--port', String(port), '--host', '127.0.0.1', '--db', join(dataDir, 'db')]
  if (persistent) args.push('--persist')
  const proc = startProcess({ name: `arlocal:${port}`, command: process.execPath, args, cwd: dataDir, echo: options.echo ?? false })
  const url = `http://127.0.0.1:${port}`
  const timeoutMs = options.startTimeoutMs ?? 30_000
  let exitCode: number | null | undefined
  void proc.exited.then((code) => (exitCode = code))
  try {
    await waitFor(
      `arlocal on ${url}`,
      async () => {
        if (exitCode !== undefined) return true // stop waiting; reported below
        const res = await fetch(`${url}/info`, { signal: AbortSignal.timeout(2000) })
        return res.ok
      },
      { timeoutMs, intervalMs: 100 },
    )
  } catch (err) {
    await proc.stop()
    throw new PluginError(PLUGIN, `arlocal did not answer on ${url} within ${timeoutMs} ms`, {
      details: proc.output(),
      cause: err,
      retryable: true,
    })
  }
  if (exitCode === EXIT_SQLITE3_MISSING) return 'sqlite3-missing'
  if (exitCode !== undefined)
    throw new PluginError(PLUGIN, `arlocal exited (code ${String(exitCode)}) before answering on ${url}`, {
      details: proc.output(),
      retryable: true,
    })
  return proc
}

/** 1000 AR in winston: enough for about 15 GB of arlocal writes. */
export const DEFAULT_MINT_WINSTON = 1_000_000_000_000_000n

/** Adds `winston` to `address`'s balance on arlocal (`GET /mint/<address>/<winston>`). */
export async function mintArlocal(url: string, address: string, winston: bigint = DEFAULT_MINT_WINSTON): Promise<void> {
  const res = await fetch(`${url}/mint/${address}/${winston.toString()}`, { signal: AbortSignal.timeout(10_000) })
  await res.arrayBuffer()
  if (!res.ok) throw new PluginError(PLUGIN, `minting ${winston} winston for ${address} failed: HTTP ${res.status}`, { retryable: true })
}

/** `address`'s balance in winston. */
export async function balanceOf(url: string, address: string): Promise<bigint> {
  const res = await fetch(`${url}/wallet/${address}/balance`, { signal: AbortSignal.timeout(10_000) })
  const text = (await res.text()).trim()
  if (!res.ok || !/^\d+(\.\d+)?(e\+?\d+)?$/i.test(text))
    throw new PluginError(PLUGIN, `reading the balance of ${address} failed: HTTP ${res.status} ${text.slice(0, 100)}`, { retryable: true })
  // arlocal keeps balances as floats: 1e15 may come back as "1000000000000000" or "1e+15".
  return BigInt(Math.trunc(Number(text)))
}

/**
 * Generates a wallet (RSA-4096 JWK, about a second) and mints `winston` to it on arlocal.
 *
 * @param arweave only used to generate the key (default: a client for `url`)
 */
export async function createFundedWallet(
  arweave: Arweave | undefined,
  url: string,
  winston: bigint = DEFAULT_MINT_WINSTON,
): Promise<{ jwk: JWKInterface; address: string }> {
  const client = arweave ?? clientFor(url)
  const jwk = await client.wallets.generate()
  const address = walletAddress(jwk)
  await mintArlocal(url, address, winston)
  return { jwk, address }
}

/**
 * The wallet in `path` (created there, mode 0600, when missing), topped up on arlocal to at least
 * `minWinston` (default: half of {@link DEFAULT_MINT_WINSTON}). For a local stack that keeps its
 * arlocal data across restarts, so that it keeps signing with the same address.
 */
export async function loadOrCreateLocalWallet(
  url: string,
  path: string,
  minWinston: bigint = DEFAULT_MINT_WINSTON / 2n,
): Promise<{ jwk: JWKInterface; address: string; created: boolean }> {
  let jwk: JWKInterface
  const created = !existsSync(path)
  if (created) {
    jwk = await clientFor(url).wallets.generate()
    mkdirSync(dirname(resolve(path)), { recursive: true })
    writeFileSync(path, JSON.stringify(jwk), { mode: 0o600 })
    chmodSync(path, 0o600)
  } else {
    jwk = loadWallet(PLUGIN, path)
  }
  const address = walletAddress(jwk)
  const balance = await balanceOf(url, address)
  if (balance < minWinston) await mintArlocal(url, address, DEFAULT_MINT_WINSTON)
  return { jwk, address, created }
}

function clientFor(url: string): Arweave {
  const u = new URL(url)
  const protocol = u.protocol.replace(':', '')
  return Arweave.init({ host: u.hostname, port: Number(u.port || (protocol === 'https' ? 443 : 80)), protocol })
}
