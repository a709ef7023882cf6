/**
 * Replay: the request workflow as it is now must replay the histories recorded from real runs
 * (test/fixtures/histories/*.json, written by `npx tsx test/replay/record.ts`) without a
 * DeterminismViolationError. A change to the workflow that would break workflows already running
 * on a node (activities reordered, added or removed without `patched()`) fails here.
 *
 * The histories are the JSON that Temporal's tools write (`historyToJSON`); reading it back needs
 * protobufjs ≥ 8 (a root dependency). No server is needed: the replay worker runs the bundled
 * workflow against each history alone.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker'
import { DeterminismViolationError } from '@temporalio/workflow'
import { beforeAll, describe, expect, test } from 'vitest'
import { STAGE_CODES, codeOfFailure } from '../../workflows/failure-codes.ts'
import type { RequestStatusView } from '../../workflows/messages.ts'
import { workflowBundle } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const DIR = fileURLToPath(new URL('../fixtures/histories', import.meta.url))
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()

type JsonEvent = { eventType: string } & Record<string, { activityType?: { name: string } } | string>
type JsonHistory = { events: JsonEvent[] }

const read = (file: string): JsonHistory => JSON.parse(readFileSync(join(DIR, file), 'utf8')) as JsonHistory
const scheduledActivities = (h: JsonHistory) =>
  h.events
    .filter((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED')
    .map((e) => (e.activityTaskScheduledEventAttributes as { activityType: { name: string } }).activityType.name)

let bundle: Awaited<ReturnType<typeof workflowBundle>>
beforeAll(async () => {
  bundle = await workflowBundle()
})

describe('request workflow replay', () => {
  test('default: the recorded histories are there: fulfilled and failed requests, on the hub and from a spoke, before and since model resolution', () => {
    expect(FILES).toEqual(
      expect.arrayContaining([
        'request-fulfilled.json',
        'request-failed-unknown-model.json',
        'spoke-request-fulfilled.json',
        'spoke-request-failed-on-hub.json',
      ]),
    )
    expect(scheduledActivities(read('spoke-request-fulfilled.json'))).toEqual(
      expect.arrayContaining(['awaitHubRecord', 'proveInference', 'submitToHub', 'awaitSpokeSettlement', 'awaitHubSettlement']),
    )
    expect(scheduledActivities(read('spoke-request-failed-on-hub.json'))).toContain('failOnHub')
    expect(scheduledActivities(read('request-fulfilled.json'))).toEqual(
      expect.arrayContaining(['runInference', 'proveInference', 'prepareResult', 'uploadResult', 'fulfillRequest']),
    )
    expect(scheduledActivities(read('request-failed-unknown-model.json'))).toContain('failRequest')
    // Since model resolution (patched 'resolve-model'): the registry is read first, on every path.
    expect(FILES).toEqual(
      expect.arrayContaining([
        'resolved-request-fulfilled.json',
        'resolved-request-failed-unknown-model.json',
        'resolved-spoke-request-fulfilled.json',
        'resolved-spoke-request-failed-on-hub.json',
      ]),
    )
    for (const f of FILES.filter((x) => x.startsWith('resolved-'))) expect(scheduledActivities(read(f)), f).toContain('resolveModel')
    for (const f of FILES.filter((x) => !x.startsWith('resolved-'))) expect(scheduledActivities(read(f)), f).not.toContain('resolveModel')
    for (const f of FILES) expect(read(f).events.at(-1)?.eventType, f).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED')
  })

  test.each(FILES)('behavior: %s replays deterministically with the current workflow code', async (file) => {
    await Worker.runReplayHistory({ workflowBundle: bundle }, read(file), file)
  })

  // The SDK compares the commands, not their arguments: the code a request is failed with is checked
  // here. These histories' failures carry no code in their details (recorded before the activities
  // attached it): the workflow must fail them with the code it used then.
  test.each(FILES.filter((f) => scheduledActivities(read(f)).some((a) => a === 'failRequest' || a === 'failOnHub')))(
    'behavior: %s: the failure is failed with the code recorded then',
    (file) => {
      const { events } = read(file)
      const attrs = (e: JsonEvent, key: string) => e[key] as unknown as Record<string, unknown>
      const scheduled = new Map(
        events
          .filter((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED')
          .map((e) => [String(e.eventId), attrs(e, 'activityTaskScheduledEventAttributes')] as const),
      )
      const failed = events.find((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_FAILED')!
      const { scheduledEventId, failure } = attrs(failed, 'activityTaskFailedEventAttributes') as {
        scheduledEventId: string
        failure: { applicationFailureInfo?: { type: string; details?: { payloads: { data: string }[] } } }
      }
      const info = failure.applicationFailureInfo!
      const details = info.details?.payloads.map((p) => JSON.parse(Buffer.from(p.data, 'base64').toString('utf8')) as unknown)
      expect(details).toBeUndefined()
      const failedActivity = (scheduled.get(scheduledEventId)!.activityType as { name: string }).name
      const stages: Record<string, RequestStatusView['stage']> = {
        resolveModel: 'resolving',
        loadInput: 'loading-input',
        runInference: 'proving',
        proveInference: 'proving',
        submitToHub: 'submitting',
        fulfillRequest: 'fulfilling',
      }
      const stage = stages[failedActivity]!
      expect(stage, failedActivity).toBeDefined()
      const fail = [...scheduled.values()].find((a) => ['failRequest', 'failOnHub'].includes((a.activityType as { name: string }).name))!
      const args = (fail.input as { payloads: { data: string }[] }).payloads.map(
        (p) => JSON.parse(Buffer.from(p.data, 'base64').toString('utf8')) as unknown,
      )
      const recorded = (fail.activityType as { name: string }).name === 'failRequest' ? args[1] : args[2]
      expect(codeOfFailure(info.type, details) ?? STAGE_CODES[stage] ?? 'Unknown').toBe(recorded)
    },
  )

  test('error: the check has teeth: a history whose first two activities are swapped fails with a DeterminismViolationError', async () => {
    const history = read('request-fulfilled.json')
    const scheduled = history.events.filter((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED')
    const [a, b] = scheduled.map((e) => e.activityTaskScheduledEventAttributes as { activityType: { name: string } })
    expect(a!.activityType.name).not.toBe(b!.activityType.name)
    ;[a!.activityType.name, b!.activityType.name] = [b!.activityType.name, a!.activityType.name]
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, history, 'swapped')).rejects.toBeInstanceOf(DeterminismViolationError)
  })
})
