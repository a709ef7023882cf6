/**
 * What clients, workers and tests share about the request workflow: its input, its status query
 * and its outcome. Pure data and Temporal definitions only (imported by workflow code).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common'
import { defineQuery, defineSignal } from '@temporalio/workflow'
import type { ModelRef } from '../core/artifacts.ts'
import type { BatchRowOutcome } from '../core/plugins.ts'
import type { ChainPosition, CopyDestination, InferenceErrorCode, InferenceRequest, RequestKey, StoredArtifact } from '../core/types.ts'
import type { CircuitMemory, ProverClass, ProverRouting } from './routing.ts'

/**
 * The request workflow's id: the request key and the transaction of the `InferenceRequested` event
 * it was started for, `req:<chainId>:<gateway>:<requestId>@<transactionHash>`.
 *
 * The key alone is not unique: a reorg deeper than the confirmations frees the id of a request whose
 * transaction it dropped, and the gateway gives it to the next request (ids are sequential per
 * gateway), which is another transaction. The transaction hash is on every log the watcher reads
 * (confirmed logs always carry it), is the same whenever the same event is read again (a restarted
 * watcher, a rewind, another RPC), and stays the same when a reorg replays the transaction into
 * another block — one request, one workflow. The input's hash would not tell two requests with the
 * same input apart (a dApp asking again, a request sent anew after it was dropped), and the block
 * hash would start a second workflow for a transaction that a reorg merely moved.
 */
export const requestWorkflowIdOf = (r: { key: string; seenAt: Pick<ChainPosition, 'transactionHash'> }): string =>
  `${r.key}@${r.seenAt.transactionHash.toLowerCase()}`

/**
 * A visibility query for every workflow of request `key`: those started for each of its events
 * (`<key>@<transaction>`), and one started before the id named the transaction (`<key>`). It needs
 * no custom search attribute, so it works on a server that lacks them.
 */
export const requestWorkflowsQuery = (key: string): string => {
  if (!/^req:\d+:0x[0-9a-f]{40}:\d+$/.test(key)) throw new TypeError(`not a request key: ${key}`)
  return `WorkflowType = 'requestWorkflow' AND (WorkflowId = '${key}' OR WorkflowId STARTS_WITH '${key}@')`
}

/**
 * Custom search attributes (all Keyword), so that requests can be found in the Temporal UI and by
 * `temporal workflow list --query "SertnChain = '31337' AND SertnStage = 'proving'"`:
 * - `SertnRequestKey`: the request key (`req:<chainId>:<gateway>:<requestId>`);
 * - `SertnChain`: the requesting chain's id, in decimal;
 * - `SertnModel`: the model id (bytes32, lowercase hex);
 * - `SertnNode`: the node that holds the request's job (lowercase address), once known;
 * - `SertnStage`: the workflow's stage (see {@link STAGES}), kept current.
 * The local dev server registers them at start. On a cluster, create them once per namespace:
 * `temporal operator search-attribute create --namespace <ns> --name SertnRequestKey --type Keyword
 * --name SertnChain --type Keyword --name SertnModel --type Keyword --name SertnNode --type Keyword
 * --name SertnStage --type Keyword` (on Temporal Cloud, in its UI or with `tcld`). A worker on a
 * namespace without them says so at start, with that command, and starts workflows without them.
 */
export const SEARCH_ATTRIBUTES = {
  requestKey: defineSearchAttributeKey('SertnRequestKey', SearchAttributeType.KEYWORD),
  chain: defineSearchAttributeKey('SertnChain', SearchAttributeType.KEYWORD),
  model: defineSearchAttributeKey('SertnModel', SearchAttributeType.KEYWORD),
  node: defineSearchAttributeKey('SertnNode', SearchAttributeType.KEYWORD),
  stage: defineSearchAttributeKey('SertnStage', SearchAttributeType.KEYWORD),
} as const

/** Task queue names, from configuration. */
export type TaskQueues = {
  chainIo: string
  inference: string
  /** The CPU class's prover queue (the only one before routing existed). */
  prover: string
  /** Where proofs go by their circuit's memory need (absent in workflows started before routing). */
  routing?: ProverRouting
  /**
   * The batch workflows and their storage and delivery activities (absent in workflows started
   * before it: those use chain-io's).
   */
  batch?: string
}

export type RequestWorkflowInput = {
  request: InferenceRequest
  queues: TaskQueues
  /** Prove the request in a batch with others of its model and chain when the model has batch circuits. */
  batching?: BatchingOptions
}

/** How a node batches (`batching` in its configuration): latency against gas. */
export type BatchingOptions = {
  /** How long a batch waits for more requests once its first has joined. */
  windowMs: number
  /** The most rows per batch (default: the model's largest batch circuit). */
  maxSize?: number
}

/**
 * A request handed to its model's batch workflow: proven and delivered with others. A spoke's
 * request carries its market request id: its batch is submitted to the hub market, which sends
 * it to the spoke in one message.
 */
export type BatchMember = {
  request: InferenceRequest
  marketRequestId?: string
  /** The member's workflow id, to tell it its row (absent from members that joined before ids named the event: their key). */
  workflowId?: string
}

/**
 * The most callback gas the rows of one batch may ask for together: a spoke batch's message must
 * carry every callback's gas (the hub market refuses more than a block can hold).
 */
export const MAX_BATCH_CALLBACK_GAS = 16_000_000

/** The batch workflow of a model version on one chain, in one node's namespace. */
export type BatchWorkflowInput = {
  chainId: number
  gateway: string
  model: ModelRef
  /** The model's batch circuits' sizes, ascending. */
  sizes: number[]
  /** The memory each batch circuit needs to be proven, raised to the most a prover has measured (routing). */
  proving?: CircuitMemory[]
  batching: BatchingOptions
  queues: TaskQueues
  /** Members that had joined when the workflow continued as new. */
  carried?: BatchMember[]
}

/** The batch workflow's id for a request's model version on its chain. */
export const batchWorkflowIdOf = (r: Pick<InferenceRequest, 'chainId' | 'gateway' | 'modelId' | 'modelVersion'>) =>
  `batch:${r.chainId}:${r.gateway.toLowerCase()}:${r.modelId}:${r.modelVersion}`

/** A request joins its model's batch workflow. */
export const joinBatchSignal = defineSignal<[BatchMember]>('joinBatch')

/**
 * The batch workflow's answer to one member: its row's outcome in a delivered batch, or `solo`
 * when the batch could not take it (alone in its window, or the batch failed): the request is then
 * proven and delivered on its own.
 */
export type BatchResult =
  | {
      kind: 'delivered'
      batchId: string
      size: number
      rows: number
      row: BatchRowOutcome
      transactionHash?: string
      gasUsed?: string
      /** Where the batch's rows (inputs and outputs) and its proof are stored. */
      storage?: { output: StoredArtifact; proof: StoredArtifact }
      output: string[]
      /** Where the batch was proven. */
      prover?: ProverView
    }
  | { kind: 'solo'; reason: string }

export const batchResultSignal = defineSignal<[BatchResult]>('batchResult')

/**
 * The stages a request goes through, in order (`resolving`: the model read from the registry and its
 * artifacts loaded and checked; `loading-input`: a hashed input fetched from storage and checked
 * against its commitment); it ends in `fulfilled`, `failed` or
 * `settled-elsewhere` (also when another node of the pool holds the request: `assignment` says
 * which; `awaiting-assignment` is the wait for the hub to assign it to this node). A spoke chain's request adds the hops: `awaiting-hub` (its request message
 * on the way to the hub market, when the proof is ready first), `submitting` (the result to the
 * market), `delivering` (the result message on the way back to the spoke, verified there) and
 * `settling` (the spoke's receipt on the way to the market).
 */
export const STAGES = [
  'received',
  'awaiting-assignment',
  'resolving',
  'loading-input',
  'inference',
  'proving',
  'storing',
  'awaiting-hub',
  'submitting',
  'fulfilling',
  'batching',
  'delivering',
  'failing',
  'settling',
  'fulfilled',
  'failed',
  'settled-elsewhere',
] as const
export type Stage = (typeof STAGES)[number]

/** Timings of one stage: workflow-clock milliseconds, and the activity's own measurement. */
export type StageTiming = {
  /** From scheduling the activity to its result, retries included. */
  ms: number
  /** What the activity measured for its work alone (absent when it did not say). */
  workMs?: number
  /** For transactions: the chain's inclusion wait (submitted → receipt), part of workMs. */
  inclusionMs?: number
  /** For transactions: unix ms when the receipt was read. */
  receiptAt?: number
  /** For hops and transactions: the transaction (on the chain the hop ends on). */
  transactionHash?: string
  gasUsed?: string
  /** For hops: unix ms when the activity first saw the hop's event. */
  observedAt?: number
  attempts: number
}

/** A spoke request's hops: its record on the hub, the submission there, the spoke's settlement, the hub's. */
export type HopName = 'hubRecord' | 'submit' | 'spokeSettle' | 'hubSettle'

/** How long after another node's window a node looks at the job again (clocks differ a little). */
export const WINDOW_MARGIN_MS = 2000

export type RequestStatusView = {
  key: RequestKey
  stage: Stage
  /** Unix ms when the workflow started. */
  startedAt: number
  timings: Partial<
    Record<
      'assignment' | 'resolve' | 'input' | 'inference' | 'witness' | 'prove' | 'verify' | 'store' | 'upload' | 'fulfil' | 'fail' | HopName,
      StageTiming
    >
  >
  /** The model as the registry records it (once resolved). */
  model?: { name: string; version: number; artifactsHash: string }
  /** For a spoke chain's request: the hub market serving it, and how it stands there. */
  hub?: { chainId: number; market: string; marketRequestId?: string; status?: string; settlement?: string }
  output?: string[]
  storage?: { output: StoredArtifact; proof: StoredArtifact }
  transactionHash?: string
  error?: { code: InferenceErrorCode; reason: string }
  /** The request's job in the hub's node registry: its node (this one when `mine`), until when, and how often it was reassigned. */
  assignment?: { node?: string; mine: boolean; windowEnd: number; reassigned: number }
  /** The batch it was proven and delivered in (its size, how many requests it answered, the transaction). */
  batch?: { id: string; size: number; rows: number; transactionHash?: string; gasUsed?: string; prover?: ProverView }
  /** Where its own proof went (a request proven alone). */
  prover?: ProverView
  /**
   * A fan-out request's other chains: each copy's way there (`sent` with the result, then `Copied`
   * or `Rejected` by that chain's verification; `unknown` if it did not arrive before the request's
   * deadline and grace).
   */
  copies?: CopyView[]
}

/** One copy of a fan-out request's result, on its way to another chain. */
export type CopyView = CopyDestination & {
  status: 'pending' | 'sent' | 'Copied' | 'Rejected' | 'unknown'
  /** For Copied: how the receiver's callback went. */
  callback?: string
  /** For Rejected: the selector of the verification's error. */
  error?: string
  transactionHash?: string
  gasUsed?: string
}

/** Where a proof went (its queue, the class, why) and what the prover measured. */
export type ProverView = { queue: string; hardware: ProverClass; reason: string; peakMemoryBytes?: number }

/** The workflow's current status. */
export const statusQuery = defineQuery<RequestStatusView>('status')

export type RequestOutcome = RequestStatusView & { stage: 'fulfilled' | 'failed' | 'settled-elsewhere' }
