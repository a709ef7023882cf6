/**
 * One running `server.py`: a managed child process (core/process.ts, its own process group) and the
 * Unix socket it talks over, in a private temporary directory that also holds its working files.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../../../core/errors.ts'
import { type ManagedProcess, startProcess } from '../../../core/process.ts'
import { ProverError } from '../ezkl-common/errors.ts'
import type { ServerHello, ServerReply, ServerRequest } from './protocol.ts'
import { EZKL_VERSION, isExecutable, SETUP_HINT } from './setup.ts'

export const PLUGIN_NAME = 'ezkl-native'
export const SERVER_SCRIPT = fileURLToPath(new URL('./server.py', import.meta.url))

/** A request without its id: the connection numbers them. */
export type Request = ServerRequest extends infer R ? (R extends ServerRequest ? Omit<R, 'id'> : never) : never

export interface StartOptions {
  readonly python: string
  /** Variables set (string) or removed (undefined) in the child's environment. */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly startTimeoutMs: number
}

interface Pending {
  readonly resolve: (r: ServerReply) => void
  readonly reject: (e: Error) => void
}

export class ServerConnection {
  readonly hello: ServerHello
  readonly #proc: ManagedProcess
  readonly #socket: Socket
  readonly #dir: string
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #closed: Error | null = null
  #cleanup: Promise<void> = Promise.resolve()
  #onClose: ((e: Error) => void) | null = null

  private constructor(proc: ManagedProcess, socket: Socket, dir: string, hello: ServerHello, rest: string) {
    this.#proc = proc
    this.#socket = socket
    this.#dir = dir
    this.hello = hello
    let buffer = rest
    socket.on('data', (chunk: string) => {
      buffer += chunk
      let nl = buffer.indexOf('\n')
      while (nl >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        if (line.trim().length > 0) this.#reply(line)
        nl = buffer.indexOf('\n')
      }
    })
    socket.on('error', () => {
      // 'close' follows, and the process's exit says more
    })
    // A dying server closes its socket just before it exits: give the exit (and its code) a moment to arrive.
    socket.on('close', () => setTimeout(() => this.#fail(this.#died('closed its connection')), 250).unref())
    void proc.exited.then((code) => this.#fail(this.#died(code === null ? 'was killed by a signal' : `exited with code ${code}`)))
    socket.resume()
  }

  /** The server's pid. */
  get pid(): number {
    return this.#proc.pid
  }

  /** The last lines the server printed. */
  output(): string {
    return this.#proc.output()
  }

  /**
   * Starts a server and waits for its hello.
   *
   * @throws {ConfigError} when the interpreter is missing, cannot import ezkl, or has another version
   * @throws {ProverError} (retryable) when it does not start for another reason
   */
  static async start(options: StartOptions): Promise<ServerConnection> {
    if (!(await isExecutable(options.python)))
      throw new ConfigError(`[${PLUGIN_NAME}] native ezkl is not installed: ${options.python} is not an executable python; ${SETUP_HINT}`)
    const dir = await mkdtemp(join(tmpdir(), 'sertn-ezkl-'))
    const socketPath = join(dir, 's')
    const listener = createServer()
    let proc: ManagedProcess | null = null
    try {
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject)
        listener.listen(socketPath, () => resolve())
      })
      const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' }
      for (const [k, v] of Object.entries(options.env)) {
        if (v === undefined) delete env[k]
        else env[k] = v
      }
      const started = startProcess({ name: PLUGIN_NAME, command: options.python, args: [SERVER_SCRIPT, socketPath, dir], env, cwd: dir })
      proc = started
      const { socket, hello, rest } = await handshake(listener, started, options.startTimeoutMs)
      if (hello.ezkl !== EZKL_VERSION) {
        socket.destroy()
        throw new ConfigError(
          `[${PLUGIN_NAME}] ${options.python} has ezkl ${hello.ezkl}, but proofs must be made with ezkl ${EZKL_VERSION}; ${SETUP_HINT}`,
        )
      }
      return new ServerConnection(started, socket, dir, hello, rest)
    } catch (e) {
      await proc?.stop(1000)
      await rm(dir, { recursive: true, force: true })
      throw e
    } finally {
      listener.close()
    }
  }

  /** Sends a request; resolves with its reply, rejects (retryable) if the server dies first. */
  request(req: Request): Promise<ServerReply> {
    if (this.#closed) return Promise.reject(this.#closed)
    const id = this.#nextId++
    return new Promise<ServerReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.#socket.write(`${JSON.stringify({ ...req, id })}\n`)
    })
  }

  /** Called once when the server dies or its connection closes (not after {@link stop}). */
  onClose(listener: (e: Error) => void): void {
    this.#onClose = listener
  }

  /** Stops the server (SIGTERM to its group, SIGKILL after a grace period) and removes its directory. */
  async stop(): Promise<void> {
    this.#onClose = null
    this.#fail(new ProverError(PLUGIN_NAME, 'the native prover process was stopped', { retryable: true }))
    await this.#cleanup
  }

  #reply(line: string): void {
    let msg: ServerReply
    try {
      msg = JSON.parse(line) as ServerReply
    } catch {
      this.#fail(new ProverError(PLUGIN_NAME, `the native prover sent a line that is not JSON: ${line.slice(0, 200)}`, { retryable: true }))
      return
    }
    if (msg.id === null) {
      // The server could not read a request: fail whatever is waiting.
      const message = msg.ok ? 'unreadable request' : msg.error.message
      for (const p of this.#drain())
        p.reject(new ProverError(PLUGIN_NAME, `the native prover refused a request: ${message}`, { retryable: true }))
      return
    }
    const pending = this.#pending.get(msg.id)
    if (!pending) return
    this.#pending.delete(msg.id)
    pending.resolve(msg)
  }

  #died(how: string): ProverError {
    const tail = this.#proc.output().split('\n').slice(-20).join('\n')
    return new ProverError(PLUGIN_NAME, `the native prover process (pid ${this.#proc.pid}) ${how}`, {
      retryable: true,
      ...(tail ? { details: tail } : {}),
    })
  }

  #fail(error: Error): void {
    if (this.#closed) return
    this.#closed = error
    for (const p of this.#drain()) p.reject(error)
    this.#socket.destroy()
    // Whether stopped or dead: kill what is left of its process group and remove its directory.
    this.#cleanup = this.#proc
      .stop(1000)
      .then(() => rm(this.#dir, { recursive: true, force: true }))
      .catch(() => undefined)
    const listener = this.#onClose
    this.#onClose = null
    listener?.(error)
  }

  #drain(): Pending[] {
    const all = [...this.#pending.values()]
    this.#pending.clear()
    return all
  }
}

/** Waits for the server to connect and say hello, or to exit, or for the timeout. */
async function handshake(
  listener: Server,
  proc: ManagedProcess,
  timeoutMs: number,
): Promise<{ socket: Socket; hello: ServerHello; rest: string }> {
  return new Promise((resolve, reject) => {
    let settled = false
    const done = (fn: () => void) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      fn()
    }
    const timer = setTimeout(
      () =>
        done(() =>
          reject(
            new ProverError(PLUGIN_NAME, `the native prover did not start within ${timeoutMs} ms`, {
              retryable: true,
              details: proc.output(),
            }),
          ),
        ),
      timeoutMs,
    )
    void proc.exited.then((code) =>
      done(() => {
        const output = proc.output()
        // 3: server.py could not import ezkl.
        if (code === 3) reject(new ConfigError(`[${PLUGIN_NAME}] the native prover cannot import ezkl; ${SETUP_HINT}`, { details: output }))
        else
          reject(
            new ProverError(PLUGIN_NAME, `the native prover exited with code ${code} while starting`, { retryable: true, details: output }),
          )
      }),
    )
    listener.once('connection', (socket) => {
      socket.setEncoding('utf8')
      let buffer = ''
      const onData = (chunk: string) => {
        buffer += chunk
        const nl = buffer.indexOf('\n')
        if (nl < 0) return
        socket.off('data', onData)
        socket.pause()
        const line = buffer.slice(0, nl)
        const rest = buffer.slice(nl + 1)
        let hello: ServerHello
        try {
          hello = JSON.parse(line) as ServerHello
          if (hello.type !== 'hello') throw new Error('not a hello')
        } catch {
          done(() =>
            reject(new ProverError(PLUGIN_NAME, `the native prover said ${line.slice(0, 200)} instead of hello`, { retryable: true })),
          )
          return
        }
        // Paused until the connection attaches its own reader, so that no reply is lost.
        done(() => resolve({ socket, hello, rest }))
      }
      socket.on('data', onData)
    })
  })
}
