/**
 * The `sertn` command line.
 *
 *   sertn demo [--model NAME] [--features x1,x2,x3,x4]   one verified inference on a local anvil, in one process
 *   sertn worker [--role ROLES] [--config FILE]          Temporal workers (chain-io, inference, prover)
 *   sertn help
 */
import { parseArgs } from 'node:util'
import { runDemo } from './demo.ts'
import { workerCommand } from './worker.ts'

const HELP = `sertn — verified ML inference for smart contracts

Usage:
  sertn demo [--model NAME] [--features x1,x2,x3,x4]
      Start a local anvil, deploy the contracts, and serve one request from the example dApp:
      inference, witness, proof, on-chain verification and the dApp's callback.
  sertn worker [--role chain-io,inference,prover] [--config sertn.config.json] [--log-level warn]
      Run Temporal workers for the given task-queue roles (all by default); with chain-io, also the
      chain watchers that start a workflow per confirmed request. Configuration: the file (default
      sertn.config.json, or SERTN_CONFIG) plus SERTN__* environment overrides.
  sertn help

Options:
  --model      model directory under circuits/ (default: sertn-mlp-demo)
  --features   comma-separated real inputs (default: 0.5,-1.25,2,0.75)
`

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv
  switch (command) {
    case 'demo': {
      const { values } = parseArgs({
        args: rest,
        options: { model: { type: 'string', default: 'sertn-mlp-demo' }, features: { type: 'string', default: '0.5,-1.25,2,0.75' } },
      })
      const features = values.features.split(',').map(Number)
      if (features.some((x) => !Number.isFinite(x))) {
        console.error(`error: --features must be comma-separated numbers, got "${values.features}"`)
        return 2
      }
      await runDemo({ model: values.model, features })
      return 0
    }
    case 'worker': {
      const { values } = parseArgs({
        args: rest,
        options: {
          role: { type: 'string', default: 'chain-io,inference,prover' },
          config: { type: 'string' },
          'log-level': { type: 'string', default: 'warn' },
        },
      })
      return workerCommand({ roles: values.role, logLevel: values['log-level'], ...(values.config ? { config: values.config } : {}) })
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP)
      return 0
    default:
      console.error(`error: unknown command "${command}"\n\n${HELP}`)
      return 2
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`\nerror: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  },
)
