/**
 * `sertn explorer`: a read-only web page of the node's requests, served on 127.0.0.1.
 *
 * The data comes from the node's Temporal workflows (listed through visibility, each read through
 * its status query, in every operator's namespace) and from the chains (the gateway's
 * `InferenceRequested` and `InferenceFulfilled` events, the model's registration). The page
 * (cli/explorer/: plain HTML, CSS and JavaScript modules) lists the requests, shows one per page,
 * and verifies a result in the browser with the EZKL WASM engine (`@ezkljs/engine`'s web build),
 * fetching the proof and the circuit's files through this server from the configured storage.
 *
 * Endpoints (GET and HEAD only):
 * - `/`, `/request?key=…`: the pages; `/static/*`: their files; `/engine/*`: the engine's web files
 * - `/api/requests?limit=N`: the newest requests (at most {@link MAX_LIST})
 * - `/api/request?key=…`: one request
 * - `/api/artifacts/<id>`: a stored artifact's bytes, streamed from storage (at most {@link MAX_ARTIFACT_BYTES})
 *
 * The engine's web build runs on shared WebAssembly memory, which a browser grants only to a
 * cross-origin isolated page: every answer carries COOP/COEP headers, and everything is served
 * from this one origin. Request data comes from chains and is untrusted: the page renders it as
 * text only, and a strict content security policy forbids inline scripts.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, extname, join, resolve, sep } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { Client } from '@temporalio/client'
import { createPublicClient, getAddress, type Address, type Hex, type PublicClient } from 'viem'
import { evmChainOf } from '../chains/evm/chain.ts'
import { sertnTransport } from '../chains/evm/clients.ts'
import { readRegisteredCircuit } from '../chains/evm/plugin/registry.ts'
import { InferenceGateway } from '../contracts/artifacts/index.ts'
import type { SertnConfig } from '../core/config.ts'
import { SertnError } from '../core/errors.ts'
import { base64UrlIdOf } from '../core/storage-ref.ts'
import { parseRequestKey, type RequestKey } from '../core/types.ts'
import { getRequestStatus, type RequestStatus } from '../workflows/client.ts'
import { SEARCH_ATTRIBUTES } from '../workflows/messages.ts'
import { connectOperators, openStack, type StackOperator } from './common.ts'

/** The most requests one list answer holds. */
export const MAX_LIST = 100
/** The list's default length. */
export const DEFAULT_LIST = 25
/** The largest artifact the artifacts endpoint passes on (an SRS of logrows 20 is 64 MiB). */
export const MAX_ARTIFACT_BYTES = 256 * 2 ** 20
/** How long one status query or chain read may take before the answer goes without it. */
const READ_TIMEOUT_MS = 10_000

const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'explorer')
/** The EZKL engine's web build (its wasm-bindgen module, its wasm, its thread-pool snippet), wherever npm put the package. */
const ENGINE_DIR = join(dirname(createRequire(import.meta.url).resolve('@ezkljs/engine/package.json')), 'web')
/** An Arweave transaction id (base64url of 32 bytes). */
const ARTIFACT_ID = /^[A-Za-z0-9_-]{43}$/

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
}

/** Headers on every answer: same-origin only, cross-origin isolated (the engine's shared memory), no inline script. */
const SECURITY_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}

export type ExplorerOptions = {
  dataDir?: string | undefined
  config?: string | undefined
  /** Default 127.0.0.1: the page shows what the node knows, to this machine only. */
  host?: string | undefined
  /** Default 8090; 0: any free port. */
  port?: number | undefined
}

/** A running explorer. */
export type Explorer = { url: string; server: Server; close: () => Promise<void> }

/** One operator's workflow of a request, as the explorer shows it. */
type Found = { operator: StackOperator; status: RequestStatus }

/** What the explorer reads the chains with, per configured chain. */
type ChainReader = {
  name: string
  chainId: number
  gateway: Address
  registry: Address | undefined
  client: PublicClient
  fromBlock: bigint
}

/** Starts the explorer's server; resolves once it listens. */
export async function startExplorer(opts: ExplorerOptions): Promise<Explorer> {
  const stack = openStack(opts)
  const temporal = await connectOperators(stack)
  const chains = chainReaders(stack.config)
  const storageUrl = stack.config.storage.arweave.url.replace(/\/+$/, '')
  const host = opts.host ?? '127.0.0.1'
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: err instanceof Error ? err.message : String(err) })
      else res.destroy()
    })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 60_000
  server.maxConnections = 64

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY_HEADERS, Allow: 'GET, HEAD' }).end()
      return
    }
    // A page elsewhere cannot reach this one through a name of its own that resolves here (DNS rebinding).
    if (!allowedHost(req.headers.host, host, (server.address() as AddressInfo).port)) {
      json(res, 421, { error: 'unexpected Host header' })
      return
    }
    const url = new URL(req.url ?? '/', 'http://explorer.invalid')
    const path = url.pathname
    if (path === '/' || path === '/index.html') return file(res, join(PAGE_DIR, 'index.html'), req)
    if (path === '/request') return file(res, join(PAGE_DIR, 'request.html'), req)
    if (path.startsWith('/static/')) return file(res, inside(PAGE_DIR, path.slice('/static/'.length)), req)
    // The engine's utils.js imports a package by bare name only to (de)serialize JSON, which the page does not use it for.
    if (path === '/engine/utils.js') return file(res, join(PAGE_DIR, 'engine-utils.mjs'), req)
    if (path.startsWith('/engine/')) return file(res, inside(ENGINE_DIR, path.slice('/engine/'.length)), req)
    if (path === '/api/requests') {
      const raw = Number(url.searchParams.get('limit') ?? DEFAULT_LIST)
      const limit = Number.isInteger(raw) && raw > 0 ? Math.min(raw, MAX_LIST) : DEFAULT_LIST
      return json(res, 200, await listRequests(temporal.operators, chains, limit))
    }
    if (path === '/api/request') {
      const key = url.searchParams.get('key') ?? ''
      try {
        parseRequestKey(key)
      } catch (err) {
        return json(res, 400, { error: err instanceof Error ? err.message : String(err) })
      }
      const found = await requestDetail(temporal.operators, chains, key as RequestKey)
      return json(res, found ? 200 : 404, found ?? { error: `no node has seen request ${key} (yet)` })
    }
    if (path.startsWith('/api/artifacts/')) {
      const id = path.slice('/api/artifacts/'.length)
      if (!ARTIFACT_ID.test(id)) return json(res, 400, { error: 'an artifact id is 43 base64url characters' })
      return artifact(res, storageUrl, id, req)
    }
    json(res, 404, { error: `no such page: ${path}` })
  }

  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail)
      server.listen(opts.port ?? 8090, host, () => {
        server.off('error', fail)
        ok()
      })
    })
  } catch (err) {
    await temporal.close()
    const code = (err as NodeJS.ErrnoException).code
    throw new SertnError(
      `cannot serve the explorer on ${host}:${opts.port ?? 8090}: ${code ?? (err instanceof Error ? err.message : String(err))}`,
      {
        details: code === 'EADDRINUSE' ? 'The port is taken: pass another with --port N (0: any free port).' : 'Check --host and --port.',
        cause: err,
      },
    )
  }
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((ok) => server.close(() => ok()))
      await temporal.close()
    },
  }
}

/** `sertn explorer`: serves until Ctrl-C. */
export async function explorerCommand(opts: ExplorerOptions): Promise<number> {
  const explorer = await startExplorer(opts)
  console.log(`explorer on ${explorer.url}/`)
  if (opts.host && !['127.0.0.1', 'localhost', '::1'].includes(opts.host))
    console.error(
      'warning: served beyond this machine; in-browser verification needs a secure context (open it as 127.0.0.1, or behind HTTPS)',
    )
  await new Promise<void>((done) => {
    const stop = () => done()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await explorer.close()
  return 0
}

// ─────────────────────────────── data ───────────────────────────────

/** A public client per configured chain, with where its events are looked for. */
function chainReaders(config: SertnConfig): ChainReader[] {
  return Object.entries(config.chains).map(([name, c]) => ({
    name,
    chainId: c.chainId,
    gateway: getAddress(c.gateway),
    registry: c.registry ? getAddress(c.registry) : undefined,
    client: createPublicClient({
      chain: evmChainOf(c.chainId, name, c.rpcUrl),
      transport: sertnTransport([c.rpcUrl, ...c.fallbackRpcUrls], name, { timeoutMs: READ_TIMEOUT_MS }),
    }) as PublicClient,
    fromBlock: BigInt(c.startBlock ?? 0),
  }))
}

/** `p`, or undefined with the reason after `READ_TIMEOUT_MS` or on failure. */
async function attempt<T>(p: () => Promise<T>): Promise<{ value?: T; error?: string }> {
  let timer: NodeJS.Timeout | undefined
  try {
    const value = await Promise.race([
      p(),
      new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`no answer in ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS))),
    ])
    return { value }
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) }
  } finally {
    clearTimeout(timer)
  }
}

/** Runs `f` over `items`, `width` at a time. */
async function pooled<T, R>(items: readonly T[], width: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await f(items[i]!)
      }
    }),
  )
  return out
}

/**
 * Every operator's workflow of request `key`, and the one to show: the assigned operator's; until
 * the hub assigns it, the first that did not stand aside (as `sertn status` chooses).
 */
async function readStatuses(
  operators: readonly (StackOperator & { client: Client })[],
  key: string,
): Promise<{ shown: Found; others: Found[] } | undefined> {
  const found: Found[] = []
  for (const operator of operators) {
    const r = await attempt(() => getRequestStatus(operator.client, key))
    if (r.value) found.push({ operator, status: r.value })
  }
  const shown = found.find((f) => f.status.assignment?.mine) ?? found.find((f) => f.status.stage !== 'settled-elsewhere') ?? found[0]
  return shown ? { shown, others: found.filter((f) => f !== shown) } : undefined
}

const operatorView = (o: StackOperator) => ({ name: o.name, namespace: o.namespace, ...(o.address ? { address: o.address } : {}) })

/** The parts of a status the pages show. */
function statusView(s: RequestStatus) {
  return {
    stage: s.stage,
    running: s.running,
    startedAt: s.startedAt,
    workflowId: s.workflowId,
    timings: s.timings,
    ...(s.model ? { model: s.model } : {}),
    ...(s.hub ? { hub: s.hub } : {}),
    ...(s.output ? { output: s.output } : {}),
    ...(s.storage ? { storage: s.storage } : {}),
    ...(s.transactionHash ? { transactionHash: s.transactionHash } : {}),
    ...(s.error ? { error: s.error } : {}),
    ...(s.assignment ? { assignment: s.assignment } : {}),
    ...(s.batch ? { batch: s.batch } : {}),
    ...(s.copies ? { copies: s.copies } : {}),
  }
}

/** Gas per transaction of a status: each hop's and stage's, the batch's. */
function gasOf(s: RequestStatus): string | undefined {
  const all = Object.values(s.timings).flatMap((t) => (t?.gasUsed ? [BigInt(t.gasUsed)] : []))
  return all.length ? all.reduce((a, b) => a + b, 0n).toString() : undefined
}

/** A request's workflow as visibility lists it (what the list shows when its status query goes unanswered). */
type Listed = { startedAt: number; stage?: string; closed: boolean; operator: StackOperator }

/** The newest requests across every operator's namespace, each with its shown workflow's status. */
async function listRequests(operators: readonly (StackOperator & { client: Client })[], chains: readonly ChainReader[], limit: number) {
  const listed = new Map<string, Listed>()
  const errors: string[] = []
  for (const operator of operators) {
    const r = await attempt(async () => {
      let n = 0
      for await (const w of operator.client.workflow.list({ query: "WorkflowType = 'requestWorkflow'" })) {
        const key = (w.typedSearchAttributes.get(SEARCH_ATTRIBUTES.requestKey) as string | undefined) ?? w.workflowId.split('@')[0]!
        const startedAt = w.startTime.getTime()
        const known = listed.get(key)
        if (!known || known.startedAt < startedAt) {
          const stage = w.typedSearchAttributes.get(SEARCH_ATTRIBUTES.stage) as string | undefined
          listed.set(key, { startedAt, ...(stage ? { stage } : {}), closed: w.status.name !== 'RUNNING', operator })
        }
        if (++n >= limit * 2) break
      }
    })
    if (r.error) errors.push(`listing the workflows of ${operator.name} (namespace ${operator.namespace}): ${r.error}`)
  }
  const newest = [...listed.entries()].sort((a, b) => b[1].startedAt - a[1].startedAt).slice(0, limit)
  let unanswered = 0
  const rows = await pooled(newest, 4, async ([key, seen]) => {
    const { chainId, requestId } = parseRequestKey(key)
    const chain = chainOfKey(chains, key)
    const base = { key, ...(chain ? { chain: chain.name } : {}), chainId: Number(chainId), requestId }
    const read = await readStatuses(operators, key)
    if (!read) {
      unanswered++
      return {
        ...base,
        ...(seen.stage ? { stage: seen.stage } : {}),
        running: !seen.closed,
        startedAt: seen.startedAt,
        operator: operatorView(seen.operator),
      }
    }
    const s = read.shown.status
    const hops = (['hubRecord', 'submit', 'spokeSettle', 'hubSettle'] as const).filter((h) => s.timings[h]).length
    const gas = gasOf(s)
    return {
      ...base,
      stage: s.stage,
      running: s.running,
      startedAt: s.startedAt,
      ...(s.model ? { model: s.model.name } : {}),
      hops,
      ...(s.transactionHash ? { transactionHash: s.transactionHash } : {}),
      ...(gas ? { gasUsed: gas } : {}),
      ...(s.storage ? { storage: { output: s.storage.output.id, proof: s.storage.proof.id } } : {}),
      operator: operatorView(read.shown.operator),
    }
  })
  if (unanswered)
    errors.push(
      `${unanswered} request${unanswered === 1 ? '' : 's'} shown from visibility alone: their status queries went unanswered (a query needs the node's chain-io worker running)`,
    )
  return { requests: rows, ...(errors.length ? { errors } : {}) }
}

function chainOfKey(chains: readonly ChainReader[], key: string): ChainReader | undefined {
  const { chainId, gateway } = parseRequestKey(key)
  return chains.find((c) => c.chainId === Number(chainId) && c.gateway.toLowerCase() === gateway)
}

const str = (v: unknown): unknown =>
  typeof v === 'bigint' ? v.toString() : Array.isArray(v) ? v.map(str) : v && typeof v === 'object' ? objStr(v) : v
const objStr = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, str(v)]))

/** One request: its workflows, its events on its chain, and its model's registration (what the page verifies against). */
async function requestDetail(operators: readonly (StackOperator & { client: Client })[], chains: readonly ChainReader[], key: RequestKey) {
  const [read, onChain] = await Promise.all([readStatuses(operators, key), chainFacts(chains, key)])
  if (!read && !onChain.requested) return undefined
  const { chainId, gateway, requestId } = parseRequestKey(key)
  return {
    key,
    chainId: Number(chainId),
    gateway,
    requestId,
    ...(onChain.chain ? { chain: onChain.chain } : {}),
    ...(read
      ? {
          status: statusView(read.shown.status),
          gasUsed: gasOf(read.shown.status),
          operator: operatorView(read.shown.operator),
          others: read.others.map((f) => ({ ...operatorView(f.operator), stage: f.status.stage, running: f.status.running })),
        }
      : {}),
    ...(onChain.requested ? { requested: onChain.requested } : {}),
    ...(onChain.fulfilled ? { fulfilled: onChain.fulfilled } : {}),
    ...(onChain.model ? { model: onChain.model } : {}),
    ...(onChain.errors.length ? { errors: onChain.errors } : {}),
  }
}

/** What the request's chain says: its request and fulfilment events, and the model's registration. */
async function chainFacts(chains: readonly ChainReader[], key: RequestKey) {
  const errors: string[] = []
  const chain = chainOfKey(chains, key)
  if (!chain)
    return { errors: [`no configured chain has gateway ${parseRequestKey(key).gateway} on chain ${parseRequestKey(key).chainId}`] }
  const id = BigInt(parseRequestKey(key).requestId)
  const range = {
    address: chain.gateway,
    abi: InferenceGateway.abi,
    args: { requestId: id },
    fromBlock: chain.fromBlock,
    strict: true,
  } as const
  const requestedEvents = () => chain.client.getContractEvents({ ...range, eventName: 'InferenceRequested' })
  const fulfilledEvents = () => chain.client.getContractEvents({ ...range, eventName: 'InferenceFulfilled' })
  const [req, ful] = await Promise.all([attempt(requestedEvents), attempt(fulfilledEvents)])
  if (req.error) errors.push(`reading InferenceRequested on ${chain.name}: ${req.error}`)
  if (ful.error) errors.push(`reading InferenceFulfilled on ${chain.name}: ${ful.error}`)
  const r = req.value?.at(-1)
  const f = ful.value?.at(-1)
  const requested = r
    ? {
        ...(objStr(r.args) as Record<string, unknown>),
        transactionHash: r.transactionHash,
        blockNumber: r.blockNumber.toString(),
      }
    : undefined
  const fulfilled = f
    ? {
        node: f.args.node,
        output: f.args.output.map(String),
        artifacts: {
          output: base64UrlIdOf(f.args.artifacts.output),
          proof: base64UrlIdOf(f.args.artifacts.proof),
        },
        callbackStatus: f.args.callbackStatus,
        callbackGasUsed: f.args.callbackGasUsed.toString(),
        transactionHash: f.transactionHash,
        blockNumber: f.blockNumber.toString(),
      }
    : undefined
  let model: Record<string, unknown> | undefined
  const registry = chain.registry
  if (r && registry) {
    const m = await attempt(() => readRegisteredCircuit(chain.client, registry, r.args.modelId as Hex, 'explorer'))
    if (m.error) errors.push(`reading the model from the registry on ${chain.name}: ${m.error}`)
    else if (m.value) {
      const c = m.value
      model = {
        modelId: c.modelId,
        name: c.name,
        version: c.version,
        inputScale: c.inputScale,
        outputScale: c.outputScale,
        inputVisibility: c.inputVisibility,
        outputVisibility: c.outputVisibility,
        insecureSrs: c.insecureSrs,
        registry,
        artifacts: { ...c.artifacts, indexId: base64UrlIdOf(c.artifacts.index) },
      }
    }
  } else if (r) errors.push(`chain ${chain.name} has no registry configured: the model's pinned hashes are not known`)
  return { chain: chain.name, requested, fulfilled, model, errors }
}

// ─────────────────────────────── serving ───────────────────────────────

/**
 * Whether a request's Host header names this server: on a loopback or specific address, that
 * address or a loopback name with the port (a page elsewhere cannot reach it through a name of its
 * own that resolves here); on a wildcard address (served to the network on purpose), any.
 */
function allowedHost(header: string | undefined, host: string, port: number): boolean {
  if (host === '0.0.0.0' || host === '::') return true
  if (!header) return false
  const names = new Set(['127.0.0.1', 'localhost', '[::1]', host.includes(':') ? `[${host}]` : host])
  return [...names].some((n) => header === `${n}:${port}` || (port === 80 && header === n))
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_, v) => (typeof v === 'bigint' ? v.toString() : v))
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(text)
}

/** `rel` resolved inside `dir`, or undefined when it would leave it. */
function inside(dir: string, rel: string): string | undefined {
  let decoded: string
  try {
    decoded = decodeURIComponent(rel)
  } catch {
    return undefined
  }
  const p = resolve(dir, decoded)
  return p.startsWith(dir + sep) ? p : undefined
}

async function file(res: ServerResponse, path: string | undefined, req: IncomingMessage): Promise<void> {
  const type = path && CONTENT_TYPES[extname(path)]
  const info = type ? await stat(path).catch(() => undefined) : undefined
  if (!path || !type || !info?.isFile()) {
    json(res, 404, { error: 'not found' })
    return
  }
  res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': info.size, 'Cache-Control': 'no-cache' })
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  createReadStream(path).pipe(res)
}

/** Streams the artifact `id` from the storage gateway, at most {@link MAX_ARTIFACT_BYTES}. */
async function artifact(res: ServerResponse, storageUrl: string, id: string, req: IncomingMessage): Promise<void> {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), 60_000)
  res.on('close', () => abort.abort())
  try {
    let upstream: Response
    try {
      upstream = await fetch(`${storageUrl}/${id}`, { signal: abort.signal, redirect: 'error' })
    } catch (err) {
      json(res, 502, { error: `storage at ${storageUrl} did not answer: ${err instanceof Error ? err.message : String(err)}` })
      return
    }
    if (upstream.status === 404) return json(res, 404, { error: `artifact ${id} is not in storage (yet)` })
    if (upstream.status !== 200 || !upstream.body) return json(res, 502, { error: `storage answered HTTP ${upstream.status} for ${id}` })
    const length = Number(upstream.headers.get('content-length') ?? Number.NaN)
    if (length > MAX_ARTIFACT_BYTES)
      return json(res, 413, { error: `artifact ${id} holds ${length} bytes, more than this explorer passes on` })
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': `attachment; filename="${id}"`,
      'Cache-Control': 'no-store',
      ...(Number.isFinite(length) ? { 'Content-Length': length } : {}),
    })
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    let sent = 0
    const body = Readable.fromWeb(upstream.body as never)
    body.on('data', (chunk: Buffer) => {
      sent += chunk.length
      if (sent > MAX_ARTIFACT_BYTES) body.destroy(new SertnError(`artifact ${id} is larger than ${MAX_ARTIFACT_BYTES} bytes`))
    })
    await new Promise<void>((done) => {
      body.on('error', () => {
        res.destroy()
        done()
      })
      res.on('close', done)
      body.pipe(res)
    })
  } finally {
    clearTimeout(timer)
  }
}
