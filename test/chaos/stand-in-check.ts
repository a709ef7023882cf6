/**
 * A stand-in for the chaos checker (test/chaos/checker.ts `checkRun`), used while that module is
 * absent: it reads only the chains and counts, per accepted request, its terminal outcome events
 * on its gateway (InferenceFulfilled, InferenceFailed, InferenceRefunded: none is lost, more than
 * one is doubled), and checks that each invalid request's transaction reverted. It checks none of
 * the checker's other rules (callbacks, payments, escrow, outputs, proofs, the revert's error).
 */
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import { createPublicClient, defineChain } from 'viem'
import { sertnTransport } from '../../chains/evm/clients.ts'
import type { ChaosRecord, ChaosReport, ChaosViolation } from './record.ts'

/** The stand-in's report (see the module's notes): the same shape as the checker's. */
export async function standInCheckRun(record: ChaosRecord): Promise<ChaosReport> {
  const all: ChaosViolation[] = []
  const counts = { fulfilled: 0, failed: 0, refunded: 0, invalidRefused: 0, lost: 0, doubled: 0 }
  for (const chain of record.chains) {
    const client = createPublicClient({
      chain: defineChain({
        id: chain.chainId,
        name: chain.name,
        nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
        rpcUrls: { default: { http: [chain.rpcUrl] } },
      }),
      transport: sertnTransport([chain.rpcUrl], chain.name),
    })
    const logs = await client.getContractEvents({ address: chain.gateway, abi: InferenceGateway.abi, fromBlock: chain.fromBlock })
    const byId = new Map<bigint, string[]>()
    for (const log of logs) {
      if (log.eventName !== 'InferenceFulfilled' && log.eventName !== 'InferenceFailed' && log.eventName !== 'InferenceRefunded') continue
      const id = (log.args as { requestId: bigint }).requestId
      byId.set(id, [...(byId.get(id) ?? []), log.eventName])
    }
    for (const r of record.requests.filter((x) => x.chain === chain.name)) {
      const events = byId.get(r.requestId) ?? []
      if (events.length === 0) {
        counts.lost++
        all.push({ rule: 'lost', subject: r.key, message: 'no terminal outcome on its gateway' })
        continue
      }
      if (events.length > 1) {
        counts.doubled++
        all.push({ rule: 'doubled', subject: r.key, message: `${events.length} terminal outcomes: ${events.join(', ')}` })
      }
      if (events[0] === 'InferenceFulfilled') counts.fulfilled++
      else if (events[0] === 'InferenceFailed') counts.failed++
      else counts.refunded++
    }
    for (const inv of record.invalid.filter((x) => x.chain === chain.name)) {
      const receipt = await client.getTransactionReceipt({ hash: inv.txHash })
      if (receipt.status === 'reverted') counts.invalidRefused++
      else
        all.push({
          rule: 'invalid-accepted',
          subject: inv.txHash,
          message: `the ${inv.kind} request was accepted (expected ${inv.expectedError})`,
        })
    }
  }
  return {
    requests: record.requests.length,
    ...counts,
    violations: all.length,
    ...(all[0] ? { firstViolation: all[0] } : {}),
    all: all.slice(0, 100),
  }
}
