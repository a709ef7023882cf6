/**
 * `sertn keys new|import|address|list` through the CLI: keystores written with cast's scrypt
 * parameters, private to their owner, readable by ethers v5; passwords and raw keys from files
 * (trailing newline trimmed); a wrong password, an existing name and a missing terminal each end
 * in one line saying what to do.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Wallet } from 'ethers'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CAST_SCRYPT, readKeystore } from '../../core/keys.ts'

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318'

let dir: string
let ks: string
const running = new Set<number>()

type Run = { code: number | null; stdout: string; stderr: string }

/** `sertn …` in its own process group, stdin closed (no terminal), killed after a minute. */
function sertn(args: string[]): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/sertn.ts', ...args], {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    const pid = child.pid!
    running.add(pid)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const kill = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, 60_000)
    child.once('exit', (code) => {
      clearTimeout(kill)
      running.delete(pid)
      setTimeout(() => done({ code, stdout, stderr }), 50)
    })
  })
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sertn-keys-cli-'))
  ks = join(dir, 'keystores')
  await writeFile(join(dir, 'password'), 'open sesame\n')
  await writeFile(join(dir, 'wrong'), 'open barley\n')
  await writeFile(join(dir, 'key'), `${KEY.slice(2)}\n`)
})

afterAll(async () => {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  await rm(dir, { recursive: true, force: true })
})

describe('sertn keys', () => {
  test('default: new writes a keystore (cast parameters, owner-only) that ethers opens, and prints its address', async () => {
    const r = await sertn(['keys', 'new', 'node', '--keystore-dir', ks, '--password-file', join(dir, 'password')])
    expect(r.code, r.stderr).toBe(0)
    const file = join(ks, 'node')
    const address = r.stdout.match(/^Address: (0x[0-9a-fA-F]{40})$/m)?.[1]
    expect(r.stdout).toContain(`Created new encrypted keystore file: ${file}`)
    expect(address, r.stdout).toBeDefined()
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const json = JSON.parse(await readFile(file, 'utf8')) as { crypto: { kdf: string; kdfparams: { n: number; r: number; p: number } } }
    expect(json.crypto.kdf).toBe('scrypt')
    expect(json.crypto.kdfparams).toMatchObject({ n: CAST_SCRYPT.n, r: CAST_SCRYPT.r, p: CAST_SCRYPT.p })
    expect((await Wallet.fromEncryptedJson(JSON.stringify(json), 'open sesame')).address).toBe(address)
  })

  test('default: import encrypts a raw key from a file (0x optional), and address reads it back', async () => {
    const r = await sertn([
      'keys',
      'import',
      'relayer',
      '--private-key-file',
      join(dir, 'key'),
      '--password-file',
      join(dir, 'password'),
      '--keystore-dir',
      ks,
    ])
    expect(r.code, r.stderr).toBe(0)
    const address = privateKeyToAccount(KEY).address
    expect(r.stdout).toContain(`\`relayer\` keystore was saved successfully (${join(ks, 'relayer')}). Address: ${address}`)
    expect(await readKeystore(join(ks, 'relayer'), 'open sesame')).toBe(KEY)
    const a = await sertn(['keys', 'address', 'relayer', '--keystore-dir', ks, '--password-file', join(dir, 'password')])
    expect(a.code, a.stderr).toBe(0)
    expect(a.stdout.trim()).toBe(address)
  })

  test("default: list names the directory's keystores", async () => {
    await writeFile(join(ks, 'notes.txt'), 'not a keystore')
    const r = await sertn(['keys', 'list', '--keystore-dir', ks])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim().split('\n')).toEqual(['node', 'relayer'])
  })

  test('error: a wrong password is one line and exit code 1', async () => {
    const r = await sertn(['keys', 'address', join(ks, 'relayer'), '--password-file', join(dir, 'wrong')])
    expect(r.code).toBe(1)
    expect(r.stderr.trim()).toBe(`error: wrong password for keystore ${join(ks, 'relayer')}`)
  })

  test('error: an existing name is not replaced; without a terminal a password file is asked for', async () => {
    const again = await sertn([
      'keys',
      'import',
      'relayer',
      '--private-key-file',
      join(dir, 'key'),
      '--password-file',
      join(dir, 'password'),
      '--keystore-dir',
      ks,
    ])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain(`error: ${join(ks, 'relayer')} exists: choose another name, or remove it first`)
    const noTty = await sertn(['keys', 'new', 'other', '--keystore-dir', ks])
    expect(noTty.code).toBe(2)
    expect(noTty.stderr).toContain('error: no terminal to ask on: pass --password-file FILE')
  })
})
