/**
 * startAnvil keeps anvil's persisted states in a folder of its own, removed when anvil exits: anvil
 * writes them under ~/.foundry/anvil/tmp by default and leaves them behind when it is killed (a
 * machine running the test suite and chaos runs filled its disk with 68 GB of them; a 1,000-request
 * chaos run then failed with ENOSPC).
 */
import { existsSync, readFileSync } from 'node:fs'
import { expect, test } from 'vitest'
import { startAnvil } from '../../chains/anvil.ts'

test('anvil persists its states in a folder of its own, removed when it stops or is killed', async () => {
  for (const how of ['stop', 'SIGKILL'] as const) {
    const anvil = await startAnvil()
    try {
      const args = readFileSync(`/proc/${anvil.process.pid}/cmdline`, 'utf8').split('\0')
      const i = args.indexOf('--cache-path')
      expect(i, `anvil is started with --cache-path: ${args.join(' ')}`).toBeGreaterThanOrEqual(0)
      const dir = args[i + 1]!
      expect(existsSync(dir)).toBe(true)
      if (how === 'stop') await anvil.stop()
      else {
        process.kill(-anvil.process.pid, 'SIGKILL')
        await anvil.process.exited
      }
      // Removed once the exit is seen (the removal runs right after).
      for (let t = 0; t < 50 && existsSync(dir); t++) await new Promise((r) => setTimeout(r, 100))
      expect(existsSync(dir), `${how}: ${dir} removed`).toBe(false)
    } finally {
      await anvil.stop().catch(() => {})
    }
  }
})
