/**
 * The local stack's contracts: reused from `deployment.json` when the (persisted) chain still has
 * them and they were built from the same code, deployed afresh otherwise.
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import type { Address } from 'viem'
import { confirm, deployContract, deployCore, readManifest, registerModel } from '../chains/evm/deploy.ts'
import type { SertnClient } from '../chains/evm/clients.ts'
import { ExampleClassifier, Halo2VerifierReusable, InferenceGateway, ModelRegistry, vkas } from '../contracts/artifacts/index.ts'
import { modelIdOf } from '../core/models.ts'
import { SertnError } from '../core/errors.ts'
import { readJson, shown, type Deployment } from './common.ts'

const hash = (...parts: string[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p).update('\n')
  return h.digest('hex').slice(0, 32)
}

/** The core contracts' code: the verifier, the registry, the gateway. */
export const coreFingerprint = () => hash(Halo2VerifierReusable.bytecode, ModelRegistry.bytecode, InferenceGateway.bytecode)
/** A model's circuit: its VKA and its manifest. */
export const modelFingerprint = (name: string) => hash((vkas as Record<string, { bytecode: string }>)[name]?.bytecode ?? '', readManifest(name).artifactsHash)
export const dappFingerprint = () => hash(ExampleClassifier.bytecode)

export type EnsureDeploymentResult = {
  deployment: Deployment
  /** What was done: nothing (`reused`), everything (`deployed`, with the reason), or some of it. */
  action: 'reused' | 'deployed' | 'updated'
  notes: string[]
}

const hasCode = async (client: SertnClient, address: Address) => ((await client.getCode({ address })) ?? '0x').length > 2

/**
 * Reuses the deployment recorded in `file` when its contracts are on the chain and were built from
 * the current code; otherwise deploys the verifier, the registry and the gateway (with `node`
 * authorised). Then registers any of `models` not registered yet (a changed circuit means a new
 * deployment) and deploys an ExampleClassifier for `dappModel` unless there is a current one.
 */
export async function ensureDeployment(
  file: string,
  clients: { owner: SertnClient; node: SertnClient; user: SertnClient },
  opts: { models: readonly string[]; dappModel: string },
): Promise<EnsureDeploymentResult> {
  const { owner, node, user } = clients
  const chainId = owner.chain.id
  const fingerprint = coreFingerprint()
  const recorded = readJson<Deployment>(file)
  const notes: string[] = []
  let reason: string | undefined
  if (!recorded) reason = 'no deployment recorded yet'
  else if (recorded.chainId !== chainId) reason = `the recorded one is on chain ${recorded.chainId}, this chain is ${chainId}`
  else if (recorded.fingerprint !== fingerprint) reason = 'the contracts changed since they were deployed'
  else if (opts.models.some((m) => recorded.models[m] && recorded.models[m]!.fingerprint !== modelFingerprint(m)))
    reason = 'a model circuit changed since it was registered'
  else {
    const missing: string[] = []
    for (const [what, address] of [['verifier', recorded.verifier], ['registry', recorded.registry], ['gateway', recorded.gateway]] as const)
      if (!(await hasCode(owner, address))) missing.push(what)
    if (missing.length) reason = `no code at the recorded ${missing.join(', ')} (the chain is new)`
  }

  let deployment: Deployment
  if (reason === undefined) {
    deployment = { ...recorded!, dapps: { ...recorded!.dapps } }
    const authorised = await owner.readContract({ address: deployment.gateway, abi: InferenceGateway.abi, functionName: 'isNode', args: [node.account.address] })
    if (!authorised) {
      await confirm(owner, await owner.writeContract({ address: deployment.gateway, abi: InferenceGateway.abi, functionName: 'setNode', args: [node.account.address, true] }))
      notes.push(`authorised node ${node.account.address}`)
    }
  } else {
    const deployedAtBlock = Number(await owner.getBlockNumber()) + 1
    const core = await deployCore(owner, { nodes: [node.account.address] })
    deployment = {
      chainId,
      fingerprint,
      deployedAtBlock,
      owner: owner.account.address,
      node: node.account.address,
      ...core,
      models: {},
      dapps: {},
      dappFingerprint: dappFingerprint(),
    }
    notes.push(reason)
  }

  for (const name of opts.models) {
    const modelId = modelIdOf(name)
    const exists = await owner.readContract({ address: deployment.registry, abi: ModelRegistry.abi, functionName: 'exists', args: [modelId] })
    if (exists && deployment.models[name]) continue
    if (exists) throw new SertnError(`model ${name} is registered on ${deployment.registry} but not recorded in ${shown(file)}`, { details: 'Run `sertn start --reset` to start the local stack afresh.' })
    const m = await registerModel(owner, { registry: deployment.registry, verifier: deployment.verifier, name, allowInsecureSrs: true /* a local anvil */ })
    deployment.models[name] = { modelId: m.modelId, vka: m.vka, fingerprint: modelFingerprint(name) }
    if (reason === undefined) notes.push(`registered ${name}`)
  }
  saveDeployment(file, deployment)
  const before = deployment.dapps[opts.dappModel]
  await ensureDapp(file, deployment, user, opts.dappModel)
  if (reason === undefined && deployment.dapps[opts.dappModel] !== before) notes.push(`deployed an ExampleClassifier for ${opts.dappModel}`)
  return { deployment, action: reason !== undefined ? 'deployed' : notes.length ? 'updated' : 'reused', notes }
}

/**
 * The ExampleClassifier for `model` (deployed by `user` when absent or built from older code),
 * recorded in `file`. The model must be registered on the deployment's registry.
 */
export async function ensureDapp(file: string, deployment: Deployment, user: SertnClient, model: string): Promise<Address> {
  if (deployment.dappFingerprint !== dappFingerprint()) {
    deployment.dapps = {}
    deployment.dappFingerprint = dappFingerprint()
  }
  const known = deployment.dapps[model]
  if (known && (await hasCode(user, known))) return known
  const modelId = modelIdOf(model)
  const exists = await user.readContract({ address: deployment.registry, abi: ModelRegistry.abi, functionName: 'exists', args: [modelId] })
  if (!exists) {
    throw new SertnError(`model ${model} is not registered on the local stack's registry`, {
      details: `Registered: ${Object.keys(deployment.models).join(', ') || '(none)'}. Restart the stack with \`sertn start --model ${model}\` to register it.`,
    })
  }
  const dapp = await deployContract(user, ExampleClassifier, [deployment.gateway, modelId])
  deployment.dapps[model] = dapp
  saveDeployment(file, deployment)
  return dapp
}

export function saveDeployment(file: string, deployment: Deployment): void {
  try {
    writeFileSync(file, `${JSON.stringify(deployment, null, 2)}\n`)
  } catch (err) {
    throw new SertnError(`cannot write ${shown(file)}: ${err instanceof Error ? err.message : String(err)}`)
  }
}
