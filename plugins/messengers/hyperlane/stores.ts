/**
 * Stores for the local Hyperlane agents: a validator's checkpoint store (its signed checkpoints by
 * index, plus the validator's own resume state) and the relayer's cursor store. Each comes in a
 * memory flavour (tests) and a file flavour (JSON documents written atomically: temp file, fsync,
 * rename), loosely after the real agents' local checkpoint syncer (`<index>_with_id.json`).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { getAddress, type Address, type Hex } from 'viem'
import { writeJsonAtomic } from '../../../core/files.ts'
import type { SignedCheckpoint } from './message.ts'

/** Where a validator resumes: its copy of the merkle tree and the next origin block to scan. */
export type ValidatorState = { nextBlock: string; tree: { branch: Hex[]; count: number } }

/** One validator's signed checkpoints, readable by relayers. */
export interface CheckpointStore {
  /** The validator whose signatures this store holds. */
  readonly validator: Address
  get(index: number): Promise<SignedCheckpoint | undefined>
  put(checkpoint: SignedCheckpoint): Promise<void>
  /** The highest index signed so far, or undefined. */
  latestIndex(): Promise<number | undefined>
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
  attempts: number
  /** The last attempt's error (the revert reason when the destination rejected it). */
  lastError: string
  /** When it was rejected (ms since the epoch). */
  rejectedAt: number
}

/**
 * The relayer's resume point: the next origin block to scan, the messages still to deliver, and
 * the messages given up on (`rejected`, absent in cursors saved before it existed).
 */
export type RelayerCursor = { nextBlock: string; pending: PendingMessage[]; rejected?: RejectedMessage[] }

export interface RelayerCursorStore {
  load(): Promise<RelayerCursor | undefined>
  save(cursor: RelayerCursor): Promise<void>
}

export class MemoryCheckpointStore implements CheckpointStore {
  readonly validator: Address
  private readonly checkpoints = new Map<number, SignedCheckpoint>()
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
  }
  async latestIndex() {
    return this.checkpoints.size === 0 ? undefined : Math.max(...this.checkpoints.keys())
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
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new Error(`${path}: not JSON`, { cause: err })
  }
}

function writeJson(dir: string, name: string, value: unknown): Promise<void> {
  return writeJsonAtomic(join(dir, name), value)
}

/** `<dir>/<validator>/<index>_with_id.json`, `index.json` (latest index) and `state.json`. */
export class FileCheckpointStore implements CheckpointStore {
  readonly validator: Address
  readonly dir: string

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
  }
  async latestIndex() {
    return readJson<number>(join(this.dir, 'index.json'))
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
