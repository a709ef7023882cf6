import { describe, expect, test } from 'vitest'
import { HOP_POLL_CAP_MS, hopDelayMs } from '../../workflows/activities/index.ts'

describe('hop polling', () => {
  test('a waiting hop looks every poll interval at first, then backs off by half again each time up to the cap', () => {
    const delays = Array.from({ length: 12 }, (_, n) => hopDelayMs(250, n))
    expect(delays.slice(0, 3)).toEqual([250, 375, 562.5])
    for (let n = 1; n < delays.length; n++) expect(delays[n]).toBeGreaterThanOrEqual(delays[n - 1]!)
    expect(delays.at(-1)).toBe(HOP_POLL_CAP_MS)
    // 100 looks of a hop that waits long: bounded by the cap, not by the poll interval.
    const total = Array.from({ length: 100 }, (_, n) => hopDelayMs(50, n)).reduce((a, b) => a + b, 0)
    expect(total).toBeGreaterThan(90 * HOP_POLL_CAP_MS)
  })

  test('a chain polled less often than the cap is looked for at its own interval', () => {
    expect(hopDelayMs(12_000, 0)).toBe(12_000)
    expect(hopDelayMs(12_000, 9)).toBe(12_000)
  })
})
