/**
 * A worker thread running the @ezkljs/engine WebAssembly build, which is synchronous and
 * single-threaded. Plain JavaScript on purpose: it loads unchanged under vitest, tsx and node.
 *
 * Protocol (see protocol.ts for the types): the pool posts `load` (cache a model's artifacts under
 * a key: its contentHash, with the proving key or without), `evict`, and `job` (one engine call
 * against a cached model: witness, prove, verify, or setup, which derives the verifying and proving
 * keys from the compiled circuit and the SRS); each job gets one `result`. After a WebAssembly trap the instance's state is undefined, so the worker replies and
 * exits; the pool starts a fresh one.
 */
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { parentPort } from 'node:worker_threads'

const require = createRequire(import.meta.url)

/**
 * @typedef {{ compiled: Uint8Array, pk?: Uint8Array, vk: Uint8Array, settings: Uint8Array, srs: Uint8Array }} ArtifactBundle
 * @typedef {{ compiled: Uint8ClampedArray, pk?: Uint8ClampedArray, vk: Uint8ClampedArray, settings: Uint8ClampedArray, srs: Uint8ClampedArray }} EngineArtifacts
 * @typedef {{ genWitness(compiled: Uint8ClampedArray, input: Uint8ClampedArray): Uint8Array,
 *             prove(witness: Uint8ClampedArray, pk: Uint8ClampedArray, compiled: Uint8ClampedArray, srs: Uint8ClampedArray): Uint8Array,
 *             verify(proof: Uint8ClampedArray, vk: Uint8ClampedArray, settings: Uint8ClampedArray, srs: Uint8ClampedArray): boolean,
 *             genVk(compiled: Uint8ClampedArray, srs: Uint8ClampedArray, compressSelectors: boolean): Uint8Array,
 *             genPk(vk: Uint8ClampedArray, compiled: Uint8ClampedArray, srs: Uint8ClampedArray): Uint8Array,
 *             init_panic_hook(): void }} Engine
 * @typedef {{ type: 'load', key: string, artifacts: ArtifactBundle }
 *         | { type: 'evict', key: string }
 *         | { type: 'job', id: number, op: 'witness' | 'prove' | 'verify' | 'setup', key: string, payload: Uint8Array }} WorkerRequest
 */

if (!parentPort) throw new Error('worker.mjs must run in a worker thread')
const port = parentPort

// The panic hook reports a Rust panic's message (and a JS stack) through console.error just before
// the trap. Keep it for the trap's reply instead of printing it; pass other output through.
let lastPanic = ''
const consoleError = console.error.bind(console)
console.error = (...args) => {
  const text = args.map(String).join(' ')
  if (text.includes('panicked at')) lastPanic = text.split('\n\nStack:')[0]?.trim() ?? text
  else consoleError(...args)
}

/** @type {Engine} */
const engine = require('@ezkljs/engine')
engine.init_panic_hook()

/** @type {Map<string, EngineArtifacts>} */
const cache = new Map()

/** @param {Uint8Array} bytes */
const clamped = (bytes) => new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** @param {unknown} e */
const messageOf = (e) => (e instanceof Error ? e.message : String(e))

port.on('message', (/** @type {WorkerRequest} */ msg) => {
  if (msg.type === 'load') {
    /** @type {ArtifactBundle} */
    const a = msg.artifacts
    cache.set(msg.key, {
      compiled: clamped(a.compiled),
      ...(a.pk ? { pk: clamped(a.pk) } : {}),
      vk: clamped(a.vk),
      settings: clamped(a.settings),
      srs: clamped(a.srs),
    })
    return
  }
  if (msg.type === 'evict') {
    cache.delete(msg.key)
    return
  }
  if (msg.type === 'job') {
    runJob(msg.id, msg.op, msg.key, msg.payload)
    return
  }
  consoleError(`ezkl-wasm worker: unknown message ${JSON.stringify(msg)}`)
})

/**
 * @param {number} id
 * @param {'witness' | 'prove' | 'verify' | 'setup'} op
 * @param {string} key
 * @param {Uint8Array} payload
 */
function runJob(id, op, key, payload) {
  const a = cache.get(key)
  if (!a) {
    port.postMessage({ type: 'result', id, ok: false, error: { kind: 'protocol', message: `no artifacts loaded for ${key}` }, ms: 0 })
    return
  }
  const input = clamped(payload)
  lastPanic = ''
  const t0 = performance.now()
  try {
    /** @type {Uint8Array | boolean | { vk: Uint8Array, pk: Uint8Array }} */
    let value
    if (op === 'witness') value = engine.genWitness(a.compiled, input)
    else if (op === 'prove') {
      if (!a.pk) {
        port.postMessage({ type: 'result', id, ok: false, error: { kind: 'protocol', message: `no proving key loaded for ${key}` }, ms: 0 })
        return
      }
      value = engine.prove(input, a.pk, a.compiled, a.srs)
    } else if (op === 'verify') value = engine.verify(input, a.vk, a.settings, a.srs)
    else if (op === 'setup') {
      const vk = engine.genVk(a.compiled, a.srs, true)
      value = { vk, pk: engine.genPk(clamped(vk), a.compiled, a.srs) }
    } else {
      port.postMessage({ type: 'result', id, ok: false, error: { kind: 'protocol', message: `unknown op ${String(op)}` }, ms: 0 })
      return
    }
    const ms = performance.now() - t0
    const buffers = value instanceof Uint8Array ? [value] : typeof value === 'object' ? [value.vk, value.pk] : []
    const transfer = buffers.filter((b) => b.buffer instanceof ArrayBuffer).map((b) => b.buffer)
    port.postMessage({ type: 'result', id, ok: true, value, ms }, transfer)
  } catch (e) {
    const ms = performance.now() - t0
    if (e instanceof WebAssembly.RuntimeError) {
      const panic = lastPanic ? `: ${lastPanic.replace(/\s+/g, ' ')}` : ''
      port.postMessage({ type: 'result', id, ok: false, error: { kind: 'trap', message: `engine trapped (${e.message})${panic}` }, ms })
      // The instance may be corrupt: leave, and let the pool start a fresh worker.
      setImmediate(() => process.exit(1))
      return
    }
    port.postMessage({ type: 'result', id, ok: false, error: { kind: 'engine', message: messageOf(e) }, ms })
  }
}
