import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // WASM proofs take seconds each; loading artifacts and warming workers happens in hooks.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    retry: 0,
    pool: 'forks',
  },
})
