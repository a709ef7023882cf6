/**
 * `sertn keys …`: encrypted keystores for the node, the relayer and the validator, as
 * `cast wallet new|import|address|list` make and read them (version 3, scrypt with cast's
 * parameters): a keystore made here is read by cast and the other way round.
 *
 *   sertn keys new [NAME] [--keystore-dir keystores] [--password-file FILE]
 *   sertn keys import NAME [--private-key-file FILE] [--password-file FILE] [--keystore-dir keystores]
 *   sertn keys address NAME|FILE [--password-file FILE] [--keystore-dir keystores]
 *   sertn keys list [--keystore-dir keystores]
 *
 * Passwords and raw keys are read from files (trailing whitespace trimmed, as cast does) or asked
 * for on a terminal without echo; never from the command line.
 */
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { encryptKeystore, readKeystore } from '../core/keys.ts'
import { promptPassword } from '../core/secrets.ts'
import { shown, UsageError } from './common.ts'

/** Where keystores go by default (as cast's ~/.foundry/keystores, but beside the node's configuration). */
export const DEFAULT_KEYSTORE_DIR = 'keystores'

const isTerminal = () => process.stdin.isTTY === true && process.stderr.isTTY === true

/** A secret from `file` (trailing whitespace trimmed, as cast does), else asked for on a terminal; a UsageError naming the flag otherwise. */
async function secretFrom(file: string | undefined, flag: string, question: string, confirm = false): Promise<string> {
  if (file !== undefined) {
    try {
      return (await readFile(file, 'utf8')).trimEnd()
    } catch (err) {
      throw new UsageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
    }
  }
  if (!isTerminal()) throw new UsageError(`no terminal to ask on: pass ${flag} FILE`)
  const first = await promptPassword(question)
  if (confirm && (await promptPassword('Again: ')) !== first) throw new UsageError('the two entries differ')
  return first
}

/** A keystore's password: from `--password-file`, else a terminal prompt. */
export function readPassword(passwordFile: string | undefined, question = 'Password: ', confirm = false): Promise<string> {
  return secretFrom(passwordFile, '--password-file', question, confirm)
}

/** A keystore name is a plain file name (cast's account names). */
function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
    throw new UsageError(`a keystore name is letters, digits, dots, dashes and underscores, got "${name}"`)
}

/** Encrypts `key` into `<dir>/<name>`, refusing to replace a keystore. */
async function writeKeystore(dir: string, name: string, key: Hex, password: string): Promise<string> {
  const file = join(resolve(dir), name)
  if (existsSync(file)) throw new UsageError(`${shown(file)} exists: choose another name, or remove it first`)
  await mkdir(resolve(dir), { recursive: true, mode: 0o700 })
  const keystore = await encryptKeystore(key, password)
  await writeFile(file, `${JSON.stringify(keystore)}\n`, { mode: 0o600, flag: 'wx' })
  return file
}

export type KeysNewParameters = { name?: string | undefined; keystoreDir?: string | undefined; passwordFile?: string | undefined }

/** `sertn keys new [NAME]`: a new random key, written only as its keystore; prints its path and address. */
export async function keysNewCommand(p: KeysNewParameters): Promise<number> {
  if (p.name !== undefined) checkName(p.name)
  const password = await readPassword(p.passwordFile, 'Password for the new keystore: ', true)
  const key = generatePrivateKey()
  const file = await writeKeystore(p.keystoreDir ?? DEFAULT_KEYSTORE_DIR, p.name ?? randomUUID(), key, password)
  console.log(`Created new encrypted keystore file: ${shown(file)}`)
  console.log(`Address: ${privateKeyToAccount(key).address}`)
  return 0
}

export type KeysImportParameters = KeysNewParameters & { name: string; privateKeyFile?: string | undefined }

/** `sertn keys import NAME`: a raw key (from `--private-key-file` or a prompt) encrypted into `<dir>/NAME`. */
export async function keysImportCommand(p: KeysImportParameters): Promise<number> {
  checkName(p.name)
  const raw = await secretFrom(p.privateKeyFile, '--private-key-file', 'Private key: ')
  const key = (raw.startsWith('0x') ? raw : `0x${raw}`) as Hex
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new UsageError('the private key must be 32 bytes of hex (0x-prefixed or not)')
  const password = await readPassword(p.passwordFile, 'Password for the keystore: ', true)
  const file = await writeKeystore(p.keystoreDir ?? DEFAULT_KEYSTORE_DIR, p.name, key, password)
  console.log(`\`${p.name}\` keystore was saved successfully (${shown(file)}). Address: ${privateKeyToAccount(key).address}`)
  return 0
}

/** A keystore named on the command line: a file path, else a name in the keystore directory. */
function keystorePath(target: string, dir: string | undefined): string {
  if (existsSync(target) || target.includes('/')) return resolve(target)
  return join(resolve(dir ?? DEFAULT_KEYSTORE_DIR), target)
}

/** `sertn keys address NAME|FILE`: the keystore's address (decrypting it: needs its password). */
export async function keysAddressCommand(p: {
  target: string
  keystoreDir?: string | undefined
  passwordFile?: string | undefined
}): Promise<number> {
  const file = keystorePath(p.target, p.keystoreDir)
  if (!existsSync(file))
    throw new UsageError(`no keystore ${shown(file)}`, { details: 'Name one in --keystore-dir (see `sertn keys list`), or give its path.' })
  const key = await readKeystore(file, await readPassword(p.passwordFile, `Password for ${shown(file)}: `))
  console.log(privateKeyToAccount(key).address)
  return 0
}

/** `sertn keys list`: the keystores in the directory, one name a line (what `new`, `import` and `cast wallet import` write). */
export async function keysListCommand(p: { keystoreDir?: string | undefined }): Promise<number> {
  const dir = resolve(p.keystoreDir ?? DEFAULT_KEYSTORE_DIR)
  let names: string[]
  try {
    names = (await readdir(dir)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    console.error(`no keystore directory ${shown(dir)}: \`sertn keys new\` or \`sertn keys import\` make it`)
    return 0
  }
  for (const name of names) {
    const file = join(dir, name)
    if (!(await stat(file)).isFile()) continue
    try {
      const json = JSON.parse(await readFile(file, 'utf8')) as { version?: unknown }
      if (json.version === 3) console.log(name)
    } catch {
      // not a keystore
    }
  }
  return 0
}
