import { beforeAll } from 'vitest'
import { testProverPlugin } from '../../core/conformance/prover.ts'
import { ensureNativeEzkl, ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { ezklWasmProver } from '../../plugins/provers/ezkl-wasm/index.ts'

// Runs `bash circuits/setup-python.sh` unless .tools/venv is up to date (~15 s the first time).
beforeAll(() => ensureNativeEzkl(), 600_000)

testProverPlugin({
  name: 'ezkl-native',
  create: () => ezklNativeProver(),
  crossCheck: [{ name: 'ezkl-wasm', create: () => ezklWasmProver() }],
})
