/**
 * Prometheus metrics: one process-wide registry holding every metric a Sertn process exposes on
 * `/metrics` (the worker's health server adds Temporal's own SDK metrics beside them). Names follow
 * Prometheus conventions: `sertn_` prefix, base units (seconds, wei, blocks), `_total` counters.
 *
 * Modules record into the metrics below; none creates its own registry, so one scrape shows them all.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export const registry = new Registry()
collectDefaultMetrics({ register: registry, prefix: 'sertn_process_' })

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600]

export const metrics = {
  /** A request workflow's steps by stage and outcome (`ok`, `error`, or a failure code). */
  requests: new Counter({
    name: 'sertn_requests_total',
    help: 'Request steps by chain, stage and outcome',
    labelNames: ['chain', 'stage', 'outcome'] as const,
    registers: [registry],
  }),
  /** How long each activity (a stage of a request or batch) took, by stage and outcome. */
  stageSeconds: new Histogram({
    name: 'sertn_stage_duration_seconds',
    help: 'Duration of each request stage (activity), by stage and outcome',
    labelNames: ['stage', 'outcome'] as const,
    buckets: SECONDS,
    registers: [registry],
  }),
  /** Proving time by model, prover plugin and rows per proof (1 for a single request). */
  provingSeconds: new Histogram({
    name: 'sertn_proving_duration_seconds',
    help: 'Proof generation time by model, prover and rows per proof',
    labelNames: ['model', 'prover', 'rows'] as const,
    buckets: SECONDS,
    registers: [registry],
  }),
  /** Gas used by the node's (and agents') transactions, by chain and operation. */
  gasUsed: new Counter({
    name: 'sertn_gas_used_total',
    help: 'Gas used by mined transactions, by chain and operation',
    labelNames: ['chain', 'operation'] as const,
    registers: [registry],
  }),
  /** What that gas cost (gas used × effective gas price), in wei. */
  gasSpentWei: new Counter({
    name: 'sertn_gas_spent_wei_total',
    help: 'Fees paid for mined transactions in wei, by chain and operation',
    labelNames: ['chain', 'operation'] as const,
    registers: [registry],
  }),
  /** Transactions sent again with the same nonce and a higher fee, by chain. */
  transactionsReplaced: new Counter({
    name: 'sertn_transactions_replaced_total',
    help: 'Stuck transactions replaced with a higher fee (same nonce), by chain',
    labelNames: ['chain'] as const,
    registers: [registry],
  }),
  /**
   * Nonces of the account found free again after their transaction was dropped (a reorg dropped
   * a mined one for good, or a pool evicted one), by `how` they were filled: `resent` (the same
   * transaction sent again) or `filled` (an empty transfer to self, where no copy was kept: another
   * process sent it).
   */
  nonceGaps: new Counter({
    name: 'sertn_transaction_nonce_gaps_total',
    help: 'Nonces found free again after their transaction was dropped (reorg, eviction), by chain and how the gap was filled',
    labelNames: ['chain', 'how'] as const,
    registers: [registry],
  }),
  /** Calls that an RPC endpoint failed and the next one answered, by chain. */
  rpcFailovers: new Counter({
    name: 'sertn_rpc_failovers_total',
    help: 'RPC requests answered by a fallback endpoint after the primary failed, by chain',
    labelNames: ['chain'] as const,
    registers: [registry],
  }),
  /** Messages the local messenger agents have seen and not yet delivered, by messenger and route. */
  relayPending: new Gauge({
    name: 'sertn_relay_pending_messages',
    help: 'Messages seen by the relay agents and not yet delivered, by messenger and route',
    labelNames: ['messenger', 'route'] as const,
    registers: [registry],
  }),
  /** Messages the agents gave up on (rejected by the destination), by messenger and route. */
  relayRejected: new Gauge({
    name: 'sertn_relay_rejected_messages',
    help: 'Messages the relay agents hold as rejected (listed by `sertn relay rejected`), by messenger and route',
    labelNames: ['messenger', 'route'] as const,
    registers: [registry],
  }),
  /** The last block each chain's watcher has scanned. */
  watcherBlock: new Gauge({
    name: 'sertn_watcher_last_scanned_block',
    help: 'The last block scanned for requests, by chain',
    labelNames: ['chain'] as const,
    registers: [registry],
  }),
  /** How far each watcher is behind its chain's head (blocks). */
  watcherLag: new Gauge({
    name: 'sertn_watcher_lag_blocks',
    help: "Blocks between a chain's head and its watcher's last scanned block",
    labelNames: ['chain'] as const,
    registers: [registry],
  }),
  /** The balance of each account the process signs with, in wei (as a float). */
  balanceWei: new Gauge({
    name: 'sertn_account_balance_wei',
    help: 'Balance of each signing account, in wei, by chain, role and address',
    labelNames: ['chain', 'role', 'address'] as const,
    registers: [registry],
  }),
  /** 1 while an account's balance is under its alarm threshold. */
  balanceLow: new Gauge({
    name: 'sertn_account_balance_low',
    help: "1 while a signing account's balance is below its configured alarm threshold",
    labelNames: ['chain', 'role', 'address'] as const,
    registers: [registry],
  }),
  /** Expired requests the keeper refunded, by chain. */
  keeperRefunds: new Counter({
    name: 'sertn_keeper_refunds_total',
    help: 'Expired requests refunded by the keeper, by chain',
    labelNames: ['chain'] as const,
    registers: [registry],
  }),
  /** Deferred settlement receipts the keeper sent to the hub, by (spoke) chain. */
  keeperReceipts: new Counter({
    name: 'sertn_keeper_receipts_total',
    help: 'Deferred settlement receipts sent to the hub by the keeper, by chain',
    labelNames: ['chain'] as const,
    registers: [registry],
  }),
  /**
   * Infernet subscriptions the keeper handled, by chain and outcome: `dispatched` (by this keeper),
   * `already_dispatched` or `cancelled` (by someone else first), `retrying` (its dispatch reverted;
   * tried again later), `undispatchable` (given up after its retries, with a warning).
   */
  keeperDispatches: new Counter({
    name: 'sertn_keeper_dispatches_total',
    help: 'Infernet subscriptions handled by the keeper, by chain and outcome',
    labelNames: ['chain', 'outcome'] as const,
    registers: [registry],
  }),
  /** Proofs running on this process's prover pool, and its size. */
  proverBusy: new Gauge({
    name: 'sertn_prover_busy',
    help: 'Proofs running on this worker',
    registers: [registry],
  }),
  proverSlots: new Gauge({
    name: 'sertn_prover_slots',
    help: 'Proofs this worker runs at once',
    registers: [registry],
  }),
}
