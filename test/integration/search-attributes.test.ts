/**
 * Sertn's search attributes on a server that lacks them (a cluster where nobody created them) and
 * on the local dev server, against real Temporal dev servers:
 * - the chain-io worker says so at start in one line that names the command to run, and that
 *   command (run with the Temporal CLI) creates them;
 * - request workflows still start there, without them, and are found by key;
 * - the dev server adds them at start to a database file made without them.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Client, Connection } from '@temporalio/client'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseConfig } from '../../core/config.ts'
import { waitFor } from '../../core/process.ts'
import { requestKey, type ChainId, type InferenceRequest, type ModelId, type RequestId } from '../../core/types.ts'
import {
  checkSearchAttributes,
  findRequestWorkflows,
  missingSearchAttributes,
  SEARCH_ATTRIBUTE_NAMES,
  startRequestWorkflow,
} from '../../workflows/client.ts'
import { requestWorkflowIdOf, SEARCH_ATTRIBUTES } from '../../workflows/messages.ts'
import { runWorkers, taskQueuesOf } from '../../workflows/worker/index.ts'
import { ensureTemporalCli } from '../../workflows/worker/temporal-cli.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'
import { workflowBundle } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const GATEWAY = `0x${'22'.repeat(20)}` as const
/** A namespace left without the search attributes until the dev server is started again on its file. */
const BARE = 'bare'

let dir: string
let server: TemporalDevServer | undefined
const connections: Connection[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-search-attributes-'))
})

afterAll(async () => {
  for (const c of connections) await c.close().catch(() => {})
  await server?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function clientOf(address: string, namespace: string): Promise<Client> {
  const connection = await Connection.connect({ address })
  connections.push(connection)
  return new Client({ connection, namespace })
}

const request = (id: number): InferenceRequest => ({
  key: requestKey(31337, GATEWAY, BigInt(id)),
  chainId: 31337 as ChainId,
  gateway: GATEWAY,
  requestId: String(id) as RequestId,
  modelId: `0x${'33'.repeat(32)}` as ModelId,
  modelVersion: 1,
  requester: `0x${'44'.repeat(20)}`,
  input: ['1', '2', '3', '4'],
  callbackGasLimit: 100_000,
  escrow: '0',
  deadline: Math.floor(Date.now() / 1000) + 3600,
  seenAt: {
    blockNumber: '1',
    blockHash: `0x${'55'.repeat(32)}`,
    transactionHash: `0x${'66'.repeat(31)}${id.toString(16).padStart(2, '0')}`,
    logIndex: 0,
  },
})

describe('search attributes', () => {
  test('behavior: a namespace without them: the worker says so in one line with the command, which creates them; requests start without them', async () => {
    const dbFile = join(dir, 'temporal.db')
    server = await startTemporalDevServer({ dbFile, extraNamespaces: [BARE], searchAttributes: false })
    const client = await clientOf(server.address, 'default')
    expect(await missingSearchAttributes(client.connection, 'default')).toEqual(SEARCH_ATTRIBUTE_NAMES)

    // The chain-io worker (it starts the request workflows) says so at start, in one line.
    const config = parseConfig({
      node: { privateKey: `0x${'11'.repeat(32)}` },
      chains: { local: { chainId: 31337, rpcUrl: 'http://127.0.0.1:9', gateway: GATEWAY } },
      temporal: { address: server.address, namespace: 'default' },
    })
    const logs: string[] = []
    const stop = new AbortController()
    const done = runWorkers({
      config,
      roles: ['chain-io'],
      signal: stop.signal,
      workflowBundle: await workflowBundle(),
      log: (l) => logs.push(l),
    })
    try {
      await waitFor('the worker to start', async () => logs.some((l) => l.startsWith('[worker] chain-io polling')), { timeoutMs: 30_000 })
    } finally {
      stop.abort()
      await done.catch(() => {})
    }
    const told = logs.filter((l) => l.includes('search attributes'))
    expect(told).toHaveLength(1)
    expect(told[0]).not.toContain('\n')
    const command = /temporal operator search-attribute create .*$/.exec(told[0]!)?.[0]
    expect(command).toBe(
      `temporal operator search-attribute create --namespace default ${SEARCH_ATTRIBUTE_NAMES.map((n) => `--name ${n} --type Keyword`).join(' ')}`,
    )

    // A request workflow starts without them, and is found by its key.
    const r = request(1)
    expect((await checkSearchAttributes(client)).ready).toBe(false)
    expect(await startRequestWorkflow(client, r, taskQueuesOf(config))).toBe('started')
    const description = await client.workflow.getHandle(requestWorkflowIdOf(r)).describe()
    expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.requestKey)).toBeUndefined()
    await waitFor('visibility to list it', async () => (await findRequestWorkflows(client, r.key)).length === 1, { timeoutMs: 20_000 })
    await client.workflow.getHandle(requestWorkflowIdOf(r)).terminate('test done')

    // The command the worker named creates them.
    const cli = await ensureTemporalCli()
    await promisify(execFile)(cli, [...command!.split(' ').slice(1), '--address', server.address], { timeout: 30_000 })
    expect(await missingSearchAttributes(client.connection, 'default')).toEqual([])
    const fresh = await clientOf(server.address, 'default')
    expect(await checkSearchAttributes(fresh)).toEqual({ ready: true })
    const r2 = request(2)
    expect(await startRequestWorkflow(fresh, r2, taskQueuesOf(config))).toBe('started')
    const attributes = (await fresh.workflow.getHandle(requestWorkflowIdOf(r2)).describe()).typedSearchAttributes
    expect(attributes.get(SEARCH_ATTRIBUTES.requestKey)).toBe(r2.key)
    expect(attributes.get(SEARCH_ATTRIBUTES.stage)).toBe('received')
    await fresh.workflow.getHandle(requestWorkflowIdOf(r2)).terminate('test done')
    // A key's lookup lists its own workflows only: request 10's key starts with request 1's.
    const r10 = request(10)
    expect(await startRequestWorkflow(fresh, r10, taskQueuesOf(config))).toBe('started')
    await waitFor('visibility to list request 10', async () => (await findRequestWorkflows(fresh, r10.key)).length === 1, {
      timeoutMs: 20_000,
    })
    expect((await findRequestWorkflows(fresh, r.key)).map((w) => w.workflowId)).toEqual([requestWorkflowIdOf(r)])
    await fresh.workflow.getHandle(requestWorkflowIdOf(r10)).terminate('test done')
    expect(await missingSearchAttributes(client.connection, BARE)).toEqual(SEARCH_ATTRIBUTE_NAMES)
  }, 120_000)

  test('behavior: the dev server started again on a database file made without them adds them to every namespace', async () => {
    const dbFile = join(dir, 'temporal.db')
    await server!.stop()
    server = await startTemporalDevServer({ dbFile, extraNamespaces: [BARE] })
    const client = await clientOf(server.address, BARE)
    expect(await missingSearchAttributes(client.connection, BARE)).toEqual([])
    expect(await missingSearchAttributes(client.connection, 'default')).toEqual([])
  }, 60_000)
})
