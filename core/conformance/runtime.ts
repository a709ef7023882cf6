/**
 * The conformance suite of RuntimePlugin: identity and flags, outputs of the manifest's shape,
 * agreement with the circuit (the runtime's outputs are within the manifest's fidelity tolerance
 * of the outputs the circuit computes, which are what a proof will prove), determinism, concurrent
 * runs of two models, the input checks (shape, range, non-finite values) as the non-retryable
 * errors of core/input.ts, and dispose.
 *
 * @example
 * // test/conformance/runtime-onnx.test.ts
 * testRuntimePlugin({ name: 'onnx', create: () => onnxRuntime() })
 *
 * The circuit's outputs come from a prover's witness (no proof is made): by default the WASM ezkl
 * prover of this repository, loaded only when the suite runs.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PluginError } from '../errors.ts'
import { dequantize, quantize } from '../field.ts'
import { InputOutOfRangeError, InputShapeError, shapeSize } from '../input.ts'
import { loadModelArtifacts, type ModelArtifacts, modelDir } from '../manifest.ts'
import type { ProverPlugin, RuntimePlugin } from '../plugins.ts'

export interface RuntimeConformanceOptions {
  /** The plugin's name (`RuntimePlugin.name`), also the suite's title. */
  readonly name: string
  /** A fresh instance; the suite disposes every instance it creates. */
  readonly create: () => Promise<RuntimePlugin> | RuntimePlugin
  /**
   * Two model directories (manifest, artifacts and a `samples.json` of `{ input_data: [[…]] }`)
   * whose float networks the runtime runs (default: the committed sertn-mlp-demo and sertn-mlp-twin).
   */
  readonly models?: readonly [string, string]
  /** Samples of each model compared with the circuit (default 4). */
  readonly samples?: number
  /** The prover whose witness gives the circuit's outputs (default: the WASM ezkl prover). */
  readonly reference?: () => Promise<ProverPlugin> | ProverPlugin
  /** Runs after every instance is disposed, even when the suite failed. */
  readonly cleanup?: () => Promise<void>
}

interface Model {
  readonly artifacts: ModelArtifacts
  /** Real-valued sample inputs, on the input grid (exactly what their quantised form stands for). */
  readonly inputs: number[][]
  /** The circuit's outputs for them, dequantised. */
  readonly circuit: number[][]
}

/** Declares the suite (a vitest `describe`) for one runtime plugin. */
export function testRuntimePlugin(options: RuntimeConformanceOptions): void {
  describe(`RuntimePlugin conformance: ${options.name}`, () => {
    const created: RuntimePlugin[] = []
    let runtime: RuntimePlugin
    let models: [Model, Model]
    const create = async (): Promise<RuntimePlugin> => {
      const p = await options.create()
      created.push(p)
      return p
    }

    beforeAll(async () => {
      const dirs = options.models ?? [modelDir('sertn-mlp-demo'), modelDir('sertn-mlp-twin')]
      const prover = await (options.reference ?? defaultReference)()
      try {
        const loaded = await Promise.all(dirs.map((dir) => loadModel(dir, options.samples ?? 4, prover)))
        models = [loaded[0]!, loaded[1]!]
      } finally {
        await prover.dispose()
      }
      runtime = await create()
    })

    afterAll(async () => {
      try {
        await Promise.allSettled(created.map((p) => p.dispose()))
      } finally {
        await options.cleanup?.()
      }
    })

    it('default: a runtime plugin with boolean flags', () => {
      expect(runtime.kind).toBe('runtime')
      expect(runtime.name).toBe(options.name)
      expect(runtime.flags.gpu).toBeTypeOf('boolean')
      expect(runtime.dispose).toBeTypeOf('function')
    })

    it("default: the output has the manifest's output shape, finite numbers, and a run time", async () => {
      for (const m of models) {
        const r = await runtime.run(m.artifacts, m.inputs[0]!)
        expect(r.output).toHaveLength(shapeSize(m.artifacts.manifest.outputShape))
        for (const y of r.output) expect(Number.isFinite(y)).toBe(true)
        expect(Number.isFinite(r.ms)).toBe(true)
        expect(r.ms).toBeGreaterThanOrEqual(0)
      }
    })

    it("behavior: outputs are within the manifest's fidelity tolerance of the circuit's, sample by sample", async () => {
      for (const m of models) {
        const tolerance = m.artifacts.manifest.fidelity.tolerance
        for (const [i, input] of m.inputs.entries()) {
          const { output } = await runtime.run(m.artifacts, input)
          const worst = Math.max(...output.map((y, j) => Math.abs(y - m.circuit[i]![j]!)))
          expect(worst, `${m.artifacts.manifest.name} sample ${i}: ${output} against the circuit's ${m.circuit[i]}`).toBeLessThanOrEqual(
            tolerance,
          )
        }
      }
    })

    it('behavior: the same input gives the same output', async () => {
      const [m] = models
      const a = await runtime.run(m.artifacts, m.inputs[1] ?? m.inputs[0]!)
      const b = await runtime.run(m.artifacts, m.inputs[1] ?? m.inputs[0]!)
      expect(b.output).toEqual(a.output)
    })

    it('behavior: concurrent runs of two models give what runs one at a time give', async () => {
      const jobs = models.flatMap((m) => m.inputs.map((input) => ({ m, input })))
      const sequential: number[][] = []
      for (const j of jobs) sequential.push((await runtime.run(j.m.artifacts, j.input)).output)
      const concurrent = await Promise.all(jobs.map(async (j) => (await runtime.run(j.m.artifacts, j.input)).output))
      expect(concurrent).toEqual(sequential)
    })

    it('error: an input of the wrong length throws InputShapeError (not retryable)', async () => {
      const [m] = models
      for (const input of [m.inputs[0]!.slice(1), [...m.inputs[0]!, 0], []]) {
        const err = await runtime.run(m.artifacts, input).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(InputShapeError)
        expect(err).toMatchObject({ retryable: false })
      }
    })

    it("error: a value beyond the model's input bound, or not finite, throws InputOutOfRangeError (not retryable)", async () => {
      const [m] = models
      const bound = m.artifacts.manifest.maxAbsInput / 2 ** m.artifacts.manifest.inputScale
      for (const bad of [bound * 2, -bound * 2, Number.NaN, Number.POSITIVE_INFINITY]) {
        const input = [...m.inputs[0]!]
        input[input.length - 1] = bad
        const err = await runtime.run(m.artifacts, input).catch((e: unknown) => e)
        expect(err, String(bad)).toBeInstanceOf(InputOutOfRangeError)
        expect(err).toMatchObject({ retryable: false })
      }
    })

    it('error: after dispose, run rejects with PluginError; dispose is idempotent; other instances are not affected', async () => {
      const [m] = models
      const p = await create()
      await p.run(m.artifacts, m.inputs[0]!)
      await p.dispose()
      await expect(p.run(m.artifacts, m.inputs[0]!)).rejects.toBeInstanceOf(PluginError)
      await p.dispose()
      expect((await runtime.run(m.artifacts, m.inputs[0]!)).output).toHaveLength(shapeSize(m.artifacts.manifest.outputShape))
    })
  })
}

/** The WASM ezkl prover, imported only when a suite without its own reference runs. */
async function defaultReference(): Promise<ProverPlugin> {
  const { ezklWasmProver } = await import('../../plugins/provers/ezkl-wasm/index.ts')
  return ezklWasmProver()
}

/** A model's first `count` samples on the input grid, with the circuit's outputs for them. */
async function loadModel(dir: string, count: number, prover: ProverPlugin): Promise<Model> {
  const artifacts = await loadModelArtifacts(dir, { allowInsecureSrs: true })
  const { inputScale, outputScale, inputShape } = artifacts.manifest
  const samples = JSON.parse(await readFile(join(dir, 'samples.json'), 'utf8')) as { input_data: number[][] }
  const flat = samples.input_data.flat()
  const n = shapeSize(inputShape)
  const inputs: number[][] = []
  const circuit: number[][] = []
  for (let at = 0; at + n <= flat.length && inputs.length < count; at += n) {
    const q = flat.slice(at, at + n).map((x) => quantize(x, inputScale))
    // What a request carries is quantised: the runtime gets its dequantised values, as the workflow gives them.
    inputs.push(q.map((v) => dequantize(v, inputScale)))
    circuit.push((await prover.witness(artifacts, q)).output.map((v) => dequantize(v, outputScale)))
  }
  if (inputs.length === 0) throw new Error(`${dir}/samples.json has no sample of ${n} values`)
  return { artifacts, inputs, circuit }
}
