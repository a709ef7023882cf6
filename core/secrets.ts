/**
 * Secrets: the file that names the keys a node signs with and the Temporal API key, kept apart from
 * the shareable configuration (`secretsFile`, else `SERTN_SECRETS`), checked by a zod schema:
 *
 *   {
 *     "node":      { "keystore": "keystores/node", "passwordFile": "passwords/node" },
 *     "relayer":   { "keystore": "keystores/relayer" },
 *     "validator": { "privateKey": "0x…" },
 *     "temporal":  { "apiKey": "…" }
 *   }
 *
 * A key is a version 3 keystore (what `cast wallet import` and `sertn keys` write) with its password
 * file, or a raw `privateKey` (local development only: a warning). Paths are relative to the
 * secrets file. A password comes from its file (trailing whitespace trimmed, as cast does), else
 * from a prompt on a terminal, else start-up stops naming the missing `passwordFile`.
 *
 * Without a secrets file (or a role missing from it), the configuration's raw keys serve
 * (`node.privateKey`, `relay.relayerKey`, `relay.validatorKey`; local development only, a
 * warning): the local stack writes those.
 */
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import type { Hex } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { z } from 'zod'
import type { SertnConfig } from './config.ts'
import { SertnError } from './errors.ts'
import { KeystoreError, readKeystore } from './keys.ts'
import { componentLogger } from './log.ts'

/** The accounts a Sertn process may sign with. */
export const SIGNER_ROLES = ['node', 'relayer', 'validator'] as const
export type SignerRole = (typeof SIGNER_ROLES)[number]

const rawKey = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected a 0x-prefixed 32-byte private key')

/** Where a role's key is: a keystore (and its password file), or a raw key (local development only). */
export const keyRefSchema = z.union([
  z.strictObject({
    /** A version 3 keystore file (relative to the secrets file). */
    keystore: z.string().min(1),
    /** Its password, alone in a file (relative to the secrets file); without it, a terminal prompt. */
    passwordFile: z.string().min(1).optional(),
  }),
  z.strictObject({
    /** Local development only. */
    privateKey: rawKey,
  }),
])
export type KeyRef = z.infer<typeof keyRefSchema>

export const secretsSchema = z.strictObject({
  /** The node's account: serves requests, submits results, pays their gas. */
  node: keyRefSchema.optional(),
  /** The account that pays the local messenger agents' deliveries (default: the node's). */
  relayer: keyRefSchema.optional(),
  /** The local agents' attester (the chains' ISMs and DVNs list its address). */
  validator: keyRefSchema.optional(),
  temporal: z.strictObject({ apiKey: z.string().min(1).optional() }).optional(),
})
export type Secrets = z.infer<typeof secretsSchema>

/** The secrets file is missing or invalid, or a key in it cannot be read. */
export class SecretsError extends SertnError {
  override name = 'SecretsError'
}

/** The secrets file of `config`: `secretsFile`, else `SERTN_SECRETS`, else none (absolute). */
export function secretsFileOf(config: Pick<SertnConfig, 'secretsFile'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = config.secretsFile ?? (env.SERTN_SECRETS || undefined)
  return file === undefined ? undefined : resolve(file)
}

/** Where the secrets file was named, for messages. */
const namedBy = (config: Pick<SertnConfig, 'secretsFile'>) => (config.secretsFile !== undefined ? 'secretsFile' : 'SERTN_SECRETS')

/**
 * Reads and checks the secrets file, if one is configured (undefined otherwise); a SecretsError
 * naming the file when it is missing or invalid.
 */
export function loadSecrets(
  config: Pick<SertnConfig, 'secretsFile'>,
  env: NodeJS.ProcessEnv = process.env,
): { file: string; secrets: Secrets } | undefined {
  const file = secretsFileOf(config, env)
  if (file === undefined) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new SecretsError(`secrets file ${file} not found (set by ${namedBy(config)}): create it or fix the path`)
    throw new SecretsError(`cannot read secrets file ${file}: ${code ?? (err instanceof Error ? err.message : String(err))}`)
  }
  const r = secretsSchema.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]!
    throw new SecretsError(`invalid secrets file ${file}: ${i.path.join('.') || '(root)'}: ${i.message}`)
  }
  return { file, secrets: r.data }
}

/** A resolved signing account. */
export type Signer = {
  role: SignerRole
  account: PrivateKeyAccount
  privateKey: Hex
  /** Where the key came from, for logs: `keystore <file>`, `secrets <file> (raw key)`, `config node.privateKey`. */
  source: string
}
export type Signers = Partial<Record<SignerRole, Signer>>

export type ResolveSignersOptions = {
  env?: NodeJS.ProcessEnv
  /** Asks for a keystore's password without echo (default: on a terminal, {@link promptPassword}; elsewhere none). */
  prompt?: ((question: string) => Promise<string>) | undefined
  /** Where the local-development warnings go (default: the `keys` logger). */
  warn?: (line: string) => void
}

/** The configuration's raw key of each role (local development only). */
function configKeyOf(config: SertnConfig, role: SignerRole): { key: Hex; field: string } | undefined {
  const key = role === 'node' ? config.node.privateKey : role === 'relayer' ? config.relay.relayerKey : config.relay.validatorKey
  const field = role === 'node' ? 'node.privateKey' : role === 'relayer' ? 'relay.relayerKey' : 'relay.validatorKey'
  return key ? { key: key as Hex, field } : undefined
}

/** Decrypted keystores of this process (by file and password source): a process that resolves a key twice asks for its password once. */
const decrypted = new Map<string, Promise<Hex>>()

/** The password of `ref`'s keystore: its file, else a prompt on a terminal, else a SecretsError naming what to set. */
async function passwordOf(
  ref: { keystore: string; passwordFile?: string | undefined },
  role: SignerRole,
  file: string,
  base: string,
  opts: ResolveSignersOptions,
): Promise<string> {
  const keystore = resolve(base, ref.keystore)
  if (ref.passwordFile !== undefined) {
    const pwFile = resolve(base, ref.passwordFile)
    try {
      return (await readFile(pwFile, 'utf8')).trimEnd()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new SecretsError(
        code === 'ENOENT'
          ? `password file ${pwFile} not found (${role}.passwordFile in ${file})`
          : `cannot read password file ${pwFile} (${role}.passwordFile in ${file}): ${code ?? String(err)}`,
      )
    }
  }
  const prompt = opts.prompt ?? (process.stdin.isTTY && process.stderr.isTTY ? promptPassword : undefined)
  if (!prompt) throw new SecretsError(`no password for keystore ${keystore}: set ${role}.passwordFile in ${file} (no terminal to ask on)`)
  return prompt(`Password for the ${role} keystore ${keystore}: `)
}

/** Resolves one role's key from the secrets file's entry. */
async function fromSecrets(ref: KeyRef, role: SignerRole, file: string, opts: ResolveSignersOptions): Promise<Signer> {
  const base = dirname(file)
  if ('privateKey' in ref) {
    ;(opts.warn ?? warnLine)(`the ${role} key is a raw privateKey in ${file}: local development only; use a keystore (sertn keys import)`)
    return {
      role,
      privateKey: ref.privateKey as Hex,
      account: privateKeyToAccount(ref.privateKey as Hex),
      source: `secrets ${file} (raw key)`,
    }
  }
  const keystore = resolve(base, ref.keystore)
  if (!existsSync(keystore)) throw new SecretsError(`keystore ${keystore} not found (${role}.keystore in ${file})`)
  // By keystore and where its password comes from: the same file and password file decrypt once.
  const cacheKey = `${keystore}\0${ref.passwordFile === undefined ? 'prompt' : resolve(base, ref.passwordFile)}`
  let pending = decrypted.get(cacheKey)
  if (!pending) {
    pending = passwordOf(ref, role, file, base, opts).then((pw) => readKeystore(keystore, pw))
    decrypted.set(cacheKey, pending)
    pending.catch(() => decrypted.delete(cacheKey))
  }
  let privateKey: Hex
  try {
    privateKey = await pending
  } catch (err) {
    if (err instanceof KeystoreError) throw new KeystoreError(`${err.shortMessage} (${role}.keystore in ${file})`)
    throw err
  }
  return { role, privateKey, account: privateKeyToAccount(privateKey), source: `keystore ${keystore}` }
}

const warnLine = (line: string) => componentLogger('keys').warn(line)

/**
 * The signers a process needs, by role: each from the secrets file when it names the role, else
 * from the configuration's raw key (a warning); the relayer falls back on the node's account, as
 * the agents always have. A role with no key is absent from the result (the caller says whether it
 * needs it, {@link requireSigner}). Errors (SecretsError, KeystoreError) name the file and what to
 * fix: a missing secrets file, keystore or password file, a wrong password.
 *
 * @example
 * const { node } = await resolveSigners(config, ['node'])
 */
export async function resolveSigners(
  config: SertnConfig,
  roles: readonly SignerRole[],
  opts: ResolveSignersOptions = {},
): Promise<Signers> {
  const loaded = loadSecrets(config, opts.env)
  const out: Signers = {}
  const one = async (role: SignerRole): Promise<Signer | undefined> => {
    if (out[role]) return out[role]
    const ref = loaded?.secrets[role]
    let signer: Signer | undefined
    if (ref) signer = await fromSecrets(ref, role, loaded.file, opts)
    else {
      const raw = configKeyOf(config, role)
      if (raw) {
        ;(opts.warn ?? warnLine)(
          `the ${role} key is the configuration's raw ${raw.field}: local development only; use a keystore in a secrets file`,
        )
        signer = { role, privateKey: raw.key, account: privateKeyToAccount(raw.key), source: `config ${raw.field}` }
      } else if (role === 'relayer') {
        const node = await one('node')
        if (node) signer = { ...node, role: 'relayer' }
      }
    }
    if (signer) out[role] = signer
    return signer
  }
  for (const role of roles) await one(role)
  return Object.fromEntries(roles.filter((r) => out[r]).map((r) => [r, out[r]])) as Signers
}

/** What to configure for a role's key, for messages. */
export function howToConfigure(role: SignerRole): string {
  const field = role === 'node' ? 'node.privateKey' : role === 'relayer' ? 'relay.relayerKey' : 'relay.validatorKey'
  return `a "${role}" keystore in the secrets file (secretsFile or SERTN_SECRETS), or ${field} in the configuration for local development`
}

/** The signer of `role`, or a SecretsError saying how to configure one. */
export function requireSigner(signers: Signers, role: SignerRole, who: string): Signer {
  const s = signers[role]
  if (s) return s
  throw new SecretsError(`${who} signs as the ${role} but no ${role} key is configured: add ${howToConfigure(role)}`)
}

/**
 * The address of `role` without a password, where one can be had: a raw key (secrets or
 * configuration), or a keystore that records its address (geth and ethers write it; cast does not).
 */
export function signerAddressHint(config: SertnConfig, role: SignerRole, env: NodeJS.ProcessEnv = process.env): Hex | undefined {
  let loaded: ReturnType<typeof loadSecrets>
  try {
    loaded = loadSecrets(config, env)
  } catch {
    loaded = undefined
  }
  const ref = loaded?.secrets[role]
  if (ref && 'privateKey' in ref) return privateKeyToAccount(ref.privateKey as Hex).address
  if (ref && loaded) {
    try {
      const a = (JSON.parse(readFileSync(resolve(dirname(loaded.file), ref.keystore), 'utf8')) as { address?: unknown }).address
      return typeof a === 'string' && /^(0x)?[0-9a-fA-F]{40}$/.test(a) ? (`0x${a.replace(/^0x/, '')}` as Hex) : undefined
    } catch {
      return undefined
    }
  }
  const raw = configKeyOf(config, role)
  return raw ? privateKeyToAccount(raw.key).address : undefined
}

/** The Temporal API key: the secrets file's `temporal.apiKey`, else `TEMPORAL_API_KEY`. */
export function temporalApiKeyOf(config: Pick<SertnConfig, 'secretsFile'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return loadSecrets(config, env)?.secrets.temporal?.apiKey ?? (env.TEMPORAL_API_KEY || undefined)
}

/** Asks `question` on standard error and reads a line from a terminal without echoing it. */
export async function promptPassword(question: string): Promise<string> {
  const [{ createInterface }, { Writable }] = await Promise.all([import('node:readline'), import('node:stream')])
  let muted = false
  const output = new Writable({
    write(chunk, encoding, done) {
      if (!muted) process.stderr.write(chunk, encoding)
      done()
    },
  })
  const rl = createInterface({ input: process.stdin, output, terminal: true })
  try {
    return await new Promise<string>((answer, fail) => {
      rl.once('SIGINT', () => fail(new SecretsError('password prompt interrupted')))
      rl.question(question, answer)
      muted = true
    })
  } finally {
    rl.close()
    process.stderr.write('\n')
  }
}
