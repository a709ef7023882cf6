/**
 * Proving keys, derived and cached by the prover that needs them.
 *
 * A model ships no proving key (hundreds of MB at logrows 16): a prover derives it from the compiled
 * circuit and the SRS, checks that the verifying key derived beside it is byte-identical to the one
 * the model pins (so the proofs it makes verify against the registered VKA), and caches it on disk
 * under the model's content hash. A cached key is reused after a restart; one whose bytes no longer
 * hash to what was recorded is derived again.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SertnError } from '../../../core/errors.ts'
import type { ModelArtifacts } from '../../../core/manifest.ts'

/** Where provers cache proving keys unless told otherwise: `.tools/keys` in this repository. */
export const DEFAULT_KEYS_DIR = resolve(fileURLToPath(new URL('../../../.tools/keys', import.meta.url)))

/** A proving key on disk. */
export interface ProvingKeyFile {
  readonly path: string
  readonly sha256: string
  readonly bytes: number
}

/** Derives a model's keys, writing the proving key to `pkPath`; resolves to the derived verifying key. */
export type DeriveKeys = (model: ModelArtifacts, pkPath: string) => Promise<{ vk: Uint8Array; ms: number }>

/** The verifying key a prover derived differs from the one the model pins: its proofs would not verify. */
export class VerifyingKeyMismatchError extends SertnError {
  static override readonly errorCode = 'ModelUnavailable'
  override name = 'VerifyingKeyMismatchError'
  constructor(
    readonly model: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`model ${model}: the verifying key derived from model.compiled and the SRS has sha256 ${actual}, but vk.key pins ${expected}`, {
      details:
        'The compiled circuit, the SRS and the verifying key do not belong together: rebuild the model, or fetch its artifacts again.',
    })
  }
}

type Meta = { sha256: string; bytes: number; vk: string; ms: number }

export interface ProvingKeyStore {
  readonly dir: string
  /** The model's proving key: from the cache, or derived with `derive` (and checked) on first use. */
  get(model: ModelArtifacts, derive: DeriveKeys): Promise<ProvingKeyFile>
  /** Takes a proving key made with the model's own setup (the build does this) into the cache. */
  adopt(model: ModelArtifacts, pk: Uint8Array): Promise<ProvingKeyFile>
}

/** A store caching keys in `<dir>/<contentHash>/pk.key` (default {@link DEFAULT_KEYS_DIR}). */
export function createProvingKeyStore({ dir = DEFAULT_KEYS_DIR }: { dir?: string } = {}): ProvingKeyStore {
  const root = resolve(dir)
  const inFlight = new Map<string, Promise<ProvingKeyFile>>()
  const paths = (model: ModelArtifacts) => {
    const d = join(root, model.contentHash)
    return { dir: d, pk: join(d, 'pk.key'), meta: join(d, 'pk.json') }
  }
  const pinnedVk = (model: ModelArtifacts) => model.manifest.files['vk.key'] as string

  async function cached(model: ModelArtifacts): Promise<ProvingKeyFile | undefined> {
    const p = paths(model)
    try {
      const meta = JSON.parse(await readFile(p.meta, 'utf8')) as Meta
      const s = await stat(p.pk)
      if (meta.vk !== pinnedVk(model) || s.size !== meta.bytes || (await sha256File(p.pk)) !== meta.sha256) return undefined
      return { path: p.pk, sha256: meta.sha256, bytes: meta.bytes }
    } catch {
      return undefined
    }
  }

  async function store(model: ModelArtifacts, write: (tmp: string) => Promise<{ vk: Uint8Array; ms: number }>): Promise<ProvingKeyFile> {
    const p = paths(model)
    await mkdir(p.dir, { recursive: true })
    const tmp = `${p.pk}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    try {
      const { vk, ms } = await write(tmp)
      const vkHash = createHash('sha256').update(vk).digest('hex')
      if (vkHash !== pinnedVk(model)) throw new VerifyingKeyMismatchError(model.manifest.name, pinnedVk(model), vkHash)
      const [sha256, s] = await Promise.all([sha256File(tmp), stat(tmp)])
      await rename(tmp, p.pk)
      const meta: Meta = { sha256, bytes: s.size, vk: vkHash, ms: Math.round(ms) }
      await writeFile(`${p.meta}.tmp`, JSON.stringify(meta))
      await rename(`${p.meta}.tmp`, p.meta)
      return { path: p.pk, sha256, bytes: s.size }
    } finally {
      await rm(tmp, { force: true })
    }
  }

  const once = (model: ModelArtifacts, make: () => Promise<ProvingKeyFile>): Promise<ProvingKeyFile> => {
    let p = inFlight.get(model.contentHash)
    if (!p) {
      p = make()
      inFlight.set(model.contentHash, p)
      p.catch(() => inFlight.delete(model.contentHash))
    }
    return p
  }

  return {
    dir: root,
    get: (model, derive) => once(model, async () => (await cached(model)) ?? store(model, (tmp) => derive(model, tmp))),
    adopt: (model, pk) => {
      inFlight.delete(model.contentHash)
      return once(model, () =>
        store(model, async (tmp) => {
          await writeFile(tmp, pk)
          return { vk: model.vk, ms: 0 }
        }),
      )
    },
  }
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const h = createHash('sha256')
    createReadStream(path)
      .on('data', (chunk) => h.update(chunk))
      .on('error', reject)
      .on('end', () => resolvePromise(h.digest('hex')))
  })
}
