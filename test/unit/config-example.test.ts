/**
 * The committed example configuration holds every option of the configuration's schema, parses,
 * and every option is named in the README's operator guide or in "Operating a node": a new option
 * that is neither in the example nor documented fails here.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { configSchema, parseConfig } from '../../core/config.ts'

/** Every option's path in a zod schema (records as `*`); a union's object members' fields too. */
function optionPaths(schema: z.ZodType, prefix = ''): string[] {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
    case 'readonly':
      return optionPaths(def.innerType as z.ZodType, prefix)
    case 'pipe':
      return optionPaths(def.in as z.ZodType, prefix)
    case 'object': {
      const out: string[] = prefix ? [prefix] : []
      for (const [k, v] of Object.entries(def.shape as Record<string, z.ZodType>))
        out.push(...optionPaths(v, prefix ? `${prefix}.${k}` : k))
      return out
    }
    case 'record':
      return [prefix, ...optionPaths(def.valueType as z.ZodType, `${prefix}.*`)]
    case 'union': {
      const nested = (def.options as z.ZodType[]).flatMap((o) => optionPaths(o, prefix)).filter((p) => p !== prefix)
      return [prefix, ...nested]
    }
    default:
      return [prefix]
  }
}

/** The paths a JSON value holds (records' keys as `*` where the schema has a record). */
function valuePaths(value: unknown, schemaPaths: Set<string>, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [prefix]
  const out: string[] = prefix ? [prefix] : []
  for (const [k, v] of Object.entries(value)) {
    const star = prefix ? `${prefix}.*` : '*'
    const key = schemaPaths.has(prefix ? `${prefix}.${k}` : k) ? (prefix ? `${prefix}.${k}` : k) : star
    out.push(...valuePaths(v, schemaPaths, key))
  }
  return out
}

const example = JSON.parse(readFileSync('examples/sertn.config.example.json', 'utf8')) as Record<string, unknown>
const paths = [...new Set(optionPaths(configSchema))].sort()
// Plugin-checked sections (each messenger plugin checks its own; a plugin loaded from a module its
// `options`, which built-in plugins do not take) and local-development keys.
const moduleOptions = ['runtime', 'prover', 'storage', 'chains.*', 'chains.*.messenger'].flatMap((kind) => [
  `${kind}.options`,
  `${kind}.options.*`,
])
// A messenger section names a module only for a network that is not built in.
moduleOptions.push('chains.*.messenger.plugin')
const notInExample = new Set(['node.privateKey', 'relay.validatorKey', 'relay.relayerKey', 'prover.routing.pin.*', ...moduleOptions])

describe('the example configuration', () => {
  it('parses', () => {
    const c = parseConfig(example, 'examples/sertn.config.example.json')
    expect(Object.keys(c.chains)).toEqual(['sepolia', 'basesepolia'])
    expect(c.chains.sepolia!.fees.maxFeePerGasGwei).toBe(50)
  })

  it('holds every option of the schema', () => {
    const held = new Set(valuePaths(example, new Set(paths)))
    const missing = paths.filter((p) => !held.has(p) && !notInExample.has(p))
    expect(missing).toEqual([])
  })

  it('every option is named in the README', () => {
    const readme = readFileSync('README.md', 'utf8')
    const leaves = paths.filter((p) => !paths.some((q) => q.startsWith(`${p}.`)))
    const undocumented = leaves.filter((p) => {
      const name = p
        .split('.')
        .filter((s) => s !== '*')
        .pop()!
      return !readme.includes(`\`${name}\``) && !readme.includes(`${name}\``) && !readme.includes(`.${name}`)
    })
    expect(undocumented).toEqual([])
  })
})
