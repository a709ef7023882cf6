/**
 * Injects the planned faults (test/chaos/plan.ts planFaults) into a running chaos network, one
 * after another, and records each with its times (test/chaos/record.ts ChaosFault):
 *
 * - kill-prover / kill-inference / kill-chain-io: SIGKILL to one operator's worker process group of
 *   that role while requests are in flight (it waits, at most a minute, for a pending request), a
 *   new process for the role after the planned delay;
 * - restart-temporal: the Temporal dev server stopped and started again on its port and database;
 * - cut-rpc: one chain's node RPC proxy closed (connections cut, new ones refused) for the duration;
 * - restart-agents: one messenger's agents stopped as a crash would, started again from their
 *   stores after the duration;
 * - stall-operator: SIGSTOP to every worker of one operator for longer than the hub's reassignment
 *   window, then SIGCONT;
 * - reorg: one chain's newest blocks, deeper than its confirmations and deep enough (up to 8, anvil's limit) to
 *   take the load's last request and the node's or the agents' newest transaction with them,
 *   replaced by new ones (`anvil_reorg`): every transaction in them, the load's, the node's and the
 *   agents', is mined again in the new blocks, each at its old height (as a reorg's transactions
 *   come back from the mempool), so that a request the node saw moves to another block of another
 *   hash; the load on that chain is held meanwhile, and the fault checks that every request kept
 *   its id;
 * - drop-tx: a reorg of the hub (as above) that leaves out the newest transaction of an operator's
 *   node account, gone for good (as a pool that evicts it leaves it); the fault then waits, at most
 *   two minutes, until that node has used the nonce again (its send queue sends the transaction
 *   again), and counts a surprise if it has not;
 * - expire: a few requests sent on one chain while its gateway's timeout is one second (the owner's
 *   `setConfig`, put back at once; the chain's load is held meanwhile): each is meant to expire and
 *   be refunded by a keeper.
 */
import { parseEventLogs, type Hex } from 'viem'
import { ANVIL_MAX_REORG_DEPTH, anvilReorg, anvilRpc, withAnvilMiningPaused } from '../../chains/anvil.ts'
import { InferenceGateway } from '../../contracts/artifacts/index.ts'
import type { LoadSender } from './load.ts'
import type { ChaosNetwork } from './network.ts'
import type { PlannedFault } from './plan.ts'
import type { ChaosFault } from './record.ts'

export type FaultRunnerOptions = {
  net: ChaosNetwork
  plan: readonly PlannedFault[]
  /** The load (a reorg holds its chain's sends). */
  sender: LoadSender
  /** How many requests are in flight (sent, no outcome yet). */
  pending: () => number
  /**
   * Whether `operator`'s worker of `role` has work under way right now (from Temporal's visibility:
   * a batch or a proof for a prover, a request at inference for an inference worker, any running
   * workflow for chain-io); absent, or false for a minute: any request in flight will do.
   */
  busy?: (operator: number, role: string) => Promise<boolean>
  /** Whether the load has sent everything: a kill then waits for work only while requests are in flight. */
  loadDone?: () => boolean
  signal: AbortSignal
  log: (line: string) => void
}

/**
 * The deepest a reorg goes to take the load's last request, or the node's or agents' last
 * transaction, with it (blocks): as deep as anvil reorganises without losing state.
 */
const MAX_REORG_DEPTH = ANVIL_MAX_REORG_DEPTH

/** Runs the faults; `active` names the one under way (for progress lines). */
export class FaultRunner {
  readonly faults: ChaosFault[] = []
  active: string | undefined

  constructor(private readonly o: FaultRunnerOptions) {}

  /** Runs the whole schedule (stops early when the signal aborts). */
  async run(): Promise<void> {
    for (const f of this.o.plan) {
      if (!(await this.sleep(f.gapMs))) return
      await this.inject(f)
    }
    this.active = undefined
  }

  private async sleep(ms: number): Promise<boolean> {
    if (this.o.signal.aborted) return false
    await new Promise<void>((resolve) => {
      const onAbort = () => {
        clearTimeout(t)
        resolve()
      }
      const t = setTimeout(() => {
        this.o.signal.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      this.o.signal.addEventListener('abort', onAbort, { once: true })
    })
    return !this.o.signal.aborted
  }

  private async inject(f: PlannedFault): Promise<void> {
    const { net, log } = this.o
    const describe = `${f.kind}${f.operator !== undefined ? ` operator ${f.operator + 1}` : ''}${f.chain ? ` ${f.chain}` : ''}`
    switch (f.kind) {
      case 'kill-prover':
      case 'kill-inference':
      case 'kill-chain-io': {
        const role = f.kind.slice('kill-'.length)
        const w = net.workersOf(f.operator!).find((x) => x.role === role)!
        // Mid-activity: once the worker has work under way (at most a minute's wait), else while
        // some request is in flight (at most another minute).
        let busy = false
        const idle = () => this.o.pending() === 0 && (this.o.loadDone?.() ?? false)
        for (let i = 0; i < 300 && !busy && !idle() && !this.o.signal.aborted && this.o.busy; i++) {
          busy = await this.o.busy(f.operator!, role).catch(() => false)
          if (!busy) await this.sleep(200)
        }
        for (let i = 0; i < 600 && !busy && !idle() && this.o.pending() === 0 && !this.o.signal.aborted; i++) await this.sleep(100)
        const pending = this.o.pending()
        this.active = describe
        const at = Date.now()
        const pid = w.proc.pid
        await net.kill(w)
        log(
          `fault: SIGKILL ${w.proc.name} (pid ${pid}) ${busy ? 'while busy' : 'not seen busy'}, ${pending} request(s) in flight; restarting in ${f.durationMs} ms`,
        )
        await this.sleep(f.durationMs)
        net.restart(w)
        const until = Date.now()
        this.faults.push({
          kind: f.kind,
          target: w.proc.name,
          at,
          until,
          details: { signal: 'SIGKILL', pid, newPid: w.proc.pid, pending, busy },
        })
        break
      }
      case 'restart-temporal': {
        this.active = describe
        const at = Date.now()
        const services = net.local.services!
        const before = services.temporal.process.pid
        await services.restartTemporal()
        const until = Date.now()
        log(`fault: restarted the Temporal dev server (pid ${before} → ${services.temporal.process.pid}) in ${until - at} ms`)
        this.faults.push({
          kind: f.kind,
          target: `temporal ${services.temporal.address}`,
          at,
          until,
          details: { pending: this.o.pending() },
        })
        break
      }
      case 'cut-rpc': {
        const proxy = net.proxies[f.chain!]!
        this.active = describe
        const at = Date.now()
        await proxy.close()
        log(`fault: cut the node's RPC to ${f.chain} (${proxy.url}) for ${f.durationMs} ms`)
        await this.sleep(f.durationMs)
        await proxy.open()
        const until = Date.now()
        log(`fault: the node's RPC to ${f.chain} is back`)
        this.faults.push({ kind: f.kind, target: f.chain!, at, until, details: { proxy: proxy.url, mode: 'drop' } })
        break
      }
      case 'restart-agents': {
        const messenger = f.messenger!
        this.active = describe
        const at = Date.now()
        await net.local.stopAgents(messenger)
        log(`fault: stopped the ${messenger} agents for ${f.durationMs} ms`)
        await this.sleep(f.durationMs)
        await net.local.startAgents(messenger)
        const until = Date.now()
        log(`fault: the ${messenger} agents are running again`)
        this.faults.push({ kind: f.kind, target: `${messenger} agents`, at, until })
        break
      }
      case 'expire': {
        const name = f.chain!
        const owner = net.local.chains[name]!.owner
        const { gateway } = this.o.sender.chain(name)
        this.active = describe
        const at = Date.now()
        const { release } = await this.o.sender.hold(name)
        const sent: string[] = []
        try {
          const config = await owner.readContract({ address: gateway, abi: InferenceGateway.abi, functionName: 'config' })
          const setRequestTimeout = async (requestTimeout: number) => {
            const hash = await owner.writeContract({
              address: gateway,
              abi: InferenceGateway.abi,
              functionName: 'setConfig',
              args: [{ ...config, requestTimeout }],
            })
            const r = await owner.waitForTransactionReceipt({ hash, pollingInterval: 100 })
            if (r.status !== 'success') throw new Error(`setConfig(requestTimeout ${requestTimeout}) reverted on ${name} (${hash})`)
          }
          await setRequestTimeout(1)
          try {
            for (const [i, q] of f.requests!.entries()) {
              const r = await this.o.sender
                .sendHeld({ index: -1000 - i, at: 0, chain: name, burst: false, kind: 'valid', ...q }, { expectExpiry: true })
                .catch((err: unknown) => void log(`fault: an expiring request on ${name} was not sent: ${String(err)}`))
              if (r) sent.push(r.key)
            }
          } finally {
            await setRequestTimeout(config.requestTimeout)
          }
        } finally {
          release()
        }
        const until = Date.now()
        log(`fault: sent ${sent.length} request(s) on ${name} with a 1 s timeout, to be refunded after their deadline`)
        this.faults.push({ kind: f.kind, target: name, at, until, details: { requests: sent, requestTimeout: 1 } })
        break
      }
      case 'stall-operator': {
        this.active = describe
        const at = Date.now()
        net.signalOperator(f.operator!, 'SIGSTOP')
        log(`fault: SIGSTOP to operator ${f.operator! + 1}'s workers for ${f.durationMs} ms`)
        await this.sleep(f.durationMs)
        net.signalOperator(f.operator!, 'SIGCONT')
        const until = Date.now()
        log(`fault: SIGCONT to operator ${f.operator! + 1}'s workers`)
        this.faults.push({ kind: f.kind, target: `operator ${f.operator! + 1}`, at, until, details: { signal: 'SIGSTOP' } })
        break
      }
      case 'reorg':
      case 'drop-tx':
        await this.reorganise(f, describe)
        break
    }
    this.active = undefined
  }

  /**
   * A `reorg`, or a `drop-tx` (a reorg that does not mine the newest transaction of an operator's
   * node account again, and then waits for that node to use the nonce again).
   */
  private async reorganise(f: PlannedFault, describe: string): Promise<void> {
    const { net, log } = this.o
    const chain = net.local.chains[f.chain!]!
    const drop = f.kind === 'drop-tx'
    const nodes = new Set(chain.nodes.map((n) => n.account.address.toLowerCase()))
    let depth = f.depth!
    this.active = describe
    const at = Date.now()
    const { lastBlock, release } = await this.o.sender.hold(f.chain!)
    let releaseMiner = () => {}
    try {
      const load = this.o.sender.chain(f.chain!)
      const user = load.user.account.address.toLowerCase()
      // Only the run's blocks: the first replaced one at or after the run's first block.
      for (let i = 0; i < 100; i++) {
        if ((await chain.owner.getBlockNumber({ cacheTime: 0 })) - BigInt(depth) + 1n >= load.fromBlock) break
        await new Promise((r) => setTimeout(r, 200))
      }
      // The run's newest blocks below `head`, as deep as a reorg may go: from this one up.
      const floorOf = (head: bigint) => {
        const floor = head - BigInt(MAX_REORG_DEPTH) + 1n
        return floor > load.fromBlock ? floor : load.fromBlock
      }
      // A drop needs a node transaction among the newest blocks: at most a minute's wait for one
      // (each block read once).
      let scanned = 0n
      let lastNodeTx = -1n
      for (let i = 0; drop && i < 300 && !this.o.signal.aborted; i++) {
        const head = await chain.owner.getBlockNumber({ cacheTime: 0 })
        for (let b = scanned > floorOf(head) ? scanned + 1n : floorOf(head); b <= head; b++) {
          const block = await chain.owner.getBlock({ blockNumber: b, includeTransactions: true })
          if (block.transactions.some((tx) => nodes.has(tx.from.toLowerCase()))) lastNodeTx = b
          scanned = b
        }
        if (lastNodeTx >= floorOf(head)) break
        await new Promise((r) => setTimeout(r, 200))
      }
      // The chain mines nothing while its head is read and replaced (see withAnvilMiningPaused).
      releaseMiner = await net.holdMiner()
      const { head, replay, dropped } = await withAnvilMiningPaused(
        chain.owner,
        async () => {
          const head = await chain.owner.getBlockNumber({ cacheTime: 0 })
          // The newest blocks of the run, as deep as a reorg may go.
          const floor = floorOf(head)
          const recent = new Map<bigint, Awaited<ReturnType<typeof chain.owner.getBlock<true>>>>()
          for (let b = head; b >= floor; b--) recent.set(b, await chain.owner.getBlock({ blockNumber: b, includeTransactions: true }))
          const newest = (pick: (from: string) => boolean) => {
            for (const b of recent.values()) {
              const tx = b.transactions.findLast((t) => pick(t.from.toLowerCase()))
              if (tx) return { block: b.number, tx }
            }
            return undefined
          }
          // Deep enough to take the load's last request with it (when it is recent), so that a
          // request the node may have seen moves to a new block; and the newest transaction of the
          // node or the agents (of an operator's node, for a drop), so that something they sent moves too.
          if (lastBlock !== undefined && lastBlock >= floor) depth = Math.max(depth, Number(head - lastBlock + 1n))
          const theirs = newest(drop ? (from) => nodes.has(from) : (from) => from !== user)
          if (theirs) depth = Math.max(depth, Number(head - theirs.block + 1n))
          const first = head - BigInt(depth) + 1n
          // Every transaction in the replaced blocks, in order, each with its block's offset: a
          // reorg's transactions go back to the mempool and are mined again (anvil_reorg drops
          // those it is not given). A drop leaves out the node's newest one (no later one of its
          // account is in these blocks, so nothing replayed waits behind it).
          const dropped = drop && theirs ? { hash: theirs.tx.hash, from: theirs.tx.from, nonce: theirs.tx.nonce } : undefined
          const replay: { hash: Hex; raw: Hex; offset: number; load: boolean }[] = []
          for (let b = first; b <= head; b++) {
            const block = recent.get(b) ?? (await chain.owner.getBlock({ blockNumber: b, includeTransactions: true }))
            for (const tx of block.transactions) {
              if (tx.hash === dropped?.hash) continue
              const raw = await anvilRpc<Hex>(chain.owner, 'eth_getRawTransactionByHash', [tx.hash])
              replay.push({ hash: tx.hash, raw, offset: Number(b - first), load: tx.from.toLowerCase() === user })
            }
          }
          await anvilReorg(
            chain.owner,
            depth,
            replay.map((r) => [r.raw, r.offset] as const),
          )
          return { head, replay, dropped }
        },
        chain.spec.blockTime !== undefined ? { blockTime: chain.spec.blockTime } : {},
      )
      releaseMiner()
      releaseMiner = () => {}
      release()
      // Every transaction must be mined again, and each request keep its id (the record names it by id).
      let moved = 0
      for (const r of replay) {
        const receipt = await chain.owner.getTransactionReceipt({ hash: r.hash }).catch(() => undefined)
        if (!receipt) {
          this.o.sender.surprises.push(
            `${f.kind} of ${f.chain}: ${r.load ? "the load's" : "the node's or agents'"} transaction ${r.hash} was not mined again`,
          )
          continue
        }
        if (!r.load) continue
        const q = this.o.sender.requests.find((x) => x.txHash === r.hash)
        if (!q) continue // an invalid request: reverted again
        const [ev] = parseEventLogs({ abi: InferenceGateway.abi, logs: receipt.logs, eventName: 'InferenceRequested' })
        if (ev?.args.requestId !== q.requestId)
          this.o.sender.surprises.push(
            `${f.kind} of ${f.chain}: request ${q.key} came back as request ${String(ev?.args.requestId)} (tx ${r.hash})`,
          )
        else moved++
      }
      const loads = replay.filter((r) => r.load).length
      const what = `${depth} blocks deep at head ${head}: ${replay.length} transaction(s) mined again in new blocks, ${loads} of them the load's (${moved} request(s) moved)`
      if (drop && !dropped)
        this.o.sender.surprises.push(`drop-tx of ${f.chain}: no node transaction in its newest ${MAX_REORG_DEPTH} blocks to drop`)
      // A drop: the node must use the dropped transaction's nonce again (its send queue sends it
      // again, or fills it), or its later transactions on this chain wait behind it for ever.
      let filledMs: number | undefined
      if (dropped) {
        log(
          `fault: reorganised ${f.chain} ${what}; dropped node ${dropped.from}'s transaction ${dropped.hash} (nonce ${dropped.nonce}) for good`,
        )
        const since = Date.now()
        for (let i = 0; i < 600 && !this.o.signal.aborted; i++) {
          if ((await chain.owner.getTransactionCount({ address: dropped.from, blockTag: 'latest' })) > dropped.nonce) {
            filledMs = Date.now() - since
            break
          }
          await new Promise((r) => setTimeout(r, 200))
        }
        if (filledMs === undefined && !this.o.signal.aborted)
          this.o.sender.surprises.push(
            `drop-tx of ${f.chain}: node ${dropped.from}'s nonce ${dropped.nonce} still free 120 s after its transaction was dropped (its later transactions wait behind it)`,
          )
        else if (filledMs !== undefined)
          log(`fault: node ${dropped.from} used nonce ${dropped.nonce} again after ${(filledMs / 1000).toFixed(1)} s`)
      } else log(`fault: reorganised ${f.chain} ${what}`)
      const until = Date.now()
      this.faults.push({
        kind: f.kind,
        target: f.chain!,
        at,
        until,
        details: {
          depth,
          head: head.toString(),
          replayed: replay.length,
          loadReplayed: loads,
          requestsMoved: moved,
          ...(dropped ? { dropped: dropped.hash, droppedFrom: dropped.from, droppedNonce: dropped.nonce } : {}),
          ...(filledMs !== undefined ? { nonceFilledMs: filledMs } : {}),
        },
      })
    } finally {
      releaseMiner()
      release()
    }
  }
}
