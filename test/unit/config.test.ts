import { describe, expect, test } from 'vitest'
import { applyEnvOverrides, parseConfig } from '../../core/config.ts'
import { ConfigError } from '../../core/errors.ts'

const minimal = {
  node: { privateKey: `0x${'11'.repeat(32)}` },
  chains: { local: { chainId: 31337, rpcUrl: 'http://127.0.0.1:8545', gateway: `0x${'22'.repeat(20)}` } },
}

describe('config', () => {
  test('default: fills defaults', () => {
    const c = parseConfig(minimal)
    expect(c.temporal).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueues: {
        chainIo: 'sertn-chain-io',
        inference: 'sertn-inference',
        prover: 'sertn-prover-cpu',
        proverGpu: 'sertn-prover-gpu',
        batch: 'sertn-batch',
      },
      chainIoConcurrency: 256,
    })
    expect(c.prover).toEqual({ plugin: 'ezkl-wasm', poolSize: 1, hardware: 'cpu', routing: { gpu: false, pin: {} } })
    expect(c.chains.local!.confirmations).toBe(1)
    expect(c.models.allowInsecureSrs).toBe(false)
  })

  test('behavior: environment overrides win, with JSON values', () => {
    const merged = applyEnvOverrides(minimal, {
      SERTN__PROVER__PLUGIN: 'ezkl-native',
      SERTN__PROVER__POOL_SIZE: '2',
      SERTN__CHAINS__LOCAL__RPC_URL: 'http://127.0.0.1:9999',
      SERTN__MODELS__ALLOW_INSECURE_SRS: 'true',
      OTHER: 'ignored',
    })
    const c = parseConfig(merged)
    expect(c.prover).toMatchObject({ plugin: 'ezkl-native', poolSize: 2 })
    expect(c.chains.local!.rpcUrl).toBe('http://127.0.0.1:9999')
    expect(c.models.allowInsecureSrs).toBe(true)
  })

  test('error: names every bad field', () => {
    const bad = { ...minimal, prover: { plugin: '' }, chains: { local: { ...minimal.chains.local, gateway: '0x12' } } }
    const err = (() => {
      try {
        parseConfig(bad, 'sertn.config.json')
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toMatch(/chains\.local\.gateway: expected a 0x-prefixed 20-byte address/)
    expect((err as Error).message).toMatch(/prover\.plugin:/)
  })

  test('a configuration without a node key parses: roles that never sign need none', () => {
    const c = parseConfig({ chains: minimal.chains })
    expect(c.node.privateKey).toBeUndefined()
    expect(c.chains.local!.fees.bumpPercent).toBe(25)
    expect(c.observability.http.port).toBeUndefined()
  })

  test('error: a fee bump under the 10% that nodes require', () => {
    expect(() => parseConfig({ ...minimal, chains: { local: { ...minimal.chains.local, fees: { bumpPercent: 5 } } } })).toThrow(
      /fees\.bumpPercent/,
    )
  })
})
