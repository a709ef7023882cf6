/**
 * A local stand-in for a Hyperlane validator agent: it follows the origin chain's MerkleTreeHook,
 * mirrors its incremental merkle tree, and signs a checkpoint (origin, merkle tree hook, root,
 * index, message id) for every insertion at least `confirmations` blocks deep (default 1: the
 * insertion's block has a successor), saving it to its checkpoint store where relayers read it.
 *
 * Each poll scans `InsertedIntoTree` logs from the next unscanned block up to the confirmed head,
 * at most `maxBlockRange` blocks. Insertions must arrive in index order with no gap, and before
 * anything is signed the mirrored tree must equal the hook's `root()` and `count()` at the last
 * block scanned. State (tree, next block, that block's hash, recent tree snapshots) is saved after
 * the poll's checkpoints, so a restart resumes where it stopped and at worst re-signs one poll's
 * insertions (ECDSA here is deterministic, so with the same signatures).
 *
 * Origin reorgs: every poll first checks that the last block it scanned still has the hash it saw.
 * When it does not (a reorg deeper than `confirmations`), the validator goes back to its newest
 * tree snapshot whose block is still on chain (or, past them all, to an empty tree at its start
 * block), deletes the checkpoints from that tree size on (they may sign orphaned messages) and
 * rescans, re-signing what the chain now holds. A tree that disagrees with the hook or an
 * insertion out of order (a reorg while it read, or state from another chain) sends it back to its
 * start block; only an inconsistency found when scanning from there stops its polls (with an error).
 *
 * Not handled: validator announcement (relayers get the stores directly).
 */
import {
  BaseError,
  BlockNotFoundError,
  getAbiItem,
  getAddress,
  HttpRequestError,
  TimeoutError,
  type Address,
  type Hex,
  type LocalAccount,
} from 'viem'
import { MerkleTreeHook } from '../../../contracts/artifacts/hyperlane/index.ts'
import type { SertnClient } from '../../../chains/evm/clients.ts'
import { componentLogger } from '../../../core/log.ts'
import { HyperlaneAgentError, runPollLoop, type PollLoop } from './loop.ts'
import { IncrementalMerkleTree, signCheckpoint, type CheckpointWithId, type SignedCheckpoint } from './message.ts'
import type { CheckpointStore, TreeSnapshot, ValidatorState } from './stores.ts'

const INSERTED = getAbiItem({ abi: MerkleTreeHook.abi, name: 'InsertedIntoTree' })

/** The mirrored tree does not match the hook even when rebuilt from the start block. */
export class MerkleTreeMismatchError extends HyperlaneAgentError {
  override name = 'MerkleTreeMismatchError'
}

export type LocalValidatorConfig = {
  /** A client of the origin chain (only reads are used). */
  client: Pick<SertnClient, 'getBlockNumber' | 'getBlock' | 'getLogs' | 'readContract'>
  /** The origin's Hyperlane domain (not its chain id). */
  domain: number
  merkleTreeHook: Address
  /** The validator's signing key. */
  account: LocalAccount
  store: CheckpointStore
  /** First block to scan when the store has no state (default: the hook's `deployedBlock()`). */
  fromBlock?: bigint
  /** Blocks after an insertion's own before it is signed (default 1; 0 signs at the head). */
  confirmations?: number
  maxBlockRange?: bigint
  /** Default 50 ms. */
  pollingIntervalMs?: number
  /** Tree snapshots kept to go back to after a reorg (default 16; one per poll that saw insertions). */
  snapshots?: number
  onError?: (err: unknown) => void
  onSigned?: (checkpoint: SignedCheckpoint) => void
  /** The origin reorged (or the tree disagreed with the hook): the validator went back and re-signs from there. */
  onReorg?: (r: ValidatorReorg) => void
}

export type ValidatorReorg = {
  /** What was found. */
  reason: string
  /** The tree size it went back to (checkpoints from this index on were deleted and are re-signed). */
  count: number
  /** The block it rescans from. */
  fromBlock: bigint
}

export type LocalValidator = {
  readonly address: Address
  /** One bounded scan-and-sign pass; returns the checkpoints signed. */
  poll(): Promise<SignedCheckpoint[]>
  /** Starts polling in the background until `stop()` or `signal` aborts. */
  start(signal?: AbortSignal): void
  /** Polls now instead of at the next interval (when started): e.g. a relayer saw a new message. */
  wake(): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** The hash of block `n`, or undefined when the chain has no such block (any more). */
export async function blockHashAt(client: Pick<SertnClient, 'getBlock'>, n: bigint): Promise<Hex | undefined> {
  if (n < 0n) return undefined
  try {
    return (await client.getBlock({ blockNumber: n })).hash
  } catch (err) {
    if (err instanceof BlockNotFoundError) return undefined
    throw err
  }
}

export function createLocalValidator(cfg: LocalValidatorConfig): LocalValidator {
  const merkleTreeHook = getAddress(cfg.merkleTreeHook)
  const address = getAddress(cfg.account.address)
  if (getAddress(cfg.store.validator) !== address)
    throw new HyperlaneAgentError(`checkpoint store belongs to ${cfg.store.validator}, not ${address}`)
  const confirmations = BigInt(cfg.confirmations ?? 1)
  const maxBlockRange = cfg.maxBlockRange ?? 1000n
  const keepSnapshots = cfg.snapshots ?? 16
  if (confirmations < 0n) throw new HyperlaneAgentError(`confirmations must be ≥ 0, got ${confirmations}`)
  const onError =
    cfg.onError ??
    ((e: unknown) =>
      componentLogger('relay', { messenger: 'hyperlane', agent: `validator ${address}` }).warn(e instanceof Error ? e.message : String(e)))
  let controller: AbortController | undefined
  let loop: PollLoop | undefined
  let polling: Promise<SignedCheckpoint[]> | undefined
  /** Whether this process checked a saved tree against the hook yet (states saved without a block hash). */
  let checkedSavedTree = false

  async function startBlock(): Promise<bigint> {
    if (cfg.fromBlock !== undefined) return cfg.fromBlock
    return cfg.client.readContract({ address: merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'deployedBlock' })
  }

  /**
   * The hook's tree (root and size) after block `n`; undefined when the node cannot say (no hook
   * there yet, or a node without that block's state): the check is then skipped, and reported.
   */
  async function hookTreeAt(n: bigint): Promise<{ root: Hex; count: number } | undefined> {
    try {
      const [root, count] = await Promise.all([
        cfg.client.readContract({ address: merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'root', blockNumber: n }),
        cfg.client.readContract({ address: merkleTreeHook, abi: MerkleTreeHook.abi, functionName: 'count', blockNumber: n }),
      ])
      return { root, count: Number(count) }
    } catch (err) {
      if (err instanceof BaseError && err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError)) throw err
      onError(
        new HyperlaneAgentError(`cannot read merkle tree hook ${merkleTreeHook} at block ${n}: not checking the tree there`, {
          cause: err,
        }),
      )
      return undefined
    }
  }

  /**
   * Goes back to the newest snapshot still on chain (none with `toStart`: the start block, empty
   * tree), deletes the checkpoints it has to re-sign and saves the state it resumes from.
   */
  async function rewind(state: ValidatorState | undefined, reason: string, toStart: boolean): Promise<ValidatorState> {
    const snapshots = toStart ? [] : (state?.snapshots ?? [])
    let back: ValidatorState | undefined
    for (let i = snapshots.length - 1; i >= 0 && !back; i--) {
      const s = snapshots[i]!
      if ((await blockHashAt(cfg.client, BigInt(s.block))) === s.blockHash)
        back = { nextBlock: (BigInt(s.block) + 1n).toString(), tree: s.tree, blockHash: s.blockHash, snapshots: snapshots.slice(0, i + 1) }
    }
    back ??= { nextBlock: (await startBlock()).toString(), tree: new IncrementalMerkleTree().toJSON(), snapshots: [] }
    await cfg.store.deleteFrom?.(back.tree.count)
    await cfg.store.saveState(back)
    cfg.onReorg?.({ reason, count: back.tree.count, fromBlock: BigInt(back.nextBlock) })
    return back
  }

  async function pollOnce(): Promise<SignedCheckpoint[]> {
    let state = await cfg.store.loadState()
    const last = state ? BigInt(state.nextBlock) - 1n : -1n
    const [latest, lastHash] = await Promise.all([
      cfg.client.getBlockNumber({ cacheTime: 0 }),
      state?.blockHash !== undefined ? blockHashAt(cfg.client, last) : undefined,
    ])
    if (state && last >= 0n) {
      if (state.blockHash !== undefined) {
        if (lastHash !== state.blockHash)
          state = await rewind(state, `origin block ${last} is ${lastHash ? `now ${lastHash}` : 'gone'} (was ${state.blockHash})`, false)
      } else if (!checkedSavedTree && (state.tree.count > 0 || last >= (await startBlock()))) {
        // A state saved without a block hash: check the tree against the hook once (an empty tree
        // need not be checked before the hook existed).
        const tree = new IncrementalMerkleTree(state.tree)
        const hook = await hookTreeAt(last)
        if (hook && (hook.count !== tree.count || hook.root !== tree.root()))
          state = await rewind(state, `saved tree (${tree.count} leaves) differs from the hook's at block ${last} (${hook.count})`, true)
      }
    }
    checkedSavedTree = true
    const tree = new IncrementalMerkleTree(state?.tree)
    const next = state ? BigInt(state.nextBlock) : await startBlock()
    const head = latest - confirmations
    if (head < next) return []
    const to = next + maxBlockRange - 1n < head ? next + maxBlockRange - 1n : head
    // The last block's hash is read first: a reorg after it shows at the next poll.
    const toHash = await blockHashAt(cfg.client, to)
    if (toHash === undefined) return [] // the chain got shorter meanwhile
    const logs = await cfg.client.getLogs({ address: merkleTreeHook, event: INSERTED, fromBlock: next, toBlock: to, strict: true })
    logs.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : Number(a.blockNumber - b.blockNumber)))
    /** Back to the start block, unless this poll scanned from there already. */
    const inconsistent = async (reason: string): Promise<SignedCheckpoint[]> => {
      if ((state?.tree.count ?? 0) === 0 && next === (await startBlock()))
        throw new MerkleTreeMismatchError(`merkle tree hook ${merkleTreeHook}: ${reason}`)
      await rewind(state, reason, true)
      return []
    }
    const unsigned: CheckpointWithId[] = []
    for (const log of logs) {
      const { messageId, index } = log.args
      if (index < tree.count) continue // already signed (a block re-scanned after a crash)
      if (index !== tree.count) return inconsistent(`expected insertion ${tree.count}, saw ${index} (missed logs, or a reorg)`)
      tree.insert(messageId)
      unsigned.push({ origin: cfg.domain, merkleTreeHook, root: tree.root(), index, messageId })
    }
    if (unsigned.length > 0) {
      const hook = await hookTreeAt(to)
      if (hook && (hook.count !== tree.count || hook.root !== tree.root())) {
        // Reorged while reading (the next poll rewinds), or a tree that is not the hook's.
        if ((await blockHashAt(cfg.client, to)) !== toHash) return []
        return inconsistent(`at block ${to} the hook has ${hook.count} leaves, root ${hook.root}; the mirror ${tree.count}, ${tree.root()}`)
      }
    }
    const signed: SignedCheckpoint[] = []
    for (const c of unsigned) {
      const checkpoint = await signCheckpoint(cfg.account, c)
      await cfg.store.put(checkpoint)
      signed.push(checkpoint)
      cfg.onSigned?.(checkpoint)
    }
    const snapshots: TreeSnapshot[] = state?.snapshots ?? []
    if (unsigned.length > 0) snapshots.push({ block: to.toString(), blockHash: toHash, tree: tree.toJSON() })
    await cfg.store.saveState({
      nextBlock: (to + 1n).toString(),
      tree: tree.toJSON(),
      blockHash: toHash,
      snapshots: snapshots.slice(-keepSnapshots),
    })
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
      if (controller) throw new HyperlaneAgentError('validator already started')
      controller = new AbortController()
      const sig = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal
      loop = runPollLoop(
        async () => {
          await validator.poll()
        },
        {
          intervalMs: cfg.pollingIntervalMs ?? 50,
          signal: sig,
          onError,
        },
      )
    },
    wake() {
      loop?.wake()
    },
    async stop() {
      controller?.abort()
      await loop?.done
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
