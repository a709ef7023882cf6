/**
 * What a chaos run hands its checker: where the chains are, which contracts and accounts took part,
 * what the load generator sent (valid requests and the invalid ones it expects the chains to
 * refuse), and the faults it injected. The checker reads the chains from this and nothing else of
 * the node's: outcomes, callbacks, payments and outputs come from events and state.
 *
 * The run writes it as JSON (bigints as decimal strings) beside its log, so that a run's chains,
 * kept alive or restored from anvil state, can be checked again with the same record.
 */
import type { Address, Hex } from 'viem'

/** One chain of the run. */
export type ChaosChain = {
  /** The local network's name (`hub`, `spoke`, `spokelz`). */
  name: string
  chainId: number
  /** The anvil RPC itself, not a fault proxy in front of it. */
  rpcUrl: string
  role: 'hub' | 'spoke'
  /** The messaging network joining a spoke to the hub (absent on the hub). */
  messenger?: 'hyperlane' | 'layerzero'
  /** The chain's gateway (the hub's own InferenceGateway, or a SpokeGateway). */
  gateway: Address
  /** The chain's model registry. */
  registry: Address
  /** The first block of the run: events before it are not the run's. */
  fromBlock: bigint
  /** Confirmations the node waits for on this chain. */
  confirmations: number
}

/** A consumer contract the load generator requested from. */
export type ChaosConsumer = {
  chain: string
  address: Address
  /**
   * How it answers callbacks: `recording` keeps each result (and counts callbacks), `reverting`
   * reverts, `guzzler` burns its callback gas, `refusing` refuses refunds in ETH.
   */
  behaviour: 'recording' | 'reverting' | 'guzzler' | 'refusing'
}

/** A request the generator sent that the chain accepted (its InferenceRequested was mined). */
export type ChaosRequest = {
  chain: string
  requestId: bigint
  /** core/types.ts requestKey. */
  key: string
  consumer: Address
  modelId: Hex
  /** The input as sent, at the model's input scale. */
  input: bigint[]
  callbackGasLimit: number
  txHash: Hex
  /** Unix ms when its transaction was mined (for latency). */
  sentAt: number
  /** Whether the generator meant it to expire (a deadline too short to serve): refund expected. */
  expectExpiry?: boolean
}

/** A request the generator expected the chain to refuse, sent as a real transaction. */
export type ChaosInvalid = {
  chain: string
  /** wrong-shape, out-of-range, unpaid, unknown-model, … */
  kind: string
  /** The custom error the chain must revert with. */
  expectedError: string
  /** The mined, reverted transaction (sent with an explicit gas limit so that it is mined). */
  txHash: Hex
}

/** A fault the run injected. */
export type ChaosFault = {
  /** kill-prover, kill-inference, kill-chain-io, restart-temporal, cut-rpc, restart-agents, reorg, stall-operator, … */
  kind: string
  /** What it hit (a process, a chain, an operator). */
  target: string
  /** Unix ms it began and, for faults with a duration, ended. */
  at: number
  until?: number
  /** Details (a reorg's depth, the signal sent, …). */
  details?: Record<string, unknown>
}

/** The whole run, for the checker. */
export type ChaosRecord = {
  seed: number
  startedAt: number
  /** Unix ms the last fault ended (recovery is measured from here). */
  lastFaultAt?: number
  chains: ChaosChain[]
  hub: { market: Address; nodeRegistry: Address }
  /** The node operators' accounts (each one's hub node address). */
  nodes: Address[]
  /** The models requested: id → the model directory (for re-running onnxruntime off-chain). */
  models: Record<Hex, string>
  /** The Arweave gateway (arlocal) the proofs and outputs are stored on. */
  storageUrl: string
  consumers: ChaosConsumer[]
  requests: ChaosRequest[]
  invalid: ChaosInvalid[]
  faults: ChaosFault[]
}

/** A checker's violation: which rule, which request (or account), and what the chains show. */
export type ChaosViolation = {
  rule: string
  /** The request key, or the account/contract the rule is about. */
  subject: string
  message: string
}

/**
 * What the checker found (`checkRun(record)` in checker.ts returns it; the run prints it as one
 * JSON line). `lost`: accepted requests with no terminal outcome; `doubled`: requests settled,
 * called back or paid more than once; `violations`: every broken rule (lost and doubled included).
 */
export type ChaosReport = {
  requests: number
  fulfilled: number
  failed: number
  refunded: number
  invalidRefused: number
  lost: number
  doubled: number
  violations: number
  firstViolation?: ChaosViolation
  /** Every violation, in the order found (capped by the checker). */
  all: ChaosViolation[]
}
