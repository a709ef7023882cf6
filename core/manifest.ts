/**
 * A model's circuit artifacts, as built by `circuits/build.py`, and their integrity check.
 *
 * Each `circuits/<model>/manifest.json` pins the sha256 of every file the build produced and of the
 * SRS it was set up with. {@link loadModelArtifacts} reads them all and refuses to hand out bytes
 * that differ from the pins: a proving key from one build and a verifying key from another would
 * produce proofs that never verify, and an edited network would silently prove something else.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root: this file lives in `<root>/core/`. */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** `circuits/<model>/manifest.json`, schema 1. */
export interface ModelManifest {
  readonly schema: 1
  readonly name: string
  readonly description: string
  /** The ezkl version that built the artifacts. */
  readonly ezkl: string
  readonly architecture: {
    readonly kind: string
    readonly dims: readonly number[]
    readonly activation: string
    readonly seed: number
  }
  /** log2 of the circuit's row count; the SRS must have at least this many. */
  readonly logrows: number
  /** Inputs are quantised as round(x · 2^inputScale). */
  readonly inputScale: number
  readonly paramScale: number
  /** Outputs are integers at this scale: x = q / 2^outputScale. */
  readonly outputScale: number
  readonly inputShape: readonly number[]
  readonly outputShape: readonly number[]
  /** The real-valued bound |x| ≤ inputBound the circuit was calibrated for. */
  readonly inputBound: number
  /** inputBound at the input scale: every quantised input must satisfy |q| ≤ maxAbsInput. */
  readonly maxAbsInput: number
  readonly visibility: {
    readonly input: string
    readonly output: string
    readonly params: string
  }
  /** How far the circuit's dequantised outputs strayed from the float model on sample inputs. */
  readonly fidelity: {
    readonly samples: number
    readonly maxAbsError: number
  }
  readonly srs: {
    /** Relative to the model's directory. */
    readonly file: string
    readonly source: string
    readonly insecure: boolean
    readonly note?: string
    readonly sha256: string
  }
  readonly verifier: {
    /** Relative to the model's directory. */
    readonly file: string
    readonly sha256: string
  }
  /** File name (in the model's directory) → sha256 hex. */
  readonly files: Readonly<Record<string, string>>
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
  /** pk.key */
  readonly pk: Uint8Array
  /** vk.key */
  readonly vk: Uint8Array
  /** settings.json */
  readonly settings: Uint8Array
  /** The structured reference string the keys were generated with. */
  readonly srs: Uint8Array
  /** network.onnx, the float model the circuit was compiled from. */
  readonly onnx: Uint8Array
}

/** The files every model directory must pin. */
export const REQUIRED_ARTIFACT_FILES = ['model.compiled', 'pk.key', 'vk.key', 'settings.json', 'network.onnx'] as const

const REBUILD_HINT = 'rebuild the circuits with `npm run circuits:build`, or restore the file from version control'

/** manifest.json is missing, unreadable or not the expected shape. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError'
  readonly retryable: boolean = false
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`invalid model manifest ${path}: ${detail}`)
  }
}

/** A file the manifest pins cannot be read. */
export class ArtifactMissingError extends Error {
  override readonly name = 'ArtifactMissingError'
  readonly retryable: boolean = false
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`model artifact ${file} cannot be read (${describe(cause)}): ${REBUILD_HINT}`, { cause })
  }
}

/** A file's bytes do not hash to what the manifest pins. */
export class ArtifactHashMismatchError extends Error {
  override readonly name = 'ArtifactHashMismatchError'
  readonly retryable: boolean = false
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`model artifact ${file} has sha256 ${actual} but its manifest pins ${expected}: ${REBUILD_HINT}`)
  }
}

/** The manifest's SRS was generated locally (its secret was not destroyed) and this caller did not allow that. */
export class InsecureSrsError extends Error {
  override readonly name = 'InsecureSrsError'
  readonly retryable = false
  constructor(readonly model: string, srsFile: string) {
    super(
      `${model}: its SRS (${srsFile}) was generated locally and is insecure: anyone holding its secret can forge proofs. ` +
        'It is accepted only in development and tests (pass allowInsecureSrs: true); for production, rebuild the circuit with a ceremony SRS.',
    )
  }
}

export type LoadModelArtifactsOptions = {
  /** Accept a manifest whose SRS is marked insecure (local dev chains and tests only). Default false. */
  allowInsecureSrs?: boolean
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
  const manifestPath = join(absDir, 'manifest.json')
  const manifest = await readManifest(manifestPath)
  assertSrsAllowed(manifest, options)

  const pinned = Object.entries(manifest.files)
  const srsPath = resolveIn(absDir, manifest.srs.file)
  const [fileBytes, srs] = await Promise.all([
    Promise.all(pinned.map(([file, hash]) => readPinned(join(absDir, file), file, hash))),
    readPinned(srsPath, manifest.srs.file, manifest.srs.sha256),
  ])
  const byName = new Map(pinned.map(([file], i) => [file, fileBytes[i] as Uint8Array]))
  const get = (file: (typeof REQUIRED_ARTIFACT_FILES)[number]): Uint8Array => byName.get(file) as Uint8Array

  return {
    manifest,
    dir: absDir,
    contentHash: contentHashOf(manifest),
    compiled: get('model.compiled'),
    pk: get('pk.key'),
    vk: get('vk.key'),
    settings: get('settings.json'),
    srs,
    onnx: get('network.onnx'),
  }
}

/** Throws {@link InsecureSrsError} unless the manifest's SRS is secure or the caller allows an insecure one. */
export function assertSrsAllowed(manifest: ModelManifest, options: LoadModelArtifactsOptions = {}): void {
  if (manifest.srs.insecure && options.allowInsecureSrs !== true) throw new InsecureSrsError(manifest.name, manifest.srs.file)
}

/** sha256 over the sorted `name:sha256` lines of the pinned files and the SRS. */
function contentHashOf(manifest: ModelManifest): string {
  const lines = Object.entries(manifest.files)
    .map(([file, hash]) => `${file}:${hash.toLowerCase()}`)
    .sort()
  lines.push(`srs:${manifest.srs.sha256.toLowerCase()}`)
  return createHash('sha256').update(lines.join('\n')).digest('hex')
}

async function readPinned(path: string, label: string, expected: string): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (e) {
    throw new ArtifactMissingError(label, e)
  }
  const actual = sha256Hex(bytes)
  if (actual !== expected.toLowerCase()) throw new ArtifactHashMismatchError(label, expected, actual)
  // A plain Uint8Array view: callers need not know it came from a Buffer.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function resolveIn(dir: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dir, file)
}

async function readManifest(path: string): Promise<ModelManifest> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new ManifestError(path, `cannot be read (${describe(e)})`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new ManifestError(path, `not JSON (${describe(e)})`)
  }
  checkManifest(path, value)
  return value
}

const SHA256 = /^[0-9a-fA-F]{64}$/

/** Checks the fields code relies on; the rest is passed through as documented. */
function checkManifest(path: string, v: unknown): asserts v is ModelManifest {
  const fail = (detail: string): never => {
    throw new ManifestError(path, detail)
  }
  if (!isRecord(v)) return fail('not an object')
  if (v.schema !== 1) fail(`unsupported schema ${String(v.schema)} (expected 1)`)
  if (typeof v.name !== 'string') fail('"name" must be a string')
  for (const key of ['logrows', 'inputScale', 'outputScale', 'maxAbsInput'] as const)
    if (!Number.isSafeInteger(v[key]) || (v[key] as number) < 0) fail(`"${key}" must be a non-negative integer`)
  for (const key of ['inputShape', 'outputShape'] as const) {
    const shape = v[key]
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && d > 0))
      fail(`"${key}" must be a non-empty array of positive integers`)
  }
  if (!isRecord(v.fidelity) || typeof v.fidelity.maxAbsError !== 'number') fail('"fidelity.maxAbsError" must be a number')
  if (!isRecord(v.srs) || typeof v.srs.file !== 'string' || typeof v.srs.sha256 !== 'string' || !SHA256.test(v.srs.sha256))
    fail('"srs" must name a file and its sha256')
  if (!isRecord(v.files)) return fail('"files" must map file names to sha256')
  for (const [file, hash] of Object.entries(v.files)) {
    if (typeof hash !== 'string' || !SHA256.test(hash)) fail(`"files.${file}" is not a sha256`)
    if (file.includes('/') || file.includes('\\') || file === '..') fail(`"files.${file}" must name a file in the model directory`)
  }
  for (const file of REQUIRED_ARTIFACT_FILES) if (!(file in v.files)) fail(`"files" does not pin ${file}`)
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
