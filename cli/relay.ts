/** `sertn relay`: the local agents of every configured messaging network (Hyperlane, LayerZero, …), until SIGINT/SIGTERM. */
import { join, resolve } from 'node:path'
import { loadConfig } from '../core/config.ts'
import { startMessengerAgentsFromConfig } from '../plugins/messengers/index.ts'

export async function relayCommand(opts: { config?: string }): Promise<number> {
  const config = loadConfig(opts.config)
  const dir = join(resolve(config.dataDir), 'relay')
  const agents = await startMessengerAgentsFromConfig(config, { dir })
  // Some agents load libraries in seconds: wait before saying the relay runs, not on the first message.
  await agents.ready
  console.error(`[relay] pid ${process.pid}: agents for ${[...agents.byKind.keys()].join(', ')} (state in ${dir})`)
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
