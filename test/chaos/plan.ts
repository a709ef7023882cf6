/**
 * A chaos run's plan, drawn from its seed alone: the load (which chain, which consumer, which input
 * and callback gas, valid or deliberately invalid, when) and the fault schedule (which fault, on
 * what, after how long, for how long). Pure functions: the same seed and options give the same plan,
 * so that a run can be reproduced from its seed.
 */

/** A seeded pseudo-random generator (mulberry32): reproducible, not for keys. */
export type Rng = {
  /** A float in [0, 1). */
  float(): number
  /** An integer in [0, n). */
  int(n: number): number
  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number
  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T
  /** A copy of `xs` in a seeded order. */
  shuffle<T>(xs: readonly T[]): T[]
}

/** A {@link Rng} from `seed` (any integer; the same seed gives the same sequence). */
export function createRng(seed: number): Rng {
  let a = seed >>> 0
  const float = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(float() * n)
  return {
    float,
    int,
    between: (lo, hi) => lo + int(hi - lo + 1),
    pick: (xs) => xs[int(xs.length)]!,
    shuffle: (xs) => {
      const out = [...xs]
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1)
        ;[out[i], out[j]] = [out[j]!, out[i]!]
      }
      return out
    },
  }
}

// ───────────────────────────────── load ─────────────────────────────────

/** The consumer behaviours of the run (test/chaos/record.ts ChaosConsumer.behaviour). */
export type Behaviour = 'recording' | 'reverting' | 'guzzler' | 'refusing'

/** The consumers deployed on every chain, in order (a request names one by index). */
export const CONSUMERS_PER_CHAIN: readonly Behaviour[] = ['recording', 'recording', 'reverting', 'guzzler', 'refusing']

/** How often each consumer of {@link CONSUMERS_PER_CHAIN} is picked (weights, same order). */
const CONSUMER_WEIGHTS = [4, 3, 1, 1, 1] as const

/** Callback gas limits the load mixes. */
export const CALLBACK_GAS_CHOICES = [60_000, 120_000, 200_000, 400_000] as const

/** The invalid requests the load sends, each with the custom error the gateway must revert with. */
export const INVALID_KINDS = {
  'wrong-shape': 'GatewayInputShapeMismatch',
  'out-of-range': 'GatewayInputOutOfRange',
  unpaid: 'GatewayInsufficientPayment',
  'unknown-model': 'GatewayUnknownModel',
} as const

export type InvalidKind = keyof typeof INVALID_KINDS

/** One request the load sends, `at` ms after the load starts. */
export type PlannedRequest = {
  /** Its place in the plan (0, 1, …). */
  index: number
  at: number
  chain: string
  /** Whether it is part of a burst (sent with the requests around it at once). */
  burst: boolean
} & (
  | {
      kind: 'valid'
      /** Index into {@link CONSUMERS_PER_CHAIN}. */
      consumer: number
      /** The features, as decimals (quantized at the model's input scale when sent). */
      features: number[]
      callbackGas: number
    }
  | { kind: 'invalid'; invalid: InvalidKind }
)

export type LoadPlanOptions = {
  seed: number
  /** Valid requests. */
  requests: number
  /** Valid requests per second on average, all chains together. */
  rate: number
  chains: readonly string[]
  /** Invalid requests per valid one (default 0.1; at least one of each kind is sent when there are any). */
  invalidShare?: number
  /** The chance that a request starts a burst (default 0.15), and a burst's size range (default 3 to 8). */
  burstChance?: number
  burstSize?: readonly [number, number]
}

/**
 * The load of a run: `requests` valid requests spread over the chains at `rate` per second (gaps
 * drawn from an exponential distribution), some of them in bursts sent at one instant, with
 * invalid requests mixed in (every kind of {@link INVALID_KINDS} at least once).
 */
export function planLoad(o: LoadPlanOptions): PlannedRequest[] {
  const rng = createRng(o.seed * 7919 + 1)
  const kinds = Object.keys(INVALID_KINDS) as InvalidKind[]
  const invalidCount = o.requests === 0 ? 0 : Math.max(kinds.length, Math.round(o.requests * (o.invalidShare ?? 0.1)))
  const invalidAt = new Set<number>()
  const total = o.requests + invalidCount
  while (invalidAt.size < invalidCount) invalidAt.add(rng.int(total))
  const firstKinds = rng.shuffle(kinds)
  const [burstLo, burstHi] = o.burstSize ?? [3, 8]
  const weightSum = CONSUMER_WEIGHTS.reduce((a, b) => a + b, 0)
  const pickConsumer = () => {
    let r = rng.float() * weightSum
    for (const [i, w] of CONSUMER_WEIGHTS.entries()) {
      r -= w
      if (r < 0) return i
    }
    return 0
  }
  const out: PlannedRequest[] = []
  let t = 0
  let burstLeft = 0
  let invalidIndex = 0
  for (let i = 0; i < total; i++) {
    const chain = rng.pick(o.chains)
    let burst = burstLeft > 0
    if (burstLeft > 0) burstLeft--
    else {
      t += Math.round((-Math.log(1 - rng.float()) * 1000) / o.rate)
      if (rng.float() < (o.burstChance ?? 0.15)) {
        burstLeft = rng.between(burstLo, burstHi) - 1
        burst = true
      }
    }
    if (invalidAt.has(i)) {
      // Every kind once first (in a seeded order), then at random.
      const invalid = invalidIndex < kinds.length ? firstKinds[invalidIndex]! : rng.pick(kinds)
      out.push({ index: i, at: t, chain, burst, kind: 'invalid', invalid })
      invalidIndex++
      continue
    }
    out.push({
      index: i,
      at: t,
      chain,
      burst,
      kind: 'valid',
      consumer: pickConsumer(),
      features: Array.from({ length: 4 }, () => Math.round((rng.float() * 6 - 3) * 100) / 100),
      callbackGas: rng.pick(CALLBACK_GAS_CHOICES),
    })
  }
  return out
}

// ───────────────────────────────── faults ─────────────────────────────────

/**
 * The fault kinds a run can inject. A `reorg` replaces a chain's newest blocks, deeper than its
 * confirmations, with new ones: the node's and the agents' transactions in them (deliveries,
 * submissions, relays) are dropped, the load's requests in them are mined again in the new blocks
 * (as a dropped transaction returns from the mempool on a real chain), so that a request the node
 * saw may move to another block. `restart-agents` stops one messenger's agents, `reorg` one chain:
 * the schedule has one of each per messenger and per chain. `expire` sends a few requests on one
 * chain while its gateway's timeout is a second (the owner's `setConfig`, then put back): nobody can
 * serve them in time, so each must end refunded after its deadline. `drop-tx` is a reorg of the hub
 * that does not mine one transaction again: the newest of an operator's node account, gone for good
 * (as a pool that evicts it, or an RPC provider that never spreads it, leaves it), so that the
 * node's later transactions wait behind its nonce until its send queue fills it.
 */
export const FAULT_KINDS = [
  'kill-prover',
  'kill-inference',
  'kill-chain-io',
  'restart-temporal',
  'cut-rpc',
  'restart-agents',
  'stall-operator',
  'reorg',
  'drop-tx',
  'expire',
] as const

export type FaultKind = (typeof FAULT_KINDS)[number]

/** A request an `expire` fault sends: from a recording consumer, refunded after its deadline. */
export type ExpiringRequest = { consumer: number; features: number[]; callbackGas: number }

/** One fault of the schedule. */
export type PlannedFault = {
  kind: FaultKind
  /** Ms to wait after the previous fault ended (or the load started) before this one begins. */
  gapMs: number
  /**
   * How long it lasts: a killed worker stays dead, an RPC stays cut, agents stay stopped, an operator
   * stays stalled this long (a Temporal restart takes as long as it takes).
   */
  durationMs: number
  /** The operator (from 0) a worker kill or a stall hits. */
  operator?: number
  /** The chain whose RPC is cut, that is reorganised (or loses a node transaction), or whose requests expire. */
  chain?: string
  /** The messenger whose agents are restarted. */
  messenger?: string
  /** The requests an `expire` sends (each meant to expire). */
  requests?: ExpiringRequest[]
  /** A reorg's depth (blocks replaced; the least, for a `drop-tx`). */
  depth?: number
}

export type FaultPlanOptions = {
  seed: number
  kinds: readonly FaultKind[]
  chains: readonly string[]
  operators: number
  /** Roughly how long the load runs (ms): the gaps spread the faults over it. */
  loadMs: number
  /** The hub's reassignment window (ms): a stall lasts longer than it, so that its requests are reassigned. */
  reassignWindowMs: number
  /** The chains' confirmations: a reorg goes deeper (default 1). */
  confirmations?: number
  /** The messengers whose agents run (default hyperlane and layerzero): `restart-agents` hits each. */
  messengers?: readonly string[]
}

/**
 * The fault schedule: each kind once (`restart-agents` once per messenger, `reorg` once per chain),
 * in a seeded order, one after another, the gaps spreading them over the load.
 */
export function planFaults(o: FaultPlanOptions): PlannedFault[] {
  const rng = createRng(o.seed * 104729 + 7)
  const messengers = o.messengers ?? ['hyperlane', 'layerzero']
  const slots = o.kinds.flatMap((kind): { kind: FaultKind; target?: string }[] =>
    kind === 'restart-agents'
      ? messengers.map((m) => ({ kind, target: m }))
      : kind === 'reorg'
        ? o.chains.map((c) => ({ kind, target: c }))
        : [{ kind }],
  )
  const order = rng.shuffle(slots)
  const meanGap = Math.max(5_000, Math.round(o.loadMs / Math.max(1, order.length + 1)))
  return order.map(({ kind, target }): PlannedFault => {
    const gapMs = Math.round(meanGap * (0.5 + rng.float()))
    switch (kind) {
      case 'kill-prover':
      case 'kill-inference':
      case 'kill-chain-io':
        return { kind, gapMs, durationMs: rng.between(1_000, 5_000), operator: rng.int(o.operators) }
      case 'restart-temporal':
        return { kind, gapMs, durationMs: 0 }
      case 'cut-rpc':
        return { kind, gapMs, durationMs: rng.between(20_000, 40_000), chain: rng.pick(o.chains) }
      case 'restart-agents':
        return { kind, gapMs, durationMs: rng.between(5_000, 15_000), messenger: target! }
      case 'stall-operator':
        return { kind, gapMs, durationMs: o.reassignWindowMs + rng.between(10_000, 20_000), operator: rng.int(o.operators) }
      case 'reorg':
        return { kind, gapMs, durationMs: 0, chain: target!, depth: (o.confirmations ?? 1) + rng.between(1, 3) }
      case 'drop-tx':
        // The hub (the first chain): the node sends most of its transactions there.
        return { kind, gapMs, durationMs: 0, chain: o.chains[0]!, depth: (o.confirmations ?? 1) + 1 }
      case 'expire':
        return {
          kind,
          gapMs,
          durationMs: 0,
          chain: rng.pick(o.chains),
          requests: Array.from({ length: rng.between(2, 4) }, () => ({
            consumer: rng.int(2),
            features: Array.from({ length: 4 }, () => Math.round((rng.float() * 6 - 3) * 100) / 100),
            callbackGas: rng.pick(CALLBACK_GAS_CHOICES),
          })),
        }
      default:
        throw new Error(`unknown fault kind ${String(kind)}`)
    }
  })
}
