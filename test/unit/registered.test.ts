/**
 * The check a node makes before it serves a request: the on-chain circuit against its manifest,
 * field by field, and the verifier against the one it trusts.
 */
import { describe, expect, it } from 'vitest'
import { readManifest } from '../../chains/evm/deploy.ts'
import {
  checkRegisteredCircuit,
  CircuitMismatchError,
  modelRefOf,
  servableBatchSizes,
  type RegisteredCircuit,
} from '../../core/registered.ts'
import { InsecureSrsError } from '../../core/manifest.ts'

const { manifest } = readManifest('sertn-mlp-demo')
const TRUSTED = `0x${'aa'.repeat(32)}` as const
const onChain: RegisteredCircuit = {
  modelId: `0x${'01'.repeat(32)}`,
  name: 'sertn-mlp-demo',
  owner: '0x0000000000000000000000000000000000000001',
  version: 1,
  active: true,
  verifier: '0x0000000000000000000000000000000000000002',
  verifierCodeHash: TRUSTED,
  vka: '0x0000000000000000000000000000000000000003',
  vkaCodeHash: manifest.vka.codeHash,
  vkaCodeHashOnChain: manifest.vka.codeHash,
  artifacts: {
    manifestHash: `0x${'02'.repeat(32)}`,
    index: `0x${'03'.repeat(32)}`,
    compiledHash: `0x${manifest.files['model.compiled']}`,
    vkHash: `0x${manifest.files['vk.key']}`,
    settingsHash: `0x${manifest.files['settings.json']}`,
    srsHash: `0x${manifest.srs.sha256}`,
  },
  inputShape: manifest.inputShape,
  outputShape: manifest.outputShape,
  inputScale: manifest.inputScale,
  outputScale: manifest.outputScale,
  maxAbsInput: String(manifest.maxAbsInput),
  inputVisibility: 'public',
  outputVisibility: 'public',
  insecureSrs: true,
}
const options = { trustedVerifierCodeHash: TRUSTED, allowInsecureSrs: true, where: 'chain 31338' }

describe('checkRegisteredCircuit', () => {
  it('default: the registration of the manifest passes', () => {
    expect(() => checkRegisteredCircuit(onChain, manifest, options)).not.toThrow()
    expect(modelRefOf(onChain)).toEqual({
      modelId: onChain.modelId,
      name: 'sertn-mlp-demo',
      version: 1,
      artifacts: onChain.artifacts,
      inputVisibility: 'public',
      outputVisibility: 'public',
    })
  })

  it('error: a verifier other than the trusted one is refused, naming it', () => {
    const err = (() => {
      try {
        checkRegisteredCircuit({ ...onChain, verifierCodeHash: `0x${'bb'.repeat(32)}` }, manifest, options)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(CircuitMismatchError)
    expect((err as CircuitMismatchError).shortMessage).toMatchInlineSnapshot(
      `"model sertn-mlp-demo on chain 31338: its registered verifier is 0x0000000000000000000000000000000000000002 (code hash 0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb), but the pinned reusable verifier (code hash 0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) was expected"`,
    )
  })

  it.each([
    ['VKA code hash', { vkaCodeHash: `0x${'cc'.repeat(32)}`, vkaCodeHashOnChain: `0x${'cc'.repeat(32)}` }],
    ["VKA's code", { vkaCodeHashOnChain: `0x${'dd'.repeat(32)}` }],
    ['input bound', { maxAbsInput: String(manifest.maxAbsInput + 1) }],
    ['input scale', { inputScale: manifest.inputScale + 1 }],
    ['output scale', { outputScale: manifest.outputScale + 1 }],
    ['input visibility', { inputVisibility: 'hashed' }],
    ['output visibility', { outputVisibility: 'hashed' }],
    ['input shape', { inputShape: [4] }],
    ['output shape', { outputShape: [1, 4] }],
    ['insecure-SRS flag', { insecureSrs: false }],
  ] as const)('error: a registered %s that differs from the manifest is refused', (field, change) => {
    expect(() => checkRegisteredCircuit({ ...onChain, ...change } as RegisteredCircuit, manifest, options)).toThrow(
      new RegExp(`its registered ${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    )
  })

  it('error: an insecure SRS is refused where it is not allowed', () => {
    expect(() => checkRegisteredCircuit(onChain, manifest, { ...options, allowInsecureSrs: false })).toThrow(InsecureSrsError)
  })
})

describe('servableBatchSizes', () => {
  const registered = (manifest.batches ?? []).map((b, i) => ({
    size: b.size,
    vka: `0x${String(i + 4).padStart(40, '0')}` as const,
    vkaCodeHashOnChain: b.vka.codeHash,
  }))

  it('default: every batch circuit registered with the manifest’s VKA code is served, smallest first', () => {
    expect(registered.map((b) => b.size)).toEqual([16, 64])
    expect(servableBatchSizes({ ...onChain, batches: [...registered].reverse() }, manifest)).toEqual([16, 64])
  })

  it('a batch circuit registered with other code, or not registered, is not used (its requests go on alone)', () => {
    const [b16, b64] = registered
    expect(servableBatchSizes({ ...onChain, batches: [b16!, { ...b64!, vkaCodeHashOnChain: `0x${'ee'.repeat(32)}` }] }, manifest)).toEqual([
      16,
    ])
    expect(servableBatchSizes({ ...onChain, batches: [b64!] }, manifest)).toEqual([64])
    expect(servableBatchSizes({ ...onChain, batches: [] }, manifest)).toEqual([])
    expect(servableBatchSizes(onChain, manifest)).toEqual([])
  })

  it('a size the manifest does not have is never served, whatever the registry says', () => {
    expect(servableBatchSizes({ ...onChain, batches: [...registered, { ...registered[0]!, size: 32 }] }, manifest)).toEqual([16, 64])
  })
})
