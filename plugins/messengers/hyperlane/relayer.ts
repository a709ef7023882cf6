/**
 * A local stand-in for a Hyperlane relayer, for one origin → destination route and
 * MessageIdMultisigIsm security: it follows the origin mailbox's `Dispatch` logs for the
 * destination domain (pairing each with the MerkleTreeHook's `InsertedIntoTree` log to learn its
 * tree index), waits until the recipient's ISM's validators have signed a checkpoint for that
 * index and message id in their checkpoint stores, builds the metadata and calls
 * `process(metadata, message)` on the destination mailbox.
 *
 * Delivery is idempotent: every attempt first checks `delivered(messageId)`, and a revert with
 * `already delivered` (another relayer was faster) counts as done. The cursor (next origin block
 * to scan, plus the messages seen but not yet delivered) is saved after every scan and delivery, so
 * a restarted relayer with the same cursor store neither misses nor repeats a message. Each poll
 * scans at most `maxBlockRange` blocks and tries each pending message once.
 *
 * Not handled: reorgs deeper than `confirmations`, gas payment (IGP) checks, other ISM types.
 */
import { BaseError, ContractFunctionRevertedError, getAbiItem, getAddress, keccak256, type Address, type Hex } from 'viem'
import { Mailbox, MerkleTreeHook, StaticMessageIdMultisigIsm } from '../../../contracts/artifacts/hyperlane/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { runPollLoop } from './loop.ts'
import { bytes32ToAddress, encodeMessageIdMultisigMetadata, parseMessage, recoverCheckpointSigner, type SignedCheckpoint } from './message.ts'
import type { CheckpointStore, PendingMessage, RelayerCursor, RelayerCursorStore } from './stores.ts'

const DISPATCH = getAbiItem({ abi: Mailbox.abi, name: 'Dispatch' })
const INSERTED = getAbiItem({ abi: MerkleTreeHook.abi, name: 'InsertedIntoTree' })

export type RelayerOrigin = {
  client: Pick<SertnClient, 'getBlockNumber' | 'getLogs' | 'readContract'>
  mailbox: Address
  merkleTreeHook: Address
  domain: number
}

export type RelayerDestination = {
  /** Sends the `process` transactions. */
  client: SertnClient
  mailbox: Address
  domain: number
}

export type LocalRelayerConfig = {
  origin: RelayerOrigin
  destination: RelayerDestination
  /** Validator checkpoint stores (by the validator each belongs to). */
  checkpointStores: readonly CheckpointStore[]
  cursorStore: RelayerCursorStore
  /**
   * The validator set and threshold to build metadata for. By default they are read per message
   * from the recipient's ISM (`recipientIsm` → `validatorsAndThreshold`), as real relayers do.
   */
  validators?: readonly Address[]
  threshold?: number
  /** First origin block to scan without a saved cursor (default: the mailbox's `deployedBlock()`). */
  fromBlock?: bigint
  confirmations?: number
  maxBlockRange?: bigint
  pollingIntervalMs?: number
  onError?: (err: unknown) => void
  onDelivered?: (d: Delivery) => void
}

export type Delivery = {
  messageId: Hex
  index: number
  transactionHash: Hex
  gasUsed: bigint
  /** Milliseconds from submitting `process` to its receipt: the destination chain's inclusion wait. */
  inclusionMs: number
}

export type RelayerPollResult = {
  /** Messages newly seen for the destination in this poll. */
  seen: number
  delivered: Delivery[]
  /** Message ids found already delivered (by anyone) and dropped. */
  alreadyDelivered: Hex[]
  /** Messages still waiting (for signatures, or after a failed attempt). */
  pending: number
}

export type LocalRelayer = {
  /** Scans the next bounded range of origin blocks and records the messages for the destination. */
  scan(): Promise<number>
  /** Tries to deliver every pending message once. */
  deliver(): Promise<Omit<RelayerPollResult, 'seen'>>
  /** `scan()` then `deliver()`. */
  poll(): Promise<RelayerPollResult>
  start(signal?: AbortSignal): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** The revert reason of a failed simulation, if viem decoded one. */
export function revertReason(err: unknown): string | undefined {
  if (!(err instanceof BaseError)) return undefined
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError)
  return reverted instanceof ContractFunctionRevertedError ? reverted.reason : undefined
}

export function createLocalRelayer(cfg: LocalRelayerConfig): LocalRelayer {
  const origin = { ...cfg.origin, mailbox: getAddress(cfg.origin.mailbox), merkleTreeHook: getAddress(cfg.origin.merkleTreeHook) }
  const dest = { ...cfg.destination, mailbox: getAddress(cfg.destination.mailbox) }
  const stores = new Map(cfg.checkpointStores.map((s) => [getAddress(s.validator), s]))
  const confirmations = BigInt(cfg.confirmations ?? 0)
  const maxBlockRange = cfg.maxBlockRange ?? 1000n
  const onError = cfg.onError ?? ((e: unknown) => console.warn('[hyperlane-relayer]', e))
  let controller: AbortController | undefined
  let loop: Promise<void> | undefined
  let disposed = false
  let chain: Promise<unknown> = Promise.resolve()

  /** Runs `fn` after every earlier operation: scans and deliveries never interleave. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    if (disposed) return Promise.reject(new Error('relayer disposed'))
    const run = chain.catch(() => undefined).then(fn)
    chain = run
    return run
  }

  async function loadCursor(): Promise<RelayerCursor> {
    const saved = await cfg.cursorStore.load()
    if (saved) return saved
    const from =
      cfg.fromBlock ?? (await origin.client.readContract({ address: origin.mailbox, abi: Mailbox.abi, functionName: 'deployedBlock' }))
    return { nextBlock: from.toString(), pending: [] }
  }

  async function scanOnce(): Promise<number> {
    const cursor = await loadCursor()
    const next = BigInt(cursor.nextBlock)
    const head = (await origin.client.getBlockNumber({ cacheTime: 0 })) - confirmations
    if (head < next) return 0
    const to = next + maxBlockRange - 1n < head ? next + maxBlockRange - 1n : head
    const [dispatches, insertions] = await Promise.all([
      origin.client.getLogs({ address: origin.mailbox, event: DISPATCH, args: { destination: dest.domain }, fromBlock: next, toBlock: to, strict: true }),
      origin.client.getLogs({ address: origin.merkleTreeHook, event: INSERTED, fromBlock: next, toBlock: to, strict: true }),
    ])
    const indexOf = new Map(insertions.map((l) => [l.args.messageId, l.args.index]))
    const known = new Set(cursor.pending.map((p) => p.messageId))
    let seen = 0
    for (const log of dispatches) {
      const message = log.args.message
      const id = keccak256(message)
      const index = indexOf.get(id)
      if (index === undefined) {
        onError(new Error(`message ${id} was not inserted into merkle tree hook ${origin.merkleTreeHook}: cannot relay it with a message-id multisig ISM`))
        continue
      }
      if (known.has(id)) continue
      known.add(id)
      cursor.pending.push({ message, messageId: id, index, blockNumber: log.blockNumber.toString() })
      seen += 1
    }
    cursor.pending.sort((a, b) => a.index - b.index)
    await cfg.cursorStore.save({ nextBlock: (to + 1n).toString(), pending: cursor.pending })
    return seen
  }

  const ismSets = new Map<Address, { validators: Address[]; threshold: number }>()

  async function validatorSet(recipient: Address, message: Hex): Promise<{ validators: Address[]; threshold: number }> {
    if (cfg.validators && cfg.threshold !== undefined) return { validators: cfg.validators.map((v) => getAddress(v)), threshold: cfg.threshold }
    const ism = await dest.client.readContract({ address: dest.mailbox, abi: Mailbox.abi, functionName: 'recipientIsm', args: [recipient] })
    const cached = ismSets.get(ism)
    if (cached) return cached
    const [validators, threshold] = await dest.client.readContract({
      address: ism,
      abi: StaticMessageIdMultisigIsm.abi,
      functionName: 'validatorsAndThreshold',
      args: [message],
    })
    // Static multisig ISMs are immutable: cache by address.
    const set = { validators: validators.map((v) => getAddress(v)), threshold }
    ismSets.set(ism, set)
    return set
  }

  /** Valid checkpoints for `p` from the validators, in validator order, all over one root; undefined if under threshold. */
  async function collect(p: PendingMessage, validators: Address[], threshold: number): Promise<SignedCheckpoint[] | undefined> {
    const byRoot = new Map<Hex, SignedCheckpoint[]>()
    for (const v of validators) {
      const sc = await stores.get(v)?.get(p.index)
      if (!sc) continue
      const ok =
        sc.index === p.index &&
        sc.messageId === p.messageId &&
        sc.origin === origin.domain &&
        getAddress(sc.merkleTreeHook) === origin.merkleTreeHook &&
        (await recoverCheckpointSigner(sc).catch(() => undefined)) === v
      if (!ok) {
        onError(new Error(`validator ${v}: invalid checkpoint for index ${p.index} (ignored)`))
        continue
      }
      const group = byRoot.get(sc.root) ?? []
      group.push(sc)
      if (group.length >= threshold) return group
      byRoot.set(sc.root, group)
    }
    return undefined
  }

  async function deliverOnce(): Promise<Omit<RelayerPollResult, 'seen'>> {
    const cursor = await loadCursor()
    const delivered: Delivery[] = []
    const alreadyDelivered: Hex[] = []
    const done = new Set<Hex>()
    const save = () => cfg.cursorStore.save({ nextBlock: cursor.nextBlock, pending: cursor.pending.filter((p) => !done.has(p.messageId)) })
    for (const p of cursor.pending) {
      if (disposed) break
      try {
        if (await dest.client.readContract({ address: dest.mailbox, abi: Mailbox.abi, functionName: 'delivered', args: [p.messageId] })) {
          done.add(p.messageId)
          alreadyDelivered.push(p.messageId)
          await save()
          continue
        }
        const m = parseMessage(p.message)
        if (m.origin !== origin.domain || m.destination !== dest.domain) throw new Error(`message ${p.messageId} is for route ${m.origin}→${m.destination}`)
        const { validators, threshold } = await validatorSet(bytes32ToAddress(m.recipient), p.message)
        const checkpoints = await collect(p, validators, threshold)
        if (!checkpoints) continue // not enough signatures yet
        const metadata = encodeMessageIdMultisigMetadata(checkpoints[0]!, checkpoints.map((c) => c.signature))
        let request
        try {
          ;({ request } = await dest.client.simulateContract({
            address: dest.mailbox,
            abi: Mailbox.abi,
            functionName: 'process',
            args: [metadata, p.message],
          }))
        } catch (err) {
          if (revertReason(err)?.includes('already delivered')) {
            done.add(p.messageId)
            alreadyDelivered.push(p.messageId)
            await save()
            continue
          }
          throw err
        }
        const submittedAt = performance.now()
        const hash = await dest.client.writeContract(request)
        const receipt = await dest.client.waitForTransactionReceipt({ hash })
        const inclusionMs = performance.now() - submittedAt
        if (receipt.status !== 'success') throw new Error(`process reverted on chain (${hash})`)
        done.add(p.messageId)
        const d = { messageId: p.messageId, index: p.index, transactionHash: hash, gasUsed: receipt.gasUsed, inclusionMs }
        delivered.push(d)
        await save()
        cfg.onDelivered?.(d)
      } catch (err) {
        onError(new Error(`delivering message ${p.messageId} (index ${p.index}) failed; will retry`, { cause: err }))
      }
    }
    return { delivered, alreadyDelivered, pending: cursor.pending.length - done.size }
  }

  const relayer: LocalRelayer = {
    scan: () => serial(scanOnce),
    deliver: () => serial(deliverOnce),
    async poll() {
      const seen = await relayer.scan()
      return { seen, ...(await relayer.deliver()) }
    },
    start(signal) {
      if (controller) throw new Error('relayer already started')
      controller = new AbortController()
      const sig = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal
      loop = runPollLoop(
        async () => {
          await relayer.poll()
        },
        { intervalMs: cfg.pollingIntervalMs ?? 100, signal: sig, onError },
      ).done
    },
    async stop() {
      controller?.abort()
      await loop
      await chain.catch(() => undefined)
      controller = undefined
      loop = undefined
    },
    async [Symbol.asyncDispose]() {
      await relayer.stop()
      disposed = true
    },
  }
  return relayer
}
