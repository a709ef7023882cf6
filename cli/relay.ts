/** `sertn relay`: the local agents of every configured messaging network (Hyperlane, LayerZero, …), until SIGINT/SIGTERM. */
import { join, resolve } from 'node:path'
import { privateKeyToAccount } from 'viem/accounts'
import { startBalanceMonitor } from '../chains/evm/plugin/balance.ts'
import { loadConfig, type SertnConfig } from '../core/config.ts'
import { requireSigner, resolveSigners } from '../core/secrets.ts'
import { startMessengerAgentsFromConfig } from '../plugins/messengers/index.ts'
import { startHealthServer } from '../workflows/worker/health-server.ts'
import { startupChecks } from './startup.ts'
import { commandLogger } from './worker.ts'

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

export async function relayCommand(opts: { config?: string; logLevel?: string; logFormat?: string }): Promise<number> {
  const config = loadConfig(opts.config)
  const logger = commandLogger(config, opts, {})
  const log = logger.child({ component: 'relay' })
  await startupChecks(config, ['relay'])
  const keys = await relayKeys(config)
  const dir = join(resolve(config.dataDir), 'relay')
  const agents = await startMessengerAgentsFromConfig({ ...config, relay: { ...config.relay, ...keys } }, { dir, logger: log })
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
  // The relayer pays every delivery: its balance on every chain, with the chains' alarms (balanceAlarmEth).
  const stopped = new AbortController()
  const balances = startBalanceMonitor({
    chains: config.chains,
    accounts: [{ role: 'relayer', address: privateKeyToAccount(keys.relayerKey).address }],
    signal: stopped.signal,
  })
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
  stopped.abort()
  await Promise.all([agents.stop(), balances.done])
  await server?.close()
  return 0
}

/** Where `sertn relay` keeps its agents' state. */
const relayDirOf = (config: { dataDir: string }) => join(resolve(config.dataDir), 'relay')

/** `sertn relay rejected [--json]`: the messages the local agents gave up on, for every messenger. */
export async function relayRejectedCommand(opts: { config?: string; json: boolean }): Promise<number> {
  const config = loadConfig(opts.config)
  const { listRejectedMessages } = await import('../plugins/messengers/index.ts')
  const rejected = await listRejectedMessages(config, relayDirOf(config))
  if (opts.json) {
    console.log(JSON.stringify(rejected, null, 2))
    return 0
  }
  if (rejected.length === 0) {
    console.log(`no rejected messages (state in ${relayDirOf(config)})`)
    return 0
  }
  for (const m of rejected) {
    console.log(`${m.messageId}  ${m.messenger} ${m.route}${m.retryRequested ? '  (retry requested, waiting for the relay)' : ''}`)
    console.log(`  ${m.agent} gave up after ${m.attempts} attempt(s) at ${new Date(m.rejectedAt).toISOString()}: ${m.reason}`)
    console.log(
      `  sent as #${m.sequence} in origin block ${m.originBlock}${m.originTransaction ? `, transaction ${m.originTransaction}` : ''}`,
    )
  }
  console.log(`\n${rejected.length} rejected message(s); once the cause is fixed: sertn relay retry <id…> (or --all)`)
  return 0
}

/**
 * `sertn relay retry <id…|--all> [--json]`: asks the relay to move these rejected messages back to
 * pending (a request file it applies; see plugins/messengers/retry.ts), and waits up to `waitMs`
 * to say whether a running relay took it.
 */
export async function relayRetryCommand(opts: {
  config?: string
  json: boolean
  ids: readonly `0x${string}`[] | 'all'
  waitMs?: number
}): Promise<number> {
  const config = loadConfig(opts.config)
  const dir = relayDirOf(config)
  const { listRejectedMessages, pendingRelayRetries, requestRelayRetry } = await import('../plugins/messengers/index.ts')
  const { SertnError } = await import('../core/errors.ts')
  const rejected = await listRejectedMessages(config, dir)
  const wanted = opts.ids === 'all' ? undefined : new Set(opts.ids.map((i) => i.toLowerCase()))
  const chosen = rejected.filter((m) => !wanted || wanted.has(m.messageId.toLowerCase()))
  const unknown = wanted ? [...wanted].filter((id) => !rejected.some((m) => m.messageId.toLowerCase() === id)) : []
  if (unknown.length > 0)
    throw new SertnError(`not a rejected message: ${unknown.join(', ')}`, {
      details: `\`sertn relay rejected\` lists the ${rejected.length} rejected message(s) in ${dir}; a delivered or pending message needs no retry.`,
    })
  if (chosen.length === 0) {
    if (opts.json) console.log(JSON.stringify({ requested: [], taken: true, stillRejected: [] }, null, 2))
    else console.log('no rejected messages to retry')
    return 0
  }
  const files = new Set((await requestRelayRetry(dir, chosen)).values())
  // A running relay looks for requests every half second.
  const deadline = Date.now() + (opts.waitMs ?? 10_000)
  let taken = false
  while (Date.now() < deadline) {
    const waiting = [...(await pendingRelayRetries(config, dir)).values()].flat()
    if (!waiting.some((f) => files.has(f))) {
      taken = true
      break
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  const ids = new Set(chosen.map((m) => m.messageId.toLowerCase()))
  const stillRejected = taken
    ? (await listRejectedMessages(config, dir)).filter((m) => ids.has(m.messageId.toLowerCase())).map((m) => m.messageId)
    : []
  if (opts.json) {
    console.log(JSON.stringify({ requested: chosen.map((m) => m.messageId), taken, stillRejected }, null, 2))
    return 0
  }
  for (const m of chosen) console.log(`retry ${m.messageId}  ${m.messenger} ${m.route}`)
  if (!taken)
    console.log(
      `no running relay took the request within ${Math.round((opts.waitMs ?? 10_000) / 1000)} s: \`sertn relay\` applies it when it starts (${[...files].join(', ')})`,
    )
  else if (stillRejected.length > 0)
    console.log(`the relay took the request; still rejected (given up again already): ${stillRejected.join(', ')}`)
  else console.log(`the running relay moved ${chosen.length} message(s) back to pending: it delivers them next (its log says when)`)
  return 0
}
