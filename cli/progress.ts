/**
 * Progress output for long-running commands: finished steps as lines (`✔ name  duration  detail`)
 * and, on a terminal, one live line below them with a spinner and the elapsed time of whatever is
 * still running. Not on a terminal (CI, pipes, files): plain lines only, no escape codes.
 *
 * Steps may run concurrently; each prints its own line when it ends.
 */
import { cyan, dim, fmtMs, green, red, yellow } from './ui.ts'

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
export const LABEL_WIDTH = 30

export type Step = {
  /** Renames the running step (its timer keeps going). */
  rename(label: string): void
  /** Moves the step's start (performance.now() clock), e.g. to when a remote activity started. */
  since(started: number): void
  /** What the live line shows after the timer while the step runs. */
  note(text: string | undefined): void
  /** Ends the step: a ✔ line with its duration (`ms`, default: measured) and `detail`. */
  done(detail?: string, ms?: number): void
  /** Ends the step: a ✘ line. */
  fail(detail?: string): void
  /** Ends the step without a line. */
  cancel(): void
}

type Running = { label: string; started: number; note?: string | undefined }

export class Progress {
  readonly tty: boolean
  private readonly running = new Set<Running>()
  private timer: NodeJS.Timeout | undefined
  private frame = 0
  private drawn = false

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = out.isTTY === true
  }

  /** Prints a line (above the live line on a terminal). */
  line(text: string): void {
    this.clear()
    this.out.write(`${text}\n`)
    this.draw()
  }

  /**
   * Starts a step. `announce` also prints `… label` when not on a terminal (for steps that may
   * take long enough for someone to wonder what is happening).
   * @param started when the step began (performance.now() clock), default now
   */
  begin(label: string, options: { announce?: boolean; started?: number } = {}): Step {
    const r: Running = { label, started: options.started ?? performance.now() }
    this.running.add(r)
    if (!this.tty && options.announce) this.line(`… ${label}`)
    this.tick()
    let ended = false
    const end = (mark: string, detail: string | undefined, ms: number) => {
      if (ended) return
      ended = true
      this.running.delete(r)
      this.line(`${mark} ${r.label.padEnd(LABEL_WIDTH)} ${fmtMs(ms).padStart(9)}${detail ? `  ${dim(detail)}` : ''}`)
      this.tick()
    }
    return {
      rename: (l) => {
        r.label = l
      },
      since: (t) => {
        r.started = t
      },
      note: (t) => {
        r.note = t
      },
      done: (detail, ms) => end(green('✔'), detail, ms ?? performance.now() - r.started),
      fail: (detail) => end(red('✘'), detail, performance.now() - r.started),
      cancel: () => {
        if (ended) return
        ended = true
        this.running.delete(r)
        this.tick()
      },
    }
  }

  /** Runs `fn` as a step: ✔ with `describe(result)` when it resolves, ✘ when it throws. */
  async step<T>(
    label: string,
    fn: (step: Step) => Promise<T>,
    describe?: (r: T) => string | undefined,
    options: { announce?: boolean } = {},
  ): Promise<T> {
    const s = this.begin(label, options)
    try {
      const result = await fn(s)
      s.done(describe?.(result))
      return result
    } catch (err) {
      s.fail()
      throw err
    }
  }

  /** A finished step's line, for steps measured elsewhere. */
  done(label: string, ms: number, detail?: string): void {
    this.line(`${green('✔')} ${label.padEnd(LABEL_WIDTH)} ${fmtMs(ms).padStart(9)}${detail ? `  ${dim(detail)}` : ''}`)
  }

  /** A failed step's line. */
  failed(label: string, ms: number | undefined, detail?: string): void {
    this.line(`${red('✘')} ${label.padEnd(LABEL_WIDTH)} ${(ms === undefined ? '' : fmtMs(ms)).padStart(9)}${detail ? `  ${detail}` : ''}`)
  }

  /** A warning line. */
  warn(text: string): void {
    this.line(`${yellow('!')} ${text}`)
  }

  /** Stops the live line (call before printing with console.* directly). */
  pause(): void {
    this.clear()
  }

  private tick(): void {
    if (!this.tty) return
    if (this.running.size > 0 && !this.timer) {
      this.timer = setInterval(() => {
        this.frame++
        this.draw()
      }, 100)
      this.timer.unref()
    } else if (this.running.size === 0 && this.timer) {
      clearInterval(this.timer)
      this.timer = undefined
      this.clear()
    }
    this.draw()
  }

  private clear(): void {
    if (this.tty && this.drawn) {
      this.out.write('\r\x1b[K')
      this.drawn = false
    }
  }

  private draw(): void {
    if (!this.tty || this.running.size === 0) return
    const [first, ...rest] = [...this.running]
    const now = performance.now()
    const more = rest.length ? dim(` (+ ${rest.map((r) => r.label).join(', ')})`) : ''
    const note = first!.note ? `  ${dim(first!.note)}` : ''
    const columns = this.out.columns || 120
    // Keep to one line: a wrapped live line cannot be erased with \r.
    const text = `${cyan(FRAMES[this.frame % FRAMES.length]!)} ${first!.label.padEnd(LABEL_WIDTH)} ${dim(fmtMs(now - first!.started).padStart(9))}${note}${more}`
    this.out.write(`\r\x1b[K${truncateVisible(text, columns - 1)}`)
    this.drawn = true
  }
}

/** Cuts `s` to `width` visible characters, keeping escape codes (and resetting at the end). */
function truncateVisible(s: string, width: number): string {
  let visible = 0
  let out = ''
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\x1b') {
      const end = s.indexOf('m', i)
      if (end > 0) {
        out += s.slice(i, end + 1)
        i = end
        continue
      }
    }
    if (visible >= width) return `${out}\x1b[0m`
    out += s[i]
    visible++
  }
  return out
}
