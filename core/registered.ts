/**
 * A model as a registry records it on one chain, and the check a node makes before it serves a
 * request for it: the on-chain circuit (verifier, VKA, artifacts, bound, scales, visibility, SRS
 * flag) must be the one its manifest describes, verified by the verifier the node trusts.
 */
import type { Address } from 'viem'
import type { ArtifactRefs, ModelRef } from './artifacts.ts'
import { SertnError } from './errors.ts'
import { InsecureSrsError, type ModelManifest, type Visibility } from './manifest.ts'
import type { Hex } from './types.ts'

/** A registered model as read from a chain's registry (and the code at its verifier and VKA). */
export interface RegisteredCircuit {
  readonly modelId: Hex
  readonly name: string
  readonly owner: Address
  readonly version: number
  readonly active: boolean
  /** The registry's verifier (the protocol's, the same for every model on the chain). */
  readonly verifier: Address
  /** keccak256 of the code at `verifier`. */
  readonly verifierCodeHash: Hex
  readonly vka: Address
  /** The VKA code hash the registry pins. */
  readonly vkaCodeHash: Hex
  /** keccak256 of the code at `vka` now. */
  readonly vkaCodeHashOnChain: Hex
  readonly artifacts: ArtifactRefs
  readonly inputShape: readonly number[]
  readonly outputShape: readonly number[]
  readonly inputScale: number
  readonly outputScale: number
  /** Decimal string. */
  readonly maxAbsInput: string
  readonly inputVisibility: Visibility
  readonly outputVisibility: Visibility
  readonly insecureSrs: boolean
  /** The current version's batch circuits: size, VKA and the keccak256 of the code at it now (none read: undefined). */
  readonly batches?: readonly { readonly size: number; readonly vka: Address; readonly vkaCodeHashOnChain: Hex }[]
}

/**
 * The batch sizes a node may batch the model in on this chain: those of the manifest whose
 * registered batch VKA has the code the manifest pins (a batch circuit registered otherwise, or
 * not at all, is not used: its requests go on alone, since the chain would refuse their proofs).
 */
export function servableBatchSizes(c: RegisteredCircuit, manifest: ModelManifest): number[] {
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()
  return (manifest.batches ?? [])
    .filter((b) => c.batches?.some((r) => r.size === b.size && eq(r.vkaCodeHashOnChain, b.vka.codeHash)))
    .map((b) => b.size)
    .sort((a, b) => a - b)
}

/** The model reference a node serves a registration with. */
export function modelRefOf(c: RegisteredCircuit): ModelRef {
  return {
    modelId: c.modelId,
    name: c.name,
    version: c.version,
    artifacts: c.artifacts,
    inputVisibility: c.inputVisibility,
    outputVisibility: c.outputVisibility,
  }
}

/** The on-chain circuit is not the one the node's manifest describes, or not verified by the trusted verifier. */
export class CircuitMismatchError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'CircuitMismatchError'
  constructor(
    readonly model: string,
    readonly field: string,
    onChain: string,
    expected: string,
    where: string,
  ) {
    super(`model ${model} on ${where}: its registered ${field} is ${onChain}, but ${expected} was expected`, {
      details: 'The node refuses to serve a circuit it cannot vouch for; the request is failed with a refund.',
    })
  }
}

export type CheckRegisteredCircuitOptions = {
  /** keccak256 of the runtime code of the verifier the node trusts (the audited reusable verifier). */
  trustedVerifierCodeHash: Hex
  /** Accept a circuit set up with an insecure SRS (local chains and tests only). */
  allowInsecureSrs: boolean
  /** Names the chain in errors, e.g. `chain 31338`. */
  where: string
}

/**
 * Compares the on-chain circuit with the manifest the node serves it with.
 * @throws {CircuitMismatchError} naming the first field that differs
 * @throws {InsecureSrsError} when the circuit's SRS is insecure and that is not allowed
 */
export function checkRegisteredCircuit(c: RegisteredCircuit, manifest: ModelManifest, options: CheckRegisteredCircuitOptions): void {
  const fail = (field: string, onChain: unknown, expected: unknown): never => {
    throw new CircuitMismatchError(c.name, field, String(onChain), String(expected), options.where)
  }
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()
  if (!eq(c.verifierCodeHash, options.trustedVerifierCodeHash))
    fail(
      'verifier',
      `${c.verifier} (code hash ${c.verifierCodeHash})`,
      `the pinned reusable verifier (code hash ${options.trustedVerifierCodeHash})`,
    )
  if (!eq(c.vkaCodeHash, manifest.vka.codeHash)) fail('VKA code hash', c.vkaCodeHash, manifest.vka.codeHash)
  if (!eq(c.vkaCodeHashOnChain, c.vkaCodeHash)) fail(`VKA's code (at ${c.vka})`, c.vkaCodeHashOnChain, c.vkaCodeHash)
  if (BigInt(c.maxAbsInput) !== BigInt(manifest.maxAbsInput)) fail('input bound', c.maxAbsInput, manifest.maxAbsInput)
  if (c.inputScale !== manifest.inputScale) fail('input scale', c.inputScale, manifest.inputScale)
  if (c.outputScale !== manifest.outputScale) fail('output scale', c.outputScale, manifest.outputScale)
  if (c.inputVisibility !== manifest.visibility.input) fail('input visibility', c.inputVisibility, manifest.visibility.input)
  if (c.outputVisibility !== manifest.visibility.output) fail('output visibility', c.outputVisibility, manifest.visibility.output)
  if (c.inputShape.join('×') !== manifest.inputShape.join('×')) fail('input shape', c.inputShape.join('×'), manifest.inputShape.join('×'))
  if (c.outputShape.join('×') !== manifest.outputShape.join('×'))
    fail('output shape', c.outputShape.join('×'), manifest.outputShape.join('×'))
  if (c.insecureSrs !== manifest.srs.insecure) fail('insecure-SRS flag', c.insecureSrs, manifest.srs.insecure)
  if (c.insecureSrs && !options.allowInsecureSrs) throw new InsecureSrsError(c.name, manifest.srs.file)
}
