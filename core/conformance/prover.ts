/**
 * The conformance suite of ProverPlugin: every prover runs it against the committed demo and twin
 * circuits (circuits/sertn-mlp-demo, circuits/sertn-mlp-twin), and checks its proofs against the
 * other provers' (a node may prove natively while anyone verifies with the WASM engine).
 *
 * @example
 * // test/conformance/prover-ezkl-wasm.test.ts
 * testProverPlugin({ name: 'ezkl-wasm', create: () => ezklWasmProver(), crossCheck: [{ name: 'ezkl-native', create: () => ezklNativeProver() }] })
 *
 * Proofs made: two by the prover under test (demo and twin), one per cross-checked prover.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PluginError } from '../errors.ts'
import { feltToLeHex, fromFelt, quantize, toFelt } from '../field.ts'
import { InputOutOfRangeError, InputShapeError, shapeSize } from '../input.ts'
import { loadModelArtifacts, type ModelArtifacts, modelDir } from '../manifest.ts'
import type { InferenceProof, ProveProgress, ProveResult, ProverPlugin, WitnessResult } from '../plugins.ts'

export interface ProverConformanceOptions {
  /** The plugin's name (`ProverPlugin.name`), also the suite's title. */
  readonly name: string
  /** A fresh instance; the suite disposes every instance it creates. */
  readonly create: () => ProverPlugin
  /**
   * Other provers of the same circuits: each must accept this prover's proofs, and this prover must
   * accept theirs, with identical witness outputs and instances for the same input.
   */
  readonly crossCheck?: ReadonlyArray<{ readonly name: string; readonly create: () => ProverPlugin }>
}

interface CrossCheck {
  readonly name: string
  readonly prover: ProverPlugin
  /** The other prover's witness of the demo's sample input. */
  readonly witness: WitnessResult
  /** The other prover's proof of this prover's witness. */
  readonly proof: ProveResult
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** Declares the suite (a vitest `describe`) for one prover. */
export function testProverPlugin(options: ProverConformanceOptions): void {
  describe(`ProverPlugin conformance: ${options.name}`, () => {
    let demo: ModelArtifacts
    let twin: ModelArtifacts
    let prover: ProverPlugin
    let inputQ: bigint[]
    let witness: WitnessResult
    let proved: InferenceProof
    let twinProof: InferenceProof
    const progress: ProveProgress[] = []
    const progressAt: number[] = []
    const cross: CrossCheck[] = []
    const created: ProverPlugin[] = []
    const create = (make: () => ProverPlugin): ProverPlugin => {
      const p = make()
      created.push(p)
      return p
    }

    beforeAll(async () => {
      ;[demo, twin] = await Promise.all([
        loadModelArtifacts(modelDir('sertn-mlp-demo'), { allowInsecureSrs: true }),
        loadModelArtifacts(modelDir('sertn-mlp-twin'), { allowInsecureSrs: true }),
      ])
      prover = create(options.create)
      inputQ = await sampleInputQ(demo)
      proved = await prover.proveInference(demo, inputQ, {
        onProgress: (p) => {
          progress.push(p)
          progressAt.push(performance.now())
        },
      })
      witness = await prover.witness(demo, inputQ)
      twinProof = await prover.proveInference(twin, await sampleInputQ(twin))
      for (const other of options.crossCheck ?? []) {
        const p = create(other.create)
        const w = await p.witness(demo, inputQ)
        cross.push({ name: other.name, prover: p, witness: w, proof: await p.prove(demo, witness.witness) })
      }
    })

    afterAll(async () => {
      await Promise.all(created.map((p) => p.dispose()))
    })

    it('identity: a prover plugin with boolean flags', () => {
      expect(prover.kind).toBe('prover')
      expect(prover.name).toBe(options.name)
      for (const flag of ['gpu', 'multiThreaded', 'outOfProcess'] as const) expect(prover.flags[flag]).toBeTypeOf('boolean')
    })

    it('proveInference: the proof of the sample input verifies', async () => {
      const v = await prover.verify(demo, proved.proofJson)
      expect(v.ok).toBe(true)
      expect(v.reason).toBeUndefined()
      expect(proved.witnessMs).toBeGreaterThanOrEqual(0)
      expect(proved.proveMs).toBeGreaterThan(0)
      expect(proved.verifyMs).toBeGreaterThanOrEqual(0)
    })

    it('proveInference: the instances are [toFelt(input)…, toFelt(output)…]', () => {
      expect(proved.output).toHaveLength(shapeSize(demo.manifest.outputShape))
      expect(proved.instances).toEqual([...inputQ, ...proved.output].map(toFelt))
      expect(proved.instances.slice(inputQ.length).map(fromFelt)).toEqual(proved.output)
    })

    it('proveInference: the output equals the witness output', () => {
      expect(proved.output).toEqual(witness.output)
    })

    it('proof file: instances as little-endian hex felts, proof as bytes equal to `proof`', () => {
      const json = parseJson(proved.proofJson)
      expect((json.instances as string[][]).flat()).toEqual(proved.instances.map(feltToLeHex))
      const bytes = json.proof as number[]
      expect(bytes.length).toBeGreaterThan(0)
      expect(`0x${Buffer.from(bytes).toString('hex')}`).toBe(proved.proof)
      if (typeof json.hex_proof === 'string') expect(json.hex_proof).toBe(proved.proof)
    })

    it('onProgress: called from the start of each stage, at least once a second', () => {
      expect(progress.length).toBeGreaterThan(0)
      const stages = new Set(progress.map((p) => p.stage))
      expect(stages.has('prove')).toBe(true)
      for (const p of progress) {
        expect(p.elapsedMs).toBeGreaterThanOrEqual(0)
        if (p.fraction !== undefined) expect(p.fraction).toBeGreaterThanOrEqual(0)
        if (p.fraction !== undefined) expect(p.fraction).toBeLessThanOrEqual(1)
      }
      for (let i = 1; i < progress.length; i++) {
        const [a, b] = [progress[i - 1] as ProveProgress, progress[i] as ProveProgress]
        if (a.stage === b.stage) {
          expect(b.elapsedMs).toBeGreaterThanOrEqual(a.elapsedMs)
          // At least once a second, with slack for a loaded machine.
          expect((progressAt[i] as number) - (progressAt[i - 1] as number)).toBeLessThan(1500)
        }
      }
    })

    for (const other of options.crossCheck ?? []) {
      describe(`cross-check with ${other.name}`, () => {
        const get = () => cross.find((c) => c.name === other.name) as CrossCheck

        it(`the same witness outputs and files (but for \`version\`)`, () => {
          const c = get()
          expect(c.witness.output).toEqual(witness.output)
          const strip = (bytes: Uint8Array) => ({ ...parseJson(bytes), version: null })
          expect(strip(c.witness.witness)).toEqual(strip(witness.witness))
        })

        it(`${other.name} accepts this prover's proof`, async () => {
          const v = await get().prover.verify(demo, proved.proofJson)
          expect(v.ok, v.reason).toBe(true)
        })

        it(`this prover accepts ${other.name}'s proof of its witness, with identical instances`, async () => {
          const c = get()
          expect(c.proof.instances).toEqual(proved.instances)
          const v = await prover.verify(demo, c.proof.proofJson)
          expect(v.ok, v.reason).toBe(true)
        })

        it('the same proof file format: keys, proof length, instances', () => {
          const mine = parseJson(proved.proofJson)
          const theirs = parseJson(get().proof.proofJson)
          expect(Object.keys(mine).sort()).toEqual(Object.keys(theirs).sort())
          expect((mine.proof as number[]).length).toBe((theirs.proof as number[]).length)
          expect(mine.instances).toEqual(theirs.instances)
          for (const key of ['transcript_type', 'commitment', 'protocol', 'split'] as const) expect(mine[key]).toEqual(theirs[key])
        })

        it(`${other.name} rejects this prover's twin proof with the demo's vk`, async () => {
          expect((await get().prover.verify(demo, twinProof.proofJson)).ok).toBe(false)
          expect((await get().prover.verify(twin, twinProof.proofJson)).ok).toBe(true)
        })
      })
    }

    it('verify: a proof with a flipped byte does not verify', async () => {
      const length = (parseJson(proved.proofJson).proof as number[]).length
      for (const index of [0, Math.floor(length / 3), length - 1]) {
        const v = await prover.verify(demo, tamperProofByte(proved.proofJson, index))
        expect(v.ok, `byte ${index}`).toBe(false)
        expect(v.reason).toBeTypeOf('string')
      }
    })

    it('verify: a proof claiming another output does not verify', async () => {
      const json = parseJson(proved.proofJson) as { instances: string[][] }
      const row = json.instances[0] as string[]
      row[row.length - 1] = feltToLeHex(toFelt((proved.output.at(-1) as bigint) + 1n))
      expect((await prover.verify(demo, encoder.encode(JSON.stringify(json)))).ok).toBe(false)
    })

    it("verify: a twin proof does not verify with the demo's vk, and does with the twin's", async () => {
      expect((await prover.verify(demo, twinProof.proofJson)).ok).toBe(false)
      expect((await prover.verify(twin, twinProof.proofJson)).ok).toBe(true)
    })

    it('verify: a malformed proof file yields ok: false', async () => {
      for (const text of ['{}', 'not json', '']) {
        const v = await prover.verify(demo, encoder.encode(text))
        expect(v.ok, JSON.stringify(text)).toBe(false)
        expect(v.reason).toBeTypeOf('string')
      }
    })

    it('prove: a malformed witness fails (not retryable) and the prover stays usable', async () => {
      const err = await prover.prove(demo, encoder.encode('not a witness')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(Error)
      expect(err).toMatchObject({ retryable: false })
      expect((await prover.verify(demo, proved.proofJson)).ok).toBe(true)
    })

    it('input: a wrong length throws InputShapeError', async () => {
      for (const bad of [inputQ.slice(0, -1), [...inputQ, 0n], []]) {
        await expect(prover.witness(demo, bad)).rejects.toBeInstanceOf(InputShapeError)
        await expect(prover.proveInference(demo, bad)).rejects.toMatchObject({ name: 'InputShapeError', retryable: false })
      }
    })

    it('input: an out-of-range element throws InputOutOfRangeError', async () => {
      const max = BigInt(demo.manifest.maxAbsInput)
      const withAt = (i: number, q: bigint) => inputQ.map((x, j) => (j === i ? q : x))
      await expect(prover.witness(demo, withAt(1, max + 1n))).rejects.toBeInstanceOf(InputOutOfRangeError)
      await expect(prover.proveInference(demo, withAt(0, -max - 1n))).rejects.toMatchObject({
        name: 'InputOutOfRangeError',
        retryable: false,
      })
      // The bounds themselves are in range.
      expect((await prover.witness(demo, withAt(2, max))).output).toHaveLength(proved.output.length)
    })

    it('keys: a model whose pinned vk is not the one its compiled circuit and SRS derive is refused (VerifyingKeyMismatchError), before any proof', async () => {
      // The demo's circuit with the twin's verifying key pinned: its proofs would never verify
      // against the registered VKA, so the prover must not prove with a key derived for it.
      const dir = await mkdtemp(join(tmpdir(), 'sertn-vk-mismatch-'))
      let err: unknown
      try {
        await cp(demo.dir, dir, { recursive: true })
        await writeFile(join(dir, 'vk.key'), twin.vk)
        const manifest = {
          ...demo.manifest,
          name: 'demo-with-twin-vk',
          files: { ...demo.manifest.files, 'vk.key': twin.manifest.files['vk.key'] as string },
          srs: { ...demo.manifest.srs, file: resolve(demo.dir, demo.manifest.srs.file) },
        }
        await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest))
        const mismatched = await loadModelArtifacts(dir, { allowInsecureSrs: true })
        err = await prover.proveInference(mismatched, inputQ).catch((e: unknown) => e)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
      expect(err).toMatchObject({ name: 'VerifyingKeyMismatchError', retryable: false })
      expect((err as Error).message).toMatch(
        /model demo-with-twin-vk: the verifying key derived from model\.compiled and the SRS has sha256 [0-9a-f]{64}, but vk\.key pins/,
      )
    })

    it('dispose: later calls fail with a PluginError; dispose is idempotent', async () => {
      const p = create(options.create)
      await p.dispose()
      await expect(p.witness(demo, inputQ)).rejects.toBeInstanceOf(PluginError)
      await expect(p.prove(demo, witness.witness)).rejects.toBeInstanceOf(PluginError)
      await expect(p.verify(demo, proved.proofJson)).rejects.toBeInstanceOf(PluginError)
      await expect(p.proveInference(demo, inputQ)).rejects.toBeInstanceOf(PluginError)
      await p.dispose()
    })

    it('dispose: a prover that has worked rejects later calls too', async () => {
      const p = create(options.create)
      expect((await p.verify(demo, proved.proofJson)).ok).toBe(true)
      await p.dispose()
      await expect(p.verify(demo, proved.proofJson)).rejects.toBeInstanceOf(PluginError)
    })
  })
}

/** The model's sample input (circuits/<model>/input.json), quantised at its input scale. */
async function sampleInputQ(artifacts: ModelArtifacts): Promise<bigint[]> {
  const json = JSON.parse(await readFile(join(artifacts.dir, 'input.json'), 'utf8')) as { input_data: number[][] }
  return json.input_data.flat().map((x) => quantize(x, artifacts.manifest.inputScale))
}

/** A proof file with one byte of its raw proof flipped (`hex_proof` kept consistent). */
function tamperProofByte(proofJson: Uint8Array, index: number): Uint8Array {
  const json = parseJson(proofJson) as { proof: number[]; hex_proof?: string }
  const byte = json.proof[index]
  if (byte === undefined) throw new RangeError(`the proof has no byte ${index}`)
  json.proof[index] = byte ^ 0x01
  if (typeof json.hex_proof === 'string') json.hex_proof = `0x${Buffer.from(json.proof).toString('hex')}`
  return encoder.encode(JSON.stringify(json))
}

function parseJson(bytes: Uint8Array): Record<string, unknown> {
  return JSON.parse(decoder.decode(bytes)) as Record<string, unknown>
}
