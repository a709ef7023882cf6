/**
 * The request workflow's activities, built by a factory over injected plugins (the worker's
 * composition root builds the plugins; tests can pass their own). Everything crossing the Temporal
 * boundary is JSON: big integers as decimal strings.
 */
import { ApplicationFailure, Context } from '@temporalio/activity'
import type { ModelRef } from '../../core/artifacts.ts'
import { openInputDocument } from '../../core/commitment.ts'
import { dequantize, fromFelt } from '../../core/field.ts'
import { checkQuantizedInput } from '../../core/input.ts'
import { UnknownModelError, type ModelStore } from '../../core/models.ts'
import { checkRegisteredCircuit, servableBatchSizes, modelRefOf } from '../../core/registered.ts'
import { base64UrlIdOf } from '../../core/storage-ref.ts'
import { metrics } from '../../core/metrics.ts'
import {
  availableBatchSizes,
  batchManifestOf,
  loadBatchArtifacts,
  provingMemoryOf,
  type ModelArtifacts,
  type ModelManifest,
} from '../../core/manifest.ts'
import type { BatchMember, BatchWorkflowInput } from '../messages.ts'
import type { CircuitMemory, ProverClass } from '../routing.ts'
import type {
  BatchOutcome,
  ChainPlugin,
  CopyArrival,
  CopyDesk,
  ProvenBatch,
  JobBook,
  MarketEvent,
  MarketPlugin,
  MarketTxOutcome,
  PreparedArtifact,
  ProverPlugin,
  RuntimePlugin,
  Settlement,
  StoragePlugin,
  TxOutcome,
} from '../../core/plugins.ts'
import { BadRequestError, failureDetailsOf, SertnError, type FailureDetails } from '../../core/errors.ts'
import { retryTransient } from '../../core/loop.ts'
import type {
  CopyDestination,
  InferenceErrorCode,
  InferenceRequest,
  MarketStatus,
  ProvenResult,
  RequestStatus,
  StoredArtifact,
} from '../../core/types.ts'

export type ActivityDeps = {
  chains: readonly ChainPlugin[]
  /** Hub markets (for requests made on spoke chains). */
  markets?: readonly MarketPlugin[]
  /** How often the hop activities look for the next hop's event (default {@link HOP_POLL_MS}); about a block time on real chains. */
  hopPollMs?: number
  runtime: RuntimePlugin
  prover: ProverPlugin
  storage: StoragePlugin
  models: ModelStore
  /** Serve circuits set up with an insecure SRS (local chains and tests only). */
  allowInsecureSrs?: boolean
  /**
   * What this prover worker declares: its hardware class and the most memory one proof may take
   * (a proof whose circuit needs more is refused). Absent: no limit is checked.
   */
  proverWorker?: { hardware: ProverClass; memoryBytes: number }
  /** Hands requests to their model's batch workflow (signal-with-start); absent where the worker does not batch. */
  batches?: { join(member: BatchMember, input: BatchWorkflowInput): Promise<void> }
}

/**
 * How long `resolveModel` keeps reading a registry through an RPC outage before it gives up: its
 * activity's retry budget (a few tries, seconds apart) is for artifacts missing from storage, and
 * spent on a cut RPC it failed valid requests with `ModelUnavailable` (found by the chaos run: a
 * 27 s cut). Well under the activity's 10-minute start-to-close timeout.
 */
export const RESOLVE_RPC_RETRY = { maxMs: 5 * 60_000, initialMs: 250, maxIntervalMs: 5_000 }

/** The largest stored input a node reads for a hashed-input request. */
export const MAX_INPUT_DOCUMENT_BYTES = 16 << 20

/** A request reached an activity without the model its workflow resolved (a workflow from before model resolution). */
export class ModelNotResolvedError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'ModelNotResolvedError'
}

/** Where a proof ran: its task queue, the worker's hardware class, and the prover's measured peak memory. */
export type ProvedOn = { queue: string; hardware?: ProverClass; peakMemoryBytes?: number }

/** A proof whose circuit needs more memory than this prover worker offers (`prover.memoryBytes`). */
export class ProverCapacityError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'ProverCapacityError'
}

/** The request's model version is not the registered one any more. */
export class ModelVersionMismatchError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'ModelVersionMismatchError'
}

/** No chain plugin serves the request's chain and gateway (a configuration problem). */
export class UnknownChainError extends SertnError {
  override name = 'UnknownChainError'
}

/** A spoke request has no route, or no market plugin serves its hub (a configuration problem). */
export class UnknownMarketError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'UnknownMarketError'
  constructor(message: string) {
    super(message, { retryable: false })
  }
}

/** A cross-chain hop did not happen before the request's deadline (the spoke refunds it). */
export class RelayTimeoutError extends SertnError {
  override name = 'RelayTimeoutError'
  constructor(message: string) {
    super(message, { retryable: false })
  }
}

/** How often the hop activities look for the next hop's event, by default. */
export const HOP_POLL_MS = 250
/** The longest a waiting hop goes between looks (or the poll interval, if that is longer). */
export const HOP_POLL_CAP_MS = 2000

/**
 * The wait before a hop's look number `n` (from 0): the poll interval at first, then half as long
 * again each time, up to {@link HOP_POLL_CAP_MS}. A hop usually lands within a few polls; one
 * that waits on a batch or a proof waits tens of seconds, and hundreds of such waits polling every
 * interval would keep the worker and the chain's RPC busy answering "not yet".
 */
export function hopDelayMs(pollMs: number, n: number): number {
  return Math.min(pollMs * 1.5 ** n, Math.max(pollMs, HOP_POLL_CAP_MS))
}
/** How long past a request's deadline a hop is still waited for (clocks of two chains differ). */
const DEADLINE_GRACE_S = 120

export type StoredResult = { output: StoredArtifact; proof: StoredArtifact }

/** The output and the proof with their storage ids fixed; `uploaded` says whether they are stored yet. */
export type PreparedResult = {
  output: PreparedArtifact & { uploaded: boolean }
  proof: PreparedArtifact & { uploaded: boolean }
}

const attempt = () => Context.current().info.attempt

/**
 * Errors that say whether a retry can help (`retryable`) become Temporal failures of their class
 * name with that verdict, carrying the error's code (the one a request that cannot be served
 * because of it is failed with) as their details ({@link FailureDetails}); others keep Temporal's
 * default (retried unless listed in the policy).
 */
function withRetryVerdicts<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, unknown> = {}
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await fn(...args)
      } catch (err) {
        if (err instanceof Error && 'retryable' in err && typeof err.retryable === 'boolean' && !(err instanceof ApplicationFailure)) {
          const details: FailureDetails = failureDetailsOf(err)
          throw ApplicationFailure.create({
            type: err.name,
            message: err.message,
            nonRetryable: !err.retryable,
            details: [details],
            cause: err,
          })
        }
        throw err
      }
    }
  }
  return wrapped as T
}

export function createActivities(deps: ActivityDeps) {
  return withRetryVerdicts(activitiesOf(deps))
}

function activitiesOf(deps: ActivityDeps) {
  function chainOf(request: InferenceRequest): ChainPlugin {
    const chain = deps.chains.find((c) => c.chainId === request.chainId && c.gateway.toLowerCase() === request.gateway.toLowerCase())
    if (!chain) throw new UnknownChainError(`no chain plugin for chain ${request.chainId}, gateway ${request.gateway}`)
    return chain
  }

  /**
   * The memory the model's circuit (size 1) and each of its batch circuits of `sizes` need to be
   * proven. Each batch manifest is read and checked once per model (the store hands out one
   * object per artifacts hash, whose files do not change), not once per request.
   */
  const memoryByModel = new WeakMap<ModelArtifacts, Promise<CircuitMemory[]>>()
  async function circuitMemory(model: ModelArtifacts, sizes: readonly number[]): Promise<CircuitMemory[]> {
    let all = memoryByModel.get(model)
    if (!all) {
      all = Promise.all(
        availableBatchSizes(model).map(async (size) => ({
          size,
          memoryBytes: provingMemoryOf((await batchManifestOf(model, size)).manifest),
        })),
      ).then((batches) => [{ size: 1, memoryBytes: provingMemoryOf(model.manifest) }, ...batches])
      all.catch(() => memoryByModel.delete(model))
      memoryByModel.set(model, all)
    }
    return (await all).filter((c) => c.size === 1 || sizes.includes(c.size))
  }

  /** Refuses a proof this prover worker cannot hold (routing should have sent it to a bigger class). */
  function checkCapacity(manifest: ModelManifest): void {
    const worker = deps.proverWorker
    const need = provingMemoryOf(manifest)
    if (worker && need > worker.memoryBytes) {
      const mib = (b: number) => `${Math.ceil(b / 2 ** 20)} MiB`
      throw new ProverCapacityError(
        `circuit ${manifest.name} needs ${mib(need)} to prove; this ${worker.hardware} prover offers ${mib(worker.memoryBytes)} a proof`,
        {
          details:
            'Route it to provers that can hold it (prover.routing: gpu, cpuMemoryBytes or pin in the node configuration), or raise prover.memoryBytes on a worker with the memory.',
          retryable: false,
        },
      )
    }
  }

  /** Where this activity ran (its task queue and the worker's class), with the prover's measured peak. */
  function provedOn(peakMemoryBytes: number | undefined): ProvedOn {
    return {
      queue: Context.current().info.taskQueue,
      ...(deps.proverWorker ? { hardware: deps.proverWorker.hardware } : {}),
      ...(peakMemoryBytes !== undefined ? { peakMemoryBytes } : {}),
    }
  }

  /**
   * Writes one artifact to storage: signed now and uploaded later (`presign`, where the storage
   * can), or put at once. A retried put finds its earlier write by its tags where the storage is searchable.
   */
  async function putArtifact(
    tags: Record<string, string>,
    data: Uint8Array,
    contentType: string,
    { presign }: { presign: boolean },
  ): Promise<PreparedArtifact & { uploaded: boolean }> {
    const storage = deps.storage
    if (presign && storage.flags.presigned && storage.prepare && storage.upload) {
      return { ...(await storage.prepare(data, { contentType, tags })), uploaded: false }
    }
    // A retry may find its earlier write; a first attempt has none to find.
    if (attempt() > 1 && storage.flags.searchable && storage.find) {
      const [existing] = await storage.find(tags)
      if (existing) return { artifact: existing, payload: '', uploaded: true }
    }
    return { artifact: await storage.put(data, { contentType, tags }), payload: '', uploaded: true }
  }

  function marketOf(request: InferenceRequest): MarketPlugin {
    const route = request.route
    if (!route) throw new UnknownMarketError(`request ${request.key} was not made on a spoke chain`)
    const m = deps.markets?.find((x) => x.chainId === route.hubChainId && x.market.toLowerCase() === route.market.toLowerCase())
    if (!m) throw new UnknownMarketError(`no market plugin for hub chain ${route.hubChainId}, market ${route.market}`)
    return m
  }

  /** Polls `look` until it yields, heartbeating; gives up once the request's deadline (plus grace) passed. */
  async function awaitHop<T>(request: InferenceRequest, what: string, look: () => Promise<T | undefined>): Promise<T> {
    const ctx = Context.current()
    const t0 = performance.now()
    for (let n = 0; ; n++) {
      const found = await look()
      if (found !== undefined) return found
      if (Date.now() / 1000 > request.deadline + DEADLINE_GRACE_S) {
        throw new RelayTimeoutError(`${what}: still waiting ${DEADLINE_GRACE_S} s after request ${request.key}'s deadline`)
      }
      ctx.heartbeat({ waiting: what, elapsedMs: Math.round(performance.now() - t0) })
      await ctx.sleep(hopDelayMs(deps.hopPollMs ?? HOP_POLL_MS, n))
    }
  }

  return {
    /**
     * Reads the request's job in the hub's node registry, moving the book on where it is stuck: a
     * job whose node let its window pass is reassigned (that node slashed), a queued one assigned
     * once some node has capacity (polled). Ends with `mine`; `other` while another node holds it
     * within its window (the workflow sleeps until `windowEnd` on a durable timer, then asks again:
     * nothing polls meanwhile); or why this node will not serve it: `closed` (answered by its node, or settled another way), `lapsed` (missed after its
     * deadline), `expired` (the deadline passed while it waited); or `none`: the request has no job
     * (no pool can serve it, e.g. a model the hub does not know), so any node may fail it. A spoke
     * request's job is the market's (`marketRequestId`); a hub request's is its gateway's.
     */
    async awaitAssignment(
      request: InferenceRequest,
      marketRequestId?: string,
    ): Promise<{
      assignment: 'mine' | 'other' | 'none' | 'closed' | 'lapsed' | 'expired'
      /** For `none`: the code and reason to fail the request with. */
      code?: InferenceErrorCode
      reason?: string
      node?: string
      windowEnd: number
      reassigned: number
      ms: number
      attempt: number
    }> {
      const ctx = Context.current()
      const t0 = performance.now()
      const book: JobBook & { getModel?: MarketPlugin['getModel'] } = marketRequestId !== undefined ? marketOf(request) : chainOf(request)
      const id = marketRequestId ?? request.requestId
      let reassigned = 0
      for (let n = 0; ; n++) {
        const a = await book.getAssignment(id)
        const done = (assignment: 'mine' | 'other' | 'none' | 'closed' | 'lapsed' | 'expired') => ({
          assignment,
          ...(a.node ? { node: a.node } : {}),
          windowEnd: a.windowEnd,
          reassigned,
          ms: performance.now() - t0,
          attempt: attempt(),
        })
        if (a.state === 'Assigned' && a.mine) return done('mine')
        // A recorded spoke request without a job: no pool serves it (an unknown model), or none had
        // capacity and the requester chose to fail then. (A hub request's job is made with it: none
        // yet is an RPC behind the watcher's.)
        if (a.state === 'None' && marketRequestId !== undefined) {
          // A fan-out request naming a chain the hub cannot deliver to gets no job either.
          const unserved = await marketOf(request).unservedDestination(marketRequestId)
          if (unserved)
            return {
              ...done('none'),
              code: 'ModelUnavailable' as const,
              reason: `the hub cannot deliver to destination chain ${unserved.chainId}: no route there, or model ${request.modelId}'s current circuit is not recorded there`,
            }
          const known = (await book.getModel?.(request.modelId)) !== undefined
          return {
            ...done('none'),
            code: known ? ('NoCapacity' as const) : ('ModelUnavailable' as const),
            reason: known
              ? `no node of model ${request.modelId}'s pool had the capacity, and the request chose to fail then`
              : `the hub serves no model ${request.modelId}`,
          }
        }
        if (a.state === 'Closed') return done('closed')
        if (a.state === 'Lapsed') return done('lapsed')
        const now = Date.now() / 1000
        if (now > request.deadline) return done('expired')
        if (a.state === 'Assigned' && now <= a.windowEnd) return done('other')
        // Another node's window passed, or the job waits for capacity: try to move it on.
        if (a.state === 'Assigned' || a.state === 'Queued') {
          if ((await book.advanceAssignment(id)) === 'reassigned') reassigned++
        }
        ctx.heartbeat({ waiting: `the assignment of ${request.key}`, state: a.state, node: a.node })
        await ctx.sleep(hopDelayMs(deps.hopPollMs ?? HOP_POLL_MS, n))
      }
    },

    /**
     * Waits until the hub market has recorded a spoke request (its request message was relayed);
     * with the other chains a fan-out request's result goes to.
     */
    async awaitHubRecord(
      request: InferenceRequest,
    ): Promise<MarketEvent & { marketRequestId: string; destinations: CopyDestination[]; ms: number; attempt: number }> {
      const t0 = performance.now()
      const market = marketOf(request)
      const route = request.route!
      const r = await awaitHop(request, `the hub's record of ${request.key}`, () =>
        market.findRequest(route, request.gateway, request.requestId),
      )
      return {
        ...r.recorded,
        marketRequestId: r.marketRequestId,
        destinations: [...r.destinations],
        ms: performance.now() - t0,
        attempt: attempt(),
      }
    },

    /**
     * Waits until a fan-out request's copy arrived on `destination` (verified and delivered, or
     * rejected by that chain's verification): at its gateway, or at the hub's market for the hub.
     */
    async awaitCopy(
      request: InferenceRequest,
      destination: CopyDestination,
      fromBlock?: string,
    ): Promise<CopyArrival & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const market = marketOf(request)
      const desk: CopyDesk | undefined =
        destination.chainId === market.chainId ? market : deps.chains.find((c) => c.chainId === destination.chainId)
      if (!desk) throw new UnknownChainError(`no chain plugin for chain ${destination.chainId}, where ${request.key} fans out`)
      const c = await awaitHop(request, `the copy of ${request.key} on chain ${destination.chainId}`, () =>
        desk.findCopy(request.chainId, request.gateway, request.requestId, fromBlock),
      )
      return { ...c, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Submits the result to the hub market, which verifies it and sends it to the spoke (idempotent). */
    async submitToHub(
      request: InferenceRequest,
      marketRequestId: string,
      result: ProvenResult,
      storage: StoredResult,
    ): Promise<MarketTxOutcome & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const outcome = await marketOf(request).submitResult(marketRequestId, request, { ...result, storage })
      return { ...outcome, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Reports to the hub market that the request cannot be served; the spoke refunds it (idempotent). */
    async failOnHub(
      request: InferenceRequest,
      marketRequestId: string,
      code: InferenceErrorCode,
      reason: string,
    ): Promise<MarketTxOutcome & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const outcome = await marketOf(request).fail(marketRequestId, request, code, reason)
      return { ...outcome, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Waits until the spoke gateway settled the request (a result or failure from the hub, or a refund). */
    async awaitSpokeSettlement(request: InferenceRequest): Promise<Settlement & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const chain = chainOf(request)
      const s = await awaitHop(request, `the spoke's settlement of ${request.key}`, () =>
        chain.findSettlement(request.requestId, request.seenAt.blockNumber),
      )
      return { ...s, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Waits until the spoke's settlement receipt closed the request in the hub market. */
    async awaitHubSettlement(
      request: InferenceRequest,
      marketRequestId: string,
    ): Promise<MarketEvent & { status: MarketStatus; settlement: RequestStatus; ms: number; attempt: number }> {
      const t0 = performance.now()
      const market = marketOf(request)
      const s = await awaitHop(request, `the hub's settlement of ${request.key}`, () => market.findSettlement(marketRequestId))
      return { ...s.settled, status: s.status, settlement: s.settlement, ms: performance.now() - t0, attempt: attempt() }
    },

    /**
     * Reads the model from the registry of the request's chain (and the hub's, for a spoke
     * request), loads its artifacts (local copy, cache, or storage, every file checked against the
     * registered hashes), and compares the on-chain circuit with the manifest: the trusted verifier,
     * the VKA, the bound, scales, shapes, visibility and SRS flag. A node serves nothing else.
     */
    async resolveModel(
      request: InferenceRequest,
    ): Promise<{ model: ModelRef; batchSizes: number[]; proving: CircuitMemory[]; ms: number; attempt: number }> {
      const t0 = performance.now()
      const chain = chainOf(request)
      const onChain = await retryTransient(() => chain.getModel(request.modelId), RESOLVE_RPC_RETRY)
      if (!onChain) throw new UnknownModelError(`model ${request.modelId} is not registered on chain ${request.chainId}`)
      if (onChain.version !== request.modelVersion)
        throw new ModelVersionMismatchError(
          `model ${onChain.name} is at version ${onChain.version}; request ${request.key} was made against version ${request.modelVersion}`,
        )
      const ref = modelRefOf(onChain)
      const model = await deps.models.get(ref)
      const allowInsecureSrs = deps.allowInsecureSrs ?? false
      checkRegisteredCircuit(onChain, model.manifest, {
        trustedVerifierCodeHash: chain.trustedVerifierCodeHash,
        allowInsecureSrs,
        where: `chain ${request.chainId}`,
      })
      // Batch circuits whose registered VKA is the manifest's, here (and on the hub, which verifies a spoke's batch first).
      const held = availableBatchSizes(model)
      let batchSizes = servableBatchSizes(onChain, model.manifest).filter((n) => held.includes(n))
      if (request.route) {
        const market = marketOf(request)
        const atHub = await retryTransient(() => market.getModel(request.modelId), RESOLVE_RPC_RETRY)
        if (!atHub)
          throw new UnknownModelError(`model ${onChain.name} (${request.modelId}) is not registered on the hub (chain ${market.chainId})`)
        checkRegisteredCircuit(atHub, model.manifest, {
          trustedVerifierCodeHash: market.trustedVerifierCodeHash,
          allowInsecureSrs,
          where: `the hub (chain ${market.chainId})`,
        })
        if (atHub.artifacts.manifestHash.toLowerCase() !== ref.artifacts.manifestHash.toLowerCase())
          throw new UnknownModelError(
            `model ${onChain.name}: the hub registers artifacts ${atHub.artifacts.manifestHash}, chain ${request.chainId} ${ref.artifacts.manifestHash}`,
          )
        const atHubSizes = servableBatchSizes(atHub, model.manifest)
        batchSizes = batchSizes.filter((n) => atHubSizes.includes(n))
      }
      return {
        model: ref,
        batchSizes,
        proving: await circuitMemory(model, batchSizes),
        ms: performance.now() - t0,
        attempt: attempt(),
      }
    },

    /** Hands the request to its model's batch workflow, starting that workflow if it is not running. */
    async joinBatch(member: BatchMember, input: BatchWorkflowInput): Promise<{ ms: number; attempt: number }> {
      const t0 = performance.now()
      if (!deps.batches) throw new SertnError('this worker does not batch (no Temporal client for batch workflows)', { retryable: false })
      await deps.batches.join(member, input)
      return { ms: performance.now() - t0, attempt: attempt() }
    },

    /**
     * Proves a batch with the model's batch circuit of `size` rows: the members' inputs, then
     * padding rows of zeros (bound to no request). Returns every row's input and output.
     */
    async proveBatch(
      ref: ModelRef,
      size: number,
      members: readonly BatchMember[],
    ): Promise<{
      inputs: string[]
      outputs: string[]
      proof: `0x${string}`
      proveMs: number
      /** The task queue that proved it, and the peak memory the prover measured (native). */
      provedOn: ProvedOn
      attempt: number
    }> {
      const ctx = Context.current()
      const model = await deps.models.get(ref)
      const batch = await loadBatchArtifacts(model, size, { allowInsecureSrs: deps.allowInsecureSrs ?? false })
      checkCapacity(batch.manifest)
      const rowLength = members[0]?.request.input.length ?? 0
      if (members.length === 0 || members.length > size || members.some((m) => m.request.input.length !== rowLength))
        throw new BadRequestError(`a batch of ${size} rows takes 1 to ${size} requests with inputs of one length`)
      const inputs = [...members.flatMap((m) => m.request.input), ...Array.from({ length: (size - members.length) * rowLength }, () => '0')]
      ctx.heartbeat({ stage: 'witness', elapsedMs: 0 })
      const p = await deps.prover.proveInference(batch, inputs.map(BigInt), { onProgress: (progress) => ctx.heartbeat(progress) })
      metrics.provingSeconds.observe({ model: model.manifest.name, prover: deps.prover.name, rows: String(size) }, p.proveMs / 1000)
      return {
        inputs,
        outputs: p.output.map(String),
        proof: p.proof,
        proveMs: p.proveMs,
        provedOn: provedOn(p.peakMemoryBytes),
        attempt: ctx.info.attempt,
      }
    },

    /**
     * Delivers a proven batch (idempotent: rows settled meanwhile go as padding of the same proof):
     * to its chain's gateway, or, for a spoke's requests (`marketRequestIds` given), to the hub
     * market, which sends it to the spoke in one message.
     */
    async fulfillBatch(
      batch: ProvenBatch,
      marketRequestIds?: readonly (string | undefined)[],
    ): Promise<BatchOutcome & { ms: number; attempt: number }> {
      const t0 = performance.now()
      // A workflow's arguments are JSON, which has no undefined in arrays: padding rows arrive as
      // null. The plugins take them as typed (undefined).
      const rows = batch.rows.map((r) => r ?? undefined)
      const ids = marketRequestIds?.map((x) => x ?? undefined)
      const first = rows.find((r) => r !== undefined)
      if (!first) throw new BadRequestError('a batch names at least one request')
      if (Boolean(first.route) !== Boolean(ids))
        throw new BadRequestError(`batch of ${first.key}: a spoke's batch goes with its market request ids, a hub's without`)
      const typed = { ...batch, rows }
      const outcome = ids ? await marketOf(first).submitBatch(typed, ids) : await chainOf(first).fulfillBatch(typed)
      return { ...outcome, ms: performance.now() - t0, attempt: attempt() }
    },

    /**
     * For a model whose input is hashed: fetches the input document the request names, checks that
     * it hashes to the request's commitment and fits the model, and returns the input.
     */
    async loadInput(request: InferenceRequest, ref: ModelRef): Promise<{ input: string[]; ms: number; attempt: number }> {
      const t0 = performance.now()
      const storage = deps.storage
      if (!request.inputRef) throw new BadRequestError(`request ${request.key} is for a hashed-input model but names no stored input`)
      if (!storage.getById) throw new SertnError(`storage ${storage.name} cannot read an input by its id`)
      const bytes = await storage.getById(base64UrlIdOf(request.inputRef), { maxBytes: MAX_INPUT_DOCUMENT_BYTES })
      const inputQ = openInputDocument(bytes, BigInt(request.input[0] ?? '0'))
      checkQuantizedInput((await deps.models.get(ref)).manifest, inputQ)
      return { input: inputQ.map(String), ms: performance.now() - t0, attempt: attempt() }
    },

    /** Runs the model on the request's input (or the loaded input of a hashed request) with the runtime plugin (no proof). */
    async runInference(
      request: InferenceRequest,
      ref?: ModelRef,
      input?: string[],
    ): Promise<{ output: number[]; ms: number; attempt: number }> {
      if (!ref)
        throw new ModelNotResolvedError(
          `request ${request.key}: no resolved model (a workflow from an older version); it is failed with a refund`,
        )
      const model = await deps.models.get(ref)
      const inputQ = (input ?? request.input).map(BigInt)
      checkQuantizedInput(model.manifest, inputQ)
      const r = await deps.runtime.run(
        model,
        inputQ.map((q) => dequantize(q, model.manifest.inputScale)),
      )
      return { output: r.output, ms: r.ms, attempt: attempt() }
    },

    /** Witness, proof and an off-chain verification, heartbeating while the prover works. */
    async proveInference(
      request: InferenceRequest,
      ref?: ModelRef,
      input?: string[],
    ): Promise<{
      result: ProvenResult
      witnessMs: number
      proveMs: number
      verifyMs: number
      provedOn: ProvedOn
      attempt: number
    }> {
      const ctx = Context.current()
      if (!ref)
        throw new ModelNotResolvedError(
          `request ${request.key}: no resolved model (a workflow from an older version); it is failed with a refund`,
        )
      const model = await deps.models.get(ref)
      checkCapacity(model.manifest)
      const inputQ = (input ?? request.input).map(BigInt)
      ctx.heartbeat({ stage: 'witness', elapsedMs: 0 })
      const p = await deps.prover.proveInference(model, inputQ, { onProgress: (progress) => ctx.heartbeat(progress) })
      metrics.provingSeconds.observe({ model: model.manifest.name, prover: deps.prover.name, rows: '1' }, p.proveMs / 1000)
      // The prover plugin has checked that the instances are the input (or its commitment) and the
      // output (or its commitment): its contract, held by the conformance suite. The gateway
      // rebuilds them on-chain anyway.
      if (p.inputCommitment !== undefined && fromFelt(p.inputCommitment) !== BigInt(request.input[0] ?? '0'))
        throw new BadRequestError(`request ${request.key}: the proven input's commitment differs from the request's`)
      const output = p.outputCommitment !== undefined ? [fromFelt(p.outputCommitment).toString()] : p.output.map(String)
      return {
        result: {
          output,
          ...(p.outputCommitment !== undefined ? { plainOutput: p.output.map(String) } : {}),
          proof: p.proof,
          instances: p.instances.map(String),
        },
        witnessMs: p.witnessMs,
        proveMs: p.proveMs,
        verifyMs: p.verifyMs,
        provedOn: provedOn(p.peakMemoryBytes),
        attempt: ctx.info.attempt,
      }
    },

    /**
     * Fixes where the output and the proof will be stored, tagged with the request key: with a
     * presigned storage (Arweave) their ids are known before the upload, which then runs beside
     * the fulfilment; other storages upload here (a retry finds its earlier writes).
     */
    async prepareResult(request: InferenceRequest, result: ProvenResult): Promise<PreparedResult & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const one = (kind: 'output' | 'proof', data: Uint8Array, contentType: string) =>
        putArtifact({ 'Sertn-Request': request.key, 'Sertn-Kind': kind }, data, contentType, { presign: true })
      const outputDoc = JSON.stringify({
        key: request.key,
        modelId: request.modelId,
        input: request.input,
        ...(request.inputRef ? { inputRef: request.inputRef } : {}),
        output: result.plainOutput ?? result.output,
        ...(result.plainOutput ? { outputCommitment: result.output[0] } : {}),
        instances: result.instances,
      })
      const [output, proof] = await Promise.all([
        one('output', new TextEncoder().encode(outputDoc), 'application/json'),
        one('proof', Buffer.from(result.proof.slice(2), 'hex'), 'application/octet-stream'),
      ])
      return { output, proof, ms: performance.now() - t0, attempt: attempt() }
    },

    /**
     * Stores a proven batch: one document with every row (the request it answers, or none for a
     * padding row; its input and output) and the proof. Idempotent where the storage is searchable
     * (a retry finds its earlier writes by the batch's tags).
     */
    async storeBatch(
      batchId: string,
      batch: Pick<ProvenBatch, 'size' | 'inputs' | 'outputs' | 'proof'> & { keys: readonly (string | undefined)[]; modelId: string },
    ): Promise<StoredResult & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const inLen = batch.inputs.length / batch.size
      const outLen = batch.outputs.length / batch.size
      const doc = JSON.stringify({
        batch: batchId,
        modelId: batch.modelId,
        size: batch.size,
        rows: Array.from({ length: batch.size }, (_, r) => ({
          ...(batch.keys[r] ? { key: batch.keys[r] } : { padding: true }),
          input: batch.inputs.slice(r * inLen, (r + 1) * inLen),
          output: batch.outputs.slice(r * outLen, (r + 1) * outLen),
        })),
      })
      const tags = (kind: string) => ({ 'Sertn-Batch': batchId, 'Sertn-Kind': kind })
      const [output, proof] = await Promise.all([
        putArtifact(tags('output'), new TextEncoder().encode(doc), 'application/json', { presign: false }),
        putArtifact(tags('proof'), Buffer.from(batch.proof.slice(2), 'hex'), 'application/octet-stream', { presign: false }),
      ])
      return { output: output.artifact, proof: proof.artifact, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Uploads prepared artifacts (idempotent: an artifact already uploaded is a success). */
    async uploadResult(prepared: PreparedResult): Promise<{ ms: number; attempt: number }> {
      const t0 = performance.now()
      const upload = deps.storage.upload?.bind(deps.storage)
      await Promise.all(
        [prepared.output, prepared.proof]
          .filter((p) => !p.uploaded)
          .map((p) => {
            if (!upload) throw new SertnError(`storage ${deps.storage.name} cannot upload a prepared artifact`)
            return upload(p)
          }),
      )
      return { ms: performance.now() - t0, attempt: attempt() }
    },

    /** Delivers the result on the request's gateway (idempotent). */
    async fulfillRequest(
      request: InferenceRequest,
      result: ProvenResult,
      storage: StoredResult,
    ): Promise<TxOutcome & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const outcome = await chainOf(request).fulfill(request, { ...result, storage })
      return { ...outcome, ms: performance.now() - t0, attempt: attempt() }
    },

    /** Ends the request with the requester's error callback and a refund (idempotent). */
    async failRequest(
      request: InferenceRequest,
      code: InferenceErrorCode,
      reason: string,
    ): Promise<TxOutcome & { ms: number; attempt: number }> {
      const t0 = performance.now()
      const outcome = await chainOf(request).fail(request, code, reason)
      return { ...outcome, ms: performance.now() - t0, attempt: attempt() }
    },
  }
}

export type Activities = ReturnType<typeof createActivities>
