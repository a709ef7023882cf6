/**
 * Differential property test: the TypeScript field encoder (core/field.ts) and the Solidity one
 * (FieldEncoding.sol, through a harness on anvil) agree on every value, including which values
 * cannot be encoded.
 */
import fc from 'fast-check'
import { maxInt256, minInt256, type Address } from 'viem'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import { FieldEncodingHarness } from '../../contracts/artifacts/index.ts'
import { FIELD_MODULUS, MAX_ABS_FIELD_VALUE, toFelt } from '../../core/field.ts'

let anvil: AnvilInstance
let client: SertnClient
let harness: Address

beforeAll(async () => {
  anvil = await startAnvil()
  client = createSertnClient(anvil.chain, anvilAccount(0))
  harness = await deployContract(client, FieldEncodingHarness)
})

afterAll(async () => {
  await anvil?.stop()
})

function tsEncode(v: bigint): [boolean, bigint] {
  try {
    return [true, toFelt(v)]
  } catch {
    return [false, 0n]
  }
}

async function agree(values: bigint[]): Promise<void> {
  const [ok, felts] = await client.readContract({
    address: harness,
    abi: FieldEncodingHarness.abi,
    functionName: 'tryToFelts',
    args: [values],
  })
  for (const [i, v] of values.entries()) expect([ok[i], felts[i]], `value ${v}`).toEqual(tsEncode(v))
}

const M = MAX_ABS_FIELD_VALUE
const edges = [0n, 1n, -1n, 4096n, -10240n, M, -M, M + 1n, -M - 1n, FIELD_MODULUS, -FIELD_MODULUS, maxInt256, minInt256, minInt256 + 1n]

test('default: the documented examples', () => {
  expect(toFelt(4096n)).toBe(4096n)
  expect(toFelt(-10240n)).toBe(FIELD_MODULUS - 10240n)
})

test('behavior: TypeScript and Solidity agree on the edges of the range', async () => {
  await agree(edges)
})

test('behavior: TypeScript and Solidity agree on random int256 values', async () => {
  // Values spread across every magnitude, biased towards the encodable limit and the fixed-point range.
  const value = fc.oneof(
    fc.bigInt({ min: minInt256, max: maxInt256 }),
    fc.bigInt({ min: -(1n << 64n), max: 1n << 64n }),
    fc.bigInt({ min: -M - 1000n, max: -M + 1000n }),
    fc.bigInt({ min: M - 1000n, max: M + 1000n }),
    fc.integer({ min: 0, max: 255 }).chain((bits) => fc.bigInt({ min: -(1n << BigInt(bits)), max: (1n << BigInt(bits)) - 1n })),
  )
  await fc.assert(fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 200 }), agree), { numRuns: 40 })
})
