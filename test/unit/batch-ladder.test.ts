/**
 * `sertn model build --batch auto`: the ladder of batch sizes that fill their logrows
 * (circuits/pipeline/batches.ts `batchLadder`); and what a batch circuit's build searches beyond the
 * model's own run arguments (its layout, `batchDecomps`; the corners of a row's box, `rowCornerSamples`).
 */
import { describe, expect, test } from 'vitest'
import { BATCH_DECOMPS, BLINDING_ROWS, batchDecomps, batchLadder } from '../../circuits/pipeline/batches.ts'
import { MAX_ROW_CORNER_VALUES, rowCornerSamples } from '../../circuits/pipeline/build.ts'

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

describe("a batch circuit's search", () => {
  const spec = (name: string, shape: number[]) => ({ name, shape })
  const cornersOf = (sample: number[], perRow: number) => {
    const rows = []
    for (let i = 0; i < sample.length; i += perRow) rows.push(sample.slice(i, i + perRow).join(','))
    return rows
  }

  test("default: the demo's 64 rows of 4 values: one sample whose rows go through all 16 corners of a row's box, four times", () => {
    const samples = rowCornerSamples([spec('input', [64, 4])], 4)
    expect(samples).toHaveLength(1)
    const rows = cornersOf(samples[0]![0]!, 4)
    expect(rows).toHaveLength(64)
    expect(new Set(rows).size).toBe(16)
    expect(samples[0]![0]!.every((v) => v === 4 || v === -4)).toBe(true)
    expect(rows.slice(0, 16)).toEqual(rows.slice(16, 32))
  })

  test('behavior: fewer rows than corners take several samples; several inputs share the corners of a row', () => {
    const few = rowCornerSamples([spec('input', [4, 4])], 1)
    expect(few).toHaveLength(4)
    expect(new Set(few.flatMap((s) => cornersOf(s[0]!, 4))).size).toBe(16)
    const two = rowCornerSamples([spec('a', [8, 2]), spec('b', [8, 1])], 2)
    expect(two).toHaveLength(1)
    const joined = new Set(Array.from({ length: 8 }, (_, r) => [...two[0]![0]!.slice(2 * r, 2 * r + 2), two[0]![1]![r]].join(',')))
    expect(joined.size).toBe(8)
  })

  test(`edge: a row of more than ${MAX_ROW_CORNER_VALUES} values, or inputs of different rows, get none`, () => {
    expect(rowCornerSamples([spec('image', [16, MAX_ROW_CORNER_VALUES + 1])], 1)).toEqual([])
    expect(rowCornerSamples([spec('a', [8, 2]), spec('b', [4, 2])], 1)).toEqual([])
  })

  test("behavior: the layout search tries the model's own decomposition first, then the others once each", () => {
    expect(batchDecomps([64, 3])).toEqual([[64, 3], ...BATCH_DECOMPS.filter(([b, l]) => !(b === 64 && l === 3))])
    expect(batchDecomps([16, 4])).toEqual([[16, 4], ...BATCH_DECOMPS])
  })
})
