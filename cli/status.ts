/**
 * `sertn status <request-key|requestId>`: a request's workflow status from Temporal (its newest
 * workflow, and the others when a reorg reused the request id); for a spoke
 * chain's request, its hops between the spoke and the hub too. With several node operators (each
 * its own Temporal namespace, a workflow per request in each) it shows the workflow of the operator
 * the hub assigned the request to (the one whose assignment is its own; until then the first found
 * that did not stand aside), and how the others' stand.
 */
import { WorkflowNotFoundError } from '@temporalio/client'
import { parseRequestKey, requestKey, type RequestKey } from '../core/types.ts'
import { SertnError } from '../core/errors.ts'
import { getRequestStatus, type RequestStatus } from '../workflows/client.ts'
import { connectOperators, DEFAULT_REQUEST_CHAIN, openStack, UsageError, type StackOperator } from './common.ts'
import { HOP_LABELS, hopNotes, HOPS, operatorLabel } from './follow.ts'
import { dim, fmtMs, out } from './ui.ts'

export async function statusCommand(opts: {
  target: string | undefined
  json: boolean
  chain?: string | undefined
  dataDir?: string | undefined
  config?: string | undefined
}): Promise<number> {
  if (!opts.target) throw new UsageError('sertn status needs a request key (req:<chainId>:<gateway>:<id>) or a request id')
  const stack = openStack(opts)
  let key: RequestKey
  if (/^\d+$/.test(opts.target)) {
    const names = Object.keys(stack.config.chains)
    const name = opts.chain ?? (names.includes(DEFAULT_REQUEST_CHAIN) ? DEFAULT_REQUEST_CHAIN : names[0]!)
    const chain = stack.config.chains[name]
    if (!chain) throw new UsageError(`--chain ${name}: no such chain in ${stack.configFile} (chains: ${names.join(', ')})`)
    key = requestKey(chain.chainId, chain.gateway as `0x${string}`, opts.target)
  } else {
    try {
      parseRequestKey(opts.target)
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err), {
        details: 'Pass a request key (as `sertn request` prints it) or a request id on the configured gateway.',
      })
    }
    key = opts.target as RequestKey
  }
  const temporal = await connectOperators(stack)
  try {
    const found: { operator: StackOperator; status: Status }[] = []
    let failed: SertnError | undefined
    for (const operator of temporal.operators) {
      try {
        found.push({ operator, status: await getRequestStatus(operator.client, key) })
      } catch (err) {
        if (err instanceof WorkflowNotFoundError || (err as { code?: unknown }).code === 5) continue
        // Reported unless another operator's workflow is found.
        failed ??= new SertnError(
          `cannot read the status of ${key} (${operator.name}, namespace ${operator.namespace}): ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        )
      }
    }
    if (found.length === 0 && failed) throw failed
    // The assigned operator's workflow; until the hub assigns it, the first that did not stand aside.
    const shown = found.find((f) => f.status.assignment?.mine) ?? found.find((f) => f.status.stage !== 'settled-elsewhere') ?? found[0]
    if (!shown) {
      const where = temporal.operators.map((o) => o.namespace).join(', ')
      if (opts.json) console.log(JSON.stringify({ key, found: false }))
      else
        console.error(
          `no workflow for ${key} on ${stack.config.temporal.address} (namespace${temporal.operators.length > 1 ? 's' : ''} ${where}): ` +
            `no node has seen this request (yet).\n` +
            dim('It is served once its block has the configured confirmations; check the request id and the gateway.'),
        )
      return 1
    }
    const others = found.filter((f) => f !== shown)
    const several = temporal.operators.length > 1
    if (opts.json) {
      const who = (o: StackOperator) => ({ name: o.name, namespace: o.namespace, ...(o.address ? { address: o.address } : {}) })
      console.log(
        JSON.stringify(
          {
            found: true,
            ...shown.status,
            ...(several
              ? {
                  operator: who(shown.operator),
                  others: others.map((f) => ({ ...who(f.operator), stage: f.status.stage, running: f.status.running })),
                }
              : {}),
          },
          null,
          2,
        ),
      )
      return 0
    }
    printStatus(shown.status, stack.info?.temporalUi, shown.operator, several ? others : undefined)
    return 0
  } finally {
    await temporal.close()
  }
}

type Status = RequestStatus

function printStatus(
  status: Status,
  ui: string | undefined,
  operator: StackOperator,
  /** With several operators: the others' workflows for the request. */
  others: { operator: StackOperator; status: Status }[] | undefined,
): void {
  const namespace = operator.namespace
  const { bold, dim, green, red } = out
  const stageColour =
    status.stage === 'fulfilled' ? green : status.stage === 'failed' || status.stage === 'settled-elsewhere' ? red : (s: string) => s
  const lines = [
    `${bold('request')}   ${status.key}`,
    `${bold('stage')}     ${stageColour(status.stage)}${status.running ? ' (running)' : ''}`,
    `${bold('started')}   ${new Date(status.startedAt).toISOString()} ${dim(`(${fmtMs(Date.now() - status.startedAt)} ago)`)}`,
  ]
  if (others) {
    const a = status.assignment
    const role = a?.mine
      ? 'assigned the request'
      : a
        ? a.node
          ? `stood aside: assigned to ${operatorLabel(undefined, a.node)}`
          : 'no job'
        : 'not assigned yet'
    lines.push(
      `${bold('operator')}  ${operator.name}${operator.address ? ` (${operator.address})` : ''}, namespace ${namespace}: ${role}` +
        (a?.reassigned ? ` ${dim(`(after ${a.reassigned} reassignment${a.reassigned === 1 ? '' : 's'})`)}` : '') +
        (others.length
          ? dim(` · ${others.map((o) => `${o.operator.name} ${o.status.running ? o.status.stage : `ended ${o.status.stage}`}`).join(', ')}`)
          : ''),
    )
  } else if (status.assignment) {
    const a = status.assignment
    lines.push(
      `${bold('assigned')}  ${a.mine ? 'this node' : a.node ? operatorLabel(undefined, a.node) : 'no node (no pool serves the model)'}`,
    )
  }
  // A spoke's request: its hops in their own section, the other stages under timings.
  const hops = status.hub ? HOPS.filter((h) => status.timings[h]) : []
  const timings = Object.entries(status.timings).filter(([name]) => !(hops as string[]).includes(name))
  if (timings.length) {
    lines.push(`${bold('timings')}`)
    for (const [name, t] of timings) {
      const work = t.workMs !== undefined && Math.abs(t.workMs - t.ms) >= 5 ? dim(`  work ${fmtMs(t.workMs)}`) : ''
      lines.push(`  ${name.padEnd(10)} ${fmtMs(t.ms).padStart(9)}  attempts ${t.attempts}${work}`)
    }
  }
  if (status.hub) {
    const h = status.hub
    lines.push(
      `${bold('hub')}       chain ${h.chainId}, market ${h.market}` +
        (h.marketRequestId
          ? `, market request #${h.marketRequestId}: ${h.status ?? '?'}${h.settlement ? ` (${h.settlement})` : ''}`
          : dim(', not recorded there yet')),
    )
  }
  if (hops.length) {
    lines.push(`${bold('hops')}`)
    for (const hop of hops) {
      const t = status.timings[hop]!
      const label = hop === 'spokeSettle' && status.error ? HOP_LABELS.failureDelivered : HOP_LABELS[hop]
      lines.push(
        `  ${label.padEnd(30)} ${fmtMs(t.ms).padStart(9)}  ${dim([...hopNotes(hop, t, status), `attempts ${t.attempts}`].join(' · '))}`,
      )
    }
  }
  const proverView = status.batch?.prover ?? status.prover
  if (proverView)
    lines.push(
      `${bold('proven on')} ${proverView.queue} (${proverView.hardware}: ${proverView.reason}${
        proverView.peakMemoryBytes !== undefined ? `; peak ${Math.ceil(proverView.peakMemoryBytes / 2 ** 20)} MiB` : ''
      })${status.batch ? dim(` · batch ${status.batch.id}, ${status.batch.rows} of ${status.batch.size} rows`) : ''}`,
    )
  const hb = status.heartbeat as { stage?: string; elapsedMs?: number } | undefined
  if (status.running && hb?.stage)
    lines.push(`${bold('prover')}    last heartbeat: ${hb.stage}${hb.elapsedMs !== undefined ? `, ${fmtMs(hb.elapsedMs)}` : ''}`)
  if (status.output) lines.push(`${bold('output')}    [${status.output.join(', ')}]`)
  if (status.storage) {
    lines.push(
      `${bold('storage')}   output ${status.storage.output.storage}:${status.storage.output.id} (${status.storage.output.bytes} bytes, sha256 ${status.storage.output.sha256.slice(0, 16)}…)`,
    )
    lines.push(
      `          proof  ${status.storage.proof.storage}:${status.storage.proof.id} (${status.storage.proof.bytes} bytes, sha256 ${status.storage.proof.sha256.slice(0, 16)}…)`,
    )
  }
  // A spoke's request: the hub's transaction (the result or the failure sent), and the spoke's delivery.
  const txLabel = status.hub ? 'hub tx' : 'tx'
  if (status.transactionHash) lines.push(`${bold(txLabel)}${' '.repeat(10 - txLabel.length)}${status.transactionHash}`)
  const delivered = status.hub && status.timings.spokeSettle?.transactionHash
  if (delivered) lines.push(`${bold('spoke tx')}  ${delivered}  ${dim('(the hub message processed on the spoke)')}`)
  // A fan-out request's copies: where each went, and how its chain took it.
  for (const [i, c] of (status.copies ?? []).entries())
    lines.push(
      `${bold(i === 0 ? 'copies' : '')}${' '.repeat(i === 0 ? 4 : 10)}chain ${c.chainId} → ${c.receiver}: ${c.status}` +
        dim(
          [
            c.callback ? ` · callback ${c.callback}` : '',
            c.error ? ` · error ${c.error}` : '',
            c.transactionHash ? ` · tx ${c.transactionHash}` : '',
          ].join(''),
        ),
    )
  if (status.error) lines.push(`${bold('error')}     ${red(status.error.code)}: ${status.error.reason}`)
  lines.push(
    `${bold('workflow')}  ${ui ? `${ui}/namespaces/${namespace}/workflows/${encodeURIComponent(status.workflowId)}` : status.workflowId}`,
  )
  if (status.others?.length)
    lines.push(
      `${bold('others')}    ${status.others.length} older workflow${status.others.length === 1 ? '' : 's'} of this key ` +
        dim(`(started for events a reorg dropped; the request id was reused): ${status.others.join(', ')}`),
    )
  console.log(lines.join('\n'))
}
