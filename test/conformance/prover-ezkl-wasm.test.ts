import { beforeAll } from 'vitest'
import { testProverPlugin } from '../../core/conformance/prover.ts'
import { ensureNativeEzkl, ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { ezklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'

// The cross-check proves with native ezkl too: create .tools/venv if needed (idempotent).
beforeAll(() => ensureNativeEzkl(), 600_000)

testProverPlugin({
  name: 'ezkl-wasm',
  create: () => ezklWasmProver(),
  crossCheck: [{ name: 'ezkl-native', create: () => ezklNativeProver() }],
})
