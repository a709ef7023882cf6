/**
 * onnxruntime plugin: runs a model's float network (network.onnx) on the CPU, as the reference the
 * circuit's quantised outputs are compared against.
 */
import ort from 'onnxruntime-node'
import { PluginError, SertnError } from '../../../core/errors.ts'
import { checkRealInput, shapeSize } from '../../../core/input.ts'
import type { ModelArtifacts, TensorSpec } from '../../../core/manifest.ts'

import { defineRuntimePlugin, type RuntimePlugin } from '../../../core/plugins.ts'
export { InputOutOfRangeError, InputShapeError } from '../../../core/input.ts'

/** onnxruntime failed to load the model or to run it. */
export class OnnxRuntimeError extends SertnError {
  override name = 'OnnxRuntimeError'
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? {} : { cause })
  }
}

/** The runtime was disposed; it accepts no more calls (a PluginError, as the plugin contract says). */
export class OnnxRuntimeDisposedError extends PluginError {
  override name = 'OnnxRuntimeDisposedError'
  constructor() {
    super('onnx', 'the runtime has been disposed; create a new one')
  }
}

export interface OnnxRunResult {
  /** The model's output, flattened row-major. */
  readonly output: number[]
  /** Time spent in session.run, in milliseconds (session creation excluded). */
  readonly ms: number
}

export interface OnnxRuntime extends RuntimePlugin {
  /**
   * Runs the model on a real-valued input, flattened row-major (float32 precision).
   *
   * @throws {InputShapeError} when the length does not match the model's input shape
   * @throws {InputOutOfRangeError} when some |x| exceeds the model's input bound, or x is not finite
   * @throws {OnnxRuntimeError} when onnxruntime fails
   */
  run(artifacts: ModelArtifacts, input: readonly number[]): Promise<OnnxRunResult>
  /** Releases every cached session. */
  dispose(): Promise<void>
}

/** Creates a runtime that keeps one CPU inference session per model (keyed by contentHash). */
export function createOnnxRuntime(): OnnxRuntime {
  const sessions = new Map<string, Promise<ort.InferenceSession>>()
  let disposed = false

  function session(artifacts: ModelArtifacts): Promise<ort.InferenceSession> {
    let s = sessions.get(artifacts.contentHash)
    if (!s) {
      s = ort.InferenceSession.create(artifacts.onnx, { executionProviders: ['cpu'] }).catch((e: unknown) => {
        sessions.delete(artifacts.contentHash)
        throw new OnnxRuntimeError(`cannot load ${artifacts.manifest.name}/network.onnx: ${describe(e)}`, e)
      })
      sessions.set(artifacts.contentHash, s)
    }
    return s
  }

  async function run(artifacts: ModelArtifacts, input: readonly number[]): Promise<OnnxRunResult> {
    if (disposed) throw new OnnxRuntimeDisposedError()
    const { manifest } = artifacts
    checkRealInput(manifest, input)
    const r = await evaluate(await session(artifacts), manifest.name, manifest.inputs, input)
    const expected = shapeSize(manifest.outputShape)
    if (r.output.length !== expected)
      throw new OnnxRuntimeError(`${manifest.name}/network.onnx returned ${r.output.length} outputs, the manifest says ${expected}`)
    return r
  }

  async function dispose(): Promise<void> {
    if (disposed) return
    disposed = true
    const all = [...sessions.values()]
    sessions.clear()
    await Promise.all(all.map(async (s) => (await s.catch(() => null))?.release()))
  }

  return { kind: 'runtime', name: 'onnx', flags: { gpu: false }, run, dispose }
}

/**
 * Runs a graph once: `input` is its inputs' elements concatenated (each tensor flattened row-major),
 * split by `inputs`' shapes; the result is its outputs' elements concatenated, in graph order.
 */
async function evaluate(
  s: ort.InferenceSession,
  label: string,
  inputs: readonly TensorSpec[],
  input: readonly number[],
): Promise<OnnxRunResult> {
  if (s.inputNames.length !== inputs.length)
    throw new OnnxRuntimeError(`${label}: the graph has ${s.inputNames.length} inputs, ${inputs.length} were described`)
  const feeds: Record<string, ort.Tensor> = {}
  let at = 0
  inputs.forEach((spec, i) => {
    const n = shapeSize(spec.shape)
    feeds[s.inputNames[i] as string] = new ort.Tensor('float32', Float32Array.from(input.slice(at, at + n)), [...spec.shape])
    at += n
  })
  if (at !== input.length) throw new OnnxRuntimeError(`${label}: the input has ${input.length} elements, the graph's inputs ${at}`)
  const t0 = performance.now()
  let result: ort.InferenceSession.ReturnType
  try {
    result = await s.run(feeds)
  } catch (e) {
    throw new OnnxRuntimeError(`onnxruntime failed on ${label}: ${describe(e)}`, e)
  }
  const ms = performance.now() - t0
  const output: number[] = []
  for (const name of s.outputNames) {
    const out = result[name]
    if (!out) throw new OnnxRuntimeError(`${label} did not return its output "${name}"`)
    // Labels come out as integers (argmax, casts); the circuit gives them as numbers alike.
    output.push(...Array.from(out.data as ArrayLike<number | bigint>, Number))
  }
  return { output, ms }
}

/**
 * Runs an ONNX graph (not yet a built model) on each of `samples` with onnxruntime: the reference
 * outputs `sertn model build` measures the circuit against.
 */
export async function runOnnxGraph(
  onnx: Uint8Array,
  inputs: readonly TensorSpec[],
  samples: readonly (readonly number[])[],
): Promise<number[][]> {
  let s: ort.InferenceSession
  try {
    s = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'] })
  } catch (e) {
    throw new OnnxRuntimeError(`onnxruntime cannot load the model: ${describe(e)}`, e)
  }
  try {
    const out: number[][] = []
    for (const sample of samples) out.push((await evaluate(s, 'the model', inputs, sample)).output)
    return out
  } finally {
    await s.release()
  }
}

/** The onnxruntime-node (CPU) runtime as a plugin. */
export const onnxRuntime = defineRuntimePlugin(() => createOnnxRuntime())

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
