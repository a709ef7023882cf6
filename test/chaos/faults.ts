/**
 * Injects the planned faults (test/chaos/plan.ts planFaults) into a running chaos network, one
 * after another, and records each with its times (test/chaos/record.ts ChaosFault):
 *
 * - kill-prover / kill-inference / kill-chain-io: SIGKILL to one operator's worker process group of
 *   that role while requests are in flight (it waits, at most a minute, for a pending request), a
 *   new process for the role after the planned delay;
 * - restart-temporal: the Temporal dev server stopped and started again on its port and database;
 * - cut-rpc: one chain's node RPC proxy closed (connections cut, new ones refused) for the duration;
 * - restart-agents: the messengers' agents stopped as a crash would, started again from their
 *   stores after the duration;
 * - stall-operator: SIGSTOP to every worker of one operator for longer than the hub's reassignment
 *   window, then SIGCONT;
 * - reorg: one chain's newest blocks, deeper than its confirmations, replaced by empty ones
 *   (`anvil_reorg`); the load on that chain is held meanwhile and the replaced blocks all come after
 *   its last request, so that what they drop is the node's and the agents' transactions.
 */
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
        this.active = describe
        const at = Date.now()
        await net.local.stopAgents()
        log(`fault: stopped the messengers' agents for ${f.durationMs} ms`)
        await this.sleep(f.durationMs)
        await net.local.startAgents()
        const until = Date.now()
        log(`fault: the messengers' agents are running again`)
        this.faults.push({ kind: f.kind, target: 'agents (hyperlane, layerzero)', at, until })
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
      case 'reorg': {
        const chain = net.local.chains[f.chain!]!
        const depth = f.depth!
        this.active = describe
        const at = Date.now()
        const { lastBlock, release } = await this.o.sender.hold(f.chain!)
        try {
          // The miner adds a block a second: wait until `depth` blocks lie on top of the load's last one.
          for (let i = 0; i < 300; i++) {
            const head = await chain.owner.getBlockNumber({ cacheTime: 0 })
            if (lastBlock === undefined || head - lastBlock >= BigInt(depth)) break
            await new Promise((r) => setTimeout(r, 200))
          }
          const head = await chain.owner.getBlockNumber({ cacheTime: 0 })
          let dropped = 0
          for (let b = head - BigInt(depth) + 1n; b <= head; b++)
            dropped += (await chain.owner.getBlock({ blockNumber: b })).transactions.length
          await chain.owner.request({ method: 'anvil_reorg' as never, params: [depth, []] as never })
          const until = Date.now()
          log(`fault: reorganised ${f.chain} ${depth} blocks deep at head ${head} (${dropped} transaction(s) dropped)`)
          this.faults.push({
            kind: f.kind,
            target: f.chain!,
            at,
            until,
            details: { depth, head: head.toString(), droppedTransactions: dropped },
          })
        } finally {
          release()
        }
        break
      }
    }
    this.active = undefined
  }
}
