/**
 * Local EVM chains for development and tests: anvil from the npm package `@foundry-rs/anvil`,
 * started on 127.0.0.1 in its own process group.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { createPublicClient, http, type Chain, type Client, type Hex } from 'viem'
import { SertnError } from '../core/errors.ts'
import { evmChainOf } from './evm/chain.ts'
import { freePort, type ManagedProcess, retryOnPortTaken, startProcess, waitForProcess } from '../core/process.ts'

const require = createRequire(import.meta.url)

/** The accounts anvil funds by default (`test test … junk`). */
export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'

export type StartAnvilParameters = {
  /** Port on 127.0.0.1; a free one by default. */
  port?: number
  chainId?: number
  /** Seconds between blocks; automine (a block per transaction) by default. */
  blockTime?: number
  /**
   * Persist the chain to this JSON file (anvil `--state`): loaded at start when it exists, written
   * when anvil exits on SIGTERM or SIGINT (and every `stateIntervalSeconds`). `stop()` sends SIGTERM
   * first and waits for the dump. A file anvil cannot load makes the start fail with its output.
   */
  stateFile?: string
  /** Old blocks' states kept on disk for calls and traces at past blocks (`--max-persisted-states`). */
  maxPersistedStates?: number
  /** Also write `stateFile` every this many seconds (anvil `--state-interval`), so a crash loses less. */
  stateIntervalSeconds?: number
  /** Print anvil's output. */
  echo?: boolean
  /**
   * Fork this RPC (anvil `--fork-url`): a local copy of the chain at its head, where transactions
   * can be tried without being sent (the chain id is the forked chain's unless `chainId` is given).
   */
  forkUrl?: string
}

export type AnvilInstance = {
  rpcUrl: string
  port: number
  chain: Chain
  process: ManagedProcess
  stop(): Promise<void>
}

export class AnvilNotFoundError extends Error {
  override readonly name = 'AnvilNotFoundError'
  readonly retryable = false
}

/** The anvil binary shipped by `@foundry-rs/anvil`'s platform package. */
export function anvilBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil')
  } catch {
    throw new AnvilNotFoundError(
      `anvil not found: ${pkg} is not installed. Run \`npm ci\` (it is an optional dependency of @foundry-rs/anvil).`,
    )
  }
}

/** Starts anvil and waits until it answers RPC (on another free port if the one it picked was taken meanwhile). */
export async function startAnvil(params: StartAnvilParameters = {}): Promise<AnvilInstance> {
  return params.port === undefined ? retryOnPortTaken(() => startAnvilOnce(params)) : startAnvilOnce(params)
}

async function startAnvilOnce(params: StartAnvilParameters): Promise<AnvilInstance> {
  const port = params.port ?? (await freePort())
  const args = ['--host', '127.0.0.1', '--port', String(port)]
  if (params.forkUrl !== undefined) args.push('--fork-url', params.forkUrl)
  if (params.chainId !== undefined || params.forkUrl === undefined) args.push('--chain-id', String(params.chainId ?? 31337))
  if (params.blockTime !== undefined) args.push('--block-time', String(params.blockTime))
  if (params.maxPersistedStates !== undefined) args.push('--max-persisted-states', String(params.maxPersistedStates))
  if (params.stateFile !== undefined) {
    const file = resolve(params.stateFile)
    mkdirSync(dirname(file), { recursive: true })
    args.push('--state', file)
    if (params.stateIntervalSeconds !== undefined) args.push('--state-interval', String(params.stateIntervalSeconds))
  }
  // Anvil persists old states on disk, by default under ~/.foundry/anvil/tmp, and leaves them there
  // when it is killed: tens of GB after many runs. Each instance gets its own folder, removed when it exits.
  const cacheDir = mkdtempSync(join(tmpdir(), 'sertn-anvil-'))
  args.push('--cache-path', cacheDir)
  const proc = startProcess({ name: `anvil:${port}`, command: anvilBinary(), args, echo: params.echo ?? false })
  void proc.exited.finally(() => rmSync(cacheDir, { recursive: true, force: true }))
  const rpcUrl = `http://127.0.0.1:${port}`
  await waitForProcess(proc, `anvil on ${rpcUrl}`, async () => {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(2000),
    })
    return res.ok
  })
  const chainId =
    params.chainId ??
    (params.forkUrl === undefined ? 31337 : await createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }).getChainId())
  const chain = evmChainOf(chainId, `anvil-${port}`, rpcUrl)
  // With a state file, anvil writes it on SIGTERM: give it time before the SIGKILL.
  return { rpcUrl, port, chain, process: proc, stop: () => proc.stop(params.stateFile !== undefined ? 15_000 : 3000) }
}

/** An anvil JSON-RPC call (the `anvil_*` and `evm_*` methods viem's public actions do not type). */
export async function anvilRpc<T = unknown>(client: Client, method: string, params: unknown[] = []): Promise<T> {
  return (await client.request({ method: method as never, params: params as never })) as T
}

/**
 * The deepest reorg that keeps an anvil chain's state whole. anvil 1.7 keeps 500 blocks' states in
 * memory, and once that is full lowers the number by one a block, down to about 10 (some 1,000
 * blocks in); older states go to its disk cache. A reorg onto a state read back from there loses
 * every contract's code: from then on each contract answers calls with no data. Seen at 10 and 11
 * blocks deep after 1,200 blocks; 8 leaves a margin.
 */
export const ANVIL_MAX_REORG_DEPTH = 8

/**
 * `anvil_reorg`: the newest `depth` blocks replaced by new ones holding `txs` (signed transactions,
 * each with its block's offset from the first new block). Refuses a depth over
 * {@link ANVIL_MAX_REORG_DEPTH}. On a busy chain, call it inside {@link withAnvilMiningPaused}.
 */
export async function anvilReorg(client: Client, depth: number, txs: readonly (readonly [Hex, number])[] = []): Promise<void> {
  if (!Number.isInteger(depth) || depth < 1 || depth > ANVIL_MAX_REORG_DEPTH)
    throw new SertnError(`a reorg of anvil is 1 to ${ANVIL_MAX_REORG_DEPTH} blocks deep, not ${depth}`, {
      details: "anvil reorganises deeper chains onto a state from its disk cache, which has lost every contract's code",
    })
  await anvilRpc(client, 'anvil_reorg', [depth, txs])
}

/**
 * Runs `fn` while the anvil behind `client` mines no block by itself, then starts its mining again and
 * mines what arrived meanwhile. Automine is switched off, or interval mining (`blockTime`, the
 * seconds it was started with) stopped; a chain that does neither is left as it is.
 *
 * Reorganise a busy chain only inside this. anvil 1.7 unwinds blocks (`anvil_reorg`,
 * `anvil_rollback`) without taking its mining lock, so a block automined at that moment can stay
 * in the new chain with its logs while its state is rolled back. A contract that refuses to record
 * anything twice then records it twice, which no real chain could do. The caller also stops its own
 * `anvil_mine` calls while this runs.
 */
export async function withAnvilMiningPaused<T>(
  client: Client,
  fn: () => Promise<T>,
  { blockTime }: { blockTime?: number } = {},
): Promise<T> {
  const automine = await anvilRpc<boolean>(client, 'anvil_getAutomine')
  if (automine) await anvilRpc(client, 'evm_setAutomine', [false])
  else if (blockTime !== undefined) await anvilRpc(client, 'evm_setIntervalMining', [0])
  try {
    // A block being mined when mining stopped: wait until the head has stood still for 100 ms.
    let head = await anvilRpc<string>(client, 'eth_blockNumber')
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100))
      const now = await anvilRpc<string>(client, 'eth_blockNumber')
      if (now === head) break
      head = now
    }
    return await fn()
  } finally {
    if (automine) {
      await anvilRpc(client, 'evm_setAutomine', [true])
      // What was sent while mining stood still is in the pool: mine it now.
      await anvilRpc(client, 'evm_mine')
    } else if (blockTime !== undefined) await anvilRpc(client, 'evm_setIntervalMining', [blockTime])
  }
}
