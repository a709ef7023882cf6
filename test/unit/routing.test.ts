/**
 * Prover routing: the queue a proof goes to (pins, then the circuit's memory against the CPU
 * class's), the memory figures it reads (the manifest's, raised by measurements), the queues a
 * node's configuration gives its workflows and workers, and a prover worker's refusal of a
 * circuit it cannot hold.
 */
import { MockActivityEnvironment } from '@temporalio/testing'
import { describe, expect, test } from 'vitest'
import { parseConfig } from '../../core/config.ts'
import { loadModelArtifacts, modelDir, provingMemoryFor, provingMemoryOf, parseManifest } from '../../core/manifest.ts'
import { createActivities, type ActivityDeps } from '../../workflows/activities/index.ts'
import { proverRouteOf, withMeasured } from '../../workflows/routing.ts'
import { queueOfRole, taskQueuesOf } from '../../workflows/worker/index.ts'
import type { InferenceRequest } from '../../core/types.ts'
import { DEV_ONLY } from '../support/artifacts.ts'

const MiB = 2 ** 20
const queues = { prover: 'cpu-q', routing: { gpu: 'gpu-q', cpuMemoryBytes: 500 * MiB } }

describe('proverRouteOf', () => {
  test('memory: within the CPU class stays there; over it goes to the GPU class', () => {
    expect(proverRouteOf(queues, { model: 'm', size: 16, memoryBytes: 500 * MiB })).toEqual({
      queue: 'cpu-q',
      hardware: 'cpu',
      reason: "needs 500 MiB, within the CPU provers' 500 MiB",
    })
    expect(proverRouteOf(queues, { model: 'm', size: 64, memoryBytes: 500 * MiB + 1 })).toMatchObject({ queue: 'gpu-q', hardware: 'gpu' })
  })

  test('pins: `name@rows` wins over `name`, which wins over memory', () => {
    const pinned = { ...queues, routing: { ...queues.routing, pin: { m: 'gpu' as const, 'm@64': 'cpu' as const } } }
    expect(proverRouteOf(pinned, { model: 'm', size: 1, memoryBytes: 1 })).toMatchObject({ queue: 'gpu-q', reason: 'pinned to gpu (m)' })
    expect(proverRouteOf(pinned, { model: 'm', size: 64, memoryBytes: 10_000 * MiB })).toMatchObject({
      queue: 'cpu-q',
      reason: 'pinned to cpu (m@64)',
    })
    expect(proverRouteOf(pinned, { model: 'other', size: 1, memoryBytes: 1 })).toMatchObject({ queue: 'cpu-q' })
  })

  test('a node without GPU provers sends everything to the CPU queue, and says why', () => {
    const cpuOnly = { prover: 'cpu-q', routing: { cpuMemoryBytes: 500 * MiB, pin: { m: 'gpu' as const } } }
    expect(proverRouteOf(cpuOnly, { model: 'x', size: 64, memoryBytes: 900 * MiB })).toEqual({
      queue: 'cpu-q',
      hardware: 'cpu',
      reason: "needs 900 MiB, over the CPU provers' 500 MiB, and the node has no GPU provers",
    })
    expect(proverRouteOf(cpuOnly, { model: 'm', size: 1 }).reason).toBe('pinned to gpu (m), but the node has no GPU provers')
  })

  test('workflows from before routing (no routing in their queues) and unknown needs go to the one prover queue', () => {
    expect(proverRouteOf({ prover: 'old' }, { model: 'm', size: 64, memoryBytes: 1e12 })).toEqual({
      queue: 'old',
      hardware: 'cpu',
      reason: 'one prover queue',
    })
    expect(proverRouteOf(queues, { model: 'm', size: 16 }).reason).toBe('its memory need is unknown')
  })

  test('withMeasured raises a figure to a larger measurement, never lowers it, and adds an unknown size', () => {
    const list = [{ size: 16, memoryBytes: 200 }]
    expect(withMeasured(list, 16, 300)).toEqual([{ size: 16, memoryBytes: 300 }])
    expect(withMeasured(list, 16, 100)).toEqual(list)
    expect(withMeasured(list, 64, 900)).toEqual([...list, { size: 64, memoryBytes: 900 }])
    expect(withMeasured(list, 16, undefined)).toEqual(list)
  })
})

describe('memory figures', () => {
  test('the formula: 64 MiB and 2.5 times the proving key, in whole MiB; a manifest without it is bounded by its size', () => {
    expect(provingMemoryFor(0)).toBe(64 * MiB)
    expect(provingMemoryFor(276_956_939)).toBe(725 * MiB)
    expect(provingMemoryOf({ logrows: 16, proving: { keyBytes: 1, memoryBytes: 123 } })).toBe(123)
    // Without the field: 2^16 rows at 32 KiB each, the formula applied.
    expect(provingMemoryOf({ logrows: 16 })).toBe(provingMemoryFor(2 ** 16 * 32 * 1024))
  })

  test('the committed demo manifest records its proving key and the memory it needs', async () => {
    const demo = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
    expect(demo.manifest.proving).toEqual({ keyBytes: expect.any(Number), memoryBytes: provingMemoryFor(demo.manifest.proving!.keyBytes) })
  })

  test('error: a manifest whose `proving` is not two integers is refused', async () => {
    const demo = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
    const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify({ ...demo.manifest, proving: v }))
    expect(() => parseManifest('m.json', bytes({ keyBytes: 1, memoryBytes: '2' }))).toThrow(/"proving" must hold/)
    expect(() => parseManifest('m.json', bytes({ keyBytes: 1, memoryBytes: 0 }))).toThrow(/"proving" must hold/)
  })
})

describe('configuration', () => {
  const minimal = {
    node: { privateKey: `0x${'11'.repeat(32)}` },
    chains: { local: { chainId: 31337, rpcUrl: 'http://127.0.0.1:8545', gateway: `0x${'22'.repeat(20)}` } },
  }

  test('a node without GPU provers routes to the CPU queue only; with them, the GPU queue is named', () => {
    expect(taskQueuesOf(parseConfig(minimal)).routing).toEqual({ cpuMemoryBytes: expect.any(Number) })
    const gpu = parseConfig({ ...minimal, prover: { routing: { gpu: true, cpuMemoryBytes: 1024, pin: { m: 'gpu' } } } })
    expect(taskQueuesOf(gpu)).toMatchObject({
      prover: 'sertn-prover-cpu',
      routing: { gpu: 'sertn-prover-gpu', cpuMemoryBytes: 1024, pin: { m: 'gpu' } },
    })
  })

  test("a prover worker polls its hardware class's queue", () => {
    expect(queueOfRole(parseConfig(minimal), 'prover')).toBe('sertn-prover-cpu')
    expect(queueOfRole(parseConfig({ ...minimal, prover: { hardware: 'gpu' } }), 'prover')).toBe('sertn-prover-gpu')
    expect(queueOfRole(parseConfig(minimal), 'chain-io')).toBe('sertn-chain-io')
  })
})

describe('a prover worker', () => {
  test('error: refuses, without proving, a circuit that needs more memory than it offers, naming the settings', async () => {
    const demo = await loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY)
    let proofs = 0
    const deps = {
      models: { get: async () => demo },
      prover: {
        proveInference: async () => {
          proofs++
          throw new Error('not reached')
        },
      },
      proverWorker: { hardware: 'cpu', memoryBytes: 10 * MiB },
    } as unknown as ActivityDeps
    const activities = createActivities(deps)
    const request = { key: 'req:1:0x00:1', input: ['1', '2', '3', '4'] } as unknown as InferenceRequest
    const ref = { name: demo.manifest.name } as never
    const run = new MockActivityEnvironment().run(activities.proveInference, request, ref)
    await expect(run).rejects.toThrow(/needs 75 MiB to prove; this cpu prover offers 10 MiB a proof/)
    await expect(run).rejects.toMatchObject({ type: 'ProverCapacityError', nonRetryable: true })
    expect(proofs).toBe(0)
  })
})
