/**
 * Verified backtests: proven input/output pairs a model's creator publishes, and anyone re-checks
 * against the registered circuit (the paper's "model vetting").
 *
 * Publishing proves each sample with a prover, stores one document with every pair (the input, the
 * output, the proof file) in storage, and records its storage id, sha256 and size with
 * `ModelRegistry.publishBacktests` on each chain. Verifying reads that record, fetches the document
 * (checked against the recorded sha256) and the model's artifacts (checked against the registry),
 * then for every pair: the proof's public instances must be the pair's input and output (or their
 * Poseidon commitments), the proof must verify off-chain against the registered verifying key, and
 * on-chain with the registry's verifier and the model's VKA, exactly as a gateway checks a result.
 */
import { createHash } from 'node:crypto'
import type { Address } from 'viem'
import { ModelRegistry } from '../../contracts/artifacts/index.ts'
import type { ModelRef } from '../../core/artifacts.ts'
import { poseidonOf } from '../../core/commitment.ts'
import { SertnError } from '../../core/errors.ts'
import { toFelt } from '../../core/field.ts'
import type { ModelArtifacts } from '../../core/manifest.ts'
import type { ModelStore } from '../../core/models.ts'
import type { ProverPlugin, StoragePlugin } from '../../core/plugins.ts'
import { modelRefOf } from '../../core/registered.ts'
import { base64UrlIdOf, storageRefOf } from '../../core/storage-ref.ts'
import type { Hex } from '../../core/types.ts'
import { decodeProof } from '../../plugins/provers/ezkl-common/formats.ts'
import type { SertnClient } from './clients.ts'
import { confirm } from './deploy.ts'
import { readRegisteredCircuit, type RegistryReader } from './plugin/registry.ts'

/** The stored document: every proven pair of one model version. */
export type BacktestDocument = {
  schema: 1
  model: string
  modelId: Hex
  version: number
  /** The artifacts hash the pairs were proven against. */
  artifactsHash: Hex
  pairs: { input: string[]; output: string[]; proof: unknown }[]
}

/** The most bytes a backtest document may have. */
export const MAX_BACKTEST_BYTES = 64 << 20

/** A backtest check failed to run (no record, a document that is not one, a hash that differs). */
export class BacktestError extends SertnError {
  override name = 'BacktestError'
}

export type PublishBacktestsParameters = {
  model: ModelArtifacts
  /** Quantised inputs to prove. */
  inputs: readonly (readonly bigint[])[]
  prover: ProverPlugin
  storage: StoragePlugin
  /** The creator's client and each chain's registry the record goes to (the model must be registered there). */
  chains: readonly { name: string; client: SertnClient; registry: Address }[]
  modelId: Hex
  onProgress?: (done: number, total: number) => void
}

export async function publishBacktests(p: PublishBacktestsParameters): Promise<{ ref: Hex; id: string; sha256: Hex; pairs: number }> {
  const first = p.chains[0]
  if (!first) throw new BacktestError('publish backtests to at least one chain')
  const registered = await readRegisteredCircuit(first.client, first.registry, p.modelId, first.name)
  if (!registered) throw new BacktestError(`model ${p.modelId} is not registered on ${first.name}`)
  const pairs: BacktestDocument['pairs'] = []
  for (const [i, input] of p.inputs.entries()) {
    p.onProgress?.(i, p.inputs.length)
    const proof = await p.prover.proveInference(p.model, input)
    pairs.push({
      input: input.map(String),
      output: proof.output.map(String),
      proof: JSON.parse(new TextDecoder().decode(proof.proofJson)) as unknown,
    })
  }
  p.onProgress?.(p.inputs.length, p.inputs.length)
  const doc: BacktestDocument = {
    schema: 1,
    model: registered.name,
    modelId: p.modelId,
    version: registered.version,
    artifactsHash: registered.artifacts.manifestHash,
    pairs,
  }
  const bytes = new TextEncoder().encode(JSON.stringify(doc))
  const stored = await p.storage.put(bytes, {
    contentType: 'application/json',
    tags: { 'Sertn-Backtests': p.modelId, 'Sertn-Model-Artifacts': registered.artifacts.manifestHash },
  })
  const ref = storageRefOf(stored)
  const sha256: Hex = `0x${stored.sha256}`
  for (const c of p.chains) {
    await confirm(
      c.client,
      await c.client.writeContract({
        address: c.registry,
        abi: ModelRegistry.abi,
        functionName: 'publishBacktests',
        args: [p.modelId, ref, sha256, pairs.length],
      }),
    )
  }
  return { ref, id: stored.id, sha256, pairs: pairs.length }
}

export type PairVerdict = {
  index: number
  /** The instances are the pair's input and output (or their commitments). */
  bound: boolean
  /** The proof verifies off-chain against the registered vk. */
  offChain: boolean
  /** The registry's verifier accepts it with the model's VKA. */
  onChain: boolean
  reason?: string
}

export type BacktestReport = {
  model: string
  modelId: Hex
  version: number
  /** The version the pairs were proven against (stale when below `version`). */
  provenVersion: number
  ref: string
  pairs: PairVerdict[]
  valid: number
}

export type VerifyBacktestsParameters = {
  client: RegistryReader
  registry: Address
  modelId: Hex
  storage: StoragePlugin
  /** Loads the registered artifacts (checked against the registry). */
  models: ModelStore
  /** Verifies proofs off-chain (the WASM engine is enough). */
  prover: ProverPlugin
  where?: string
}

/** The reusable verifier's entry, declared `view` so that it is read with an eth_call (it changes nothing). */
const VERIFIER_ABI = [
  {
    type: 'function',
    name: 'verifyProof',
    stateMutability: 'view',
    inputs: [
      { name: 'vk', type: 'address' },
      { name: 'proof', type: 'bytes' },
      { name: 'instances', type: 'uint256[]' },
    ],
    outputs: [{ name: '', type: 'bool' }],
  },
] as const

export async function verifyBacktests(p: VerifyBacktestsParameters): Promise<BacktestReport> {
  const where = p.where ?? 'the registry'
  const registered = await readRegisteredCircuit(p.client, p.registry, p.modelId, where)
  if (!registered) throw new BacktestError(`model ${p.modelId} is not registered on ${where}`)
  const record = await p.client.readContract({
    address: p.registry,
    abi: ModelRegistry.abi,
    functionName: 'getBacktests',
    args: [p.modelId],
  })
  if (record.pairs === 0) throw new BacktestError(`model ${registered.name} has published no backtests on ${where}`)
  if (!p.storage.getById) throw new BacktestError(`storage ${p.storage.name} cannot read a document by id`)
  const id = base64UrlIdOf(record.ref)
  const bytes = await p.storage.getById(id, { maxBytes: MAX_BACKTEST_BYTES })
  if (`0x${sha256Of(bytes)}` !== record.contentHash.toLowerCase())
    throw new BacktestError(
      `model ${registered.name}: the backtest document ${id} has sha256 0x${sha256Of(bytes)}, the registry records ${record.contentHash}`,
    )
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as BacktestDocument
  if (doc.schema !== 1 || !Array.isArray(doc.pairs) || doc.pairs.length !== record.pairs)
    throw new BacktestError(`model ${registered.name}: ${id} is not a backtest document of ${record.pairs} pairs`)
  if (doc.modelId?.toLowerCase() !== p.modelId.toLowerCase())
    throw new BacktestError(`model ${registered.name}: the backtest document ${id} is about model ${doc.modelId}`)
  const ref: ModelRef = modelRefOf(registered)
  const model = await p.models.get(ref)
  const pairs: PairVerdict[] = []
  for (const [index, pair] of doc.pairs.entries()) {
    const verdict: PairVerdict = { index, bound: false, offChain: false, onChain: false }
    try {
      const proofJson = new TextEncoder().encode(JSON.stringify(pair.proof))
      const { proof, instances } = decodeProof(proofJson, 'backtest')
      const input = pair.input.map(BigInt)
      const output = pair.output.map(BigInt)
      const expected = [
        ...(registered.inputVisibility === 'hashed' ? [poseidonOf(input)] : input.map(toFelt)),
        ...(registered.outputVisibility === 'hashed' ? [poseidonOf(output)] : output.map(toFelt)),
      ]
      verdict.bound = expected.length === instances.length && expected.every((v, i) => v === instances[i])
      verdict.offChain = (await p.prover.verify(model, proofJson)).ok
      try {
        verdict.onChain = await p.client.readContract({
          address: registered.verifier,
          abi: VERIFIER_ABI,
          functionName: 'verifyProof',
          args: [registered.vka, proof, instances],
        })
      } catch {
        verdict.onChain = false // the verifier reverts on a proof it rejects
      }
      if (!verdict.bound) verdict.reason = "the proof's instances are not the pair's input and output"
    } catch (e) {
      verdict.reason = e instanceof Error ? e.message : String(e)
    }
    pairs.push(verdict)
  }
  return {
    model: registered.name,
    modelId: p.modelId,
    version: registered.version,
    provenVersion: record.version,
    ref: id,
    pairs,
    valid: pairs.filter((v) => v.bound && v.offChain && v.onChain).length,
  }
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}
