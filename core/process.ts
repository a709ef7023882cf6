/**
 * Child processes that are always cleaned up: each runs in its own process group (so that wrappers
 * and their children die together), is stopped on `stop()`, and is killed if this process exits
 * without stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { SertnError } from './errors.ts'

export type ManagedProcess = {
  /** A short name for logs and errors. */
  readonly name: string
  readonly pid: number
  /** The last lines the process printed (stdout and stderr), for error messages. */
  output(): string
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>
  /** Resolves once the process has exited and its output has been read to the end (every line seen). */
  readonly closed: Promise<number | null>
  /** SIGTERM to the group, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>
}

export type StartProcessParameters = {
  name: string
  command: string
  args: string[]
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Print the process's output with a `[name]` prefix. */
  echo?: boolean
  /** Called with every line the process prints, as it prints it. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
}

/** A child process could not be started, or did not become ready. */
export class ProcessStartError extends SertnError {
  override name = 'ProcessStartError'
  /** The process exited before it was ready because a port it was given was taken meanwhile. */
  readonly portTaken: boolean

  constructor(shortMessage: string, options: { details?: string; cause?: unknown; portTaken?: boolean } = {}) {
    super(shortMessage, { ...options, retryable: true })
    this.portTaken = options.portTaken ?? false
  }
}

const live = new Set<ChildProcess>()
let hooked = false

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.once('exit', () => {
    for (const child of live) killGroup(child, 'SIGKILL')
  })
}

/**
 * Kills the child's process group if this process dies without stopping it (SIGKILL, a test
 * runner killing its worker): a detached shell polls both every second and exits once either is gone.
 */
function watchdog(childPid: number): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${childPid} 2>/dev/null; do sleep 1; done; kill -0 ${childPid} 2>/dev/null && kill -KILL -${childPid} 2>/dev/null; exit 0`
  try {
    spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref()
  } catch {
    // best effort: the exit hook still covers normal exits
  }
}

/** Starts `command` in a new process group. */
export function startProcess(params: StartProcessParameters): ManagedProcess {
  hookExit()
  const child = spawn(params.command, params.args, {
    cwd: params.cwd,
    env: params.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (child.pid === undefined) throw new ProcessStartError(`${params.name}: could not spawn ${params.command}`)
  live.add(child)
  watchdog(child.pid)
  const tail: string[] = []
  const read = (readable: NodeJS.ReadableStream | null, stream: 'stdout' | 'stderr') => {
    let partial = ''
    const take = (line: string) => {
      if (line.length === 0) return
      tail.push(line)
      if (tail.length > 50) tail.shift()
      if (params.echo) console.log(`[${params.name}] ${line}`)
      params.onLine?.(line, stream)
    }
    readable?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n')
      partial = lines.pop() ?? ''
      lines.forEach(take)
    })
    readable?.on('end', () => take(partial))
  }
  read(child.stdout, 'stdout')
  read(child.stderr, 'stderr')
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child)
      resolve(code)
    })
    child.once('error', (err) => {
      tail.push(String(err))
      live.delete(child)
      resolve(null)
    })
  })
  const closed = new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code))
    child.once('error', () => resolve(null))
  })
  const pid = child.pid
  return {
    name: params.name,
    pid,
    exited,
    closed,
    output: () => tail.join('\n'),
    async stop(graceMs = 3000) {
      if (!live.has(child)) return
      killGroup(child, 'SIGTERM')
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
      killGroup(child, 'SIGKILL') // anything left in the group
    },
  }
}

/** A TCP port on 127.0.0.1 that is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Polls `check` every `intervalMs` until it returns true, at most `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  { timeoutMs = 15_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new ProcessStartError(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

const PORT_TAKEN = /address already in use|EADDRINUSE/i

/**
 * Waits until the started process answers `check`, failing at once (with its last output) if it
 * exits first; on failure the process is stopped. `portTaken` on the error says that it died on a
 * port taken since `freePort` picked it, so that the caller may start it again on other ports.
 */
export async function waitForProcess(
  proc: ManagedProcess,
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  let exitCode: number | null | undefined
  void proc.exited.then((code) => (exitCode = code))
  try {
    await waitFor(what, async () => exitCode !== undefined || (await check()), options)
  } catch (err) {
    await proc.stop()
    throw new ProcessStartError(err instanceof Error ? err.message : String(err), {
      details: proc.output(),
      portTaken: PORT_TAKEN.test(proc.output()),
    })
  }
  if (exitCode !== undefined) {
    await proc.closed
    throw new ProcessStartError(`${proc.name} exited (code ${String(exitCode)}) before ${what} answered`, {
      details: proc.output(),
      portTaken: PORT_TAKEN.test(proc.output()),
    })
  }
}

/**
 * Runs `start` again (it should pick fresh ports with `freePort`) when it failed because a port was
 * taken between picking it and binding it: another process on the machine can win that race.
 */
export async function retryOnPortTaken<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start()
    } catch (err) {
      if (!(err instanceof ProcessStartError && err.portTaken) || attempt >= attempts) throw err
    }
  }
}
