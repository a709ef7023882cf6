/**
 * Differential property test of the packing a batch's rows travel in (PackedInts.sol, through a
 * harness on anvil): every array of signed values packs at the fewest bytes that hold them all
 * (two's complement, big-endian) and unpacks to itself; a packed array whose length is not a
 * multiple of its width, or a width outside 1..32, is refused.
 */
import fc from 'fast-check'
import { maxInt256, minInt256, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import { PackedIntsHarness } from '../../contracts/artifacts/index.ts'
import { expectRevert } from '../support/chain.ts'

let anvil: AnvilInstance
let client: SertnClient
let harness: Address

beforeAll(async () => {
  anvil = await startAnvil()
  client = createSertnClient(anvil.chain, anvilAccount(0))
  harness = await deployContract(client, PackedIntsHarness)
})

afterAll(async () => {
  await anvil?.stop()
})

/** The fewest bytes (1..32) in which every value fits as a two's complement integer. */
function widthOf(values: readonly bigint[]): number {
  let w = 1
  for (const v of values) while (w < 32 && (v < -(1n << BigInt(8 * w - 1)) || v >= 1n << BigInt(8 * w - 1))) w++
  return w
}

const packed = (values: readonly bigint[], w: number): Hex =>
  `0x${values
    .map((v) =>
      BigInt.asUintN(8 * w, v)
        .toString(16)
        .padStart(2 * w, '0'),
    )
    .join('')}`

async function agree(values: bigint[]): Promise<void> {
  const [width, bytes, unpacked] = await client.readContract({
    address: harness,
    abi: PackedIntsHarness.abi,
    functionName: 'roundTrip',
    args: [values],
  })
  expect(width).toBe(widthOf(values))
  expect(bytes).toBe(packed(values, width))
  expect(unpacked).toEqual(values)
}

test('every width boundary, the extremes and zero pack at the fewest bytes and unpack to themselves', async () => {
  const edges: bigint[] = [0n, -1n, 1n, maxInt256, minInt256]
  for (let w = 1; w < 32; w++) {
    const top = 1n << BigInt(8 * w - 1)
    edges.push(top - 1n, -top, top, -top - 1n)
  }
  for (const v of edges) await agree([v])
  await agree(edges)
  await agree([])
})

test('random arrays of values of every size round-trip (property)', async () => {
  const value = fc.oneof(fc.bigInt({ min: -(1n << 20n), max: 1n << 20n }), fc.bigInt({ min: minInt256, max: maxInt256 }))
  await fc.assert(
    fc.asyncProperty(fc.array(value, { maxLength: 40 }), async (values) => agree(values)),
    { numRuns: 60 },
  )
})

test('error: a packed array that is not a whole number of elements, or a width outside 1..32, is refused', async () => {
  const unpack = (data: Hex, width: number) =>
    client.readContract({ address: harness, abi: PackedIntsHarness.abi, functionName: 'unpack', args: [data, width] })
  expect(await expectRevert(unpack('0x010203', 2))).toEqual({ errorName: 'PackedIntsMalformed', args: [3n, 2n] })
  expect(await expectRevert(unpack('0x', 0))).toEqual({ errorName: 'PackedIntsMalformed', args: [0n, 0n] })
  expect(await expectRevert(unpack('0x00', 33))).toEqual({ errorName: 'PackedIntsMalformed', args: [1n, 33n] })
  expect(await unpack('0xff80', 1)).toEqual([-1n, -128n])
})
