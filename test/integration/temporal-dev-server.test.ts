/**
 * The local Temporal dev server keeps its SQLite file in write-ahead-log mode: with SQLite's
 * default rollback journal every commit syncs the file, and under a burst of requests the server
 * fell tens of seconds behind (an activity waited that long for an idle worker).
 */
import { existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Connection } from '@temporalio/client'
import { afterAll, expect, test } from 'vitest'
import { startTemporalDevServer, type TemporalDevServer } from '../../workflows/worker/temporal-dev-server.ts'

const dir = mkdtempSync(join(tmpdir(), 'sertn-temporal-db-'))
let temporal: TemporalDevServer | undefined

afterAll(async () => {
  await temporal?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** Bytes 18 and 19 of a SQLite file's header: the write and read format versions (2: WAL, 1: rollback journal). */
function formatVersions(file: string): [number, number] {
  const fd = openSync(file, 'r')
  try {
    const header = Buffer.alloc(20)
    readSync(fd, header, 0, 20, 0)
    return [header[18]!, header[19]!]
  } finally {
    closeSync(fd)
  }
}

test('the dev server persists to a SQLite file in write-ahead-log mode', async () => {
  const dbFile = join(dir, 'temporal.db')
  temporal = await startTemporalDevServer({ dbFile })
  // Something to commit: a namespace's registration goes through the same store as every workflow.
  const connection = await Connection.connect({ address: temporal.address })
  try {
    const client = new Client({ connection })
    const ns = await client.workflowService.describeNamespace({ namespace: temporal.namespace })
    expect(ns.namespaceInfo?.name).toBe(temporal.namespace)
  } finally {
    await connection.close()
  }
  expect(formatVersions(dbFile)).toEqual([2, 2])
  expect(existsSync(`${dbFile}-wal`)).toBe(true)
})
