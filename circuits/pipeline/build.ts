/**
 * `sertn model build`: turns an ONNX model and sample inputs into a Sertn model directory.
 *
 * The native ezkl 21.0.0 does the circuit work (`ezkl_driver.py`: a sizing search over run
 * arguments, then settings, compile, setup, a sample proof, the VKA); this module gives it the
 * reference outputs (onnxruntime, the runtime nodes use), then measures what a model creator must
 * know before registering: the proof checked again by the WASM engine with its timings, the verify
 * gas of the reusable verifier on anvil, sizes, and the output error on every sample. It writes the
 * manifest (every file pinned by sha256; no proving key: provers derive it) and a report.
 *
 * @example
 * const report = await buildModel({ onnx: 'model.onnx', samples: 'input.json', name: 'my-model', outDir: 'circuits/my-model', tolerance: 0.01 })
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeFunctionData, keccak256, parseAbi, type Hex } from 'viem'
import { SertnError } from '../../core/errors.ts'
import { quantize } from '../../core/field.ts'
import { shapeSize } from '../../core/input.ts'
import {
  loadModelArtifacts,
  MANIFEST_SCHEMA,
  provingMemoryFor,
  sha256Hex,
  type ModelManifest,
  type TensorSpec,
  type Visibility,
} from '../../core/manifest.ts'
import { startProcess } from '../../core/process.ts'
import { compileSolidity, VKA_SOLC_SETTINGS } from '../../contracts/solc.ts'
import { createProvingKeyStore } from '../../plugins/provers/ezkl-common/keys.ts'
import { ensureNativeEzkl } from '../../plugins/provers/ezkl-native/index.ts'
import { createEzklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'
import { OnnxRuntimeError, runOnnxGraph } from '../../plugins/runtimes/onnx/index.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const DRIVER = join(HERE, 'ezkl_driver.py')
/** The reusable verifier every model on a chain shares (a circuit needing another one is refused). */
export const REUSABLE_VERIFIER = resolve(HERE, '..', 'verifier', 'Halo2VerifierReusable.sol')
/** Where locally generated SRS files are kept and reused, one per logrows. */
export const DEFAULT_SRS_DIR = resolve(HERE, '..', 'srs')
/** The most values a row may hold for `rowCorners` (2^8 corners). */
export const MAX_ROW_CORNER_VALUES = 8

/**
 * Samples whose rows go through every corner of a row's box (each value of a row at ±bound), the
 * rows of each input being its first dimension; none where a row holds more than
 * {@link MAX_ROW_CORNER_VALUES} values.
 */
export function rowCornerSamples(inputs: readonly TensorSpec[], bound: number): number[][][] {
  const rows = inputs[0]?.shape[0] ?? 0
  if (rows < 1 || inputs.some((t) => t.shape[0] !== rows)) return []
  const perRow = inputs.map((t) => shapeSize(t.shape) / rows)
  const values = perRow.reduce((a, b) => a + b, 0)
  if (values > MAX_ROW_CORNER_VALUES) return []
  const corners = 2 ** values
  const samples: number[][][] = []
  for (let first = 0; first < corners; first += rows)
    samples.push(
      inputs.map((_, i) => {
        const before = perRow.slice(0, i).reduce((a, b) => a + b, 0)
        const out: number[] = []
        for (let r = 0; r < rows; r++) {
          const corner = (first + r) % corners
          for (let v = 0; v < perRow[i]!; v++) out.push(((corner >> (before + v)) & 1) === 1 ? -bound : bound)
        }
        return out
      }),
    )
  return samples
}

/** The largest tensor (public instances) a registry accepts; a larger input must be hashed. */
export const MAX_PUBLIC_ELEMENTS = 1024

export type Target = 'accuracy' | 'resources'

/** The run arguments the sizing search tries (every combination of the layout ones). */
export type SearchSpace = {
  /** Input and param scales, tried in increasing order. */
  scales: number[]
  /** Range-check decompositions [base, legs]. */
  decomps: [number, number][]
  /** num_inner_cols values. */
  columns: number[]
  /** Lookup safety margins (how far lookup tables reach beyond the calibrated range). */
  lookupMargins: number[]
}

export type BuildModelParameters = {
  /** The ONNX file. */
  onnx: string
  /** Sample inputs in EZKL's format: `{"input_data": [[...], ...]}`, one flat list per model input holding N samples one after another. */
  samples: string
  /** The model's name (its registry name): letters, digits, `.`, `_`, `-`. */
  name: string
  /** Where the model directory is written (created or overwritten). */
  outDir: string
  description?: string
  /** The largest acceptable |circuit output − onnxruntime output| over the samples (default 0.01). */
  tolerance?: number
  /** resources (default): the smallest circuit within the tolerance; accuracy: the smallest error. */
  target?: Target
  visibility?: { input?: Visibility; output?: Visibility }
  /** |x| ≤ inputBound is what requests may carry (default: the largest |x| among the samples). */
  inputBound?: number
  /** Sizes of named (symbolic) dimensions, e.g. { batch_size: 1 } (the default). */
  variables?: Record<string, number>
  /**
   * Calibrate at every corner of a row's input box as well (each of its values at +bound or
   * −bound), for a graph whose first dimension is its rows (a batch circuit) and whose rows hold at
   * most {@link MAX_ROW_CORNER_VALUES} values: a layer's largest values lie at such corners, not
   * only at the two where every value has the same sign.
   */
  rowCorners?: boolean
  search?: Partial<SearchSpace>
  /** Folder of locally generated SRS files (default circuits/srs). */
  srsDir?: string
  /** The largest circuit to try (default: what this machine's memory can set up). */
  maxLogrows?: number
  /** Measure the WASM engine too (default true). */
  measure?: { wasm?: boolean }
  onEvent?: (event: BuildEvent) => void
}

/** A run-argument candidate the search tried. */
export type Candidate = {
  stage: 'scale' | 'layout'
  scale: number
  decompBase?: number
  decompLegs?: number
  columns?: number
  lookupMargin?: number
  ok: boolean
  logrows?: number
  rows?: number
  maxAbsError?: number
  reason?: string
  ms: number
}

export type BuildEvent =
  | { type: 'progress'; step: string; message: string; index?: number; total?: number }
  | ({ type: 'candidate' } & Candidate)
  | { type: 'step-done'; step: string; ms: number; detail: string }

/** Why a build stopped: `code` as the driver names it (unsupported-operator, dynamic-shape, too-large, …). */
export class ModelBuildError extends SertnError {
  override name = 'ModelBuildError'
  constructor(
    readonly code: string,
    message: string,
    options: { details?: string; cause?: unknown } = {},
  ) {
    super(message, options)
  }
}

export type BuildReport = {
  name: string
  dir: string
  manifest: ModelManifest
  /** sha256 of manifest.json: the model's artifacts hash on-chain. */
  artifactsHash: Hex
  candidates: Candidate[]
  chosen: ModelManifest['runArgs']
  layout: { logrows: number; rows: number; columns: number; totalAssignments: number; advicePerRow: number; lookupRange: [number, number] }
  sizes: { pk: number; vk: number; proof: number; compiled: number; srs: number; vkaRuntime: number }
  native: { setupMs: number; witnessMs: number; proveMs: number; verifyMs: number }
  wasm?: { witnessMs: number; proveMs: number; verifyMs: number; verifiesNativeProof: boolean }
  /** Gas of a transaction calling the reusable verifier with the model's VKA on anvil. */
  verifyGas: number
  fidelity: {
    samples: number
    tolerance: number
    maxAbsError: number
    meanAbsError: number
    perSample: number[]
    reference: 'onnxruntime' | 'onnx.reference'
  }
  /** Whether the model fits a registry (public tensors ≤ MAX_PUBLIC_ELEMENTS); why not otherwise. */
  registrable: { ok: boolean; reason?: string }
  srs: { file: string; logrows: number; generated: boolean }
  peakRssBytes: number
  machine: { cpus: number; memoryBytes: number }
  totalMs: number
}

type Inspected = {
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  operators: Record<string, number>
  parameters: number
}

type Built = {
  runArgs: ModelManifest['runArgs'] & { inputVisibility: Visibility; outputVisibility: Visibility }
  layout: BuildReport['layout']
  inputScales: number[]
  outputScales: number[]
  sampleErrors: number[]
  srs: { path: string; logrows: number; generated: boolean; sha256: string }
  files: { pk: string; witness: string; proof: string; verifier: string }
  sizes: Omit<BuildReport['sizes'], 'vkaRuntime'>
  native: BuildReport['native']
  peakRssBytes: number
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** The largest logrows this machine can set up: a proving key takes about 32 KiB per row of a modest circuit, set-up about twice that. */
export function defaultMaxLogrows(memoryBytes = totalmem()): number {
  return Math.max(10, Math.min(26, Math.floor(Math.log2(memoryBytes / 32_768))))
}

/** What a model costs a node per inference: 1 unit ≈ a 2-column circuit of 2^10 rows. */
export function computeUnitsOf(logrows: number, columns: number): number {
  return Math.max(1, Math.ceil((2 ** logrows * columns) / 2048))
}

/** Runs the driver and returns its last event, passing progress and candidates on. */
async function drive<T>(
  python: string,
  command: 'inspect' | 'reference' | 'build',
  job: Record<string, unknown>,
  work: string,
  onEvent?: (e: BuildEvent) => void,
): Promise<T> {
  const jobFile = join(work, `${command}.job.json`)
  await writeFile(jobFile, JSON.stringify(job))
  let last: Record<string, unknown> | undefined
  let step: string = command
  const proc = startProcess({
    name: `ezkl-${command}`,
    command: python,
    args: [DRIVER, command, jobFile],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
    onLine: (line, stream) => {
      if (stream !== 'stdout') return
      let event: Record<string, unknown>
      try {
        event = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      if (event.type === 'progress') {
        step = String(event.step)
        onEvent?.(event as BuildEvent)
      } else if (event.type === 'candidate') onEvent?.(event as BuildEvent)
      else last = event
    },
  })
  const code = await proc.closed
  if (last?.type === 'error') throw new ModelBuildError(String(last.code), String(last.message))
  if (code === 0 && last) return last as T
  const killed = code === null || code === 137 || code === 134
  if (killed && (step === 'setup' || step === 'prove'))
    throw new ModelBuildError(
      'too-large',
      `ezkl was killed during ${step} (out of memory?): the circuit is too large for this machine (${gib(totalmem())} GiB)`,
      {
        cause: new Error(`ezkl driver output:\n${proc.output()}`),
      },
    )
  throw new ModelBuildError('ezkl-failed', `the ezkl driver stopped during ${step} (exit code ${code})`, {
    cause: new Error(`ezkl driver output:\n${proc.output()}`),
  })
}

const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1)

/** The graph's inputs and outputs, as ezkl sees them, and its operators; refuses what it cannot prove. */
export async function inspectModel(
  onnx: string,
  options: { variables?: Record<string, number>; python?: string } = {},
): Promise<Inspected> {
  const python = options.python ?? (await ensureNativeEzkl())
  const work = await mkdtemp(join(tmpdir(), 'sertn-inspect-'))
  try {
    return await drive<Inspected>(
      python,
      'inspect',
      { onnx: resolve(onnx), workDir: work, variables: { batch_size: 1, ...options.variables } },
      work,
    )
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** Splits EZKL's input file into samples: each a list of flat tensors, one per model input. */
export function splitSamples(json: unknown, inputs: readonly TensorSpec[]): number[][][] {
  const data = (json as { input_data?: unknown })?.input_data
  if (
    !Array.isArray(data) ||
    data.length !== inputs.length ||
    !data.every((t) => Array.isArray(t) && t.every((x) => typeof x === 'number' && Number.isFinite(x)))
  )
    throw new ModelBuildError(
      'bad-samples',
      `the samples must be {"input_data": [...]} with one list of numbers per model input (${inputs.length})`,
    )
  const sizes = inputs.map((t) => shapeSize(t.shape))
  const counts = (data as number[][]).map((t, i) => t.length / (sizes[i] as number))
  const n = counts[0] as number
  if (!counts.every((c) => c === n && Number.isInteger(c) && c > 0))
    throw new ModelBuildError(
      'bad-samples',
      `each input list must hold whole samples: input sizes ${sizes.join(', ')}, list lengths ${(data as number[][]).map((t) => t.length).join(', ')}`,
    )
  return Array.from({ length: n }, (_, s) =>
    (data as number[][]).map((t, i) => t.slice(s * (sizes[i] as number), (s + 1) * (sizes[i] as number))),
  )
}

/** Builds, sizes, proves and measures a model; see the file comment. */
export async function buildModel(p: BuildModelParameters): Promise<BuildReport> {
  const t0 = performance.now()
  if (!NAME.test(p.name)) throw new ModelBuildError('usage', `"${p.name}" is not a model name: 1-64 letters, digits, ".", "_" or "-"`)
  const candidates: Candidate[] = []
  const onEvent = (e: BuildEvent) => {
    if (e.type === 'candidate') {
      const { type: _, ...c } = e
      candidates.push(c)
    }
    p.onEvent?.(e)
  }
  const timed = async <T>(step: string, run: () => Promise<T>, detail: (r: T) => string, message = `${step} …`): Promise<T> => {
    onEvent({ type: 'progress', step, message })
    const s = performance.now()
    const r = await run()
    onEvent({ type: 'step-done', step, ms: performance.now() - s, detail: detail(r) })
    return r
  }
  const python = await ensureNativeEzkl()
  const work = await mkdtemp(join(tmpdir(), 'sertn-build-'))
  const outDir = resolve(p.outDir)
  const variables = { batch_size: 1, ...p.variables }
  const visibility = { input: p.visibility?.input ?? 'public', output: p.visibility?.output ?? 'public' } as const
  const tolerance = p.tolerance ?? 0.01
  try {
    const inspected = await timed(
      'inspect',
      () => inspectModel(p.onnx, { variables, python }),
      (r) =>
        `${Object.entries(r.operators)
          .map(([op, n]) => `${op}×${n}`)
          .join(' ')} · ${r.parameters} weights · in ${shapes(r.inputs)} → out ${shapes(r.outputs)}`,
    )

    const given = splitSamples(JSON.parse(await readFile(p.samples, 'utf8')), inspected.inputs)
    const bound = p.inputBound ?? Math.max(...given.flat(2).map(Math.abs))
    if (!(bound > 0)) throw new ModelBuildError('bad-samples', 'the input bound is 0: give samples that are not all zero, or --input-bound')
    // The gateway accepts any input within ±bound, so the circuit is calibrated (and checked) at the box's corners too.
    const corner = (v: number) => inspected.inputs.map((t) => new Array<number>(shapeSize(t.shape)).fill(v))
    const same = (a: number[][], b: number[][]) => a.every((t, i) => t.every((x, j) => x === b[i]?.[j]))
    const rowCorners = p.rowCorners ? rowCornerSamples(inspected.inputs, bound) : []
    const samples = [
      corner(bound),
      corner(-bound),
      ...rowCorners,
      ...given.filter((s) => !same(s, corner(bound)) && !same(s, corner(-bound))),
    ]
    const outOfBound = given.flat(2).find((x) => Math.abs(x) > bound)
    if (outOfBound !== undefined)
      throw new ModelBuildError('bad-samples', `sample value ${outOfBound} lies outside the input bound ±${bound}`)

    const onnxBytes = new Uint8Array(await readFile(p.onnx))
    // The reference is onnxruntime, the runtime nodes cross-check every inference with; a graph it
    // refuses is measured against onnx's reference evaluator instead, and cannot be registered.
    const reference = await timed(
      'reference',
      async (): Promise<{ outputs: number[][]; by: 'onnxruntime' | 'onnx.reference'; refused?: string }> => {
        try {
          return {
            outputs: await runOnnxGraph(
              onnxBytes,
              inspected.inputs,
              samples.map((s) => s.flat()),
            ),
            by: 'onnxruntime',
          }
        } catch (e) {
          if (!(e instanceof OnnxRuntimeError)) throw e
          const r = await drive<{ outputs: number[][] }>(
            python,
            'reference',
            { onnx: resolve(p.onnx), inputs: inspected.inputs, samples },
            work,
          )
          return { outputs: r.outputs, by: 'onnx.reference', refused: e.message }
        }
      },
      (r) =>
        `${r.by} on ${r.outputs.length} samples (2 corners at ±${bound}${rowCorners.length ? `, ${rowCorners.length} through every corner of a row` : ''})${r.refused ? `; ${r.refused}` : ''}`,
    )
    const references = reference.outputs
    // The first given sample (after the corners), else the first corner.
    const proveSample = samples.length > 2 + rowCorners.length ? 2 + rowCorners.length : 0

    const built = await timed(
      'circuit',
      () =>
        drive<Built>(
          python,
          'build',
          {
            onnx: resolve(p.onnx),
            samples,
            references,
            tolerance,
            target: p.target ?? 'resources',
            visibility,
            variables,
            search: p.search ?? {},
            srsDir: resolve(p.srsDir ?? DEFAULT_SRS_DIR),
            workDir: work,
            outDir,
            maxLogrows: p.maxLogrows ?? defaultMaxLogrows(),
            proveSample,
            verifier: REUSABLE_VERIFIER,
          },
          work,
          onEvent,
        ),
      (b) =>
        `logrows ${b.layout.logrows}, ${b.layout.rows} rows, ${b.layout.columns} columns, scale ${b.runArgs.inputScale}, max error ${Math.max(...b.sampleErrors).toPrecision(3)}`,
    )

    const inScales = new Set(built.inputScales)
    const outScales = new Set(built.outputScales)
    if (inScales.size !== 1 || outScales.size !== 1)
      throw new ModelBuildError(
        'mixed-scales',
        `the model's tensors come out at different scales (inputs ${[...inScales]}, outputs ${[...outScales]}): give it one output tensor, or outputs of one kind`,
      )
    const inputScale = built.inputScales[0] as number
    const outputScale = built.outputScales[0] as number

    const vkaBytecode = await timed(
      'vka',
      async () => {
        const source = await readFile(join(outDir, 'vka.sol'), 'utf8')
        const { contracts } = compileSolidity({ 'vka.sol': { content: source } }, undefined, VKA_SOLC_SETTINGS)
        const artifact = Object.values(contracts['vka.sol'] ?? {}).find((c) => c.bytecode !== '0x')
        if (!artifact) throw new ModelBuildError('ezkl-failed', 'vka.sol holds no deployable contract')
        return artifact.bytecode
      },
      (b) => `compiled with solc-js, ${(b.length - 2) / 2} bytes of creation code`,
    )
    // The VKA's constructor returns the verifying key as the contract's code, so its runtime code
    // (what registries pin by hash) is known only once deployed: deploy it, and check the sample
    // proof with the reusable verifier on the way.
    const proofJson = new Uint8Array(await readFile(built.files.proof))
    const evm = await timed(
      'evm',
      () => deployAndVerify(vkaBytecode, proofJson),
      (r) =>
        `VKA ${(r.runtimeCode.length - 2) / 2} bytes of code; the sample proof verifies on-chain for ${r.verifyGas.toLocaleString('en-US')} gas (reusable verifier + VKA, anvil)`,
    )

    const proveInput = samples[proveSample] as number[][]
    const inputElements = inspected.inputs.reduce((n, t) => n + shapeSize(t.shape), 0)
    const outputElements = inspected.outputs.reduce((n, t) => n + shapeSize(t.shape), 0)
    const written: Record<string, string> = {
      'input.json': JSON.stringify({ input_data: proveInput }),
      'samples.json': JSON.stringify({ input_data: inspected.inputs.map((_, t) => samples.flatMap((s) => s[t] as number[])) }),
      'vka.json': JSON.stringify({ bytecode: vkaBytecode }),
    }
    for (const [f, text] of Object.entries(written)) await writeFile(join(outDir, f), text)
    const pinned = ['network.onnx', 'settings.json', 'model.compiled', 'vk.key', 'vka.sol', 'vka.json', 'input.json', 'samples.json']
    const hashes: Record<string, string> = {}
    for (const f of pinned) hashes[f] = sha256Hex(await readFile(join(outDir, f)))

    const errors = built.sampleErrors
    const manifest: ModelManifest = {
      schema: MANIFEST_SCHEMA,
      name: p.name,
      description: p.description ?? '',
      ezkl: '21.0.0',
      source: { operators: inspected.operators, parameters: inspected.parameters },
      inputs: inspected.inputs,
      outputs: inspected.outputs,
      inputShape: inspected.inputs.length === 1 ? (inspected.inputs[0] as TensorSpec).shape : [inputElements],
      outputShape: inspected.outputs.length === 1 ? (inspected.outputs[0] as TensorSpec).shape : [outputElements],
      inputScale,
      paramScale: built.runArgs.paramScale,
      outputScale,
      logrows: built.layout.logrows,
      runArgs: {
        inputScale: built.runArgs.inputScale,
        paramScale: built.runArgs.paramScale,
        decompBase: built.runArgs.decompBase,
        decompLegs: built.runArgs.decompLegs,
        numInnerCols: built.runArgs.numInnerCols,
        lookupSafetyMargin: built.runArgs.lookupSafetyMargin,
        lookupRange: built.runArgs.lookupRange,
      },
      circuit: { rows: built.layout.rows, columns: built.layout.columns, totalAssignments: built.layout.totalAssignments },
      visibility: { ...visibility, params: 'fixed' },
      instances: { input: visibility.input === 'hashed' ? 1 : inputElements, output: visibility.output === 'hashed' ? 1 : outputElements },
      inputBound: bound,
      maxAbsInput: Number(quantize(bound, inputScale)),
      computeUnits: computeUnitsOf(built.layout.logrows, built.layout.columns),
      proving: { keyBytes: built.sizes.pk, memoryBytes: provingMemoryFor(built.sizes.pk) },
      fidelity: {
        samples: errors.length,
        tolerance,
        maxAbsError: Math.max(...errors),
        meanAbsError: errors.reduce((a, b) => a + b, 0) / errors.length,
      },
      srs: {
        file: relative(outDir, built.srs.path),
        logrows: built.srs.logrows,
        source: 'local',
        insecure: true,
        note: 'generated with ezkl.gen_srs on a build machine; its secret is not destroyed: dev and tests only',
        sha256: built.srs.sha256,
      },
      verifier: { sha256: sha256Hex(await readFile(REUSABLE_VERIFIER)) },
      vka: { codeHash: keccak256(evm.runtimeCode) },
      files: hashes,
    }
    const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`)
    await writeFile(join(outDir, 'manifest.json'), manifestBytes)

    const wasm =
      (p.measure?.wasm ?? true)
        ? await timed(
            'wasm',
            () => measureWasm(outDir, work, built, proveInput.flat(), inputScale, proofJson),
            (w) =>
              `witness ${ms(w.witnessMs)}, prove ${ms(w.proveMs)}, verify ${ms(w.verifyMs)}; the native proof verifies: ${w.verifiesNativeProof ? 'yes' : 'NO'}`,
          )
        : undefined
    if (wasm && !wasm.verifiesNativeProof)
      throw new ModelBuildError('ezkl-failed', 'the WASM engine does not verify the native sample proof')

    const publicElements = Math.max(manifest.instances.input, manifest.instances.output)
    const registrable = reference.refused
      ? { ok: false, reason: `nodes cross-check every inference with onnxruntime, which refuses this graph (${reference.refused})` }
      : publicElements <= MAX_PUBLIC_ELEMENTS
        ? { ok: true }
        : {
            ok: false,
            reason: `a public tensor has ${publicElements} elements, more than the ${MAX_PUBLIC_ELEMENTS} a registry takes: build with --input-visibility hashed (or --output-visibility hashed)`,
          }
    const report: BuildReport = {
      name: p.name,
      dir: outDir,
      manifest,
      artifactsHash: `0x${sha256Hex(manifestBytes)}`,
      candidates,
      chosen: manifest.runArgs,
      layout: built.layout,
      sizes: { ...built.sizes, vkaRuntime: (evm.runtimeCode.length - 2) / 2 },
      native: built.native,
      ...(wasm ? { wasm } : {}),
      verifyGas: evm.verifyGas,
      fidelity: { ...manifest.fidelity, perSample: errors, reference: reference.by },
      registrable,
      srs: { file: manifest.srs.file, logrows: built.srs.logrows, generated: built.srs.generated },
      peakRssBytes: built.peakRssBytes,
      machine: { cpus: cpus().length, memoryBytes: totalmem() },
      totalMs: performance.now() - t0,
    }
    return report
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** Witness, prove and verify with the WASM engine (proving key adopted from the native setup), and the native proof verified by it. */
async function measureWasm(dir: string, work: string, built: Built, input: number[], inputScale: number, nativeProof: Uint8Array) {
  const model = await loadModelArtifacts(dir, { allowInsecureSrs: true })
  const keys = createProvingKeyStore({ dir: join(work, 'keys') })
  await keys.adopt(model, new Uint8Array(await readFile(built.files.pk)))
  const prover = createEzklWasmProver({ keys })
  try {
    const inputQ = input.map((x) => quantize(x, inputScale))
    const proof = await prover.proveInference(model, inputQ)
    const native = await prover.verify(model, nativeProof)
    return { witnessMs: proof.witnessMs, proveMs: proof.proveMs, verifyMs: proof.verifyMs, verifiesNativeProof: native.ok }
  } finally {
    await prover.dispose()
  }
}

/**
 * Deploys the reusable verifier and the VKA on a fresh anvil, reads the VKA's runtime code, and
 * verifies the sample proof in a transaction (its gas is the model's verify gas).
 */
async function deployAndVerify(vkaBytecode: Hex, proofJson: Uint8Array): Promise<{ runtimeCode: Hex; verifyGas: number }> {
  const [{ startAnvil }, { anvilAccount, createSertnClient }, { deployContract, confirm }, { Halo2VerifierReusable }, { feltFromLeHex }] =
    await Promise.all([
      import('../../chains/anvil.ts'),
      import('../../chains/evm/clients.ts'),
      import('../../chains/evm/deploy.ts'),
      import('../../contracts/artifacts/index.ts'),
      import('../../core/field.ts'),
    ])
  const json = JSON.parse(new TextDecoder().decode(proofJson)) as { proof: number[]; instances: string[][] }
  const anvil = await startAnvil()
  try {
    const client = createSertnClient(anvil.chain, anvilAccount(0))
    const verifier = await deployContract(client, Halo2VerifierReusable)
    const vka = await deployContract(client, { abi: [], bytecode: vkaBytecode })
    const runtimeCode = await client.getCode({ address: vka })
    if (!runtimeCode || runtimeCode === '0x') throw new ModelBuildError('ezkl-failed', 'the VKA deployed no code')
    const data = encodeFunctionData({
      abi: VERIFIER_ABI,
      functionName: 'verifyProof',
      args: [vka, `0x${Buffer.from(json.proof).toString('hex')}`, json.instances.flat().map(feltFromLeHex)],
    })
    let gas: bigint
    try {
      gas = await client.estimateGas({ to: verifier, data })
    } catch (e) {
      throw new ModelBuildError(
        'evm-verify',
        'the sample proof does not verify on-chain with the reusable verifier and the VKA (the circuit may have more columns than the verifier handles)',
        {
          cause: e,
          details: e instanceof Error ? e.message.split('\n')[0] : String(e),
        },
      )
    }
    const receipt = await confirm(client, await client.sendTransaction({ to: verifier, data, gas: gas + gas / 5n }))
    return { runtimeCode, verifyGas: Number(receipt.gasUsed) }
  } finally {
    await anvil.stop()
  }
}

const VERIFIER_ABI = parseAbi(['function verifyProof(address vk, bytes proof, uint256[] instances) returns (bool)'])
const ms = (x: number) => (x < 1000 ? `${Math.round(x)} ms` : `${(x / 1000).toFixed(2)} s`)
const shapes = (ts: readonly TensorSpec[]) => ts.map((t) => `[${t.shape.join('×')}]`).join(' ')
