/** A bounded polling loop shared by the local validator and relayer. */

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

export type PollLoop = {
  /** Resolves when the loop has stopped (after an abort, once the running poll finished). */
  readonly done: Promise<void>
}

/**
 * Calls `poll` every `intervalMs` until `signal` aborts. A poll that throws is reported to
 * `onError` and retried with exponential backoff (capped at `maxBackoffMs`). Polls never overlap.
 */
export function runPollLoop(
  poll: () => Promise<void>,
  {
    intervalMs,
    signal,
    onError,
    maxBackoffMs = 5_000,
  }: { intervalMs: number; signal: AbortSignal; onError: (err: unknown) => void; maxBackoffMs?: number },
): PollLoop {
  const done = (async () => {
    let failures = 0
    while (!signal.aborted) {
      try {
        await poll()
        failures = 0
      } catch (err) {
        if (signal.aborted) break
        failures += 1
        onError(err)
      }
      const wait = failures === 0 ? intervalMs : Math.min(maxBackoffMs, intervalMs * 2 ** failures)
      await sleep(wait, signal)
    }
  })()
  return { done }
}
