/**
 * The request explorer end to end: the local hub and a Hyperlane spoke with their agents, the
 * workers in this process, a model registered with its artifacts in arlocal, a request from the
 * spoke served to its verified callback; then `sertn explorer` as a child process, driven by
 * Debian's Chromium (headless, through playwright-core): the list shows the request, its page its
 * stage, hops, transactions, storage ids and operator (a screenshot is taken), and "verify in your
 * browser" verifies the stored proof with the EZKL WASM engine in the page — valid, with instances
 * equal to the request's input and the delivered output — and invalid for a proof with one byte
 * flipped on its way to the page; a request proven in a batch is verified against its batch circuit.
 */
import { existsSync } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DefaultLogger, Runtime } from '@temporalio/worker'
import type { Address } from 'viem'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { openLocalPools } from '../../chains/evm/nodes.ts'
import { registerModelOnNetwork, type NetworkRegistration } from '../../chains/evm/register-model.ts'
import { quantize } from '../../core/field.ts'
import { type ManagedProcess, startProcess } from '../../core/process.ts'
import { arweaveStorage } from '../../plugins/storage/arweave/index.ts'
import { waitForOutcome } from '../../workflows/client.ts'
import type { RequestOutcome } from '../../workflows/messages.ts'
import { REPO } from '../support/cli.ts'
import {
  deploySpokeConsumer,
  requestOnSpoke,
  startCrossChainStack,
  type CrossChainStack,
  type SpokeRequest,
} from '../support/crosschain.ts'
import { boundedTeardown, DEMO_INPUT, DEMO_INPUT_SCALE, startWorkers, type InProcessWorkers } from '../support/stack.ts'

Runtime.install({ logger: new DefaultLogger('WARN') })

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Chromium's flags: headless, and no background connections (to Google: refused here). */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

let stack: CrossChainStack
let storage: ReturnType<typeof arweaveStorage>
let workers: InProcessWorkers
let explorer: ManagedProcess | undefined
let browser: Browser | undefined
let url: string
let registered: NetworkRegistration
let made: SpokeRequest
let consumer: Address
let outcome: RequestOutcome

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: run \`npm run setup\` (or apt-get install chromium, or set CHROMIUM_PATH)`)
  stack = await startCrossChainStack()
  storage = arweaveStorage({
    host: '127.0.0.1',
    port: Number(new URL(stack.arlocal.url).port),
    protocol: 'http',
    wallet: stack.config.storage.arweave.walletFile!,
  })
  // Batching on (the last test's burst shares one proof); a request alone in its window is proven alone.
  const config = {
    ...stack.config,
    prover: { ...stack.config.prover, plugin: 'ezkl-native' as const },
    batching: { enabled: true, windowMs: 6000 },
  }
  workers = await startWorkers(stack, ['chain-io', 'inference', 'prover'], { config })
  consumer = await deploySpokeConsumer(stack)
  // The demo circuit under a name of its own, its artifacts uploaded: the page fetches them from storage.
  registered = await registerModelOnNetwork({
    model: 'sertn-mlp-demo',
    name: 'sertn-mlp-demo/explorer',
    chains: [
      { name: 'hub', client: stack.hub.owner, registry: stack.network.hub.core.registry, hub: true },
      { name: 'spoke', client: stack.spoke.owner, registry: stack.network.spokes[0]!.spoke.registry },
    ],
    storage,
    allowInsecureSrs: true,
  })
  await openLocalPools(stack.local.hub.owner, stack.network.hub.core.nodeRegistry, {
    models: [registered.modelId],
    nodes: stack.local.hub.nodes,
  })
  made = await requestOnSpoke(stack, consumer, { modelId: registered.modelId })
  outcome = await waitForOutcome(stack.client, made.key, 120_000)

  // `sertn explorer` on the stack's configuration, on any free port of 127.0.0.1.
  const configFile = join(stack.dataDir, 'sertn.config.json')
  await writeFile(configFile, JSON.stringify(stack.config, null, 2))
  let announced: (u: string) => void = () => {}
  const listening = new Promise<string>((r) => (announced = r))
  explorer = startProcess({
    name: 'explorer',
    command: process.execPath,
    args: ['--import', 'tsx', 'cli/sertn.ts', 'explorer', '--config', configFile, '--data-dir', stack.dataDir, '--port', '0'],
    cwd: REPO,
    env: { ...process.env, SERTN_SECRETS: '' },
    onLine: (line) => {
      const m = /explorer on (http:\/\/127\.0\.0\.1:\d+)\//.exec(line)
      if (m) announced(m[1]!)
    },
  })
  url = await Promise.race([
    listening,
    explorer.exited.then((code) => {
      throw new Error(`sertn explorer exited (${code}): ${explorer?.output()}`)
    }),
    new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`sertn explorer did not start: ${explorer?.output()}`)), 60_000)),
  ])
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
}, 900_000)

afterAll(async () => {
  await boundedTeardown(
    [() => browser?.close(), () => explorer?.stop(), () => workers?.stop(), () => storage?.dispose(), () => stack?.stop()],
    { processGroups: () => [...(stack?.processGroups() ?? []), ...(explorer ? [explorer.pid] : [])] },
  )
}, 120_000)

/** A page that fails the test on any error the page itself throws. */
async function newPage(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1400, height: 1200 } })
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  return { page, errors }
}

describe('sertn explorer', () => {
  test('default: the list shows the fulfilled request; its page shows stage, hops, transactions, storage ids and operator', async () => {
    expect(outcome.stage).toBe('fulfilled')
    const { page, errors } = await newPage()
    try {
      await page.goto(`${url}/`)
      const row = page.locator(`tr[data-key="${made.key}"]`)
      await row.waitFor({ timeout: 60_000 })
      const cells = await row.locator('td').allTextContents()
      expect(cells[0]).toBe(made.key)
      expect(cells[1]).toBe('spoke')
      expect(cells[2]).toBe('sertn-mlp-demo/explorer')
      expect(cells[3]).toBe('fulfilled')
      expect(Number(cells[4])).toBe(4) // spoke → hub, hub, hub → spoke, spoke → hub
      expect(cells[7]).toContain(outcome.storage!.proof.id)
      expect(cells[7]).toContain(outcome.storage!.output.id)
      expect(cells[8]).toBe('operator 1 (default)')

      await row.locator('a').first().click()
      await page.waitForURL(/\/request\?key=/)
      await page.locator('#summary').waitFor({ timeout: 60_000 })
      const fact = (name: string) => page.locator(`dd[data-fact="${name}"]`).textContent()
      expect(await fact('stage')).toBe('fulfilled')
      expect(await fact('operator')).toContain('operator 1, namespace default')
      expect(await fact('input')).toBe(`[${DEMO_INPUT.join(', ')}] = [0.5, -1.25, 2, 0.75] at scale 10`)
      expect((await fact('output'))?.startsWith(`[${outcome.output!.join(', ')}] = [`)).toBe(true)
      expect(await fact('callback')).toMatch(/^succeeded, \d+ gas$/)
      expect(await fact('request tx')).toContain(made.hash)
      expect(await fact('hub tx')).toBe(outcome.transactionHash)
      expect(await fact('stored proof')).toContain(outcome.storage!.proof.id)
      expect(await fact('stored output')).toContain(outcome.storage!.output.id)
      for (const hop of ['hubRecord', 'submit', 'spokeSettle', 'hubSettle']) {
        const step = page.locator(`tr[data-step="${hop}"]`)
        expect(await step.count(), hop).toBe(1)
        expect(await step.locator('td').nth(3).getAttribute('title'), hop).toMatch(/^0x[0-9a-f]{64}$/)
      }
      expect(Number(await fact('gas (node transactions)'))).toBeGreaterThan(100_000)

      const shot = join(stack.dataDir, 'explorer-request.png')
      await page.screenshot({ path: shot, fullPage: true })
      const png = await readFile(shot)
      expect((await stat(shot)).size).toBeGreaterThan(10_000)
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
  }, 180_000)

  test('behavior: "verify in your browser" verifies the stored proof with the WASM engine: valid, instances equal to input and output', async () => {
    const { page, errors } = await newPage()
    try {
      await page.goto(`${url}/request?key=${encodeURIComponent(made.key)}`)
      await page.locator('#summary').waitFor({ timeout: 60_000 })
      expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true)
      await page.locator('#verify').click()
      const verdict = page.locator('#verdict[data-verdict]')
      await verdict.waitFor({ timeout: 120_000 })
      expect(await verdict.getAttribute('data-verdict'), (await verdict.textContent()) ?? '').toBe('valid')
      expect(await page.locator('#engine-result').getAttribute('data-ok')).toBe('true')
      // The registry's pins: the vk, settings and SRS each hashed in the page.
      const steps = await page.locator('#steps li').allTextContents()
      for (const file of ['vk.key', 'settings.json', 'srs'])
        expect(steps.find((s) => s.includes(`${file}:`))).toContain('= pinned by the registry')
      const rows = page.locator('#instances tbody tr')
      expect(await rows.count()).toBe(DEMO_INPUT.length + outcome.output!.length)
      expect(await page.locator('#instances tbody tr[data-match="true"]').count()).toBe(DEMO_INPUT.length + outcome.output!.length)
      // Decoded by the engine's felt conversion: the first instance is the first input.
      expect(await rows.first().locator('td').nth(3).textContent()).toBe(String(DEMO_INPUT[0]))
      const shot = join(stack.dataDir, 'explorer-verified.png')
      await page.screenshot({ path: shot, fullPage: true })
      expect((await readFile(shot)).subarray(0, 4)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47]))
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
  }, 180_000)

  test('error: a proof with one byte flipped on its way to the page is invalid', async () => {
    const { page, errors } = await newPage()
    try {
      let tampered = 0
      await page.route(`**/api/artifacts/${outcome.storage!.proof.id}`, async (route) => {
        const response = await route.fetch()
        const body = Buffer.from(await response.body())
        body[100]! ^= 0x01
        tampered++
        await route.fulfill({ response, body })
      })
      await page.goto(`${url}/request?key=${encodeURIComponent(made.key)}`)
      await page.locator('#summary').waitFor({ timeout: 60_000 })
      await page.locator('#verify').click()
      const verdict = page.locator('#verdict[data-verdict]')
      await verdict.waitFor({ timeout: 120_000 })
      expect(tampered).toBe(1)
      expect(await verdict.getAttribute('data-verdict')).toBe('invalid')
      expect(await page.locator('#engine-result').getAttribute('data-ok')).toBe('false')
      expect(await verdict.textContent()).toContain('the EZKL engine rejects the proof')
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
  }, 180_000)

  test('behavior: a request proven in a batch verifies against the batch circuit, its row matched to its input and output', async () => {
    const inputs = [
      [1, 0.5, -0.25, 2],
      [-1, 1.5, 0.25, -2],
    ].map((row) => row.map((x) => quantize(x, DEMO_INPUT_SCALE)))
    const burst: SpokeRequest[] = []
    for (const input of inputs) burst.push(await requestOnSpoke(stack, consumer, { modelId: registered.modelId, input }))
    const outcomes = await Promise.all(burst.map((m) => waitForOutcome(stack.client, m.key, 240_000)))
    for (const o of outcomes) expect(o).toMatchObject({ stage: 'fulfilled', batch: { size: 16, rows: 2 } })
    const { page, errors } = await newPage()
    try {
      await page.goto(`${url}/request?key=${encodeURIComponent(burst[1]!.key)}`)
      await page.locator('#summary').waitFor({ timeout: 60_000 })
      expect(await page.locator('dd[data-fact="batch"]').textContent()).toContain('2 of 16 rows')
      await page.locator('#verify').click()
      const verdict = page.locator('#verdict[data-verdict]')
      await verdict.waitFor({ timeout: 120_000 })
      expect(await verdict.getAttribute('data-verdict'), (await verdict.textContent()) ?? '').toBe('valid')
      const steps = await page.locator('#steps li').allTextContents()
      expect(steps.find((s) => s.includes(' manifest.json:'))).toContain('= pinned by the registry')
      for (const file of ['manifest.json', 'vk.key', 'settings.json', 'srs'])
        expect(
          steps.find((s) => s.includes(`batch-16/${file}:`)),
          file,
        ).toContain('= pinned by')
      const width = DEMO_INPUT.length + outcomes[1]!.output!.length
      expect(await page.locator('#instances tbody tr').count()).toBe(16 * width)
      expect(await page.locator('#instances tbody tr[data-match="true"]').count()).toBe(width)
      expect(await page.locator('#instances tbody tr[data-match="false"]').count()).toBe(0)
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
  }, 400_000)

  test('error: the server is read-only, serves its own files only, and refuses a foreign Host', async () => {
    expect((await fetch(`${url}/api/requests`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${url}/static/..%2F..%2Fpackage.json`)).status).toBe(404)
    expect((await fetch(`${url}/api/artifacts/not-an-id`)).status).toBe(400)
    expect((await fetch(`${url}/api/request?key=${encodeURIComponent('<script>')}`)).status).toBe(400)
    const page = await fetch(`${url}/`)
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp')
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self' 'wasm-unsafe-eval'")
    const { request } = await import('node:http')
    const status = await new Promise<number>((ok, fail) => {
      const u = new URL(url)
      request({ host: u.hostname, port: u.port, path: '/api/requests', headers: { Host: 'attacker.example' } }, (res) => {
        res.resume()
        ok(res.statusCode ?? 0)
      })
        .on('error', fail)
        .end()
    })
    expect(status).toBe(421)
  })
})
