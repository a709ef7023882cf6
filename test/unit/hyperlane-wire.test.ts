/**
 * Our viem implementations of the Hyperlane wire formats (`message.ts`, used by the local
 * validator, which must not pay for importing the SDK) agree with `@hyperlane-xyz/utils` and
 * `@hyperlane-xyz/sdk`, which the relayer now delivers with: message format, parse and id, the
 * checkpoint domain hash and digest, checkpoint signatures, and MessageIdMultisigIsm metadata.
 */
import { BaseMetadataBuilder, IsmType } from '@hyperlane-xyz/sdk'
import {
  BaseValidator,
  domainHash as utilsDomainHash,
  formatMessage as utilsFormat,
  messageId as utilsMessageId,
  parseMessage as utilsParse,
} from '@hyperlane-xyz/utils'
import fc from 'fast-check'
import { bytesToHex, getAddress, hexToBytes, keccak256, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, test } from 'vitest'
import {
  addressToBytes32,
  checkpointDigest,
  domainHash,
  encodeMessageIdMultisigMetadata,
  formatMessage,
  messageId,
  parseMessage,
  signCheckpoint,
  type HyperlaneMessage,
} from '../../plugins/messengers/hyperlane/message.ts'

const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => bytesToHex(b))
const address = hex(20).map((h) => getAddress(h))
const uint32 = fc.integer({ min: 0, max: 0xffffffff })
const message = fc.record({
  version: fc.integer({ min: 0, max: 255 }),
  nonce: uint32,
  origin: uint32,
  sender: address,
  destination: uint32,
  recipient: address,
  body: fc.uint8Array({ maxLength: 300 }).map((b) => bytesToHex(b)),
})
const checkpoint = fc.record({ origin: uint32, merkleTreeHook: address, root: hex(32), index: uint32, messageId: hex(32) })
const utilsCheckpoint = (c: { origin: number; merkleTreeHook: Address; root: Hex; index: number }) => ({
  root: c.root,
  index: c.index,
  mailbox_domain: c.origin,
  merkle_tree_hook_address: c.merkleTreeHook,
})

describe('hyperlane wire formats agree with @hyperlane-xyz/utils and the SDK', () => {
  test('message format, parse and id', () => {
    fc.assert(
      fc.property(message, (m) => {
        const ours: HyperlaneMessage = { ...m, sender: addressToBytes32(m.sender), recipient: addressToBytes32(m.recipient), body: m.body }
        const bytes = formatMessage(ours)
        expect(utilsFormat(m.version, m.nonce, m.origin, m.sender, m.destination, m.recipient, m.body)).toBe(bytes)
        expect(utilsMessageId(bytes)).toBe(messageId(bytes))
        expect(utilsParse(bytes)).toEqual(parseMessage(bytes))
      }),
      { numRuns: 200 },
    )
  })

  test('checkpoint domain hash and digest', () => {
    fc.assert(
      fc.property(checkpoint, (c) => {
        expect(utilsDomainHash(c.origin, c.merkleTreeHook)).toBe(domainHash(c.origin, c.merkleTreeHook))
        expect(bytesToHex(BaseValidator.messageHash(utilsCheckpoint(c), c.messageId))).toBe(checkpointDigest(c))
      }),
      { numRuns: 200 },
    )
  })

  test('checkpoint signatures recover to the validator, and metadata decodes the same in the SDK', async () => {
    const validators = [1, 2, 3].map((i) => privateKeyToAccount(keccak256(toHex(`wire validator ${i}`))))
    await fc.assert(
      fc.asyncProperty(checkpoint, async (c) => {
        const signed = await Promise.all(validators.map((v) => signCheckpoint(v, c)))
        for (const [i, s] of signed.entries())
          expect(getAddress(BaseValidator.recoverAddressFromCheckpoint(utilsCheckpoint(c), s.signature, c.messageId))).toBe(
            validators[i]!.address,
          )
        const metadata = encodeMessageIdMultisigMetadata(
          c,
          signed.map((s) => s.signature),
        )
        const decoded = BaseMetadataBuilder.decode(metadata, { ism: { type: IsmType.MESSAGE_ID_MULTISIG } } as Parameters<
          typeof BaseMetadataBuilder.decode
        >[1])
        expect(decoded).toMatchObject({
          type: IsmType.MESSAGE_ID_MULTISIG,
          checkpoint: { root: c.root, index: c.index, merkle_tree_hook_address: addressToBytes32(c.merkleTreeHook) },
        })
        const sigs = (decoded as { signatures: { r: string; s: string; v: number }[] }).signatures
        expect(sigs.map((s) => bytesToHex(new Uint8Array([...hexToBytes(s.r as Hex), ...hexToBytes(s.s as Hex), s.v])))).toEqual(
          signed.map((s) => s.signature),
        )
      }),
      { numRuns: 25 },
    )
  })
})
