/**
 * `sertn keeper [--once] [--json] [--config FILE]`: refunds expired requests and sends deferred
 * receipts on every configured chain (chains/evm/plugin/keeper.ts), every `keeper.intervalMs` until
 * SIGINT/SIGTERM, or one round with --once (exit 1 if a chain's round had failures). The chain-io
 * worker runs the same keeper while `keeper.enabled`; running both is safe (a request refunded by
 * one is done for the other).
 */
import { evmKeeper, runKeeper, type KeeperChainReport } from '../chains/evm/plugin/keeper.ts'
import { loadConfig } from '../core/config.ts'
import { requireSigner, resolveSigners } from '../core/secrets.ts'

export async function keeperCommand(opts: { once: boolean; json: boolean; config?: string }): Promise<number> {
  const config = loadConfig(opts.config)
  // The refunds are paid as the node: its key from the secrets file (a keystore) or the configuration.
  const { account } = requireSigner(await resolveSigners(config, ['node']), 'node', 'the keeper')
  if (opts.once) {
    const reports = await evmKeeper({ config, account }).round()
    if (opts.json) console.log(JSON.stringify(reports, null, 2))
    else for (const r of reports) console.log(describe(r))
    return reports.some((r) => r.errors.length > 0) ? 1 : 0
  }
  const stop = new AbortController()
  const onSignal = (sig: string) => {
    console.error(`[keeper] ${sig}: stopping`)
    stop.abort()
  }
  process.once('SIGINT', () => onSignal('SIGINT'))
  process.once('SIGTERM', () => onSignal('SIGTERM'))
  console.error(`[keeper] pid ${process.pid}: every ${config.keeper.intervalMs} ms on ${Object.keys(config.chains).join(', ')}`)
  await runKeeper({ ...config, keeper: { ...config.keeper, enabled: true } }, { signal: stop.signal, account })
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
  for (const e of r.errors) lines.push(`  error: ${e}`)
  return lines.join('\n')
}
