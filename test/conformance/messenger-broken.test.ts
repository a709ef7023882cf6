/**
 * The messenger conformance suite catches broken plugins: Hyperlane wrapped twice, once with a
 * `connect` that makes the first chain's port a peer of the second at a Hyperlane domain nobody
 * serves (its messages are never delivered), once with a `quote` of half the port's fee. Each broken
 * check is expected to fail, with a message naming the broken behaviour; a check the breakage does
 * not touch still passes (so the failures are the breakage's, not the fixture's).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SertnClient } from '../../chains/evm/clients.ts'
import {
  messengerChecks,
  setUpMessengerFixture,
  tearDownMessengerFixture,
  type MessengerFixture,
} from '../../core/conformance/messenger.ts'
import type { MessengerPlugin } from '../../core/plugins.ts'
import hyperlaneMessenger from '../../plugins/messengers/hyperlane/plugin.ts'

/** Peers the first port with the second at the wrong Hyperlane domain: messages that way are dispatched where no relayer looks. */
const wrongPeer: MessengerPlugin<SertnClient> = {
  ...hyperlaneMessenger,
  name: 'hyperlane-wrong-peer',
  connect: (a, b) => hyperlaneMessenger.connect(a, { ...b, deployment: { ...b.deployment, domain: Number(b.deployment.domain) + 1000 } }),
}

/** Quotes half the port's fee. */
const halfQuote: MessengerPlugin<SertnClient> = {
  ...hyperlaneMessenger,
  name: 'hyperlane-half-quote',
  quote: async (endpoint, message) => (await hyperlaneMessenger.quote(endpoint, message)) / 2n,
}

describe('messenger conformance: a plugin whose connect peers the wrong domain', () => {
  let fixture: MessengerFixture | undefined
  beforeAll(async () => {
    fixture = await setUpMessengerFixture({ name: wrongPeer.name, create: () => wrongPeer, deliveryTimeoutMs: 5000, quietMs: 300 })
  }, 180_000)
  afterAll(() => tearDownMessengerFixture(fixture), 60_000)

  test('error: the suite fails the delivery check, naming it', async () => {
    await expect(messengerChecks.deliversOnceBothWays(fixture!)).rejects.toThrow(
      /a message sent once must be delivered exactly once \(alpha→beta/,
    )
  })

  test('behavior: a check the breakage does not touch still passes', async () => {
    await messengerChecks.refusesUnallowedApp(fixture!)
  })
})

describe('messenger conformance: a plugin that quotes half the fee', () => {
  let fixture: MessengerFixture | undefined
  beforeAll(async () => {
    fixture = await setUpMessengerFixture({ name: halfQuote.name, create: () => halfQuote, deliveryTimeoutMs: 5000, quietMs: 300 })
  }, 180_000)
  afterAll(() => tearDownMessengerFixture(fixture), 60_000)

  test('error: the suite fails the fee check, naming it', async () => {
    await expect(messengerChecks.quotesThePortFee(fixture!)).rejects.toThrow(/plugin\.quote must equal the port's own quote/)
  })

  test('error: sending with the broken quote fails the delivery check, naming the underpaid send', async () => {
    await expect(messengerChecks.deliversOnceBothWays(fixture!)).rejects.toThrow(/a send paying plugin\.quote .* must succeed/)
  })
})
