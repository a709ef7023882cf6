import { api, artifactLink, el, short, showErrors } from './dom.mjs'
import { verifyInBrowser } from './verify.mjs'

const HOP_LABELS = {
  hubRecord: 'spoke → hub (request recorded by the market)',
  submit: 'hub (result verified and sent)',
  spokeSettle: 'hub → spoke (delivered, verified, callback)',
  hubSettle: 'spoke → hub (receipt settled)',
}
/** The gateway's `CallbackStatus`, in its order. */
const CALLBACK = ['succeeded', 'failed (reverted or out of gas)', 'skipped (the requester has no code)']

const state = document.getElementById('state')
const key = new URLSearchParams(location.search).get('key') ?? ''
document.getElementById('title').textContent = key

function fact(dl, name, ...value) {
  dl.append(el('dt', {}, name), el('dd', { 'data-fact': name }, ...value))
}

/** Quantised values and, at the model's scale, the reals they stand for. */
function values(list, scale) {
  const text = `[${list.join(', ')}]`
  if (typeof scale !== 'number') return text
  return `${text} = [${list.map((v) => Number(v) / 2 ** scale).join(', ')}] at scale ${scale}`
}

function render(r) {
  const s = r.status
  const dl = document.getElementById('facts')
  fact(dl, 'chain', `${r.chain ?? '?'} (chain id ${r.chainId})`)
  fact(dl, 'gateway', r.gateway)
  fact(dl, 'request id', r.requestId)
  if (s) {
    fact(dl, 'stage', el('span', { class: `stage-${s.stage}` }, `${s.stage}${s.running ? ' (running)' : ''}`))
    fact(dl, 'started', new Date(s.startedAt).toISOString())
  }
  if (r.operator)
    fact(dl, 'operator', `${r.operator.name}, namespace ${r.operator.namespace}${r.operator.address ? `, node ${r.operator.address}` : ''}`)
  if (r.others?.length) fact(dl, 'other operators', r.others.map((o) => `${o.name}: ${o.stage}${o.running ? ' (running)' : ''}`).join('; '))
  if (s?.assignment)
    fact(
      dl,
      'assigned to',
      `${s.assignment.node ?? 'no node'}${s.assignment.reassigned ? ` after ${s.assignment.reassigned} reassignments` : ''}`,
    )
  const model = r.model ?? s?.model
  if (model) fact(dl, 'model', `${model.name} v${model.version}${r.model ? ` (${r.model.modelId})` : ''}`)
  if (r.requested) {
    fact(dl, 'requester', r.requested.requester)
    fact(dl, 'input', values(r.requested.input, r.model?.inputVisibility === 'public' ? r.model.inputScale : undefined))
    fact(dl, 'request tx', `${r.requested.transactionHash} (block ${r.requested.blockNumber})`)
    fact(dl, 'escrow (wei)', r.requested.escrow)
  }
  const output = r.fulfilled?.output ?? s?.output
  if (output) fact(dl, 'output', values(output, r.model?.outputVisibility === 'public' ? r.model.outputScale : undefined))
  if (r.fulfilled) {
    fact(dl, 'fulfilment tx', `${r.fulfilled.transactionHash} (block ${r.fulfilled.blockNumber})`)
    fact(dl, 'delivered by', r.fulfilled.node)
    fact(dl, 'callback', `${CALLBACK[r.fulfilled.callbackStatus] ?? r.fulfilled.callbackStatus}, ${r.fulfilled.callbackGasUsed} gas`)
  }
  if (s?.transactionHash) fact(dl, s.hub ? 'hub tx' : 'tx', s.transactionHash)
  if (r.gasUsed) fact(dl, 'gas (node transactions)', r.gasUsed)
  if (s?.hub)
    fact(
      dl,
      'hub',
      `chain ${s.hub.chainId}, market ${s.hub.market}${s.hub.marketRequestId ? `, market request #${s.hub.marketRequestId}: ${s.hub.status ?? '?'}` : ''}`,
    )
  if (s?.storage) {
    fact(dl, 'stored output', artifactLink(s.storage.output.id), ` ${s.storage.output.bytes} bytes, sha256 ${s.storage.output.sha256}`)
    fact(dl, 'stored proof', artifactLink(s.storage.proof.id), ` ${s.storage.proof.bytes} bytes, sha256 ${s.storage.proof.sha256}`)
  } else if (r.fulfilled) {
    fact(dl, 'stored output', artifactLink(r.fulfilled.artifacts.output))
    fact(dl, 'stored proof', artifactLink(r.fulfilled.artifacts.proof))
  }
  if (s?.batch) fact(dl, 'batch', `${s.batch.id}: ${s.batch.rows} of ${s.batch.size} rows`)
  if (s?.error) fact(dl, 'error', `${s.error.code}: ${s.error.reason}`)
  if (s) fact(dl, 'workflow', s.workflowId)

  const tbody = document.querySelector('#hops tbody')
  for (const [name, t] of Object.entries(s?.timings ?? {})) {
    tbody.append(
      el(
        'tr',
        { 'data-step': name },
        el('td', {}, HOP_LABELS[name] ?? name),
        el('td', {}, `${Math.round(t.ms)} ms`),
        el('td', {}, t.attempts),
        el('td', { class: 'mono', title: t.transactionHash ?? '' }, t.transactionHash ? short(t.transactionHash) : ''),
        el('td', {}, t.gasUsed ?? ''),
      ),
    )
  }
  document.getElementById('summary').hidden = false
}

try {
  const r = await api(`/api/request?key=${encodeURIComponent(key)}`)
  showErrors(r.errors)
  render(r)
  state.textContent = ''
  const button = document.getElementById('verify')
  button.addEventListener('click', async () => {
    button.disabled = true
    try {
      await verifyInBrowser(r)
    } finally {
      button.disabled = false
    }
  })
} catch (err) {
  state.textContent = `cannot read the request: ${err instanceof Error ? err.message : String(err)}`
}
