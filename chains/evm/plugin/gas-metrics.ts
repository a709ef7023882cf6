/**
 * Records what a mined transaction of the node cost (core/metrics.ts): `sertn_gas_used_total` and
 * `sertn_gas_spent_wei_total` by chain and operation (the contract function: `fulfill`,
 * `submitResult`, `fulfillBatch`, …). A reverted transaction counts too: its gas was paid.
 */
import type { TransactionReceipt } from 'viem'
import { metrics } from '../../../core/metrics.ts'

export function recordGas(chain: string, operation: string, receipt: Pick<TransactionReceipt, 'gasUsed' | 'effectiveGasPrice'>): void {
  const labels = { chain, operation }
  metrics.gasUsed.inc(labels, Number(receipt.gasUsed))
  // A receipt from an old node may lack the price.
  const price = receipt.effectiveGasPrice ?? 0n
  metrics.gasSpentWei.inc(labels, Number(receipt.gasUsed * price))
}
