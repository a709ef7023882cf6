/** Test helpers for model artifacts and the engine's proof files. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { quantize } from '../../core/field.ts'
import type { ModelArtifacts } from '../../core/manifest.ts'

/** The model's sample input (circuits/<model>/input.json), quantised at its input scale. */
export async function sampleInputQ(artifacts: ModelArtifacts): Promise<bigint[]> {
  const json = JSON.parse(await readFile(join(artifacts.dir, 'input.json'), 'utf8')) as { input_data: number[][] }
  return json.input_data.flat().map((x) => quantize(x, artifacts.manifest.inputScale))
}

/** A proof file with one byte of its raw proof flipped (`hex_proof` kept consistent). */
export function tamperProofByte(proofJson: Uint8Array, index: number): Uint8Array {
  const json = JSON.parse(new TextDecoder().decode(proofJson)) as { proof: number[]; hex_proof?: string }
  const byte = json.proof[index]
  if (byte === undefined) throw new RangeError(`the proof has no byte ${index}`)
  json.proof[index] = byte ^ 0x01
  if (json.hex_proof !== undefined) json.hex_proof = `0x${Buffer.from(json.proof).toString('hex')}`
  return new TextEncoder().encode(JSON.stringify(json))
}

/** The committed circuits use a locally generated (insecure) SRS: tests accept it explicitly. */
export const DEV_ONLY = { allowInsecureSrs: true } as const
