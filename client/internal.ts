/**
 * What the actions share: the client types they take, how a request is named (gateway and id, or
 * its key), and log reads split into bounded block ranges.
 */
import { getAddress, type Account, type Address, type Chain, type Client, type Transport } from 'viem'
import { getBlockNumber, getChainId } from 'viem/actions'
import { parseRequestKey } from '../core/types.ts'
import { SertnError } from '../core/errors.ts'

/** Any viem client that can read a chain (a public client, or a wallet client with an RPC transport). */
export type ReadClient = Client<Transport, Chain | undefined, Account | undefined>

/** A request on a gateway: by gateway and id, or by its key (`req:<chainId>:<gateway>:<requestId>`). */
export type RequestTarget = { gateway: Address; requestId: bigint | number | string } | { key: string }

/** How logs are read: from which block, in ranges of how many blocks. */
export type LogRangeParameters = {
  /** The first block to search for the request's events (default 0: the chain's start; on a long chain, pass the request's block or the gateway's deployment block). */
  fromBlock?: bigint
  /** The most blocks one `eth_getLogs` call spans (default 5,000; many RPC providers cap it). */
  blockRange?: bigint
}

export const DEFAULT_BLOCK_RANGE = 5_000n

/** The gateway (checksummed) and id a target names; a key must name the client's chain. */
export async function resolveTarget(
  client: ReadClient,
  target: RequestTarget,
): Promise<{ gateway: Address; requestId: bigint; chainId: number }> {
  const chainId = client.chain?.id ?? (await getChainId(client))
  if ('key' in target) {
    const k = parseRequestKey(target.key)
    if (k.chainId !== chainId)
      throw new SertnError(`request ${target.key} is on chain ${k.chainId}, but the client is on chain ${chainId}`, {
        details: 'Use a client of the chain the request was made on.',
      })
    return { gateway: getAddress(k.gateway), requestId: BigInt(k.requestId), chainId }
  }
  return { gateway: getAddress(target.gateway), requestId: BigInt(target.requestId), chainId }
}

/**
 * `read(from, to)` over [from, to] in ranges of at most `range` blocks, results concatenated in
 * block order.
 */
export async function readChunked<T>(
  from: bigint,
  to: bigint,
  range: bigint | undefined,
  read: (from: bigint, to: bigint) => Promise<readonly T[]>,
): Promise<T[]> {
  const step = range && range > 0n ? range : DEFAULT_BLOCK_RANGE
  const out: T[] = []
  for (let start = from; start <= to; start += step) {
    const end = start + step - 1n < to ? start + step - 1n : to
    out.push(...(await read(start, end)))
  }
  return out
}

/** The chain's latest block. */
export const latestBlock = (client: ReadClient) => getBlockNumber(client, { cacheTime: 0 })

/** A bytes32 holding a left-padded address, as the address. */
export const addressOfBytes32 = (b: `0x${string}`): Address => `0x${b.slice(-40)}` as Address

/** An address left-padded to bytes32, lowercase. */
export const bytes32OfAddress = (a: Address): `0x${string}` => `0x${a.slice(2).toLowerCase().padStart(64, '0')}`
