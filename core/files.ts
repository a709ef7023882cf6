/** Durable small files: state that must survive a crash whole or not at all. */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Writes `value` as JSON to `path` atomically: a temporary file beside it, fsynced, renamed over
 * it, then the directory fsynced (best effort), so a reader sees the old file or the new, never half.
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true })
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`, 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  try {
    const dh = await open(dir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
  } catch {
    // not every platform can fsync a directory
  }
}

/** The text of `path`, or undefined when there is no such file (any other error is thrown). */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
