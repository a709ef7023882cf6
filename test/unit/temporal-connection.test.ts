/**
 * Temporal connection options (workflows/connection.ts): the configuration's address, TLS (system
 * roots, or certificate files read here) and API key, mapped to what NativeConnection.connect and
 * Connection.connect take; a missing certificate file is a ConfigError naming the field and the file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ConfigError } from '../../core/errors.ts'
import { temporalConnectionOptions } from '../../workflows/connection.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-temporal-tls-'))
  await writeFile(join(dir, 'ca.pem'), 'CA')
  await writeFile(join(dir, 'client.pem'), 'CERT')
  await writeFile(join(dir, 'client.key'), 'KEY')
  await writeFile(join(dir, 'secrets.json'), JSON.stringify({ temporal: { apiKey: 'secret-key' } }))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('temporalConnectionOptions', () => {
  test('default: the address alone (a local dev server)', () => {
    expect(temporalConnectionOptions({ temporal: { address: '127.0.0.1:7233' } }, {})).toEqual({ address: '127.0.0.1:7233' })
  })

  test('args: tls true (system roots) with the API key of the secrets file, else of TEMPORAL_API_KEY', () => {
    const temporal = { address: 'ns.acct.tmprl.cloud:7233', tls: true }
    expect(temporalConnectionOptions({ temporal, secretsFile: join(dir, 'secrets.json') }, { TEMPORAL_API_KEY: 'env-key' })).toEqual({
      address: 'ns.acct.tmprl.cloud:7233',
      tls: true,
      apiKey: 'secret-key',
    })
    expect(temporalConnectionOptions({ temporal }, { TEMPORAL_API_KEY: 'env-key' }).apiKey).toBe('env-key')
  })

  test('args: files — server root CA, mTLS client certificate and key, server name override — read into the options', () => {
    const o = temporalConnectionOptions(
      {
        temporal: {
          address: 'temporal.internal:7233',
          tls: {
            serverNameOverride: 'frontend.internal',
            serverRootCaCertFile: join(dir, 'ca.pem'),
            clientCertFile: join(dir, 'client.pem'),
            clientKeyFile: join(dir, 'client.key'),
          },
        },
      },
      {},
    )
    expect(o.tls).toEqual({
      serverNameOverride: 'frontend.internal',
      serverRootCACertificate: Buffer.from('CA'),
      clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') },
    })
    expect(o.apiKey).toBeUndefined()
  })

  test('error: a missing certificate file names the field and the file; a certificate without its key', () => {
    const missing = join(dir, 'absent.pem')
    const run = (tls: Record<string, string>) => () => temporalConnectionOptions({ temporal: { address: 'x:7233', tls } }, {})
    expect(run({ clientCertFile: missing, clientKeyFile: join(dir, 'client.key') })).toThrow(
      new ConfigError(`temporal.tls.clientCertFile: ${missing} not found`),
    )
    expect(run({ serverRootCaCertFile: missing })).toThrow(`temporal.tls.serverRootCaCertFile: ${missing} not found`)
    expect(run({ clientCertFile: join(dir, 'client.pem') })).toThrow(
      'temporal.tls: mTLS needs both clientCertFile and clientKeyFile (only clientCertFile is set)',
    )
  })
})
