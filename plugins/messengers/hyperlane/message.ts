/**
 * Hyperlane wire formats, computed off-chain exactly as the v3 contracts do:
 * the message (`Message.sol`), its id, the incremental merkle tree of the MerkleTreeHook
 * (`Merkle.sol`), the checkpoint digest validators sign (`CheckpointLib.sol`) and the
 * MessageIdMultisigIsm metadata (`MessageIdMultisigIsmMetadata.sol`), with the relayer's choice of
 * signatures for it (`buildMessageIdMultisigMetadata`).
 *
 * `@hyperlane-xyz/utils` and `@hyperlane-xyz/sdk` have the same helpers (on ethers v5), but
 * importing them costs ≈0.8 s / ≈4 s and ≈70 / ≈260 MB RSS, which the agents (and anything
 * importing this plugin) should not pay. They stay the reference: `test/unit/hyperlane-wire.test.ts`
 * and `test/unit/hyperlane-metadata.test.ts` check that both agree (through `sdk-relay.ts`).
 */
import {
  concat,
  encodePacked,
  getAddress,
  keccak256,
  pad,
  recoverMessageAddress,
  size,
  sliceHex,
  hexToNumber,
  type Address,
  type Hex,
  type LocalAccount,
} from 'viem'
import { SertnError } from '../../../core/errors.ts'

/** Bytes that are not a well-formed Hyperlane message, address, tree or metadata piece. */
export class HyperlaneWireError extends SertnError {
  override name = 'HyperlaneWireError'
}

/** Hyperlane message version of the v3 Mailbox. */
export const MESSAGE_VERSION = 3
const HEADER_BYTES = 77

export type HyperlaneMessage = {
  version: number
  nonce: number
  origin: number
  sender: Hex // bytes32
  destination: number
  recipient: Hex // bytes32
  body: Hex
}

export const addressToBytes32 = (a: Address): Hex => pad(getAddress(a), { size: 32 }).toLowerCase() as Hex

export function bytes32ToAddress(b: Hex): Address {
  if (size(b) !== 32) throw new HyperlaneWireError(`not 32 bytes: ${b}`)
  if (BigInt(sliceHex(b, 0, 12)) !== 0n) throw new HyperlaneWireError(`not an EVM address: ${b}`)
  return getAddress(sliceHex(b, 12, 32))
}

export function formatMessage(m: HyperlaneMessage): Hex {
  return encodePacked(
    ['uint8', 'uint32', 'uint32', 'bytes32', 'uint32', 'bytes32', 'bytes'],
    [m.version, m.nonce, m.origin, m.sender, m.destination, m.recipient, m.body],
  )
}

export function parseMessage(message: Hex): HyperlaneMessage {
  if (size(message) < HEADER_BYTES) throw new HyperlaneWireError(`hyperlane message shorter than its ${HEADER_BYTES}-byte header`)
  return {
    version: hexToNumber(sliceHex(message, 0, 1)),
    nonce: hexToNumber(sliceHex(message, 1, 5)),
    origin: hexToNumber(sliceHex(message, 5, 9)),
    sender: sliceHex(message, 9, 41),
    destination: hexToNumber(sliceHex(message, 41, 45)),
    recipient: sliceHex(message, 45, 77),
    body: size(message) === HEADER_BYTES ? '0x' : sliceHex(message, 77),
  }
}

/** The message id: keccak256 of the formatted message. */
export const messageId = (message: Hex): Hex => keccak256(message)

const TREE_DEPTH = 32
const ZERO_HASHES: Hex[] = (() => {
  const z: Hex[] = [pad('0x', { size: 32 })]
  for (let i = 1; i < TREE_DEPTH; i++) z.push(keccak256(concat([z[i - 1]!, z[i - 1]!])))
  return z
})()

/** The MerkleTreeHook's incremental merkle tree (eth2 deposit-contract style, depth 32). */
export class IncrementalMerkleTree {
  readonly branch: Hex[]
  count: number

  constructor(state?: { branch: readonly Hex[]; count: number }) {
    this.branch = state ? [...state.branch] : Array<Hex>(TREE_DEPTH).fill(ZERO_HASHES[0]!)
    this.count = state?.count ?? 0
    if (this.branch.length !== TREE_DEPTH) throw new HyperlaneWireError(`merkle branch must have ${TREE_DEPTH} nodes`)
  }

  insert(leaf: Hex): void {
    this.count += 1
    let size = this.count
    let node = leaf
    for (let i = 0; i < TREE_DEPTH; i++) {
      if ((size & 1) === 1) {
        this.branch[i] = node
        return
      }
      node = keccak256(concat([this.branch[i]!, node]))
      size = Math.floor(size / 2)
    }
    throw new HyperlaneWireError('merkle tree full')
  }

  root(): Hex {
    let current = ZERO_HASHES[0]!
    for (let i = 0; i < TREE_DEPTH; i++) {
      const bit = Math.floor(this.count / 2 ** i) % 2
      current = bit === 1 ? keccak256(concat([this.branch[i]!, current])) : keccak256(concat([current, ZERO_HASHES[i]!]))
    }
    return current
  }

  toJSON(): { branch: Hex[]; count: number } {
    return { branch: [...this.branch], count: this.count }
  }
}

/** A checkpoint of the origin merkle tree hook, tied to the message inserted at `index`. */
export type CheckpointWithId = {
  origin: number
  merkleTreeHook: Address
  root: Hex
  index: number
  messageId: Hex
}

export type SignedCheckpoint = CheckpointWithId & { validator: Address; signature: Hex }

export const domainHash = (origin: number, merkleTreeHook: Address): Hex =>
  keccak256(encodePacked(['uint32', 'bytes32', 'string'], [origin, addressToBytes32(merkleTreeHook), 'HYPERLANE']))

/** The digest validators sign with EIP-191 (`CheckpointLib.digest` before `toEthSignedMessageHash`). */
export const checkpointDigest = (c: CheckpointWithId): Hex =>
  keccak256(
    encodePacked(['bytes32', 'bytes32', 'uint32', 'bytes32'], [domainHash(c.origin, c.merkleTreeHook), c.root, c.index, c.messageId]),
  )

export async function signCheckpoint(account: LocalAccount, c: CheckpointWithId): Promise<SignedCheckpoint> {
  const signature = await account.signMessage({ message: { raw: checkpointDigest(c) } })
  return { ...c, merkleTreeHook: getAddress(c.merkleTreeHook), validator: getAddress(account.address), signature }
}

/** The address that signed `sc` (whatever its `validator` field claims). */
export const recoverCheckpointSigner = (sc: SignedCheckpoint): Promise<Address> =>
  recoverMessageAddress({ message: { raw: checkpointDigest(sc) }, signature: sc.signature })

/**
 * Why `sc` cannot serve as validator `validator`'s signature for the message `expected` describes
 * (another message at that index, another tree, or a signature by someone else), or undefined when it can.
 */
export async function checkpointProblem(
  sc: SignedCheckpoint,
  expected: Pick<CheckpointWithId, 'origin' | 'merkleTreeHook' | 'index' | 'messageId'> & { validator: Address },
): Promise<string | undefined> {
  if (sc.index !== expected.index) return `it is for index ${sc.index}`
  if (sc.messageId.toLowerCase() !== expected.messageId.toLowerCase()) return `it is for message ${sc.messageId}`
  if (sc.origin !== expected.origin || getAddress(sc.merkleTreeHook) !== getAddress(expected.merkleTreeHook))
    return `it is for merkle tree hook ${sc.merkleTreeHook} on domain ${sc.origin}`
  let signer: Address
  try {
    signer = await recoverCheckpointSigner(sc)
  } catch {
    return 'its signature does not recover'
  }
  return signer === getAddress(expected.validator) ? undefined : `it is signed by ${signer}`
}

export type MultisigMetadata =
  | { kind: 'ready'; metadata: Hex; root: Hex; signers: Address[] }
  | { kind: 'awaiting-signatures'; found: number; threshold: number }

/**
 * The MessageIdMultisigIsm metadata for one message, from its validators' checkpoints
 * (`checkpoints[i]` is `validators[i]`'s, already checked with {@link checkpointProblem}, or
 * undefined): `threshold` signatures over one root (the root most validators signed), in the
 * validator set's order, as the ISM verifies them. Fewer valid signatures: `awaiting-signatures`.
 */
export function buildMessageIdMultisigMetadata(
  validators: readonly Address[],
  threshold: number,
  checkpoints: readonly (SignedCheckpoint | undefined)[],
): MultisigMetadata {
  if (checkpoints.length !== validators.length)
    throw new HyperlaneWireError(`${checkpoints.length} checkpoint slots for ${validators.length} validators`)
  const votes = new Map<Hex, number>()
  for (const c of checkpoints) if (c) votes.set(c.root, (votes.get(c.root) ?? 0) + 1)
  let root: Hex | undefined
  for (const [r, n] of votes) if (root === undefined || n > votes.get(root)!) root = r
  const chosen = checkpoints.flatMap((c, i) => (c && c.root === root ? [{ c, validator: getAddress(validators[i]!) }] : []))
  if (root === undefined || chosen.length < threshold) return { kind: 'awaiting-signatures', found: chosen.length, threshold }
  const used = chosen.slice(0, threshold)
  return {
    kind: 'ready',
    root,
    signers: used.map((u) => u.validator),
    metadata: encodeMessageIdMultisigMetadata(
      used[0]!.c,
      used.map((u) => u.c.signature),
    ),
  }
}

/**
 * MessageIdMultisigIsm metadata: merkle tree hook (bytes32) ‖ root ‖ uint32 index ‖ signatures
 * (65 bytes each, in the ISM's validator order).
 */
export function encodeMessageIdMultisigMetadata(
  c: Pick<CheckpointWithId, 'merkleTreeHook' | 'root' | 'index'>,
  signatures: readonly Hex[],
): Hex {
  for (const s of signatures) if (size(s) !== 65) throw new HyperlaneWireError(`signature must be 65 bytes, got ${size(s)}`)
  return concat([encodePacked(['bytes32', 'bytes32', 'uint32'], [addressToBytes32(c.merkleTreeHook), c.root, c.index]), ...signatures])
}
