/**
 * The models a node serves: every `<dir>/<name>/manifest.json`, looked up by on-chain model id
 * (keccak256 of the name), loaded once with every artifact hash checked.
 */
import { readdirSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { keccak256, toHex } from 'viem'
import { SertnError } from './errors.ts'
import { loadModelArtifacts, type ModelArtifacts } from './manifest.ts'
import type { Hex } from './types.ts'

/** The on-chain id of a model: keccak256 of its name. */
export function modelIdOf(name: string): Hex {
  return keccak256(toHex(name))
}

/** The node has no artifacts for a model id it was asked to serve. */
export class UnknownModelError extends SertnError {
  override name = 'UnknownModelError'
  constructor(readonly modelId: string, known: string[]) {
    super(`this node has no model with id ${modelId}`, { details: `known models: ${known.join(', ') || '(none)'}` })
  }
}

export type ModelStore = {
  /** The artifacts of `modelId`, hash-checked; throws UnknownModelError. */
  get(modelId: string): Promise<ModelArtifacts>
  /** Model names by id. */
  list(): Map<Hex, string>
}

export type ModelStoreOptions = {
  /** Directory with one folder per model. */
  dir: string
  allowInsecureSrs?: boolean
}

export function createModelStore({ dir, allowInsecureSrs = false }: ModelStoreOptions): ModelStore {
  const root = resolve(dir)
  const byId = new Map<Hex, string>()
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (e.isDirectory() && existsSync(join(root, e.name, 'manifest.json'))) byId.set(modelIdOf(e.name), e.name)
  }
  const loaded = new Map<string, Promise<ModelArtifacts>>()
  return {
    list: () => new Map(byId),
    get(modelId) {
      const name = byId.get(modelId.toLowerCase() as Hex)
      if (!name) return Promise.reject(new UnknownModelError(modelId, [...byId.values()]))
      let p = loaded.get(name)
      if (!p) {
        p = loadModelArtifacts(join(root, name), { allowInsecureSrs })
        p.catch(() => loaded.delete(name))
        loaded.set(name, p)
      }
      return p
    },
  }
}
