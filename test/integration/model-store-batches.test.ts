/**
 * A node without the model's directory serves its batches too: the upload of a model (arlocal, the
 * real Arweave storage plugin) carries each batch circuit (its manifest, pinned by the model's; its
 * files; its SRS), and a node's model store fetches them into its cache, every file checked, so that
 * the fetched batch circuit proves and verifies, from a cold store and from the cache again.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { publishModelArtifacts, type ModelRef } from '../../core/artifacts.ts'
import { availableBatchSizes, loadBatchArtifacts, modelDir } from '../../core/manifest.ts'
import { createModelStore } from '../../core/models.ts'
import { quantize } from '../../core/field.ts'
import { arweaveStorage, createFundedWallet, startArlocal, type ArlocalInstance } from '../../plugins/storage/arweave/index.ts'
import { ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import type { StoragePlugin } from '../../core/plugins.ts'

let arlocal: ArlocalInstance
let storage: StoragePlugin
let cacheDir: string
let ref: ModelRef

beforeAll(async () => {
  arlocal = await startArlocal()
  const { jwk } = await createFundedWallet(undefined, arlocal.url)
  storage = arweaveStorage({ port: arlocal.port, wallet: jwk, mineAfterPost: true })
  cacheDir = await mkdtemp(join(tmpdir(), 'sertn-model-cache-'))
  const published = await publishModelArtifacts(storage, modelDir('sertn-mlp-demo'))
  ref = {
    modelId: `0x${'01'.repeat(32)}`,
    name: 'sertn-mlp-demo',
    version: 1,
    artifacts: published.refs,
    inputVisibility: 'public',
    outputVisibility: 'public',
  }
}, 180_000)

afterAll(async () => {
  await storage?.dispose()
  await arlocal?.stop()
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true })
})

test('default: a cold node fetches the model with its batch circuits; the fetched 16-row circuit proves (and its proof verifies), from the cache too', async () => {
  for (const pass of ['fetched', 'cached'] as const) {
    // No local model directories: only storage and the cache.
    const store = createModelStore({ storage, cacheDir, dirs: [], allowInsecureSrs: true })
    const model = await store.get(ref)
    expect(model.dir.startsWith(cacheDir), pass).toBe(true)
    expect(availableBatchSizes(model)).toEqual([16, 64])
    const batch = await loadBatchArtifacts(model, 16, { allowInsecureSrs: true })
    expect(batch.dir).toBe(join(model.dir, 'batch-16'))
    if (pass === 'cached') continue
    const prover = ezklNativeProver()
    try {
      const inputs = Array.from({ length: 16 }, (_, r) =>
        [0.5, -1, 0.25 * (r % 4), 1].map((x) => quantize(x, model.manifest.inputScale)),
      ).flat()
      // Witness, proof and verification, the instances checked against the rows.
      const p = await prover.proveInference(batch, inputs)
      expect(p.output).toHaveLength(16 * model.manifest.outputShape.reduce((a, b) => a * b, 1))
    } finally {
      await prover.dispose()
    }
  }
}, 240_000)
