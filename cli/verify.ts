/**
 * `sertn verify <request key>`: re-checks a delivered result off-chain with the client's
 * verifyResult: the proof from storage, verified with the WASM engine against the model's
 * registered circuit (its files checked against the registry's hashes), and its public instances
 * against the request's input and the delivered output. Prints each check; exit 0 when valid, 1 when not.
 */
import { createPublicClient } from 'viem'
import { evmChainOf } from '../chains/evm/chain.ts'
import { sertnTransport } from '../chains/evm/clients.ts'
import { verifyResult, VERIFY_PARTS, type VerifyResultReturnType } from '../client/index.ts'
import { parseRequestKey } from '../core/types.ts'
import { openStack, UsageError } from './common.ts'
import { bold, dim, green, red } from './ui.ts'

export async function verifyCommand(opts: {
  key: string | undefined
  json: boolean
  /** An Arweave gateway (default: the configuration's storage.arweave.url). */
  storage?: string | undefined
  dataDir?: string | undefined
  config?: string | undefined
}): Promise<number> {
  if (!opts.key) throw new UsageError('sertn verify needs a request key (req:<chainId>:<gateway>:<id>), as `sertn request` prints it')
  let chainId: number
  try {
    chainId = parseRequestKey(opts.key).chainId
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
  const stack = openStack(opts)
  const entry = Object.entries(stack.config.chains).find(([, c]) => c.chainId === chainId)
  if (!entry)
    throw new UsageError(`no chain with id ${chainId} in ${stack.configFile} (chains: ${Object.keys(stack.config.chains).join(', ')})`)
  const [name, chain] = entry
  const client = createPublicClient({
    chain: evmChainOf(chain.chainId, `sertn-${name}`, chain.rpcUrl),
    transport: sertnTransport([chain.rpcUrl, ...(chain.fallbackRpcUrls ?? [])], name),
  })
  const gatewayUrl = opts.storage ?? stack.config.storage.arweave.url
  const v = await verifyResult(client, { key: opts.key, storage: { gatewayUrl } })
  if (opts.json) console.log(JSON.stringify(jsonOf(v), null, 2))
  else print(v, name, gatewayUrl)
  return v.valid ? 0 : 1
}

function print(v: VerifyResultReturnType, chain: string, storage: string): void {
  const f = v.request.fulfilled!
  console.log(`${bold(v.request.key)}  ${dim(`(${chain}, model ${v.model.name} v${v.model.version})`)}`)
  console.log(`  fulfilled  tx ${f.transactionHash} by node ${f.node}, callback ${f.callbackStatus.toLowerCase()}`)
  console.log(`  storage    proof ${v.proofId}, output ${f.storage.outputId ?? '(none)'}  ${dim(`from ${storage}`)}`)
  console.log(`  input      request [${v.request.input.join(', ')}]`)
  console.log(`  output     delivered [${f.output.join(', ')}]`)
  for (const part of VERIFY_PARTS) {
    const c = v.checks[part]
    console.log(`  ${c.ok ? green('✓') : red('✗')} ${part.padEnd(9)} ${c.detail}`)
  }
  console.log(v.valid ? green(bold('valid')) : red(bold(`invalid: ${v.failed}: ${v.reason}`)))
}

function jsonOf(v: VerifyResultReturnType) {
  const f = v.request.fulfilled!
  return {
    key: v.request.key,
    valid: v.valid,
    ...(v.failed ? { failed: v.failed, reason: v.reason } : {}),
    checks: v.checks,
    model: { modelId: v.model.modelId, name: v.model.name, version: v.model.version, artifactIndexId: v.model.artifactIndexId },
    proofId: v.proofId,
    outputId: f.storage.outputId ?? null,
    transactionHash: f.transactionHash,
    node: f.node,
    callbackStatus: f.callbackStatus,
    input: v.request.input.map(String),
    output: f.output.map(String),
    instances: { input: v.instances.input.map(String), output: v.instances.output.map(String) },
  }
}
