/**
 * The proving-key store: a prover derives a model's proving key once, checks the verifying key it
 * derives beside it against the pinned one, caches the key by the model's content hash, and reuses it
 * after a restart unless its bytes changed.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadModelArtifacts, modelDir, type ModelArtifacts } from '../../core/manifest.ts'
import { createProvingKeyStore, VerifyingKeyMismatchError, type DeriveKeys } from '../../plugins/provers/ezkl-common/keys.ts'

let dir: string
let demo: ModelArtifacts

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-keys-'))
  demo = await loadModelArtifacts(modelDir('sertn-mlp-demo'), { allowInsecureSrs: true })
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A derivation that writes `pk` and answers `vk`, counting its calls. */
function deriving(pk: Uint8Array, vk: Uint8Array) {
  let calls = 0
  const derive: DeriveKeys = async (_model, path) => {
    calls++
    await writeFile(path, pk)
    return { vk, ms: 1 }
  }
  return { derive, calls: () => calls }
}

describe('proving-key store', () => {
  it('default: derives once (concurrent callers share it), caches by content hash, and reuses the key after a restart', async () => {
    const pk = new Uint8Array([1, 2, 3, 4])
    const d = deriving(pk, demo.vk)
    const store = createProvingKeyStore({ dir })
    const [a, b] = await Promise.all([store.get(demo, d.derive), store.get(demo, d.derive)])
    expect(a).toEqual(b)
    expect(d.calls()).toBe(1)
    expect(a.path).toBe(join(dir, demo.contentHash, 'pk.key'))
    expect(new Uint8Array(await readFile(a.path))).toEqual(pk)
    const restarted = createProvingKeyStore({ dir })
    await restarted.get(demo, d.derive)
    expect(d.calls()).toBe(1)
  })

  it('behavior: a cached key whose bytes changed is derived again', async () => {
    const store = createProvingKeyStore({ dir })
    const d = deriving(new Uint8Array([1, 2, 3, 4]), demo.vk)
    const key = await store.get(demo, d.derive)
    await writeFile(key.path, new Uint8Array([9, 9, 9, 9]))
    const again = await createProvingKeyStore({ dir }).get(demo, d.derive)
    expect(d.calls()).toBe(1)
    expect(new Uint8Array(await readFile(again.path))).toEqual(new Uint8Array([1, 2, 3, 4]))
  })

  it('error: a derived verifying key other than the pinned one is refused and nothing is cached', async () => {
    const other = await mkdtemp(join(tmpdir(), 'sertn-keys-other-'))
    try {
      const store = createProvingKeyStore({ dir: other })
      const wrongVk = new Uint8Array(demo.vk)
      wrongVk[10] = wrongVk[10]! ^ 1
      const err = await store.get(demo, deriving(new Uint8Array([7]), wrongVk).derive).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(VerifyingKeyMismatchError)
      expect(err).toMatchObject({ retryable: false, model: 'sertn-mlp-demo', expected: demo.manifest.files['vk.key'] })
      // The next caller derives again (and succeeds with the right key).
      const good = deriving(new Uint8Array([8]), demo.vk)
      await store.get(demo, good.derive)
      expect(good.calls()).toBe(1)
    } finally {
      await rm(other, { recursive: true, force: true })
    }
  })
})
