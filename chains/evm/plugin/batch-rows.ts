/**
 * One rule for the chain plugin's `fulfillBatch` and the market plugin's `submitBatch`: when a
 * batch's simulation reverts on one of its rows, whether that row can go as padding of the same
 * proof (its request was settled meanwhile, moved to another node, or expired) or the revert
 * rejects the whole batch.
 */
import type { BatchRowOutcome } from '../../../core/plugins.ts'
import { NotAssignedError, RequestExpiredError, RequestSettledError, type DecodedRevert } from './errors.ts'
import { rejectionFor } from './rejections.ts'

/** The row a revert names, and what became of it (`settled`: the caller reads how, from `revert.args[1]`). */
export type RevertedRow = { id: bigint; row: number; key: string } & ({ kind: 'settled' } | { kind: 'moved'; outcome: BatchRowOutcome })

/**
 * The row of `ids` (0 for padding) that `revert` names, if it can go as padding; undefined when the
 * revert rejects the whole batch. A request named on two rows and found settled by the first makes
 * the batch malformed: undefined too.
 */
export function revertedRow(
  revert: DecodedRevert,
  ids: readonly bigint[],
  keyOf: (id: bigint) => string | undefined,
  rows: Readonly<Record<string, BatchRowOutcome>>,
): RevertedRow | undefined {
  const rejection = rejectionFor(revert.errorName).error
  if (rejection !== RequestSettledError && rejection !== NotAssignedError && rejection !== RequestExpiredError) return undefined
  // NodeRegistryNotAssigned(market, id, node, assigned); the others name the request first.
  const id = BigInt(revert.args[rejection === NotAssignedError ? 1 : 0] as bigint)
  const row = ids.indexOf(id)
  const key = keyOf(id)
  if (row < 0 || key === undefined) return undefined
  if (rejection === NotAssignedError)
    return { id, row, key, kind: 'moved', outcome: { status: 'Pending', alreadySettled: false, reassigned: true } }
  if (rejection === RequestExpiredError)
    return { id, row, key, kind: 'moved', outcome: { status: 'Pending', alreadySettled: false, expired: true } }
  if (rows[key] === undefined && ids.filter((x) => x === id).length > 1) return undefined
  return { id, row, key, kind: 'settled' }
}
