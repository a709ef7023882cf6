/**
 * The one Solidity compiler of the project: solc-js (offline, pinned by package.json).
 * `contracts/build.ts` compiles Sertn's sources with {@link SOLC_SETTINGS}, and `sertn model build`
 * each model's verifying-key artifact with {@link VKA_SOLC_SETTINGS}.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { SertnError } from '../core/errors.ts'

const require = createRequire(import.meta.url)

/**
 * Sertn's contracts: through the IR pipeline, which keeps SpokeGateway well under the 24,576-byte
 * code limit (22.5 KB against 24.6 KB by the legacy pipeline) and costs less gas (a 16-row batch on
 * the hub gateway: 1.91M against 1.97M).
 */
export const SOLC_SETTINGS = {
  viaIR: true,
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
} as const

/**
 * A model's verifying-key artifact (data for the reusable verifier): the legacy pipeline, as every
 * committed circuit was built with, so that a rebuild gives the same code hash registries pin.
 */
export const VKA_SOLC_SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
} as const

/**
 * Settings for {@link compileSolidity}: one of the project's, optionally with import remappings
 * (`prefix=target`, as Foundry passes them to solc: a remapped import is read from `importRoot`).
 */
export type SolcSettings = (typeof SOLC_SETTINGS | typeof VKA_SOLC_SETTINGS) & { remappings?: readonly string[] }

export type CompiledContract = {
  abi: unknown[]
  /** 0x-prefixed creation bytecode. */
  bytecode: `0x${string}`
  /** 0x-prefixed runtime bytecode. */
  deployedBytecode: `0x${string}`
}

type SolcOutput = {
  errors?: { severity: 'error' | 'warning' | 'info'; formattedMessage: string; sourceLocation?: { file: string } }[]
  contracts?: Record<
    string,
    Record<string, { abi: unknown[]; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>
  >
}

/** Solidity did not compile. */
export class SolidityCompileError extends SertnError {
  override name = 'SolidityCompileError'
}

type Solc = { version(): string; compile(input: string, opts?: unknown): string }
let solc: Solc | undefined
/** solc-js, loaded once (it takes a second). */
export function solcCompiler(): Solc {
  solc ??= require('solc') as Solc
  return solc
}

export type CompileResult = {
  /** source file → contract name → artifact */
  contracts: Record<string, Record<string, CompiledContract>>
  warnings: { file: string | undefined; message: string }[]
}

/** An import path that names a package (`@scope/pkg/…`, `pkg/…`), not a relative or absolute file. */
function isPackageImport(path: string): boolean {
  return /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*\/.+\.sol$/i.test(path) && !path.split('/').includes('..')
}

/** `node_modules/<path>` in `dir` or the nearest folder above it that has one. */
function findInNodeModules(dir: string, path: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const full = join(d, 'node_modules', path)
    if (existsSync(full)) return full
    if (dirname(d) === d) return undefined
  }
}

/**
 * Compiles `sources` (path → content); imports are read from `importRoot` when given, and package
 * imports it does not have (`@openzeppelin/…`, `@layerzerolabs/…`, `solidity-bytes-utils/…`) from
 * the `node_modules` folder nearest to it. Contracts of package files are compiled but not returned:
 * only the project's own sources (and project files they import) give artifacts.
 * @throws {SolidityCompileError} with every error message when compilation fails
 */
export function compileSolidity(
  sources: Record<string, { content: string }>,
  importRoot?: string,
  settings: SolcSettings = SOLC_SETTINGS,
): CompileResult {
  const fromPackages = new Set<string>()
  const output = JSON.parse(
    solcCompiler().compile(JSON.stringify({ language: 'Solidity', sources, settings }), {
      import: (path: string) => {
        if (!importRoot) return { error: `not found: ${path}` }
        const full = join(importRoot, path)
        if (existsSync(full)) return { contents: readFileSync(full, 'utf8') }
        const pkg = isPackageImport(path) ? findInNodeModules(importRoot, path) : undefined
        if (!pkg) return { error: `not found: ${path}` }
        fromPackages.add(path)
        return { contents: readFileSync(pkg, 'utf8') }
      },
    }),
  ) as SolcOutput
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0)
    throw new SolidityCompileError(`compilation failed with ${errors.length} error(s)`, {
      details: errors.map((e) => e.formattedMessage).join('\n'),
    })
  const contracts: CompileResult['contracts'] = {}
  for (const [file, byName] of Object.entries(output.contracts ?? {})) {
    if (fromPackages.has(file)) continue
    contracts[file] = {}
    for (const [name, c] of Object.entries(byName))
      contracts[file][name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}`, deployedBytecode: `0x${c.evm.deployedBytecode.object}` }
  }
  const warnings = (output.errors ?? [])
    .filter((e) => e.severity === 'warning')
    .map((e) => ({ file: e.sourceLocation?.file, message: e.formattedMessage }))
  return { contracts, warnings }
}
