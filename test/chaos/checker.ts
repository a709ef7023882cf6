/**
 * The chaos run's checker: reads only the chains (events and state; not the node's own records,
 * not Temporal) and proves, for every accepted request of a run, that it ended exactly once and
 * that every wei is where the contracts say it must be.
 *
 * The requests checked are the record's and every `InferenceRequested` on the record's gateways
 * since the chain's `fromBlock` (a request the load generator lost track of is checked too). For
 * each, the rules (a violation names its rule):
 * - `accepted`: a recorded request is on its chain as recorded (its event, in its transaction,
 *   with its consumer, model and input);
 * - `outcome`: exactly one terminal event (InferenceFulfilled, InferenceFailed, InferenceRefunded)
 *   and the stored status agreeing; none is `lost` once the deadline has passed (`pending` before);
 *   more than one is `doubled`;
 * - `expiry`: a request the generator sent with a deadline nobody could meet (`expectExpiry`) ended
 *   refunded, or failed with `Timeout` (its escrow paid back with the error callback), never
 *   fulfilled or failed otherwise;
 * - `callback`: the requester called back at most once, and a recording consumer's own record
 *   agrees with the gateway's (the result it kept is the delivered output; an error only when the
 *   request failed or was refunded, never both);
 * - `fee`: the escrow (from the request's event, equal to the stored escrow) paid once, to the node
 *   that delivered (on the hub the node the registry assigned; from a spoke the node that submitted
 *   the result to the market), less a batch's rebate, or refunded to the requester in full: value
 *   transfers read from the settling transaction's call trace, plus its `PaymentDeferred`;
 * - `ledger`: each gateway's balance is what it owes (pending escrows, owed balances, unreleased
 *   batch rebates and, on a spoke, receipt reserves), its owed balances match `PaymentDeferred` −
 *   `Withdrawn`; the market holds nothing; the node registry holds its stakes, credits and protocol
 *   balance, each stake and credit matching its events; the hub's jobs closed for the node paid;
 *   the market's book agrees with each spoke's settlement;
 * - `output`: a delivered output equals onnxruntime's on the request's input, within the model's
 *   fidelity tolerance (`manifest.fidelity.tolerance`, what the circuit was built to);
 * - `proof`: the delivered proof verifies off-chain and binds the request's input and the output
 *   (`verifyResult` of @sertn/client; optionally a sample);
 * - `invalid`: a transaction the generator expected refused was mined, reverted with its expected
 *   custom error, and announced no request.
 *
 * What the contracts do not make checkable is listed in the report's `notChecked`.
 */
import { randomBytes } from 'node:crypto'
import {
  createPublicClient,
  decodeErrorResult,
  getAddress,
  keccak256,
  encodeAbiParameters,
  parseEventLogs,
  type Abi,
  type Address,
  type Hex,
  type Log,
  type PublicClient,
} from 'viem'
import { evmChainOf } from '../../chains/evm/chain.ts'
import { sertnTransport } from '../../chains/evm/clients.ts'
import { CONTRACT_ERRORS_ABI } from '../../chains/evm/plugin/rejections.ts'
import { verifyResult } from '../../client/actions/verifyResult.ts'
import { InferenceGateway, InferenceMarket, NodeRegistry, RecordingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { SertnError } from '../../core/errors.ts'
import { dequantize } from '../../core/field.ts'
import { loadModelArtifacts, type ModelArtifacts } from '../../core/manifest.ts'
import { requestKey } from '../../core/types.ts'
import { createOnnxRuntime, type OnnxRuntime } from '../../plugins/runtimes/onnx/index.ts'
import type { ChaosChain, ChaosRecord, ChaosReport, ChaosRequest, ChaosViolation } from './record.ts'

/** How {@link checkRun} reads and how much it re-runs. */
export type CheckRunOptions = {
  /**
   * How many delivered proofs to re-verify (WASM, seconds each): `'all'` (default), a count, or a
   * fraction of the fulfilled requests (0 < x < 1). The sample is spread evenly over them, from an
   * offset drawn from the record's seed.
   */
  proofs?: 'all' | number
  /** Skip the onnxruntime re-runs (default false). */
  skipOutputs?: boolean
  /** Parallel chain reads, onnx runs and proof checks (default 8). */
  concurrency?: number
  /** The most blocks one eth_getLogs spans (default 2,000). */
  blockRange?: bigint
  /** Violations kept in the report's `all` (default 1,000); all are counted. */
  maxViolations?: number
  /** Progress lines (default: none). */
  log?: (line: string) => void
}

/** What {@link checkRun} returns: the record's report, and what was checked how. */
export type ChaosCheckReport = ChaosReport & {
  /** Accepted requests with no outcome yet, still within their deadline. */
  pending: number
  /** Delivered outputs compared with onnxruntime's. */
  outputsChecked: number
  /** Delivered proofs re-verified, and how many fulfilled requests there were to verify. */
  proofsChecked: number
  proofsToCheck: number
  /** Settling transactions whose value transfers were read from a call trace. */
  settlementsTraced: number
  /** Per chain: requests, outcomes and the gateway's balance against what it owes. */
  chains: ChainSummary[]
  /** What the chains do not let the checker prove, in words. */
  notChecked: string[]
  /** Wall time of the check (ms). */
  ms: number
}

export type ChainSummary = {
  name: string
  requests: number
  fulfilled: number
  failed: number
  refunded: number
  pending: number
  lost: number
  doubled: number
  /** The gateway's balance, and what it owes (the difference is a rounding dust of batch receipts, bounded). */
  balance: bigint
  owes: bigint
}

const STATUS = ['None', 'Pending', 'Fulfilled', 'Failed', 'Refunded'] as const
const CALLBACK = ['Succeeded', 'Failed', 'Skipped'] as const
const TIMEOUT_CODE = 5
const JOB_STATE = ['None', 'Queued', 'Assigned', 'Closed', 'Lapsed'] as const
const MARKET_STATUS = ['None', 'Open', 'ResultSent', 'FailureSent', 'Settled'] as const

type Terminal =
  | { kind: 'Fulfilled'; log: ParsedLog; node: Address; output: readonly bigint[]; callback: number }
  | { kind: 'Failed'; log: ParsedLog; node: Address; code: number; callback: number }
  | { kind: 'Refunded'; log: ParsedLog; callback: number }

type ParsedLog = Log<bigint, number, false> & { eventName: string; args: Record<string, unknown> }

type Announced = { log: ParsedLog; requester: Address; modelId: Hex; input: readonly bigint[]; escrow: bigint; deadline: bigint }

/** One gateway's history, indexed. */
type GatewayBook = {
  chain: ChaosChain
  client: PublicClient
  abi: Abi
  requested: Map<bigint, Announced[]>
  terminals: Map<bigint, Terminal[]>
  deferred: ParsedLog[]
  withdrawn: ParsedLog[]
  rebates: ParsedLog[]
  batchReceipts: ParsedLog[]
  /** Every log by transaction, for the settlement checks. */
  byTx: Map<Hex, ParsedLog[]>
}

class Violations {
  readonly all: ChaosViolation[] = []
  count = 0
  constructor(private readonly max: number) {}
  add(rule: string, subject: string, message: string): void {
    this.count++
    if (this.all.length < this.max) this.all.push({ rule, subject, message })
  }
}

/**
 * Checks a chaos run from its chains alone (see the module's notes for the rules).
 *
 * @example
 * const report = await checkRun(await loadChaosRecord('chaos-record.json'), { proofs: 50 })
 * if (report.violations > 0) console.log(report.firstViolation)
 */
export async function checkRun(record: ChaosRecord, options: CheckRunOptions = {}): Promise<ChaosCheckReport> {
  const started = Date.now()
  const concurrency = Math.max(1, options.concurrency ?? 8)
  const blockRange = options.blockRange ?? 2_000n
  const log = options.log ?? (() => {})
  const v = new Violations(options.maxViolations ?? 1_000)
  const notChecked = new Set<string>()
  const clients = new Map(record.chains.map((c) => [c.name, clientOf(c)]))
  const recordedBy = new Map<string, ChaosRequest>()
  for (const q of record.requests) recordedBy.set(`${q.chain}:${q.requestId}`, q)
  const consumerOf = new Map(record.consumers.map((c) => [`${c.chain}:${c.address.toLowerCase()}`, c]))
  for (const q of record.requests)
    if (!clients.has(q.chain)) v.add('accepted', q.key, `the record names chain ${q.chain}, which is not among its chains`)

  const hub = record.chains.find((c) => c.role === 'hub')
  const summaries: ChainSummary[] = []
  const fulfilledAll: {
    chain: ChaosChain
    client: PublicClient
    id: bigint
    key: string
    announced: Announced
    output: readonly bigint[]
  }[] = []
  let settlementsTraced = 0
  let tracing = true

  for (const chain of record.chains) {
    const client = clients.get(chain.name)!
    log(`[check] ${chain.name}: reading ${chain.gateway}`)
    const book = await readGateway(chain, client, blockRange)
    const latest = await client.getBlock({ blockTag: 'latest' })
    const ids = new Set<bigint>()
    for (const [id, events] of book.requested) if (events.some((e) => e.log.blockNumber >= chain.fromBlock)) ids.add(id)
    for (const q of record.requests) if (q.chain === chain.name) ids.add(q.requestId)
    const sum: ChainSummary = {
      name: chain.name,
      requests: ids.size,
      fulfilled: 0,
      failed: 0,
      refunded: 0,
      pending: 0,
      lost: 0,
      doubled: 0,
      balance: 0n,
      owes: 0n,
    }
    const ordered = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const stored = new Map<bigint, StoredRequest>()
    await pool(ordered, concurrency, async (id) => void stored.set(id, await readRequest(client, chain.gateway, id)))
    const marketNodes = new Map<bigint, MarketView>()
    if (chain.role === 'spoke' && hub)
      await pool(ordered, concurrency, async (id) =>
        marketNodes.set(id, await readMarket(clients.get(hub.name)!, record.hub.market, chain.chainId, chain.gateway, id)),
      )
    const recordings = new Map<bigint, Recorded>()
    await pool(ordered, concurrency, async (id) => {
      const requester = book.requested.get(id)?.[0]?.requester
      if (requester && consumerOf.get(`${chain.name}:${requester.toLowerCase()}`)?.behaviour === 'recording')
        recordings.set(id, await readRecording(client, requester, id))
    })
    const jobs = new Map<bigint, { state: number; node: Address }>()
    if (chain.role === 'hub')
      await pool(ordered, concurrency, async (id) => {
        const j = (await client.readContract({
          address: record.hub.nodeRegistry,
          abi: NodeRegistry.abi,
          functionName: 'jobOf',
          args: [chain.gateway, id],
        })) as { state: number; node: Address }
        jobs.set(id, j)
      })

    for (const id of ordered) {
      const key = requestKey(chain.chainId, chain.gateway, id)
      const announced = book.requested.get(id) ?? []
      const recorded = recordedBy.get(`${chain.name}:${id}`)
      const s = stored.get(id)!
      if (announced.length === 0) {
        v.add('accepted', key, `the record says it was accepted (tx ${recorded?.txHash}), but the gateway never announced request ${id}`)
        continue
      }
      if (announced.length > 1) v.add('accepted', key, `announced ${announced.length} times (InferenceRequested)`)
      const a = announced[0]!
      if (recorded) checkRecorded(v, key, recorded, a)
      if (a.escrow !== s.escrow) v.add('fee', key, `escrow ${a.escrow} announced, ${s.escrow} stored`)

      // Exactly one outcome.
      const terms = book.terminals.get(id) ?? []
      const status = STATUS[s.status] ?? `status ${s.status}`
      if (terms.length === 0) {
        if (status !== 'Pending') v.add('outcome', key, `stored status ${status} but no terminal event`)
        else if (latest.timestamp <= a.deadline) sum.pending++
        else {
          sum.lost++
          v.add(
            'lost',
            key,
            `no outcome ${latest.timestamp - a.deadline} s after its deadline (block ${latest.number}): neither fulfilled, failed nor refunded`,
          )
        }
        continue
      }
      if (terms.length > 1) {
        sum.doubled++
        v.add('doubled', key, `${terms.length} terminal events: ${terms.map((t) => `${t.kind} in ${t.log.transactionHash}`).join(', ')}`)
      }
      const t = terms[0]!
      if (status !== t.kind) v.add('outcome', key, `the ${t.kind} event disagrees with the stored status ${status}`)
      if (t.kind === 'Fulfilled') sum.fulfilled++
      else if (t.kind === 'Failed') sum.failed++
      else sum.refunded++
      // A request sent with a deadline nobody could meet ends refunded after it, or failed with
      // Timeout (its node's error callback, the escrow paid back in full), never otherwise.
      if (recorded?.expectExpiry && t.kind !== 'Refunded' && !(t.kind === 'Failed' && t.code === TIMEOUT_CODE))
        v.add(
          'expiry',
          key,
          `meant to expire (deadline ${a.deadline}), but it was ${t.kind.toLowerCase()}${t.kind === 'Failed' ? ` with code ${t.code}` : ''} in ${t.log.transactionHash}`,
        )

      // The callback: one per terminal event; a recording consumer's own record agrees.
      const consumer = consumerOf.get(`${chain.name}:${a.requester.toLowerCase()}`)
      const kept = recordings.get(id)
      if (consumer?.behaviour === 'recording' && kept) checkRecording(v, key, kept, t)
      if (consumer?.behaviour === 'reverting' && CALLBACK[t.callback] === 'Succeeded')
        v.add('callback', key, 'a reverting consumer is reported called back successfully')

      // The fee's recipient: the node that delivered, as the hub knows it.
      if (t.kind === 'Fulfilled') {
        if (record.nodes.length > 0 && !record.nodes.some((n) => n.toLowerCase() === t.node.toLowerCase()))
          v.add('fee', key, `paid to ${t.node}, which is not one of the run's nodes`)
        const j = jobs.get(id)
        if (j && (JOB_STATE[j.state] !== 'Closed' || j.node.toLowerCase() !== t.node.toLowerCase()))
          v.add('ledger', key, `its job is ${JOB_STATE[j.state]} for ${j.node}, but ${t.node} was paid`)
        fulfilledAll.push({ chain, client, id, key, announced: a, output: t.output })
      } else {
        const j = jobs.get(id)
        if (j && JOB_STATE[j.state] !== 'Closed' && JOB_STATE[j.state] !== 'Lapsed')
          v.add('ledger', key, `settled (${t.kind}) but its job is still ${JOB_STATE[j.state]}`)
      }
      const m = marketNodes.get(id)
      if (m) checkMarket(v, key, m, t)
    }

    // Payments: who got what in each settling transaction.
    const settleTxs = new Map<Hex, Terminal[]>()
    for (const id of ordered)
      for (const t of book.terminals.get(id) ?? []) {
        const list = settleTxs.get(t.log.transactionHash) ?? []
        list.push(t)
        settleTxs.set(t.log.transactionHash, list)
      }
    if (tracing)
      await pool([...settleTxs.keys()], concurrency, async (tx) => {
        if (!tracing) return
        const flows = await valueFlows(client, tx, chain.gateway)
        if (!flows) {
          tracing = false
          return
        }
        settlementsTraced++
        await checkPayments(v, client, book, tx, flows, chain.role === 'spoke')
      })
    if (!tracing)
      notChecked.add('who received each payment (the RPC has no debug_traceTransaction callTracer): only the ledgers were checked')

    // The gateway's ledger.
    const owes = await gatewayOwes(v, client, book, chain, stored)
    sum.balance = await client.getBalance({ address: chain.gateway })
    sum.owes = owes.owes
    const surplus = sum.balance - owes.owes
    if (surplus < 0n || surplus > owes.dust)
      v.add(
        'ledger',
        chain.gateway,
        `${chain.name} gateway holds ${sum.balance} wei but owes ${owes.owes} (${owes.parts})${owes.dust > 0n ? `, with at most ${owes.dust} wei of batch-receipt rounding` : ''}: ${surplus < 0n ? 'short' : 'over'} by ${surplus < 0n ? -surplus : surplus}`,
      )
    summaries.push(sum)
  }

  if (hub) await checkHubLedgers(v, clients.get(hub.name)!, record, blockRange, notChecked)
  if (BigInt(record.hub.market) === 0n) notChecked.add('the hub market (the record names none: a hub without spokes)')

  // Invalid requests: mined, reverted with their error, no request announced.
  let invalidRefused = 0
  let invalidOnLatest = 0
  await pool(record.invalid, concurrency, async (inv) => {
    const client = clients.get(inv.chain)
    const chain = record.chains.find((c) => c.name === inv.chain)
    if (!client || !chain) return v.add('invalid', inv.txHash, `the record names chain ${inv.chain}, which is not among its chains`)
    if (await checkInvalid(v, client, chain, inv, () => invalidOnLatest++)) invalidRefused++
  })
  if (invalidOnLatest > 0)
    notChecked.add(`${invalidOnLatest} invalid request(s) replayed on the latest state: the RPC no longer keeps their block's`)

  // Outputs against onnxruntime, then proofs.
  let outputsChecked = 0
  if (!options.skipOutputs && fulfilledAll.length > 0) {
    log(`[check] re-running onnxruntime on ${fulfilledAll.length} delivered outputs`)
    const runtime = createOnnxRuntime()
    const models = new Map<string, Promise<ModelArtifacts | undefined>>()
    try {
      await pool(fulfilledAll, concurrency, async (f) => {
        if (await checkOutput(v, runtime, models, record, f.key, f.announced, f.output)) outputsChecked++
      })
    } finally {
      await runtime.dispose()
    }
  }
  const sample = sampleOf(fulfilledAll, options.proofs ?? 'all', record.seed)
  let proofsChecked = 0
  if (sample.length > 0) log(`[check] verifying ${sample.length} of ${fulfilledAll.length} delivered proofs`)
  await pool(sample, Math.min(concurrency, 2), async (f) => {
    proofsChecked++
    try {
      const r = await verifyResult(f.client, { key: f.key, fromBlock: f.chain.fromBlock, storage: { gatewayUrl: record.storageUrl } })
      if (!r.valid) v.add('proof', f.key, `${r.failed}: ${r.reason}`)
    } catch (err) {
      v.add('proof', f.key, `cannot be verified: ${err instanceof SertnError ? err.shortMessage : String(err)}`)
    }
  })
  if (sample.length < fulfilledAll.length)
    notChecked.add(`${fulfilledAll.length - sample.length} delivered proofs (a sample of ${sample.length} was verified)`)

  const total = (k: keyof ChainSummary) => summaries.reduce((n, s) => n + (s[k] as number), 0)
  const first = v.all[0]
  return {
    requests: total('requests'),
    fulfilled: total('fulfilled'),
    failed: total('failed'),
    refunded: total('refunded'),
    invalidRefused,
    lost: total('lost'),
    doubled: total('doubled'),
    violations: v.count,
    ...(first ? { firstViolation: first } : {}),
    all: v.all,
    pending: total('pending'),
    outputsChecked,
    proofsChecked,
    proofsToCheck: fulfilledAll.length,
    settlementsTraced,
    chains: summaries,
    notChecked: [...notChecked],
    ms: Date.now() - started,
  }
}

// ─────────────────────────────── reading ───────────────────────────────

function clientOf(c: ChaosChain): PublicClient {
  return createPublicClient({
    chain: evmChainOf(c.chainId, c.name, c.rpcUrl),
    transport: sertnTransport([c.rpcUrl], c.name),
  }) as PublicClient
}

/** Every log of `address` from block 0 to the latest, `range` blocks per call, decoded with `abi`. */
async function readLogs(client: PublicClient, address: Address, abi: Abi, range: bigint, fromBlock = 0n): Promise<ParsedLog[]> {
  const latest = await client.getBlockNumber({ cacheTime: 0 })
  const out: ParsedLog[] = []
  for (let from = fromBlock; from <= latest; from += range) {
    const to = from + range - 1n < latest ? from + range - 1n : latest
    const logs = await client.getLogs({ address, fromBlock: from, toBlock: to })
    out.push(...(parseEventLogs({ abi, logs, strict: true }) as unknown as ParsedLog[]))
  }
  return out
}

async function readGateway(chain: ChaosChain, client: PublicClient, range: bigint): Promise<GatewayBook> {
  const abi = (chain.role === 'spoke' ? SpokeGateway.abi : InferenceGateway.abi) as Abi
  const logs = await readLogs(client, chain.gateway, abi, range)
  const book: GatewayBook = {
    chain,
    client,
    abi,
    requested: new Map(),
    terminals: new Map(),
    deferred: [],
    withdrawn: [],
    rebates: [],
    batchReceipts: [],
    byTx: new Map(),
  }
  const push = <K, T>(m: Map<K, T[]>, k: K, x: T) => {
    const l = m.get(k)
    if (l) l.push(x)
    else m.set(k, [x])
  }
  for (const l of logs) {
    push(book.byTx, l.transactionHash, l)
    const a = l.args
    switch (l.eventName) {
      case 'InferenceRequested':
        push(book.requested, a.requestId as bigint, {
          log: l,
          requester: a.requester as Address,
          modelId: a.modelId as Hex,
          input: a.input as bigint[],
          escrow: a.escrow as bigint,
          deadline: BigInt(a.deadline as number),
        })
        break
      case 'InferenceFulfilled':
        push(book.terminals, a.requestId as bigint, {
          kind: 'Fulfilled',
          log: l,
          node: a.node as Address,
          output: a.output as bigint[],
          callback: a.callbackStatus as number,
        })
        break
      case 'InferenceFailed':
        push(book.terminals, a.requestId as bigint, {
          kind: 'Failed',
          log: l,
          node: a.node as Address,
          code: a.code as number,
          callback: a.callbackStatus as number,
        })
        break
      case 'InferenceRefunded':
        push(book.terminals, a.requestId as bigint, { kind: 'Refunded', log: l, callback: a.callbackStatus as number })
        break
      case 'PaymentDeferred':
        book.deferred.push(l)
        break
      case 'Withdrawn':
        book.withdrawn.push(l)
        break
      case 'BatchRebate':
        book.rebates.push(l)
        break
      case 'BatchReceiptSent':
        book.batchReceipts.push(l)
        break
    }
  }
  return book
}

type StoredRequest = { requester: Address; status: number; escrow: bigint; receiptReserve: bigint; deadline: number }

async function readRequest(client: PublicClient, gateway: Address, id: bigint, blockNumber?: bigint): Promise<StoredRequest> {
  return (await client.readContract({
    address: gateway,
    abi: InferenceGateway.abi,
    functionName: 'getRequest',
    args: [id],
    ...(blockNumber !== undefined ? { blockNumber } : {}),
  })) as StoredRequest
}

type MarketView = { marketRequestId: bigint; status: number; settlement: number; node: Address }

async function readMarket(hub: PublicClient, market: Address, origin: number, gateway: Address, id: bigint): Promise<MarketView> {
  const gw = `0x${gateway.slice(2).toLowerCase().padStart(64, '0')}` as Hex
  const mid = (await hub.readContract({
    address: market,
    abi: InferenceMarket.abi,
    functionName: 'marketRequestIdOf',
    args: [origin, gw, id],
  })) as bigint
  if (mid === 0n) return { marketRequestId: 0n, status: 0, settlement: 0, node: '0x0000000000000000000000000000000000000000' }
  const r = (await hub.readContract({ address: market, abi: InferenceMarket.abi, functionName: 'getRequest', args: [mid] })) as {
    status: number
    settlement: number
    node: Address
  }
  return { marketRequestId: mid, status: r.status, settlement: r.settlement, node: r.node }
}

// ─────────────────────────────── per request ───────────────────────────────

function checkRecorded(v: Violations, key: string, q: ChaosRequest, a: Announced): void {
  const diffs: string[] = []
  if (q.key.toLowerCase() !== key.toLowerCase()) diffs.push(`key ${q.key}`)
  if (q.txHash.toLowerCase() !== a.log.transactionHash.toLowerCase())
    diffs.push(`transaction ${q.txHash} (the chain's: ${a.log.transactionHash})`)
  if (q.consumer.toLowerCase() !== a.requester.toLowerCase()) diffs.push(`consumer ${q.consumer} (the chain's: ${a.requester})`)
  if (q.modelId.toLowerCase() !== a.modelId.toLowerCase()) diffs.push(`model ${q.modelId} (the chain's: ${a.modelId})`)
  if (q.input.length !== a.input.length || q.input.some((x, i) => x !== a.input[i]))
    diffs.push(`input [${q.input.join(', ')}] (the chain's: [${a.input.join(', ')}])`)
  if (diffs.length > 0) v.add('accepted', key, `the record disagrees with the chain: ${diffs.join('; ')}`)
}

type Recorded = { output: readonly bigint[]; codePlusOne: bigint }

/** What a recording consumer kept for request `id`: the result, and the error code plus one (0: none). */
async function readRecording(client: PublicClient, consumer: Address, id: bigint): Promise<Recorded> {
  const [output, codePlusOne] = await Promise.all([
    client.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'outputOf', args: [id] }) as Promise<
      readonly bigint[]
    >,
    client.readContract({ address: consumer, abi: RecordingConsumer.abi, functionName: 'errorCodePlusOne', args: [id] }) as Promise<bigint>,
  ])
  return { output, codePlusOne }
}

function checkRecording(v: Violations, key: string, { output, codePlusOne }: Recorded, t: Terminal): void {
  const ok = CALLBACK[t.callback] === 'Succeeded'
  if (t.kind === 'Fulfilled') {
    if (codePlusOne !== 0n)
      v.add('callback', key, `fulfilled, yet the consumer also recorded error code ${codePlusOne - 1n}: called back twice`)
    if (ok && (output.length !== t.output.length || output.some((x, i) => x !== t.output[i])))
      v.add('callback', key, `the consumer kept [${output.join(', ')}], the gateway delivered [${t.output.join(', ')}]`)
  } else {
    if (output.length > 0) v.add('callback', key, `${t.kind.toLowerCase()}, yet the consumer also recorded a result: called back twice`)
    const code = t.kind === 'Failed' ? t.code : TIMEOUT_CODE
    if (ok && codePlusOne !== BigInt(code + 1))
      v.add('callback', key, `the consumer recorded error code ${codePlusOne === 0n ? 'none' : codePlusOne - 1n}, the gateway sent ${code}`)
  }
}

/**
 * A spoke request's entry in the hub market agrees with its settlement: the node paid is the one
 * whose result the market sent, and the spoke's receipt closed it with the same outcome. A request
 * refunded after its deadline may never have reached the hub (its message lost or late): that is
 * no violation.
 */
function checkMarket(v: Violations, key: string, m: MarketView, t: Terminal): void {
  if (m.marketRequestId === 0n) {
    if (t.kind !== 'Refunded') v.add('ledger', key, `settled (${t.kind}) on its chain, but the hub market never recorded it`)
    return
  }
  const status = MARKET_STATUS[m.status] ?? String(m.status)
  if (t.kind === 'Fulfilled' && m.node.toLowerCase() !== t.node.toLowerCase())
    v.add('fee', key, `paid to ${t.node} on its chain, but the market's result came from ${m.node}`)
  if (status === 'Settled' && STATUS[m.settlement] !== t.kind)
    v.add('ledger', key, `the market recorded it ${STATUS[m.settlement]}, its chain ${t.kind}`)
  else if (status !== 'Settled')
    v.add('ledger', key, `settled (${t.kind}) on its chain, but the market's request ${m.marketRequestId} is ${status}: no receipt arrived`)
}

// ─────────────────────────────── payments ───────────────────────────────

/** A call frame of a `callTracer` trace (the fields the checker reads). */
export type CallFrame = { from: Address; to?: Address; value?: Hex; error?: string; calls?: CallFrame[] }

/**
 * Net wei `account` sent to each address in a traced transaction (what it received back from one
 * subtracted; lowercase addresses): frames that reverted, and everything under them, moved nothing.
 */
export function valueFlowsOf(root: CallFrame, account: Address): Map<string, bigint> {
  const g = account.toLowerCase()
  const flows = new Map<string, bigint>()
  const walk = (f: CallFrame) => {
    if (f.error) return
    const value = f.value ? BigInt(f.value) : 0n
    if (value > 0n && f.to && f.to.toLowerCase() !== f.from.toLowerCase()) {
      const from = f.from.toLowerCase()
      const to = f.to.toLowerCase()
      if (from === g) flows.set(to, (flows.get(to) ?? 0n) + value)
      if (to === g) flows.set(from, (flows.get(from) ?? 0n) - value)
    }
    for (const c of f.calls ?? []) walk(c)
  }
  walk(root)
  return flows
}

/** {@link valueFlowsOf} transaction `tx` for `gateway`; undefined when the RPC cannot trace. */
async function valueFlows(client: PublicClient, tx: Hex, gateway: Address): Promise<Map<string, bigint> | undefined> {
  let root: CallFrame
  try {
    root = (await client.request({
      method: 'debug_traceTransaction' as never,
      params: [tx, { tracer: 'callTracer' }] as never,
    })) as CallFrame
  } catch {
    return undefined
  }
  return valueFlowsOf(root, gateway)
}

/**
 * In settling transaction `tx`: each node paid exactly its rows' escrows (less a batch's rebate),
 * each requester refunded exactly its failed or refunded escrows; on a spoke a requester may also
 * get back what its receipt reserve did not spend (at most that reserve). A payment deferred
 * (`PaymentDeferred`) counts as paid.
 */
async function checkPayments(
  v: Violations,
  client: PublicClient,
  book: GatewayBook,
  tx: Hex,
  flows: Map<string, bigint>,
  spoke: boolean,
): Promise<void> {
  const logs = book.byTx.get(tx) ?? []
  const rebateOf = new Map<bigint, bigint>()
  for (const l of logs)
    if (l.eventName === 'BatchRebate') for (const id of l.args.requestIds as bigint[]) rebateOf.set(id, l.args.rebate as bigint)
  const expected = new Map<string, bigint>()
  const reserves = new Map<string, bigint>()
  const add = (m: Map<string, bigint>, a: string, x: bigint) => m.set(a, (m.get(a) ?? 0n) + x)
  const settled: bigint[] = []
  for (const l of logs) {
    const id = l.args.requestId as bigint
    const a = book.requested.get(id)?.[0]
    if (!a) continue
    if (l.eventName === 'InferenceFulfilled') {
      const rebate = rebateOf.get(id) ?? 0n
      add(expected, (l.args.node as Address).toLowerCase(), a.escrow > rebate ? a.escrow - rebate : 0n)
      settled.push(id)
    } else if (l.eventName === 'InferenceFailed' || l.eventName === 'InferenceRefunded') {
      add(expected, a.requester.toLowerCase(), a.escrow)
      settled.push(id)
    }
  }
  if (spoke) {
    const block = logs[0]?.blockNumber
    if (block !== undefined && block > 0n)
      for (const id of settled) {
        const a = book.requested.get(id)![0]!
        const before = await readRequest(client, book.chain.gateway, id, block - 1n)
        add(reserves, a.requester.toLowerCase(), before.receiptReserve)
      }
  }
  const paid = new Map(flows)
  for (const l of logs) if (l.eventName === 'PaymentDeferred') add(paid, (l.args.account as Address).toLowerCase(), l.args.amount as bigint)
  for (const [who, want] of expected) {
    const got = paid.get(who) ?? 0n
    const extra = reserves.get(who) ?? 0n
    if (got < want || got > want + extra)
      v.add(
        'fee',
        getAddress(who),
        `in ${tx} it was owed ${want} wei${extra > 0n ? ` (plus up to ${extra} of receipt reserves)` : ''} and received ${got}`,
      )
  }
}

/** What a gateway owes now, from its state, and its owed balances against their events. */
async function gatewayOwes(
  v: Violations,
  client: PublicClient,
  book: GatewayBook,
  chain: ChaosChain,
  known: ReadonlyMap<bigint, StoredRequest>,
): Promise<{ owes: bigint; dust: bigint; parts: string }> {
  const spoke = chain.role === 'spoke'
  const ids = [...book.requested.keys()]
  const reqs = new Map(known)
  await pool(
    ids.filter((id) => !reqs.has(id)),
    8,
    async (id) => void reqs.set(id, await readRequest(client, chain.gateway, id)),
  )
  let escrows = 0n
  let reserves = 0n
  for (const r of reqs.values()) {
    if (STATUS[r.status] === 'Pending') escrows += r.escrow
    reserves += r.receiptReserve
  }
  // Owed balances: each against PaymentDeferred − Withdrawn.
  const fromEvents = new Map<string, bigint>()
  for (const l of book.deferred) {
    const a = (l.args.account as Address).toLowerCase()
    fromEvents.set(a, (fromEvents.get(a) ?? 0n) + (l.args.amount as bigint))
  }
  for (const l of book.withdrawn) {
    const a = (l.args.account as Address).toLowerCase()
    fromEvents.set(a, (fromEvents.get(a) ?? 0n) - (l.args.amount as bigint))
  }
  let owed = 0n
  await pool([...fromEvents.keys()], 8, async (a) => {
    const onChain = (await client.readContract({
      address: chain.gateway,
      abi: InferenceGateway.abi,
      functionName: 'owed',
      args: [a as Address],
    })) as bigint
    owed += onChain
    if (onChain !== fromEvents.get(a))
      v.add('ledger', getAddress(a), `${chain.name} gateway owes it ${onChain} wei; its events say ${fromEvents.get(a)}`)
  })
  // Batch claims not yet released: each row's rebate (at most its escrow); on a spoke the batch
  // receipt's fee already left, out of reserves that stay in place until the release.
  const claims = new Map<Hex, { ids: bigint[]; rebate: bigint; fee: bigint }>()
  const keyOf = (ids: bigint[]) => keccak256(encodeAbiParameters([{ type: 'uint256[]' }], [ids]))
  for (const l of book.rebates) {
    const ids = l.args.requestIds as bigint[]
    const k = keyOf(ids)
    claims.set(k, { ids, rebate: l.args.rebate as bigint, fee: claims.get(k)?.fee ?? 0n })
  }
  for (const l of book.batchReceipts) {
    const ids = l.args.requestIds as bigint[]
    const k = keyOf(ids)
    claims.set(k, { ids, rebate: claims.get(k)?.rebate ?? 0n, fee: l.args.fee as bigint })
  }
  let rebates = 0n
  let receiptFees = 0n
  let dust = 0n
  const caller = getAddress(`0x${randomBytes(20).toString('hex')}`)
  await pool([...claims.values()], 8, async (c) => {
    let open = true
    try {
      await client.simulateContract({
        address: chain.gateway,
        abi: InferenceGateway.abi,
        functionName: 'releaseBatch',
        args: [c.ids],
        account: caller,
      })
    } catch {
      open = false
    }
    if (open) {
      for (const id of c.ids) {
        const e = reqs.get(id)?.escrow ?? 0n
        rebates += c.rebate < e ? c.rebate : e
      }
      receiptFees += c.fee
    } else if (spoke && c.fee > 0n) dust += BigInt(c.ids.length - 1)
  })
  let pendingReceipts = 0n
  if (spoke)
    await pool(ids, 8, async (id) => {
      const p = (await client.readContract({
        address: chain.gateway,
        abi: SpokeGateway.abi,
        functionName: 'pendingReceipt',
        args: [id],
      })) as {
        reserve: bigint
      }
      pendingReceipts += p.reserve
    })
  const owes = escrows + owed + rebates + (spoke ? reserves - receiptFees + pendingReceipts : 0n)
  const parts = [
    `pending escrows ${escrows}`,
    `owed ${owed}`,
    `unreleased batch rebates ${rebates}`,
    ...(spoke
      ? [`receipt reserves ${reserves}`, `batch receipt fees paid from them ${receiptFees}`, `deferred receipts ${pendingReceipts}`]
      : []),
  ].join(', ')
  return { owes, dust, parts }
}

/** The hub's market (holds nothing) and node registry (stakes, credits, protocol balance) against their events. */
async function checkHubLedgers(
  v: Violations,
  hub: PublicClient,
  record: ChaosRecord,
  range: bigint,
  notChecked: Set<string>,
): Promise<void> {
  const hasMarket = BigInt(record.hub.market) !== 0n
  if (!hasMarket) notChecked.add('the hub market (the record names none: a hub without spokes)')
  const marketBalance = hasMarket ? await hub.getBalance({ address: record.hub.market }) : 0n
  if (marketBalance !== 0n)
    v.add(
      'ledger',
      record.hub.market,
      `the market holds ${marketBalance} wei; it keeps nothing (fees are paid through and surpluses refunded)`,
    )
  const recorded = hasMarket ? await readLogs(hub, record.hub.market, InferenceMarket.abi as Abi, range) : []
  const seen = new Map<string, number>()
  for (const l of recorded) {
    if (l.eventName === 'RequestRecorded') {
      const k = `${l.args.origin}:${String(l.args.gateway).toLowerCase()}:${l.args.spokeRequestId}`
      seen.set(k, (seen.get(k) ?? 0) + 1)
    }
    if (l.eventName === 'RequestSettled') {
      const k = `settled:${l.args.marketRequestId}`
      seen.set(k, (seen.get(k) ?? 0) + 1)
    }
  }
  for (const [k, n] of seen)
    if (n > 1) v.add('doubled', `market:${k}`, `the market ${k.startsWith('settled') ? 'settled' : 'recorded'} it ${n} times`)

  const reg = record.hub.nodeRegistry
  const logs = await readLogs(hub, reg, NodeRegistry.abi as Abi, range)
  const stakes = new Map<string, bigint>()
  const credits = new Map<string, bigint>()
  let kept = 0n
  const add = (m: Map<string, bigint>, a: unknown, x: bigint) => {
    const k = String(a).toLowerCase()
    m.set(k, (m.get(k) ?? 0n) + x)
  }
  const closed = new Map<string, number>()
  for (const l of logs) {
    const a = l.args
    if (l.eventName === 'Staked') add(stakes, a.node, a.amount as bigint)
    else if (l.eventName === 'Withdrawn') add(stakes, a.node, -(a.amount as bigint))
    else if (l.eventName === 'Slashed') {
      add(stakes, a.node, -(a.amount as bigint))
      add(credits, a.toRequester, a.requesterShare as bigint)
      kept += (a.amount as bigint) - (a.requesterShare as bigint)
    } else if (l.eventName === 'Claimed') add(credits, a.account, -(a.amount as bigint))
    else if (l.eventName === 'JobClosed') {
      const k = `${String(a.market).toLowerCase()}:${a.id}`
      closed.set(k, (closed.get(k) ?? 0) + 1)
    }
  }
  for (const [k, n] of closed) if (n > 1) v.add('doubled', `job:${k}`, `the node registry closed job ${k} ${n} times`)
  let held = 0n
  await pool([...stakes.keys()], 8, async (n) => {
    const s = (await hub.readContract({ address: reg, abi: NodeRegistry.abi, functionName: 'stakeOf', args: [n as Address] })) as bigint
    held += s
    if (s !== stakes.get(n)) v.add('ledger', getAddress(n), `stake ${s} wei; Staked − Slashed − Withdrawn say ${stakes.get(n)}`)
  })
  await pool([...credits.keys()], 8, async (a) => {
    const c = (await hub.readContract({ address: reg, abi: NodeRegistry.abi, functionName: 'creditOf', args: [a as Address] })) as bigint
    held += c
    if (c !== credits.get(a)) v.add('ledger', getAddress(a), `credit ${c} wei; Slashed shares − Claimed say ${credits.get(a)}`)
  })
  const protocol = (await hub.readContract({ address: reg, abi: NodeRegistry.abi, functionName: 'protocolBalance' })) as bigint
  if (protocol > kept) v.add('ledger', reg, `protocol balance ${protocol} wei exceeds the slashes it kept (${kept})`)
  notChecked.add(
    "the node registry's protocol balance exactly (withdrawProtocol emits no event): only that it does not exceed the slashes kept",
  )
  const balance = await hub.getBalance({ address: reg })
  if (balance !== held + protocol)
    v.add('ledger', reg, `the node registry holds ${balance} wei; its stakes, credits and protocol balance add up to ${held + protocol}`)
}

// ─────────────────────────────── invalid requests ───────────────────────────────

const REVERT_ABI = [...CONTRACT_ERRORS_ABI] as Abi

async function checkInvalid(
  v: Violations,
  client: PublicClient,
  chain: ChaosChain,
  inv: ChaosRecord['invalid'][number],
  onLatest?: () => void,
): Promise<boolean> {
  const subject = `${inv.chain}:${inv.txHash}`
  let receipt: Awaited<ReturnType<PublicClient['getTransactionReceipt']>>
  try {
    receipt = await client.getTransactionReceipt({ hash: inv.txHash })
  } catch {
    v.add('invalid', subject, `${inv.kind}: the transaction was never mined`)
    return false
  }
  let ok = true
  const announced = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  if (announced.length > 0) {
    v.add('invalid', subject, `${inv.kind}: it announced request ${announced.map((l) => l.args.requestId).join(', ')}`)
    ok = false
  }
  if (receipt.status !== 'reverted') {
    v.add('invalid', subject, `${inv.kind}: the transaction succeeded; ${inv.expectedError} was expected`)
    return false
  }
  // The revert data: the transaction replayed on the state before its block (or, where the node no
  // longer keeps that state, on the latest: the refused kinds do not depend on the block).
  const tx = await client.getTransaction({ hash: inv.txHash })
  const replay = async (at: { blockNumber: bigint } | { blockTag: 'latest' }): Promise<string | undefined> => {
    try {
      await client.call({ account: tx.from, to: tx.to ?? undefined, data: tx.input, value: tx.value, gas: tx.gas, ...at })
      return 'no revert when replayed'
    } catch (err) {
      return revertNameOf(err)
    }
  }
  let name = await replay({ blockNumber: receipt.blockNumber - 1n })
  if (name === undefined) {
    name = await replay({ blockTag: 'latest' })
    if (name !== undefined) onLatest?.()
  }
  name ??= 'an undecodable revert'
  if (name !== inv.expectedError) {
    v.add('invalid', subject, `${inv.kind}: reverted with ${name}, ${inv.expectedError} was expected`)
    ok = false
  }
  void chain
  return ok
}

function revertNameOf(err: unknown): string | undefined {
  let data: Hex | undefined
  let e: unknown = err
  while (e && !data) {
    const d = (e as { data?: unknown }).data
    if (typeof d === 'string' && d.startsWith('0x')) data = d as Hex
    else if (d && typeof d === 'object' && typeof (d as { data?: unknown }).data === 'string') data = (d as { data: Hex }).data
    e = (e as { cause?: unknown }).cause
  }
  if (!data || data === '0x') return undefined
  try {
    return decodeErrorResult({ abi: REVERT_ABI, data }).errorName
  } catch {
    return `an undecodable revert ${data.slice(0, 10)}`
  }
}

// ─────────────────────────────── outputs ───────────────────────────────

async function checkOutput(
  v: Violations,
  runtime: OnnxRuntime,
  models: Map<string, Promise<ModelArtifacts | undefined>>,
  record: ChaosRecord,
  key: string,
  a: Announced,
  output: readonly bigint[],
): Promise<boolean> {
  const id = a.modelId.toLowerCase()
  let m = models.get(id)
  if (!m) {
    const dir = Object.entries(record.models).find(([k]) => k.toLowerCase() === id)?.[1]
    m = dir === undefined ? Promise.resolve(undefined) : loadModelArtifacts(dir, { allowInsecureSrs: true })
    models.set(id, m)
  }
  let artifacts: ModelArtifacts | undefined
  try {
    artifacts = await m
  } catch (err) {
    v.add('output', key, `cannot load model ${a.modelId}: ${err instanceof SertnError ? err.shortMessage : String(err)}`)
    return false
  }
  if (!artifacts) {
    v.add('output', key, `the record has no model directory for ${a.modelId}: its output cannot be re-run`)
    return false
  }
  const mf = artifacts.manifest
  if (mf.visibility.input !== 'public' || mf.visibility.output !== 'public') return false
  let reference: number[]
  try {
    reference = (
      await runtime.run(
        artifacts,
        a.input.map((q) => dequantize(q, mf.inputScale)),
      )
    ).output
  } catch (err) {
    v.add('output', key, `onnxruntime cannot run ${mf.name} on its input: ${err instanceof SertnError ? err.shortMessage : String(err)}`)
    return false
  }
  const delivered = output.map((q) => dequantize(q, mf.outputScale))
  const tolerance = mf.fidelity.tolerance
  if (delivered.length !== reference.length) {
    v.add('output', key, `${delivered.length} outputs delivered, onnxruntime gives ${reference.length}`)
    return true
  }
  const worst = delivered.reduce((w, y, i) => Math.max(w, Math.abs(y - reference[i]!)), 0)
  if (!(worst <= tolerance))
    v.add(
      'output',
      key,
      `delivered [${delivered.map((x) => x.toFixed(4)).join(', ')}], onnxruntime (${mf.name}) gives [${reference.map((x) => x.toFixed(4)).join(', ')}]: off by ${worst.toFixed(4)}, the tolerance is ${tolerance}`,
    )
  return true
}

// ─────────────────────────────── helpers ───────────────────────────────

/** Runs `fn` over `items`, at most `limit` at a time; the first error rejects once all started ones end. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const errors: unknown[] = []
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!
      try {
        await fn(item)
      } catch (err) {
        errors.push(err)
        next = items.length
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (errors.length > 0) throw errors[0]
}

/**
 * The items to re-verify: all, or `want` of them (a count, or a fraction 0 < want < 1) spread
 * evenly from an offset drawn from `seed`.
 */
export function sampleOf<T>(items: readonly T[], want: 'all' | number, seed: number): T[] {
  if (want === 'all') return [...items]
  const n = want > 0 && want < 1 ? Math.ceil(items.length * want) : Math.floor(want)
  if (n >= items.length) return [...items]
  if (n <= 0) return []
  const step = items.length / n
  const offset = (Math.abs(Math.trunc(seed)) % 1_000) / 1_000
  return Array.from({ length: n }, (_, i) => items[Math.min(items.length - 1, Math.floor((i + offset) * step))]!)
}
