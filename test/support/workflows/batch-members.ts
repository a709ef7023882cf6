/**
 * Workflows for testing the batch workflow alone: the batch workflow itself, and a stand-in member
 * that does nothing but wait for its batch's answer (the request workflow's part, without its
 * activities) and return it.
 */
import { condition, setHandler } from '@temporalio/workflow'
import { batchResultSignal, type BatchResult } from '../../../workflows/messages.ts'

export { batchWorkflow } from '../../../workflows/batch.workflow.ts'

export async function memberWorkflow(): Promise<BatchResult> {
  let result: BatchResult | undefined
  setHandler(batchResultSignal, (r) => {
    result = r
  })
  await condition(() => result !== undefined)
  return result!
}
