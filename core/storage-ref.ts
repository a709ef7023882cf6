/**
 * A stored artifact's id as the 32 bytes a gateway records with a result. Arweave ids are 32 bytes
 * in base64url and map one to one; other ids are hashed (`keccak256("<storage>:<id>")`).
 */
import { keccak256, toHex, type Hex } from 'viem'
import type { StoredArtifact } from './types.ts'

export const NO_STORAGE_REF: Hex = `0x${'00'.repeat(32)}`

/** The bytes32 that records `artifact` on-chain (zero when there is none). */
export function storageRefOf(artifact: StoredArtifact | undefined): Hex {
  if (!artifact) return NO_STORAGE_REF
  if (/^[A-Za-z0-9_-]{43}$/.test(artifact.id)) {
    const bytes = Buffer.from(artifact.id, 'base64url')
    if (bytes.length === 32 && bytes.toString('base64url') === artifact.id) return toHex(bytes)
  }
  return keccak256(toHex(`${artifact.storage}:${artifact.id}`))
}

/** The base64url id (Arweave's form) of a 32-byte storage ref. */
export function base64UrlIdOf(ref: Hex): string {
  return Buffer.from(ref.slice(2), 'hex').toString('base64url')
}
