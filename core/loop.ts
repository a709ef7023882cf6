/**
 * What long-running local agents share: a bounded polling loop that can be woken, an abortable
 * sleep, and a lock that runs async functions one at a time (one account's transactions).
 */
import { ChainTransientError } from './errors.ts'

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
  /**
   * Polls again now: ends the wait between two polls, or, during a poll, skips the wait after it.
   * Ignored while the loop backs off after failed polls.
   */
  wake(): void
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
  let woken = false
  let endWait: (() => void) | undefined
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
      if (failures === 0 && woken) continue
      const wait = failures === 0 ? intervalMs : Math.min(maxBackoffMs, intervalMs * 2 ** failures)
      if (failures > 0) {
        await sleep(wait, signal)
        continue
      }
      const wakeUp = new AbortController()
      endWait = () => wakeUp.abort()
      await sleep(wait, AbortSignal.any([signal, wakeUp.signal]))
      endWait = undefined
    }
  })()
  return {
    done,
    wake() {
      woken = true
      endWait?.()
    },
  }
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

/**
 * Runs `fn`, and again after a doubling pause (from `initialMs`, at most `maxIntervalMs`) while it
 * fails with a {@link ChainTransientError} (an RPC down or timing out), for at most `maxMs` in all;
 * then, or on any other error, throws it. For reads an activity cannot do without, where the
 * activity's own retry budget is meant for other failures and would turn an RPC outage of tens of
 * seconds into a failed request.
 */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  opts: { maxMs: number; initialMs?: number; maxIntervalMs?: number; onRetry?: (err: ChainTransientError, attempt: number) => void },
): Promise<T> {
  const started = Date.now()
  let pause = opts.initialMs ?? 500
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (!(err instanceof ChainTransientError) || Date.now() - started + pause > opts.maxMs) throw err
      opts.onRetry?.(err, attempt)
      await sleep(pause)
      pause = Math.min(pause * 2, opts.maxIntervalMs ?? 5_000)
    }
  }
}
