/**
 * `@hyperlane-xyz/sdk` and `@hyperlane-xyz/utils` (20.1.0, ethers v5) as the reference for what
 * the local relayer builds: message parsing and ids, checkpoint digests and their signers, and the
 * MessageIdMultisigIsm metadata the SDK's own `MultisigMetadataBuilder` encodes from checkpoints.
 *
 * The relayer used to deliver through the SDK's `HyperlaneRelayer.relayMessage`, which executes a
 * message twice before sending it (the SDK's estimate, then ethers' own) and reads the ISM and hook
 * configuration through ethers providers on every message: ≈416 ms per hop. It now does the same
 * with viem (`relayer.ts`: one estimate, metadata from `message.ts`), and tests hold its wire
 * formats to the SDK's through this module (`test/unit/hyperlane-metadata.test.ts`,
 * `test/unit/hyperlane-wire.test.ts`). Nothing in the agents imports it: loading the SDK costs
 * ≈4 s and ≈260 MB RSS on Node 20 (and prints "bigint: Failed to load bindings, pure JS will be
 * used" once, because install scripts are off; the pure-JS fallback is fine).
 *
 * The SDK does not export `MultisigMetadataBuilder` from its entry point (and its `exports` map
 * allows no deep import), so the class is taken from a `BaseMetadataBuilder` instance's
 * `multisigMetadataBuilder`; only its static encoder and decoder are used, which need no core.
 */
import { BaseMetadataBuilder, IsmType } from '@hyperlane-xyz/sdk'
import { BaseValidator, addressToBytes32, messageId, parseMessage, type ParsedMessage } from '@hyperlane-xyz/utils'
import { getAddress, type Address, type Hex } from 'viem'
import { HyperlaneAgentError } from './loop.ts'
import type { CheckpointWithId, SignedCheckpoint } from './message.ts'

type SdkSignature = string | { r: string; s: string; v: number }
type MultisigMetadataBuilderClass = {
  encode(metadata: {
    type: typeof IsmType.MESSAGE_ID_MULTISIG
    checkpoint: { root: string; index: number; merkle_tree_hook_address: string }
    signatures: SdkSignature[]
  }): string
  decode(
    metadata: string,
    type: typeof IsmType.MESSAGE_ID_MULTISIG,
  ): { checkpoint: { root: string; index: number; merkle_tree_hook_address: string }; signatures: SdkSignature[] }
}

let builderClass: MultisigMetadataBuilderClass | undefined

/** The SDK's `MultisigMetadataBuilder` class (its statics need no core; the instance made here is discarded). */
function multisigBuilder(): MultisigMetadataBuilderClass {
  if (builderClass) return builderClass
  const instance = new BaseMetadataBuilder({ multiProvider: {} } as ConstructorParameters<typeof BaseMetadataBuilder>[0])
  const cls = instance.multisigMetadataBuilder.constructor as unknown as Partial<MultisigMetadataBuilderClass>
  if (typeof cls.encode !== 'function' || typeof cls.decode !== 'function')
    throw new HyperlaneAgentError('@hyperlane-xyz/sdk: MultisigMetadataBuilder.encode/decode not found (SDK changed?)')
  builderClass = cls as MultisigMetadataBuilderClass
  return builderClass
}

/** The SDK's parse of a message. */
export const sdkParseMessage = (message: Hex): ParsedMessage => parseMessage(message)

/** The SDK's message id. */
export const sdkMessageId = (message: Hex): Hex => messageId(message) as Hex

/** Who signed a checkpoint, by the SDK's digest and recovery (`BaseValidator.recoverAddressFromCheckpointWithId`). */
export function sdkCheckpointSigner(sc: SignedCheckpoint): Address {
  const value = {
    checkpoint: {
      root: sc.root,
      index: sc.index,
      mailbox_domain: sc.origin,
      merkle_tree_hook_address: addressToBytes32(sc.merkleTreeHook),
    },
    message_id: sc.messageId,
  }
  return getAddress(BaseValidator.recoverAddressFromCheckpointWithId(value, sc.signature))
}

/** The MessageIdMultisigIsm metadata the SDK's `MultisigMetadataBuilder` encodes for a checkpoint and signatures. */
export function sdkMessageIdMultisigMetadata(
  c: Pick<CheckpointWithId, 'merkleTreeHook' | 'root' | 'index'>,
  signatures: readonly Hex[],
): Hex {
  return multisigBuilder()
    .encode({
      type: IsmType.MESSAGE_ID_MULTISIG,
      checkpoint: { root: c.root, index: c.index, merkle_tree_hook_address: addressToBytes32(c.merkleTreeHook) },
      signatures: [...signatures],
    })
    .toLowerCase() as Hex
}

/** The SDK's decoding of MessageIdMultisigIsm metadata. */
export function sdkDecodeMessageIdMultisigMetadata(metadata: Hex): {
  merkleTreeHook: Hex
  root: Hex
  index: number
  signatures: SdkSignature[]
} {
  const d = multisigBuilder().decode(metadata, IsmType.MESSAGE_ID_MULTISIG)
  return {
    merkleTreeHook: d.checkpoint.merkle_tree_hook_address.toLowerCase() as Hex,
    root: d.checkpoint.root.toLowerCase() as Hex,
    index: d.checkpoint.index,
    signatures: d.signatures,
  }
}
