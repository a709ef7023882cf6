/**
 * The relayer's own MessageIdMultisigIsm metadata (`buildMessageIdMultisigMetadata`: which
 * signatures, in which order, over which root) agrees with what `@hyperlane-xyz/sdk`'s
 * `MultisigMetadataBuilder` builds from the same checkpoints; its checkpoint checks agree with the
 * SDK's signer recovery; and the pieces the agents share: the route filter helper, the checkpoint
 * stores' deletion and subscription, and the poll loop's wake-up.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { bytesToHex, getAddress, keccak256, toHex, type Address, type Hex, type LocalAccount } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, test } from 'vitest'
import { runPollLoop } from '../../plugins/messengers/hyperlane/loop.ts'
import {
  addressToBytes32,
  buildMessageIdMultisigMetadata,
  checkpointProblem,
  formatMessage,
  messageId,
  parseMessage,
  recoverCheckpointSigner,
  signCheckpoint,
  type CheckpointWithId,
  type SignedCheckpoint,
} from '../../plugins/messengers/hyperlane/message.ts'
import { enrolledRoutes } from '../../plugins/messengers/hyperlane/relayer.ts'
import {
  sdkCheckpointSigner,
  sdkDecodeMessageIdMultisigMetadata,
  sdkMessageId,
  sdkMessageIdMultisigMetadata,
  sdkParseMessage,
} from '../../plugins/messengers/hyperlane/sdk-relay.ts'
import { FileCheckpointStore, MemoryCheckpointStore, type CheckpointStore } from '../../plugins/messengers/hyperlane/stores.ts'

const validators = [1, 2, 3, 4].map((i) => privateKeyToAccount(keccak256(toHex(`metadata validator ${i}`)))) as LocalAccount[]
const addresses = validators.map((v) => v.address)
const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => bytesToHex(b))
const checkpoint = fc.record({
  origin: fc.integer({ min: 0, max: 0xffffffff }),
  merkleTreeHook: hex(20).map((h) => getAddress(h)),
  root: hex(32),
  index: fc.integer({ min: 0, max: 0xffffffff }),
  messageId: hex(32),
})

describe('MessageIdMultisigIsm metadata against the SDK', () => {
  test('threshold signatures in validator order, encoded as the SDK encodes them', async () => {
    await fc.assert(
      fc.asyncProperty(
        checkpoint,
        fc.subarray([0, 1, 2, 3], { minLength: 0 }),
        fc.integer({ min: 1, max: 4 }),
        async (c, signing, threshold) => {
          const signed = await Promise.all(validators.map((v, i) => (signing.includes(i) ? signCheckpoint(v, c) : undefined)))
          const built = buildMessageIdMultisigMetadata(addresses, threshold, signed)
          if (signing.length < threshold) {
            expect(built).toEqual({ kind: 'awaiting-signatures', found: signing.length, threshold })
            return
          }
          const used = [...signing].sort((a, b) => a - b).slice(0, threshold)
          expect(built).toMatchObject({ kind: 'ready', root: c.root, signers: used.map((i) => addresses[i]) })
          if (built.kind !== 'ready') return
          const sigs = used.map((i) => signed[i]!.signature)
          expect(built.metadata).toBe(sdkMessageIdMultisigMetadata(c, sigs))
          const decoded = sdkDecodeMessageIdMultisigMetadata(built.metadata)
          expect(decoded).toMatchObject({ merkleTreeHook: addressToBytes32(c.merkleTreeHook), root: c.root, index: c.index })
          expect(decoded.signatures).toHaveLength(threshold)
        },
      ),
      { numRuns: 40 },
    )
  })

  test('signatures over one root: the root most validators signed', async () => {
    const c: CheckpointWithId = {
      origin: 7,
      merkleTreeHook: getAddress(`0x${'11'.repeat(20)}`),
      root: keccak256('0x01'),
      index: 3,
      messageId: keccak256('0x02'),
    }
    const other = { ...c, root: keccak256('0x03') }
    // v0 signed another root (an orphaned tree, say); v1, v2, v3 agree.
    const signed = await Promise.all([signCheckpoint(validators[0]!, other), ...validators.slice(1).map((v) => signCheckpoint(v, c))])
    const two = buildMessageIdMultisigMetadata(addresses, 2, signed)
    expect(two).toMatchObject({ kind: 'ready', root: c.root, signers: [addresses[1], addresses[2]] })
    // Three of four over one root are needed; only v1..v3 count.
    expect(buildMessageIdMultisigMetadata(addresses, 4, signed)).toEqual({ kind: 'awaiting-signatures', found: 3, threshold: 4 })
  })

  test('a checkpoint is usable only for its own message, tree and validator; signers agree with the SDK', async () => {
    await fc.assert(
      fc.asyncProperty(checkpoint, async (c) => {
        const sc = await signCheckpoint(validators[0]!, c)
        expect(sdkCheckpointSigner(sc)).toBe(addresses[0])
        expect(await recoverCheckpointSigner(sc)).toBe(addresses[0])
        const expected = { ...c, validator: addresses[0]! }
        expect(await checkpointProblem(sc, expected)).toBeUndefined()
        expect(await checkpointProblem(sc, { ...expected, messageId: keccak256(c.messageId) })).toMatch(/is for message/)
        expect(await checkpointProblem(sc, { ...expected, index: c.index === 0 ? 1 : c.index - 1 })).toMatch(/is for index/)
        expect(await checkpointProblem(sc, { ...expected, origin: c.origin ^ 1 })).toMatch(/merkle tree hook/)
        expect(await checkpointProblem(sc, { ...expected, validator: addresses[1]! })).toMatch(/signed by/)
        // A checkpoint whose claimed validator did not sign it.
        const forged: SignedCheckpoint = { ...sc, validator: addresses[1]! }
        expect(await checkpointProblem(forged, { ...expected, validator: addresses[1]! })).toMatch(new RegExp(`signed by ${addresses[0]}`))
      }),
      { numRuns: 20 },
    )
  })

  test('message parse and id agree with the SDK', () => {
    const m = {
      version: 3,
      nonce: 9,
      origin: 1,
      sender: addressToBytes32(addresses[0]!),
      destination: 2,
      recipient: addressToBytes32(addresses[1]!),
      body: toHex('hi'),
    }
    const bytes = formatMessage(m)
    expect(sdkMessageId(bytes)).toBe(messageId(bytes))
    expect(sdkParseMessage(bytes)).toEqual(parseMessage(bytes))
  })
})

describe('enrolledRoutes', () => {
  const app = getAddress(`0x${'aa'.repeat(20)}`)
  const peer = addressToBytes32(getAddress(`0x${'bb'.repeat(20)}`))
  const route = (o: Partial<{ origin: number; sender: Hex; recipient: Address }>) => ({
    origin: 1,
    sender: peer,
    destination: 2,
    recipient: app,
    id: keccak256('0x'),
    body: '0x' as Hex,
    ...o,
  })
  const filter = enrolledRoutes({
    recipients: [app.toLowerCase() as Address],
    isEnrolled: async (origin, sender, recipient) => origin === 1 && sender === peer && recipient === app,
  })

  test('relays an enrolled sender to a served recipient', async () => {
    expect(await filter(route({}))).toBe(true)
  })

  test('ignores other recipients, other senders and other origins, saying why', async () => {
    expect(await filter(route({ recipient: getAddress(`0x${'cc'.repeat(20)}`) }))).toMatch(/is not an application this relayer serves/)
    expect(await filter(route({ sender: addressToBytes32(getAddress(`0x${'dd'.repeat(20)}`)) }))).toMatch(/is not an enrolled peer/)
    expect(await filter(route({ origin: 5 }))).toMatch(/on domain 5 is not an enrolled peer/)
  })
})

describe('checkpoint stores', () => {
  const c = (index: number): CheckpointWithId => ({
    origin: 1,
    merkleTreeHook: getAddress(`0x${'11'.repeat(20)}`),
    root: keccak256(toHex(index)),
    index,
    messageId: keccak256(toHex(`m${index}`)),
  })

  async function exercise(store: CheckpointStore) {
    const seen: number[] = []
    const unsubscribe = store.subscribe!((sc) => seen.push(sc.index))
    for (const i of [0, 1, 2, 3]) await store.put(await signCheckpoint(validators[0]!, c(i)))
    expect(seen).toEqual([0, 1, 2, 3])
    expect(await store.latestIndex()).toBe(3)
    await store.deleteFrom!(2)
    expect(await store.latestIndex()).toBe(1)
    expect(await store.get(2)).toBeUndefined()
    expect(await store.get(3)).toBeUndefined()
    expect((await store.get(1))?.index).toBe(1)
    await store.deleteFrom!(5) // nothing there: a no-op
    expect(await store.latestIndex()).toBe(1)
    unsubscribe()
    await store.put(await signCheckpoint(validators[0]!, c(2)))
    expect(seen).toEqual([0, 1, 2, 3])
    expect(await store.latestIndex()).toBe(2)
    await store.deleteFrom!(0)
    expect(await store.latestIndex()).toBeUndefined()
  }

  test('memory: deleteFrom drops the later checkpoints, subscribers hear of each put', async () => {
    await exercise(new MemoryCheckpointStore(addresses[0]!))
  })

  test('file: the same, and the files are gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sertn-hl-store-'))
    try {
      const store = new FileCheckpointStore(dir, addresses[0]!)
      await exercise(store)
      expect((await readdir(store.dir)).filter((f) => f.endsWith('_with_id.json'))).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('poll loop', () => {
  test('wake() polls at once instead of after the interval', async () => {
    const controller = new AbortController()
    const times: number[] = []
    const loop = runPollLoop(
      async () => {
        times.push(performance.now())
      },
      { intervalMs: 10_000, signal: controller.signal, onError: () => {} },
    )
    try {
      for (let i = 0; i < 100 && times.length < 1; i++) await new Promise((r) => setTimeout(r, 5))
      const woken = performance.now()
      loop.wake()
      for (let i = 0; i < 100 && times.length < 2; i++) await new Promise((r) => setTimeout(r, 5))
      expect(times).toHaveLength(2)
      expect(times[1]! - woken).toBeLessThan(1_000)
    } finally {
      controller.abort()
      await loop.done
    }
  })
})
