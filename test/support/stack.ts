/**
 * The local stack for workflow tests: anvil with Sertn deployed, the Temporal dev server
 * (persisted to a file), arlocal with a funded wallet, and a node configuration pointing at them.
 * Every process is stopped by `stop()`, in reverse order.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client, Connection } from '@temporalio/client'
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker'
import { toHex } from 'viem'
import { anvilAccount } from '../../chains/evm/clients.ts'
import { parseConfig, type SertnConfig } from '../../core/config.ts'
import { loadOrCreateLocalWallet, startArlocal, type ArlocalInstance } from '../../plugins/storage/arweave/index.ts'
import { startTemporalDevServer, type TemporalDevServer } from '../../workflows/temporal/dev-server.ts'
import { WORKFLOWS_PATH } from '../../workflows/worker/index.ts'
import { startTestChain, type TestChain } from './chain.ts'

const CIRCUITS = resolve(fileURLToPath(new URL('../../circuits', import.meta.url)))

export type TestStack = {
  chain: TestChain
  temporal: TemporalDevServer
  arlocal: ArlocalInstance
  client: Client
  config: SertnConfig
  dataDir: string
  dbFile: string
  /** Restarts the Temporal server on the same port and database. */
  restartTemporal(): Promise<void>
  /** The process groups of the stack's child processes (anvil, Temporal, arlocal), for a last-resort kill. */
  processGroups(): number[]
  stop(): Promise<void>
}

/** The node's private key: anvil account 1 (authorised on the test gateway). */
export function nodePrivateKey(): `0x${string}` {
  const account = anvilAccount(1) as ReturnType<typeof anvilAccount> & { getHdKey(): { privateKey: Uint8Array | null } }
  return toHex(account.getHdKey().privateKey!)
}

export async function startTestStack(options: { confirmations?: number } = {}): Promise<TestStack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sertn-stack-'))
  const dbFile = join(dataDir, 'temporal.db')
  const stops: (() => Promise<void>)[] = []
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {})
    await rm(dataDir, { recursive: true, force: true })
  }
  try {
    const chain = await startTestChain()
    stops.push(() => chain.stop())
    let temporal = await startTemporalDevServer({ dbFile })
    stops.push(() => temporal.stop())
    const arlocal = await startArlocal({ persistDir: join(dataDir, 'arlocal') })
    stops.push(() => arlocal.stop())
    const walletFile = join(dataDir, 'arweave-wallet.json')
    await loadOrCreateLocalWallet(arlocal.url, walletFile)
    const connection = await Connection.connect({ address: temporal.address })
    stops.push(() => connection.close())
    const client = new Client({ connection })
    const config = parseConfig({
      dataDir,
      node: { privateKey: nodePrivateKey() },
      chains: {
        local: {
          chainId: chain.anvil.chain.id,
          rpcUrl: chain.anvil.rpcUrl,
          gateway: chain.core.gateway,
          registry: chain.core.registry,
          confirmations: options.confirmations ?? 1,
          pollingIntervalMs: 100,
          startBlock: 0,
        },
      },
      temporal: { address: temporal.address },
      storage: { arweave: { url: arlocal.url, walletFile } },
      models: { dir: CIRCUITS, allowInsecureSrs: true },
    })
    return {
      chain,
      get temporal() {
        return temporal
      },
      arlocal,
      client,
      config,
      dataDir,
      dbFile,
      async restartTemporal() {
        await temporal.stop()
        temporal = await startTemporalDevServer({ dbFile, port: temporal.port })
      },
      processGroups: () => [chain.anvil.process.pid, temporal.process.pid, arlocal.process.pid],
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined
/** The request workflow bundled once per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger })
  return bundle
}

const noop = () => {}
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop }
