/** Terminal output for the CLI: stages with their durations, and a live timer for long ones. */

const tty = process.stderr.isTTY === true
const c = (code: number) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s)
export const dim = c(2)
export const bold = c(1)
export const green = c(32)
export const red = c(31)
export const cyan = c(36)
export const yellow = c(33)

export function fmtMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`
}

/** Gas for humans: `690k gas` (exact below 10,000). */
export function fmtGas(gas: bigint | string | number): string {
  const n = Number(gas)
  return n < 10_000 ? `${n} gas` : `${Math.round(n / 1000)}k gas`
}

/**
 * Runs `fn` as a named stage: prints it when it starts (with a ticking timer on a terminal) and
 * when it ends, with its duration and an optional detail line from `describe`.
 */
export async function stage<T>(name: string, fn: () => Promise<T>, describe?: (r: T) => string): Promise<T> {
  const started = performance.now()
  const label = name.padEnd(34)
  let timer: NodeJS.Timeout | undefined
  if (tty) {
    const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
    let i = 0
    timer = setInterval(() => {
      process.stderr.write(`\r${cyan(frames[i++ % frames.length]!)} ${label} ${dim(fmtMs(performance.now() - started))}   `)
    }, 100)
  } else {
    process.stderr.write(`… ${name}\n`)
  }
  try {
    const result = await fn()
    const ms = performance.now() - started
    if (timer) clearInterval(timer)
    const detail = describe ? `  ${dim(describe(result))}` : ''
    process.stderr.write(`${tty ? '\r' : ''}${green('✔')} ${label} ${fmtMs(ms).padStart(9)}${detail}\n`)
    return result
  } catch (err) {
    if (timer) clearInterval(timer)
    process.stderr.write(`${tty ? '\r' : ''}${red('✘')} ${label} ${fmtMs(performance.now() - started).padStart(9)}\n`)
    throw err
  }
}

/** The same styles for what goes to stdout (results, status): plain when stdout is not a terminal. */
const ttyOut = process.stdout.isTTY === true
const o = (code: number) => (s: string) => (ttyOut ? `\x1b[${code}m${s}\x1b[0m` : s)
export const out = { dim: o(2), bold: o(1), green: o(32), red: o(31), cyan: o(36) }
