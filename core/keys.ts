/**
 * Encrypted keystores: the Web3 Secret Storage Definition, version 3 — the JSON files that geth,
 * `cast wallet new|import` (Foundry) and ethers write. Decryption takes both KDFs of the
 * definition (scrypt, PBKDF2-HMAC-SHA256) and its cipher (AES-128-CTR); the MAC is the keccak-256
 * of the derived key's second 16 bytes and the ciphertext. Encryption uses cast's parameters
 * (eth-keystore's defaults, {@link CAST_SCRYPT}), so `cast` and `sertn` read each other's files.
 */
import { createCipheriv, createDecipheriv, pbkdf2, randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { promisify } from 'node:util'
import { bytesToHex, concat, hexToBytes, keccak256, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import { SertnError } from './errors.ts'

const scryptAsync = promisify(scrypt) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>
const pbkdf2Async = promisify(pbkdf2)

/** A keystore could not be read, or its password is wrong. */
export class KeystoreError extends SertnError {
  override name = 'KeystoreError'
}

/**
 * The scrypt parameters `cast wallet new|import` encrypts with (eth-keystore's `DEFAULT_KDF_PARAMS_*`:
 * log2 N = 13, r = 8, p = 1, a 32-byte key): about 8 MiB and a few milliseconds a derivation. Geth's
 * "standard" N = 2^18 is read as well.
 */
export const CAST_SCRYPT = { n: 2 ** 13, r: 8, p: 1, dklen: 32 } as const

const hex = (bytes: number) =>
  z
    .string()
    .transform((s) => s.replace(/^0x/, ''))
    .refine((s) => /^[0-9a-fA-F]*$/.test(s) && (bytes === 0 || s.length === bytes * 2), `expected ${bytes || 'some'} hex bytes`)

const scryptParams = z.object({
  dklen: z.number().int().min(32),
  n: z
    .number()
    .int()
    .refine((n) => n > 1 && (n & (n - 1)) === 0, 'n must be a power of 2'),
  r: z.number().int().positive(),
  p: z.number().int().positive(),
  salt: hex(0),
})
const pbkdf2Params = z.object({
  dklen: z.number().int().min(32),
  c: z.number().int().positive(),
  prf: z.literal('hmac-sha256'),
  salt: hex(0),
})

const cryptoSection = z.discriminatedUnion('kdf', [
  z.object({
    kdf: z.literal('scrypt'),
    kdfparams: scryptParams,
    cipher: z.literal('aes-128-ctr'),
    cipherparams: z.object({ iv: hex(16) }),
    ciphertext: hex(0),
    mac: hex(32),
  }),
  z.object({
    kdf: z.literal('pbkdf2'),
    kdfparams: pbkdf2Params,
    cipher: z.literal('aes-128-ctr'),
    cipherparams: z.object({ iv: hex(16) }),
    ciphertext: hex(0),
    mac: hex(32),
  }),
])

/** A version 3 keystore as read (geth writes `crypto`, some old tools `Crypto`). */
const keystoreSchema = z
  .object({
    version: z.literal(3),
    id: z.string().optional(),
    address: z.string().optional(),
    crypto: cryptoSection.optional(),
    Crypto: cryptoSection.optional(),
  })
  .refine((k) => k.crypto ?? k.Crypto, 'no crypto section')

/** The keystore JSON this module writes (the fields cast writes; `address` is left out, as cast does). */
export type Keystore = {
  crypto: {
    cipher: 'aes-128-ctr'
    cipherparams: { iv: string }
    ciphertext: string
    kdf: 'scrypt'
    kdfparams: { dklen: number; n: number; p: number; r: number; salt: string }
    mac: string
  }
  id: string
  version: 3
}

/** scrypt's memory need is 128·N·r bytes: give it that and room (N = 2^18 needs 256 MiB, past Node's 32 MiB default). */
const maxmemOf = (n: number, r: number, p: number) => 128 * n * r + 128 * r * p + 16 * 2 ** 20

async function derive(section: z.infer<typeof cryptoSection>, password: string): Promise<Buffer> {
  const pw = Buffer.from(password, 'utf8')
  const salt = Buffer.from(section.kdfparams.salt, 'hex')
  if (section.kdf === 'scrypt') {
    const { n, r, p, dklen } = section.kdfparams
    return scryptAsync(pw, salt, dklen, { N: n, r, p, maxmem: maxmemOf(n, r, p) })
  }
  return pbkdf2Async(pw, salt, section.kdfparams.c, section.kdfparams.dklen, 'sha256')
}

const macOf = (derived: Buffer, ciphertext: Buffer): Buffer =>
  Buffer.from(hexToBytes(keccak256(concat([derived.subarray(16, 32), ciphertext]))))

/**
 * Decrypts a version 3 keystore (its JSON text or parsed object) with `password`: the private key.
 * `file` names the keystore in errors. A wrong password is a KeystoreError saying so (the MAC
 * does not match).
 *
 * @example
 * const key = await decryptKeystore(await readFile('keystores/node', 'utf8'), 'hunter2', 'keystores/node')
 */
export async function decryptKeystore(json: string | object, password: string, file = 'keystore'): Promise<Hex> {
  let raw: unknown = json
  if (typeof json === 'string') {
    try {
      raw = JSON.parse(json)
    } catch {
      throw new KeystoreError(`${file} is not a keystore: not JSON`)
    }
  }
  const parsed = keystoreSchema.safeParse(raw)
  if (!parsed.success) {
    const i = parsed.error.issues[0]!
    throw new KeystoreError(`${file} is not a version 3 keystore (${[...i.path].join('.') || 'root'}: ${i.message})`)
  }
  const section = (parsed.data.crypto ?? parsed.data.Crypto)!
  const derived = await derive(section, password)
  const ciphertext = Buffer.from(section.ciphertext, 'hex')
  const mac = Buffer.from(section.mac, 'hex')
  if (!timingSafeEqual(macOf(derived, ciphertext), mac)) throw new KeystoreError(`wrong password for keystore ${file}`)
  const decipher = createDecipheriv('aes-128-ctr', derived.subarray(0, 16), Buffer.from(section.cipherparams.iv, 'hex'))
  const key = Buffer.concat([decipher.update(ciphertext), decipher.final()])
  if (key.length !== 32) throw new KeystoreError(`${file} holds ${key.length} bytes, not a 32-byte private key`)
  return bytesToHex(key)
}

/** Reads and decrypts the keystore file `file`: a KeystoreError naming it when it is missing or the password is wrong. */
export async function readKeystore(file: string, password: string): Promise<Hex> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new KeystoreError(code === 'ENOENT' ? `keystore ${file} not found` : `cannot read keystore ${file}: ${code ?? String(err)}`)
  }
  return decryptKeystore(text, password, file)
}

export type EncryptKeystoreOptions = {
  /** scrypt parameters (default: cast's, {@link CAST_SCRYPT}). */
  scrypt?: { n: number; r: number; p: number }
  /** For tests only: fixed salt (32 bytes) and iv (16 bytes) instead of random ones. */
  salt?: Uint8Array
  iv?: Uint8Array
}

/**
 * Encrypts `privateKey` under `password` as a version 3 keystore (scrypt, AES-128-CTR, keccak-256
 * MAC), with cast's parameters unless told otherwise.
 *
 * @example
 * const keystore = await encryptKeystore(generatePrivateKey(), 'hunter2')
 */
export async function encryptKeystore(privateKey: Hex, password: string, options: EncryptKeystoreOptions = {}): Promise<Keystore> {
  if (!/^0x[0-9a-fA-F]{64}$/.test(privateKey)) throw new KeystoreError('a private key is 32 bytes, 0x-prefixed hex')
  const { n, r, p } = options.scrypt ?? CAST_SCRYPT
  const salt = Buffer.from(options.salt ?? randomBytes(32))
  const iv = Buffer.from(options.iv ?? randomBytes(16))
  const derived = await scryptAsync(Buffer.from(password, 'utf8'), salt, 32, { N: n, r, p, maxmem: maxmemOf(n, r, p) })
  const cipher = createCipheriv('aes-128-ctr', derived.subarray(0, 16), iv)
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(hexToBytes(privateKey))), cipher.final()])
  return {
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: iv.toString('hex') },
      ciphertext: ciphertext.toString('hex'),
      kdf: 'scrypt',
      kdfparams: { dklen: 32, n, p, r, salt: salt.toString('hex') },
      mac: macOf(derived, ciphertext).toString('hex'),
    },
    id: randomUUID(),
    version: 3,
  }
}

/** The address of a private key. */
export const addressOfKey = (privateKey: Hex) => privateKeyToAccount(privateKey).address

/** A keystore's name as `sertn keys list` shows it: its file name. */
export const keystoreName = (file: string) => basename(file)
