/**
 * `sertn model …`: what a model creator runs.
 *
 *   sertn model build <network.onnx> --input <samples.json> [--name] [--tolerance] [--target] …
 *   sertn model register <dir> [--name] [--compute-units N] [--data-dir | --config]
 *   sertn model upgrade <dir> [--name] [--owner] [--data-dir | --config]
 *   sertn model show <model> [--owner] [--data-dir | --config]
 *
 * The build prints each step as it finishes (the sizing search's candidates among them), then a
 * report: the circuit's size, key and proof sizes, timings (native and WASM), the verify gas on
 * anvil and the output error against onnxruntime on every sample. `--json` prints the report as
 * JSON on stdout instead. The report is also written to `<out>/.build/report.json`.
 *
 * A model's fee per inference is not the creator's to choose: on each chain it is the model's compute
 * units times the price per compute unit of its pool, set by that registry's owner. `register` and
 * `show` print it per chain.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative, resolve } from 'node:path'
import type { BuildEvent, BuildModelParameters, BuildReport, Candidate, Target } from '../circuits/pipeline/build.ts'
import type { Address, Hex } from 'viem'
import type { Visibility } from '../core/manifest.ts'
import type { StoragePlugin } from '../core/plugins.ts'
import { Progress, type Step } from './progress.ts'
import { dim, fmtMs, green, out, red } from './ui.ts'
import { UsageError } from './common.ts'

export type ModelBuildCommandParameters = {
  onnx: string
  samples: string
  name?: string
  outDir?: string
  description?: string
  tolerance?: number
  target?: Target
  visibility?: { input?: Visibility; output?: Visibility }
  inputBound?: number
  variables?: Record<string, number>
  /** Calibrate at every corner of a row's input box too (batch circuits; see `BuildModelParameters.rowCorners`). */
  rowCorners?: boolean
  maxLogrows?: number
  /** Where locally generated SRS files are kept (default circuits/srs). */
  srsDir?: string
  /** Narrows or widens the sizing search. */
  search?: BuildModelParameters['search']
  wasm?: boolean
  json?: boolean
  /**
   * Batch sizes to build beside the model (`--batch 16,64`): the graph widened to each (every
   * input's and output's first dimension, 1 in the model), in `<out>/batch-<N>/`, listed in the
   * model's manifest (see circuits/pipeline/batches.ts).
   */
  batches?: number[]
  /**
   * `--batch auto`: also the sizes that fill their logrows, from the model's own up to
   * `maxLogrows`, of at most `maxRows` rows per proof (`--batch-max`; see
   * circuits/pipeline/batches.ts `batchLadder`).
   */
  batchAuto?: { maxRows?: number }
  /** Print the report (default); batch circuits built for a model print theirs in its. */
  print?: boolean
}

/** The model name a file suggests: its folder for `…/<name>/network.onnx`, its stem otherwise. */
export function defaultModelName(onnx: string): string {
  const stem = basename(onnx).replace(/\.onnx$/i, '')
  return stem === 'network' || stem === 'model' ? basename(dirname(resolve(onnx))) : stem
}

/** `--var batch_size=1,seq=16` → { batch_size: 1, seq: 16 }. */
export function parseVariables(text: string | undefined): Record<string, number> {
  if (!text) return {}
  const vars: Record<string, number> = {}
  for (const part of text.split(',')) {
    const m = /^\s*([A-Za-z_][\w.]*)\s*=\s*(\d+)\s*$/.exec(part)
    if (!m) throw new UsageError(`--var takes name=size pairs separated by commas, like batch_size=1; got "${part}"`)
    vars[m[1]!] = Number(m[2])
  }
  return vars
}

const shortMs = (ms: number) => fmtMs(ms)
const kb = (bytes: number) =>
  bytes < 1024 ? `${bytes} B` : bytes < 1 << 20 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`

function candidateLine(c: Candidate): string {
  const what =
    c.stage === 'scale'
      ? `scale ${c.scale}`
      : `scale ${c.scale}, decomp ${c.decompBase}^${c.decompLegs}, ${c.columns} col${c.columns === 1 ? '' : 's'}, margin ${c.lookupMargin}`
  const result = c.ok
    ? `${c.logrows !== undefined ? `logrows ${c.logrows} (${c.rows} rows), ` : ''}error ${c.maxAbsError?.toPrecision(3)}`
    : `rejected: ${c.reason ?? `error ${c.maxAbsError?.toPrecision(3)}`}`
  return `    ${c.ok ? green('·') : red('·')} ${what.padEnd(46)} ${dim(result)}  ${dim(shortMs(c.ms))}`
}

/** The human report: what a creator needs before registering. */
export function formatReport(r: BuildReport, cwd = process.cwd()): string {
  const m = r.manifest
  const rows: [string, string][] = [
    ['model', `${r.name} → ${relative(cwd, r.dir) || '.'}`],
    [
      'graph',
      `${Object.entries(m.source.operators)
        .map(([op, n]) => `${op}×${n}`)
        .join(' ')} · ${m.source.parameters} weights (fixed)`,
    ],
    [
      'tensors',
      `in ${m.inputs.map((t) => `${t.name}[${t.shape.join('×')}]`).join(' ')} (${m.visibility.input}) → out ${m.outputs.map((t) => `${t.name}[${t.shape.join('×')}]`).join(' ')} (${m.visibility.output})`,
    ],
    [
      'chosen',
      `scale ${r.chosen.inputScale}, decomp ${r.chosen.decompBase}^${r.chosen.decompLegs}, ${r.chosen.numInnerCols} inner column(s), lookup margin ${r.chosen.lookupSafetyMargin} (${r.candidates.length} candidates tried)`,
    ],
    [
      'circuit',
      `logrows ${r.layout.logrows}, ${r.layout.rows} rows used, ${r.layout.columns} inner column(s), ${r.layout.totalAssignments} advice cells; ${m.computeUnits} compute unit(s)`,
    ],
    [
      'sizes',
      `pk ${kb(r.sizes.pk)} (derived by provers, not shipped), vk ${kb(r.sizes.vk)}, proof ${kb(r.sizes.proof)}, compiled ${kb(r.sizes.compiled)}, SRS ${kb(r.sizes.srs)}, VKA ${kb(r.sizes.vkaRuntime)}`,
    ],
    [
      'native',
      `setup ${shortMs(r.native.setupMs)}, witness ${shortMs(r.native.witnessMs)}, prove ${shortMs(r.native.proveMs)}, verify ${shortMs(r.native.verifyMs)}`,
    ],
    [
      'wasm',
      r.wasm
        ? `witness ${shortMs(r.wasm.witnessMs)}, prove ${shortMs(r.wasm.proveMs)}, verify ${shortMs(r.wasm.verifyMs)}; verifies the native proof: ${r.wasm.verifiesNativeProof ? 'yes' : 'no'}`
        : 'not measured (--no-wasm)',
    ],
    ['verify gas', `${r.verifyGas.toLocaleString('en-US')} (reusable verifier + VKA, anvil)`],
    [
      'output error',
      `max ${r.fidelity.maxAbsError.toPrecision(3)}, mean ${r.fidelity.meanAbsError.toPrecision(3)} over ${r.fidelity.samples} samples against ${r.fidelity.reference} (tolerance ${r.fidelity.tolerance})`,
    ],
    ['per sample', r.fidelity.perSample.map((e) => e.toPrecision(2)).join(' ')],
    [
      'SRS',
      `${r.srs.file} (logrows ${r.srs.logrows}${r.srs.generated ? ', generated now' : ''}; ${m.srs.insecure ? 'INSECURE: generated locally, dev and tests only' : m.srs.source})`,
    ],
    ['artifacts', `${r.artifactsHash} (sha256 of manifest.json)`],
    ['registrable', r.registrable.ok ? 'yes' : `no: ${r.registrable.reason}`],
    ['machine', `${r.machine.cpus} cores, ${kb(r.machine.memoryBytes)}; ezkl peak RSS ${kb(r.peakRssBytes)}; ${shortMs(r.totalMs)} in all`],
  ]
  return rows.map(([k, v]) => `  ${k.padEnd(13)}${v}`).join('\n')
}

export async function modelBuildCommand(p: ModelBuildCommandParameters): Promise<number> {
  const { buildModel } = await import('../circuits/pipeline/build.ts')
  const name = p.name ?? defaultModelName(p.onnx)
  const outDir = p.outDir ?? join('circuits', name)
  const progress = new Progress()
  let step: Step | undefined
  let stepLabel = ''
  const onEvent = (e: BuildEvent) => {
    if (e.type === 'candidate') {
      const { type: _, ...c } = e
      progress.line(candidateLine(c))
    } else if (e.type === 'progress') {
      if (!step || stepLabel !== e.step) {
        step?.cancel()
        step = progress.begin(e.step, { announce: true })
        stepLabel = e.step
      }
      step.note(e.total ? `${e.message} (${(e.index ?? 0) + 1}/${e.total})` : e.message)
    } else {
      step?.cancel()
      step = undefined
      progress.done(e.step, e.ms, e.detail)
    }
  }
  const params: BuildModelParameters = {
    onnx: p.onnx,
    samples: p.samples,
    name,
    outDir,
    onEvent,
    ...(p.description !== undefined ? { description: p.description } : {}),
    ...(p.tolerance !== undefined ? { tolerance: p.tolerance } : {}),
    ...(p.target !== undefined ? { target: p.target } : {}),
    ...(p.visibility ? { visibility: p.visibility } : {}),
    ...(p.inputBound !== undefined ? { inputBound: p.inputBound } : {}),
    ...(p.variables ? { variables: p.variables } : {}),
    ...(p.rowCorners ? { rowCorners: true } : {}),
    ...(p.maxLogrows !== undefined ? { maxLogrows: p.maxLogrows } : {}),
    ...(p.srsDir !== undefined ? { srsDir: p.srsDir } : {}),
    ...(p.search ? { search: p.search } : {}),
    measure: { wasm: p.wasm ?? true },
  }
  // A graph that cannot be widened to its batch sizes fails before the model's build (the ladder's
  // sizes are known only after it).
  const widened = p.batches?.length && !p.batchAuto ? await widenGraph(p, p.batches, progress) : undefined
  progress.line(`building ${name} from ${p.onnx} with samples ${p.samples} (native ezkl 21.0.0)`)
  let report: BuildReport
  try {
    report = await buildModel(params)
  } catch (e) {
    if (widened) await rm(widened, { recursive: true, force: true })
    throw e
  } finally {
    step?.cancel()
    progress.pause()
  }
  await mkdir(join(report.dir, '.build'), { recursive: true })
  await writeFile(join(report.dir, '.build', 'report.json'), `${JSON.stringify(report, null, 2)}\n`)
  let sizes = p.batches ?? []
  let work = widened
  if (p.batchAuto) {
    const { batchLadder, DEFAULT_MAX_BATCH_ROWS } = await import('../circuits/pipeline/batches.ts')
    const { defaultMaxLogrows } = await import('../circuits/pipeline/build.ts')
    const { rows, logrows } = report.layout
    const maxLogrows = p.maxLogrows ?? defaultMaxLogrows()
    const maxRows = p.batchAuto.maxRows ?? DEFAULT_MAX_BATCH_ROWS
    const ladder = batchLadder({ rows, logrows, maxLogrows, maxRows })
    sizes = [...new Set([...ladder, ...sizes])].sort((a, b) => a - b)
    progress.line(
      ladder.length
        ? `--batch auto: ${rows} rows a proof at logrows ${logrows}; the sizes that fill their logrows up to ${maxRows} rows per proof (and logrows ${maxLogrows}): ${ladder.join(', ')}`
        : `--batch auto: no size of 2 to ${maxRows} rows per proof fits in logrows ${logrows} to ${maxLogrows} (${rows} rows a proof)`,
    )
    work = sizes.length ? await widenGraph(p, sizes, progress) : undefined
  }
  const batches = work ? await buildBatches(p, sizes, report.dir, work) : undefined
  if (p.print === false) return 0
  if (p.json) console.log(JSON.stringify(batches ? { ...report, batches } : report))
  else {
    console.log(`\n${out.bold(`${report.name}: built`)}\n${formatReport(report)}`)
    for (const b of batches ?? [])
      console.log(
        `  batch-${b.size}: ${b.size} rows per proof, logrows ${b.logrows} (${Math.round((100 * b.rows) / 2 ** b.logrows)}% of its rows used), VKA code hash ${b.vka.codeHash.slice(0, 18)}…`,
      )
  }
  return 0
}

/**
 * The model's graph and samples widened to each of `sizes` (circuits/pipeline/widen.py), in
 * `<work>/batch-<N>/` of a scratch folder it returns.
 */
async function widenGraph(p: ModelBuildCommandParameters, sizes: readonly number[], progress: Progress): Promise<string> {
  const [{ ensureNativeEzkl }, { startProcess }, { mkdtemp }, { tmpdir }, { fileURLToPath }] = await Promise.all([
    import('../plugins/provers/ezkl-native/index.ts'),
    import('../core/process.ts'),
    import('node:fs/promises'),
    import('node:os'),
    import('node:url'),
  ])
  const python = await ensureNativeEzkl()
  const widen = fileURLToPath(new URL('../circuits/pipeline/widen.py', import.meta.url))
  const work = await mkdtemp(join(tmpdir(), 'sertn-batches-'))
  try {
    for (const n of new Set(sizes)) {
      const proc = startProcess({ name: 'widen', command: python, args: [widen, p.onnx, p.samples, String(n), join(work, `batch-${n}`)] })
      if ((await proc.exited) !== 0)
        throw new UsageError(`--batch ${n}: the graph cannot be widened to ${n} rows per proof: ${proc.output().trim()}`, {
          details: "--batch needs every input's and output's first dimension to be 1 (the batch dimension).",
        })
      progress.line(`widened ${p.onnx} to ${n} rows per proof`)
    }
    return work
  } catch (e) {
    await rm(work, { recursive: true, force: true })
    throw e
  }
}

/**
 * Builds the batch circuits of `sizes` of the model just built in `modelDir`, from the widened
 * graphs in `work` (removed after); with each one's rows.
 */
async function buildBatches(p: ModelBuildCommandParameters, sizes: readonly number[], modelDir: string, work: string) {
  const [{ buildBatchCircuits }, { readModelManifest }] = await Promise.all([
    import('../circuits/pipeline/batches.ts'),
    import('../core/manifest.ts'),
  ])
  try {
    const refs = await buildBatchCircuits({
      modelDir,
      sizes: [...new Set(sizes)].sort((a, b) => a - b),
      sources: (n) => ({ onnx: join(work, `batch-${n}`, 'network.onnx'), samples: join(work, `batch-${n}`, 'input.json') }),
      ...(p.srsDir !== undefined ? { srsDir: p.srsDir } : {}),
      print: false,
    })
    return Promise.all(refs.map(async (b) => ({ ...b, rows: (await readModelManifest(join(modelDir, b.dir))).manifest.circuit.rows })))
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

export type ModelRegisterCommandParameters = {
  /** The model directory (`sertn model build` output). */
  dir: string
  name?: string
  /** Default: the manifest's. The fee per inference is this times the pool's unit price on each chain. */
  computeUnits?: number
  dataDir?: string
  config?: string
  /** The creator's key (default: SERTN_MODEL_OWNER_KEY, or the local stack's dev owner on a local stack). */
  privateKey?: Hex
  /** The creator's keystore instead (`--keystore`, as cast), decrypted with `passwordFile` or a prompt. */
  keystore?: string
  passwordFile?: string
  json?: boolean
}

/**
 * `sertn model register <dir>`: uploads the model's artifacts to the configured storage, and
 * registers it on every configured chain's registry (hub and spokes), recording each spoke's VKA on
 * the hub.
 */
export async function modelRegisterCommand(p: ModelRegisterCommandParameters): Promise<number> {
  const [{ registerModelOnNetwork }, { buildContainerWithModules }, { TOKENS }, { readModelManifest }, common] = await Promise.all([
    import('../chains/evm/register-model.ts'),
    import('../workflows/worker/container.ts'),
    import('../core/di.ts'),
    import('../core/manifest.ts'),
    import('./common.ts'),
  ])
  const stack = common.openStack({ dataDir: p.dataDir, config: p.config })
  const { manifest } = await readModelManifest(p.dir)
  const progress = new Progress()
  const { keyFromOptions } = await import('./accounts.ts')
  const chains = await creatorClients(stack, await keyFromOptions(p), progress)
  const account = chains[0]!.client.account
  const { container, dispose } = await buildContainerWithModules(stack.config, ['storage'])
  try {
    const storage = container.resolve<StoragePlugin>(TOKENS.Storage)
    const steps = namedSteps(progress)
    const r = await registerModelOnNetwork({
      model: p.dir,
      ...(p.name !== undefined ? { name: p.name } : {}),
      chains,
      storage,
      allowInsecureSrs: stack.config.models.allowInsecureSrs,
      ...(p.computeUnits !== undefined ? { computeUnits: p.computeUnits } : {}),
      onProgress: steps.note,
    })
    steps.done()
    progress.pause()
    const pricing: Record<string, Pricing> = {}
    for (const c of chains) pricing[c.name] = await pricingOf(c.client, c.registry, r.modelId)
    if (p.json) console.log(JSON.stringify({ ...r, pricing }, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
    else {
      const { formatEther } = await import('viem')
      const lines: [string, string][] = [
        ['model', `${r.name} (${manifest.description || 'no description'})`],
        ['id', `${r.modelId} (from ${account.address} and the name)`],
        ['artifacts', `${r.artifacts.manifestHash} · index ${r.index} on ${storage.name} (${r.uploaded} uploaded, ${r.reused} reused)`],
        ...Object.entries(r.chains).map(
          ([name, m]) => [name, `VKA ${m.vka}, registered; ${formatPricing(pricing[name]!, formatEther)}`] as [string, string],
        ),
        [
          'circuit',
          `logrows ${manifest.logrows}, ${manifest.computeUnits} compute unit(s); input ${manifest.visibility.input}, output ${manifest.visibility.output}${manifest.srs.insecure ? '; INSECURE SRS (local chains only)' : ''}`,
        ],
      ]
      console.log(`\n${out.bold(`${r.name}: registered`)}\n${lines.map(([k, v]) => `  ${k.padEnd(11)}${v}`).join('\n')}`)
    }
    return 0
  } finally {
    await dispose()
  }
}

export type ModelUpgradeCommandParameters = {
  /** The new build's model directory (`sertn model build` output). */
  dir: string
  /** The registered name (default: the new build's manifest name). */
  name?: string
  /** The account the model id was derived from (default: the signer); see `upgradeModelOnNetwork`. */
  owner?: Address
  dataDir?: string
  config?: string
  /** The model owner's key (default: SERTN_MODEL_OWNER_KEY, or the local stack's dev owner on a local stack). */
  privateKey?: Hex
  keystore?: string
  passwordFile?: string
  json?: boolean
}

/**
 * `sertn model upgrade <dir>`: replaces a registered model's circuit with a new build on every
 * configured chain (artifacts uploaded, VKAs deployed, `updateCircuit` sent where the registry has
 * another build), then records each spoke's new deployment on the hub. Prints each chain's version
 * before → after.
 */
export async function modelUpgradeCommand(p: ModelUpgradeCommandParameters): Promise<number> {
  const [{ upgradeModelOnNetwork }, { buildContainerWithModules }, { TOKENS }, common, { keyFromOptions }] = await Promise.all([
    import('../chains/evm/register-model.ts'),
    import('../workflows/worker/container.ts'),
    import('../core/di.ts'),
    import('./common.ts'),
    import('./accounts.ts'),
  ])
  const stack = common.openStack({ dataDir: p.dataDir, config: p.config })
  const progress = new Progress()
  const chains = await creatorClients(stack, await keyFromOptions(p), progress)
  const { container, dispose } = await buildContainerWithModules(stack.config, ['storage'])
  try {
    const storage = container.resolve<StoragePlugin>(TOKENS.Storage)
    const steps = namedSteps(progress)
    const r = await upgradeModelOnNetwork({
      model: p.dir,
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.owner !== undefined ? { owner: p.owner } : {}),
      chains,
      storage,
      allowInsecureSrs: stack.config.models.allowInsecureSrs,
      onProgress: steps.note,
    })
    steps.done()
    progress.pause()
    if (p.json) console.log(JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
    else {
      const updated = Object.values(r.chains).some((c) => c.updated)
      const lines: [string, string][] = [
        ['id', r.modelId],
        [
          'artifacts',
          `${r.artifacts.manifestHash}${r.index !== undefined ? ` · index ${r.index} on ${storage.name} (${r.uploaded} uploaded, ${r.reused} reused)` : ''}`,
        ],
        ...Object.entries(r.chains).map(
          ([name, c]) =>
            [
              name,
              c.updated
                ? `version ${c.before} → ${c.after}, VKA ${c.model.vka}${c.model.batches.length ? ` (batches ${c.model.batches.map((b) => b.size).join(', ')})` : ''}`
                : `version ${c.before} → ${c.after}: at this build already`,
            ] as [string, string],
        ),
      ]
      console.log(
        `\n${out.bold(`${r.name}: ${updated ? 'upgraded' : 'up to date'}`)}\n${lines.map(([k, v]) => `  ${k.padEnd(11)}${v}`).join('\n')}`,
      )
      if (updated)
        console.log(
          dim(
            "  requests pending against the old version can only be failed or refunded now; each spoke's deployment is recorded on the hub",
          ),
        )
    }
    return 0
  } finally {
    await dispose()
  }
}

/** What one inference of a model costs on a chain, beyond gas: its compute units times its pool's unit price. */
type Pricing = {
  computeUnits: number
  /** Wei (of the chain's native token) per compute unit: the model's pool price, else the registry's default. */
  unitPrice: bigint
  /** Wei per inference: `computeUnits × unitPrice`, as the registry quotes it. */
  fee: bigint
  /** The chain's native token. */
  symbol: string
}

/** The model's compute units, unit price and fee as the chain's registry sets them. */
async function pricingOf(client: import('../chains/evm/clients.ts').SertnClient, registry: Address, modelId: Hex): Promise<Pricing> {
  const { ModelRegistry } = await import('../contracts/artifacts/index.ts')
  const [terms, unitPrice] = await Promise.all([
    client.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'tryGetRequestTerms', args: [modelId] }),
    client.readContract({ address: registry, abi: ModelRegistry.abi, functionName: 'unitPriceOf', args: [modelId] }),
  ])
  return { computeUnits: terms.computeUnits, unitPrice, fee: terms.fee, symbol: client.chain.nativeCurrency.symbol }
}

/** The callback gas `sertn model show` quotes requests at. */
const QUOTE_CALLBACK_GAS = 200_000

/** `quote 0.00195 ETH (200000 callback gas); in a batch of 16 it ends up 0.00129 ETH, …`. */
function formatQuotes(
  q: { callbackGasLimit: number; single: bigint; batched: Record<string, bigint> },
  symbol: string,
  formatEther: (wei: bigint) => string,
): string {
  const batched = Object.entries(q.batched).map(([n, wei]) => `${formatEther(wei)} ${symbol} in a batch of ${n}`)
  return (
    `quote ${formatEther(q.single)} ${symbol} a request (${q.callbackGasLimit} callback gas)` +
    (batched.length ? `; it ends up ${batched.join(', ')} (the verification shared; releaseBatch pays the rest back)` : '')
  )
}

/** `fee 0.001 ETH per inference (1 compute unit × 0.001 ETH, the pool's unit price)`. */
function formatPricing(p: Pricing, formatEther: (wei: bigint) => string): string {
  const units = `${p.computeUnits} compute unit${p.computeUnits === 1 ? '' : 's'}`
  return `fee ${formatEther(p.fee)} ${p.symbol} per inference (${units} × ${formatEther(p.unitPrice)} ${p.symbol}, the pool's unit price)`
}

/**
 * A model id from `0x…` (itself) or a name (with the registering account: --owner, else the
 * deployer of a `sertn deploy` record given with --deployment, else the local stack's dev owner).
 */
async function modelIdFrom(arg: string, owner: Address | undefined, deployment?: string): Promise<Hex> {
  if (/^0x[0-9a-fA-F]{64}$/.test(arg)) return arg as Hex
  if (owner === undefined && deployment !== undefined) {
    const { readDeploymentRecord } = await import('./deploy.ts')
    const record = readDeploymentRecord(resolve(deployment))
    if (!record) throw new UsageError(`no deployment record at ${deployment} (pass the --record file of \`sertn deploy\`)`)
    owner = record.deployer
  }
  const [{ modelIdOf }, accounts, { privateKeyToAccount }] = await Promise.all([
    import('../core/models.ts'),
    import('./accounts.ts'),
    import('viem/accounts'),
  ])
  return modelIdOf(owner ?? privateKeyToAccount(accounts.anvilPrivateKey(accounts.OWNER_ACCOUNT)).address, arg)
}

type OpenStack = ReturnType<typeof import('./common.ts')['openStack']>

/**
 * The configured chains as the model's creator reaches them: with `key`, else SERTN_MODEL_OWNER_KEY,
 * else (on local chains only, with a warning) the local stack's dev owner. Without `progress`, the
 * clients only read, and the dev owner's account serves as the default.
 */
async function creatorClients(stack: OpenStack, key: Hex | undefined, progress?: Progress) {
  const [{ privateKeyToAccount }, { evmChainOf }, { createSertnClient }, accounts] = await Promise.all([
    import('viem/accounts'),
    import('../chains/evm/chain.ts'),
    import('../chains/evm/clients.ts'),
    import('./accounts.ts'),
  ])
  let k = key ?? (process.env.SERTN_MODEL_OWNER_KEY as Hex | undefined)
  if (!k) {
    if (progress) {
      if (!Object.values(stack.config.chains).every((c) => /^https?:\/\/(127\.0\.0\.1|localhost)(:|\/|$)/.test(c.rpcUrl)))
        throw new UsageError("this command needs the model creator's key: --private-key 0x…, --keystore FILE, or SERTN_MODEL_OWNER_KEY")
      progress.warn(`using the local stack's dev owner key (anvil account ${accounts.OWNER_ACCOUNT}): local chains only`)
    }
    k = accounts.anvilPrivateKey(accounts.OWNER_ACCOUNT)
  }
  const account = privateKeyToAccount(k)
  return Object.entries(stack.config.chains).map(([name, c]) => {
    if (!c.registry) throw new UsageError(`chain ${name} has no registry address in the configuration`)
    return {
      name,
      client: createSertnClient(evmChainOf(c.chainId, name, c.rpcUrl), account, {
        pollingInterval: Math.min(c.pollingIntervalMs, 250),
        fallbackRpcUrls: c.fallbackRpcUrls,
      }),
      registry: c.registry as Address,
      hub: c.market !== undefined,
    }
  })
}

export type ModelBacktestCommandParameters = {
  action: 'publish' | 'verify'
  /** publish: the model directory; verify: a model name or id. */
  target: string
  /** publish: a samples file ({"input_data": …}); default <dir>/samples.json. */
  samples?: string
  name?: string
  owner?: Address
  chain?: string
  dataDir?: string
  config?: string
  privateKey?: Hex
  json?: boolean
}

/**
 * `sertn model backtest publish <dir>` proves the model's samples and publishes the proven pairs;
 * `sertn model backtest verify <model>` checks every published pair against the registered circuit.
 */
export async function modelBacktestCommand(p: ModelBacktestCommandParameters): Promise<number> {
  const [common, { buildContainerWithModules }, { TOKENS }, bt, { readModelManifest, loadModelArtifacts }, { quantize }, { splitSamples }] =
    await Promise.all([
      import('./common.ts'),
      import('../workflows/worker/container.ts'),
      import('../core/di.ts'),
      import('../chains/evm/backtests.ts'),
      import('../core/manifest.ts'),
      import('../core/field.ts'),
      import('../circuits/pipeline/build.ts'),
    ])
  const stack = common.openStack({ dataDir: p.dataDir, config: p.config })
  const progress = new Progress()
  const chains = await creatorClients(stack, p.privateKey, p.action === 'publish' ? progress : undefined)
  const { container, dispose } = await buildContainerWithModules(stack.config, ['storage', 'prover'])
  try {
    const storage = container.resolve<StoragePlugin>(TOKENS.Storage)
    const prover = container.resolve<import('../core/plugins.ts').ProverPlugin>(TOKENS.Prover)
    if (p.action === 'publish') {
      const { manifest } = await readModelManifest(p.target)
      const model = await loadModelArtifacts(p.target, { allowInsecureSrs: stack.config.models.allowInsecureSrs })
      const samplesFile = p.samples ?? join(p.target, 'samples.json')
      const { readFile } = await import('node:fs/promises')
      const samples = splitSamples(JSON.parse(await readFile(samplesFile, 'utf8')), manifest.inputs)
      const inputs = samples.map((s) => s.flat().map((x) => quantize(x, manifest.inputScale)))
      const modelId = await modelIdFrom(p.name ?? manifest.name, chains[0]!.client.account.address)
      const step = progress.begin(`prove ${inputs.length} samples (${prover.name})`, { announce: true })
      const r = await bt.publishBacktests({
        model,
        inputs,
        prover,
        storage,
        chains,
        modelId,
        onProgress: (done, total) => step.note(`${done}/${total}`),
      })
      step.done(
        `${r.pairs} proven pairs stored as ${r.id} (sha256 ${r.sha256.slice(0, 18)}…), recorded on ${chains.map((c) => c.name).join(', ')}`,
      )
      progress.pause()
      if (p.json) console.log(JSON.stringify(r))
      return 0
    }
    const chain = (p.chain ? chains.find((c) => c.name === p.chain) : (chains.find((c) => c.hub) ?? chains[0])) ?? undefined
    if (!chain) throw new UsageError(`no chain named ${p.chain} in the configuration (chains: ${chains.map((c) => c.name).join(', ')})`)
    const modelId = await modelIdFrom(p.target, p.owner)
    const models = container.resolve<import('../core/models.ts').ModelStore>(TOKENS.Models)
    const report = await progress.step(
      `verify backtests on ${chain.name}`,
      () => bt.verifyBacktests({ client: chain.client, registry: chain.registry, modelId, storage, models, prover, where: chain.name }),
      (r) => `${r.valid}/${r.pairs.length} pairs valid`,
      { announce: true },
    )
    progress.pause()
    if (p.json) console.log(JSON.stringify(report))
    else {
      console.log(
        `\n${out.bold(`${report.model}: ${report.valid}/${report.pairs.length} backtest pairs verified`)} (document ${report.ref}, proven against version ${report.provenVersion}, registered version ${report.version})`,
      )
      for (const v of report.pairs)
        console.log(
          `  #${String(v.index).padEnd(3)} ${v.bound && v.offChain && v.onChain ? green('valid') : red('INVALID')}  instances bound: ${v.bound ? 'yes' : 'no'}, off-chain: ${v.offChain ? 'yes' : 'no'}, on-chain: ${v.onChain ? 'yes' : 'no'}${v.reason ? dim(`  ${v.reason}`) : ''}`,
        )
    }
    return report.valid === report.pairs.length ? 0 : 1
  } finally {
    await dispose()
  }
}

export type ModelShowCommandParameters = {
  target: string
  owner?: Address
  /** A `sertn deploy` record: its deployer registered the models named without --owner. */
  deployment?: string
  dataDir?: string
  config?: string
  json?: boolean
}

/**
 * `sertn model show <model>`: the registration on every chain, its pricing there (compute units,
 * the pool's unit price, the resulting fee), its usage and its backtests.
 */
export async function modelShowCommand(p: ModelShowCommandParameters): Promise<number> {
  const [common, { readRegisteredCircuit }, { ModelRegistry, InferenceGateway }] = await Promise.all([
    import('./common.ts'),
    import('../chains/evm/plugin/registry.ts'),
    import('../contracts/artifacts/index.ts'),
  ])
  const stack = common.openStack({ dataDir: p.dataDir, config: p.config })
  const modelId = await modelIdFrom(p.target, p.owner, p.deployment)
  const chains = await creatorClients(stack, undefined)
  const rows: Record<string, unknown>[] = []
  for (const c of chains) {
    const r = await readRegisteredCircuit(c.client, c.registry, modelId, c.name)
    if (!r) {
      rows.push({ chain: c.name, registered: false })
      continue
    }
    const gateway = stack.config.chains[c.name]!.gateway as Address
    const quote = (rows: number) =>
      c.client.readContract({
        address: gateway,
        abi: InferenceGateway.abi,
        functionName: 'quoteBatched',
        args: [modelId, QUOTE_CALLBACK_GAS, rows],
      })
    const [usage, backtests, pricing, single, batched] = await Promise.all([
      c.client.readContract({ address: gateway, abi: InferenceGateway.abi, functionName: 'modelUsage', args: [modelId] }),
      c.client.readContract({ address: c.registry, abi: ModelRegistry.abi, functionName: 'getBacktests', args: [modelId] }),
      pricingOf(c.client, c.registry, modelId),
      c.client.readContract({ address: gateway, abi: InferenceGateway.abi, functionName: 'quote', args: [modelId, QUOTE_CALLBACK_GAS] }),
      Promise.all((r.batches ?? []).map(async (b) => [String(b.size), await quote(b.size)] as const)),
    ])
    const quotes = { callbackGasLimit: QUOTE_CALLBACK_GAS, single, batched: Object.fromEntries(batched) }
    rows.push({ chain: c.name, registered: true, ...r, ...pricing, quotes, usage, backtests })
  }
  if (p.json) console.log(JSON.stringify({ modelId, chains: rows }, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
  else {
    const { formatEther } = await import('viem')
    console.log(out.bold(`model ${modelId}`))
    for (const r of rows) {
      if (!r.registered) {
        console.log(`  ${String(r.chain).padEnd(8)} not registered`)
        continue
      }
      const x = r as unknown as import('../core/registered.ts').RegisteredCircuit &
        Pricing & {
          chain: string
          quotes: { callbackGasLimit: number; single: bigint; batched: Record<string, bigint> }
          usage: { requests: bigint; served: bigint; requesters: number; repeatRequesters: number }
          backtests: { pairs: number; version: number }
        }
      console.log(
        `  ${x.chain.padEnd(8)} ${x.name} v${x.version}${x.active ? '' : ' (inactive)'}, owner ${x.owner}; verifier ${x.verifier}, VKA ${x.vka}; artifacts ${x.artifacts.manifestHash.slice(0, 18)}…; ` +
          `input ${x.inputVisibility}, output ${x.outputVisibility}${x.insecureSrs ? ', INSECURE SRS' : ''}\n           ${formatPricing(x, formatEther)}\n           ${formatQuotes(x.quotes, x.symbol, formatEther)}\n           usage: ${x.usage.requests} requests, ${x.usage.served} served, ${x.usage.requesters} requesters (${x.usage.repeatRequesters} repeat); ` +
          `backtests: ${x.backtests.pairs ? `${x.backtests.pairs} pairs (version ${x.backtests.version})` : 'none'}`,
      )
    }
  }
  return 0
}

/** A progress callback `(step, detail)` that opens a progress step whenever the step's name changes. */
function namedSteps(progress: Progress): { note: (step: string, detail: string) => void; done: () => void } {
  let step: Step | undefined
  let name = ''
  return {
    note(s, detail) {
      if (name !== s) {
        step?.done()
        step = progress.begin(s, { announce: true })
        name = s
      }
      step!.note(detail)
    },
    done: () => step?.done(),
  }
}
