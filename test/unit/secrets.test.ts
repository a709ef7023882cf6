/**
 * The secrets file (core/secrets.ts): keystores and password files relative to it, the password's
 * trailing newline trimmed, a prompt only when there is no password file (and one prompt for a key
 * resolved twice), raw keys with a warning, the configuration's raw keys as the fallback, the
 * relayer defaulting to the node, and errors that name the file and the field.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseConfig, type SertnConfig } from '../../core/config.ts'
import { encryptKeystore } from '../../core/keys.ts'
import { loadSecrets, resolveSigners, signerAddressHint, temporalApiKeyOf } from '../../core/secrets.ts'

const NODE_KEY = generatePrivateKey()
const VALIDATOR_KEY = generatePrivateKey()
let dir: string

const configWith = (extra: Record<string, unknown> = {}): SertnConfig =>
  parseConfig({ chains: { hub: { chainId: 1, rpcUrl: 'http://127.0.0.1:1', gateway: `0x${'11'.repeat(20)}` } }, ...extra })

async function secretsFile(name: string, body: unknown): Promise<string> {
  const file = join(dir, 'secrets', `${name}.json`)
  await writeFile(file, JSON.stringify(body))
  return file
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-secrets-'))
  await mkdir(join(dir, 'secrets', 'keystores'), { recursive: true })
  for (const name of ['node', 'prompted'])
    await writeFile(join(dir, 'secrets', 'keystores', name), JSON.stringify(await encryptKeystore(NODE_KEY, 'pw')))
  await writeFile(join(dir, 'secrets', 'node.password'), 'pw\n')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('resolveSigners', () => {
  test('default: a keystore and its password file, relative to the secrets file (trailing newline trimmed)', async () => {
    const file = await secretsFile('a', { node: { keystore: 'keystores/node', passwordFile: 'node.password' } })
    const warnings: string[] = []
    const { node } = await resolveSigners(configWith({ secretsFile: file }), ['node'], { warn: (l) => warnings.push(l) })
    expect(node?.account.address).toBe(privateKeyToAccount(NODE_KEY).address)
    expect(node?.source).toBe(`keystore ${join(dir, 'secrets', 'keystores', 'node')}`)
    expect(warnings).toEqual([])
  })

  test('behavior: without a password file, a prompt (once for a key resolved twice); without a terminal, an error naming passwordFile', async () => {
    const file = await secretsFile('b', { node: { keystore: 'keystores/prompted' }, relayer: { keystore: 'keystores/prompted' } })
    const config = configWith({ secretsFile: file })
    await expect(resolveSigners(config, ['node'])).rejects.toThrow(
      `no password for keystore ${join(dir, 'secrets', 'keystores', 'prompted')}: set node.passwordFile in ${file} (no terminal to ask on)`,
    )
    const asked: string[] = []
    const prompt = async (q: string) => {
      asked.push(q)
      return 'pw'
    }
    const s = await resolveSigners(config, ['node', 'relayer'], { prompt })
    expect(s.node?.privateKey).toBe(NODE_KEY)
    expect(s.relayer?.privateKey).toBe(NODE_KEY)
    expect(asked).toHaveLength(1)
  })

  test('behavior: raw keys (secrets or configuration) warn; the relayer defaults to the node', async () => {
    const file = await secretsFile('c', { validator: { privateKey: VALIDATOR_KEY } })
    const warnings: string[] = []
    const s = await resolveSigners(configWith({ secretsFile: file, node: { privateKey: NODE_KEY } }), ['validator', 'relayer'], {
      warn: (l) => warnings.push(l),
    })
    expect(s.validator?.privateKey).toBe(VALIDATOR_KEY)
    expect(s.relayer?.privateKey).toBe(NODE_KEY)
    expect(s.relayer?.role).toBe('relayer')
    expect(Object.keys(s).sort()).toEqual(['relayer', 'validator'])
    expect(warnings).toEqual([
      `the validator key is a raw privateKey in ${file}: local development only; use a keystore (sertn keys import)`,
      "the node key is the configuration's raw node.privateKey: local development only; use a keystore in a secrets file",
    ])
  })

  test('behavior: no key anywhere is no signer (the caller decides), and no secrets file is no error', async () => {
    expect(await resolveSigners(configWith(), ['node', 'relayer', 'validator'], { env: {} })).toEqual({})
    expect(loadSecrets(configWith(), {})).toBeUndefined()
  })

  test('error: a wrong password names the keystore and where it is configured', async () => {
    await writeFile(join(dir, 'secrets', 'bad.password'), 'nope')
    const file = await secretsFile('d', { node: { keystore: 'keystores/node', passwordFile: 'bad.password' } })
    await expect(resolveSigners(configWith({ secretsFile: file }), ['node'])).rejects.toThrow(
      `wrong password for keystore ${join(dir, 'secrets', 'keystores', 'node')} (node.keystore in ${file})`,
    )
  })

  test('error: an invalid secrets file names the field; SERTN_SECRETS names the file when the config does not', async () => {
    const file = await secretsFile('e', { node: { keystore: 'k', privateKey: NODE_KEY } })
    expect(() => loadSecrets(configWith({ secretsFile: file }))).toThrow(new RegExp(`^invalid secrets file ${file}: node: `))
    expect(() => loadSecrets(configWith(), { SERTN_SECRETS: join(dir, 'nope.json') })).toThrow(
      `secrets file ${join(dir, 'nope.json')} not found (set by SERTN_SECRETS): create it or fix the path`,
    )
  })
})

describe('without a password', () => {
  test('default: an address where one is known without decrypting; the Temporal API key, secrets before the environment', async () => {
    const file = await secretsFile('f', { node: { keystore: 'keystores/node' }, temporal: { apiKey: 'from-secrets' } })
    expect(signerAddressHint(configWith({ secretsFile: file }), 'node')).toBeUndefined()
    expect(signerAddressHint(configWith({ node: { privateKey: NODE_KEY } }), 'node', {})).toBe(privateKeyToAccount(NODE_KEY).address)
    expect(temporalApiKeyOf(configWith({ secretsFile: file }), { TEMPORAL_API_KEY: 'from-env' })).toBe('from-secrets')
    expect(temporalApiKeyOf(configWith(), { TEMPORAL_API_KEY: 'from-env' })).toBe('from-env')
  })
})
