// Building the pages from untrusted data: text goes in as text nodes only, never as HTML, and the
// only links made point at this explorer's own pages and endpoints, from values checked by shape.

/** An element with attributes (strings) and children (nodes, or strings as text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined && value !== null) node.setAttribute(name, String(value))
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

const REQUEST_KEY = /^req:\d+:0x[0-9a-f]{40}:\d+$/
const ARTIFACT_ID = /^[A-Za-z0-9_-]{43}$/

/** A link to a request's page (or the key as text when it is not a request key). */
export function requestLink(key) {
  return REQUEST_KEY.test(key) ? el('a', { href: `/request?key=${encodeURIComponent(key)}` }, key) : el('span', {}, String(key))
}

/** A link to a stored artifact through the explorer (or the id as text when it is not one). */
export function artifactLink(id) {
  return ARTIFACT_ID.test(id) ? el('a', { href: `/api/artifacts/${id}`, class: 'mono' }, id) : el('span', { class: 'mono' }, String(id))
}

/** A JSON document from the explorer's API; throws with its error message. */
export async function api(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } })
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`)
  return body
}

/** `0x1234…abcd` for long hex. */
export function short(hex) {
  const s = String(hex)
  return s.length > 18 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s
}

export function showErrors(list) {
  const ul = document.getElementById('errors')
  for (const e of list ?? []) ul.append(el('li', {}, e))
}
