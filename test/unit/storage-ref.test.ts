import { keccak256, toHex } from 'viem'
import { expect, test } from 'vitest'
import { base64UrlIdOf, NO_STORAGE_REF, storageRefOf } from '../../core/storage-ref.ts'

test('default: an Arweave id maps to its 32 bytes and back', () => {
  const id = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7)).toString('base64url')
  const ref = storageRefOf({ storage: 'arweave', id, sha256: '', bytes: 0 })
  expect(ref).toBe(toHex(Buffer.from(id, 'base64url')))
  expect(base64UrlIdOf(ref)).toBe(id)
})

test('behavior: other ids are hashed with their storage name; none is zero', () => {
  expect(storageRefOf({ storage: 'ipfs', id: 'bafy…', sha256: '', bytes: 0 })).toBe(keccak256(toHex('ipfs:bafy…')))
  expect(storageRefOf(undefined)).toBe(NO_STORAGE_REF)
})
