/** `sertn relay`: the local Hyperlane validator and relayers for the configured chains, until SIGINT/SIGTERM. */
import { join, resolve } from 'node:path'
import { loadConfig } from '../core/config.ts'
import { startAgentsFromConfig } from '../plugins/messengers/hyperlane/index.ts'

export async function relayCommand(opts: { config?: string }): Promise<number> {
  const config = loadConfig(opts.config)
  const dir = join(resolve(config.dataDir), 'hyperlane')
  const agents = startAgentsFromConfig(config, { dir })
  // The SDK loads in seconds: load it before saying the relay runs, not on the first message.
  await agents.ready
  console.error(`[relay] pid ${process.pid}: validator and relayers for ${[...agents.validators.keys()].join(', ')} (state in ${dir})`)
  await new Promise<void>((done) => {
    const stop = (sig: string) => {
      console.error(`[relay] ${sig}: stopping`)
      done()
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
  await agents.stop()
  return 0
}
