/**
 * Retry requests: how `sertn relay retry` (one process) asks the running relay (another) to move
 * rejected messages back to pending.
 *
 * The agents own their state files: they replace them atomically, and every read-modify-write of
 * them is serialised inside the relay's process. A second writer would race those cycles (its
 * write could undo a requeue, or drop a message a scan had just added between its read and its
 * write), so nothing outside the relay writes them. The CLI drops a request instead, one JSON file
 * `<agents dir>/retry/<time>-<random>.json` naming the message ids (written atomically: a temp
 * file renamed into place, which the reader never takes for a request). The relay looks for
 * requests every half second and once at start, applies each through its agents' own serialised
 * `requeue` and then deletes it; a crash in between applies it again, which moves nothing more
 * (a requeued message is no longer rejected). A request made while no relay runs waits for the
 * next start.
 */
import { randomBytes } from 'node:crypto'
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { writeJsonAtomic } from '../../core/files.ts'
import { runPollLoop, type PollLoop } from '../../core/loop.ts'

/** A request to move these rejected messages back to pending. */
export type RetryRequest = { ids: Hex[]; requestedAt: number }

/** Where the agents whose state is in `agentsDir` find retry requests. */
export const retryDirOf = (agentsDir: string): string => join(agentsDir, 'retry')

/** Leaves a retry request for the agents of `agentsDir`; returns its file. */
export async function writeRetryRequest(agentsDir: string, ids: readonly Hex[]): Promise<string> {
  const path = join(retryDirOf(agentsDir), `${Date.now()}-${randomBytes(4).toString('hex')}.json`)
  await writeJsonAtomic(path, { ids: [...ids], requestedAt: Date.now() } satisfies RetryRequest)
  return path
}

/** The retry requests waiting in `agentsDir` (oldest first), with their files. */
export async function pendingRetryRequests(agentsDir: string): Promise<{ path: string; request: RetryRequest }[]> {
  const dir = retryDirOf(agentsDir)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: { path: string; request: RetryRequest }[] = []
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(dir, name)
    try {
      const r = JSON.parse(await readFile(path, 'utf8')) as RetryRequest
      out.push({ path, request: { ids: Array.isArray(r.ids) ? r.ids : [], requestedAt: Number(r.requestedAt) || 0 } })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue // taken meanwhile
      out.push({ path, request: { ids: [], requestedAt: 0 } }) // unreadable: dropped by the server
    }
  }
  return out
}

/**
 * Applies the retry requests left in `agentsDir` with `requeue` (at once, then every `intervalMs`)
 * until `signal` aborts, deleting each once applied.
 */
export function serveRetryRequests(
  agentsDir: string,
  requeue: (ids: readonly Hex[]) => Promise<number>,
  o: {
    signal: AbortSignal
    intervalMs?: number
    onApplied?: (ids: readonly Hex[], moved: number) => void
    onError?: (err: unknown) => void
  },
): PollLoop {
  return runPollLoop(
    async () => {
      for (const { path, request } of await pendingRetryRequests(agentsDir)) {
        const moved = request.ids.length > 0 ? await requeue(request.ids) : 0
        await rm(path, { force: true })
        o.onApplied?.(request.ids, moved)
      }
    },
    { intervalMs: o.intervalMs ?? 500, signal: o.signal, onError: o.onError ?? (() => {}) },
  )
}
