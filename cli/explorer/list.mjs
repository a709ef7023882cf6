import { api, artifactLink, el, requestLink, short, showErrors } from './dom.mjs'

const state = document.getElementById('state')
try {
  const limit = new URLSearchParams(location.search).get('limit') ?? ''
  const { requests, errors } = await api(`/api/requests${/^\d+$/.test(limit) ? `?limit=${limit}` : ''}`)
  showErrors(errors)
  const tbody = document.querySelector('#requests tbody')
  for (const r of requests) {
    tbody.append(
      el(
        'tr',
        { 'data-key': r.key },
        el('td', { class: 'mono' }, requestLink(r.key)),
        el('td', {}, r.chain ?? r.chainId ?? ''),
        el('td', {}, r.model ?? ''),
        el('td', { class: `stage stage-${r.stage ?? 'unknown'}` }, r.stage ? `${r.stage}${r.running ? ' (running)' : ''}` : 'no workflow'),
        el('td', {}, r.hops ?? ''),
        el('td', { class: 'mono', title: r.transactionHash ?? '' }, r.transactionHash ? short(r.transactionHash) : ''),
        el('td', {}, r.gasUsed ?? ''),
        el('td', {}, r.storage ? [artifactLink(r.storage.output), el('br'), artifactLink(r.storage.proof)] : ''),
        el('td', { title: r.operator?.address ?? '' }, r.operator ? `${r.operator.name} (${r.operator.namespace})` : ''),
      ),
    )
  }
  document.getElementById('requests').hidden = false
  state.textContent = requests.length ? `${requests.length} request${requests.length === 1 ? '' : 's'}` : 'no requests yet'
} catch (err) {
  state.textContent = `cannot list the requests: ${err instanceof Error ? err.message : String(err)}`
}
