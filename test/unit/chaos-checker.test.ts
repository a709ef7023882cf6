import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { summarize } from '../chaos/check.ts'
import { pool, sampleOf, valueFlowsOf, type ChaosCheckReport } from '../chaos/checker.ts'
import type { ChaosRecord } from '../chaos/record.ts'
import {
  ChaosRecordError,
  chaosRecordFromJson,
  chaosRecordToJson,
  loadChaosRecord,
  saveChaosRecord,
  stringifyWithBigints,
} from '../chaos/record-io.ts'

const record: ChaosRecord = {
  seed: 7,
  startedAt: 1_700_000_000_000,
  lastFaultAt: 1_700_000_060_000,
  chains: [
    {
      name: 'hub',
      chainId: 31337,
      rpcUrl: 'http://127.0.0.1:8545',
      role: 'hub',
      gateway: '0x1111111111111111111111111111111111111111',
      registry: '0x2222222222222222222222222222222222222222',
      fromBlock: 12n,
      confirmations: 1,
    },
    {
      name: 'spoke',
      chainId: 31338,
      rpcUrl: 'http://127.0.0.1:8546',
      role: 'spoke',
      messenger: 'hyperlane',
      gateway: '0x3333333333333333333333333333333333333333',
      registry: '0x4444444444444444444444444444444444444444',
      fromBlock: 2n ** 70n,
      confirmations: 2,
    },
  ],
  hub: { market: '0x5555555555555555555555555555555555555555', nodeRegistry: '0x6666666666666666666666666666666666666666' },
  nodes: ['0x7777777777777777777777777777777777777777'],
  models: { '0xabcdef': 'circuits/sertn-mlp-demo' },
  storageUrl: 'http://127.0.0.1:1984',
  consumers: [{ chain: 'hub', address: '0x8888888888888888888888888888888888888888', behaviour: 'recording' }],
  requests: [
    {
      chain: 'hub',
      requestId: 2n ** 64n + 1n,
      key: 'req:31337:0x1111111111111111111111111111111111111111:18446744073709551617',
      consumer: '0x8888888888888888888888888888888888888888',
      modelId: '0xabcdef',
      input: [512n, -1280n, 2n ** 60n, 0n],
      callbackGasLimit: 200_000,
      txHash: '0x99',
      sentAt: 1_700_000_001_000,
      expectExpiry: true,
    },
  ],
  invalid: [{ chain: 'spoke', kind: 'unpaid', expectedError: 'GatewayInsufficientPayment', txHash: '0xaa' }],
  faults: [{ kind: 'cut-rpc', target: 'spoke', at: 1_700_000_010_000, until: 1_700_000_040_000, details: { mode: 'drop' } }],
}

describe('record-io', () => {
  it('default: a record survives JSON, bigints as decimal strings', () => {
    const json = chaosRecordToJson(record)
    expect(json).toContain('"fromBlock": "1180591620717411303424"')
    expect(json).toContain('"-1280"')
    expect(chaosRecordFromJson(json)).toEqual(record)
  })

  it('behavior: saved to a file and loaded back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chaos-record-'))
    try {
      const file = join(dir, 'record.json')
      await saveChaosRecord(file, record)
      expect(await loadChaosRecord(file)).toEqual(record)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('error: a field of the wrong kind is named', () => {
    const bad = JSON.parse(chaosRecordToJson(record)) as { requests: { input: unknown[] }[]; chains: { role: string }[] }
    bad.requests[0]!.input[1] = '1.5'
    expect(() => chaosRecordFromJson(JSON.stringify(bad))).toThrowErrorMatchingInlineSnapshot(
      `[ChaosRecordError: record.requests[0].input[1] must be an integer (a decimal string)]`,
    )
    bad.requests[0]!.input[1] = '1'
    bad.chains[1]!.role = 'leaf'
    expect(() => chaosRecordFromJson(JSON.stringify(bad))).toThrowErrorMatchingInlineSnapshot(
      `[ChaosRecordError: record.chains[1].role must be 'hub' or 'spoke']`,
    )
    expect(() => chaosRecordFromJson('{')).toThrow(ChaosRecordError)
  })

  it('error: a missing file names the path', async () => {
    await expect(loadChaosRecord('/nonexistent/record.json')).rejects.toThrow('cannot read the chaos record /nonexistent/record.json')
  })

  it('behavior: stringifyWithBigints writes bigints as strings', () => {
    expect(stringifyWithBigints({ a: 1n, b: [2n, 3], c: 'x' })).toBe('{"a":"1","b":["2",3],"c":"x"}')
  })
})

describe('sampleOf', () => {
  const items = Array.from({ length: 10 }, (_, i) => i)
  it('default: all', () => expect(sampleOf(items, 'all', 1)).toEqual(items))
  it('args: a count, spread evenly', () => {
    const s = sampleOf(items, 3, 0)
    expect(s).toEqual([0, 3, 6])
    expect(new Set(sampleOf(items, 5, 999)).size).toBe(5)
  })
  it('args: a fraction rounds up', () => expect(sampleOf(items, 0.25, 0)).toHaveLength(3))
  it('args: none, or more than there are', () => {
    expect(sampleOf(items, 0, 0)).toEqual([])
    expect(sampleOf(items, 50, 0)).toEqual(items)
  })
})

describe('pool', () => {
  it('default: runs every item, at most `limit` at once', async () => {
    let running = 0
    let most = 0
    const done: number[] = []
    await pool([1, 2, 3, 4, 5, 6, 7], 3, async (x) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 5))
      done.push(x)
      running--
    })
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(most).toBe(3)
  })
  it('error: the first error rejects, and no new item starts', async () => {
    const started: number[] = []
    await expect(
      pool([1, 2, 3, 4], 1, async (x) => {
        started.push(x)
        if (x === 2) throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(started).toEqual([1, 2])
  })
})

describe('summarize', () => {
  it('default: counts and the first violations', () => {
    const report: ChaosCheckReport = {
      requests: 3,
      fulfilled: 1,
      failed: 1,
      refunded: 0,
      invalidRefused: 1,
      lost: 1,
      doubled: 0,
      violations: 1,
      firstViolation: { rule: 'lost', subject: 'req:1:0x01:3', message: 'no outcome' },
      all: [{ rule: 'lost', subject: 'req:1:0x01:3', message: 'no outcome' }],
      pending: 0,
      outputsChecked: 1,
      proofsChecked: 1,
      proofsToCheck: 1,
      settlementsTraced: 2,
      chains: [
        { name: 'hub', requests: 3, fulfilled: 1, failed: 1, refunded: 0, pending: 0, lost: 1, doubled: 0, balance: 10n, owes: 10n },
      ],
      notChecked: ['something'],
      ms: 1234,
    }
    const text = summarize(report)
    expect(text).toContain('requests 3: 1 fulfilled, 1 failed, 0 refunded, 0 pending, 1 lost, 0 doubled')
    expect(text).toContain('violations: 1 (first: [lost] req:1:0x01:3: no outcome)')
    expect(text).toContain('hub: 3 requests')
    expect(text).toContain('  - something')
  })
})

describe('valueFlowsOf', () => {
  const G = '0x00000000000000000000000000000000000000aa'
  const node = '0x00000000000000000000000000000000000000bb'
  const port = '0x00000000000000000000000000000000000000cc'
  const requester = '0x00000000000000000000000000000000000000dd'
  it('default: what the account sent, net of what came back, per address', () => {
    const flows = valueFlowsOf(
      {
        from: '0x0000000000000000000000000000000000000001',
        to: G,
        calls: [
          { from: G, to: node, value: '0x64' },
          { from: G, to: port, value: '0x10', calls: [{ from: port, to: G, value: '0x4' }] },
          { from: G, to: requester, value: '0x3' },
          { from: G, to: G, value: '0x7' },
        ],
      },
      G,
    )
    expect(Object.fromEntries(flows)).toEqual({ [node]: 100n, [port]: 12n, [requester]: 3n })
  })
  it('behavior: a reverted frame moves nothing, nor anything under it', () => {
    const flows = valueFlowsOf(
      {
        from: node,
        to: G,
        calls: [
          { from: G, to: requester, value: '0x5', error: 'execution reverted' },
          { from: G, to: port, error: 'out of gas', calls: [{ from: G, to: node, value: '0x9' }] },
          { from: G, to: node, value: '0x1' },
        ],
      },
      G,
    )
    expect(Object.fromEntries(flows)).toEqual({ [node]: 1n })
  })
})
