/**
 * What a worker process knows about its own health, reported by its parts and read by its
 * `/healthz` and `/readyz` endpoints: Temporal connectivity, each chain's watcher (last scanned
 * block, head, lag, last error), the prover pool, and the relay agents' backlog.
 *
 * Process-wide and pure data: parts call the `report*` functions; the health server reads
 * {@link healthSnapshot}.
 */

export type ChainHealth = {
  /** The last block the watcher has scanned (undefined before its first scan). */
  lastScannedBlock?: bigint
  /** The chain's head at that scan. */
  head?: bigint
  /** head − lastScannedBlock. */
  lagBlocks?: number
  /** When the watcher last scanned successfully (ms since the epoch). */
  lastScanAt?: number
  /** The last error of a scan, cleared by the next successful one. */
  error?: string
}

export type ProverHealth = { slots: number; busy: number }
export type RelayHealth = { pending: number; rejected: number; error?: string }
export type TemporalHealth = { ok: boolean; checkedAt: number; error?: string }

type HealthState = {
  chains: Map<string, ChainHealth>
  prover?: ProverHealth
  relays: Map<string, RelayHealth>
  temporal?: TemporalHealth
}

const state: HealthState = { chains: new Map(), relays: new Map() }

/** A watcher's scan of `chain` (merged into what was reported before). */
export function reportChain(chain: string, update: ChainHealth): void {
  state.chains.set(chain, { ...state.chains.get(chain), ...update })
}

export function reportProver(update: ProverHealth): void {
  state.prover = update
}

/** A relay route's backlog (`route`: e.g. `hyperlane spoke→hub`). */
export function reportRelay(route: string, update: RelayHealth): void {
  state.relays.set(route, update)
}

export function reportTemporal(update: TemporalHealth): void {
  state.temporal = update
}

export type HealthSnapshot = {
  chains: Record<string, ChainHealth>
  prover?: ProverHealth
  relays: Record<string, RelayHealth>
  temporal?: TemporalHealth
}

export function healthSnapshot(): HealthSnapshot {
  return {
    chains: Object.fromEntries(state.chains),
    ...(state.prover ? { prover: { ...state.prover } } : {}),
    relays: Object.fromEntries(state.relays),
    ...(state.temporal ? { temporal: { ...state.temporal } } : {}),
  }
}

/** Forgets everything reported (tests). */
export function resetHealth(): void {
  state.chains.clear()
  state.relays.clear()
  delete state.prover
  delete state.temporal
}
