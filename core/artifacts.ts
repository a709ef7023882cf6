/**
 * A model's artifacts in storage, and the record of them that registries keep on-chain.
 *
 * `sertn model register` uploads the model directory's files (the manifest, the compiled circuit,
 * settings, verifying key, VKA, ONNX graph, samples, and the SRS) to a storage plugin, then an
 * index naming the storage id, sha256 and size of each. A registry records the index's storage id
 * and the content hashes of the files that decide correctness ({@link ArtifactRefs}). A node that
 * serves the model fetches the index by that id, then each file, and refuses any whose bytes do not
 * hash to what the registry (or the manifest, whose own hash the registry records) pins.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import type { Hex } from 'viem'
import { SertnError } from './errors.ts'
import { ArtifactHashMismatchError, parseManifest, readModelManifest, type ModelManifest, type Visibility } from './manifest.ts'
import type { StoragePlugin } from './plugins.ts'
import { base64UrlIdOf, storageRefOf } from './storage-ref.ts'
import type { StoredArtifact } from './types.ts'

/** What a registry records about a model's artifacts (bytes32 each, as in `IModelRegistry.ArtifactRefs`). */
export type ArtifactRefs = {
  /** sha256 of manifest.json: the model's artifacts hash. */
  manifestHash: Hex
  /** Storage ref (bytes32) of the artifact index; an index not uploaded anywhere is the index's sha256. */
  index: Hex
  compiledHash: Hex
  vkHash: Hex
  settingsHash: Hex
  srsHash: Hex
}

/**
 * A model as a node resolves it from a registry: which artifacts to serve it with. JSON, so that it
 * crosses Temporal between the chain-io worker (which reads the registry) and the others.
 */
export type ModelRef = {
  modelId: Hex
  /** The registry's name for it. */
  name: string
  version: number
  artifacts: ArtifactRefs
  inputVisibility: Visibility
  outputVisibility: Visibility
}

/** The index document (`application/json`) that lists where each artifact file is stored. */
export type ArtifactIndex = {
  schema: 1
  model: string
  /** manifest.json's storage entry. */
  manifest: StoredArtifact
  /** File name → storage entry; the SRS under the manifest's `srs.file` name, with key `srs`. */
  files: Record<string, StoredArtifact>
}

/** The files a registration uploads besides the manifest: every pinned file, and the SRS. */
const SRS_KEY = 'srs'

/** Storage tags that find a model's uploads again (a retried registration reuses them). */
export const artifactTags = (manifestHash: string, file: string) => ({ 'Sertn-Model-Artifacts': manifestHash, 'Sertn-File': file })

const hex = (sha256: string): Hex => `0x${sha256.toLowerCase()}`

/** The content hashes a registry records, from a manifest and its bytes. */
export function artifactHashesOf(manifest: ModelManifest, manifestBytes: Uint8Array): Omit<ArtifactRefs, 'index'> {
  const pin = (file: string) => {
    const h = manifest.files[file]
    if (!h) throw new SertnError(`model ${manifest.name}: the manifest pins no ${file}`)
    return hex(h)
  }
  return {
    manifestHash: hex(createHash('sha256').update(manifestBytes).digest('hex')),
    compiledHash: pin('model.compiled'),
    vkHash: pin('vk.key'),
    settingsHash: pin('settings.json'),
    srsHash: hex(manifest.srs.sha256),
  }
}

/**
 * The refs of a model directory that is not uploaded anywhere: its hashes, and as index the sha256
 * of the index it would upload. A node can serve such a registration only from a local copy of the
 * directory (found by the manifest's hash); tests of contracts alone use it.
 */
export async function localArtifactRefs(dir: string): Promise<ArtifactRefs> {
  const { manifest, bytes } = await readModelManifest(dir)
  const hashes = artifactHashesOf(manifest, bytes)
  return { ...hashes, index: hex(createHash('sha256').update(`unpublished:${hashes.manifestHash}`).digest('hex')) }
}

/** A model directory's file (or its SRS, which may live elsewhere). */
function pathIn(dir: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dir, file)
}

export type PublishModelArtifactsResult = { refs: ArtifactRefs; index: StoredArtifact; uploaded: number; reused: number }

/**
 * Uploads a model directory's artifacts and their index to `storage`. A file uploaded before (found
 * by tag, with the same hash) is reused, so that a retried registration uploads only what is missing.
 */
export async function publishModelArtifacts(
  storage: StoragePlugin,
  dir: string,
  onProgress?: (file: string, done: number, total: number) => void,
): Promise<PublishModelArtifactsResult> {
  const { manifest, bytes } = await readModelManifest(dir)
  const hashes = artifactHashesOf(manifest, bytes)
  const entries: [string, string, string][] = [
    ['manifest.json', join(resolve(dir), 'manifest.json'), hashes.manifestHash.slice(2)],
    ...Object.entries(manifest.files).map(([f, h]) => [f, join(resolve(dir), f), h] as [string, string, string]),
    [SRS_KEY, pathIn(resolve(dir), manifest.srs.file), manifest.srs.sha256],
  ]
  // Each batch circuit under its directory's name: its manifest (pinned by the model's), its files and its SRS.
  for (const b of manifest.batches ?? []) {
    const batchDir = join(resolve(dir), b.dir)
    const { manifest: bm } = await readModelManifest(batchDir)
    entries.push([`${b.dir}/manifest.json`, join(batchDir, 'manifest.json'), b.manifestSha256])
    for (const [f, h] of Object.entries(bm.files)) entries.push([`${b.dir}/${f}`, join(batchDir, f), h])
    entries.push([`${b.dir}/${SRS_KEY}`, pathIn(batchDir, bm.srs.file), bm.srs.sha256])
  }
  let uploaded = 0
  let reused = 0
  const stored: Record<string, StoredArtifact> = {}
  for (const [i, [file, path, sha256]] of entries.entries()) {
    onProgress?.(file, i, entries.length)
    const tags = artifactTags(hashes.manifestHash, file)
    const earlier = storage.flags.searchable && storage.find ? (await storage.find(tags)).find((a) => a.sha256 === sha256) : undefined
    if (earlier) {
      stored[file] = earlier
      reused++
      continue
    }
    const data = new Uint8Array(await readFile(path))
    stored[file] = await storage.put(data, { contentType: file.endsWith('.json') ? 'application/json' : 'application/octet-stream', tags })
    uploaded++
  }
  const { 'manifest.json': manifestEntry, ...files } = stored
  const index: ArtifactIndex = { schema: 1, model: manifest.name, manifest: manifestEntry!, files }
  const indexBytes = new TextEncoder().encode(JSON.stringify(index))
  const indexTags = artifactTags(hashes.manifestHash, 'index.json')
  const indexSha = createHash('sha256').update(indexBytes).digest('hex')
  const earlierIndex =
    storage.flags.searchable && storage.find ? (await storage.find(indexTags)).find((a) => a.sha256 === indexSha) : undefined
  const indexArtifact = earlierIndex ?? (await storage.put(indexBytes, { contentType: 'application/json', tags: indexTags }))
  onProgress?.('index.json', entries.length, entries.length)
  return {
    refs: { ...hashes, index: storageRefOf(indexArtifact) },
    index: indexArtifact,
    uploaded: uploaded + (earlierIndex ? 0 : 1),
    reused,
  }
}

/** The artifact index is missing, unreadable, or names another model's files. */
export class ArtifactIndexError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'ArtifactIndexError'
}

/**
 * Fetches a registered model's files from `storage`: the index by its id, then manifest.json, every
 * file the manifest pins, and the SRS. Every file is checked against the registry's hashes (manifest,
 * compiled circuit, vk, settings, SRS) and the manifest's pins; the index itself is not trusted.
 *
 * With `only`, just those of the manifest's files (and the SRS), and of the batch circuits only
 * those of `batchSizes`, with the same files: what verifying a proof needs (`['vk.key', 'settings.json']`).
 *
 * @returns the checked bytes (the caller caches them)
 * @throws {ArtifactHashMismatchError} naming the file and the model when a hash differs
 * @throws {ArtifactIndexError} when the index is missing a file or is not an index
 */
export async function fetchModelArtifacts(
  storage: StoragePlugin,
  ref: ModelRef,
  options: { only?: readonly string[]; batchSizes?: readonly number[] } = {},
): Promise<FetchedModelArtifacts> {
  const model = ref.name
  if (!storage.getById)
    throw new ArtifactIndexError(`storage ${storage.name} cannot read an artifact by id alone, which fetching a model's index needs`)
  const indexId = base64UrlIdOf(ref.artifacts.index)
  let index: ArtifactIndex
  try {
    index = JSON.parse(new TextDecoder().decode(await storage.getById(indexId, { maxBytes: 1 << 20 }))) as ArtifactIndex
  } catch (e) {
    if (e instanceof SyntaxError) throw new ArtifactIndexError(`model ${model}: its artifact index ${indexId} is not JSON`, { cause: e })
    throw e
  }
  if (index?.schema !== 1 || typeof index.manifest !== 'object' || typeof index.files !== 'object')
    throw new ArtifactIndexError(`model ${model}: ${indexId} is not an artifact index`)
  const expect = (file: string, bytes: Uint8Array, pinned: string) => {
    const actual = createHash('sha256').update(bytes).digest('hex')
    if (actual !== pinned.replace(/^0x/, '').toLowerCase())
      throw new ArtifactHashMismatchError(file, pinned.replace(/^0x/, ''), actual, model)
    return bytes
  }
  // Each file is read as the index describes it, then checked against what the registry (or the
  // manifest, whose hash the registry pins) says: the index itself is not trusted.
  const read = async (file: string, entry: StoredArtifact | undefined, pinned: string) => {
    if (!entry) throw new ArtifactIndexError(`model ${model}: its artifact index lists no ${file}`)
    return expect(file, await storage.get(entry), pinned)
  }
  const manifestBytes = await read('manifest.json', index.manifest, ref.artifacts.manifestHash)
  const manifest = parseManifest(`${model}/manifest.json (storage)`, manifestBytes)
  const onChain: Record<string, string> = {
    'model.compiled': ref.artifacts.compiledHash,
    'vk.key': ref.artifacts.vkHash,
    'settings.json': ref.artifacts.settingsHash,
  }
  const files = new Map<string, Uint8Array>()
  for (const [file, pin] of Object.entries(manifest.files)) {
    if (options.only && !options.only.includes(file)) continue
    const bytes = await read(file, index.files[file], pin)
    if (onChain[file]) expect(file, bytes, onChain[file]!)
    files.set(file, bytes)
  }
  const srs = await read(`SRS (${manifest.srs.file})`, index.files[SRS_KEY], ref.artifacts.srsHash)
  expect(`SRS (${manifest.srs.file})`, srs, manifest.srs.sha256)
  // Batch circuits, each checked against the pin of the model's manifest. An index without one (an
  // upload that left it out) leaves the model servable: its requests are then proven one by one.
  const batches = new Map<string, Omit<FetchedModelArtifacts, 'batches' | 'manifest'>>()
  for (const b of (manifest.batches ?? []).filter((b) => !options.only || options.batchSizes?.includes(b.size))) {
    if (!index.files[`${b.dir}/manifest.json`]) continue
    const batchManifestBytes = await read(`${b.dir}/manifest.json`, index.files[`${b.dir}/manifest.json`], b.manifestSha256)
    const bm = parseManifest(`${model}/${b.dir}/manifest.json (storage)`, batchManifestBytes)
    const batchFiles = new Map<string, Uint8Array>()
    for (const [file, pin] of Object.entries(bm.files))
      if (!options.only || options.only.includes(file))
        batchFiles.set(file, await read(`${b.dir}/${file}`, index.files[`${b.dir}/${file}`], pin))
    const batchSrs = await read(`${b.dir} SRS (${bm.srs.file})`, index.files[`${b.dir}/${SRS_KEY}`], bm.srs.sha256)
    batches.set(b.dir, { manifestBytes: batchManifestBytes, files: batchFiles, srs: batchSrs })
  }
  return { manifest, manifestBytes, files, srs, batches }
}

/** A model's files as fetched from storage and checked, with its batch circuits' by directory. */
export type FetchedModelArtifacts = {
  manifest: ModelManifest
  manifestBytes: Uint8Array
  files: Map<string, Uint8Array>
  srs: Uint8Array
  batches: Map<string, { manifestBytes: Uint8Array; files: Map<string, Uint8Array>; srs: Uint8Array }>
}
