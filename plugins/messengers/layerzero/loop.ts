/** The bounded polling loop of the local LayerZero agents, and a lock to serialise their writes. */

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

export type WakeablePollLoop = {
  /** Resolves when the loop has stopped (after an abort, once the running poll finished). */
  readonly done: Promise<void>
  /** Polls again now instead of after the interval (after the running poll, if one runs). */
  wake(): void
}

/**
 * Calls `poll` every `intervalMs` until `signal` aborts; {@link WakeablePollLoop.wake} cuts the
 * wait short. A poll that throws is reported to `onError` and retried with exponential backoff
 * (capped at `maxBackoffMs`). Polls never overlap.
 */
export function runWakeablePollLoop(
  poll: () => Promise<void>,
  {
    intervalMs,
    signal,
    onError,
    maxBackoffMs = 5_000,
  }: { intervalMs: number; signal: AbortSignal; onError: (err: unknown) => void; maxBackoffMs?: number },
): WakeablePollLoop {
  let woken = false
  let interrupt: (() => void) | undefined
  const wake = () => {
    woken = true
    interrupt?.()
  }
  const done = (async () => {
    let failures = 0
    while (!signal.aborted) {
      woken = false
      try {
        await poll()
        failures = 0
      } catch (err) {
        if (signal.aborted) break
        failures += 1
        onError(err)
      }
      if (woken && failures === 0) continue
      const wait = failures === 0 ? intervalMs : Math.min(maxBackoffMs, intervalMs * 2 ** failures)
      const local = new AbortController()
      interrupt = () => local.abort()
      await sleep(wait, AbortSignal.any([signal, local.signal]))
      interrupt = undefined
    }
  })()
  return { done, wake }
}

/** Runs async functions one at a time, in call order (e.g. the transactions of one account). */
export type SerialLock = <T>(fn: () => Promise<T>) => Promise<T>

export function createSerialLock(): SerialLock {
  let tail: Promise<unknown> = Promise.resolve()
  return <T>(fn: () => Promise<T>) => {
    const run = tail.catch(() => undefined).then(fn)
    tail = run
    return run
  }
}
