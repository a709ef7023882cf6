/**
 * The Temporal CLI (its dev server runs the local stack and the tests).
 *
 * It is not on npm: {@link ensureTemporalCli} uses `temporal` from the PATH when there is one, else
 * the copy in the project's tools folder, else builds it once with
 * `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into `.tools/bin` (about 5 minutes
 * and 3 GB of Go caches, once; later runs reuse it).
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SertnError } from '../../core/errors.ts'

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal'
export const TEMPORAL_CLI_VERSION = 'v1.5.1'

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const TOOLS_BIN = join(REPO_ROOT, '.tools', 'bin')

export class TemporalCliMissingError extends SertnError {
  override name = 'TemporalCliMissingError'
}

function onPath(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  const path = r.stdout.trim()
  return r.status === 0 && path ? path : undefined
}

/** The Temporal CLI's path if it is already installed (PATH, then the tools folder). */
export function findTemporalCli(): string | undefined {
  if (process.env.SERTN_TEMPORAL_CLI) return process.env.SERTN_TEMPORAL_CLI
  const local = join(TOOLS_BIN, 'temporal')
  const stamp = `${local}.version`
  if (existsSync(local) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === TEMPORAL_CLI_VERSION) return local
  return onPath('temporal')
}

/**
 * Returns the Temporal CLI's path, building it with Go into `.tools/bin` if needed.
 * @param log receives progress lines while building
 */
export async function ensureTemporalCli(log: (line: string) => void = (l) => console.error(l)): Promise<string> {
  const found = findTemporalCli()
  if (found) return found
  const go = onPath('go')
  if (!go) {
    throw new TemporalCliMissingError('the Temporal CLI is not installed and Go is not available to build it', {
      details: `Install Go (https://go.dev/dl) and run again (it runs \`go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\` into .tools/bin), or put \`temporal\` on the PATH, or set SERTN_TEMPORAL_CLI=/path/to/temporal.`,
    })
  }
  mkdirSync(TOOLS_BIN, { recursive: true })
  log(`[tools] building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into .tools/bin (first run only, about 5 minutes) …`)
  const started = Date.now()
  const ticker = setInterval(
    () => log(`[tools] … still building the Temporal CLI (${Math.round((Date.now() - started) / 1000)} s)`),
    30_000,
  )
  try {
    const code = await new Promise<number | null>((res) => {
      const child = spawn(go, ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
        env: { ...process.env, GOBIN: TOOLS_BIN, GOFLAGS: '-mod=mod' },
        stdio: ['ignore', 'inherit', 'inherit'],
      })
      child.once('exit', res)
      child.once('error', () => res(null))
    })
    if (code !== 0) {
      throw new TemporalCliMissingError(`building the Temporal CLI failed (go install exited ${code})`, {
        details: 'See the Go output above; Go needs to reach its module proxy.',
      })
    }
  } finally {
    clearInterval(ticker)
  }
  const path = join(TOOLS_BIN, 'temporal')
  writeFileSync(`${path}.version`, TEMPORAL_CLI_VERSION)
  log(`[tools] Temporal CLI ready in ${Math.round((Date.now() - started) / 1000)} s: ${path}`)
  return path
}
