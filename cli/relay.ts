/** `sertn relay`: the local agents of every configured messaging network (Hyperlane, LayerZero, …), until SIGINT/SIGTERM. */
import { join, resolve } from 'node:path'
import { loadConfig } from '../core/config.ts'
import { startMessengerAgentsFromConfig } from '../plugins/messengers/index.ts'
import { startHealthServer } from '../workflows/worker/health-server.ts'
import { commandLogger } from './worker.ts'

export async function relayCommand(opts: { config?: string; logLevel?: string; logFormat?: string }): Promise<number> {
  const config = loadConfig(opts.config)
  const logger = commandLogger(config, opts, {})
  const log = logger.child({ component: 'relay' })
  const dir = join(resolve(config.dataDir), 'relay')
  const agents = await startMessengerAgentsFromConfig(config, { dir, logger: log })
  const http = config.observability.http
  const server =
    http.port === undefined
      ? undefined
      : await startHealthServer({
          host: http.host,
          port: http.port,
          maxLagBlocks: config.observability.maxLagBlocks,
          requireTemporal: false,
        })
  if (server) log.info({ url: server.url }, `health server on ${server.url} (/metrics, /healthz, /readyz)`)
  // Some agents load libraries in seconds: wait before saying the relay runs, not on the first message.
  await agents.ready
  const kinds = [...agents.byKind.keys()]
  // `sertn start` waits for this line (cli/stack.ts).
  log.info({ messengers: kinds, dir }, `relay pid ${process.pid}: agents for ${kinds.join(', ')} (state in ${dir})`)
  await new Promise<void>((done) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, `${sig}: stopping`)
      done()
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
  await agents.stop()
  await server?.close()
  return 0
}
