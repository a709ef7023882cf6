/** `sertn relay`: the local agents of every configured messaging network (Hyperlane, LayerZero, …), until SIGINT/SIGTERM. */
import { join, resolve } from 'node:path'
import { loadConfig, type SertnConfig } from '../core/config.ts'
import { requireSigner, resolveSigners } from '../core/secrets.ts'
import { startMessengerAgentsFromConfig } from '../plugins/messengers/index.ts'
import { startupChecks } from './startup.ts'

/**
 * The relay's keys, resolved (secrets file first, else the configuration's raw keys): the validator
 * that attests every chain's messages, and the relayer that pays for their delivery (default: the
 * node's account). The agents take them as the configuration's `relay` keys.
 */
export async function relayKeys(config: SertnConfig): Promise<{ validatorKey: `0x${string}`; relayerKey: `0x${string}` }> {
  const signers = await resolveSigners(config, ['validator', 'relayer'])
  return {
    validatorKey: requireSigner(signers, 'validator', 'the relay').privateKey,
    relayerKey: requireSigner(signers, 'relayer', 'the relay').privateKey,
  }
}

export async function relayCommand(opts: { config?: string }): Promise<number> {
  const config = loadConfig(opts.config)
  await startupChecks(config, ['relay'])
  const keys = await relayKeys(config)
  const dir = join(resolve(config.dataDir), 'relay')
  const agents = await startMessengerAgentsFromConfig({ ...config, relay: { ...config.relay, ...keys } }, { dir })
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
