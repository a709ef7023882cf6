/**
 * Two ways the local LayerZero agents could lose a packet, each closed here, with stand-ins for the
 * chain (unit tests of one module; the agents run against real endpoints in
 * test/integration/layerzero-messaging.test.ts):
 * - the scan (plugins/messengers/layerzero/agent.ts) over an origin whose `eth_getLogs` leaves out
 *   a packet (a node answering for its newest block before it has indexed that block's logs): the
 *   path's nonces show the gap, and the scan reads again;
 * - the send (send.ts): another sender of the agents' account took the nonce, and viem's receipt
 *   wait resolved with that replacement's receipt, which the executor read as its delivery.
 */
import { encodePacked, keccak256, pad, toHex, type Hex } from 'viem'
import { describe, expect, test } from 'vitest'
import { createPacketAgent, type AgentOrigin } from '../../plugins/messengers/layerzero/agent.ts'
import { TransactionReplacedError } from '../../plugins/messengers/layerzero/errors.ts'
import { sendAndWait } from '../../plugins/messengers/layerzero/send.ts'
import { MemoryPacketCursorStore } from '../../plugins/messengers/layerzero/stores.ts'

const SRC = 40_101
const DST = 40_102
const SENDER = pad('0x00000000000000000000000000000000000000a1')
const RECEIVER = '0x00000000000000000000000000000000000000B2'

/** An encoded packet (header ‖ guid ‖ message) of `nonce` on the one path. */
function packet(nonce: number, sender: Hex = SENDER): Hex {
  const guid = keccak256(toHex(`guid ${sender} ${nonce}`))
  return encodePacked(
    ['uint8', 'uint64', 'uint32', 'bytes32', 'uint32', 'bytes32', 'bytes32', 'bytes'],
    [1, BigInt(nonce), SRC, sender, DST, pad(RECEIVER), guid, toHex(`message ${nonce}`)],
  )
}

type Sent = { nonce: number; block: bigint; sender?: Hex }

/** An origin whose logs are `sent`, less those `hidden` returns true for (asked on each read). */
function origin(head: () => bigint, sent: Sent[], hidden: (s: Sent) => boolean = () => false) {
  const reads: [bigint, bigint][] = []
  const client = {
    getBlockNumber: async () => head(),
    getLogs: async ({ fromBlock, toBlock }: { fromBlock: bigint; toBlock: bigint }) => {
      reads.push([fromBlock, toBlock])
      return sent
        .filter((s) => s.block >= fromBlock && s.block <= toBlock && !hidden(s))
        .map((s, i) => ({
          args: { encodedPayload: packet(s.nonce, s.sender), options: '0x' as Hex, sendLibrary: RECEIVER },
          blockNumber: s.block,
          logIndex: i,
          transactionHash: keccak256(toHex(`tx ${s.nonce}`)),
        }))
    },
  }
  return { origin: { client, endpoint: '0x00000000000000000000000000000000000000e1', eid: SRC } as unknown as AgentOrigin, reads }
}

function agent(o: AgentOrigin, errors: string[] = []) {
  const store = new MemoryPacketCursorStore()
  const a = createPacketAgent<never>({
    name: 'test',
    origin: o,
    dstEid: DST,
    cursorStore: store,
    fromBlock: 1n,
    handle: async () => ({ kind: 'waiting' }),
    isHandled: async () => false,
    onError: (e) => errors.push(e instanceof Error ? e.message : String(e)),
  })
  return { a, store }
}

const nonces = async (a: ReturnType<typeof agent>['a']) => (await a.pending()).map((p) => Number(p.nonce))

describe('a LayerZero agent scan', () => {
  test('default: packets in order are each recorded once, and a block read again adds none', async () => {
    let head = 3n
    const sent: Sent[] = [
      { nonce: 1, block: 2n },
      { nonce: 2, block: 3n },
    ]
    const { origin: o } = origin(() => head, sent)
    const { a, store } = agent(o)
    expect(await a.scan()).toBe(2)
    sent.push({ nonce: 3, block: 4n })
    head = 4n
    expect(await a.scan()).toBe(1)
    expect(await nonces(a)).toEqual([1, 2, 3])
    // The cursor read again from an earlier block (as after a rewind): nothing is added twice.
    await store.save({ ...store.peek()!, nextBlock: '1' })
    expect(await a.scan()).toBe(0)
    expect(await nonces(a)).toEqual([1, 2, 3])
  })

  test('behavior: a packet the node left out of its newest block is read again once the next one shows the gap', async () => {
    let head = 5n
    const sent: Sent[] = [
      { nonce: 1, block: 3n },
      { nonce: 2, block: 5n },
      { nonce: 3, block: 7n },
    ]
    // Nonce 2's block is read while the node has not indexed its logs yet, then normally.
    let indexed = false
    const { origin: o, reads } = origin(
      () => head,
      sent,
      (s) => s.nonce === 2 && !indexed,
    )
    const errors: string[] = []
    const { a } = agent(o, errors)
    expect(await a.scan()).toBe(1) // blocks 1–5: nonce 1 only
    indexed = true
    head = 7n
    expect(await a.scan()).toBe(0) // blocks 6–7: nonce 3 follows 1, so the scan goes back
    expect(errors.join('\n')).toMatch(/packet 3 follows 1 .*reading again from block 3/)
    expect(await nonces(a)).toEqual([1])
    expect(await a.scan()).toBe(2) // blocks 3–7 again: nonces 2 and 3; 1 is not added twice
    expect(await nonces(a)).toEqual([1, 2, 3])
    expect(reads).toEqual([
      [1n, 5n],
      [6n, 7n],
      [3n, 7n],
    ])
  })

  test('behavior: paths are numbered apart; a new path starts where it is first seen', async () => {
    const other = pad('0x00000000000000000000000000000000000000a2')
    const sent: Sent[] = [
      { nonce: 1, block: 2n },
      { nonce: 7, block: 2n, sender: other }, // an agent started after this path's first packets
      { nonce: 2, block: 3n },
      { nonce: 8, block: 3n, sender: other },
    ]
    const { origin: o } = origin(() => 3n, sent)
    const errors: string[] = []
    const { a } = agent(o, errors)
    expect(await a.scan()).toBe(4)
    expect(errors).toEqual([])
  })

  test('edge: a gap within one scan drops the scan and reads the same blocks again', async () => {
    let hide = true
    const sent: Sent[] = [
      { nonce: 1, block: 2n },
      { nonce: 2, block: 3n },
      { nonce: 3, block: 4n },
    ]
    const { origin: o } = origin(
      () => 4n,
      sent,
      (s) => s.nonce === 2 && hide,
    )
    const errors: string[] = []
    const { a } = agent(o, errors)
    expect(await a.scan()).toBe(0) // nonce 1 is the path's first; 3 follows it with a gap
    expect(await nonces(a)).toEqual([])
    hide = false
    expect(await a.scan()).toBe(3)
    expect(await nonces(a)).toEqual([1, 2, 3])
    expect(errors).toHaveLength(1)
  })
})

describe("a LayerZero agent's send", () => {
  const mine = keccak256(toHex('mine'))
  const other = keccak256(toHex('other'))
  /** A client whose receipt wait reports the transaction replaced for `reason` (or not at all). */
  const client = (reason?: 'replaced' | 'repriced' | 'cancelled') => ({
    // biome-ignore lint/suspicious/noExplicitAny: a stand-in for viem's overloaded action
    waitForTransactionReceipt: (async (p: { hash: Hex; onReplaced?: (r: any) => void }) => {
      if (reason) p.onReplaced?.({ reason, transaction: { hash: other } })
      return { transactionHash: reason ? other : p.hash, status: 'success' }
    }) as never,
  })
  const unlocked = <T>(fn: () => Promise<T>) => fn()

  test('default: its own receipt', async () => {
    const { receipt } = await sendAndWait(client(), unlocked, async () => mine)
    expect(receipt.transactionHash).toBe(mine)
  })

  test("error: a transaction replaced by another of the account is not taken for the replacement's receipt", async () => {
    for (const reason of ['replaced', 'cancelled'] as const) {
      const err = await sendAndWait(client(reason), unlocked, async () => mine).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(TransactionReplacedError)
      expect((err as TransactionReplacedError).retryable).toBe(true)
      expect(String((err as Error).message)).toContain(`was ${reason} by ${other}`)
    }
  })

  test('behavior: the same call repriced counts as sent', async () => {
    const { receipt } = await sendAndWait(client('repriced'), unlocked, async () => mine)
    expect(receipt.transactionHash).toBe(other)
  })
})
