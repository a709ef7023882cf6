/**
 * Where the local LayerZero agents (DVN, executor) resume: a cursor per agent and route with the
 * next origin block to scan, the packets seen but not yet handled (with their failed attempts),
 * and the packets given up on. A memory flavour (tests) and a file flavour (one JSON document,
 * written atomically: temp file, fsync, rename).
 */
import { join } from 'node:path'
import type { Hex } from 'viem'
import { readTextIfExists, writeJsonAtomic } from '../../../core/files.ts'

/** A packet an agent has seen on the origin (`PacketSent`) and not yet handled. */
export type PendingPacket = {
  guid: Hex
  /** The packet's nonce on its path (decimal). */
  nonce: string
  /** The `encodedPayload` of `PacketSent`: header ‖ guid ‖ message. */
  encodedPacket: Hex
  /** The options the sender paid for (the executor's lzReceive gas and value). */
  options: Hex
  /** The origin block and transaction of `PacketSent`. */
  blockNumber: string
  txHash: Hex
  /** Failed attempts so far (waiting for verification or confirmations is not an attempt). */
  attempts?: number
  /** Not tried again before this time (ms since the epoch), after a failed attempt. */
  nextAttemptAt?: number
  /** Why the last attempt failed (the decoded revert reason when the chain refused). */
  lastError?: string
}

/** A packet an agent gave up on after `maxAttempts` failed attempts; kept for an operator. */
export type RejectedPacket = Omit<PendingPacket, 'attempts' | 'lastError' | 'nextAttemptAt'> & {
  attempts: number
  lastError: string
  /** When it was rejected (ms since the epoch). */
  rejectedAt: number
}

/** The last packet an agent saw on one path (its sender and receiver; the route fixes the eids). */
export type PathMark = {
  /** Its nonce (decimal): the path's packets are numbered 1, 2, 3, … with no gap. */
  nonce: string
  /** The origin block it was in (decimal): where a scan goes back to when it finds a gap after it. */
  block: string
}

/** An agent's resume point. */
export type PacketCursor = {
  nextBlock: string
  pending: PendingPacket[]
  rejected: RejectedPacket[]
  /** The last packet seen on each path, by `sender|receiver` (absent in cursors saved before it). */
  paths?: Record<string, PathMark>
}

export interface PacketCursorStore {
  load(): Promise<PacketCursor | undefined>
  save(cursor: PacketCursor): Promise<void>
}

export class MemoryPacketCursorStore implements PacketCursorStore {
  private cursor: PacketCursor | undefined
  async load() {
    return this.cursor && structuredClone(this.cursor)
  }
  async save(c: PacketCursor) {
    this.cursor = structuredClone(c)
  }
  /** The saved cursor, synchronously (tests). */
  peek(): PacketCursor | undefined {
    return this.cursor && structuredClone(this.cursor)
  }
}

/** `<dir>/<name>`, one JSON document. */
export class FilePacketCursorStore implements PacketCursorStore {
  constructor(
    readonly dir: string,
    readonly name = 'layerzero.cursor.json',
  ) {}
  get path(): string {
    return join(this.dir, this.name)
  }
  async load(): Promise<PacketCursor | undefined> {
    const text = await readTextIfExists(this.path)
    if (text === undefined) return undefined
    let c: PacketCursor
    try {
      c = JSON.parse(text) as PacketCursor
    } catch (err) {
      throw new Error(`${this.path}: not JSON`, { cause: err })
    }
    if (typeof c?.nextBlock !== 'string' || !Array.isArray(c.pending)) throw new Error(`${this.path}: not a packet cursor`)
    return { ...c, rejected: c.rejected ?? [] }
  }
  async save(c: PacketCursor) {
    await writeJsonAtomic(this.path, c)
  }
}
