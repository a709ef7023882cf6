/**
 * Requests from the example dApp (ExampleClassifier) on the local stack's spoke or hub: `sertn
 * request`, and the demo request of `sertn start` (on the spoke). A request is followed stage by
 * stage, hop by hop for a spoke's (see follow.ts), and ends with the verified result read back from
 * the dApp on the chain it was made on. The chain side goes through `@sertn/client`: the gateway's
 * quote, a refusal decoded into its typed error (what to change), and the verified result as the
 * requesting chain records it (waitForResult); the node-side stages come from Temporal (follow.ts).
 */
import { evmChainOf } from '../chains/evm/chain.ts'
import { formatEther, parseEventLogs, type Address, type Hex } from 'viem'
import { anvilAccount, createSertnClient, type SertnClient } from '../chains/evm/clients.ts'
import { readManifest, writeWithMargin } from '../chains/evm/deploy.ts'
import { quote, waitForResult } from '../client/index.ts'
import { rethrowCall } from '../client/errors.ts'
import { ExampleClassifier, NodeRegistry } from '../contracts/artifacts/index.ts'
import { SertnError } from '../core/errors.ts'
import { dequantize, quantize } from '../core/field.ts'
import { checkQuantizedInput } from '../core/input.ts'
import { requestKey } from '../core/types.ts'
import { USER_ACCOUNT } from './accounts.ts'
import { connectOperators, openStack, stackChainConfig, stackDeployment, UsageError, type StackChain } from './common.ts'
import { ensureDapp } from './deployment.ts'
import { followRequest, type FollowOperator, type FollowResult, type RequestStatus } from './follow.ts'
import { Progress } from './progress.ts'
import { dim, fmtGas, fmtMs, out } from './ui.ts'

export type SentRequest = {
  /** The chain it was made on. */
  chain: StackChain
  gateway: Address
  requestId: bigint
  key: string
  dapp: Address
  txHash: Hex
  block: bigint
  price: bigint
  /** Unix ms when the request's transaction was mined. */
  requestedAt: number
  model: string
}

/** The model's features at its input scale, checked against its input shape and range. */
export function quantizeFeatures(model: string, features: number[]): bigint[] {
  const { manifest } = readManifest(model)
  const input = features.map((x) => quantize(x, manifest.inputScale))
  try {
    checkQuantizedInput(manifest, input)
  } catch (err) {
    const bound = manifest.maxAbsInput / 2 ** manifest.inputScale
    throw new UsageError(`--features: ${err instanceof Error ? err.message : String(err)}`, {
      details: `${model} takes ${manifest.inputShape.reduce((a, b) => a * b, 1)} features, each within ±${bound} (quantised at scale ${manifest.inputScale}).`,
    })
  }
  return input
}

/**
 * Sends `classify(features)` from the dApp on `chain` (whose gateway is `gateway`), paying its
 * price (on a spoke it includes the messaging fees), and waits for the receipt. With `mine`, mines
 * one empty block on top so that the watcher (1 confirmation) sees it at once on an automining anvil.
 */
export async function sendClassifyRequest(
  progress: Progress,
  params: { chain: StackChain; user: SertnClient; gateway: Address; dapp: Address; model: string; features: number[]; mine: boolean },
): Promise<SentRequest> {
  const { user, dapp } = params
  const input = quantizeFeatures(params.model, params.features)
  return progress.step(
    `request on the ${params.chain}`,
    async () => {
      const at = { address: dapp, abi: ExampleClassifier.abi } as const
      const [modelId, callbackGasLimit] = await Promise.all([
        user.readContract({ ...at, functionName: 'modelId' }),
        user.readContract({ ...at, functionName: 'CALLBACK_GAS_LIMIT' }),
      ])
      // The gateway's quote (on a spoke, with the messaging fees), as the dApp's price() asks it.
      const price = await quote(user, { gateway: params.gateway, modelId, callbackGasLimit })
      const { request, result } = await user
        .simulateContract({ ...at, functionName: 'classify', args: [input], value: price })
        .catch((err: unknown) => rethrowCall(`classify on ExampleClassifier ${dapp}`, err))
      const receipt = await writeWithMargin(user, request)
      const txHash = receipt.transactionHash
      const requestedAt = Date.now()
      if (params.mine) await user.request({ method: 'anvil_mine' as never, params: ['0x1'] as never })
      return {
        chain: params.chain,
        gateway: params.gateway,
        requestId: result,
        key: requestKey(user.chain.id, params.gateway, result),
        dapp,
        txHash,
        block: receipt.blockNumber,
        price,
        requestedAt,
        model: params.model,
      }
    },
    (r) =>
      `ExampleClassifier #${r.requestId}, input [${input.join(', ')}], paid ${formatEther(r.price)} ETH, block ${r.block}${params.mine ? ' (+1 mined on top)' : ''}`,
  )
}

export type FollowedResult = { ok: boolean; status: RequestStatus; operator: FollowOperator & { namespace: string } }

/** The hub's node registry, where a request's job and its assignment are recorded. */
export type HubJobs = {
  client: SertnClient
  nodeRegistry: Address
  /** The hub's gateway: the market of its own requests' jobs (a spoke's request's is the hub market). */
  gateway: Address
  /** Where to look for assignments from (the hub's deployment block). */
  fromBlock?: bigint
}

/**
 * `in epoch 3, window 120 s`: the request's latest JobAssigned event in the hub's node registry
 * (a spoke's request: its hub market request's job; a hub request: its own, the gateway's).
 */
export function assignmentDescriber(hub: HubJobs, sent: SentRequest): (status: RequestStatus) => Promise<string | undefined> {
  return async (status) => {
    const market = status.hub ? (status.hub.market as Address) : hub.gateway
    const id = status.hub ? status.hub.marketRequestId : sent.requestId.toString()
    if (id === undefined) return undefined
    const logs = await hub.client.getContractEvents({
      address: hub.nodeRegistry,
      abi: NodeRegistry.abi,
      eventName: 'JobAssigned',
      args: { market, id: BigInt(id) },
      fromBlock: hub.fromBlock ?? 0n,
      toBlock: 'latest',
    })
    const last = logs.at(-1)
    if (!last) return undefined
    const block = await hub.client.getBlock({ blockNumber: last.blockNumber })
    return `in epoch ${last.args.epoch}, window ${Number(last.args.windowEnd!) - Number(block.timestamp)} s`
  }
}

/**
 * Follows a sent request to its end and prints the verified result read back from the dApp, the
 * Arweave ids, the transactions and the workflow in the Temporal UI. For a spoke's request the
 * result is the one the hub's message delivered to the spoke (verified there before the callback).
 * `ok` is true when the request was fulfilled and the dApp's callback succeeded.
 */
export async function followClassification(
  progress: Progress,
  params: {
    /** Every node operator's namespace where the request's workflow may run (see followRequest). */
    operators: readonly (FollowOperator & { namespace: string })[]
    user: SertnClient
    sent: SentRequest
    confirmations: number
    prover: string
    arlocalUrl?: string | undefined
    temporalUi?: string | undefined
    /** The hub's node registry: the `assigned` line says in which epoch and for how long. */
    hub?: HubJobs | undefined
    signal?: AbortSignal
  },
): Promise<FollowedResult> {
  const { sent, user } = params
  const followed = await followRequest({
    operators: params.operators,
    key: sent.key,
    progress,
    requestedAt: sent.requestedAt,
    confirmations: params.confirmations,
    prover: params.prover,
    ...(params.signal ? { signal: params.signal } : {}),
    ...(params.hub ? { describeAssignment: assignmentDescriber(params.hub, sent) } : {}),
  })
  const { status } = followed
  const operator = followed.operator as FollowOperator & { namespace: string }
  const { bold, dim, red } = out
  const uiLink = params.temporalUi
    ? `${params.temporalUi}/namespaces/${operator.namespace}/workflows/${encodeURIComponent(sent.key)}`
    : undefined
  const servedBy = operatorLine(followed)
  const viaHub = status.hub !== undefined
  // Where the result reached the dApp: the fulfil transaction, or the hub's message processed on the spoke.
  const settleTx = (viaHub ? status.timings.spokeSettle?.transactionHash : status.transactionHash) as Hex | undefined
  if (status.stage !== 'fulfilled' || !settleTx) {
    progress.pause()
    console.log(
      `\n${red(bold(`request ${sent.key} ${status.stage}`))}` +
        (status.error ? `: ${status.error.code}: ${status.error.reason}` : '') +
        (status.transactionHash ? `\n  ${viaHub ? 'hub tx' : 'tx'}     ${status.transactionHash}` : '') +
        (viaHub && status.timings.spokeSettle?.transactionHash ? `\n  spoke tx  ${status.timings.spokeSettle.transactionHash}` : '') +
        (servedBy ? `\n  operator  ${servedBy}` : '') +
        (uiLink ? `\n  workflow  ${uiLink}` : ''),
    )
    return { ok: false, status, operator }
  }

  const { manifest } = readManifest(sent.model)
  const callback = await progress.step(
    'callback (ExampleClassifier)',
    async () => {
      // The result as the requesting chain recorded it: verified there, the dApp called back.
      const { request } = await waitForResult(user, {
        gateway: sent.gateway,
        requestId: sent.requestId,
        fromBlock: sent.block,
        timeoutMs: 60_000,
        ...(params.signal ? { signal: params.signal } : {}),
      })
      const fulfilled = request.fulfilled
      const receipt = await user.getTransactionReceipt({ hash: fulfilled.transactionHash })
      const classified = parseEventLogs({ abi: ExampleClassifier.abi, logs: receipt.logs, eventName: 'Classified' }).find(
        (l) => l.args.requestId === sent.requestId,
      )
      const result = await user.readContract({
        address: sent.dapp,
        abi: ExampleClassifier.abi,
        functionName: 'classification',
        args: [sent.requestId],
      })
      return {
        status: fulfilled.callbackStatus.toLowerCase(),
        gas: fulfilled.callbackGasUsed,
        storage: fulfilled.storage,
        settleGas: receipt.gasUsed,
        label: result.label,
        score: result.score,
        done: result.status === 2,
        scores: classified?.args.scores ?? status.output?.map(BigInt) ?? [],
      }
    },
    (c) =>
      `callback ${c.status}${c.gas !== undefined ? `, ${c.gas} gas` : ''} (${viaHub ? 'delivery' : 'fulfil'} tx ${c.settleGas} gas) · label ${c.label}`,
  )
  const scores = callback.scores.map((q) => dequantize(q, manifest.outputScale))
  const lines = [
    `\n${bold('verified result')}: label ${callback.label}, score ${dequantize(callback.score, manifest.outputScale).toFixed(4)}  ` +
      dim(`(scores [${scores.map((s) => s.toFixed(4)).join(', ')}], read back from ExampleClassifier ${sent.dapp} on the ${sent.chain})`),
    `  request   #${sent.requestId}  ${sent.key}`,
  ]
  const { outputId, proofId } = callback.storage
  if (outputId && proofId) {
    const link = (id: string) => (params.arlocalUrl ? `  ${dim(`${params.arlocalUrl}/${id}`)}` : '')
    lines.push(`  arweave   output ${outputId}${link(outputId)}`)
    lines.push(`            proof  ${proofId}${link(proofId)}  ${dim(`(re-check it: sertn verify ${sent.key})`)}`)
  }
  if (viaHub) {
    const submit = status.timings.submit
    const hub = status.hub!
    lines.push(
      `  hub       market request #${hub.marketRequestId ?? '?'} (${hub.status ?? '?'}${hub.settlement ? `: ${hub.settlement}` : ''}), ` +
        `result tx ${status.transactionHash ?? '?'}${submit?.gasUsed ? dim(` (${fmtGas(submit.gasUsed)})`) : ''}`,
    )
    lines.push(`  spoke     delivery tx ${settleTx}${dim(` (${fmtGas(callback.settleGas)}: verified on the spoke, callback)`)}`)
  } else {
    lines.push(`  fulfil    tx ${settleTx}`)
  }
  if (servedBy) lines.push(`  operator  ${servedBy}`)
  if (uiLink) lines.push(`  workflow  ${uiLink}`)
  lines.push(dim(`  ${totalLine(status, sent)}`))
  progress.pause()
  console.log(lines.join('\n'))
  const ok = callback.status === 'succeeded' && callback.done
  if (!ok) console.log(red(`the dApp's callback did not record the result (callback ${callback.status})`))
  return { ok, status, operator }
}

/**
 * `operator 2 (0x9965…), namespace operator-2 · operator 1 stood aside (settled-elsewhere)`: who
 * served the request, and how the other operators' workflows for it ended. Undefined for one
 * unnamed operator.
 */
function operatorLine(f: FollowResult): string | undefined {
  const o = f.operator as FollowOperator & { namespace?: string }
  if (!o.name) return undefined
  const mine = f.status.assignment?.mine
  const others = f.others.map(
    (x) =>
      `${x.operator.name ?? '?'} ${
        x.stage === undefined
          ? 'has no workflow for it'
          : x.running
            ? x.stage === 'awaiting-assignment'
              ? 'stands aside (its workflow looks again once the window has passed)'
              : `still ${x.stage}`
            : x.stage === 'settled-elsewhere'
              ? 'stood aside (settled-elsewhere)'
              : `ended ${x.stage}`
      }`,
  )
  return (
    `${mine === false ? 'followed' : 'served by'} ${o.name}${o.address ? ` (${o.address})` : ''}` +
    `${o.namespace ? `, namespace ${o.namespace}` : ''}` +
    (others.length ? out.dim(` · ${others.join(', ')}`) : '')
  )
}

/** The time from the request's block to the verified result on its chain (and, for a spoke's, on to the hub's settlement). */
function totalLine(status: RequestStatus, sent: SentRequest): string {
  const spoke = status.timings.spokeSettle?.observedAt
  if (status.hub === undefined || spoke === undefined)
    return `${fmtMs(Date.now() - sent.requestedAt)} from the request's block to the verified result`
  const hub = status.timings.hubSettle?.observedAt
  return (
    `${fmtMs(spoke - sent.requestedAt)} from the request's block to the verified result on the spoke` +
    (hub !== undefined ? `; settled on the hub ${fmtMs(Math.max(0, hub - spoke))} later` : '')
  )
}

/** `sertn request`: one classification from the example dApp on the running local stack's spoke (or hub). */
export async function requestCommand(opts: {
  features: number[]
  model: string
  wait: boolean
  chain: StackChain
  dataDir?: string | undefined
  config?: string | undefined
}): Promise<number> {
  quantizeFeatures(opts.model, opts.features) // bad features fail before anything else
  const stack = openStack(opts)
  const chainCfg = stackChainConfig(stack, opts.chain)
  const deployment = stackDeployment(stack)
  const onChain = deployment[opts.chain]
  if (onChain.gateway.toLowerCase() !== chainCfg.gateway.toLowerCase())
    throw new SertnError(`the configuration's ${opts.chain} gateway ${chainCfg.gateway} is not the deployed one (${onChain.gateway})`, {
      details: `${stack.configFile} and ${stack.paths.deployment} disagree: restart the stack with \`sertn start\` so that it writes both again.`,
    })
  const chain = evmChainOf(chainCfg.chainId, `sertn-${opts.chain}`, chainCfg.rpcUrl)
  const user = createSertnClient(chain, anvilAccount(USER_ACCOUNT), { fallbackRpcUrls: chainCfg.fallbackRpcUrls })
  try {
    const id = await user.getChainId()
    if (id !== chainCfg.chainId)
      throw new SertnError(`the ${opts.chain} chain at ${chainCfg.rpcUrl} has id ${id}, the configuration says ${chainCfg.chainId}`)
  } catch (err) {
    if (err instanceof SertnError) throw err
    throw new SertnError(`cannot reach the ${opts.chain} chain at ${chainCfg.rpcUrl}`, {
      details: 'Is the local stack running? Start it with `npm start` (or `npx tsx cli/sertn.ts start`) and try again.',
    })
  }
  const progress = new Progress()
  const dapp = await ensureDapp(stack.paths.deployment, deployment, opts.chain, user, opts.model)
  // The watcher waits for a block on top of the request; anvil mines only on transactions.
  const sent = await sendClassifyRequest(progress, {
    chain: opts.chain,
    user,
    gateway: onChain.gateway,
    dapp,
    model: opts.model,
    features: opts.features,
    mine: true,
  })
  progress.pause()
  console.log(sent.key)
  if (!opts.wait) {
    progress.line(dim(`follow it: sertn status ${sent.key}   (or sertn request … --wait)`))
    return 0
  }
  const temporal = await connectOperators(stack)
  try {
    const hubCfg = stack.config.chains.hub
    const r = await followClassification(progress, {
      operators: temporal.operators,
      user,
      sent,
      confirmations: chainCfg.confirmations,
      prover: stack.config.prover.plugin,
      arlocalUrl: stack.config.storage.arweave.url,
      temporalUi: stack.info?.temporalUi,
      ...(hubCfg && deployment.hub.nodeRegistry
        ? {
            hub: {
              client:
                opts.chain === 'hub'
                  ? user
                  : createSertnClient(evmChainOf(hubCfg.chainId, 'sertn-hub', hubCfg.rpcUrl), user.account, {
                      fallbackRpcUrls: hubCfg.fallbackRpcUrls,
                    }),
              nodeRegistry: deployment.hub.nodeRegistry,
              gateway: deployment.hub.gateway,
              fromBlock: BigInt(deployment.hub.deployedAtBlock),
            },
          }
        : {}),
    })
    return r.ok ? 0 : 1
  } finally {
    await temporal.close()
  }
}
