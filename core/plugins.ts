/**
 * Plugin contracts: one interface per kind with a required core, capability `flags` and `dispose`.
 * A plugin is made by a factory over documented options (`defineProverPlugin(options => …)`), so
 * composition roots choose implementations by configuration and tests run one conformance suite
 * against every implementation of a kind.
 */
import type { LocalAccount } from 'viem'
import type { ModelArtifacts } from './manifest.ts'
import type { RegisteredCircuit } from './registered.ts'
import type {
  Address,
  ChainId,
  ChainPosition,
  CopyDestination,
  Hex,
  InferenceErrorCode,
  InferenceRequest,
  MarketStatus,
  ProvenResult,
  RequestId,
  RequestStatus,
  SpokeRoute,
  StoredArtifact,
} from './types.ts'

export type PluginKind = 'runtime' | 'prover' | 'storage' | 'chain' | 'market' | 'messenger'

/** What every plugin has. */
export interface PluginBase<K extends PluginKind, F extends Record<string, boolean>> {
  readonly kind: K
  /** Unique within its kind, e.g. `ezkl-wasm`. */
  readonly name: string
  /** What this implementation can do. */
  readonly flags: Readonly<F>
  /** Releases workers, processes, sockets. Later calls fail with a PluginError. */
  dispose(): Promise<void>
}

// ─────────────────────────────── runtime ───────────────────────────────

export interface RuntimeRunResult {
  /** The model's outputs, flattened. */
  readonly output: number[]
  readonly ms: number
}

/** Runs a model on real-valued inputs (no proof). */
export interface RuntimePlugin extends PluginBase<'runtime', { gpu: boolean }> {
  run(model: ModelArtifacts, input: readonly number[]): Promise<RuntimeRunResult>
}

// ─────────────────────────────── prover ────────────────────────────────

export interface WitnessResult {
  /** The witness file as the engine wrote it; the input to {@link ProverPlugin.prove}. */
  readonly witness: Uint8Array
  /** The circuit's outputs as signed integers at the model's output scale, flattened. */
  readonly output: bigint[]
  readonly ms: number
}

export interface ProveResult {
  /** Raw proof bytes, for an on-chain verifier. */
  readonly proof: Hex
  /** Public instances as field elements: the inputs (row-major), then the outputs. */
  readonly instances: bigint[]
  /** The proof file as the engine wrote it; the input to {@link ProverPlugin.verify}. */
  readonly proofJson: Uint8Array
  readonly ms: number
  /** The prover's peak resident memory while proving, where the engine can tell (native ezkl). */
  readonly peakMemoryBytes?: number
}

export interface VerifyResult {
  readonly ok: boolean
  /** Why verification failed, in the engine's words; absent when ok. */
  readonly reason?: string
  readonly ms: number
}

export interface InferenceProof {
  readonly output: bigint[]
  /** The Poseidon hash of the input (the first instance), for a model whose input is hashed. */
  readonly inputCommitment?: bigint
  /** The Poseidon hash of the output (the last instance), for a model whose output is hashed. */
  readonly outputCommitment?: bigint
  readonly proof: Hex
  readonly instances: bigint[]
  readonly proofJson: Uint8Array
  readonly witnessMs: number
  readonly proveMs: number
  readonly verifyMs: number
  /** The prover's peak resident memory while proving, where the engine can tell (native ezkl). */
  readonly peakMemoryBytes?: number
}

/** Progress of a long proving step, for heartbeats and progress bars. */
export interface ProveProgress {
  readonly stage: 'witness' | 'prove' | 'verify'
  readonly elapsedMs: number
  /** 0..1 when the engine can tell; absent otherwise. */
  readonly fraction?: number
}

export interface ProveOptions {
  /** Called at least once a second while proving. */
  onProgress?: (p: ProveProgress) => void
}

/** Makes and checks proofs for a model's circuit. */
export interface ProverPlugin extends PluginBase<'prover', { gpu: boolean; multiThreaded: boolean; outOfProcess: boolean }> {
  witness(model: ModelArtifacts, inputQ: readonly bigint[]): Promise<WitnessResult>
  prove(model: ModelArtifacts, witness: Uint8Array, options?: ProveOptions): Promise<ProveResult>
  /** An invalid proof yields ok: false; only a failure of the prover itself throws. */
  verify(model: ModelArtifacts, proofJson: Uint8Array): Promise<VerifyResult>
  /**
   * witness, prove and verify, checking that the instances are exactly the input (or its hash) and
   * the output (or its hash).
   */
  proveInference(model: ModelArtifacts, inputQ: readonly bigint[], options?: ProveOptions): Promise<InferenceProof>
  /**
   * Gets the model ready to prove: derives its proving key (or finds it cached) and checks that the
   * verifying key derived with it is the pinned one. proveInference does it on first use.
   */
  prepare?(model: ModelArtifacts): Promise<void>
}

// ─────────────────────────────── storage ───────────────────────────────

export interface PutOptions {
  contentType: string
  /** Searchable tags, e.g. { 'Sertn-Request': key, 'Sertn-Kind': 'proof' }. */
  tags: Record<string, string>
}

/** An artifact whose id is fixed (signed) but that is not uploaded yet; JSON, so it can cross Temporal. */
export interface PreparedArtifact {
  readonly artifact: StoredArtifact
  /** What {@link StoragePlugin.upload} sends (e.g. a signed transaction), serialized. */
  readonly payload: string
}

/**
 * Keeps large artifacts (outputs, proofs) and returns them checked against their hash. Plugins
 * flagged `presigned` can fix an artifact's id before uploading it (`prepare`, then `upload`), so a
 * result can be delivered with its storage ids while the upload runs.
 */
export interface StoragePlugin extends PluginBase<'storage', { persistent: boolean; searchable: boolean; presigned?: boolean }> {
  put(data: Uint8Array, options: PutOptions): Promise<StoredArtifact>
  /** Fixes the artifact's id without uploading it (presigned plugins only). */
  prepare?(data: Uint8Array, options: PutOptions): Promise<PreparedArtifact>
  /** Uploads a prepared artifact; uploading it again is a success (presigned plugins only). */
  upload?(prepared: PreparedArtifact): Promise<StoredArtifact>
  /** Reads an artifact back; throws IntegrityError if its bytes do not hash to `ref.sha256`. */
  get(ref: StoredArtifact): Promise<Uint8Array>
  /**
   * Reads an artifact known by its id alone (a request's hashed input, a model's artifact index):
   * no recorded hash to check, so the caller checks the content (against a commitment, or the
   * hashes a registry pins). Fails when it holds more than `maxBytes`.
   */
  getById?(id: string, options: { maxBytes: number }): Promise<Uint8Array>
  /** Artifacts carrying all of `tags` (searchable plugins only): lets a retried put find its earlier write. */
  find?(tags: Record<string, string>): Promise<StoredArtifact[]>
}

// ─────────────────────────────── chain ─────────────────────────────────

/** How far a watcher got: the last fully processed block and the hashes of recent blocks (reorg detection). */
export interface WatchCursor {
  readonly blockNumber: string
  readonly recentHashes: readonly { number: string; hash: Hex }[]
}

export interface WatchOptions {
  /** Called for every request in a block with enough confirmations, at least once (dedupe by key). */
  onRequest: (request: InferenceRequest) => Promise<void>
  /** Stops the loop. */
  signal: AbortSignal
  /** Where to start when no cursor was saved (default: the latest block). */
  fromBlock?: bigint
}

export interface RequestState {
  readonly status: RequestStatus
  readonly requester: Address
  readonly deadline: number
}

export interface TxOutcome {
  /** The transaction that settled it; absent when it was already settled before we sent. */
  readonly transactionHash?: Hex
  readonly gasUsed?: string
  readonly blockNumber?: string
  /** The request's status after the call. */
  readonly status: RequestStatus
  /** True when someone (a retry of ours, another node) had settled it already. */
  readonly alreadySettled: boolean
  /** Milliseconds from submitting the transaction to its receipt: the chain's inclusion wait. */
  readonly inclusionMs?: number
  /** Unix ms when the receipt was read (the requester's callback has run by then). */
  readonly receiptAt?: number
}

/**
 * Requests of one model proven together with its batch circuit of `size` rows (see
 * `ModelManifest.batches`): the proof's instances are every row's input, then every row's output.
 */
export interface ProvenBatch {
  readonly size: number
  /** One per row: the request the row answers, or undefined for a padding row (bound to no request). */
  readonly rows: readonly (InferenceRequest | undefined)[]
  /** Every row's input (decimal strings), row after row. */
  readonly inputs: readonly string[]
  /** Every row's output (decimal strings), row after row. */
  readonly outputs: readonly string[]
  readonly proof: Hex
  /** Where the batch's outputs and proof were stored. */
  readonly storage?: ProvenResult['storage']
}

/** What became of each request of a batch, by request key. */
export type BatchRowOutcome =
  /** Fulfilled by this batch (`alreadySettled`: by an earlier try of it). */
  | { readonly status: 'Fulfilled'; readonly alreadySettled: boolean }
  /** Settled another way before the batch landed (refunded, failed): its row went as padding. */
  | { readonly status: Exclude<RequestStatus, 'Fulfilled' | 'Pending' | 'None'>; readonly alreadySettled: true }
  /** Its job is no longer this node's (reassigned): its row went as padding, and the request is not settled. */
  | { readonly status: 'Pending'; readonly alreadySettled: false; readonly reassigned: true }
  /** Its deadline passed before the batch landed: its row went as padding; it can only be refunded now. */
  | { readonly status: 'Pending'; readonly alreadySettled: false; readonly expired: true }

/** A batch's transaction (absent when every row had been settled before it was sent) and its rows' outcomes. */
export interface BatchOutcome {
  readonly transactionHash?: Hex
  readonly gasUsed?: string
  readonly blockNumber?: string
  readonly inclusionMs?: number
  readonly receiptAt?: number
  readonly rows: Readonly<Record<string, BatchRowOutcome>>
}

/** A fan-out copy's arrival on one of its request's other chains (at most one per request and chain). */
export interface CopyArrival {
  /** Copied: verified there and delivered; Rejected: that chain's verification refused it (never delivered). */
  readonly status: 'Copied' | 'Rejected'
  readonly transactionHash: Hex
  readonly blockNumber: string
  /** Gas of the whole delivering transaction (for a spoke: the messenger's `process`). */
  readonly gasUsed: string
  /** For Copied: how the receiver's callback went. */
  readonly callback?: 'Succeeded' | 'Failed' | 'Skipped'
  /** For Rejected: the selector of the verification's error. */
  readonly error?: Hex
  /** Unix ms when this plugin first read it. */
  readonly observedAt: number
}

/** Where fan-out copies arrive on a chain: a spoke's gateway, or the hub's market (for the hub). */
export interface CopyDesk {
  /**
   * The copy of request `requestId` of `gateway` on chain `origin`, once it arrived here (undefined
   * until then), searching from `fromBlock`.
   */
  findCopy(origin: ChainId, gateway: Address, requestId: RequestId, fromBlock?: string): Promise<CopyArrival | undefined>
}

/** One connected chain: its gateway's requests in, results and failures out. */
export interface ChainPlugin extends PluginBase<'chain', { reorgSafe: boolean }>, JobBook, CopyDesk {
  /** The configured name of the chain (a key of the `chains` config). */
  readonly chainName: string
  readonly chainId: ChainId
  readonly gateway: Address
  /**
   * Watches `InferenceRequested` until `signal` aborts, calling `onRequest` for requests whose block
   * has the configured confirmations, persisting its cursor, resuming from it after a restart, and
   * rescanning after a reorg.
   */
  watchRequests(options: WatchOptions): Promise<void>
  /** The request as the gateway stores it now. */
  getRequestState(requestId: RequestId): Promise<RequestState>
  /** The model as the gateway's registry records it now (undefined when it is not registered). */
  getModel(modelId: Hex): Promise<RegisteredCircuit | undefined>
  /** keccak256 of the runtime code of the one verifier this plugin trusts (the audited reusable verifier). */
  readonly trustedVerifierCodeHash: Hex
  /**
   * Delivers a result. Idempotent: a request already fulfilled (by this node's earlier try) is a
   * success with `alreadySettled`; a rejected proof throws a non-retryable error.
   */
  fulfill(request: InferenceRequest, result: ProvenResult): Promise<TxOutcome>
  /** Ends a request that cannot be served (error callback, refund). Idempotent like {@link fulfill}. */
  fail(request: InferenceRequest, code: InferenceErrorCode, reason: string): Promise<TxOutcome>
  /**
   * Delivers a batch with one proof. Idempotent: a request settled meanwhile (by an earlier try, a
   * refund) or reassigned away goes as a padding row of the same proof, which needs no new proof;
   * a rejected proof or a row bound to the wrong input throws a non-retryable error.
   */
  fulfillBatch(batch: ProvenBatch): Promise<BatchOutcome>
  /** Where the chain is now. */
  head(): Promise<{ blockNumber: bigint; position?: ChainPosition }>
  /**
   * How a settled request was settled: the gateway's settlement event (undefined while the request
   * is pending). For a spoke gateway this is where a result delivered from the hub shows.
   */
  findSettlement(requestId: RequestId, fromBlock?: string): Promise<Settlement | undefined>
}

/** Where a request's job stands in the hub's node registry (see {@link Assignment}). */
export const JOB_STATES = ['None', 'Queued', 'Assigned', 'Closed', 'Lapsed'] as const
export type JobState = (typeof JOB_STATES)[number]

/**
 * A request's job in the hub's node registry: the one node that may answer it now, and until when.
 * Queued: no node had the capacity yet. Closed: answered (or settled another way). Lapsed: missed
 * after its deadline (the requester is refunded).
 */
export interface Assignment {
  readonly state: JobState
  /** The assigned node (Assigned). */
  readonly node?: Address
  /** Whether the assigned node is this plugin's account. */
  readonly mine: boolean
  /** Unix seconds until which only `node` may answer; after it anyone may reassign the job. */
  readonly windowEnd: number
  /** The request's deadline (unix seconds). */
  readonly deadline: number
  /** Nodes that missed it so far. */
  readonly misses: number
}

/** What {@link JobBook.advanceAssignment} did. */
export type AssignmentStep = 'reassigned' | 'assigned' | 'unchanged'

/** The hub's job book as a node sees it, for the requests of one gateway or market. */
export interface JobBook {
  /** The job of request `id` (the gateway's request id, or the market's). */
  getAssignment(id: string): Promise<Assignment>
  /**
   * Moves a stuck job on: reassigns it once its window has passed (slashing the node that missed
   * it), or assigns it if it was queued and capacity is free now. 'unchanged' when there is nothing
   * to do now (the window is open, no capacity, another node was first).
   */
  advanceAssignment(id: string): Promise<AssignmentStep>
}

/** A request's settlement on its gateway. */
export interface Settlement {
  readonly status: Exclude<RequestStatus, 'None' | 'Pending'>
  readonly transactionHash: Hex
  readonly blockNumber: string
  /** Gas of the whole settling transaction (for a spoke: the messenger's `process`). */
  readonly gasUsed: string
  /** The node that was paid (Fulfilled) or reported the failure (Failed). */
  readonly node?: Address
  /** Unix ms when this plugin first read it. */
  readonly observedAt: number
}

// ─────────────────────────────── market (hub) ──────────────────────────

/** A spoke request as the hub market recorded it. */
export interface MarketRecord {
  readonly marketRequestId: string
  readonly status: MarketStatus
  /** How the spoke settled it, once `status` is Settled. */
  readonly settlement: RequestStatus
  readonly node?: Address
  /** How many other chains its result also goes to (a fan-out request; usually 0). */
  readonly copies: number
}

/** Where the market recorded something (the messenger's `process` on the hub). */
export interface MarketEvent {
  readonly transactionHash: Hex
  readonly blockNumber: string
  readonly gasUsed: string
  /** Unix ms when this plugin first read it. */
  readonly observedAt: number
}

/**
 * The hub market on one chain: where spoke requests are recorded, results and failures are
 * submitted (and sent on to the spoke), and spokes' settlement receipts close requests.
 */
export interface MarketPlugin extends PluginBase<'market', Record<string, never>>, JobBook, CopyDesk {
  readonly chainName: string
  readonly chainId: ChainId
  readonly market: Address
  /** The model as the hub's registry records it now (undefined when it is not registered). */
  getModel(modelId: Hex): Promise<RegisteredCircuit | undefined>
  /** keccak256 of the runtime code of the one verifier this plugin trusts. */
  readonly trustedVerifierCodeHash: Hex
  /** The market's record of a spoke request, or undefined until its request message arrives. */
  findRequest(
    route: SpokeRoute,
    gateway: Address,
    spokeRequestId: RequestId,
  ): Promise<(MarketRecord & { recorded: MarketEvent; destinations: readonly CopyDestination[] }) | undefined>
  /** The first of a fan-out request's other chains that the hub cannot serve now (no route, the model not current there). */
  unservedDestination(marketRequestId: string): Promise<CopyDestination | undefined>
  getRequest(marketRequestId: string): Promise<MarketRecord>
  /** When the spoke's receipt closed the request (undefined until it did). */
  findSettlement(marketRequestId: string): Promise<(MarketRecord & { settled: MarketEvent }) | undefined>
  /**
   * Submits a result (verified on the hub, then sent to the spoke). Idempotent: a result already
   * sent (by an earlier try) is `{ status: 'ResultSent', alreadySettled: true }`; a rejected proof
   * throws a non-retryable error.
   */
  submitResult(marketRequestId: string, request: InferenceRequest, result: ProvenResult): Promise<MarketTxOutcome>
  /** Reports a failure (the spoke refunds the request). Idempotent like {@link submitResult}. */
  fail(marketRequestId: string, request: InferenceRequest, code: InferenceErrorCode, reason: string): Promise<MarketTxOutcome>
  /**
   * Submits a batch of one spoke's requests with one proof of the model's batch circuit (verified on
   * the hub, then sent to the spoke in one message, verified there once). `marketRequestIds[r]` is
   * row r's market request id (undefined for a padding row). A row's `Fulfilled` means its result
   * left for the spoke (the spoke's settlement follows). Idempotent like
   * {@link ChainPlugin.fulfillBatch}: a row sent by an earlier try is `alreadySettled`, a row
   * settled or taken by another node meanwhile goes as padding of the same proof.
   */
  submitBatch(batch: ProvenBatch, marketRequestIds: readonly (string | undefined)[]): Promise<BatchOutcome>
}

export type MarketTxOutcome = Omit<TxOutcome, 'status'> & { readonly status: MarketStatus }

// ─────────────────────────────── messenger ─────────────────────────────

/**
 * One chain as a messaging network sees it. `Client` is the chain family's signing client (for EVM
 * chains, `SertnClient` from chains/evm/clients.ts); core does not depend on it.
 */
export interface MessengerChain<Client> {
  /** The chain's name in the configuration. */
  readonly name: string
  /** Its Sertn domain: the chain id. */
  readonly domain: number
  /** Reads the chain and signs (deployment and enrolment: as the owner; agents: as the payer). */
  readonly client: Client
  /** The most blocks one of the agents' `eth_getLogs` scans of this chain asks for (the chain's `logRangeBlocks`). */
  readonly logRangeBlocks?: number
}

/**
 * What a messaging network has on one chain: Sertn's port (applications route through it) and the
 * network's own contracts and ids, exactly as the chain's `messenger` configuration section holds
 * them (JSON: numbers and strings).
 */
export interface MessengerDeployment {
  /** The plugin's name (`hyperlane`, `layerzero`, …): the section's `kind`. */
  readonly kind: string
  /** Sertn's port on this chain. */
  readonly port: Address
  /** Where agents without saved state start scanning (the network's deployment block). */
  readonly deployBlock: number
  readonly [field: string]: unknown
}

/** A deployment on one chain, with the chain. */
export interface MessengerEndpoint<Client> {
  readonly chain: MessengerChain<Client>
  readonly deployment: MessengerDeployment
}

/** A message as Sertn applications send it (what {@link MessengerPlugin.quote} prices). */
export interface MessengerMessage {
  /** The destination's Sertn domain (chain id). */
  readonly destination: number
  /** The application there. */
  readonly recipient: Address
  readonly body: Hex
  /** The gas its handling needs there. */
  readonly gasLimit: bigint
}

/** What local agents report, per message. */
export interface MessengerAgentEvent {
  readonly type: 'delivered' | 'rejected' | 'ignored'
  /** `origin→destination` chain names. */
  readonly route: string
  /** The network's id for the message. */
  readonly messageId: Hex
  /** delivered: the destination transaction. */
  readonly transactionHash?: Hex
  readonly gasUsed?: bigint
  /**
   * delivered: how long the destination's own transactions (a relayer's `process`, a DVN's
   * verification and an executor's `lzReceive`, …) waited for inclusion, in ms: the rest of a
   * hop is what the agents add.
   */
  readonly inclusionMs?: number
  /** rejected, ignored: why. */
  readonly reason?: string
}

export interface MessengerAgentsOptions<Client> {
  /** The chains to serve (each with its deployment), every pair both ways; their clients pay for deliveries. */
  readonly endpoints: readonly MessengerEndpoint<Client>[]
  /** Where the agents keep their state (resumed after a restart); in memory when absent. */
  readonly dir?: string
  /** Signs attestations (the validator's / the DVN's key), as a 0x private key. */
  readonly attesterKey: Hex
  /** Blocks on top of a message before it is attested. */
  readonly confirmations?: number
  readonly pollingIntervalMs?: number
  /** The most gas the agents pay for one delivery. */
  readonly maxGas?: bigint
  /** Failed deliveries after which a message is rejected (kept and reported, not lost). */
  readonly maxAttempts?: number
  /** The first retry's delay (ms); each next one doubles, up to `maxRetryBackoffMs`. */
  readonly retryBackoffMs?: number
  readonly maxRetryBackoffMs?: number
  /** The recipients' custom errors, to name them in rejection reasons. */
  readonly errorAbi?: readonly unknown[]
  readonly onEvent?: (event: MessengerAgentEvent) => void
  readonly onError?: (who: string, err: unknown) => void
}

export interface MessengerDeployOptions {
  /** The addresses the network's security trusts (validators, DVN signers). */
  readonly attesters: readonly Address[]
  /** How many of them must sign. */
  readonly threshold: number
  /** The accounts the local agents submit from (where the network's contracts must admit them). */
  readonly submitters?: readonly Address[]
  /** A protocol fee per message (wei), where the network has one. */
  readonly fee?: bigint
}

export interface MessengerConnectOptions {
  /**
   * Origin blocks a message waits for before it is attested, where the network records it on
   * chain (LayerZero's ULN configuration); networks whose attesters choose it themselves (Hyperlane
   * validators: `relay.confirmations`) ignore it. Default 0 (local chains).
   */
  readonly confirmations?: number
}

/** A message the local agents gave up on (kept in their state for an operator; see `sertn relay rejected`). */
export interface RejectedRelayMessage {
  /** The messenger plugin's name (`hyperlane`, `layerzero`, …). */
  readonly messenger: string
  /** `origin→destination` chain names. */
  readonly route: string
  /** The network's id for the message (what {@link MessengerAgents.requeue} takes). */
  readonly messageId: Hex
  /** The agent that gave up (`relayer`, `dvn`, `executor`, …). */
  readonly agent: string
  /** Why its last delivery failed (the destination's revert reason when it refused). */
  readonly reason: string
  /** Failed deliveries. */
  readonly attempts: number
  /** When it was given up on (ms since the epoch). */
  readonly rejectedAt: number
  /** The message's number on its route (Hyperlane: its tree index; LayerZero: its path nonce). */
  readonly sequence: string
  /** The origin block and transaction that sent it. */
  readonly originBlock: string
  readonly originTransaction?: Hex
}

/** Where a messenger's local agents keep their state, and the chains they serve (for route names). */
export interface MessengerStateOptions {
  /** The agents' state folder (what {@link MessengerAgentsOptions.dir} was). */
  readonly dir: string
  /** The chains served, with their deployments (as in the configuration). */
  readonly chains: readonly { readonly name: string; readonly deployment: MessengerDeployment }[]
}

/** Running local agents. */
export interface MessengerAgents {
  /** Settles once the agents are ready to deliver. */
  readonly ready: Promise<void>
  /**
   * Moves rejected messages (all, or those with these ids) back to pending with fresh attempts, for
   * an operator who fixed what rejected them; resolves to how many were requeued.
   */
  requeue(messageIds?: readonly Hex[]): Promise<number>
  stop(): Promise<void>
}

/**
 * A messaging network (Hyperlane, LayerZero, …): deploys its core contracts and Sertn's port on a
 * chain, joins two chains' ports, lets Sertn applications send, quotes fees, and runs the local
 * stand-ins for its off-chain agents. Everything network-specific lives behind this interface (and
 * in the network's port contract), so a new network is a plugin folder.
 */
export interface MessengerPlugin<Client = unknown> extends PluginBase<'messenger', { localAgents: boolean }> {
  /** A hash of the code {@link MessengerPlugin.deploy} deploys: a recorded deployment of other code is stale. */
  readonly fingerprint: string
  /**
   * Checks a chain's `messenger` section of this kind; throws a ConfigError naming `path` and the
   * field at fault.
   */
  parseDeployment(section: unknown, path: string): MessengerDeployment
  /**
   * Deploys the network's core contracts and Sertn's port on a chain (local chains: a real network
   * is served by its own deployment). `attesters` are the addresses the network's security trusts
   * (validators, DVN signers), `threshold` of them.
   */
  deploy(chain: MessengerChain<Client>, options: MessengerDeployOptions): Promise<MessengerDeployment>
  /** Makes two chains' ports peers, both ways (each sent by its chain's client). Idempotent. */
  connect(a: MessengerEndpoint<Client>, b: MessengerEndpoint<Client>, options?: MessengerConnectOptions): Promise<void>
  /** Lets application `app` send through the chain's port. Idempotent. */
  allowApp(endpoint: MessengerEndpoint<Client>, app: Address): Promise<void>
  /** The fee for sending `message` from `endpoint`'s chain now. */
  quote(endpoint: MessengerEndpoint<Client>, message: MessengerMessage): Promise<bigint>
  /** Starts the local agents (polling in the background) until `stop()`. */
  startAgents(options: MessengerAgentsOptions<Client>): MessengerAgents
  /**
   * The messages the local agents with state in `options.dir` gave up on, read from that state
   * (safe while they run: they replace their files atomically). Moving them back to pending is
   * {@link MessengerAgents.requeue}, in the agents' process.
   */
  rejectedMessages?(options: MessengerStateOptions): Promise<RejectedRelayMessage[]>
}

// ─────────────────────────────── define* helpers ───────────────────────

/** Declares a runtime plugin factory: `defineRuntimePlugin((options: O) => plugin)`. */
export const defineRuntimePlugin = <O = void>(factory: (options: O) => RuntimePlugin) => factory
/** Declares a prover plugin factory. */
export const defineProverPlugin = <O = void>(factory: (options: O) => ProverPlugin) => factory
/** Declares a storage plugin factory. */
export const defineStoragePlugin = <O = void>(factory: (options: O) => StoragePlugin) => factory
/**
 * What a node gives a chain plugin it makes from a module (a chain's `plugin` in the
 * configuration), besides the chain's `options`: the chain's own settings. The plugin must serve
 * exactly this chain (its `chainName`, `chainId` and `gateway` are these).
 */
export interface ChainPluginContext {
  /** The chain's name in the configuration (the plugin's `chainName`). */
  readonly chainName: string
  readonly chainId: ChainId
  readonly rpcUrl: string
  readonly fallbackRpcUrls: readonly string[]
  /** Sertn's gateway on the chain (the plugin's `gateway`). */
  readonly gateway: Address
  /** Blocks on top of a request's block before it is delivered (as {@link ChainPlugin.watchRequests} promises). */
  readonly confirmations: number
  readonly pollingIntervalMs: number
  /** The most blocks one log query may span. */
  readonly logRangeBlocks: number
  /** Set when the chain is a spoke: its requests are reported with this route. */
  readonly route?: SpokeRoute
  /** A folder of the chain's own for the watcher's persistent state (made by the plugin when it first writes). */
  readonly stateDir: string
  /**
   * The node's account (its resolved signer, else the development key), for plugins whose chain
   * signs with an EVM key; a ConfigError saying what to configure when there is none. Call it when
   * first needed: a plugin with keys of its own never does.
   */
  signer(): LocalAccount
}

/**
 * Declares a chain plugin factory: `defineChainPlugin((options: O, context) => plugin)`. A node
 * makes a module's plugin with the chain's `options` and its {@link ChainPluginContext}.
 */
export function defineChainPlugin<O = void>(factory: (options: O) => ChainPlugin): (options: O) => ChainPlugin
export function defineChainPlugin<O = void>(
  factory: (options: O, context: ChainPluginContext) => ChainPlugin,
): (options: O, context: ChainPluginContext) => ChainPlugin
export function defineChainPlugin<O>(factory: (options: O, context: ChainPluginContext) => ChainPlugin) {
  return factory
}
/** Declares a market plugin factory. */
export const defineMarketPlugin = <O = void>(factory: (options: O) => MarketPlugin) => factory
/** Declares a messenger plugin factory. */
export const defineMessengerPlugin = <Client, O = void>(factory: (options: O) => MessengerPlugin<Client>) => factory
