/**
 * `sertn model build --batch auto`: the ladder of batch sizes that fill their logrows
 * (circuits/pipeline/batches.ts `batchLadder`).
 */
import { describe, expect, test } from 'vitest'
import { BLINDING_ROWS, batchLadder } from '../../circuits/pipeline/batches.ts'

describe('the batch ladder', () => {
  test('default: the demo (624 rows a proof at logrows 10): 3, 6, 13, 26 and 52 rows fill logrows 11 to 15; logrows 16 would hold 104, so the ladder ends at the cap, 64', () => {
    const sizes = batchLadder({ rows: 624, logrows: 10, maxLogrows: 20, maxRows: 64 })
    expect(sizes).toEqual([3, 6, 13, 26, 52, 64])
    // Each below the cap fills its logrows: its rows fit, one more row per proof would not.
    for (const [i, n] of sizes.slice(0, -1).entries()) {
      const k = 11 + i
      expect(n * 624 + BLINDING_ROWS).toBeLessThanOrEqual(2 ** k)
      expect((n + 1) * 624 + BLINDING_ROWS).toBeGreaterThan(2 ** k)
    }
  })

  test('behavior: a model whose logrows leave room (a lookup range, say) gets a size at its own logrows', () => {
    expect(batchLadder({ rows: 100, logrows: 10, maxLogrows: 12, maxRows: 64 })).toEqual([10, 20, 40])
    // One whose own logrows hold more than the cap: the cap alone, proven at the model's own cost.
    expect(batchLadder({ rows: 40, logrows: 12, maxLogrows: 20, maxRows: 64 })).toEqual([64])
  })

  test('behavior: --batch-max and --max-logrows end the ladder', () => {
    expect(batchLadder({ rows: 624, logrows: 10, maxLogrows: 20, maxRows: 8 })).toEqual([3, 6, 8])
    expect(batchLadder({ rows: 624, logrows: 10, maxLogrows: 13, maxRows: 64 })).toEqual([3, 6, 13])
  })

  test('edge: no size fits (the model fills the most logrows already)', () => {
    expect(batchLadder({ rows: 1000, logrows: 10, maxLogrows: 10, maxRows: 64 })).toEqual([])
    expect(batchLadder({ rows: 600, logrows: 10, maxLogrows: 10, maxRows: 64 })).toEqual([])
  })

  test('error: a circuit without rows', () => {
    expect(() => batchLadder({ rows: 0, logrows: 10, maxLogrows: 12, maxRows: 64 })).toThrow(/rows/)
  })
})
