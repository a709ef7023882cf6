/**
 * Finding transactions by tags through a gateway's GraphQL endpoint (`/graphql`, as on arweave.net
 * and arlocal): `transactions(owners, tags, first, after)`, paged 100 at a time, at most `limit`.
 */
import { PluginError } from '../../../core/errors.ts'
import type { Gateway } from './http.ts'

/** One transaction as the search returns it. */
export type FoundTransaction = {
  id: string
  /** Data size in bytes. */
  size: number
  tags: { name: string; value: string }[]
}

export type FindTransactionsParameters = {
  plugin: string
  /** Transactions must carry every one of these tags (exact values). */
  tags: Readonly<Record<string, string>>
  /** Transactions must be signed by one of these addresses. */
  owners: readonly string[]
  /** At most this many results (the search stops there). */
  limit: number
}

/** The largest page the endpoint serves. */
const PAGE_SIZE = 100

const QUERY = `query SertnFind($owners: [String!], $tags: [TagFilter!], $first: Int, $after: String) {
  transactions(owners: $owners, tags: $tags, first: $first, after: $after) {
    pageInfo { hasNextPage }
    edges { cursor node { id data { size } tags { name value } } }
  }
}`

/** Transactions carrying all `tags`, signed by one of `owners`, newest first, at most `limit`. */
export async function findTransactions(gateway: Gateway, params: FindTransactionsParameters): Promise<FoundTransaction[]> {
  const tagFilter = Object.entries(params.tags).map(([name, value]) => ({ name, values: [value] }))
  const found: FoundTransaction[] = []
  const seen = new Set<string>()
  let after: string | undefined
  const maxPages = Math.ceil(params.limit / PAGE_SIZE) + 1
  for (let page = 0; page < maxPages && found.length < params.limit; page++) {
    const answer = await gateway.postJson(
      '/graphql',
      { query: QUERY, variables: { owners: params.owners, tags: tagFilter, first: PAGE_SIZE, after } },
      'search transactions by tags',
    )
    const connection = parseConnection(params.plugin, answer)
    for (const edge of connection.edges) {
      if (seen.has(edge.node.id) || !hasAllTags(edge.node.tags, params.tags)) continue
      seen.add(edge.node.id)
      found.push(edge.node)
      if (found.length >= params.limit) break
    }
    const last = connection.edges.at(-1)
    if (!connection.hasNextPage || last === undefined) break
    after = last.cursor
  }
  return found
}

/** Whether `tags` has every name/value of `wanted` (the endpoint's filter is trusted, then checked). */
function hasAllTags(tags: readonly { name: string; value: string }[], wanted: Readonly<Record<string, string>>): boolean {
  return Object.entries(wanted).every(([name, value]) => tags.some((t) => t.name === name && t.value === value))
}

type Connection = { hasNextPage: boolean; edges: { cursor: string; node: FoundTransaction }[] }

function parseConnection(plugin: string, answer: unknown): Connection {
  const bad = (why: string) =>
    new PluginError(plugin, `search transactions by tags: unexpected GraphQL answer (${why})`, {
      details: JSON.stringify(answer)?.slice(0, 500),
      retryable: true,
    })
  if (!isObject(answer)) throw bad('not an object')
  if (Array.isArray(answer.errors) && answer.errors.length > 0) {
    const messages = answer.errors.map((e) => (isObject(e) && typeof e.message === 'string' ? e.message : JSON.stringify(e)))
    throw new PluginError(plugin, 'search transactions by tags: GraphQL error', { details: messages.join('; '), retryable: false })
  }
  const txs = isObject(answer.data) ? answer.data.transactions : undefined
  if (!isObject(txs) || !Array.isArray(txs.edges)) throw bad('no data.transactions.edges')
  const hasNextPage = isObject(txs.pageInfo) && txs.pageInfo.hasNextPage === true
  const edges = txs.edges.map((edge): Connection['edges'][number] => {
    if (!isObject(edge) || typeof edge.cursor !== 'string' || !isObject(edge.node)) throw bad('malformed edge')
    const { id, data, tags } = edge.node
    if (typeof id !== 'string' || !Array.isArray(tags)) throw bad('malformed node')
    const size = Number(isObject(data) ? data.size : NaN)
    return {
      cursor: edge.cursor,
      node: {
        id,
        size: Number.isSafeInteger(size) && size >= 0 ? size : -1,
        tags: tags.filter(isObject).map((t) => ({ name: String(t.name), value: String(t.value) })),
      },
    }
  })
  return { hasNextPage, edges }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
