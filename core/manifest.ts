/**
 * A model's circuit artifacts, as `sertn model build` writes them, and their integrity check.
 *
 * Each model directory's `manifest.json` pins the sha256 of every file the build produced and of the
 * SRS it was set up with. {@link loadModelArtifacts} reads them all and refuses to hand out bytes
 * that differ from the pins: a verifying key from one build and a compiled circuit from another
 * would produce proofs that never verify, and an edited network would silently prove something
 * else. The proving key is not an artifact: provers derive it from the compiled circuit and the SRS
 * and check that the verifying key they derive with it is the pinned one (see ezkl-common/keys.ts).
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SertnError } from './errors.ts'

/** The repository root: this file lives in `<root>/core/`. */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** The manifest format this code reads and `sertn model build` writes. */
export const MANIFEST_SCHEMA = 2

/** How a tensor appears among the proof's public instances. */
export type Visibility = 'public' | 'hashed'

/** A model input or output tensor, flattened row-major in requests and results. */
export interface TensorSpec {
  readonly name: string
  readonly shape: readonly number[]
}

/** `<model>/manifest.json`, schema 2. */
export interface ModelManifest {
  readonly schema: 2
  readonly name: string
  readonly description: string
  /** The ezkl version that built the artifacts. */
  readonly ezkl: string
  /** The ONNX graph the circuit was compiled from. */
  readonly source: {
    /** Operator type → how many nodes use it. */
    readonly operators: Readonly<Record<string, number>>
    /** Number of weights (all fixed in the circuit). */
    readonly parameters: number
  }
  /** The graph's inputs and outputs, in order; a request's input is their concatenation, and so is a result's output. */
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
  /** The shape of the whole input: the input's own shape, or [n] for several inputs of n elements in all. */
  readonly inputShape: readonly number[]
  /** The shape of the whole output, likewise. */
  readonly outputShape: readonly number[]
  /** Inputs are quantised as round(x · 2^inputScale). */
  readonly inputScale: number
  readonly paramScale: number
  /** Outputs are integers at this scale: x = q / 2^outputScale. */
  readonly outputScale: number
  /** log2 of the circuit's row count; the SRS must have at least this many. */
  readonly logrows: number
  /** The run arguments the sizing search chose. */
  readonly runArgs: {
    readonly inputScale: number
    readonly paramScale: number
    readonly decompBase: number
    readonly decompLegs: number
    readonly numInnerCols: number
    readonly lookupSafetyMargin: number
    readonly lookupRange: readonly [number, number]
  }
  /** What the circuit takes: rows used, inner columns, advice cells. */
  readonly circuit: {
    readonly rows: number
    readonly columns: number
    readonly totalAssignments: number
  }
  /** Weights are always fixed (bound to the verifying key); input and output are public or hashed (Poseidon). */
  readonly visibility: { readonly input: Visibility; readonly output: Visibility; readonly params: 'fixed' }
  /**
   * How many public instances stand for the input and the output: their element counts when
   * public, 1 (the Poseidon hash) when hashed. The instances are the input part, then the output part.
   */
  readonly instances: { readonly input: number; readonly output: number }
  /** The real-valued bound |x| ≤ inputBound the circuit was calibrated for. */
  readonly inputBound: number
  /** inputBound at the input scale: every quantised input must satisfy |q| ≤ maxAbsInput. */
  readonly maxAbsInput: number
  /** What one inference costs a node, from the circuit's size (1 unit ≈ a 2-column circuit of 2^10 rows). */
  readonly computeUnits: number
  /**
   * What proving takes (absent in manifests built before it was recorded): the proving key's size,
   * which provers derive and hold, and the memory one native proof needs, from that size by
   * {@link provingMemoryFor}. Both are exact functions of the circuit, so a rebuild gives the same.
   * Nodes route a proof to the prover class whose workers can hold it (`prover.routing`).
   */
  readonly proving?: { readonly keyBytes: number; readonly memoryBytes: number }
  /** How far the circuit's dequantised outputs strayed from onnxruntime's on the build's samples. */
  readonly fidelity: {
    readonly samples: number
    readonly tolerance: number
    readonly maxAbsError: number
    readonly meanAbsError: number
  }
  readonly srs: {
    /** Relative to the model's directory (or absolute). */
    readonly file: string
    readonly logrows: number
    /** `local`: made by ezkl.gen_srs on the build machine; otherwise the ceremony's name. */
    readonly source: string
    /** Always present: a manifest that does not say whether its SRS is secure is refused. */
    readonly insecure: boolean
    readonly note?: string
    readonly sha256: string
  }
  /** The reusable verifier this circuit's VKA works with (the same contract for every model). */
  readonly verifier: { readonly sha256: string }
  /** The verifying-key artifact contract: keccak256 of its runtime code (what registries pin). */
  readonly vka: { readonly codeHash: `0x${string}` }
  /** File name (in the model's directory) → sha256 hex. */
  readonly files: Readonly<Record<string, string>>
  /**
   * The same model compiled with a batch dimension (sizes ascending, each above 1): one proof for
   * `size` inferences, its instances every row's input and then every row's output. Each is a
   * model directory of its own (`dir`, under this one) whose manifest.json hashes to
   * `manifestSha256`, so this manifest's hash (the artifacts hash a requester may pin) covers them.
   */
  readonly batches?: readonly BatchCircuitRef[]
}

/** One batch circuit of a model (see {@link ModelManifest.batches}). */
export interface BatchCircuitRef {
  /** Inferences (rows) per proof. */
  readonly size: number
  /** Its directory, relative to the model's: `batch-<size>`. */
  readonly dir: string
  /** sha256 of its manifest.json. */
  readonly manifestSha256: string
  readonly logrows: number
  /** keccak256 of its VKA's runtime code (what registries pin for the batch size). */
  readonly vka: { readonly codeHash: `0x${string}` }
}

/** A model's artifacts, every byte checked against its manifest. */
export interface ModelArtifacts {
  readonly manifest: ModelManifest
  /** Absolute path of the model's directory. */
  readonly dir: string
  /** sha256 over the pinned hashes (files and SRS): equal keys mean byte-identical artifacts. */
  readonly contentHash: string
  /** model.compiled */
  readonly compiled: Uint8Array
  /** vk.key */
  readonly vk: Uint8Array
  /** settings.json */
  readonly settings: Uint8Array
  /** The structured reference string the keys are derived with. */
  readonly srs: Uint8Array
  /** Where the SRS was read from (absolute). */
  readonly srsPath: string
  /** network.onnx, the float model the circuit was compiled from. */
  readonly onnx: Uint8Array
}

/** The files every model directory must pin. */
export const REQUIRED_ARTIFACT_FILES = ['model.compiled', 'vk.key', 'settings.json', 'network.onnx', 'vka.json'] as const

const REBUILD_HINT = 'rebuild the model with `sertn model build`, or restore the file from version control or storage'

/** manifest.json is missing, unreadable or not the expected shape. */
export class ManifestError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'ManifestError'
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`invalid model manifest ${path}: ${detail}`)
  }
}

/** A file the manifest pins cannot be read. */
export class ArtifactMissingError extends SertnError {
  override name = 'ArtifactMissingError'
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`model artifact ${file} cannot be read (${describe(cause)}): ${REBUILD_HINT}`, { cause })
  }
}

/** A file's bytes do not hash to what the manifest (or the registry) pins. */
export class ArtifactHashMismatchError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'ArtifactHashMismatchError'
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
    readonly model?: string,
  ) {
    super(`${model ? `model ${model}: ` : ''}artifact ${file} has sha256 ${actual} but ${expected} is pinned: ${REBUILD_HINT}`)
  }
}

/** The manifest's SRS was generated locally (its secret was not destroyed) and this caller did not allow that. */
export class InsecureSrsError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'InsecureSrsError'
  constructor(
    readonly model: string,
    srsFile: string,
  ) {
    super(
      `${model}: its SRS (${srsFile}) was generated locally and is insecure: anyone holding its secret can forge proofs. ` +
        'It is accepted only in development and tests (pass allowInsecureSrs: true); for production, rebuild the circuit with a ceremony SRS.',
    )
  }
}

export type LoadModelArtifactsOptions = {
  /** Accept a manifest whose SRS is marked insecure (local dev chains and tests only). Default false. */
  allowInsecureSrs?: boolean
  /** Read the SRS from here instead of the manifest's `srs.file` (a model fetched into a cache). */
  srsPath?: string
}

/** Absolute path of `circuits/<name>` in this repository, whatever the working directory. */
export function modelDir(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes('..'))
    throw new ManifestError(name, 'a model name is a single path segment of letters, digits, ".", "_" and "-"')
  return join(REPO_ROOT, 'circuits', name)
}

/** sha256 of some bytes, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * Reads a model directory's manifest and every file it pins, plus the SRS, and checks each sha256.
 *
 * @param dir the model's directory (absolute, or relative to the working directory); see {@link modelDir}
 * @throws {ManifestError} when manifest.json is missing or malformed
 * @throws {ArtifactMissingError} when a pinned file cannot be read
 * @throws {ArtifactHashMismatchError} when a file differs from its pin
 * @throws {InsecureSrsError} when the SRS is marked insecure and `allowInsecureSrs` is not set
 */
export async function loadModelArtifacts(dir: string, options: LoadModelArtifactsOptions = {}): Promise<ModelArtifacts> {
  const absDir = resolve(dir)
  const manifest = await readManifestFile(join(absDir, 'manifest.json'))
  assertSrsAllowed(manifest, options)

  const srsPath = options.srsPath ?? resolveIn(absDir, manifest.srs.file)
  const pinned = Object.entries(manifest.files)
  const [fileBytes, srs] = await Promise.all([
    Promise.all(pinned.map(([file, hash]) => readPinned(join(absDir, file), file, hash, manifest.name))),
    readPinned(srsPath, manifest.srs.file, manifest.srs.sha256, manifest.name),
  ])
  const byName = new Map(pinned.map(([file], i) => [file, fileBytes[i] as Uint8Array]))
  const get = (file: (typeof REQUIRED_ARTIFACT_FILES)[number]): Uint8Array => byName.get(file) as Uint8Array

  return {
    manifest,
    dir: absDir,
    contentHash: contentHashOf(manifest),
    compiled: get('model.compiled'),
    vk: get('vk.key'),
    settings: get('settings.json'),
    srs,
    srsPath,
    onnx: get('network.onnx'),
  }
}

/** Throws {@link InsecureSrsError} unless the manifest's SRS is secure or the caller allows an insecure one. */
export function assertSrsAllowed(manifest: ModelManifest, options: LoadModelArtifactsOptions = {}): void {
  if (manifest.srs.insecure && options.allowInsecureSrs !== true) throw new InsecureSrsError(manifest.name, manifest.srs.file)
}

/** sha256 over the sorted `name:sha256` lines of the pinned files and the SRS. */
export function contentHashOf(manifest: Pick<ModelManifest, 'files' | 'srs' | 'batches'>): string {
  const lines = Object.entries(manifest.files)
    .map(([file, hash]) => `${file}:${hash.toLowerCase()}`)
    .sort()
  lines.push(`srs:${manifest.srs.sha256.toLowerCase()}`)
  for (const b of manifest.batches ?? []) lines.push(`batch-${b.size}:${b.manifestSha256.toLowerCase()}`)
  return createHash('sha256').update(lines.join('\n')).digest('hex')
}

/**
 * The batch circuit of `model` for `size` rows, every byte checked: its manifest hashes to the
 * one the model's manifest pins, and its shapes are the model's with `size` rows.
 *
 * @throws {ManifestError} when the model has no batch circuit of that size, or it does not match
 */
export async function loadBatchArtifacts(
  model: ModelArtifacts,
  size: number,
  options: LoadModelArtifactsOptions = {},
): Promise<ModelArtifacts> {
  const { dir } = await batchManifestOf(model, size)
  // A batch circuit fetched from storage keeps its SRS beside it (the model's own `srsPath` is not its).
  const { srsPath: _modelSrs, ...rest } = options
  const local = join(dir, 'srs.bin')
  const batch = await loadModelArtifacts(dir, existsSync(local) ? { ...rest, srsPath: local } : rest)
  const rows = (shape: readonly number[]) => [size, ...shape.slice(1)].join(',')
  const m = batch.manifest
  if (
    m.inputShape.join(',') !== rows(model.manifest.inputShape) ||
    m.outputShape.join(',') !== rows(model.manifest.outputShape) ||
    m.visibility.input !== model.manifest.visibility.input ||
    m.visibility.output !== model.manifest.visibility.output ||
    m.inputScale !== model.manifest.inputScale ||
    m.outputScale !== model.manifest.outputScale
  )
    throw new ManifestError(
      join(dir, 'manifest.json'),
      `is not ${model.manifest.name} with ${size} rows (shapes, scales or visibility differ)`,
    )
  return batch
}

/** The batch sizes whose circuits this copy of the model holds (a copy fetched from an index without them has none). */
export function availableBatchSizes(model: Pick<ModelArtifacts, 'dir' | 'manifest'>): number[] {
  return (model.manifest.batches ?? [])
    .filter((b) => existsSync(join(resolveIn(model.dir, b.dir), 'manifest.json')))
    .map((b) => b.size)
    .sort((a, b) => a - b)
}

/**
 * The manifest of `model`'s batch circuit of `size` rows, checked against the hash the model's
 * manifest pins, and its directory.
 *
 * @throws {ManifestError} when the model has no batch circuit of that size; {@link ArtifactHashMismatchError} when it is not the pinned one
 */
export async function batchManifestOf(
  model: Pick<ModelArtifacts, 'dir' | 'manifest'>,
  size: number,
): Promise<{ manifest: ModelManifest; dir: string }> {
  const ref = model.manifest.batches?.find((b) => b.size === size)
  const path = join(model.dir, 'manifest.json')
  if (!ref) throw new ManifestError(path, `no batch circuit of ${size} rows (it has ${batchSizesOf(model.manifest).join(', ') || 'none'})`)
  const dir = resolveIn(model.dir, ref.dir)
  const { manifest, sha256 } = await readModelManifest(dir)
  if (sha256 !== ref.manifestSha256.toLowerCase())
    throw new ArtifactHashMismatchError(join(ref.dir, 'manifest.json'), ref.manifestSha256, sha256, model.manifest.name)
  return { manifest, dir }
}

/** The batch sizes a model's manifest lists, ascending (1, the model itself, not included). */
export function batchSizesOf(manifest: Pick<ModelManifest, 'batches'>): number[] {
  return (manifest.batches ?? []).map((b) => b.size).sort((a, b) => a - b)
}

/** The manifest of a model directory (checked), and the sha256 of its bytes: what registries record as the model's artifacts hash. */
export async function readModelManifest(dir: string): Promise<{ manifest: ModelManifest; bytes: Uint8Array; sha256: string }> {
  const path = join(resolve(dir), 'manifest.json')
  const bytes = await readFile(path).catch((e: unknown) => {
    throw new ManifestError(path, `cannot be read (${describe(e)})`)
  })
  return { manifest: parseManifest(path, bytes), bytes, sha256: sha256Hex(bytes) }
}

/** Parses and checks manifest bytes; `path` names them in errors. */
export function parseManifest(path: string, bytes: Uint8Array): ModelManifest {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(bytes))
  } catch (e) {
    throw new ManifestError(path, `not JSON (${describe(e)})`)
  }
  checkManifest(path, value)
  return value
}

async function readPinned(path: string, label: string, expected: string, model: string): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (e) {
    throw new ArtifactMissingError(label, e)
  }
  const actual = sha256Hex(bytes)
  if (actual !== expected.toLowerCase()) throw new ArtifactHashMismatchError(label, expected, actual, model)
  // A plain Uint8Array view: callers need not know it came from a Buffer.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function resolveIn(dir: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dir, file)
}

async function readManifestFile(path: string): Promise<ModelManifest> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (e) {
    throw new ManifestError(path, `cannot be read (${describe(e)})`)
  }
  return parseManifest(path, bytes)
}

const SHA256 = /^[0-9a-fA-F]{64}$/
const shapeOk = (shape: unknown): boolean =>
  Array.isArray(shape) && shape.length > 0 && shape.every((d) => Number.isSafeInteger(d) && d > 0)

/**
 * The memory one native proof of a circuit needs, from its proving key's size: the peak resident
 * memory of native ezkl 21 proving, measured on eight circuits (proving keys of 0.5 MB to 277 MB,
 * logrows 7 to 16), was the process's ~40 MB plus 1.8 to 2.5 times the key; this rounds that up
 * to 64 MiB plus 2.5 times the key, in whole MiB.
 */
export function provingMemoryFor(keyBytes: number): number {
  const mib = 1024 * 1024
  return Math.ceil((64 * mib + 2.5 * keyBytes) / mib) * mib
}

/**
 * The memory a proof of this circuit needs: its manifest's `proving.memoryBytes`, or for a manifest
 * built before that was recorded, a bound from its size (2^logrows rows at 32 KiB a row: above
 * every circuit measured, by 3 to 10 times).
 */
export function provingMemoryOf(manifest: Pick<ModelManifest, 'proving' | 'logrows'>): number {
  return manifest.proving?.memoryBytes ?? provingMemoryFor(2 ** manifest.logrows * 32 * 1024)
}

/** Checks the fields code relies on; the rest is passed through as documented. */
function checkManifest(path: string, v: unknown): asserts v is ModelManifest {
  const fail = (detail: string): never => {
    throw new ManifestError(path, detail)
  }
  if (!isRecord(v)) return fail('not an object')
  if (v.schema !== MANIFEST_SCHEMA)
    fail(`unsupported schema ${String(v.schema)} (this node reads schema ${MANIFEST_SCHEMA}): rebuild the model with \`sertn model build\``)
  if (typeof v.name !== 'string') fail('"name" must be a string')
  for (const key of ['logrows', 'inputScale', 'outputScale', 'maxAbsInput', 'computeUnits'] as const)
    if (!Number.isSafeInteger(v[key]) || (v[key] as number) < 0) fail(`"${key}" must be a non-negative integer`)
  if (v.proving !== undefined) {
    const pr = v.proving
    if (!isRecord(pr) || !Number.isSafeInteger(pr.keyBytes) || !Number.isSafeInteger(pr.memoryBytes) || (pr.memoryBytes as number) <= 0)
      fail('"proving" must hold the proving key\'s size and the memory a proof needs, in bytes (integers)')
  }
  for (const key of ['inputShape', 'outputShape'] as const)
    if (!shapeOk(v[key])) fail(`"${key}" must be a non-empty array of positive integers`)
  for (const key of ['inputs', 'outputs'] as const) {
    const list = v[key]
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => isRecord(t) && typeof t.name === 'string' && shapeOk(t.shape)))
      fail(`"${key}" must list the tensors with their name and shape`)
  }
  const vis = v.visibility
  if (
    !isRecord(vis) ||
    !['public', 'hashed'].includes(vis.input as string) ||
    !['public', 'hashed'].includes(vis.output as string) ||
    vis.params !== 'fixed'
  )
    fail('"visibility" must be { input: public|hashed, output: public|hashed, params: fixed }')
  if (!isRecord(v.instances) || !Number.isSafeInteger(v.instances.input) || !Number.isSafeInteger(v.instances.output))
    fail('"instances" must count the input and output instances')
  if (!isRecord(v.fidelity) || typeof v.fidelity.maxAbsError !== 'number') fail('"fidelity.maxAbsError" must be a number')
  if (!isRecord(v.srs) || typeof v.srs.file !== 'string' || typeof v.srs.sha256 !== 'string' || !SHA256.test(v.srs.sha256))
    fail('"srs" must name a file and its sha256')
  // Fail closed: a manifest that does not say whether its SRS is secure is treated as a forgery risk.
  if (typeof (v.srs as Record<string, unknown>).insecure !== 'boolean')
    fail('"srs.insecure" must say (true or false) whether the SRS is secure')
  if (!isRecord(v.vka) || typeof v.vka.codeHash !== 'string' || !/^0x[0-9a-f]{64}$/.test(v.vka.codeHash))
    fail('"vka.codeHash" must be a keccak256 hash')
  if (!isRecord(v.files)) return fail('"files" must map file names to sha256')
  for (const [file, hash] of Object.entries(v.files)) {
    if (typeof hash !== 'string' || !SHA256.test(hash)) fail(`"files.${file}" is not a sha256`)
    if (file.includes('/') || file.includes('\\') || file === '..') fail(`"files.${file}" must name a file in the model directory`)
  }
  for (const file of REQUIRED_ARTIFACT_FILES) if (!(file in v.files)) fail(`"files" does not pin ${file}`)
  if (v.batches !== undefined) {
    if (!Array.isArray(v.batches)) return fail('"batches" must list the batch circuits')
    let last = 1
    for (const b of v.batches as unknown[]) {
      if (
        !isRecord(b) ||
        !Number.isSafeInteger(b.size) ||
        (b.size as number) <= last ||
        b.dir !== `batch-${String(b.size)}` ||
        typeof b.manifestSha256 !== 'string' ||
        !SHA256.test(b.manifestSha256) ||
        !Number.isSafeInteger(b.logrows) ||
        !isRecord(b.vka) ||
        typeof b.vka.codeHash !== 'string' ||
        !/^0x[0-9a-f]{64}$/.test(b.vka.codeHash)
      )
        return fail('"batches" must list { size (ascending, above 1), dir: "batch-<size>", manifestSha256, logrows, vka.codeHash }')
      last = b.size as number
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
