/** viem's description of an EVM chain Sertn talks to over one RPC URL (ETH-denominated). */
import { defineChain, type Chain } from 'viem'

export function evmChainOf(chainId: number, name: string, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  })
}
