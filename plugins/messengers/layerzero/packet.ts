/**
 * LayerZero V2 packets and executor options, decoded with `@layerzerolabs/lz-v2-utilities`
 * (`PacketV1Codec`, `Options`) and returned as viem types.
 *
 * An encoded packet (the `encodedPayload` of the origin endpoint's `PacketSent`) is
 * `header (81 bytes: version ‖ nonce ‖ srcEid ‖ sender ‖ dstEid ‖ receiver) ‖ guid ‖ message`;
 * the DVNs attest `keccak256(header)` and `payloadHash = keccak256(guid ‖ message)`.
 */
import { Options, PacketV1Codec } from '@layerzerolabs/lz-v2-utilities'
import { getAddress, isHex, pad, type Address, type Hex } from 'viem'
import { PacketMalformedError } from './errors.ts'

export type DecodedPacket = {
  nonce: bigint
  srcEid: number
  /** The sending OApp, left-padded to 32 bytes. */
  sender: Hex
  dstEid: number
  /** The receiving OApp (an EVM address). */
  receiver: Address
  guid: Hex
  message: Hex
  /** The 81-byte packet header the DVNs verify. */
  header: Hex
  headerHash: Hex
  /** `keccak256(guid ‖ message)`: what the endpoint stores for the packet once verified. */
  payloadHash: Hex
}

const hex = (s: string): Hex => s.toLowerCase() as Hex

/** Decodes an encoded packet (the `encodedPayload` of `PacketSent`). */
export function decodePacket(encoded: Hex): DecodedPacket {
  if (!isHex(encoded) || (encoded.length - 2) / 2 < 81 + 32)
    throw new PacketMalformedError(`not an encoded LayerZero packet (${(encoded.length - 2) / 2} bytes)`)
  const c = PacketV1Codec.from(encoded)
  if (c.version() !== 1) throw new PacketMalformedError(`packet version ${c.version()} is not 1`)
  return {
    nonce: BigInt(c.nonce()),
    srcEid: c.srcEid(),
    sender: hex(c.sender()),
    dstEid: c.dstEid(),
    receiver: getAddress(c.receiverAddressB20()),
    guid: hex(c.guid()),
    message: hex(c.message()),
    header: hex(c.header()),
    headerHash: hex(c.headerHash()),
    payloadHash: hex(c.payloadHash()),
  }
}

/** The executor's lzReceive option (gas and msg.value) of type-3 `options`, if it has one. */
export function lzReceiveOption(options: Hex): { gas: bigint; value: bigint } | undefined {
  let decoded: { gas: bigint; value: bigint } | undefined
  try {
    decoded = Options.fromOptions(options).decodeExecutorLzReceiveOption()
  } catch {
    return undefined
  }
  return decoded && { gas: BigInt(decoded.gas), value: BigInt(decoded.value) }
}

/** Type-3 options with one executor lzReceive option (what `LayerZeroPort.optionsFor` builds on chain). */
export function lzReceiveOptions(gas: bigint, value = 0n): Hex {
  return hex(Options.newOptions().addExecutorLzReceiveOption(gas, value).toHex())
}

/** An EVM address as a LayerZero / Sertn bytes32 (left-padded). */
export function addressToBytes32(address: Address): Hex {
  return pad(getAddress(address).toLowerCase() as Hex, { size: 32 })
}
