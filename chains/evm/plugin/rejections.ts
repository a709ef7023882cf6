/**
 * What each custom error of the Sertn contracts means for the node: one table, keyed by the error
 * names of the contracts' generated ABIs (the gateways, the hub market, the model and node registries
 * and the messaging ports; a library's or a base contract's errors come with the contracts that use them).
 * Each entry gives the error class the node throws, whether retrying the same call may pass, and
 * the code a request that cannot be served because of it is failed with (none: the rejection says
 * nothing about the request, e.g. a requester's or an owner's mistake; the workflow then decides by
 * the stage that failed). The key set is type-checked against the ABIs: an error added to a contract
 * fails the typecheck until it has an entry here.
 *
 * The chain and market plugins classify every revert through {@link rejectionFor} and
 * {@link rejectionOf}; the thrown error carries the code (`SertnError.errorCode`), and the activities pass
 * it to the workflow in the failure's details.
 *
 * @example
 * const revert = revertOrThrow('fulfill req:…', err) // { errorName: 'ResultInvalidProof', args: [7n] }
 * rejectionFor(revert.errorName) // { error: InvalidProofError, retryable: false, code: 'ProvingFailed' }
 * throw rejectionOf('fulfill req:…', revert, err) // InvalidProofError, code 'ProvingFailed', not retryable
 *
 * A requester's mistakes (an unknown model, too little paid, too much callback gas, an input that
 * does not fit) also carry a `hint`: what the requester should change, for the client
 * (`@sertn/client`) to say. The node's verdicts do not depend on it.
 *
 * @example
 * requesterHintOf({ errorName: 'GatewayCallbackGasLimitTooHigh', args: [5_000_000n, 2_500_000n] })
 * // 'callbackGasLimit 5,000,000 is above this gateway's cap 2,500,000: lower it'
 */
import { BaseError, ContractFunctionRevertedError, decodeErrorResult, type Abi } from 'viem'
import {
  CopyDelivery,
  HyperlanePort,
  InferenceGateway,
  InferenceMarket,
  LayerZeroPort,
  ModelRegistry,
  NodeRegistry,
  SpokeGateway,
} from '../../../contracts/artifacts/index.ts'
import type { SertnError, SertnErrorOptions } from '../../../core/errors.ts'
import type { InferenceErrorCode } from '../../../core/types.ts'
import {
  GatewayRejectedError,
  InvalidProofError,
  InvalidResultError,
  isRevert,
  ModelNotDeployedError,
  ModelVersionChangedError,
  NotAssignedError,
  RequestExpiredError,
  RequestSettledError,
  transient,
  TransientRevertError,
  UnauthorizedNodeError,
  type DecodedRevert,
} from './errors.ts'

/** The contracts whose errors the node may meet, directly or bubbled up from a nested call. */
const CONTRACTS = [
  InferenceGateway,
  SpokeGateway,
  CopyDelivery,
  InferenceMarket,
  ModelRegistry,
  NodeRegistry,
  HyperlanePort,
  LayerZeroPort,
] as const

/** The custom error names in an ABI. */
export type ErrorNameOf<abi extends readonly unknown[]> = Extract<abi[number], { type: 'error'; name: string }>['name']

/** Every custom error of the Sertn contracts, by name. */
export type ContractErrorName = ErrorNameOf<(typeof CONTRACTS)[number]['abi']>

/** The error class of a rejection: built from the call (`what`) and the decoded revert. */
export type RejectionClass = new (what: string, revert: DecodedRevert, options?: SertnErrorOptions) => SertnError

/** What a contract's custom error means for the node. */
export type Rejection = {
  /** The error thrown for it. */
  readonly error: RejectionClass
  /** Whether the same call may pass if tried again (the error class's own verdict). */
  readonly retryable: boolean
  /** The code a request that cannot be served because of it is failed with; undefined: none of its own. */
  readonly code: InferenceErrorCode | undefined
  /** For a requester's mistake: what to change, from the error's arguments (see {@link requesterHintOf}). */
  readonly hint?: (args: readonly unknown[]) => string
}

/** Refused for good, and nothing to say about the request (an owner's or a requester's mistake, a misconfiguration). */
const REFUSED: Rejection = { error: GatewayRejectedError, retryable: false, code: undefined }
/** Refused now; a later try (new gas, a new fee quote) may pass. */
const TRY_AGAIN: Rejection = { error: TransientRevertError, retryable: true, code: undefined }

/** 1234567n → `1,234,567`. */
const n = (v: unknown): string => (typeof v === 'bigint' || typeof v === 'number' ? v.toLocaleString('en-US') : String(v))

/** A requester's mistake: refused for good, with what to change. */
const requester = (hint: (args: readonly unknown[]) => string): Rejection => ({ ...REFUSED, hint })

/** The table: every custom error of {@link CONTRACTS}, by name. */
export const CONTRACT_REJECTIONS = {
  // ── A node's result, rejected (IResultErrors: the gateways' and the market's alike) ──
  ResultInvalidProof: { error: InvalidProofError, retryable: false, code: 'ProvingFailed' },
  ResultInputMismatch: { error: InvalidResultError, retryable: false, code: 'ProvingFailed' },
  ResultOutputShapeMismatch: { error: InvalidResultError, retryable: false, code: 'ProvingFailed' },
  /** The node truncates its reasons to the contracts' limit: a longer one is a bug, not the request's fault. */
  ResultReasonTooLong: REFUSED,
  /** An output (or input) value the circuit's field cannot hold: the result is not a valid one. */
  FieldEncodingOutOfRange: { error: InvalidResultError, retryable: false, code: 'ProvingFailed' },

  // ── Gateways (InferenceGateway, SpokeGateway) ──
  GatewayRequestNotPending: { error: RequestSettledError, retryable: false, code: undefined },
  GatewayRequestExpired: { error: RequestExpiredError, retryable: false, code: 'Timeout' },
  GatewayModelVersionChanged: { error: ModelVersionChangedError, retryable: false, code: 'ModelUnavailable' },
  GatewayUnauthorizedNode: { error: UnauthorizedNodeError, retryable: false, code: undefined },
  /** The node sends the callback's gas with room to spare; an estimate that fell short is retried. */
  GatewayInsufficientGasForCallback: TRY_AGAIN,
  GatewayReentrantCall: REFUSED,
  // Requesters', refunders' and the owner's errors: never a node's request to fail.
  GatewayCallbackGasLimitTooHigh: requester(
    ([requested, max]) => `callbackGasLimit ${n(requested)} is above this gateway's cap ${n(max)}: lower it`,
  ),
  GatewayInputOutOfRange: requester(
    ([index, value, maxAbs]) =>
      `input[${n(index)}] = ${n(value)} is outside the model's range ±${n(maxAbs)} (at its input scale): bring it within the range`,
  ),
  GatewayInputShapeMismatch: requester(
    ([expected, actual]) =>
      `the input has ${n(actual)} elements but the model takes ${n(expected)}: send its input shape's number of elements`,
  ),
  GatewayInputTooLarge: requester(
    ([length, max]) => `the input has ${n(length)} elements, more than any model takes (${n(max)}): check the model's input shape`,
  ),
  GatewayInsufficientPayment: requester(
    ([required, paid]) => `pay at least ${n(required)} wei (quote(modelId, callbackGasLimit)); ${n(paid)} wei was sent`,
  ),
  GatewayInvalidConfig: REFUSED,
  GatewayInvalidInputCommitment: requester(
    ([c]) =>
      `the input commitment ${n(c)} is not a field element in the signed encoding: pass the Poseidon hash h, or h − R above (R − 1) / 2`,
  ),
  GatewayMissingInputRef: requester(() => 'the model hashes its input: say where the input is stored (inputRef)'),
  GatewayModelArtifactsMismatch: requester(
    ([pinned, current]) =>
      `the request pins artifacts ${pinned} but the model's are now ${current}: pin the current ones (getModel) or none`,
  ),
  GatewayModelInactive: requester(([id]) => `model ${id} does not take requests now (its owner deactivated it): choose another model`),
  GatewayModelVersionMismatch: requester(
    ([pinned, current]) =>
      `the request pins model version ${n(pinned)} but the model is at version ${n(current)}: pin ${n(current)}, or 0 for the current one`,
  ),
  GatewayNothingToWithdraw: requester(([account]) => `nothing is owed to ${account}: there is nothing to withdraw`),
  GatewayRequestNotExpired: requester(
    ([id, deadline]) => `request ${n(id)} can be refunded only after its deadline (unix ${n(deadline)}): wait`,
  ),
  GatewayUnknownModel: requester(([id]) => `model ${id} is not registered on this chain's registry: check the model id (getModel)`),
  /** A requester's choice (fail rather than wait for capacity), never a node's call. */
  GatewayNoCapacity: requester(
    ([id]) =>
      `no node of model ${id}'s pool has capacity left this epoch: try again later, or let the request wait (failIfNoCapacity false)`,
  ),
  GatewayWithdrawFailed: REFUSED,
  // A batch the node built wrong (rows, models, a size the model has no circuit for): its own bug,
  // which the batch workflow checks for before it proves; never the requests' fault.
  GatewayBatchShapeMismatch: REFUSED,
  GatewayBatchMixesModels: REFUSED,
  GatewayNoBatchCircuit: REFUSED,
  // A release of a batch's rebates and reserves that names other ids, or comes twice.
  GatewayNoBatchClaim: REFUSED,
  // SpokeGateway: its results and failures come from the hub, never from a node's own call.
  SpokeHubNotSet: requester(() => 'this spoke gateway is not connected to a hub yet: it takes no requests'),
  SpokeLocalFailDisabled: REFUSED,
  SpokeLocalFulfillDisabled: REFUSED,
  SpokeNoPendingReceipt: REFUSED,
  SpokeUnexpectedPayment: REFUSED,
  // Fan-out: a requester's destinations, a copy that reached its chain before, delivery code called directly.
  GatewayInvalidDestination: requester(
    ([i]) => `fan-out destination ${n(i)} is not one the gateway can deliver to: check its domain and receiver`,
  ),
  CopyAlreadyDelivered: REFUSED,
  CopyDeliveryNotDelegated: REFUSED,
  // A batch message's packed rows (the hub market packs them; never a node's call).
  PackedIntsMalformed: REFUSED,

  // ── The hub's InferenceMarket ──
  MarketRequestNotOpen: { error: RequestSettledError, retryable: false, code: undefined },
  MarketRequestExpired: { error: RequestExpiredError, retryable: false, code: 'Timeout' },
  MarketUnknownModel: { error: ModelNotDeployedError, retryable: false, code: 'ModelUnavailable' },
  MarketModelNotDeployed: { error: ModelNotDeployedError, retryable: false, code: 'ModelUnavailable' },
  /** The spoke's model changed since the request (or the hub recorded another version there): the spoke would reject the result. */
  MarketModelVersionMismatch: { error: ModelVersionChangedError, retryable: false, code: 'ModelUnavailable' },
  MarketReentrantCall: REFUSED,
  // A batch the node put together wrongly, or one its model cannot take there: its rows go on alone.
  MarketBatchShapeMismatch: REFUSED,
  MarketBatchMixesRequests: REFUSED,
  MarketNoBatchCircuit: REFUSED,
  MarketBatchTooMuchGas: REFUSED,
  // A fan-out request is answered alone: a node that batches one has a bug.
  MarketBatchFansOut: REFUSED,
  MarketRefundFailed: REFUSED,
  // Deliveries from spokes, never a node's call.
  MarketDuplicateRequest: REFUSED,
  MarketInvalidReceipt: REFUSED,
  MarketUnknownSpokeRequest: REFUSED,

  // ── Messaging (MessengerApp and SertnMessages in the spoke and the market; the ports) ──
  /** The fee was quoted before it rose: a new quote pays it. */
  MessengerInsufficientFee: TRY_AGAIN,
  MessengerInvalidRoute: REFUSED,
  MessengerNoRoute: REFUSED,
  MessengerUnauthorizedCaller: REFUSED,
  MessengerUnknownRoute: REFUSED,
  SertnMessagesUnknownKind: REFUSED,
  PortInsufficientFee: TRY_AGAIN,
  PortMalformedEnvelope: REFUSED,
  /** The app refused a send's surplus (a contract that takes no ether): send the quote exactly. */
  PortRefundFailed: REFUSED,
  PortUnauthorizedApp: REFUSED,
  PortUnauthorizedCaller: REFUSED,
  PortUnknownDomain: REFUSED,
  PortUnknownPeer: REFUSED,
  // LayerZeroPort and the LayerZero OApp and OpenZeppelin code it inherits.
  LayerZeroPortGasLimitTooHigh: REFUSED,
  LayerZeroPortInvalidPeer: REFUSED,
  LayerZeroPortUnmappedEid: REFUSED,
  /** The native fee paid is not the quote (it changed meanwhile): a new quote pays it. */
  NotEnoughNative: TRY_AGAIN,
  InvalidDelegate: REFUSED,
  InvalidEndpointCall: REFUSED,
  InvalidOptionType: REFUSED,
  LzTokenUnavailable: REFUSED,
  NoPeer: REFUSED,
  OnlyEndpoint: REFUSED,
  OnlyPeer: REFUSED,
  OwnableInvalidOwner: REFUSED,
  OwnableUnauthorizedAccount: REFUSED,
  SafeCastOverflowedUintDowncast: REFUSED,

  // ── ModelRegistry (read by the gateways and the market) ──
  ModelRegistryUnknownModel: {
    error: ModelNotDeployedError,
    retryable: false,
    code: 'ModelUnavailable',
    hint: ([id]) => `model ${id} is not registered on this chain's registry: check the model id (getModel)`,
  },
  ModelRegistryInsecureSrs: REFUSED,
  /** The model's compute units × the pool's unit price does not fit a fee: the model cannot be requested. */
  ModelRegistryFeeOverflow: { error: ModelNotDeployedError, retryable: false, code: 'ModelUnavailable' },
  ModelRegistryZeroComputeUnits: REFUSED,
  ModelRegistryInvalidBacktests: REFUSED,
  ModelRegistryInvalidChainDeployment: REFUSED,
  ModelRegistryInvalidInputBound: REFUSED,
  ModelRegistryInvalidName: REFUSED,
  ModelRegistryInvalidShape: REFUSED,
  ModelRegistryInvalidBatch: REFUSED,
  ModelRegistryMissingArtifacts: REFUSED,
  ModelRegistryModelExists: REFUSED,
  ModelRegistryNoChainVerifier: REFUSED,
  ModelRegistryNotAContract: REFUSED,
  ModelRegistryNotModelOwner: REFUSED,
  ModelRegistryVkaCodeHashMismatch: REFUSED,
  ModelRegistryWithdrawFailed: REFUSED,
  ModelRegistryWrongRegistrationFee: REFUSED,
  ModelRegistryZeroOwner: REFUSED,
  ModelRegistryZeroRegistrationFee: REFUSED,

  // ── NodeRegistry (the hub's gateway and market open and close each request's job in it) ──
  /** Another node holds the job (or none: queued, closed, lapsed): this node's answer is not taken. */
  NodeRegistryNotAssigned: { error: NotAssignedError, retryable: false, code: undefined },
  /** No node of the pool has the capacity left now: a later epoch (or a new node) may have it. */
  NodeRegistryNoCapacity: TRY_AGAIN,
  /** The assigned node's window is still open: a reassignment may pass once it has closed. */
  NodeRegistryWindowOpen: TRY_AGAIN,
  /** The job is not assigned (queued, closed, lapsed): nothing to reassign. */
  NodeRegistryJobNotReassignable: REFUSED,
  // A market that is not allowed, or a request id opened twice: a misconfigured deployment.
  NodeRegistryNotMarket: REFUSED,
  NodeRegistryJobExists: REFUSED,
  // Operators' and the owner's errors (staking, registering, leaving, withdrawing, parameters).
  NodeRegistryAlreadyRegistered: REFUSED,
  NodeRegistryInvalidParameter: REFUSED,
  NodeRegistryNotRegistered: REFUSED,
  NodeRegistryNothingToWithdraw: REFUSED,
  NodeRegistryPoolFull: REFUSED,
  NodeRegistryStakeBelowMinimum: REFUSED,
  NodeRegistryStillRegistered: REFUSED,
  NodeRegistryTransferFailed: REFUSED,
  NodeRegistryUnbonding: REFUSED,
  NodeRegistryUnknownModel: REFUSED,
  NodeRegistryZeroCapacity: REFUSED,

  // ── Owned (every Sertn contract) ──
  OwnedUnauthorized: REFUSED,
  OwnedZeroOwner: REFUSED,
} satisfies Record<ContractErrorName, Rejection>

/**
 * What the custom error `errorName` means; a name outside the table (a reason string `Error`, a
 * `Panic`, another contract's error) is refused for good, with no code.
 */
export function rejectionFor(errorName: string): Rejection {
  return Object.hasOwn(CONTRACT_REJECTIONS, errorName) ? CONTRACT_REJECTIONS[errorName as ContractErrorName] : REFUSED
}

/** What a requester should change for `revert`: its table entry's hint, or undefined for an error that is not a requester's mistake. */
export function requesterHintOf(revert: DecodedRevert): string | undefined {
  return rejectionFor(revert.errorName).hint?.(revert.args)
}

/** The error to throw for a contract's rejection `revert` of the call `what`, with its table entry's class and code. */
export function rejectionOf(what: string, revert: DecodedRevert, cause: unknown): SertnError {
  const { error, code } = rejectionFor(revert.errorName)
  return new error(what, revert, code ? { cause, errorCode: code } : { cause })
}

type AbiError = Extract<Abi[number], { type: 'error' }>

/** Every custom error of {@link CONTRACTS}, once: decodes a revert bubbled up from a nested call (the market's port, the registry). */
export const CONTRACT_ERRORS_ABI: readonly AbiError[] = [
  ...new Map(
    CONTRACTS.flatMap((c) => (c.abi as Abi).filter((x): x is AbiError => x.type === 'error')).map((e) => [
      `${e.name}(${e.inputs.map((i) => i.type).join(',')})`,
      e,
    ]),
  ).values(),
]

/**
 * The custom error a failed contract call reverted with, if it was a revert with decodable data:
 * decoded with the called contract's ABI, or else with every Sertn contract's errors.
 */
export function decodedRevertOf(err: unknown): DecodedRevert | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
  if (!(reverted instanceof ContractFunctionRevertedError)) return undefined
  if (reverted.data) return { errorName: reverted.data.errorName, args: reverted.data.args ?? [] }
  if (!reverted.raw || reverted.raw === '0x') return undefined
  try {
    const decoded = decodeErrorResult({ abi: CONTRACT_ERRORS_ABI, data: reverted.raw })
    return { errorName: decoded.errorName, args: decoded.args ?? [] }
  } catch {
    return undefined
  }
}

/**
 * The custom error a failed call reverted with; throws when there is none: a non-retryable error
 * for an undecodable revert (a panic, a reason string), a retryable one for anything else.
 */
export function revertOrThrow(what: string, err: unknown): DecodedRevert {
  const revert = decodedRevertOf(err)
  if (revert) return revert
  if (isRevert(err)) throw new GatewayRejectedError(what, { errorName: 'an undecodable revert', args: [] }, { cause: err })
  throw transient(what, err)
}
