/**
 * The chaos run's load: consumer contracts deployed on every chain (test/chaos/plan.ts
 * CONSUMERS_PER_CHAIN), the planned requests sent from the dApp user's account as real
 * transactions straight to anvil (a cut node RPC does not stop the load), and the gateways' outcome
 * events watched. Valid requests go through a consumer paying the gateway's quote; invalid ones go
 * to the gateway itself with an explicit gas limit, so that they are mined and revert with the
 * custom error the plan expects. Each chain's transactions are sent one after another with
 * nonces counted here, the chains side by side.
 */
import { getAddress, keccak256, parseEventLogs, toHex, type Address, type Hex } from 'viem'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { deployContract } from '../../chains/evm/deploy.ts'
import {
  EthRefusingConsumer,
  GasGuzzlerConsumer,
  InferenceGateway,
  RecordingConsumer,
  RevertingConsumer,
} from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { requestKey } from '../../core/types.ts'
import type { ChaosNetwork } from './network.ts'
import { CONSUMERS_PER_CHAIN, INVALID_KINDS, type Behaviour, type PlannedRequest } from './plan.ts'
import type { ChaosConsumer, ChaosInvalid, ChaosRequest } from './record.ts'

const CONSUMER_ARTIFACTS = {
  recording: RecordingConsumer,
  reverting: RevertingConsumer,
  guzzler: GasGuzzlerConsumer,
  refusing: EthRefusingConsumer,
} as const satisfies Record<Behaviour, unknown>

/** Gas for every load transaction: enough for a spoke request's messenger dispatch, and an invalid one is mined. */
const REQUEST_GAS = 2_000_000n

/** One chain as the load sees it. */
export type LoadChain = {
  name: string
  chainId: number
  role: 'hub' | 'spoke'
  messenger?: 'hyperlane' | 'layerzero'
  gateway: Address
  registry: Address
  modelId: Hex
  modelName: string
  inputScale: number
  /** The dApp user (sends the load), on anvil directly. */
  user: SertnClient
  consumers: { address: Address; behaviour: Behaviour }[]
  /** The first block of the run on this chain. */
  fromBlock: bigint
}

/** Deploys the consumers on every chain of `net`; `fromBlock` is each chain's next block after them. */
export async function prepareLoadChains(net: ChaosNetwork): Promise<LoadChain[]> {
  const { network } = net.local
  const chains = [
    {
      name: network.hub.name,
      chainId: network.hub.chainId,
      role: 'hub' as const,
      gateway: network.hub.core.gateway,
      registry: network.hub.core.registry,
      model: network.hub.models[0]!,
    },
    ...network.spokes.map((s) => ({
      name: s.name,
      chainId: s.chainId,
      role: 'spoke' as const,
      messenger: s.messenger.kind as 'hyperlane' | 'layerzero',
      gateway: s.spoke.gateway,
      registry: s.spoke.registry,
      model: s.models[0]!,
    })),
  ]
  return Promise.all(
    chains.map(async (c) => {
      const user = net.local.chains[c.name]!.user
      const consumers: LoadChain['consumers'] = []
      for (const behaviour of CONSUMERS_PER_CHAIN)
        consumers.push({ address: await deployContract(user, CONSUMER_ARTIFACTS[behaviour], [c.gateway]), behaviour })
      const { model, ...rest } = c
      return {
        ...rest,
        modelId: model.modelId,
        modelName: model.name,
        inputScale: model.manifest.inputScale,
        user,
        consumers,
        fromBlock: (await user.getBlockNumber()) + 1n,
      }
    }),
  )
}

/** The record's consumers of `chains`. */
export function consumersOf(chains: readonly LoadChain[]): ChaosConsumer[] {
  return chains.flatMap((c) => c.consumers.map((x) => ({ chain: c.name, address: x.address, behaviour: x.behaviour })))
}

/** Sends planned requests, one chain's after another's in order; what was sent is in `requests` and `invalid`. */
export class LoadSender {
  readonly requests: ChaosRequest[] = []
  readonly invalid: ChaosInvalid[] = []
  /** Plan entries that did not go as planned (an invalid request accepted, a valid one refused, a send that failed). */
  readonly surprises: string[] = []
  private readonly nonces = new Map<string, number>()
  private readonly quotes = new Map<string, bigint>()
  private readonly queues = new Map<string, Promise<void>>()
  private readonly lastBlock = new Map<string, bigint>()

  constructor(
    private readonly chains: readonly LoadChain[],
    private readonly seed: number,
  ) {}

  /** Sends `p` after the chain's earlier sends; resolves once it is mined and recorded. */
  send(p: PlannedRequest): Promise<void> {
    const prev = this.queues.get(p.chain) ?? Promise.resolve()
    const next = prev
      .then(async () => void (await this.sendNow(p)))
      .catch((err: unknown) => void this.surprises.push(`#${p.index} on ${p.chain}: ${short(err)}`))
    this.queues.set(p.chain, next)
    return next
  }

  /**
   * Holds `chain`'s sends: those queued after this wait until `release()`. Resolves once the sends
   * queued before it are mined, with the last block they were mined in (undefined: none yet).
   */
  async hold(chain: string): Promise<{ lastBlock: bigint | undefined; release: () => void }> {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const prev = this.queues.get(chain) ?? Promise.resolve()
    this.queues.set(
      chain,
      prev.then(() => gate),
    )
    await prev
    return { lastBlock: this.lastBlock.get(chain), release }
  }

  /** Resolves once every send so far has settled. */
  async drain(): Promise<void> {
    await Promise.all(this.queues.values())
  }

  /**
   * Sends `p` at once, outside the chain's queue: for a fault that holds the chain ({@link hold})
   * and sends while it holds it. `expectExpiry` marks the request as meant to expire.
   */
  async sendHeld(p: PlannedRequest, extra: { expectExpiry?: boolean } = {}): Promise<ChaosRequest | undefined> {
    const r = await this.sendNow(p)
    if (r && extra.expectExpiry) r.expectExpiry = true
    return r
  }

  /** The load's chain `name`. */
  chain(name: string): LoadChain {
    const c = this.chains.find((x) => x.name === name)
    if (!c) throw new Error(`no chain ${name} in the load`)
    return c
  }

  private async quote(c: LoadChain, gas: number): Promise<bigint> {
    const k = `${c.name}:${gas}`
    let q = this.quotes.get(k)
    if (q === undefined) {
      q = await c.user.readContract({ address: c.gateway, abi: InferenceGateway.abi, functionName: 'quote', args: [c.modelId, gas] })
      this.quotes.set(k, q)
    }
    return q
  }

  private async nonce(c: LoadChain): Promise<number> {
    let n = this.nonces.get(c.name)
    if (n === undefined) n = await c.user.getTransactionCount({ address: c.user.account.address, blockTag: 'pending' })
    this.nonces.set(c.name, n + 1)
    return n
  }

  /** Sends `p` now; the accepted request as recorded (undefined: invalid, or refused). */
  private async sendNow(p: PlannedRequest): Promise<ChaosRequest | undefined> {
    const c = this.chain(p.chain)
    const nonce = await this.nonce(c)
    if (p.kind === 'valid') {
      const consumer = c.consumers[p.consumer]!
      const input = p.features.map((x) => quantize(x, c.inputScale))
      const hash = await c.user.writeContract({
        address: consumer.address,
        abi: RecordingConsumer.abi,
        functionName: 'request',
        args: [c.modelId, input, p.callbackGas],
        value: await this.quote(c, p.callbackGas),
        gas: REQUEST_GAS,
        nonce,
      })
      const receipt = await c.user.waitForTransactionReceipt({ hash, pollingInterval: 100 })
      const sentAt = Date.now()
      this.lastBlock.set(c.name, receipt.blockNumber)
      if (receipt.status !== 'success') {
        this.surprises.push(`#${p.index} on ${c.name}: a valid request reverted (tx ${hash})`)
        return
      }
      const [log] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
      if (!log) {
        this.surprises.push(`#${p.index} on ${c.name}: no InferenceRequested in ${hash}`)
        return
      }
      const request: ChaosRequest = {
        chain: c.name,
        requestId: log.args.requestId,
        key: requestKey(c.chainId, c.gateway, log.args.requestId),
        consumer: getAddress(consumer.address),
        modelId: c.modelId,
        input,
        callbackGasLimit: p.callbackGas,
        txHash: hash,
        sentAt,
      }
      this.requests.push(request)
      return request
    }
    const valid = [0.5, -1.25, 2, 0.75].map((x) => quantize(x, c.inputScale))
    const gas = 200_000
    const args: { modelId: Hex; input: bigint[]; value: bigint } = (() => {
      switch (p.invalid) {
        case 'wrong-shape':
          return { modelId: c.modelId, input: valid.slice(0, 3), value: 0n }
        case 'out-of-range':
          return { modelId: c.modelId, input: [10n ** 30n, ...valid.slice(1)], value: 0n }
        case 'unpaid':
          return { modelId: c.modelId, input: valid, value: 0n }
        case 'unknown-model':
          return { modelId: keccak256(toHex(`chaos unknown model ${this.seed}:${p.index}`)), input: valid, value: 0n }
      }
    })()
    if (p.invalid !== 'unpaid') args.value = await this.quote(c, gas)
    const hash = await c.user.writeContract({
      address: c.gateway,
      abi: InferenceGateway.abi,
      functionName: 'requestInference',
      args: [args.modelId, args.input, gas],
      value: args.value,
      gas: REQUEST_GAS,
      nonce,
    })
    const receipt = await c.user.waitForTransactionReceipt({ hash, pollingInterval: 100 })
    this.lastBlock.set(c.name, receipt.blockNumber)
    if (receipt.status === 'success') this.surprises.push(`#${p.index} on ${c.name}: the ${p.invalid} request was accepted (tx ${hash})`)
    this.invalid.push({ chain: c.name, kind: p.invalid, expectedError: INVALID_KINDS[p.invalid], txHash: hash })
    return undefined
  }
}

/** A request's outcome events as the run saw them. */
export type SeenOutcome = {
  kind: 'fulfilled' | 'failed' | 'refunded'
  at: number
  txHash: Hex
  /** The node paid (a fulfilment) or that failed it. */
  node?: Address
  /** A failure's code (InferenceErrorCode) and reason. */
  failure?: { code: number; reason: string }
}

/**
 * Watches every chain's gateway for InferenceFulfilled, InferenceFailed and InferenceRefunded
 * (reading only blocks not read before), keyed by request key.
 */
export class OutcomeWatcher {
  readonly outcomes = new Map<string, SeenOutcome[]>()
  private readonly next = new Map<string, bigint>()

  constructor(private readonly chains: readonly LoadChain[]) {
    for (const c of chains) this.next.set(c.name, c.fromBlock)
  }

  /** Reads each chain's new blocks once. */
  async poll(): Promise<void> {
    await Promise.all(
      this.chains.map(async (c) => {
        const head = await c.user.getBlockNumber({ cacheTime: 0 })
        const from = this.next.get(c.name)!
        if (head < from) return
        const logs = await c.user.getContractEvents({ address: c.gateway, abi: InferenceGateway.abi, fromBlock: from, toBlock: head })
        const now = Date.now()
        for (const log of logs) {
          const kind =
            log.eventName === 'InferenceFulfilled'
              ? 'fulfilled'
              : log.eventName === 'InferenceFailed'
                ? 'failed'
                : log.eventName === 'InferenceRefunded'
                  ? 'refunded'
                  : undefined
          if (!kind) continue
          const { requestId, node, code, reason } = log.args as { requestId: bigint; node?: Address; code?: number; reason?: string }
          const key = requestKey(c.chainId, c.gateway, requestId)
          const seen: SeenOutcome = {
            kind,
            at: now,
            txHash: log.transactionHash,
            ...(node ? { node: getAddress(node) } : {}),
            ...(kind === 'failed' ? { failure: { code: Number(code), reason: reason ?? '' } } : {}),
          }
          this.outcomes.set(key, [...(this.outcomes.get(key) ?? []), seen])
        }
        this.next.set(c.name, head + 1n)
      }),
    )
  }

  /** When `key` first reached an outcome (undefined: not yet). */
  settledAt(key: string): number | undefined {
    return this.outcomes.get(key)?.[0]?.at
  }
}

function short(err: unknown): string {
  const e = err as { shortMessage?: string; message?: string }
  return e.shortMessage ?? e.message ?? String(err)
}
