/**
 * Message delivery through `@hyperlane-xyz/sdk` (20.1.0, ethers v5), for the local relayer.
 *
 * This module imports the SDK (≈4 s and ≈260 MB RSS on Node 20), so `relayer.ts` loads it with a
 * dynamic `import()` the first time it has a message to deliver; nothing else should import it.
 *
 * How the SDK is used:
 * - `MultiProvider` with one chain per Hyperlane domain (named `domain<id>`), each on an ethers v5
 *   `StaticJsonRpcProvider` for the chain's RPC URL; the destination gets a signer that signs with
 *   the relayer client's viem account (`ViemAccountSigner` below: no private key leaves viem).
 * - `HyperlaneCore` over the origin and destination mailboxes (`HyperlaneCore.fromAddressesMap`).
 * - `HyperlaneRelayer.relayMessage(dispatchReceipt, _, message)`: it checks `delivered`, reads the
 *   recipient's ISM config (`EvmIsmReader`) and the sender's hook config (`EvmHookReader`), builds
 *   the metadata with its `BaseMetadataBuilder` and sends `Mailbox.process` through
 *   `HyperlaneCore.deliver` (ethers estimates gas first: a rejected message fails there).
 * - The SDK's `MultisigMetadataBuilder` normally finds each validator's checkpoints through its
 *   announced storage location (`ValidatorAnnounce` → `S3Validator.getCheckpoint`). Our validators
 *   write to `CheckpointStore`s instead, so `StoreMultisigMetadataBuilder` subclasses it and
 *   overrides `getS3Checkpoints` to read them from the stores (checking each signature with the
 *   utils' `BaseValidator.recoverAddressFromCheckpointWithId`, which the SDK does not do), and
 *   `build` to tell "not enough signatures yet" apart from real failures. The SDK does not export
 *   `MultisigMetadataBuilder` from its entry point (and its `exports` map allows no deep import),
 *   so the class is taken from a `BaseMetadataBuilder` instance's `multisigMetadataBuilder`.
 * - When the relayer config fixes the validator set, `getRecipientIsmConfig` is overridden to
 *   return it instead of reading the ISM.
 *
 * Nothing of the SDK was found not to work on Node 20 for this path. Notes: `starknet@7` (an SDK
 * dependency) declares node >= 22 (npm warns; the code path here never loads Starknet RPC), and
 * `bigint-buffer` prints "bigint: Failed to load bindings, pure JS will be used" once on import
 * because install scripts are off (`.npmrc`); the pure-JS fallback is fine.
 */
import {
  BaseMetadataBuilder,
  HyperlaneCore,
  HyperlaneRelayer,
  IsmType,
  MultiProvider,
  type ChainMetadata,
  type DerivedIsmConfig,
  type DispatchedMessage,
} from '@hyperlane-xyz/sdk'
import {
  BaseValidator,
  LogFormat,
  ProtocolType,
  addressToBytes32 as sdkAddressToBytes32,
  createHyperlanePinoLogger,
  type S3CheckpointWithId,
} from '@hyperlane-xyz/utils'
import { ethers } from 'ethers'
import { getAddress, type Account, type Address, type Hex, type TransactionSerializable } from 'viem'
import type { CheckpointStore, PendingMessage } from './stores.ts'

type Logger = ReturnType<typeof createHyperlanePinoLogger>
type MultisigMetadataBuilder = BaseMetadataBuilder['multisigMetadataBuilder']
type MultisigBuildContext = Parameters<MultisigMetadataBuilder['build']>[0]
type CheckpointMatch = Parameters<MultisigMetadataBuilder['getS3Checkpoints']>[1]
type MultisigMetadataBuilderClass = new (core: HyperlaneCore, logger?: Logger) => MultisigMetadataBuilder

export type SdkLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'

export type SdkRelayConfig = {
  origin: { domain: number; chainId: number; rpcUrl: string; mailbox: Address; merkleTreeHook: Address }
  destination: { domain: number; chainId: number; rpcUrl: string; mailbox: Address; account: Account }
  /** Checkpoint stores by (checksummed) validator address. */
  stores: ReadonlyMap<Address, CheckpointStore>
  /** A fixed validator set and threshold (instead of reading the recipient's ISM). */
  validatorSet?: { validators: Address[]; threshold: number }
  /** ethers provider polling interval (transaction receipts), ms. */
  pollingIntervalMs: number
  /** Level of the SDK's pino logs (JSON on stdout); `warn` by default. */
  logLevel?: SdkLogLevel
  /** A checkpoint in a store that does not match the message or its validator's signature. */
  onInvalidCheckpoint: (err: Error) => void
}

export type SdkRelayOutcome =
  | { kind: 'delivered'; transactionHash: Hex; gasUsed: bigint; inclusionMs: number }
  | { kind: 'already-delivered' }
  | { kind: 'awaiting-signatures'; found: number; threshold: number }

export type SdkRelay = {
  /** Relays one message through `HyperlaneRelayer.relayMessage`; throws when delivery fails. */
  relay(p: PendingMessage): Promise<SdkRelayOutcome>
  /** Stops the ethers providers' polling. */
  close(): void
}

/** Fewer valid checkpoints than the ISM's threshold: the message waits for validators. */
export class AwaitingSignaturesError extends Error {
  override readonly name = 'AwaitingSignaturesError'
  constructor(
    readonly found: number,
    readonly threshold: number,
  ) {
    super(`${found} of ${threshold} validator signatures`)
  }
}

/** An ethers v5 signer that signs with a viem account (local: signs itself; json-rpc: via the node). */
export class ViemAccountSigner extends ethers.Signer {
  constructor(
    readonly account: Account,
    override readonly provider?: ethers.providers.JsonRpcProvider,
    /** When this signer (or one connected from it) last had a transaction accepted by the node (performance.now()). */
    readonly sent: { at?: number } = {},
  ) {
    super()
  }
  override async getAddress(): Promise<string> {
    return this.account.address
  }
  override async signMessage(message: ethers.Bytes | string): Promise<string> {
    if (this.account.type !== 'local') return this.jsonRpc().signMessage(message)
    return this.account.signMessage({ message: typeof message === 'string' ? message : { raw: ethers.utils.arrayify(message) } })
  }
  override async signTransaction(request: ethers.utils.Deferrable<ethers.providers.TransactionRequest>): Promise<string> {
    if (this.account.type !== 'local')
      throw new Error(`account ${this.account.address} is a ${this.account.type} account: it cannot sign offline`)
    const tx = await ethers.utils.resolveProperties(request)
    if (tx.from !== undefined && getAddress(tx.from) !== getAddress(this.account.address))
      throw new Error(`transaction from ${tx.from}, signer is ${this.account.address}`)
    const big = (v: ethers.BigNumberish | undefined) => (v === undefined || v === null ? undefined : ethers.BigNumber.from(v).toBigInt())
    if (tx.chainId === undefined) throw new Error('transaction without chainId (populate it first)')
    const base = {
      chainId: tx.chainId,
      to: tx.to ? getAddress(tx.to) : undefined,
      data: tx.data === undefined ? undefined : (ethers.utils.hexlify(tx.data) as Hex),
      value: big(tx.value),
      nonce: tx.nonce === undefined ? undefined : ethers.BigNumber.from(tx.nonce).toNumber(),
      gas: big(tx.gasLimit),
    } as const
    const serializable: TransactionSerializable =
      tx.type === 2 || tx.maxFeePerGas != null
        ? { ...base, type: 'eip1559', maxFeePerGas: big(tx.maxFeePerGas), maxPriorityFeePerGas: big(tx.maxPriorityFeePerGas) }
        : { ...base, type: 'legacy', gasPrice: big(tx.gasPrice) }
    return this.account.signTransaction(serializable)
  }
  override async sendTransaction(
    request: ethers.utils.Deferrable<ethers.providers.TransactionRequest>,
  ): Promise<ethers.providers.TransactionResponse> {
    // A json-rpc account (unlocked on the node) sends through the node itself.
    const response = this.account.type !== 'local' ? await this.jsonRpc().sendTransaction(request) : await super.sendTransaction(request)
    this.sent.at = performance.now()
    return response
  }
  override connect(provider: ethers.providers.Provider): ViemAccountSigner {
    if (!(provider instanceof ethers.providers.JsonRpcProvider)) throw new Error('ViemAccountSigner needs a JSON-RPC provider')
    return new ViemAccountSigner(this.account, provider, this.sent)
  }
  private jsonRpc(): ethers.providers.JsonRpcSigner {
    if (!this.provider) throw new Error('ViemAccountSigner is not connected to a provider')
    return this.provider.getSigner(this.account.address)
  }
}

const chainName = (domain: number) => `domain${domain}`

/** Builds the SDK objects for one origin → destination route. */
export function createSdkRelay(cfg: SdkRelayConfig): SdkRelay {
  const logger: Logger = createHyperlanePinoLogger(cfg.logLevel ?? 'warn', LogFormat.JSON)
  const origin = chainName(cfg.origin.domain)
  const destination = chainName(cfg.destination.domain)
  const metadata = (c: { domain: number; chainId: number; rpcUrl: string }, name: string): ChainMetadata => ({
    name,
    chainId: c.chainId,
    domainId: c.domain,
    protocol: ProtocolType.Ethereum,
    rpcUrls: [{ http: c.rpcUrl }],
    blocks: { confirmations: 1, reorgPeriod: 0, estimateBlockTime: 1 },
  })
  const provider = (c: { chainId: number; rpcUrl: string }, name: string) => {
    const p = new ethers.providers.StaticJsonRpcProvider(c.rpcUrl, { chainId: c.chainId, name })
    p.pollingInterval = cfg.pollingIntervalMs
    return p
  }
  const originProvider = provider(cfg.origin, origin)
  const destProvider = provider(cfg.destination, destination)
  const signer = new ViemAccountSigner(cfg.destination.account, destProvider)
  const multiProvider = new MultiProvider(
    { [origin]: metadata(cfg.origin, origin), [destination]: metadata(cfg.destination, destination) },
    { logger, providers: { [origin]: originProvider, [destination]: destProvider }, signers: { [destination]: signer } },
  )
  const zero = ethers.constants.AddressZero
  // Only the mailboxes are used; ValidatorAnnounce (S3 storage locations) is bypassed below.
  const addresses = {
    [origin]: { mailbox: cfg.origin.mailbox, validatorAnnounce: zero, proxyAdmin: zero },
    [destination]: { mailbox: cfg.destination.mailbox, validatorAnnounce: zero, proxyAdmin: zero },
  }
  const core = new HyperlaneCore(HyperlaneCore.fromAddressesMap(addresses, multiProvider).contractsMap, multiProvider, logger)

  const MultisigBuilder = new BaseMetadataBuilder(core).multisigMetadataBuilder.constructor as MultisigMetadataBuilderClass
  if (typeof MultisigBuilder.prototype.getS3Checkpoints !== 'function')
    throw new Error('@hyperlane-xyz/sdk: MultisigMetadataBuilder.getS3Checkpoints not found (SDK changed?)')

  /** The SDK's multisig metadata builder, with checkpoints from our stores instead of S3. */
  class StoreMultisigMetadataBuilder extends MultisigBuilder {
    /** Valid checkpoints found for the last message asked about. */
    private last: { messageId: string; found: number } | undefined

    override async getS3Checkpoints(validators: string[], match: CheckpointMatch): Promise<S3CheckpointWithId[]> {
      const found: { validator: Address; checkpoint: S3CheckpointWithId }[] = []
      for (const v of validators) {
        const validator = getAddress(v)
        const sc = await cfg.stores.get(validator)?.get(match.index)
        if (!sc) continue
        const checkpoint: S3CheckpointWithId = {
          value: {
            checkpoint: {
              root: sc.root,
              index: sc.index,
              mailbox_domain: sc.origin,
              merkle_tree_hook_address: sdkAddressToBytes32(sc.merkleTreeHook),
            },
            message_id: sc.messageId,
          },
          signature: sc.signature,
        }
        const matches =
          sc.index === match.index &&
          sc.origin === match.origin &&
          sc.messageId.toLowerCase() === match.messageId.toLowerCase() &&
          getAddress(sc.merkleTreeHook) === getAddress(match.merkleTree)
        let signer: string | undefined
        try {
          signer = BaseValidator.recoverAddressFromCheckpointWithId(checkpoint.value, checkpoint.signature)
        } catch {
          signer = undefined
        }
        if (!matches || signer === undefined || getAddress(signer) !== validator) {
          cfg.onInvalidCheckpoint(new Error(`validator ${validator}: invalid checkpoint for index ${match.index} (ignored)`))
          continue
        }
        found.push({ validator, checkpoint })
      }
      // Signatures must be over one root: keep the root most validators signed (in ISM order).
      const votes = new Map<string, number>()
      for (const f of found) votes.set(f.checkpoint.value.checkpoint.root, (votes.get(f.checkpoint.value.checkpoint.root) ?? 0) + 1)
      const root = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
      const checkpoints = found.filter((f) => f.checkpoint.value.checkpoint.root === root).map((f) => f.checkpoint)
      this.last = { messageId: match.messageId.toLowerCase(), found: checkpoints.length }
      return checkpoints
    }

    override async build(context: MultisigBuildContext): Promise<string> {
      this.last = undefined
      try {
        return await super.build(context)
      } catch (err) {
        const last = this.last as { messageId: string; found: number } | undefined
        if (last && last.messageId === context.message.id.toLowerCase() && last.found < context.ism.threshold)
          throw new AwaitingSignaturesError(last.found, context.ism.threshold)
        throw err
      }
    }
  }

  class LocalMetadataBuilder extends BaseMetadataBuilder {
    constructor() {
      super(core)
      this.multisigMetadataBuilder = new StoreMultisigMetadataBuilder(core, logger)
      this.logger = logger
    }
  }

  class LocalHyperlaneRelayer extends HyperlaneRelayer {
    constructor() {
      super({ core, caching: true })
      this.metadataBuilder = new LocalMetadataBuilder()
    }
    override async getRecipientIsmConfig(message: DispatchedMessage): Promise<DerivedIsmConfig> {
      if (!cfg.validatorSet) return super.getRecipientIsmConfig(message)
      const address = await this.core.getRecipientIsmAddress(message)
      return { type: IsmType.MESSAGE_ID_MULTISIG, address, validators: cfg.validatorSet.validators, threshold: cfg.validatorSet.threshold }
    }
  }

  const relayer = new LocalHyperlaneRelayer()
  const signerAddress = getAddress(cfg.destination.account.address)

  return {
    async relay(p) {
      const message = HyperlaneCore.parseDispatchedMessage(p.message)
      if (message.id.toLowerCase() !== p.messageId.toLowerCase()) throw new Error(`message id ${message.id} ≠ ${p.messageId}`)
      const dispatchReceipt = p.dispatchTx
        ? await originProvider.getTransactionReceipt(p.dispatchTx)
        : await core.getDispatchTx(origin, message.id, Number(p.blockNumber))
      if (!dispatchReceipt) throw new Error(`dispatch transaction ${p.dispatchTx} of message ${p.messageId} not found on ${origin}`)
      let receipt: ethers.ContractReceipt
      signer.sent.at = undefined
      try {
        receipt = await relayer.relayMessage(dispatchReceipt, undefined, message)
      } catch (err) {
        if (err instanceof AwaitingSignaturesError) return { kind: 'awaiting-signatures', found: err.found, threshold: err.threshold }
        throw err
      }
      // relayMessage returns the earlier `process` receipt when the message was already delivered.
      if (getAddress(receipt.from) !== signerAddress) return { kind: 'already-delivered' }
      // The destination chain's inclusion wait: our `process` accepted by the node → its receipt.
      const inclusionMs = signer.sent.at === undefined ? 0 : performance.now() - signer.sent.at
      return { kind: 'delivered', transactionHash: receipt.transactionHash as Hex, gasUsed: receipt.gasUsed.toBigInt(), inclusionMs }
    },
    close() {
      for (const p of [originProvider, destProvider]) {
        p.removeAllListeners()
        p.polling = false
      }
    },
  }
}
