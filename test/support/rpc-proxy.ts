/**
 * A TCP proxy on 127.0.0.1 in front of an RPC endpoint (anvil), that a test can close and open
 * again on the same port: an RPC provider's outage. Closing stops accepting and cuts every open
 * connection, so requests through it fail at once (connection refused, or reset mid-request).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export type RpcProxy = {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  readonly port: number
  /** Connections accepted so far. */
  readonly connections: number
  /** Stops listening and cuts every connection (resolves once the port is free). */
  close(): Promise<void>
  /** Listens again on the same port. */
  open(): Promise<void>
  /** Closes for good. */
  stop(): Promise<void>
}

/**
 * Starts a proxy to `127.0.0.1:targetPort` on a free port. `onRequest` sees each JSON-RPC request
 * that passes through (parsed from the HTTP bodies; a batch gives one call per request).
 */
export async function startRpcProxy(
  targetPort: number,
  o: { onRequest?: (request: { method: string; params: unknown[] }) => void } = {},
): Promise<RpcProxy> {
  const sockets = new Set<Socket>()
  let accepted = 0
  let port = 0
  let server: Server | undefined

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        accepted++
        const upstream = connect(targetPort, '127.0.0.1')
        for (const sock of [client, upstream]) {
          sockets.add(sock)
          sock.on('close', () => sockets.delete(sock))
          sock.on('error', () => {
            client.destroy()
            upstream.destroy()
          })
        }
        if (o.onRequest) client.on('data', (chunk: Buffer) => tap(chunk, o.onRequest!))
        client.pipe(upstream)
        upstream.pipe(client)
      })
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port
        server = s
        resolve()
      })
    })

  const close = async () => {
    const s = server
    server = undefined
    if (!s) return
    const closed = new Promise<void>((r) => s.close(() => r()))
    for (const sock of sockets) sock.destroy()
    sockets.clear()
    await closed
  }

  await listen()
  return {
    get url() {
      return `http://127.0.0.1:${port}`
    },
    get port() {
      return port
    },
    get connections() {
      return accepted
    },
    close,
    open: async () => {
      if (!server) await listen()
    },
    stop: close,
  }
}

/** The JSON-RPC calls in an HTTP request chunk (a whole small request on loopback; others are skipped). */
function tap(chunk: Buffer, onRequest: (request: { method: string; params: unknown[] }) => void) {
  const text = chunk.toString('utf8')
  const start = text.indexOf('\r\n\r\n')
  if (start < 0) return
  try {
    const body = JSON.parse(text.slice(start + 4)) as unknown
    for (const r of Array.isArray(body) ? body : [body]) {
      const call = r as { method?: unknown; params?: unknown }
      if (typeof call.method === 'string') onRequest({ method: call.method, params: Array.isArray(call.params) ? call.params : [] })
    }
  } catch {
    // a body split across chunks: not tapped
  }
}
