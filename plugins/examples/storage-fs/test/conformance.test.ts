/**
 * The plugin against Sertn's storage conformance suite (the contract every storage plugin keeps),
 * then what is particular to this one: corruption on disk, ids that are not paths, options.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testStoragePlugin } from 'sertn/conformance/storage'
import { ConfigError, IntegrityError, PluginError } from 'sertn/errors'
import { afterAll, describe, expect, it } from 'vitest'
import fsStorage, { createFsStorage, type FsStorageOptions } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'sertn-storage-fs-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// The default export is what a configuration naming this module calls, with `storage.options`.
testStoragePlugin({ name: 'fs', create: () => fsStorage({ dir }) })

describe('fs storage specifics', () => {
  const bin = { contentType: 'application/octet-stream', tags: {} }

  it('error: a file changed on disk is never served (IntegrityError), by ref or by id', async () => {
    const s = createFsStorage({ dir })
    const ref = await s.put(new TextEncoder().encode('the original'), bin)
    writeFileSync(join(dir, ref.id.slice(0, 2), ref.id), 'tampered')
    await expect(s.get(ref)).rejects.toBeInstanceOf(IntegrityError)
    await expect(s.getById!(ref.id, { maxBytes: 100 })).rejects.toBeInstanceOf(IntegrityError)
    await s.dispose()
  })

  it('error: an id that is not 43 base64url characters is refused before any file is opened', async () => {
    const s = createFsStorage({ dir })
    for (const id of ['../../etc/passwd', `${'A'.repeat(42)}/`, ''])
      await expect(s.getById!(id, { maxBytes: 100 })).rejects.toMatchObject({ name: 'PluginError', retryable: false })
    await s.dispose()
  })

  it('behavior: the id is the base64url of the sha256 (the 32 bytes a gateway records)', async () => {
    const s = createFsStorage({ dir })
    const ref = await s.put(new Uint8Array([1, 2, 3]), bin)
    expect(Buffer.from(ref.id, 'base64url').toString('hex')).toBe(ref.sha256)
    await s.dispose()
  })

  it('error: options without a dir are a ConfigError that shows the expected shape', () => {
    expect(() => createFsStorage({} as FsStorageOptions)).toThrow(ConfigError)
    expect(() => createFsStorage(undefined as unknown as FsStorageOptions)).toThrow(/options\.dir/)
  })

  it('error: a ref of another storage is refused', async () => {
    const s = createFsStorage({ dir })
    const ref = await s.put(new Uint8Array([4]), bin)
    await expect(s.get({ ...ref, storage: 'arweave' })).rejects.toBeInstanceOf(PluginError)
    await s.dispose()
  })
})
