/**
 * `sertn keeper [--once] [--json] [--config FILE]`: refunds expired requests and sends deferred
 * receipts on every configured chain (chains/evm/plugin/keeper.ts), every `keeper.intervalMs`, and
 * dispatches the subscriptions of each chain's Infernet facade (`infernetCoordinator`), every
 * `pollingIntervalMs`, until SIGINT/SIGTERM, or one round of both with --once (exit 1 if a chain's
 * round had failures). The chain-io worker runs the same keeper while `keeper.enabled`; running both
 * is safe (a request refunded, or a subscription dispatched, by one is done for the other).
 */
import { evmKeeper, runKeeper, type KeeperChainReport } from '../chains/evm/plugin/keeper.ts'
import { loadConfig } from '../core/config.ts'
import { requireSigner } from '../core/secrets.ts'
import { startupChecks } from './startup.ts'
import { commandLogger } from './worker.ts'

export async function keeperCommand(opts: { once: boolean; json: boolean; config?: string }): Promise<number> {
  const config = loadConfig(opts.config)
  const logger = commandLogger(config, {}, {}).child({ component: 'keeper' })
  // The keeper signs as the node (its keystore from the secrets file, else a development key), on every chain.
  const signers = await startupChecks(config, ['chain-io'])
  const account = requireSigner(signers, 'node', 'the keeper').account
  if (opts.once) {
    const reports = await evmKeeper({ config, account, logger }).round()
    if (opts.json) console.log(JSON.stringify(reports, null, 2))
    else for (const r of reports) console.log(describe(r))
    return reports.some((r) => r.errors.length > 0) ? 1 : 0
  }
  const stop = new AbortController()
  const onSignal = (sig: string) => {
    logger.info({ signal: sig }, `${sig}: stopping`)
    stop.abort()
  }
  process.once('SIGINT', () => onSignal('SIGINT'))
  process.once('SIGTERM', () => onSignal('SIGTERM'))
  logger.info(
    { intervalMs: config.keeper.intervalMs, chains: Object.keys(config.chains) },
    `pid ${process.pid}: every ${config.keeper.intervalMs} ms on ${Object.keys(config.chains).join(', ')}`,
  )
  await runKeeper({ ...config, keeper: { ...config.keeper, enabled: true } }, { signal: stop.signal, account, logger })
  return 0
}

/** One round on one chain, in a few lines. */
function describe(r: KeeperChainReport): string {
  const lines = [`${r.chain} (gateway ${r.gateway}): scanned to block ${r.scannedTo || '?'}`]
  for (const k of r.refunded) lines.push(`  refunded       ${k}`)
  for (const k of r.alreadySettled) lines.push(`  already settled ${k}`)
  for (const k of r.receiptsSent) lines.push(`  receipt sent   ${k}`)
  const next = r.nextDeadline !== undefined ? `, next deadline ${new Date(r.nextDeadline * 1000).toISOString()}` : ''
  lines.push(`  ${r.open} pending request(s) watched${next}`)
  const d = r.infernet
  if (d) {
    lines.push(`  Infernet facade ${d.coordinator}: scanned to block ${d.scannedTo || '?'}`)
    for (const id of d.dispatched) lines.push(`    dispatched         subscription ${id}`)
    for (const id of d.alreadyDispatched) lines.push(`    already dispatched subscription ${id}`)
    for (const id of d.cancelled) lines.push(`    cancelled          subscription ${id}`)
    for (const id of d.undispatchable) lines.push(`    undispatchable     subscription ${id} (given up: see the warning)`)
    lines.push(`    ${d.waiting} subscription(s) waiting for dispatch`)
  }
  for (const e of r.errors) lines.push(`  error: ${e}`)
  return lines.join('\n')
}
