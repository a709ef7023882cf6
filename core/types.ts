/**
 * Domain types shared by chains, plugins and workflows. Everything that crosses a Temporal
 * boundary is JSON: big integers travel as decimal strings and addresses as checksummed hex.
 */

declare const brand: unique symbol
/** A nominal type: `T` tagged so that two kinds of ids cannot be mixed up. */
export type Brand<T, B extends string> = T & { readonly [brand]: B }

export type Hex = `0x${string}`
export type Address = `0x${string}`

/** An EVM chain id. */
export type ChainId = Brand<number, 'ChainId'>
/** A request id on one gateway, as a decimal string. */
export type RequestId = Brand<string, 'RequestId'>
/** The global key of a request: `req:<chainId>:<gateway lowercase>:<requestId>`; also its workflow id. */
export type RequestKey = Brand<string, 'RequestKey'>
/** A model's on-chain id (bytes32). */
export type ModelId = Brand<Hex, 'ModelId'>

export const chainId = (n: number) => n as ChainId
export const modelId = (h: Hex) => h as ModelId

/** The key (and workflow id) of request `requestId` on `gateway` at `chainId`. */
export function requestKey(chain: number, gateway: Address, requestId: bigint | string): RequestKey {
  return `req:${chain}:${gateway.toLowerCase()}:${BigInt(requestId).toString()}` as RequestKey
}

/** The parts of a request key; throws on a malformed key. */
export function parseRequestKey(key: string): { chainId: ChainId; gateway: Address; requestId: RequestId } {
  const m = /^req:(\d+):(0x[0-9a-f]{40}):(\d+)$/.exec(key)
  if (!m) throw new TypeError(`not a request key: ${key} (expected req:<chainId>:<gateway>:<requestId>)`)
  return { chainId: Number(m[1]) as ChainId, gateway: m[2] as Address, requestId: m[3] as RequestId }
}

/** Where on a chain something was seen. */
export type ChainPosition = {
  blockNumber: string
  blockHash: Hex
  transactionHash: Hex
  logIndex: number
}

/** An inference request as the gateway recorded it (from `InferenceRequested`). */
export type InferenceRequest = {
  key: RequestKey
  chainId: ChainId
  gateway: Address
  requestId: RequestId
  modelId: ModelId
  modelVersion: number
  requester: Address
  /** Input elements at the model's input scale, decimal strings; for a hashed input, its one commitment (signed encoding). */
  input: string[]
  /** For a hashed input: where the input document is stored (bytes32 storage ref). */
  inputRef?: Hex
  callbackGasLimit: number
  /** Wei in escrow, decimal string. */
  escrow: string
  /** Unix seconds. */
  deadline: number
  seenAt: ChainPosition
  /** Set for a request made on a spoke chain: the hub market that serves it. */
  route?: SpokeRoute
}

/** How a spoke chain's request reaches its hub: the market it is sent to, and the spoke's domain there. */
export type SpokeRoute = {
  /** The hub chain's configured name. */
  hubChain: string
  hubChainId: ChainId
  /** The hub's InferenceMarket. */
  market: Address
  /** The spoke's messenger domain (the market records the request under it). */
  originDomain: number
}

/**
 * Another chain that a fan-out request's result also goes to, verified there (the contracts'
 * `Destination`; its domain is the chain id).
 */
export type CopyDestination = {
  chainId: ChainId
  /** The contract called back there with the copy. */
  receiver: Address
  callbackGasLimit: number
}

/** Where a spoke request stands in the hub market; the contract's order. */
export const MARKET_STATUSES = ['None', 'Open', 'ResultSent', 'FailureSent', 'Settled'] as const
export type MarketStatus = (typeof MARKET_STATUSES)[number]

/** A proven inference, ready to deliver. */
export type ProvenResult = {
  /** Output elements at the model's output scale, decimal strings; for a hashed output, its one commitment (signed encoding). */
  output: string[]
  /** For a hashed output: the output's elements (stored, not sent on-chain). */
  plainOutput?: string[]
  proof: Hex
  /** Public instances as decimal strings: the inputs, then the outputs. */
  instances: string[]
  /** Where the output and the proof were stored, when they were (their ids go on-chain with the result). */
  storage?: { output: StoredArtifact; proof: StoredArtifact }
}

/** Where an artifact was stored and how to check it. */
export type StoredArtifact = {
  /** The storage plugin that holds it. */
  storage: string
  id: string
  sha256: string
  bytes: number
}

/** Why a request ended without a result; the same order as the gateway's `InferenceErrorCode`. */
export const INFERENCE_ERROR_CODES = [
  'Unknown',
  'InvalidInput',
  'ModelFailed',
  'ProvingFailed',
  'ModelUnavailable',
  'Timeout',
  'InvalidResult',
  'NoCapacity',
] as const
export type InferenceErrorCode = (typeof INFERENCE_ERROR_CODES)[number]

/** What happened when a contract called a consumer back, in the contracts' `CallbackStatus` order. */
export const CALLBACK_STATUSES = ['Succeeded', 'Failed', 'Skipped'] as const
export type CallbackStatus = (typeof CALLBACK_STATUSES)[number]

/** The gateway's request status, in the contract's order. */
export const REQUEST_STATUSES = ['None', 'Pending', 'Fulfilled', 'Failed', 'Refunded'] as const
export type RequestStatus = (typeof REQUEST_STATUSES)[number]

/** Per-chain data, keyed by chain name (Hyperlane's `ChainMap`). */
export type ChainMap<V> = Record<string, V>
