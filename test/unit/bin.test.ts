/** The `sertn` executable (package.json `bin`) runs the command line without a build step. */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)

describe('the sertn bin', () => {
  it('is the package.json bin and prints the usage', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> }
    expect(pkg.bin.sertn).toBe('cli/bin/sertn.mjs')
    const { stdout } = await run(process.execPath, [pkg.bin.sertn!, 'help'], { timeout: 60_000 })
    expect(stdout).toMatch(/sertn start/)
    expect(stdout).toMatch(/sertn worker/)
  }, 90_000)

  it('exits 2 with a usage error on an unknown command', async () => {
    const err = await run(process.execPath, ['cli/bin/sertn.mjs', 'no-such-command'], { timeout: 60_000 }).catch((e: unknown) => e)
    expect((err as { code?: number }).code).toBe(2)
    expect((err as { stderr?: string }).stderr).toMatch(/unknown command "no-such-command"/)
  }, 90_000)
})
