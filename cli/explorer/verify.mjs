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
    const batch = r.status?.batch
    const proofId = r.fulfilled?.artifacts.proof ?? r.status?.storage?.proof.id
    const outputId = r.fulfilled?.artifacts.output ?? r.status?.storage?.output.id

    // The circuit's files: the index (untrusted) names them; the registry's hashes decide, directly
    // (vk, settings, SRS) or, for a batch circuit, through the model's manifest, which the registry
    // pins and which pins each batch circuit's manifest, which pins its files.
    const index = JSON.parse(dec.decode(await fetchArtifact(model.artifacts.indexId, 'the model’s artifact index')))
    const checked = async (name, entry, hash, by) => {
      if (!entry) throw new Error(`the model’s artifact index lists no ${name}`)
      const bytes = await fetchArtifact(entry.id, name)
      const actual = await sha256(bytes)
      const expected = String(hash).replace(/^0x/, '').toLowerCase()
      step(
        actual === expected,
        `${name}: ${bytes.length} bytes, sha256 ${actual}${actual === expected ? ` = pinned by ${by}` : ` ≠ ${expected} pinned by ${by}`}`,
      )
      return bytes
    }
    let pins = { 'vk.key': model.artifacts.vkHash, 'settings.json': model.artifacts.settingsHash, srs: model.artifacts.srsHash }
    let prefix = ''
    let by = 'the registry'
    if (batch) {
      const manifest = JSON.parse(dec.decode(await checked('manifest.json', index?.manifest, model.artifacts.manifestHash, 'the registry')))
      const circuit = manifest.batches?.find((b) => b.size === batch.size)
      if (!circuit) throw new Error(`the model’s manifest has no batch circuit of ${batch.size} rows`)
      prefix = `${circuit.dir}/`
      const bm = JSON.parse(
        dec.decode(
          await checked(`${prefix}manifest.json`, index?.files?.[`${prefix}manifest.json`], circuit.manifestSha256, 'the model’s manifest'),
        ),
      )
      pins = { 'vk.key': bm.files?.['vk.key'], 'settings.json': bm.files?.['settings.json'], srs: bm.srs?.sha256 }
      by = `the batch circuit’s manifest`
    }
    const files = {}
    for (const [name, hash] of Object.entries(pins)) {
      if (!hash) throw new Error(`no hash pins ${prefix}${name}`)
      files[name] = await checked(`${prefix}${name}`, index?.files?.[`${prefix}${name}`], hash, by)
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
    const slots = instanceSlots(r, output, doc, model)
    step(true, `public instances: ${slots.length}, from ${slots.source}`)

    // The engine: shared WebAssembly memory needs a cross-origin isolated page (the explorer's headers).
    if (!self.crossOriginIsolated) throw new Error('this page is not cross-origin isolated, which the engine’s shared memory needs')
    const t0 = performance.now()
    await init()
    const proofJson = {
      protocol: null,
      instances: [slots.map((x) => feltToLeHex(x.felt))],
      proof: [...proof],
      transcript_type: 'EVM',
      split: null,
    }
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

    // The instances, decoded by the engine, next to the request's input and the delivered output
    // (in a batch, this request's row; the other rows are other requests' or padding).
    let mine = 0
    let matched = true
    slots.forEach((x, i) => {
      const hex = feltToLeHex(x.felt)
      const bytes = clamped(enc.encode(JSON.stringify(hex)))
      const decoded = dec.decode(feltToInt(bytes)).replace(/"/g, '')
      const real = feltToFloat(bytes, x.scale)
      const ok = x.expected !== undefined && toFelt(x.expected) === x.felt
      if (x.mine) {
        mine++
        if (!ok) matched = false
      }
      tbody.append(
        el(
          'tr',
          { 'data-match': x.mine ? String(ok) : 'other' },
          el('td', {}, i),
          el('td', {}, x.label),
          el('td', { class: 'mono', title: hex }, short(hex)),
          el('td', { class: 'mono' }, decoded),
          el('td', {}, String(real)),
          el('td', { class: 'mono' }, x.mine ? (x.expected ?? '—') : x.note),
          el('td', { class: x.mine ? (ok ? 'ok' : 'bad') : 'note' }, x.mine ? (ok ? '✓' : '✗') : ''),
        ),
      )
    })
    table.hidden = false
    const nIn = r.requested.input.length
    if (mine !== nIn + output.length) matched = false
    step(
      matched,
      matched
        ? `the instances${batch ? ' of this request’s row' : ''} equal the request’s input (${nIn}) and the delivered output (${output.length})`
        : `the instances${batch ? ' of this request’s row' : ''} do not equal the request’s input (${nIn}) and the delivered output (${output.length})`,
    )
    finish(engineOk)
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err))
    finish(false)
  }
}

/**
 * The proof's public instances, each with what it stands for: for a request proven alone, the
 * stored document's `instances` (the inputs, then the outputs); for a batch, its rows' inputs row by
 * row, then their outputs row by row, this request's row compared with its input and output.
 */
function instanceSlots(r, output, doc, model) {
  const input = r.requested.input
  if (Array.isArray(doc.rows)) {
    const row = doc.rows.findIndex((x) => x.key === r.key)
    if (row < 0) throw new Error('the stored batch document has no row for this request')
    const inLen = input.length
    const outLen = output.length
    const noteOf = (x) => (x.padding ? 'padding' : `request ${x.key}`)
    const slots = [
      ...doc.rows.flatMap((x, ri) =>
        x.input.map((v, c) => ({
          felt: toFelt(v),
          scale: model.inputScale,
          label: `row ${ri} input ${c}`,
          mine: ri === row,
          expected: ri === row ? input[c] : undefined,
          note: noteOf(x),
        })),
      ),
      ...doc.rows.flatMap((x, ri) =>
        x.output.map((v, c) => ({
          felt: toFelt(v),
          scale: model.outputScale,
          label: `row ${ri} output ${c}`,
          mine: ri === row,
          expected: ri === row ? output[c] : undefined,
          note: noteOf(x),
        })),
      ),
    ]
    if (doc.rows[row].input.length !== inLen || doc.rows[row].output.length !== outLen)
      throw new Error('the stored batch document’s row for this request has another shape than its input and output')
    return Object.assign(slots, {
      source: `the stored batch document ${doc.batch ?? ''} (${doc.rows.length} rows; this request’s is row ${row})`,
    })
  }
  const expected = [...input, ...output]
  const values = Array.isArray(doc.instances) ? doc.instances : expected
  const slots = values.map((v, i) => ({
    felt: toFelt(v),
    scale: i < input.length ? model.inputScale : model.outputScale,
    label: i < input.length ? `input ${i}` : `output ${i - input.length}`,
    mine: true,
    expected: expected[i],
  }))
  return Object.assign(slots, {
    source: Array.isArray(doc.instances) ? 'the stored output document' : 'the request and its output (the stored document has none)',
  })
}
