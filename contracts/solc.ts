/**
 * The one Solidity compiler of the project: solc-js (offline, pinned by package.json) with the
 * settings every contract is compiled with. `contracts/build.ts` compiles Sertn's sources with it,
 * and `sertn model build` each model's verifying-key artifact.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { SertnError } from '../core/errors.ts'

const require = createRequire(import.meta.url)

export const SOLC_SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
} as const

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

/**
 * Compiles `sources` (path → content); imports are read from `importRoot` when given.
 * @throws {SolidityCompileError} with every error message when compilation fails
 */
export function compileSolidity(sources: Record<string, { content: string }>, importRoot?: string): CompileResult {
  const output = JSON.parse(
    solcCompiler().compile(JSON.stringify({ language: 'Solidity', sources, settings: SOLC_SETTINGS }), {
      import: (path: string) => {
        const full = importRoot ? join(importRoot, path) : path
        return importRoot && existsSync(full) ? { contents: readFileSync(full, 'utf8') } : { error: `not found: ${path}` }
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
    contracts[file] = {}
    for (const [name, c] of Object.entries(byName))
      contracts[file][name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}`, deployedBytecode: `0x${c.evm.deployedBytecode.object}` }
  }
  const warnings = (output.errors ?? [])
    .filter((e) => e.severity === 'warning')
    .map((e) => ({ file: e.sourceLocation?.file, message: e.formattedMessage }))
  return { contracts, warnings }
}
