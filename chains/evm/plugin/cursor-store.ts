/**
 * Where a watcher keeps its {@link WatchCursor}: one JSON document per watcher key. The file store
 * writes atomically (temp file, fsync, rename), so a crash leaves either the old or the new cursor,
 * never a torn one.
 */
import { join } from 'node:path'
import { ConfigError } from '../../../core/errors.ts'
import { readTextIfExists, writeJsonAtomic } from '../../../core/files.ts'
import type { WatchCursor } from '../../../core/plugins.ts'

/** Loads and saves watcher cursors by key. */
export interface CursorStore {
  /** The saved cursor, or undefined when none was saved under `key`. */
  load(key: string): Promise<WatchCursor | undefined>
  /** Replaces the cursor under `key`; durable when it resolves (for persistent stores). */
  save(key: string, cursor: WatchCursor): Promise<void>
}

/** Checks the shape of a stored cursor; throws a ConfigError naming `where` if it is not one. */
export function parseCursor(value: unknown, where: string): WatchCursor {
  const bad = (why: string) => new ConfigError(`invalid watch cursor in ${where}: ${why}`)
  if (typeof value !== 'object' || value === null) throw bad('not an object')
  const { blockNumber, recentHashes } = value as Record<string, unknown>
  if (typeof blockNumber !== 'string' || !/^-?\d+$/.test(blockNumber) || BigInt(blockNumber) < -1n)
    throw bad('blockNumber must be a decimal string ≥ -1')
  if (!Array.isArray(recentHashes)) throw bad('recentHashes must be an array')
  let previous = -1n
  for (const entry of recentHashes as unknown[]) {
    const { number, hash } = (entry ?? {}) as Record<string, unknown>
    if (typeof number !== 'string' || !/^\d+$/.test(number)) throw bad('recentHashes[].number must be a decimal string')
    if (typeof hash !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(hash)) throw bad('recentHashes[].hash must be a 32-byte hex string')
    if (BigInt(number) <= previous || BigInt(number) > BigInt(blockNumber))
      throw bad('recentHashes must be ascending and not beyond blockNumber')
    previous = BigInt(number)
  }
  return {
    blockNumber,
    recentHashes: (recentHashes as { number: string; hash: `0x${string}` }[]).map(({ number, hash }) => ({ number, hash })),
  }
}

/** Keeps cursors in memory (tests, ephemeral nodes): a restart starts over. */
export class MemoryCursorStore implements CursorStore {
  private readonly cursors = new Map<string, WatchCursor>()

  async load(key: string): Promise<WatchCursor | undefined> {
    const c = this.cursors.get(key)
    return c && structuredClone(c)
  }

  async save(key: string, cursor: WatchCursor): Promise<void> {
    this.cursors.set(key, structuredClone(cursor))
  }

  /** The cursor saved under `key`, synchronously (for tests and status pages). */
  peek(key: string): WatchCursor | undefined {
    const c = this.cursors.get(key)
    return c && structuredClone(c)
  }
}

/** A file name for `key`: unsafe characters become `_`. */
export function cursorFileName(key: string): string {
  return `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.cursor.json`
}

/** Keeps each cursor in `<dir>/<key>.cursor.json`, written atomically. */
export class FileCursorStore implements CursorStore {
  constructor(readonly dir: string) {}

  /** The file that holds `key`'s cursor. */
  pathOf(key: string): string {
    return join(this.dir, cursorFileName(key))
  }

  async load(key: string): Promise<WatchCursor | undefined> {
    const path = this.pathOf(key)
    const text = await readTextIfExists(path)
    if (text === undefined) return undefined
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (err) {
      throw new ConfigError(`invalid watch cursor in ${path}: not JSON`, { cause: err })
    }
    return parseCursor(json, path)
  }

  async save(key: string, cursor: WatchCursor): Promise<void> {
    await writeJsonAtomic(this.pathOf(key), { blockNumber: cursor.blockNumber, recentHashes: cursor.recentHashes })
  }
}
