/**
 * The Temporal dev server on 127.0.0.1, persisted to a SQLite file, in its own process group, with
 * Sertn's search attributes (SertnRequestKey, SertnChain, SertnModel, SertnNode, SertnStage: see
 * SEARCH_ATTRIBUTES in workflows/messages.ts) in every namespace: registered at start
 * (`--search-attribute Name=Keyword`), and added after it when a database file made without them
 * is reused (the flag only applies to namespaces it creates).
 *
 * A cluster (self-hosted or Temporal Cloud) needs them created once per namespace:
 * `temporal operator search-attribute create --namespace <ns> --name SertnRequestKey --type Keyword
 * --name SertnChain --type Keyword --name SertnModel --type Keyword --name SertnNode --type Keyword
 * --name SertnStage --type Keyword`. Without them workers say so at start and run requests without.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { freePort, type ManagedProcess, retryOnPortTaken, startProcess, waitForProcess } from '../../core/process.ts'
import { addSearchAttributes, SEARCH_ATTRIBUTE_NAMES } from '../client.ts'
import { connectTemporalClient } from '../connection.ts'
import { ensureTemporalCli } from './temporal-cli.ts'

export type StartTemporalParameters = {
  /** gRPC port (default: a free one). */
  port?: number
  /** Web UI port; omit for a headless server. */
  uiPort?: number
  /** SQLite file to persist to (default: in memory). */
  dbFile?: string
  namespace?: string
  /** More namespaces to create beside `namespace` (e.g. one per operator of a local network). */
  extraNamespaces?: readonly string[]
  /** Registers Sertn's search attributes in every namespace (default true; false: a cluster where nobody created them). */
  searchAttributes?: boolean
  echo?: boolean
}

export type TemporalDevServer = {
  /** host:port for clients and workers. */
  address: string
  port: number
  uiUrl: string | undefined
  namespace: string
  process: ManagedProcess
  stop(): Promise<void>
}

/**
 * Starts `temporal server start-dev` and waits until it answers. Ports it picks itself are picked
 * again if one was taken before the server bound it.
 */
export async function startTemporalDevServer(params: StartTemporalParameters = {}): Promise<TemporalDevServer> {
  const cli = await ensureTemporalCli()
  return retryOnPortTaken(() => startOnce(cli, params))
}

async function startOnce(cli: string, params: StartTemporalParameters): Promise<TemporalDevServer> {
  const port = params.port ?? (await freePort())
  const namespace = params.namespace ?? 'default'
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', namespace, '--log-level', 'warn']
  // Activities on the workflow's own task queue (store, fulfil) are handed to the worker with the
  // workflow task's completion instead of going through matching: one round trip less each.
  args.push('--dynamic-config-value', 'system.enableActivityEagerExecution=true')
  // Likewise a workflow started by a worker's own client (the chain watcher) gets its first task at once.
  args.push('--dynamic-config-value', 'system.enableEagerWorkflowStart=true')
  for (const extra of params.extraNamespaces ?? []) args.push('--namespace', extra)
  const searchAttributes = params.searchAttributes ?? true
  if (searchAttributes) for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`)
  if (params.uiPort !== undefined) args.push('--ui-port', String(params.uiPort), '--ui-ip', '127.0.0.1')
  else args.push('--headless')
  if (params.dbFile) {
    mkdirSync(dirname(params.dbFile), { recursive: true })
    args.push('--db-filename', params.dbFile)
    // SQLite's default rollback journal syncs the file on every commit: under a burst the server
    // spends its time waiting on the disk, its task queues fall tens of seconds behind and an
    // activity waits that long for an idle worker. A write-ahead log synced at checkpoints keeps
    // every commit across a crash of the server (only a crash of the machine may lose the last ones).
    args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal')
  }
  // The dev server also opens an HTTP API port and a metrics port: keep them on loopback and free.
  args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()))
  const proc = startProcess({ name: `temporal:${port}`, command: cli, args, echo: params.echo ?? false })
  const address = `127.0.0.1:${port}`
  await waitForProcess(
    proc,
    `the Temporal dev server on ${address}`,
    async () => {
      const conn = await connectTemporalClient({ address }, { connectTimeoutMs: 1000 })
      try {
        await conn.workflowService.describeNamespace({ namespace })
        return true
      } finally {
        await conn.close()
      }
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  )
  if (searchAttributes) {
    // A database file made without the search attributes keeps its namespaces as they were.
    const conn = await connectTemporalClient({ address })
    try {
      for (const ns of [namespace, ...(params.extraNamespaces ?? [])]) await addSearchAttributes(conn, ns)
    } catch (err) {
      await proc.stop()
      throw err
    } finally {
      await conn.close()
    }
  }
  return {
    address,
    port,
    namespace,
    uiUrl: params.uiPort !== undefined ? `http://127.0.0.1:${params.uiPort}` : undefined,
    process: proc,
    stop: () => proc.stop(10_000),
  }
}
