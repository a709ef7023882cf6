/**
 * The two transaction helpers every deployment module uses: deploy a contract and wait for it,
 * wait for a transaction and refuse a revert. A module of their own so that the deployment modules
 * (./deploy.ts, ./nodes.ts, ./crosschain.ts) can share them without importing one another in a
 * cycle; ./deploy.ts re-exports them.
 */
import { getAddress, type Abi, type Address, type Hex } from 'viem'
import type { SertnClient } from './clients.ts'

/** Deploys a contract and waits for its receipt; returns its address. */
export async function deployContract(
  client: SertnClient,
  artifact: { abi: Abi | readonly unknown[]; bytecode: Hex | string },
  args: readonly unknown[] = [],
): Promise<Address> {
  const hash = await client.deployContract({
    abi: artifact.abi as Abi,
    bytecode: artifact.bytecode as Hex,
    args: args as unknown[],
  })
  const receipt = await client.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deployment reverted (${hash})`)
  return getAddress(receipt.contractAddress)
}

/** Waits for a transaction and throws if it reverted. */
export async function confirm(client: SertnClient, hash: Hex) {
  const receipt = await client.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') throw new Error(`transaction reverted (${hash})`)
  return receipt
}

/**
 * Sends a simulated contract call with a fifth more gas than its estimate, as wallets do, and waits
 * for it (throws if it reverted). An estimate is exact for the state it ran on: a request that lands
 * after another transaction grew what it writes to (a messenger's dispatch tree, whose insert costs
 * a new slot at some sizes) needs more, and with no margin it runs out of gas.
 */
export async function writeWithMargin(
  client: SertnClient,
  /** The `request` that `simulateContract` returned. */
  request: object,
) {
  const gas = await client.estimateContractGas(request as never)
  return confirm(client, await client.writeContract({ ...request, gas: gas + gas / 5n } as never))
}
