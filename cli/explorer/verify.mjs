// In-browser verification of a request's result with the EZKL WASM engine (its web build, served
// under /engine/). Everything is fetched through the explorer's artifacts endpoint from storage;
// nothing fetched is trusted: the circuit's files must hash to what the model registry pins, the
// engine must accept the proof against its public instances, and those instances must equal the
// request's input (from its chain's event) and the delivered output.
import init, { feltToFloat, feltToInt, verify } from '/engine/ezkl.js'
import { el, short } from './dom.mjs'

/** The BN254 scalar field's modulus: public instances are elements of it (a negative v is R − |v|). */
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n
const ARTIFACT_ID = /^[A-Za-z0-9_-]{43}$/
const enc = new TextEncoder()
const dec = new TextDecoder()

const toFelt = (v) => ((BigInt(v) % R) + R) % R
/** A field element as ezkl writes it in proof files: 32 bytes little-endian, hex without 0x. */
const feltToLeHex = (f) => {
  let hex = ''
  for (let i = 0n; i < 32n; i++)
    hex += Number((f >> (8n * i)) & 0xffn)
      .toString(16)
      .padStart(2, '0')
  return hex
}

async function fetchArtifact(id, what) {
  if (!ARTIFACT_ID.test(id ?? '')) throw new Error(`${what}: not a storage id: ${String(id)}`)
  const res = await fetch(`/api/artifacts/${id}`)
  if (!res.ok) {
    const body = await res.json().catch(() => ({}))
    throw new Error(`${what} (${id}): ${body.error ?? `HTTP ${res.status}`}`)
  }
  return new Uint8Array(await res.arrayBuffer())
}

async function sha256(bytes) {
  if (!crypto.subtle) throw new Error('this page is not a secure context (open it on 127.0.0.1 or over HTTPS): it cannot hash')
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('')
}

const clamped = (bytes) => new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Verifies request `r` (the explorer's /api/request document) in this page and renders each step. */
export async function verifyInBrowser(r) {
  const verdict = document.getElementById('verdict')
  const steps = document.getElementById('steps')
  const table = document.getElementById('instances')
  const tbody = table.querySelector('tbody')
  steps.replaceChildren()
  tbody.replaceChildren()
  table.hidden = true
  verdict.removeAttribute('data-verdict')
  verdict.textContent = 'verifying…'
  const problems = []
  const step = (ok, text) => {
    steps.append(el('li', { class: ok ? 'ok' : 'bad', 'data-ok': String(ok) }, `${ok ? '✓' : '✗'} ${text}`))
    if (!ok) problems.push(text)
  }
  const finish = (engineOk) => {
    const valid = engineOk === true && problems.length === 0
    verdict.dataset.verdict = valid ? 'valid' : 'invalid'
    verdict.textContent = valid
      ? 'valid: the proof verifies in this browser, with public instances equal to the request’s input and the delivered output'
      : `invalid: ${problems.join('; ')}`
  }
  try {
    const model = r.model
    if (!model) throw new Error('the model’s registration could not be read from the request’s chain (see the errors below)')
    if (!r.requested) throw new Error('the request’s InferenceRequested event could not be read from its chain')
    const output = r.fulfilled?.output ?? r.status?.output
    if (!output) throw new Error('no output was delivered for this request (yet)')
    if (r.status?.batch)
      throw new Error(`proven in batch ${r.status.batch.id} of ${r.status.batch.size} rows: this page verifies requests proven alone`)
    const proofId = r.fulfilled?.artifacts.proof ?? r.status?.storage?.proof.id
    const outputId = r.fulfilled?.artifacts.output ?? r.status?.storage?.output.id

    // The circuit's files: the index (untrusted) names them; the registry's hashes decide.
    const index = JSON.parse(dec.decode(await fetchArtifact(model.artifacts.indexId, 'the model’s artifact index')))
    const pinned = { 'vk.key': model.artifacts.vkHash, 'settings.json': model.artifacts.settingsHash, srs: model.artifacts.srsHash }
    const files = {}
    for (const [name, hash] of Object.entries(pinned)) {
      const entry = index?.files?.[name]
      if (!entry) throw new Error(`the model’s artifact index lists no ${name}`)
      const bytes = await fetchArtifact(entry.id, name)
      const actual = await sha256(bytes)
      const expected = String(hash).replace(/^0x/, '').toLowerCase()
      step(
        actual === expected,
        `${name}: ${bytes.length} bytes, sha256 ${actual}${actual === expected ? ' = pinned by the registry' : ` ≠ ${expected} pinned by the registry`}`,
      )
      files[name] = bytes
    }

    // The proof and the stored output document (its public instances).
    const proof = await fetchArtifact(proofId, 'the proof')
    const proofHash = await sha256(proof)
    const recorded = r.status?.storage?.proof.sha256
    step(
      true,
      `proof ${proofId}: ${proof.length} bytes, sha256 ${proofHash}${recorded ? (recorded === proofHash ? ' (as the node recorded it)' : ` (the node recorded ${recorded})`) : ''}`,
    )
    const doc = JSON.parse(dec.decode(await fetchArtifact(outputId, 'the stored output')))
    const expected = [...r.requested.input, ...output]
    const instances = Array.isArray(doc.instances) ? doc.instances.map(toFelt) : expected.map(toFelt)
    step(
      true,
      `public instances: ${instances.length}, from ${Array.isArray(doc.instances) ? `the stored output document ${outputId}` : 'the request and its output (the stored document has none)'}`,
    )

    // The engine: shared WebAssembly memory needs a cross-origin isolated page (the explorer's headers).
    if (!self.crossOriginIsolated) throw new Error('this page is not cross-origin isolated, which the engine’s shared memory needs')
    const t0 = performance.now()
    await init()
    const proofJson = { protocol: null, instances: [instances.map(feltToLeHex)], proof: [...proof], transcript_type: 'EVM', split: null }
    let engineOk = false
    let reason = ''
    try {
      engineOk = verify(
        clamped(enc.encode(JSON.stringify(proofJson))),
        clamped(files['vk.key']),
        clamped(files['settings.json']),
        clamped(files.srs),
      )
      if (!engineOk) reason = 'the engine returned false'
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err)
    }
    const engineLine = `the EZKL engine ${engineOk ? 'accepts' : 'rejects'} the proof (${Math.round(performance.now() - t0)} ms)${reason ? `: ${reason}` : ''}`
    steps.append(
      el(
        'li',
        { id: 'engine-result', class: engineOk ? 'ok' : 'bad', 'data-ok': String(engineOk) },
        `${engineOk ? '✓' : '✗'} ${engineLine}`,
      ),
    )
    if (!engineOk) problems.push(`the EZKL engine rejects the proof${reason ? ` (${reason})` : ''}`)

    // The instances, decoded by the engine, next to the request's input and the delivered output.
    const nIn = r.requested.input.length
    let matched = instances.length === expected.length
    instances.forEach((f, i) => {
      const hex = feltToLeHex(f)
      const bytes = clamped(enc.encode(JSON.stringify(hex)))
      const decoded = dec.decode(feltToInt(bytes)).replace(/"/g, '')
      const real = feltToFloat(bytes, i < nIn ? model.inputScale : model.outputScale)
      const want = expected[i]
      const ok = want !== undefined && toFelt(want) === f
      if (!ok) matched = false
      tbody.append(
        el(
          'tr',
          { 'data-match': String(ok) },
          el('td', {}, i),
          el('td', {}, i < nIn ? `input ${i}` : `output ${i - nIn}`),
          el('td', { class: 'mono', title: hex }, short(hex)),
          el('td', { class: 'mono' }, decoded),
          el('td', {}, String(real)),
          el('td', { class: 'mono' }, want ?? '—'),
          el('td', { class: ok ? 'ok' : 'bad' }, ok ? '✓' : '✗'),
        ),
      )
    })
    table.hidden = false
    step(
      matched,
      matched
        ? `the instances equal the request’s input (${nIn}) and the delivered output (${output.length})`
        : `the instances (${instances.length}) do not equal the request’s input (${nIn}) and the delivered output (${output.length})`,
    )
    finish(engineOk)
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err))
    finish(false)
  }
}
