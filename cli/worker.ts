/** `sertn worker`: Temporal workers for the given roles, until SIGINT/SIGTERM. */
import { DefaultLogger, Runtime } from '@temporalio/worker'
import { loadConfig } from '../core/config.ts'
import { configuredMessengers } from '../plugins/messengers/index.ts'
import { runWorkers, WORKER_ROLES, type WorkerRole } from '../workflows/worker/index.ts'
import { startupChecks } from './startup.ts'

export async function workerCommand(opts: { roles: string; config?: string; logLevel: string }): Promise<number> {
  const roles = opts.roles.split(',').map((r) => r.trim()) as WorkerRole[]
  const unknown = roles.filter((r) => !WORKER_ROLES.includes(r))
  if (unknown.length) {
    console.error(`error: unknown role(s) ${unknown.join(', ')}; roles are ${WORKER_ROLES.join(', ')}`)
    return 2
  }
  const config = loadConfig(opts.config)
  // A messenger section the plugin of its kind refuses stops start-up here, naming the field.
  await configuredMessengers(config)
  await startupChecks(config, roles)
  Runtime.install({ logger: new DefaultLogger(opts.logLevel.toUpperCase() as 'WARN') })
  const stop = new AbortController()
  const onSignal = (sig: string) => {
    console.error(`[worker] ${sig}: shutting down`)
    stop.abort()
  }
  process.once('SIGINT', () => onSignal('SIGINT'))
  process.once('SIGTERM', () => onSignal('SIGTERM'))
  console.error(`[worker] pid ${process.pid}, roles ${roles.join(', ')}, Temporal ${config.temporal.address}`)
  await runWorkers({ config, roles, signal: stop.signal })
  return 0
}
