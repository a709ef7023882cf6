/**
 * A wrong messenger configuration stops start-up with one line naming the field: an unknown kind,
 * a section missing one of its network's contracts, a spoke whose messenger the hub has not (no
 * route), a spoke with none.
 */
import { describe, expect, test } from 'vitest'
import { parseConfig } from '../../core/config.ts'
import { ConfigError } from '../../core/errors.ts'
import { configuredMessengers, knownMessengers } from '../../plugins/messengers/index.ts'

const a = (n: number) => `0x${n.toString(16).padStart(40, '0')}`
const hyperlane = { kind: 'hyperlane', domain: 31337, mailbox: a(1), merkleTreeHook: a(2), port: a(3), deployBlock: 1 }
const layerzero = {
  kind: 'layerzero',
  eid: 41339,
  endpoint: a(11),
  sendUln: a(12),
  receiveUln: a(13),
  executor: a(14),
  dvn: a(15),
  port: a(16),
  deployBlock: 1,
}
const chain = (id: number, extra: Record<string, unknown>) => ({ chainId: id, rpcUrl: 'http://127.0.0.1:1', gateway: a(id), ...extra })
const config = (chains: Record<string, unknown>) => ({ node: { privateKey: `0x${'11'.repeat(32)}` }, chains })
const network = (hubMessenger: unknown, spokes: Record<string, unknown>) =>
  config({ hub: chain(31337, { market: a(99), messenger: hubMessenger }), ...spokes })

/** The one line a start-up prints for `run`'s failure. */
async function firstLine(run: () => unknown): Promise<string> {
  try {
    await run()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    const message = (err as Error).message
    expect(message.split('\n')).toHaveLength(1)
    return message
  }
  throw new Error('expected a ConfigError')
}

describe('messenger configuration', () => {
  test('the installed plugins are found by folder', () => {
    expect(knownMessengers()).toEqual(expect.arrayContaining(['hyperlane', 'layerzero']))
  })

  test('a hub with both messengers and a spoke on each: accepted, each section checked by its plugin', async () => {
    const c = parseConfig(
      network([{ ...hyperlane, domain: 31337 }, layerzero], {
        spoke: chain(31338, { hub: 'hub', messenger: hyperlane }),
        spokelz: chain(31339, { hub: 'hub', messenger: layerzero }),
      }),
    )
    const m = await configuredMessengers(c)
    expect([...m.keys()].sort()).toEqual(['hyperlane', 'layerzero'])
    expect(m.get('layerzero')!.chains.map((x) => x.name)).toEqual(['hub', 'spokelz'])
  })

  test('an unknown messenger kind names the field and the kinds there are', async () => {
    const c = parseConfig(network({ ...hyperlane, kind: 'pigeon' }, {}))
    expect(await firstLine(() => configuredMessengers(c))).toBe(
      `chains.hub.messenger.kind: unknown messenger kind "pigeon" (known: ${knownMessengers().join(', ')})`,
    )
  })

  test('a section missing its network contract (the LayerZero endpoint) names the field', async () => {
    const { endpoint: _, ...noEndpoint } = layerzero
    const c = parseConfig(network([hyperlane, noEndpoint], {}))
    expect(await firstLine(() => configuredMessengers(c))).toMatch(/^chains\.hub\.messenger\.1\.endpoint: /)
  })

  test('a spoke whose messenger the hub has not: no route, named at the spoke', async () => {
    const line = await firstLine(() => parseConfig(network(hyperlane, { spokelz: chain(31339, { hub: 'hub', messenger: layerzero }) })))
    expect(line).toBe('invalid configuration: chains.spokelz.messenger.kind: no route: the hub hub has no layerzero messenger')
  })

  test('a spoke without a messenger', async () => {
    const line = await firstLine(() => parseConfig(network(hyperlane, { spoke: chain(31338, { hub: 'hub' }) })))
    expect(line).toBe('invalid configuration: chains.spoke.messenger: a spoke needs the messenger that joins it to its hub')
  })
})
