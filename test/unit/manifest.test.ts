import { createHash } from 'node:crypto'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ArtifactHashMismatchError,
  ArtifactMissingError,
  InsecureSrsError,
  loadBatchArtifacts,
  loadModelArtifacts,
  ManifestError,
  modelDir,
} from '../../core/manifest.ts'
import { DEV_ONLY } from '../support/artifacts.ts'

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** A copy of circuits/<model> and circuits/srs, laid out as in the repository (the SRS path is relative). */
async function copyModel(root: string, name: string): Promise<string> {
  await cp(modelDir(name), join(root, 'circuits', name), { recursive: true })
  await cp(join(modelDir(name), '..', 'srs'), join(root, 'circuits', 'srs'), { recursive: true })
  return join(root, 'circuits', name)
}

describe('core/manifest', () => {
  let tmp: string

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'sertn-manifest-'))
  })

  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true })
  })

  it('default: loads the demo model and every byte matches its pin', async () => {
    const a = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
    expect(a.manifest.name).toBe('sertn-mlp-demo')
    expect(a.dir).toBe(modelDir('sertn-mlp-demo'))
    expect(a.manifest.files['pk.key']).toBeUndefined() // provers derive it
    expect(sha256(a.vk)).toBe(a.manifest.files['vk.key'])
    expect(sha256(a.compiled)).toBe(a.manifest.files['model.compiled'])
    expect(sha256(a.settings)).toBe(a.manifest.files['settings.json'])
    expect(sha256(a.onnx)).toBe(a.manifest.files['network.onnx'])
    expect(sha256(a.srs)).toBe(a.manifest.srs.sha256)
    expect(a.contentHash).toMatch(/^[0-9a-f]{64}$/)
    expect(a.manifest.inputShape).toEqual([1, 4])
    expect(a.manifest.maxAbsInput).toBe(a.manifest.inputBound * 2 ** a.manifest.inputScale)
  })

  it('batch circuits: the demo lists its batches by manifest hash; each loads checked, with the model’s shapes times its rows', async () => {
    const demo = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
    expect(demo.manifest.batches?.map((b) => b.size)).toEqual([16, 64])
    for (const ref of demo.manifest.batches!) {
      const b = await loadBatchArtifacts(demo, ref.size, DEV_ONLY)
      expect(b.manifest.inputShape).toEqual([ref.size, 4])
      expect(b.manifest.outputShape).toEqual([ref.size, 3])
      expect(b.manifest.logrows).toBe(ref.logrows)
      expect(b.manifest.vka.codeHash).toBe(ref.vka.codeHash)
      expect(sha256(await readFile(join(b.dir, 'manifest.json')))).toBe(ref.manifestSha256)
    }
    await expect(loadBatchArtifacts(demo, 8, DEV_ONLY)).rejects.toThrow(/no batch circuit of 8 rows \(it has 16, 64\)/)
  })

  it('error: a batch circuit whose manifest is not the one the model pins, or a malformed batch list, is refused', async () => {
    const dir = await copyModel(join(tmp, 'batch'), 'sertn-mlp-demo')
    const batchManifest = join(dir, 'batch-16', 'manifest.json')
    const text = await readFile(batchManifest, 'utf8')
    await writeFile(batchManifest, text.replace('"description": "', '"description": "edited: '))
    const demo = await loadModelArtifacts(dir, DEV_ONLY)
    await expect(loadBatchArtifacts(demo, 16, DEV_ONLY)).rejects.toBeInstanceOf(ArtifactHashMismatchError)
    await writeFile(batchManifest, text)
    const manifest = join(dir, 'manifest.json')
    const m = JSON.parse(await readFile(manifest, 'utf8')) as { batches: { size: number }[] }
    m.batches.reverse() // sizes must ascend
    await writeFile(manifest, JSON.stringify(m))
    await expect(loadModelArtifacts(dir, DEV_ONLY)).rejects.toThrow(/"batches" must list/)
  })

  it('error: a locally generated SRS is refused unless the caller allows it (dev and tests only)', async () => {
    const err = await loadModelArtifacts(modelDir('sertn-mlp-demo')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InsecureSrsError)
    expect((err as Error).message).toMatchInlineSnapshot(
      `"sertn-mlp-demo: its SRS (../srs/kzg-local-k10.srs) was generated locally and is insecure: anyone holding its secret can forge proofs. It is accepted only in development and tests (pass allowInsecureSrs: true); for production, rebuild the circuit with a ceremony SRS."`,
    )
  })

  it('behavior: contentHash is stable per model and differs between models', async () => {
    const [demo, demoAgain, twin] = await Promise.all([
      loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY),
      loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY),
      loadModelArtifacts(modelDir('sertn-mlp-twin'), DEV_ONLY),
    ])
    expect(demoAgain.contentHash).toBe(demo.contentHash)
    expect(twin.contentHash).not.toBe(demo.contentHash)
  })

  it('behavior: modelDir does not depend on the working directory', () => {
    const before = process.cwd()
    const expected = modelDir('sertn-mlp-demo')
    try {
      process.chdir(tmpdir())
      expect(modelDir('sertn-mlp-demo')).toBe(expected)
    } finally {
      process.chdir(before)
    }
    expect(expected).toMatch(/circuits[/\\]sertn-mlp-demo$/)
  })

  it('error: a flipped byte in model.compiled fails with ArtifactHashMismatchError naming the file and the model', async () => {
    const dir = await copyModel(join(tmp, 'tampered'), 'sertn-mlp-demo')
    const pkPath = join(dir, 'model.compiled')
    const pk = await readFile(pkPath)
    const expected = sha256(pk)
    pk[1234] = (pk[1234] as number) ^ 0x01
    await writeFile(pkPath, pk)

    const err = await loadModelArtifacts(dir, DEV_ONLY).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ArtifactHashMismatchError)
    const mismatch = err as ArtifactHashMismatchError
    expect(mismatch.name).toBe('ArtifactHashMismatchError')
    expect(mismatch.retryable).toBe(false)
    expect(mismatch.file).toBe('model.compiled')
    expect(mismatch.expected).toBe(expected)
    expect(mismatch.actual).toBe(sha256(pk))
    expect(mismatch.message).toContain('model sertn-mlp-demo: artifact model.compiled')
    expect(mismatch.message).toContain(expected)
    expect(mismatch.message).toContain(sha256(pk))
    expect(mismatch.message).toContain('sertn model build')
  })

  it('behavior: an untampered copy loads', async () => {
    const dir = await copyModel(join(tmp, 'copy'), 'sertn-mlp-twin')
    const a = await loadModelArtifacts(dir, DEV_ONLY)
    expect(a.manifest.name).toBe('sertn-mlp-twin')
  })

  it('error: a tampered SRS fails with ArtifactHashMismatchError', async () => {
    const dir = await copyModel(join(tmp, 'srs'), 'sertn-mlp-demo')
    const srsPath = join(dir, '..', 'srs', 'kzg-local-k10.srs')
    const srs = await readFile(srsPath)
    srs[srs.length - 1] = (srs[srs.length - 1] as number) ^ 0x80
    await writeFile(srsPath, srs)
    await expect(loadModelArtifacts(dir, DEV_ONLY)).rejects.toMatchObject({
      name: 'ArtifactHashMismatchError',
      file: '../srs/kzg-local-k10.srs',
    })
  })

  it('error: a missing pinned file fails with ArtifactMissingError', async () => {
    const dir = await copyModel(join(tmp, 'missing'), 'sertn-mlp-demo')
    await rm(join(dir, 'vk.key'))
    await expect(loadModelArtifacts(dir, DEV_ONLY)).rejects.toBeInstanceOf(ArtifactMissingError)
  })

  it('error: a malformed manifest fails with ManifestError', async () => {
    const dir = await copyModel(join(tmp, 'malformed'), 'sertn-mlp-demo')
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>
    delete (manifest.files as Record<string, string>)['vk.key']
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest))
    await expect(loadModelArtifacts(dir, DEV_ONLY)).rejects.toBeInstanceOf(ManifestError)
    await expect(loadModelArtifacts(join(tmp, 'nowhere'), DEV_ONLY)).rejects.toBeInstanceOf(ManifestError)
  })

  it('error: a manifest that does not say whether its SRS is insecure is refused (fail closed)', async () => {
    const dir = await copyModel(join(tmp, 'no-srs-flag'), 'sertn-mlp-demo')
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { srs: Record<string, unknown> }
    delete manifest.srs.insecure
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest))
    const err = await loadModelArtifacts(dir, DEV_ONLY).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ManifestError)
    expect((err as Error).message).toContain('"srs.insecure" must say (true or false) whether the SRS is secure')
  })

  it('error: a manifest of the previous format (schema 1) is refused with what to do', async () => {
    const dir = await copyModel(join(tmp, 'schema-1'), 'sertn-mlp-demo')
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, schema: 1 }))
    await expect(loadModelArtifacts(dir, DEV_ONLY)).rejects.toThrow(/unsupported schema 1 .*sertn model build/)
  })

  it('error: modelDir refuses names that are not a single path segment', () => {
    expect(() => modelDir('../etc')).toThrow(ManifestError)
    expect(() => modelDir('a/b')).toThrow(ManifestError)
  })
})
