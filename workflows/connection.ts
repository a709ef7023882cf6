/**
 * How every Sertn process reaches Temporal, in one place: the frontend's address and namespace, TLS
 * (`temporal.tls`: `true` for the system's roots, or files for a private CA, mTLS client
 * certificates and a server name override), and an API key (the secrets file's `temporal.apiKey`,
 * else `TEMPORAL_API_KEY`; the SDK then turns TLS on unless `tls` is `false`). Workers connect with
 * {@link connectTemporalWorker} (NativeConnection), clients with {@link connectTemporalClient}
 * (Connection); a local dev server is reached with its address alone.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Connection } from '@temporalio/client'
import type { NativeConnection } from '@temporalio/worker'
import type { SertnConfig } from '../core/config.ts'
import { ConfigError } from '../core/errors.ts'
import { temporalApiKeyOf } from '../core/secrets.ts'

/** TLS as both SDK connections take it (`TLSConfig` of @temporalio/common). */
export type TemporalTls = {
  serverNameOverride?: string
  serverRootCACertificate?: Uint8Array
  clientCertPair?: { crt: Uint8Array; key: Uint8Array }
}

/** What a connection to Temporal is opened with. */
export type TemporalConnectionOptions = {
  address: string
  tls?: TemporalTls | boolean
  apiKey?: string
}

/** The configuration a connection reads: `temporal.address`, `temporal.tls`, and the secrets file for the API key. */
export type TemporalConnectionConfig = {
  temporal: Pick<SertnConfig['temporal'], 'address'> & { tls?: SertnConfig['temporal']['tls'] }
  secretsFile?: string | undefined
}

/** Reads a certificate or key file named by `temporal.tls.<field>`: a ConfigError naming both when it cannot. */
function readTlsFile(file: string, field: string): Buffer {
  const path = resolve(file)
  try {
    return readFileSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ConfigError(
      code === 'ENOENT'
        ? `temporal.tls.${field}: ${path} not found`
        : `temporal.tls.${field}: cannot read ${path} (${code ?? String(err)})`,
    )
  }
}

/**
 * The connection options of a configuration: its address, its TLS (certificate files read here;
 * paths relative to the working directory), its API key.
 *
 * @example
 * const connection = await Connection.connect(temporalConnectionOptions(config))
 */
export function temporalConnectionOptions(
  config: TemporalConnectionConfig,
  env: NodeJS.ProcessEnv = process.env,
): TemporalConnectionOptions {
  const t = config.temporal.tls
  let tls: TemporalTls | boolean | undefined
  if (typeof t === 'boolean') tls = t
  else if (t) {
    if ((t.clientCertFile === undefined) !== (t.clientKeyFile === undefined))
      throw new ConfigError(
        `temporal.tls: mTLS needs both clientCertFile and clientKeyFile (only ${t.clientCertFile ? 'clientCertFile' : 'clientKeyFile'} is set)`,
      )
    tls = {
      ...(t.serverNameOverride !== undefined ? { serverNameOverride: t.serverNameOverride } : {}),
      ...(t.serverRootCaCertFile !== undefined
        ? { serverRootCACertificate: readTlsFile(t.serverRootCaCertFile, 'serverRootCaCertFile') }
        : {}),
      ...(t.clientCertFile !== undefined && t.clientKeyFile !== undefined
        ? { clientCertPair: { crt: readTlsFile(t.clientCertFile, 'clientCertFile'), key: readTlsFile(t.clientKeyFile, 'clientKeyFile') } }
        : {}),
    }
  }
  const apiKey = temporalApiKeyOf(config, env)
  return { address: config.temporal.address, ...(tls !== undefined ? { tls } : {}), ...(apiKey !== undefined ? { apiKey } : {}) }
}

/** Whether `options` come from a configuration (else they are a bare address's). */
const optionsOf = (source: TemporalConnectionOptions | TemporalConnectionConfig): TemporalConnectionOptions =>
  'temporal' in source ? temporalConnectionOptions(source) : source

/** A worker's connection (NativeConnection) to the configured Temporal frontend, or to `{ address }`. */
export async function connectTemporalWorker(source: TemporalConnectionOptions | TemporalConnectionConfig): Promise<NativeConnection> {
  const options = optionsOf(source)
  // Loaded here: a client-only command need not load the worker's native core.
  const { NativeConnection } = await import('@temporalio/worker')
  return NativeConnection.connect(options)
}

/** A client's connection (Connection) to the configured Temporal frontend, or to `{ address }`. */
export function connectTemporalClient(
  source: TemporalConnectionOptions | TemporalConnectionConfig,
  options: { connectTimeoutMs?: number } = {},
): Promise<Connection> {
  return Connection.connect({
    ...optionsOf(source),
    ...(options.connectTimeoutMs !== undefined ? { connectTimeout: options.connectTimeoutMs } : {}),
  })
}
