/**
 * What clients, workers and tests share about the request workflow: its input, its status query
 * and its outcome. Pure data and Temporal definitions only (imported by workflow code).
 */
import { defineQuery } from '@temporalio/workflow'
import type { InferenceErrorCode, InferenceRequest, RequestKey, StoredArtifact } from '../core/types.ts'

/** Task queue names, from configuration. */
export type TaskQueues = {
  chainIo: string
  inference: string
  prover: string
}

export type RequestWorkflowInput = {
  request: InferenceRequest
  queues: TaskQueues
}

/** The stages a request goes through, in order; it ends in `fulfilled`, `failed` or `settled-elsewhere`. */
export const STAGES = ['received', 'inference', 'proving', 'storing', 'fulfilling', 'failing', 'fulfilled', 'failed', 'settled-elsewhere'] as const
export type Stage = (typeof STAGES)[number]

/** Timings of one stage: workflow-clock milliseconds, and the activity's own measurement. */
export type StageTiming = {
  /** From scheduling the activity to its result, retries included. */
  ms: number
  /** What the activity measured for its work alone (absent when it did not say). */
  workMs?: number
  /** For transactions: the chain's inclusion wait (submitted → receipt), part of workMs. */
  inclusionMs?: number
  /** For transactions: unix ms when the receipt was read. */
  receiptAt?: number
  attempts: number
}

export type RequestStatusView = {
  key: RequestKey
  stage: Stage
  /** Unix ms when the workflow started. */
  startedAt: number
  timings: Partial<Record<'inference' | 'witness' | 'prove' | 'verify' | 'store' | 'upload' | 'fulfil' | 'fail', StageTiming>>
  output?: string[]
  storage?: { output: StoredArtifact; proof: StoredArtifact }
  transactionHash?: string
  error?: { code: InferenceErrorCode; reason: string }
}

/** The workflow's current status. */
export const statusQuery = defineQuery<RequestStatusView>('status')

export type RequestOutcome = RequestStatusView & { stage: 'fulfilled' | 'failed' | 'settled-elsewhere' }
