/**
 * The hub market's cached gas estimates are kept per model version (as the gateway's are): a new
 * version is a new circuit with its own verification cost.
 */
import { describe, expect, test } from 'vitest'
import { marketEstimateKey } from '../../chains/evm/plugin/market.ts'
import { chainId, modelId } from '../../core/types.ts'

const request = { modelId: modelId(`0x${'ab'.repeat(32)}`), modelVersion: 1, chainId: chainId(31338) }

describe('the market gas-estimate cache key', () => {
  test('differs between two versions of one model', () => {
    expect(marketEstimateKey('submitResult', request)).not.toBe(marketEstimateKey('submitResult', { ...request, modelVersion: 2 }))
  })
  test('differs by operation and by requesting chain, and is the same for the same request terms', () => {
    const key = marketEstimateKey('submitResult', request)
    expect(marketEstimateKey('failRequest', request)).not.toBe(key)
    expect(marketEstimateKey('submitResult', { ...request, chainId: chainId(31339) })).not.toBe(key)
    expect(marketEstimateKey('submitResult', { ...request })).toBe(key)
  })
})
