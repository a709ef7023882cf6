/**
 * A chaos run's record as JSON: bigints (block numbers, request ids, inputs) as decimal strings,
 * so that a record written beside a run's log can be read back and checked again. Reading
 * validates the shape and says which field is wrong.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { SertnError } from '../../core/errors.ts'
import type { ChaosChain, ChaosConsumer, ChaosFault, ChaosInvalid, ChaosRecord, ChaosRequest } from './record.ts'

/** A record (or its JSON) that does not have the shape of a {@link ChaosRecord}. */
export class ChaosRecordError extends SertnError {
  override name = 'ChaosRecordError'
}

/**
 * JSON with every bigint as its decimal string (for records and reports alike).
 *
 * @example
 * stringifyWithBigints({ id: 7n }) // '{"id":"7"}'
 */
export function stringifyWithBigints(value: unknown, space?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), space)
}

/** The record as JSON (bigints as decimal strings). */
export function chaosRecordToJson(record: ChaosRecord): string {
  return stringifyWithBigints(record, 2)
}

/**
 * A record from its JSON ({@link chaosRecordToJson}): bigints come back as bigints.
 *
 * @throws {ChaosRecordError} when the text is not JSON or a field is missing or of the wrong kind
 */
export function chaosRecordFromJson(text: string): ChaosRecord {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ChaosRecordError('the chaos record is not JSON', { cause: err })
  }
  return parseRecord(raw)
}

/** Writes `record` to `path` as JSON. */
export async function saveChaosRecord(path: string, record: ChaosRecord): Promise<void> {
  await writeFile(path, `${chaosRecordToJson(record)}\n`)
}

/**
 * Reads a record written by {@link saveChaosRecord}.
 *
 * @throws {ChaosRecordError} when the file is not a chaos record
 */
export async function loadChaosRecord(path: string): Promise<ChaosRecord> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ChaosRecordError(`cannot read the chaos record ${path}`, { cause: err })
  }
  try {
    return chaosRecordFromJson(text)
  } catch (err) {
    if (err instanceof ChaosRecordError) throw new ChaosRecordError(`${path}: ${err.shortMessage}`, { cause: err.cause ?? err })
    throw err
  }
}

// ─────────────────────────────── validation ───────────────────────────────

type Obj = Record<string, unknown>

const fail = (where: string, what: string): never => {
  throw new ChaosRecordError(`${where} ${what}`)
}
const obj = (v: unknown, where: string): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : fail(where, 'must be an object')
const arr = (v: unknown, where: string): unknown[] => (Array.isArray(v) ? v : fail(where, 'must be an array'))
const str = (v: unknown, where: string): string => (typeof v === 'string' ? v : fail(where, 'must be a string'))
const num = (v: unknown, where: string): number => (typeof v === 'number' && Number.isFinite(v) ? v : fail(where, 'must be a number'))
const hex = <T extends `0x${string}`>(v: unknown, where: string): T =>
  typeof v === 'string' && /^0x[0-9a-fA-F]*$/.test(v) ? (v as T) : fail(where, 'must be a 0x-prefixed hex string')
const big = (v: unknown, where: string): bigint => {
  if (typeof v === 'bigint') return v
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v)
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v)
  return fail(where, 'must be an integer (a decimal string)')
}
const opt = <T>(o: Obj, key: string, read: (v: unknown, where: string) => T, where: string): { [k: string]: T } =>
  o[key] === undefined ? {} : { [key]: read(o[key], `${where}.${key}`) }

function parseRecord(raw: unknown): ChaosRecord {
  const r = obj(raw, 'record')
  const hub = obj(r.hub, 'record.hub')
  const models = obj(r.models, 'record.models')
  return {
    seed: num(r.seed, 'record.seed'),
    startedAt: num(r.startedAt, 'record.startedAt'),
    ...(opt(r, 'lastFaultAt', num, 'record') as { lastFaultAt?: number }),
    chains: arr(r.chains, 'record.chains').map((c, i) => parseChain(c, `record.chains[${i}]`)),
    hub: { market: hex(hub.market, 'record.hub.market'), nodeRegistry: hex(hub.nodeRegistry, 'record.hub.nodeRegistry') },
    nodes: arr(r.nodes, 'record.nodes').map((a, i) => hex(a, `record.nodes[${i}]`)),
    models: Object.fromEntries(Object.entries(models).map(([id, dir]) => [hex(id, 'record.models key'), str(dir, `record.models[${id}]`)])),
    storageUrl: str(r.storageUrl, 'record.storageUrl'),
    consumers: arr(r.consumers, 'record.consumers').map((c, i) => parseConsumer(c, `record.consumers[${i}]`)),
    requests: arr(r.requests, 'record.requests').map((q, i) => parseRequest(q, `record.requests[${i}]`)),
    invalid: arr(r.invalid, 'record.invalid').map((q, i) => parseInvalid(q, `record.invalid[${i}]`)),
    faults: arr(r.faults, 'record.faults').map((f, i) => parseFault(f, `record.faults[${i}]`)),
  }
}

function parseChain(raw: unknown, where: string): ChaosChain {
  const c = obj(raw, where)
  const role = str(c.role, `${where}.role`)
  if (role !== 'hub' && role !== 'spoke') fail(`${where}.role`, "must be 'hub' or 'spoke'")
  const messenger = c.messenger === undefined ? undefined : str(c.messenger, `${where}.messenger`)
  if (messenger !== undefined && messenger !== 'hyperlane' && messenger !== 'layerzero')
    fail(`${where}.messenger`, "must be 'hyperlane' or 'layerzero'")
  return {
    name: str(c.name, `${where}.name`),
    chainId: num(c.chainId, `${where}.chainId`),
    rpcUrl: str(c.rpcUrl, `${where}.rpcUrl`),
    role: role as ChaosChain['role'],
    ...(messenger ? { messenger: messenger as 'hyperlane' | 'layerzero' } : {}),
    gateway: hex(c.gateway, `${where}.gateway`),
    registry: hex(c.registry, `${where}.registry`),
    fromBlock: big(c.fromBlock, `${where}.fromBlock`),
    confirmations: num(c.confirmations, `${where}.confirmations`),
  }
}

const BEHAVIOURS = ['recording', 'reverting', 'guzzler', 'refusing'] as const

function parseConsumer(raw: unknown, where: string): ChaosConsumer {
  const c = obj(raw, where)
  const behaviour = str(c.behaviour, `${where}.behaviour`)
  if (!(BEHAVIOURS as readonly string[]).includes(behaviour)) fail(`${where}.behaviour`, `must be one of ${BEHAVIOURS.join(', ')}`)
  return {
    chain: str(c.chain, `${where}.chain`),
    address: hex(c.address, `${where}.address`),
    behaviour: behaviour as ChaosConsumer['behaviour'],
  }
}

function parseRequest(raw: unknown, where: string): ChaosRequest {
  const q = obj(raw, where)
  if (q.expectExpiry !== undefined && typeof q.expectExpiry !== 'boolean') fail(`${where}.expectExpiry`, 'must be a boolean')
  return {
    chain: str(q.chain, `${where}.chain`),
    requestId: big(q.requestId, `${where}.requestId`),
    key: str(q.key, `${where}.key`),
    consumer: hex(q.consumer, `${where}.consumer`),
    modelId: hex(q.modelId, `${where}.modelId`),
    input: arr(q.input, `${where}.input`).map((x, i) => big(x, `${where}.input[${i}]`)),
    callbackGasLimit: num(q.callbackGasLimit, `${where}.callbackGasLimit`),
    txHash: hex(q.txHash, `${where}.txHash`),
    sentAt: num(q.sentAt, `${where}.sentAt`),
    ...(q.expectExpiry !== undefined ? { expectExpiry: q.expectExpiry as boolean } : {}),
  }
}

function parseInvalid(raw: unknown, where: string): ChaosInvalid {
  const q = obj(raw, where)
  return {
    chain: str(q.chain, `${where}.chain`),
    kind: str(q.kind, `${where}.kind`),
    expectedError: str(q.expectedError, `${where}.expectedError`),
    txHash: hex(q.txHash, `${where}.txHash`),
  }
}

function parseFault(raw: unknown, where: string): ChaosFault {
  const f = obj(raw, where)
  return {
    kind: str(f.kind, `${where}.kind`),
    target: str(f.target, `${where}.target`),
    at: num(f.at, `${where}.at`),
    ...(opt(f, 'until', num, where) as { until?: number }),
    ...(f.details === undefined ? {} : { details: obj(f.details, `${where}.details`) }),
  }
}
