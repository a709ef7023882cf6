/**
 * The cross-chain local stack for workflow tests: a hub anvil and spoke anvils (by default one
 * spoke over Hyperlane) assembled by the local network module (chains/local.ts): Sertn and the
 * messengers' real core contracts deployed and connected, the messengers' local agents running in
 * this process (restartable), the Temporal dev server and arlocal, and a node configuration for
 * every chain. `stop()` stops everything, agents first.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@temporalio/client'
import { parseEventLogs, type Address, type Hex } from 'viem'
import type { AnvilInstance } from '../../chains/anvil.ts'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { confirm, deployContract } from '../../chains/evm/deploy.ts'
import type { SertnNetwork } from '../../chains/evm/network.ts'
import { LOCAL_CHAINS, startLocalNetwork, type LocalChainSpec, type LocalNetwork } from '../../chains/local.ts'
import { HyperlanePort, RecordingConsumer, SpokeGateway, TestHubDispatcher } from '../../contracts/artifacts/index.ts'
import type { SertnConfig } from '../../core/config.ts'
import type { MessengerAgentEvent } from '../../core/plugins.ts'
import { requestKey, type RequestKey } from '../../core/types.ts'
import type { RunningMessengerAgents } from '../../plugins/messengers/index.ts'
import type { ArlocalInstance } from '../../plugins/storage/arweave/index.ts'
import type { TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'
import { addressAsBytes32 } from '../../chains/evm/crosschain.ts'
import { waitUntil } from './chain.ts'
import { CALLBACK_GAS, DEMO_INPUT } from './stack.ts'

type ChainClients = { anvil: AnvilInstance; owner: SertnClient; user: SertnClient }

export type CrossChainStack = {
  hub: ChainClients
  /** The first spoke. */
  spoke: ChainClients
  /** Every spoke, by name. */
  spokes: Record<string, ChainClients>
  network: SertnNetwork
  local: LocalNetwork
  temporal: TemporalDevServer
  arlocal: ArlocalInstance
  client: Client
  config: SertnConfig
  dataDir: string
  /** The running agents (replaced by `startAgents`). */
  agents(): RunningMessengerAgents | undefined
  /** Stops the agents (as a crash would: their file stores stay). */
  stopAgents(): Promise<void>
  /** Starts new agents from the same stores. */
  startAgents(): Promise<void>
  processGroups(): number[]
  stop(): Promise<void>
}

export type CrossChainStackOptions = {
  /** The spokes (default: one over Hyperlane). */
  spokes?: readonly LocalChainSpec[]
  /** Node watchers' and agents' polling interval (ms). */
  pollingIntervalMs?: number
  /** Seconds between blocks on every anvil; automine by default. */
  blockTime?: number
  /** Blocks on top of a message before the agents attest it (default: see startLocalNetwork). */
  agentConfirmations?: number
  agentLog?: (line: string) => void
  onAgentEvent?: (kind: string, e: MessengerAgentEvent) => void
}

export async function startCrossChainStack(options: CrossChainStackOptions = {}): Promise<CrossChainStack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'sertn-xstack-'))
  const blockTime = options.blockTime ? { blockTime: options.blockTime } : {}
  let local: LocalNetwork
  try {
    local = await startLocalNetwork({
      chains: [{ ...LOCAL_CHAINS.hub, ...blockTime }, ...(options.spokes ?? [LOCAL_CHAINS.spoke]).map((s) => ({ ...s, ...blockTime }))],
      dataDir,
      services: true,
      pollingIntervalMs: options.pollingIntervalMs ?? 50,
      ...(options.agentConfirmations !== undefined ? { agentConfirmations: options.agentConfirmations } : {}),
      ...(options.agentLog ? { log: options.agentLog } : {}),
      ...(options.onAgentEvent ? { onAgentEvent: options.onAgentEvent } : {}),
    })
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true })
    throw err
  }
  const services = local.services!
  const clients = (name: string): ChainClients => {
    const c = local.chains[name]!
    return { anvil: c.anvil, owner: c.owner, user: c.user }
  }
  const spokeNames = local.network.spokes.map((s) => s.name)
  return {
    hub: clients(local.hub.spec.name),
    spoke: clients(spokeNames[0]!),
    spokes: Object.fromEntries(spokeNames.map((n) => [n, clients(n)])),
    network: local.network,
    local,
    get temporal() {
      return services.temporal
    },
    arlocal: services.arlocal,
    client: new Client({ connection: services.connection }),
    config: local.config,
    dataDir,
    agents: () => local.agents(),
    stopAgents: () => local.stopAgents(),
    startAgents: () => local.startAgents(),
    processGroups: () => local.processGroups(),
    async stop() {
      await local.stop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

export type SpokeRequest = { id: bigint; key: RequestKey; hash: Hex; block: bigint; escrow: bigint; minedAt: number }

/** A RecordingConsumer on a spoke (default: the first), requesting through its gateway. */
export async function deploySpokeConsumer(stack: CrossChainStack, spoke = stack.network.spokes[0]!.name): Promise<Address> {
  const s = stack.network.spokes.find((x) => x.name === spoke)!
  return deployContract(stack.spokes[spoke]!.user, RecordingConsumer, [s.spoke.gateway])
}

/** Another chain a fan-out request's result goes to (the contracts' `Destination`). */
export type FanOutDestination = { domain: number; receiver: Address; callbackGasLimit: number }

/**
 * Requests from `consumer` on the spoke paying the quote, then mines the confirmation block; with
 * `destinations`, a fan-out request (its result to those chains too) paying its quote.
 */
export async function requestOnSpoke(
  stack: CrossChainStack,
  consumer: Address,
  {
    modelId = stack.network.spokes[0]!.models[0]!.modelId,
    input = DEMO_INPUT,
    gas = CALLBACK_GAS,
    spoke = stack.network.spokes[0]!.name,
    destinations,
  }: { modelId?: Hex; input?: readonly bigint[]; gas?: number; spoke?: string; destinations?: readonly FanOutDestination[] } = {},
): Promise<SpokeRequest> {
  const { user, anvil } = stack.spokes[spoke]!
  const gateway = stack.network.spokes.find((x) => x.name === spoke)!.spoke.gateway
  const zero = `0x${'0'.repeat(64)}` as Hex
  const hash = destinations
    ? await user.writeContract(
        (
          await user.simulateContract({
            address: consumer,
            abi: RecordingConsumer.abi,
            functionName: 'requestFanOut',
            args: [
              {
                modelId,
                input: [...input],
                inputRef: zero,
                callbackGasLimit: gas,
                modelVersion: 0,
                artifactsHash: zero,
                failIfNoCapacity: false,
              },
              destinations,
            ],
            value: await user.readContract({
              address: gateway,
              abi: SpokeGateway.abi,
              functionName: 'quoteFanOut',
              args: [modelId, gas, destinations],
            }),
          })
        ).request,
      )
    : await user.writeContract(
        (
          await user.simulateContract({
            address: consumer,
            abi: RecordingConsumer.abi,
            functionName: 'request',
            args: [modelId, [...input], gas],
            value: await user.readContract({ address: gateway, abi: SpokeGateway.abi, functionName: 'quote', args: [modelId, gas] }),
          })
        ).request,
      )
  const receipt = await confirm(user, hash)
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

/** A TestHubDispatcher on the hub that the hub's Hyperlane port lets send (see {@link fromHubRoute}). */
export async function deployHubDispatcher(stack: CrossChainStack): Promise<Address> {
  const owner = stack.local.chains[stack.network.hub.name]!.owner
  const hyperlane = stack.network.hub.messengers.hyperlane!
  const dispatcher = await deployContract(owner, TestHubDispatcher, [hyperlane.mailbox as Address, hyperlane.port])
  await confirm(
    owner,
    await owner.writeContract({ address: hyperlane.port, abi: HyperlanePort.abi, functionName: 'setApp', args: [dispatcher, true] }),
  )
  return dispatcher
}

/**
 * Sends `body` (with `gas` for its handling) from `dispatcher` to the Hyperlane spoke `spoke`'s
 * gateway while the gateway's hub route points at it, as if the hub market sent it; restores the
 * route. True once the spoke's port handed it to the gateway; false if that did not happen within
 * `timeoutMs` (the gateway reverts it, and the relayer keeps trying).
 */
export async function fromHubRoute(
  stack: CrossChainStack,
  dispatcher: Address,
  spoke: string,
  body: Hex,
  gas: bigint,
  timeoutMs = 60_000,
): Promise<boolean> {
  const s = stack.network.spokes.find((x) => x.name === spoke)!
  const spokeOwner = stack.local.chains[spoke]!.owner
  const hubOwner = stack.local.chains[stack.network.hub.name]!.owner
  const setRoute = async (peer: Address) =>
    confirm(
      spokeOwner,
      await spokeOwner.writeContract({
        address: s.spoke.gateway,
        abi: SpokeGateway.abi,
        functionName: 'setRoute',
        args: [stack.network.hub.chainId, s.messenger.port, addressAsBytes32(peer)],
      }),
    )
  await setRoute(dispatcher)
  try {
    const before = await stack.spokes[spoke]!.user.getBlockNumber()
    const value = await hubOwner.readContract({
      address: stack.network.hub.messengers.hyperlane!.port,
      abi: HyperlanePort.abi,
      functionName: 'quote',
      args: [s.chainId, addressAsBytes32(s.spoke.gateway), body, gas],
    })
    await confirm(
      hubOwner,
      await hubOwner.writeContract({
        address: dispatcher,
        abi: TestHubDispatcher.abi,
        functionName: 'sendBody',
        args: [s.chainId, addressAsBytes32(s.spoke.gateway), body, gas],
        value,
      }),
    )
    return await waitUntil(
      'the delivery on the spoke',
      async () =>
        (
          await stack.spokes[spoke]!.user.getContractEvents({
            address: s.messenger.port,
            abi: HyperlanePort.abi,
            eventName: 'PortMessageReceived',
            args: { recipient: s.spoke.gateway },
            fromBlock: before,
          })
        ).length > 0 || undefined,
      timeoutMs,
      100,
    ).catch(() => false)
  } finally {
    await setRoute(stack.network.hub.market)
  }
}
