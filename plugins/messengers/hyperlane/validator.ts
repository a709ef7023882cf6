/**
 * A local stand-in for a Hyperlane validator agent: it follows the origin chain's MerkleTreeHook,
 * mirrors its incremental merkle tree, and signs a checkpoint (origin, merkle tree hook, root,
 * index, message id) for every insertion, saving it to its checkpoint store where relayers read it.
 *
 * Each poll scans `InsertedIntoTree` logs from the next unscanned block up to the confirmed head,
 * at most `maxBlockRange` blocks. Insertions must arrive in index order with no gap (anything else
 * means a log was missed or the store belongs to another tree: the poll throws and nothing is
 * signed). The computed root is checked against the hook's `latestCheckpoint()` read at the
 * insertion's block whenever that block's last insertion is this one. State (tree + next block) is
 * saved after every insertion, after its checkpoint, so a restart resumes where it stopped and at
 * worst re-signs one index (ECDSA here is deterministic, so with the same signature).
 *
 * Not handled: reorgs deeper than `confirmations` (local anvils do not reorg), validator
 * announcement (relayers get the stores directly).
 */
import { getAbiItem, getAddress, type Address, type LocalAccount } from 'viem'
import { MerkleTreeHook } from '../../../contracts/artifacts/hyperlane/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { runPollLoop } from './loop.ts'
import { IncrementalMerkleTree, signCheckpoint, type SignedCheckpoint } from './message.ts'
import type { CheckpointStore } from './stores.ts'

const INSERTED = getAbiItem({ abi: MerkleTreeHook.abi, name: 'InsertedIntoTree' })

export type LocalValidatorConfig = {
  /** A client of the origin chain (only reads are used). */
  client: Pick<SertnClient, 'getBlockNumber' | 'getLogs' | 'readContract'>
  /** The origin's Hyperlane domain (not its chain id). */
  domain: number
  merkleTreeHook: Address
  /** The validator's signing key. */
  account: LocalAccount
  store: CheckpointStore
  /** First block to scan when the store has no state (default: the hook's `deployedBlock()`). */
  fromBlock?: bigint
  confirmations?: number
  maxBlockRange?: bigint
  pollingIntervalMs?: number
  onError?: (err: unknown) => void
  onSigned?: (checkpoint: SignedCheckpoint) => void
}

export type LocalValidator = {
  readonly address: Address
  /** One bounded scan-and-sign pass; returns the checkpoints signed. */
  poll(): Promise<SignedCheckpoint[]>
  /** Starts polling in the background until `stop()` or `signal` aborts. */
  start(signal?: AbortSignal): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export function createLocalValidator(cfg: LocalValidatorConfig): LocalValidator {
  const merkleTreeHook = getAddress(cfg.merkleTreeHook)
  const address = getAddress(cfg.account.address)
  if (getAddress(cfg.store.validator) !== address) throw new Error(`checkpoint store belongs to ${cfg.store.validator}, not ${address}`)
  const confirmations = BigInt(cfg.confirmations ?? 0)
  const maxBlockRange = cfg.maxBlockRange ?? 1000n
  let controller: AbortController | undefined
  let loop: Promise<void> | undefined
  let polling: Promise<SignedCheckpoint[]> | undefined

  async function startBlock(): Promise<bigint> {
    if (cfg.fromBlock !== undefined) return cfg.fromBlock
    return cfg.client.readContract({ address: merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'deployedBlock' })
  }

  async function pollOnce(): Promise<SignedCheckpoint[]> {
    const state = await cfg.store.loadState()
    const tree = new IncrementalMerkleTree(state?.tree)
    let next = state ? BigInt(state.nextBlock) : await startBlock()
    const head = (await cfg.client.getBlockNumber({ cacheTime: 0 })) - confirmations
    if (head < next) return []
    const to = next + maxBlockRange - 1n < head ? next + maxBlockRange - 1n : head
    const logs = await cfg.client.getLogs({ address: merkleTreeHook, event: INSERTED, fromBlock: next, toBlock: to, strict: true })
    logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : Number(a.blockNumber - b.blockNumber)))
    const signed: SignedCheckpoint[] = []
    for (const [i, log] of logs.entries()) {
      const { messageId, index } = log.args
      if (index < tree.count) continue // already signed (a block re-scanned after a crash)
      if (index !== tree.count)
        throw new Error(`merkle tree hook ${merkleTreeHook}: expected insertion ${tree.count}, saw ${index} (missed logs?)`)
      tree.insert(messageId)
      const root = tree.root()
      const lastInBlock = logs[i + 1]?.blockNumber !== log.blockNumber
      if (lastInBlock) {
        const [onChainRoot, onChainIndex] = await cfg.client.readContract({
          address: merkleTreeHook,
          abi: MerkleTreeHook.abi,
          functionName: 'latestCheckpoint',
          blockNumber: log.blockNumber,
        })
        if (onChainIndex === index && onChainRoot !== root)
          throw new Error(`merkle root mismatch at index ${index}: computed ${root}, hook says ${onChainRoot}`)
      }
      const checkpoint = await signCheckpoint(cfg.account, { origin: cfg.domain, merkleTreeHook, root, index, messageId })
      await cfg.store.put(checkpoint)
      // Resume from this block: the rest of its insertions (if any) are skipped by index.
      await cfg.store.saveState({ nextBlock: log.blockNumber.toString(), tree: tree.toJSON() })
      signed.push(checkpoint)
      cfg.onSigned?.(checkpoint)
    }
    next = to + 1n
    await cfg.store.saveState({ nextBlock: next.toString(), tree: tree.toJSON() })
    return signed
  }

  const validator: LocalValidator = {
    address,
    poll() {
      // Serialise polls: a manual poll waits for a running one.
      const run = (polling ?? Promise.resolve([])).catch(() => []).then(pollOnce)
      polling = run
      return run
    },
    start(signal) {
      if (controller) throw new Error('validator already started')
      controller = new AbortController()
      const sig = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal
      loop = runPollLoop(
        async () => {
          await validator.poll()
        },
        {
          intervalMs: cfg.pollingIntervalMs ?? 100,
          signal: sig,
          onError: cfg.onError ?? ((e) => console.warn(`[hyperlane-validator ${address}]`, e)),
        },
      ).done
    },
    async stop() {
      controller?.abort()
      await loop
      await polling?.catch(() => undefined)
      controller = undefined
      loop = undefined
    },
    [Symbol.asyncDispose]() {
      return validator.stop()
    },
  }
  return validator
}
