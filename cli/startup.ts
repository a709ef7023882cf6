/**
 * Start-up checks of `sertn worker` and `sertn relay`, before any worker or agent starts: each
 * failure stops start-up with one line naming what to fix (and exit code 1).
 *
 *   - the secrets file, when one is configured, exists and is valid;
 *   - the keys the roles sign with resolve: keystores and password files exist, passwords are right
 *     (chain-io signs as the node; the relay as the validator and the relayer; provers and
 *     inference workers sign nothing and need no key at all);
 *   - Temporal's TLS files can be read (workers);
 *   - every configured chain's RPC URLs (`rpcUrl`, `fallbackRpcUrls`) answer `eth_chainId` with the
 *     chain's `chainId` (the roles that talk to chains: chain-io, relay).
 */
import type { SertnConfig } from '../core/config.ts'
import { SertnError } from '../core/errors.ts'
import { loadSecrets, requireSigner, resolveSigners, type SignerRole, type Signers } from '../core/secrets.ts'
import { temporalConnectionOptions } from '../workflows/connection.ts'
import type { WorkerRole } from '../workflows/worker/index.ts'

/** What a process runs: worker roles, or the relay. */
export type StartupRole = WorkerRole | 'relay'

/** A start-up check failed: its message is the one line to print. */
export class StartupError extends SertnError {
  override name = 'StartupError'
}

/** How long an RPC has to answer `eth_chainId`. */
const RPC_TIMEOUT_MS = 5000

/** The keys each role signs with. */
const SIGNS: Record<StartupRole, readonly SignerRole[]> = {
  'chain-io': ['node'],
  inference: [],
  prover: [],
  relay: ['validator', 'relayer'],
}

/** Runs `check`, turning any failure into a StartupError of one line (its short message). */
async function oneLine<T>(check: () => Promise<T> | T): Promise<T> {
  try {
    return await check()
  } catch (err) {
    if (err instanceof StartupError) throw err
    const message = err instanceof SertnError ? err.shortMessage : err instanceof Error ? err.message : String(err)
    throw new StartupError(message.split('\n')[0]!)
  }
}

/** `eth_chainId` of `url`: the chain id, or a StartupError naming `field` and what to fix. */
async function checkRpc(url: string, field: string, want: number): Promise<void> {
  let got: number
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(RPC_TIMEOUT_MS),
    })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    const body = (await res.json()) as { result?: unknown; error?: { message?: string } }
    if (typeof body.result !== 'string') throw new Error(body.error?.message ?? 'no eth_chainId result')
    got = Number(BigInt(body.result))
  } catch (err) {
    const cause = err instanceof Error ? ((err.cause as { code?: string } | undefined)?.code ?? err.message) : String(err)
    throw new StartupError(`${field}: the RPC at ${url} is unreachable (${cause}): check the URL and that the node behind it runs`)
  }
  if (got !== want)
    throw new StartupError(
      `${field}: the RPC at ${url} serves chain id ${got}, but the chain's chainId is ${want}: fix the URL or the chainId`,
    )
}

/**
 * Checks what `roles` need before they start (see the module's comment); returns the signers it
 * resolved (a keystore is decrypted once per process: later resolutions reuse it). A failure is a
 * StartupError whose message is one line naming what to fix.
 *
 * @example
 * await startupChecks(config, ['chain-io', 'inference'])
 */
export async function startupChecks(config: SertnConfig, roles: readonly StartupRole[]): Promise<Signers> {
  await oneLine(() => loadSecrets(config))
  const needed = [...new Set(roles.flatMap((r) => SIGNS[r]))]
  const signers = await oneLine(() => resolveSigners(config, needed))
  for (const role of roles)
    for (const key of SIGNS[role]) await oneLine(() => requireSigner(signers, key, role === 'relay' ? 'the relay' : `a ${role} worker`))
  if (roles.some((r) => r !== 'relay')) await oneLine(() => temporalConnectionOptions(config))
  if (roles.includes('chain-io') || roles.includes('relay')) {
    const checks = Object.entries(config.chains).flatMap(([name, c]) => [
      checkRpc(c.rpcUrl, `chains.${name}.rpcUrl`, c.chainId),
      ...c.fallbackRpcUrls.map((url, i) => checkRpc(url, `chains.${name}.fallbackRpcUrls.${i}`, c.chainId)),
    ])
    const failed = (await Promise.allSettled(checks)).find((r) => r.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
  }
  return signers
}
