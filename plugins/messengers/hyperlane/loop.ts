/** What the local validator and relayer share: a bounded polling loop that can be woken, and their errors' base class. */
import { SertnError } from '../../../core/errors.ts'

/** Something in the local Hyperlane agents went wrong. */
export class HyperlaneAgentError extends SertnError {
  override name = 'HyperlaneAgentError'
}

/** An agent was used after it was disposed. */
export class AgentDisposedError extends HyperlaneAgentError {
  override name = 'AgentDisposedError'
}

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
