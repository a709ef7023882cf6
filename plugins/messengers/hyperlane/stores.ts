/**
 * Stores for the local Hyperlane agents: a validator's checkpoint store (its signed checkpoints by
 * index, plus the validator's own resume state) and the relayer's cursor store. Each comes in a
 * memory flavour (tests) and a file flavour (JSON documents written atomically: temp file, fsync,
 * rename), loosely after the real agents' local checkpoint syncer (`<index>_with_id.json`).
 * Checkpoint stores tell in-process subscribers (a relayer sharing the store with its validator)
 * about each new checkpoint, so that a waiting message is delivered at once instead of at the next poll.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { getAddress, type Address, type Hex } from 'viem'
import { readTextIfExists, writeJsonAtomic } from '../../../core/files.ts'
import { HyperlaneAgentError } from './loop.ts'
import type { SignedCheckpoint } from './message.ts'

/** The validator's copy of the MerkleTreeHook's incremental tree. */
export type TreeState = { branch: Hex[]; count: number }

/** The tree as it was after origin block `block` (whose hash was `blockHash`): a point to go back to after a reorg. */
export type TreeSnapshot = { block: string; blockHash: Hex; tree: TreeState }

/**
 * Where a validator resumes: its copy of the merkle tree and the next origin block to scan, with
 * the hash block `nextBlock - 1` had when it was scanned (absent in states saved before it was
 * recorded) and the recent tree snapshots it can rewind to when that block is reorged away.
 */
export type ValidatorState = { nextBlock: string; tree: TreeState; blockHash?: Hex; snapshots?: TreeSnapshot[] }

/** One validator's signed checkpoints, readable by relayers. */
export interface CheckpointStore {
  /** The validator whose signatures this store holds. */
  readonly validator: Address
  get(index: number): Promise<SignedCheckpoint | undefined>
  put(checkpoint: SignedCheckpoint): Promise<void>
  /** The highest index signed so far, or undefined. */
  latestIndex(): Promise<number | undefined>
  /** Removes the checkpoints from `index` on (orphaned by an origin reorg); the validator re-signs what is still on chain. */
  deleteFrom?(index: number): Promise<void>
  /** Calls `listener` after each `put` through this object (in this process); returns the unsubscribe function. */
  subscribe?(listener: (checkpoint: SignedCheckpoint) => void): () => void
  loadState(): Promise<ValidatorState | undefined>
  saveState(state: ValidatorState): Promise<void>
}

/** A message the relayer has seen on the origin and not yet seen delivered. */
export type PendingMessage = {
  message: Hex
  messageId: Hex
  index: number
  blockNumber: string
  /** The origin transaction that dispatched it (absent in cursors saved before it was recorded). */
  dispatchTx?: Hex
  /**
   * The gas its recipient's handling needs, as the sending port said in its `PortMessageSent` log
   * of the dispatch transaction (decimal; absent for messages not sent by a port, and in cursors
   * saved before hints were recorded). The first attempt is sent with it, without an estimate.
   */
  gasHint?: string
  /** The hash of its origin block when it was seen: the message is orphaned when the block changes (a reorg). */
  blockHash?: Hex
  /** Failed delivery attempts so far (waiting for signatures is not an attempt). */
  attempts?: number
  /** Not retried before this time (ms since the epoch), after a failed attempt. */
  nextAttemptAt?: number
  /** Why the last attempt failed (the revert reason when the destination rejected it). */
  lastError?: string
}

/** A message the relayer gave up on after `maxAttempts` failed attempts; kept for an operator. */
export type RejectedMessage = {
  message: Hex
  messageId: Hex
  index: number
  blockNumber: string
  dispatchTx?: Hex
  /** The sending port's gas limit, when it gave one (see {@link PendingMessage.gasHint}). */
  gasHint?: string
  attempts: number
  /** The last attempt's error (the revert reason when the destination rejected it). */
  lastError: string
  /** When it was rejected (ms since the epoch). */
  rejectedAt: number
}

/** A message the relayer's route filter turned down: it is never attempted. */
export type IgnoredMessage = {
  message: Hex
  messageId: Hex
  index: number
  blockNumber: string
  dispatchTx?: Hex
  /** Why the route filter refused it. */
  reason: string
  /** When it was ignored (ms since the epoch). */
  ignoredAt: number
}

/**
 * The relayer's resume point: the next origin block to scan (with the hash block `nextBlock - 1`
 * had when it was scanned, to notice a reorg), the messages still to deliver, the messages given
 * up on (`rejected`) and those its route filter turned down (`ignored`). The optional fields are
 * absent in cursors saved before they existed.
 */
export type RelayerCursor = {
  nextBlock: string
  blockHash?: Hex
  pending: PendingMessage[]
  rejected?: RejectedMessage[]
  ignored?: IgnoredMessage[]
}

/** Calls every listener, reporting none of their errors to the caller (a store's `put` must not fail for them). */
class Listeners {
  private readonly set = new Set<(c: SignedCheckpoint) => void>()
  add(listener: (c: SignedCheckpoint) => void): () => void {
    this.set.add(listener)
    return () => this.set.delete(listener)
  }
  emit(c: SignedCheckpoint): void {
    for (const l of this.set) {
      try {
        l(structuredClone(c))
      } catch {
        // a listener's failure is its own
      }
    }
  }
}

export interface RelayerCursorStore {
  load(): Promise<RelayerCursor | undefined>
  save(cursor: RelayerCursor): Promise<void>
}

export class MemoryCheckpointStore implements CheckpointStore {
  readonly validator: Address
  private readonly checkpoints = new Map<number, SignedCheckpoint>()
  private readonly listeners = new Listeners()
  private state: ValidatorState | undefined

  constructor(validator: Address) {
    this.validator = getAddress(validator)
  }
  async get(index: number) {
    const c = this.checkpoints.get(index)
    return c && structuredClone(c)
  }
  async put(c: SignedCheckpoint) {
    this.checkpoints.set(c.index, structuredClone(c))
    this.listeners.emit(c)
  }
  async latestIndex() {
    return this.checkpoints.size === 0 ? undefined : Math.max(...this.checkpoints.keys())
  }
  async deleteFrom(index: number) {
    for (const i of [...this.checkpoints.keys()]) if (i >= index) this.checkpoints.delete(i)
  }
  subscribe(listener: (c: SignedCheckpoint) => void) {
    return this.listeners.add(listener)
  }
  async loadState() {
    return this.state && structuredClone(this.state)
  }
  async saveState(s: ValidatorState) {
    this.state = structuredClone(s)
  }
  /** Number of signed checkpoints (tests). */
  get size(): number {
    return this.checkpoints.size
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  const text = await readTextIfExists(path)
  if (text === undefined) return undefined
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new HyperlaneAgentError(`${path}: not JSON`, { cause: err })
  }
}

function writeJson(dir: string, name: string, value: unknown): Promise<void> {
  return writeJsonAtomic(join(dir, name), value)
}

/** `<dir>/<validator>/<index>_with_id.json`, `index.json` (latest index) and `state.json`. */
export class FileCheckpointStore implements CheckpointStore {
  readonly validator: Address
  readonly dir: string
  private readonly listeners = new Listeners()

  constructor(baseDir: string, validator: Address) {
    this.validator = getAddress(validator)
    this.dir = join(baseDir, this.validator)
  }
  async get(index: number) {
    return readJson<SignedCheckpoint>(join(this.dir, `${index}_with_id.json`))
  }
  async put(c: SignedCheckpoint) {
    await writeJson(this.dir, `${c.index}_with_id.json`, c)
    const latest = await this.latestIndex()
    if (latest === undefined || c.index > latest) await writeJson(this.dir, 'index.json', c.index)
    this.listeners.emit(c)
  }
  async latestIndex() {
    return readJson<number>(join(this.dir, 'index.json'))
  }
  async deleteFrom(index: number) {
    const latest = await this.latestIndex()
    if (latest === undefined || latest < index) return
    // Lower the latest index first: a crash midway leaves files past it, which `put` overwrites.
    if (index === 0) await rm(join(this.dir, 'index.json'), { force: true })
    else await writeJson(this.dir, 'index.json', index - 1)
    for (let i = index; i <= latest; i++) await rm(join(this.dir, `${i}_with_id.json`), { force: true })
  }
  subscribe(listener: (c: SignedCheckpoint) => void) {
    return this.listeners.add(listener)
  }
  async loadState() {
    return readJson<ValidatorState>(join(this.dir, 'state.json'))
  }
  async saveState(s: ValidatorState) {
    await writeJson(this.dir, 'state.json', s)
  }
}

export class MemoryRelayerCursorStore implements RelayerCursorStore {
  private cursor: RelayerCursor | undefined
  async load() {
    return this.cursor && structuredClone(this.cursor)
  }
  async save(c: RelayerCursor) {
    this.cursor = structuredClone(c)
  }
  /** The saved cursor, synchronously (tests). */
  peek(): RelayerCursor | undefined {
    return this.cursor && structuredClone(this.cursor)
  }
}

export class FileRelayerCursorStore implements RelayerCursorStore {
  constructor(
    readonly dir: string,
    readonly name = 'relayer.cursor.json',
  ) {}
  async load() {
    return readJson<RelayerCursor>(join(this.dir, this.name))
  }
  async save(c: RelayerCursor) {
    await writeJson(this.dir, this.name, c)
  }
}
