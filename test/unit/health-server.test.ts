import { Writable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { reportChain, reportProver, reportRelay, reportTemporal, resetHealth } from '../../core/health.ts'
import { createLogger, requestKeyOfWorkflowId, temporalLogger } from '../../core/log.ts'
import { metrics } from '../../core/metrics.ts'
import { reportBacklog } from '../../plugins/messengers/backlog.ts'
import { reportPoolUsage } from '../../plugins/provers/ezkl-common/pool-usage.ts'
import { type HealthServer, startHealthServer } from '../../workflows/worker/health-server.ts'
import { chainOfArgs, outcomeOf } from '../../workflows/worker/interceptors.ts'

const KEY = 'req:31337:0x5fbdb2315678afecb367f032d93f642f64180aa3:7'

let server: HealthServer
beforeAll(async () => {
  server = await startHealthServer({ host: '127.0.0.1', port: 0, maxLagBlocks: 10, requireTemporal: true })
})
afterAll(() => server.close())
afterEach(() => resetHealth())

const get = async (path: string) => {
  const r = await fetch(`${server.url}${path}`)
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() }
}
const readyz = async () => {
  const r = await get('/readyz')
  return { status: r.status, body: JSON.parse(r.text) as { ready: boolean; reasons: string[]; chains: Record<string, unknown> } }
}

describe('health server', () => {
  test('default: binds a free port when given 0 and says where', () => {
    expect(server.port).toBeGreaterThan(0)
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
  })

  test('behavior: /metrics is the registry in Prometheus text', async () => {
    metrics.requests.inc({ chain: 'hub', stage: 'loadModel', outcome: 'ok' })
    const r = await get('/metrics')
    expect(r.status).toBe(200)
    expect(r.type).toContain('text/plain')
    expect(r.text).toContain('sertn_requests_total{chain="hub",stage="loadModel",outcome="ok"} 1')
    expect(r.text).toContain('# TYPE sertn_watcher_lag_blocks gauge')
  })

  test('behavior: /metrics appends the Temporal SDK scrape, or says it is missing', async () => {
    const { createServer } = await import('node:http')
    const sdk = createServer((_req, res) => res.end('# TYPE temporal_request counter\ntemporal_request{x="1"} 3\n'))
    await new Promise<void>((r) => sdk.listen(0, '127.0.0.1', r))
    const port = (sdk.address() as { port: number }).port
    const withSdk = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      maxLagBlocks: 10,
      requireTemporal: true,
      temporalMetricsUrl: `http://127.0.0.1:${port}/metrics`,
    })
    try {
      const text = await (await fetch(`${withSdk.url}/metrics`)).text()
      expect(text).toContain('sertn_requests_total')
      expect(text).toContain('temporal_request{x="1"} 3')
      sdk.close()
      sdk.closeAllConnections()
      const without = await (await fetch(`${withSdk.url}/metrics`)).text()
      expect(without).toContain('# Temporal SDK metrics unavailable')
      expect(without).toContain('sertn_requests_total')
    } finally {
      await withSdk.close()
      sdk.close()
    }
  })

  test('behavior: ready with Temporal answering and every watcher scanned within the lag bound', async () => {
    reportTemporal({ ok: true, checkedAt: Date.now() })
    reportChain('hub', { lastScannedBlock: 100n, head: 105n, lagBlocks: 5, lastScanAt: Date.now() })
    reportProver({ slots: 2, busy: 1 })
    reportRelay('hyperlane hub→spoke', { pending: 3, rejected: 1 })
    const { status, body } = await readyz()
    expect(status).toBe(200)
    expect(body).toMatchObject({
      ready: true,
      reasons: [],
      temporal: { ok: true },
      chains: { hub: { lastScannedBlock: 100, head: 105, lagBlocks: 5 } },
      prover: { slots: 2, busy: 1 },
      relays: { 'hyperlane hub→spoke': { pending: 3, rejected: 1 } },
    })
    expect((await get('/healthz')).status).toBe(200)
  })

  test('error: 503 before Temporal was checked', async () => {
    reportChain('hub', { lastScannedBlock: 1n, head: 1n, lagBlocks: 0 })
    const { status, body } = await readyz()
    expect(status).toBe(503)
    expect(body.reasons).toEqual(['temporal: not checked yet'])
  })

  test('error: 503 on /readyz and /healthz when Temporal is unreachable', async () => {
    reportTemporal({ ok: false, checkedAt: Date.now(), error: 'connect ECONNREFUSED 127.0.0.1:7233' })
    const { status, body } = await readyz()
    expect(status).toBe(503)
    expect(body.reasons).toEqual(['temporal: unreachable (connect ECONNREFUSED 127.0.0.1:7233)'])
    const h = await get('/healthz')
    expect(h.status).toBe(503)
    expect(JSON.parse(h.text)).toEqual({ ok: false, reason: 'temporal: unreachable (connect ECONNREFUSED 127.0.0.1:7233)' })
  })

  test('error: 503 while a watcher has not scanned yet, with its last error', async () => {
    reportTemporal({ ok: true, checkedAt: Date.now() })
    reportChain('spoke', {})
    reportChain('spoke', { error: 'HTTP request failed' })
    const { status, body } = await readyz()
    expect(status).toBe(503)
    expect(body.reasons).toEqual(['chain spoke: its watcher has not scanned yet (last error: HTTP request failed)'])
  })

  test('error: 503 while a watcher lags more than maxLagBlocks', async () => {
    reportTemporal({ ok: true, checkedAt: Date.now() })
    reportChain('hub', { lastScannedBlock: 100n, head: 110n, lagBlocks: 10 })
    expect((await readyz()).status).toBe(200)
    reportChain('hub', { lastScannedBlock: 100n, head: 111n, lagBlocks: 11 })
    const { status, body } = await readyz()
    expect(status).toBe(503)
    expect(body.reasons).toEqual(['chain hub: its watcher lags 11 blocks behind the head (more than 10)'])
  })

  test('behavior: a process without Temporal (the relay) is ready without it', async () => {
    const relay = await startHealthServer({ host: '127.0.0.1', port: 0, maxLagBlocks: 10, requireTemporal: false })
    try {
      expect((await fetch(`${relay.url}/readyz`)).status).toBe(200)
      expect((await fetch(`${relay.url}/healthz`)).status).toBe(200)
    } finally {
      await relay.close()
    }
  })

  test('behavior: the relay backlog and the prover pools reach /metrics and /readyz', async () => {
    reportTemporal({ ok: true, checkedAt: Date.now() })
    reportBacklog('layerzero', 'hub→spokelz dvn', { pending: 2, rejected: 1 })
    const a = {}
    const b = {}
    reportPoolUsage(a, 2, 1)
    reportPoolUsage(b, 1, 1)
    const { body } = await readyz()
    expect(body).toMatchObject({ relays: { 'layerzero hub→spokelz dvn': { pending: 2, rejected: 1 } }, prover: { slots: 3, busy: 2 } })
    const text = (await get('/metrics')).text
    expect(text).toContain('sertn_relay_pending_messages{messenger="layerzero",route="hub→spokelz dvn"} 2')
    expect(text).toContain('sertn_relay_rejected_messages{messenger="layerzero",route="hub→spokelz dvn"} 1')
    expect(text).toContain('sertn_prover_slots 3')
    expect(text).toContain('sertn_prover_busy 2')
    reportPoolUsage(a, 0, 0) // disposed
    expect((await readyz()).body).toMatchObject({ prover: { slots: 1, busy: 1 } })
    reportPoolUsage(b, 0, 0)
  })

  test('error: unknown paths are 404', async () => {
    expect((await get('/nope')).status).toBe(404)
  })
})

describe('request keys in logs', () => {
  test('default: a workflow id is its request key', () => {
    expect(requestKeyOfWorkflowId(KEY)).toBe(KEY)
  })

  test('args: a suffix after the key is not part of it', () => {
    expect(requestKeyOfWorkflowId(`${KEY}@fulfilled`)).toBe(KEY)
    expect(requestKeyOfWorkflowId(`${KEY}:0x${'ab'.repeat(32)}`)).toBe(KEY)
    expect(requestKeyOfWorkflowId(`${KEY}7`)).toBe(`${KEY}7`)
  })

  test('args: other workflow ids have no key', () => {
    expect(requestKeyOfWorkflowId('batch:31337:0x5fbdb2315678afecb367f032d93f642f64180aa3:0x01:1')).toBeUndefined()
    expect(requestKeyOfWorkflowId(undefined)).toBeUndefined()
  })

  test("behavior: Temporal's workflow and activity logs become records with the request's key", () => {
    const lines: Record<string, unknown>[] = []
    const destination = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
        done()
      },
    })
    const t = temporalLogger(createLogger({ level: 'info', format: 'json', destination }))
    t.info('proving', { sdkComponent: 'activity', workflowId: `${KEY}@x`, activityType: 'proveInference', attempt: 2 })
    t.log('WARN', 'batch waits', { sdkComponent: 'workflow', workflowId: 'batch:1' })
    t.debug('not shown', { sdkComponent: 'worker' })
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'proving',
      component: 'temporal-activity',
      requestKey: KEY,
      chainId: 31337,
      requestId: '7',
      activityType: 'proveInference',
      attempt: 2,
    })
    expect(lines[1]).toMatchObject({ level: 40, msg: 'batch waits', component: 'temporal-workflow' })
    expect(lines[1]).not.toHaveProperty('requestKey')
  })
})

describe('activity metrics labels', () => {
  const names = new Map([[31337, 'hub']])
  test('default: the chain of a request argument, by name', () => {
    expect(chainOfArgs([{ key: KEY, chainId: 31337 }], names)).toBe('hub')
  })
  test('args: a nested request, a batch member list, an unknown chain, no chain', () => {
    expect(chainOfArgs([{ request: { chainId: 31337 } }], names)).toBe('hub')
    expect(chainOfArgs([{ members: [{ request: { chainId: 31338 } }] }], names)).toBe('31338')
    expect(chainOfArgs(['0x01', 4], names)).toBe('')
    expect(chainOfArgs([], names)).toBe('')
  })
  test('args: without a request in its arguments, the chain of its workflow', () => {
    expect(chainOfArgs([{ output: {} }], names, KEY)).toBe('hub')
    expect(chainOfArgs([], names, 'batch:31338:0x5fbdb2315678afecb367f032d93f642f64180aa3:0x01:1')).toBe('31338')
    expect(chainOfArgs([{ chainId: 31338 }], names, KEY)).toBe('31338')
    expect(chainOfArgs([], names, 'other')).toBe('')
  })
  test('behavior: a failure is labelled with its class name', () => {
    class ChainTransientError extends Error {
      override name = 'ChainTransientError'
    }
    expect(outcomeOf(new ChainTransientError('x'))).toBe('ChainTransientError')
    expect(outcomeOf('string')).toBe('error')
  })
})
