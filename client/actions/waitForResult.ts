import type { Address, Hex } from 'viem'
import { getChainId, getContractEvents, readContract } from 'viem/actions'
import { InferenceMarket, NodeRegistry, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { SertnError } from '../../core/errors.ts'
import { REQUEST_STATUSES, requestKey, type RequestStatus } from '../../core/types.ts'
import { InferenceFailedError, InferenceRefundedError, rethrowCall, WaitTimeoutError } from '../errors.ts'
import {
  addressOfBytes32,
  bytes32OfAddress,
  latestBlock,
  readChunked,
  resolveTarget,
  type LogRangeParameters,
  type ReadClient,
  type RequestTarget,
} from '../internal.ts'
import { getRequest, readRequestEvents, type SertnRequest } from './getRequest.ts'

/**
 * A request's hops, in order, each read from a chain event:
 * - `sentToHub`: the spoke gateway sent it to the hub (SpokeGateway `RequestSentToHub`)
 * - `recordedOnHub`: the hub market recorded it (InferenceMarket `RequestRecorded`)
 * - `assigned`: the hub's node registry assigned it to a node (NodeRegistry `JobAssigned`)
 * - `dispatched`: the node's result was verified on the hub and sent to the spoke (InferenceMarket
 *   `ResultDispatched`), or `failureDispatched`: its failure report was (`FailureDispatched`)
 * - `fulfilled`: delivered and verified on the requesting chain, consumer called back (`InferenceFulfilled`)
 * - `failed` / `refunded`: ended without a result (`InferenceFailed`, `InferenceRefunded`)
 * - `receiptSent`: the spoke's settlement receipt left for the hub (SpokeGateway `ReceiptSent`)
 * - `settled`: the hub market settled it (InferenceMarket `RequestSettled`)
 *
 * A hub request has only `assigned` and its end; a spoke request followed without the hub's client
 * has only the spoke's own hops.
 */
export const HOPS = [
  'sentToHub',
  'recordedOnHub',
  'assigned',
  'dispatched',
  'failureDispatched',
  'fulfilled',
  'failed',
  'refunded',
  'receiptSent',
  'settled',
] as const
export type HopName = (typeof HOPS)[number]

/** One hop of a request, as seen on a chain. */
export type Hop = {
  hop: HopName
  /** The chain it was seen on. */
  chainId: number
  transactionHash: Hex
  blockNumber: bigint
  /** The node (assigned, dispatched, fulfilled, settled). */
  node?: Address
  /** The hub market's id for a spoke request (recordedOnHub and after). */
  marketRequestId?: bigint
  /** The messenger's message id (sentToHub, dispatched, receiptSent). */
  messageId?: Hex
  /** The settlement (receiptSent, settled). */
  status?: RequestStatus
}

export type WaitForResultParameters = RequestTarget &
  LogRangeParameters & {
    /** For a spoke's request: a client of the hub chain, to follow the hub's hops too. */
    hub?: { client: ReadClient; fromBlock?: bigint }
    /** Called once per hop, in order. */
    onProgress?: (hop: Hop) => void
    /** Resolve once the result is verified on the requesting chain (default), or once the hub settled it too. */
    until?: 'fulfilled' | 'settled'
    /** Give up after this long (default 600,000 ms): rejects with a WaitTimeoutError. */
    timeoutMs?: number
    /** Between polls (default: the client's pollingInterval, at least 250 ms). */
    pollingIntervalMs?: number
    signal?: AbortSignal
  }

export type WaitForResultReturnType = {
  /** The request as read once it was fulfilled. */
  request: SertnRequest & { fulfilled: NonNullable<SertnRequest['fulfilled']> }
  /** Every hop seen, in order. */
  hops: Hop[]
}

/** A hop on another chain that must be seen before this one (events on one chain come in block order). */
const AFTER: Partial<Record<HopName, HopName>> = { recordedOnHub: 'sentToHub', fulfilled: 'dispatched', settled: 'receiptSent' }
/** Polls a hop is held for its predecessor on another chain before it is reported anyway. */
const HOLD_POLLS = 5

/**
 * Waits for a request's verified result on the chain it was made on: resolves on its
 * `InferenceFulfilled` (the proof verified there, the consumer called back, with the callback
 * status), rejects with an {@link InferenceFailedError} or {@link InferenceRefundedError} when it
 * ended without one. With the hub's client, a spoke request's hops on the hub are followed too and
 * reported through `onProgress` in order, read from chain events only. Polls in bounded log ranges
 * until `timeoutMs` or `signal`.
 *
 * @example
 * const { request, hops } = await waitForResult(spokeClient, {
 *   key, hub: { client: hubClient }, onProgress: (h) => console.log(h.hop, h.transactionHash),
 * })
 * console.log(request.fulfilled.output, request.fulfilled.callbackStatus)
 */
export async function waitForResult(client: ReadClient, params: WaitForResultParameters): Promise<WaitForResultReturnType> {
  const { gateway, requestId, chainId } = await resolveTarget(client, params)
  const key = requestKey(chainId, gateway, requestId)
  const timeoutMs = params.timeoutMs ?? 600_000
  const interval = Math.max(250, params.pollingIntervalMs ?? client.pollingInterval ?? 1_000)
  const deadline = Date.now() + timeoutMs
  const until = params.until ?? 'fulfilled'
  const range = params.blockRange

  // Where each chain's next log read starts.
  let spokeFrom = params.fromBlock ?? 0n
  const hubClient = params.hub?.client
  let hubFrom = params.hub?.fromBlock ?? 0n
  const hubChainId = hubClient ? (hubClient.chain?.id ?? (await getChainId(hubClient))) : undefined

  // Whether the gateway is a spoke, and its hub market; the node registry of the market that opens the request's job.
  const market = await readContract(client, { address: gateway, abi: SpokeGateway.abi, functionName: 'hubMarket' }).then(
    (m) => addressOfBytes32(m),
    () => undefined,
  )
  const isSpoke = market !== undefined
  const jobsClient = isSpoke ? hubClient : client
  const jobsMarket = isSpoke ? market : gateway
  const nodeRegistry = jobsClient
    ? await readContract(jobsClient, { address: jobsMarket!, abi: InferenceMarket.abi, functionName: 'nodes' }).catch(() => undefined)
    : undefined
  let marketRequestId: bigint | undefined

  const found = new Map<HopName, Hop & { heldFor: number }>()
  const reported: Hop[] = []
  const reportedNames = new Set<HopName>()
  const add = (hop: Hop) => {
    if (!found.has(hop.hop)) found.set(hop.hop, { ...hop, heldFor: 0 })
  }
  const report = () => {
    for (const name of HOPS) {
      const hop = found.get(name)
      if (!hop || reportedNames.has(name)) continue
      const before = AFTER[name]
      const waitFor = before && hubClient && isSpoke && (name !== 'fulfilled' || !found.has('failureDispatched'))
      if (waitFor && !reportedNames.has(before) && hop.heldFor++ < HOLD_POLLS) continue
      const { heldFor: _, ...clean } = hop
      reportedNames.add(name)
      reported.push(clean)
      params.onProgress?.(clean)
    }
  }
  const at = (l: { transactionHash: Hex | null; blockNumber: bigint | null }) => ({
    transactionHash: l.transactionHash!,
    blockNumber: l.blockNumber!,
  })

  const pollSpoke = async () => {
    const to = await latestBlock(client)
    if (to < spokeFrom) return
    const from = spokeFrom
    const { sent, fulfilled, failed, refunded, receipts } = await readRequestEvents(client, {
      gateway,
      requestId,
      fromBlock: from,
      toBlock: to,
      blockRange: range,
      spoke: isSpoke,
    })
    for (const l of sent) add({ hop: 'sentToHub', chainId, ...at(l), messageId: l.args.messageId })
    for (const l of fulfilled) add({ hop: 'fulfilled', chainId, ...at(l), node: l.args.node })
    for (const l of failed) add({ hop: 'failed', chainId, ...at(l), node: l.args.node })
    for (const l of refunded) add({ hop: 'refunded', chainId, ...at(l) })
    for (const l of receipts)
      add({ hop: 'receiptSent', chainId, ...at(l), messageId: l.args.messageId, status: REQUEST_STATUSES[l.args.status] ?? 'None' })
    spokeFrom = to + 1n
  }

  const pollJobs = async (c: ReadClient, cid: number, from: bigint, to: bigint, id: bigint) => {
    if (!nodeRegistry) return
    const assigned = await readChunked(from, to, range, (fromBlock, toBlock) =>
      getContractEvents(c, {
        address: nodeRegistry,
        abi: NodeRegistry.abi,
        eventName: 'JobAssigned',
        args: { market: jobsMarket!, id },
        fromBlock,
        toBlock,
        strict: true,
      }),
    )
    const first = assigned[0]
    if (first) add({ hop: 'assigned', chainId: cid, ...at(first), node: first.args.node, ...(isSpoke ? { marketRequestId: id } : {}) })
  }

  const pollHub = async () => {
    if (!hubClient || !market || hubChainId === undefined) return
    const to = await latestBlock(hubClient)
    if (to < hubFrom) return
    const from = hubFrom
    const read = <T>(f: (fromBlock: bigint, toBlock: bigint) => Promise<readonly T[]>) => readChunked(from, to, range, f)
    if (marketRequestId === undefined) {
      const recorded = await read((fromBlock, toBlock) =>
        getContractEvents(hubClient, {
          address: market,
          abi: InferenceMarket.abi,
          eventName: 'RequestRecorded',
          args: { origin: chainId, spokeRequestId: requestId },
          fromBlock,
          toBlock,
          strict: true,
        }),
      )
      const mine = recorded.find((l) => l.args.gateway.toLowerCase() === bytes32OfAddress(gateway))
      if (!mine) {
        hubFrom = to + 1n
        return
      }
      marketRequestId = mine.args.marketRequestId
      add({ hop: 'recordedOnHub', chainId: hubChainId, ...at(mine), marketRequestId })
    }
    const id = marketRequestId
    const q = { address: market, abi: InferenceMarket.abi, args: { marketRequestId: id }, strict: true } as const
    const [dispatched, failures, settled] = await Promise.all([
      read((fromBlock, toBlock) => getContractEvents(hubClient, { ...q, eventName: 'ResultDispatched', fromBlock, toBlock })),
      read((fromBlock, toBlock) => getContractEvents(hubClient, { ...q, eventName: 'FailureDispatched', fromBlock, toBlock })),
      read((fromBlock, toBlock) => getContractEvents(hubClient, { ...q, eventName: 'RequestSettled', fromBlock, toBlock })),
      pollJobs(hubClient, hubChainId, from, to, id),
    ])
    for (const l of dispatched)
      add({ hop: 'dispatched', chainId: hubChainId, ...at(l), node: l.args.node, marketRequestId: id, messageId: l.args.messageId })
    for (const l of failures)
      add({ hop: 'failureDispatched', chainId: hubChainId, ...at(l), node: l.args.node, marketRequestId: id, messageId: l.args.messageId })
    for (const l of settled)
      add({
        hop: 'settled',
        chainId: hubChainId,
        ...at(l),
        node: l.args.node,
        marketRequestId: id,
        status: REQUEST_STATUSES[l.args.settlement] ?? 'None',
      })
    hubFrom = to + 1n
  }

  let hubRequestFrom = params.fromBlock ?? 0n
  const pollHubRequest = async () => {
    // A hub request's job is opened by its own gateway, on this chain.
    if (isSpoke || found.has('assigned')) return
    const to = await latestBlock(client)
    await pollJobs(client, chainId, hubRequestFrom, to, requestId)
    hubRequestFrom = to + 1n
  }

  try {
    for (;;) {
      params.signal?.throwIfAborted()
      // The requesting chain first: whatever it shows, its predecessors on the hub are on the hub by then.
      await pollSpoke()
      await Promise.all([pollHub(), pollHubRequest()])
      report()
      const end = found.get('failed') ?? found.get('refunded')
      const fulfilled = reportedNames.has('fulfilled')
      const done = until === 'settled' ? fulfilled && reportedNames.has('settled') : fulfilled
      if (done || (end && reportedNames.has(end.hop))) {
        const request = await getRequest(client, {
          gateway,
          requestId,
          fromBlock: params.fromBlock ?? 0n,
          ...(range ? { blockRange: range } : {}),
        })
        if (request.fulfilled) return { request: request as WaitForResultReturnType['request'], hops: reported }
        if (request.failed)
          throw new InferenceFailedError(
            key,
            request.failed.code,
            request.failed.reason,
            request.failed.callbackStatus,
            request.failed.transactionHash,
          )
        if (request.refunded) throw new InferenceRefundedError(key, request.refunded.callbackStatus, request.refunded.transactionHash)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new WaitTimeoutError(key, timeoutMs, reported.at(-1)?.hop)
      await sleep(Math.min(interval, left), params.signal)
    }
  } catch (err) {
    if (err instanceof SertnError) throw err
    if (params.signal?.aborted) throw new SertnError(`waitForResult ${key}: aborted`, { cause: params.signal.reason })
    rethrowCall(`waitForResult ${key}`, err)
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t)
      reject(signal!.reason)
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
