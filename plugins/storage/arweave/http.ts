/**
 * HTTP to an Arweave node or gateway (or arlocal): every request has a time limit and is aborted
 * when the plugin is disposed, and every failure becomes a PluginError that says whether a retry
 * may pass. The arweave-js client is used only to build and sign transactions: its own HTTP calls
 * have no time limit and its uploader waits 40 s between retries.
 */
import { PluginError } from '../../../core/errors.ts'

export type GatewayParameters = {
  /** The plugin's name, for errors. */
  plugin: string
  /** `protocol://host:port`, without a trailing slash. */
  baseUrl: string
  /** Time limit of one request. */
  timeoutMs: number
  /** Aborted when the plugin is disposed. */
  disposed: AbortSignal
}

export type GatewayResponse = {
  status: number
  body: Uint8Array
}

export type GatewayRequest = {
  method?: 'GET' | 'POST'
  /** Sent as JSON. */
  json?: unknown
  /** What the call is for, in errors ("post transaction abc…"). */
  what: string
  /** Statuses returned to the caller instead of thrown (2xx always are). */
  accept?: readonly number[]
}

/** Whether a failed HTTP status may pass on retry: not found yet, throttled, timed out, server trouble. */
export function retryableStatus(status: number): boolean {
  return status === 404 || status === 408 || status === 425 || status === 429 || status >= 500
}

/** A client for one gateway. */
export class Gateway {
  constructor(private readonly params: GatewayParameters) {}

  get baseUrl(): string {
    return this.params.baseUrl
  }

  /** Sends one request; throws PluginError on a network failure, a time-out or an unaccepted status. */
  async request(path: string, request: GatewayRequest): Promise<GatewayResponse> {
    const { plugin, baseUrl, timeoutMs, disposed } = this.params
    if (disposed.aborted) throw disposedError(plugin)
    const signal = AbortSignal.any([disposed, AbortSignal.timeout(timeoutMs)])
    const url = `${baseUrl}${path}`
    let res: Response
    let body: Uint8Array
    try {
      res = await fetch(url, {
        method: request.method ?? 'GET',
        signal,
        ...(request.json === undefined ? {} : { body: JSON.stringify(request.json), headers: { 'content-type': 'application/json' } }),
      })
      body = new Uint8Array(await res.arrayBuffer())
    } catch (err) {
      if (disposed.aborted) throw disposedError(plugin)
      const timedOut = signal.aborted
      throw new PluginError(plugin, `${request.what}: ${timedOut ? `no answer within ${timeoutMs} ms` : 'network failure'}`, {
        details: `${request.method ?? 'GET'} ${url}: ${describe(err)}`,
        cause: err,
        retryable: true,
      })
    }
    if ((res.status >= 200 && res.status < 300) || request.accept?.includes(res.status)) return { status: res.status, body }
    throw new PluginError(plugin, `${request.what}: HTTP ${res.status}`, {
      details: `${request.method ?? 'GET'} ${url} answered ${res.status} ${res.statusText}: ${snippet(body)}`,
      retryable: retryableStatus(res.status),
    })
  }

  /** GET `path` and return its body as text. */
  async text(path: string, what: string): Promise<string> {
    return new TextDecoder().decode((await this.request(path, { what })).body)
  }

  /** POST `json` to `path` and return the parsed JSON answer. */
  async postJson(path: string, json: unknown, what: string): Promise<unknown> {
    const { body } = await this.request(path, { method: 'POST', json, what })
    try {
      return JSON.parse(new TextDecoder().decode(body)) as unknown
    } catch (err) {
      throw new PluginError(this.params.plugin, `${what}: the answer is not JSON`, { details: snippet(body), cause: err, retryable: true })
    }
  }
}

/** The error of any call made after `dispose()`. */
export function disposedError(plugin: string): PluginError {
  return new PluginError(plugin, 'the storage plugin has been disposed', { retryable: false })
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : ''
  return `${err.message}${cause}`
}

/** The start of a response body, for error details. */
function snippet(body: Uint8Array): string {
  const text = new TextDecoder().decode(body.subarray(0, 300)).replace(/\s+/g, ' ').trim()
  return body.byteLength > 300 ? `${text}…` : text || '(empty body)'
}
