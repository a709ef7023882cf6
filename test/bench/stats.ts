/** Small statistics and logging for the benchmarks. */

export const log = (msg: string) => console.error(`[bench] ${msg}`)

/** The q-quantile (0..1) of `xs` by linear interpolation between closest ranks. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo)
}

export const median = (xs: readonly number[]) => quantile(xs, 0.5)

/** {p50, p95} rounded to whole milliseconds. */
export function p50p95(xs: readonly number[]): { p50: number; p95: number } {
  return { p50: Math.round(quantile(xs, 0.5)), p95: Math.round(quantile(xs, 0.95)) }
}
