/**
 * The cross-chain local stack for workflow tests: a hub anvil and a spoke anvil with Sertn and real
 * Hyperlane core contracts deployed and connected, the local validator and relayers running in this
 * process (restartable), the Temporal dev server and arlocal, and a node configuration for both
 * chains. `stop()` stops everything, agents first.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@temporalio/client'
import { keccak256, parseEventLogs, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { startAnvil, type AnvilInstance } from '../../chains/anvil.ts'
import { anvilAccount, anvilPrivateKey, createSertnClient, type SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import { RecordingConsumer, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { parseConfig, type SertnConfig } from '../../core/config.ts'
import { requestKey, type RequestKey } from '../../core/types.ts'
import {
  deploySertnNetwork,
  networkChainsConfig,
  startAgentsFromConfig,
  type LocalAgents,
  type LocalAgentsConfig,
  type SertnNetwork,
} from '../../plugins/messengers/hyperlane/index.ts'
import type { ArlocalInstance } from '../../plugins/storage/arweave/index.ts'
import type { TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'
import { CALLBACK_GAS, DEMO_INPUT, nodePrivateKey, servicesConfig, startTestServices } from './stack.ts'

export const HUB_DOMAIN = 1_000_001
export const SPOKE_DOMAIN = 1_000_002
/** The local validator's key (test-only). */
export const VALIDATOR_KEY: Hex = keccak256(toHex('sertn crosschain test validator'))

export type CrossChainStack = {
  hub: { anvil: AnvilInstance; owner: SertnClient; user: SertnClient }
  spoke: { anvil: AnvilInstance; owner: SertnClient; user: SertnClient }
  network: SertnNetwork
  temporal: TemporalDevServer
  arlocal: ArlocalInstance
  client: Client
  config: SertnConfig
  dataDir: string
  /** The running agents (replaced by `restartAgents`). */
  agents(): LocalAgents
  /** Stops the agents (as a crash would: their file stores stay) and starts new ones from the same stores. */
  stopAgents(): Promise<void>
  startAgents(): void
  processGroups(): number[]
  stop(): Promise<void>
}

export type CrossChainStackOptions = {
  /** Node watchers' and agents' polling interval (ms). */
  pollingIntervalMs?: number
  /** Seconds between blocks on both anvils; automine by default. */
  blockTime?: number
  agentLog?: (line: string) => void
  onDelivered?: LocalAgentsConfig['onDelivered']
}

export async function startCrossChainStack(options: CrossChainStackOptions = {}): Promise<CrossChainStack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sertn-xstack-'))
  const stops: (() => Promise<void>)[] = []
  let agents: LocalAgents | undefined
  const stopAll = async () => {
    await agents?.stop().catch(() => {})
    for (const s of stops.reverse()) await s().catch(() => {})
    await rm(dataDir, { recursive: true, force: true })
  }
  try {
    const hubAnvil = await startAnvil({ chainId: 31337, ...(options.blockTime ? { blockTime: options.blockTime } : {}) })
    stops.push(() => hubAnvil.stop())
    const spokeAnvil = await startAnvil({ chainId: 31338, ...(options.blockTime ? { blockTime: options.blockTime } : {}) })
    stops.push(() => spokeAnvil.stop())
    const clients = (a: AnvilInstance) => ({
      owner: createSertnClient(a.chain, anvilAccount(0)),
      user: createSertnClient(a.chain, anvilAccount(2)),
    })
    const hub = { anvil: hubAnvil, ...clients(hubAnvil) }
    const spoke = { anvil: spokeAnvil, ...clients(spokeAnvil) }
    const node = privateKeyToAccount(nodePrivateKey()).address
    const network = await deploySertnNetwork({
      hub: { name: 'hub', client: hub.owner, domain: HUB_DOMAIN },
      spokes: [{ name: 'spoke', client: spoke.owner, domain: SPOKE_DOMAIN }],
      validators: [privateKeyToAccount(VALIDATOR_KEY).address],
      threshold: 1,
      models: ['sertn-mlp-demo'],
      nodes: [node],
      allowInsecureSrs: true,
    })
    const services = await startTestServices(dataDir, stops)
    const { temporal, arlocal, connection } = services
    const config = parseConfig({
      dataDir,
      node: { privateKey: nodePrivateKey() },
      chains: networkChainsConfig(
        network,
        { hub: hubAnvil.rpcUrl, spoke: spokeAnvil.rpcUrl },
        { confirmations: 1, pollingIntervalMs: options.pollingIntervalMs ?? 50, startBlock: 0 },
      ),
      relay: { validatorKey: VALIDATOR_KEY, relayerKey: anvilPrivateKey(5), pollingIntervalMs: options.pollingIntervalMs ?? 50 },
      ...servicesConfig(services),
    })
    const startAgents = () => {
      agents = startAgentsFromConfig(config, {
        dir: join(dataDir, 'hyperlane'),
        log: options.agentLog ?? (() => {}),
        onDelivered: options.onDelivered,
      })
    }
    startAgents()
    return {
      hub,
      spoke,
      network,
      temporal,
      arlocal,
      client: new Client({ connection }),
      config,
      dataDir,
      agents: () => agents!,
      async stopAgents() {
        await agents?.stop()
        agents = undefined
      },
      startAgents,
      processGroups: () => [hubAnvil.process.pid, spokeAnvil.process.pid, temporal.process.pid, arlocal.process.pid],
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}

export type SpokeRequest = { id: bigint; key: RequestKey; hash: Hex; block: bigint; escrow: bigint; minedAt: number }

/** A RecordingConsumer on the spoke, requesting through the spoke gateway. */
export async function deploySpokeConsumer(stack: CrossChainStack): Promise<Address> {
  return deployContract(stack.spoke.user, RecordingConsumer, [stack.network.spokes[0]!.spoke.gateway])
}

/** Requests from `consumer` on the spoke paying the quote, then mines the confirmation block. */
export async function requestOnSpoke(
  stack: CrossChainStack,
  consumer: Address,
  {
    modelId = stack.network.spokes[0]!.models[0]!.modelId,
    input = DEMO_INPUT,
    gas = CALLBACK_GAS,
  }: { modelId?: Hex; input?: readonly bigint[]; gas?: number } = {},
): Promise<SpokeRequest> {
  const { user, anvil } = stack.spoke
  const gateway = stack.network.spokes[0]!.spoke.gateway
  const value = await user.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'quote', args: [modelId, gas] })
  const { request } = await user.simulateContract({
    address: consumer,
    abi: RecordingConsumer.abi,
    functionName: 'request',
    args: [modelId, [...input], gas],
    value,
  })
  const receipt = await confirm(user, await user.writeContract(request))
  const minedAt = Date.now()
  const [log] = parseEventLogs({ abi: SpokeGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
  if (!log) throw new Error(`no InferenceRequested in ${receipt.transactionHash}`)
  await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
  const id = log.args.requestId
  return {
    id,
    key: requestKey(anvil.chain.id, gateway, id),
    hash: receipt.transactionHash,
    block: receipt.blockNumber,
    escrow: log.args.escrow,
    minedAt,
  }
}
