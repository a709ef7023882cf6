/**
 * onnxruntime plugin: runs a model's float network (network.onnx) on the CPU, as the reference the
 * circuit's quantised outputs are compared against.
 */
import ort from 'onnxruntime-node'
import { checkRealInput, shapeSize } from '../../../core/input.ts'
import type { ModelArtifacts } from '../../../core/manifest.ts'

import { defineRuntimePlugin, type RuntimePlugin } from '../../../core/plugins.ts'
export { InputOutOfRangeError, InputShapeError } from '../../../core/input.ts'

/** onnxruntime failed to load the model or to run it. */
export class OnnxRuntimeError extends Error {
  override readonly name = 'OnnxRuntimeError'
  readonly retryable: boolean = false
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
  }
}

/** The runtime was disposed; it accepts no more calls. */
export class OnnxRuntimeDisposedError extends Error {
  override readonly name = 'OnnxRuntimeDisposedError'
  readonly retryable: boolean = false
  constructor() {
    super('the onnx runtime has been disposed')
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
    const s = await session(artifacts)
    const [inputName] = s.inputNames
    const [outputName] = s.outputNames
    if (inputName === undefined || outputName === undefined || s.inputNames.length !== 1)
      throw new OnnxRuntimeError(`${manifest.name}/network.onnx must have exactly one input and an output`)
    const tensor = new ort.Tensor('float32', Float32Array.from(input), [...manifest.inputShape])
    const t0 = performance.now()
    let result: ort.InferenceSession.ReturnType
    try {
      result = await s.run({ [inputName]: tensor })
    } catch (e) {
      throw new OnnxRuntimeError(`onnxruntime failed on ${manifest.name}: ${describe(e)}`, e)
    }
    const ms = performance.now() - t0
    const out = result[outputName]
    if (!out || !(out.data instanceof Float32Array))
      throw new OnnxRuntimeError(`${manifest.name}/network.onnx did not return a float32 "${outputName}"`)
    const output = Array.from(out.data)
    const expected = shapeSize(manifest.outputShape)
    if (output.length !== expected)
      throw new OnnxRuntimeError(`${manifest.name}/network.onnx returned ${output.length} outputs, the manifest says ${expected}`)
    return { output, ms }
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

/** The onnxruntime-node (CPU) runtime as a plugin. */
export const onnxRuntime = defineRuntimePlugin(() => createOnnxRuntime())

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
