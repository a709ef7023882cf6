/**
 * A batch row's rebate, as a gateway's contract computes it (`InferenceGateway._rebate`), for
 * tests that check a gateway's payments to the wei.
 */
import type { GatewayConfig } from './deploy.ts'

/**
 * What each request a batch settles gets back (`BatchRebate`, paid by `releaseBatch`): the single
 * request's fulfilment gas less its share of the batch's (the batch's overhead over its `rows`, and
 * the row's own), at the gateway's gas price; 0 where batches are not priced or do not save.
 */
export function batchRebateOf(
  config: Pick<GatewayConfig, 'fulfillGasOverhead' | 'gasPrice' | 'batchGasOverhead' | 'batchRowGasOverhead'>,
  rows: number,
): bigint {
  if (config.batchGasOverhead === 0 || rows === 0) return 0n
  const share = Math.floor(config.batchGasOverhead / rows) + config.batchRowGasOverhead
  return share < config.fulfillGasOverhead ? BigInt(config.fulfillGasOverhead - share) * config.gasPrice : 0n
}
