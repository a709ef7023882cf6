import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { feltToLeHex, fromFelt, toFelt } from '../../core/field.ts'
import { loadModelArtifacts, type ModelArtifacts, modelDir } from '../../core/manifest.ts'
import {
  createEzklWasmProver,
  type EzklWasmProver,
  type InferenceProof,
  InputOutOfRangeError,
  InputShapeError,
  ProverDisposedError,
  ProverError,
  type ProveResult,
  type WitnessResult,
} from '../../plugins/provers/ezkl-wasm/index.ts'
import { WorkerPool } from '../../plugins/provers/ezkl-wasm/pool.ts'
import { sampleInputQ, tamperProofByte, DEV_ONLY } from '../support/artifacts.ts'

/** Two WASM proofs in this file: the demo's sample input, and the twin's. Every test reuses them. */
describe('plugins/provers/ezkl-wasm', () => {
  let demo: ModelArtifacts
  let twin: ModelArtifacts
  let prover: EzklWasmProver
  let inputQ: bigint[]
  let wit: WitnessResult
  let proved: ProveResult
  let twinProof: InferenceProof

  beforeAll(async () => {
    ;[demo, twin] = await Promise.all([
      loadModelArtifacts(modelDir('sertn-mlp-demo'), DEV_ONLY),
      loadModelArtifacts(modelDir('sertn-mlp-twin'), DEV_ONLY),
    ])
    prover = createEzklWasmProver()
    inputQ = await sampleInputQ(demo)
    wit = await prover.witness(demo, inputQ)
    proved = await prover.prove(demo, wit.witness)
    twinProof = await prover.proveInference(twin, await sampleInputQ(twin))
  })

  afterAll(async () => {
    await prover?.dispose()
  })

  it('default: the demo proof of the sample input verifies', async () => {
    const v = await prover.verify(demo, proved.proofJson)
    expect(v).toMatchObject({ ok: true })
    expect(v.reason).toBeUndefined()
    const proofBytes = (proved.proof.length - 2) / 2
    console.info(
      `ezkl-wasm demo: witness ${wit.ms.toFixed(0)} ms, prove ${proved.ms.toFixed(0)} ms, verify ${v.ms.toFixed(0)} ms, ` +
        `proof ${proofBytes} bytes, proof.json ${proved.proofJson.length} bytes`,
    )
    expect(proofBytes).toBeGreaterThan(2000)
    expect(proofBytes).toBeLessThan(5000)
  })

  it('behavior: instances are the input then the output, as field elements', () => {
    expect(inputQ).toHaveLength(4)
    expect(wit.output).toHaveLength(3)
    expect(proved.instances).toEqual([...inputQ, ...wit.output].map(toFelt))
  })

  it('behavior: the output decoded from the instances equals the witness output', () => {
    const fromInstances = proved.instances.slice(inputQ.length).map(fromFelt)
    expect(fromInstances).toEqual(wit.output)
  })

  it('behavior: the proof file carries the same instances and proof bytes', () => {
    const json = JSON.parse(new TextDecoder().decode(proved.proofJson)) as { instances: string[][]; proof: number[]; hex_proof?: string }
    expect(json.instances.flat()).toEqual(proved.instances.map(feltToLeHex))
    expect(`0x${Buffer.from(json.proof).toString('hex')}`).toBe(proved.proof)
    if (json.hex_proof !== undefined) expect(json.hex_proof).toBe(proved.proof)
  })

  it('behavior: the witness output agrees with its rescaled outputs', () => {
    const json = JSON.parse(new TextDecoder().decode(wit.witness)) as { pretty_elements: { rescaled_outputs: string[][] } }
    const rescaled = json.pretty_elements.rescaled_outputs.flat().map(Number)
    expect(rescaled).toEqual(wit.output.map((q) => Number(q) / 2 ** demo.manifest.outputScale))
  })

  it('behavior: proveInference proves and checks the twin model', async () => {
    expect(twinProof.instances.slice(0, 4).map(fromFelt)).toEqual(await sampleInputQ(twin))
    expect(twinProof.instances.slice(4).map(fromFelt)).toEqual(twinProof.output)
    expect(twinProof.proveMs).toBeGreaterThan(0)
    expect((await prover.verify(twin, twinProof.proofJson)).ok).toBe(true)
  })

  it("behavior: each model's artifacts reach the worker once, and once more with the proving key when it is derived after a bare witness", () => {
    // demo: witness (artifacts), then prove (the derived proving key joins them); twin: proveInference (both at once).
    const stats = prover.stats()
    expect(stats.workersStarted).toBe(1)
    expect(stats.artifactLoads).toBe(3)
  })

  it('behavior: the witness is deterministic', async () => {
    const again = await prover.witness(demo, inputQ)
    expect(again.output).toEqual(wit.output)
  })

  it('error: a proof with a flipped byte does not verify', async () => {
    for (const index of [0, 100, 1500, 3000]) {
      const v = await prover.verify(demo, tamperProofByte(proved.proofJson, index))
      expect(v.ok, `byte ${index}`).toBe(false)
      expect(v.reason).toBeTypeOf('string')
    }
  })

  it('error: a proof claiming another output does not verify', async () => {
    const json = JSON.parse(new TextDecoder().decode(proved.proofJson)) as { instances: string[][] }
    const row = json.instances[0] as string[]
    row[row.length - 1] = feltToLeHex(toFelt((wit.output.at(-1) as bigint) + 1n))
    const v = await prover.verify(demo, new TextEncoder().encode(JSON.stringify(json)))
    expect(v.ok).toBe(false)
  })

  it("error: a twin-model proof does not verify with the demo's vk", async () => {
    const v = await prover.verify(demo, twinProof.proofJson)
    expect(v.ok).toBe(false)
  })

  it('error: a malformed proof file yields ok:false', async () => {
    expect((await prover.verify(demo, new TextEncoder().encode('{}'))).ok).toBe(false)
    expect((await prover.verify(demo, new TextEncoder().encode('not json'))).ok).toBe(false)
  })

  it('error: wrong input length throws InputShapeError before the engine runs', async () => {
    const before = prover.stats().jobsDone
    await expect(prover.witness(demo, inputQ.slice(0, 3))).rejects.toBeInstanceOf(InputShapeError)
    await expect(prover.proveInference(demo, [...inputQ, 0n])).rejects.toMatchObject({ name: 'InputShapeError', retryable: false })
    expect(prover.stats().jobsDone).toBe(before)
  })

  it('error: an out-of-range input throws InputOutOfRangeError before the engine runs', async () => {
    const max = BigInt(demo.manifest.maxAbsInput)
    const before = prover.stats().jobsDone
    await expect(prover.witness(demo, [0n, max + 1n, 0n, 0n])).rejects.toBeInstanceOf(InputOutOfRangeError)
    await expect(prover.proveInference(demo, [-max - 1n, 0n, 0n, 0n])).rejects.toMatchObject({
      name: 'InputOutOfRangeError',
      retryable: false,
    })
    expect(prover.stats().jobsDone).toBe(before)
  })

  it("error: the engine's failures surface as ProverError and the worker stays usable", async () => {
    const err = await prover.prove(demo, new TextEncoder().encode('not a witness')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProverError)
    expect(err).toMatchObject({ name: 'ProverError', retryable: false })
    expect((err as Error).message).toMatch(/ezkl prove failed: .+/)
    expect((await prover.verify(demo, proved.proofJson)).ok).toBe(true)
  })

  it('behavior: a pool of two workers runs jobs concurrently with the same results', async () => {
    const pool = createEzklWasmProver({ size: 2 })
    try {
      const results = await Promise.all([0, 1, 2, 3].map(() => pool.witness(demo, inputQ)))
      for (const r of results) expect(r.output).toEqual(wit.output)
      expect(pool.stats().workersStarted).toBe(2)
      expect(pool.stats().artifactLoads).toBe(2)
    } finally {
      await pool.dispose()
    }
  })

  it('error: an engine trap (Rust panic) fails the job and the worker is replaced', async () => {
    // input_data [] makes genWitness panic: the input checks keep the prover's API from sending it.
    const pool = new WorkerPool()
    try {
      const r = await pool.run('witness', demo, new TextEncoder().encode('{"input_data":[]}'))
      expect(r).toMatchObject({ ok: false, kind: 'trap' })
      if (!r.ok) expect(r.message).toMatch(/unreachable.*panicked at .*index out of bounds/)
      const again = await pool.run(
        'witness',
        demo,
        new TextEncoder().encode(JSON.stringify({ input_data: [inputQ.map((q) => Number(q) / 2 ** demo.manifest.inputScale)] })),
      )
      expect(again.ok).toBe(true)
      expect(pool.stats()).toMatchObject({ workersStarted: 2, artifactLoads: 2 })
    } finally {
      await pool.dispose()
    }
  })

  it('error: a job past jobTimeoutMs fails as retryable and its worker is replaced', async () => {
    const p = createEzklWasmProver({ jobTimeoutMs: 1 })
    try {
      for (let i = 0; i < 2; i++) {
        const err = await p.witness(demo, inputQ).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(ProverError)
        expect(err).toMatchObject({ name: 'ProverError', retryable: true })
      }
      expect(p.stats().workersStarted).toBe(2)
    } finally {
      await p.dispose()
    }
  })

  it('error: a disposed prover rejects with ProverDisposedError', async () => {
    const p = createEzklWasmProver()
    await p.dispose()
    await expect(p.witness(demo, inputQ)).rejects.toBeInstanceOf(ProverDisposedError)
    expect(p.stats().workersStarted).toBe(0)
  })
})
