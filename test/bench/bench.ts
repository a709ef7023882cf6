/**
 * `npm run bench`: engine timings and gas (part 1), the durable spine's stage latencies over
 * sequential requests (part 2), and both provers side by side (part 3). Progress goes to stderr;
 * the last line on stdout is one JSON object:
 *
 * {"model","logrows","ms":{"witness","prove","verify"},"proofBytes",
 *  "gas":{"requestInference","fulfill","verifier","callback"},
 *  "stages":{"<stage>":{"p50","p95"}},"e2eMs":{"p50","p95"},"overheadMs":{"p50","p95"},
 *  "provers":{"ezkl-wasm":{"proveMs"},"ezkl-native":{"proveMs"}},
 *  "relayMs":{"<messenger>":{"spokeToHub":{"p50","p95"},"hubToSpoke":{"p50","p95"}}},"relayOverheadMs":{…},
 *  "blockTimeMs","crossChainE2eMs":{"<messenger>":{"p50","p95"}},
 *  "gasByChain":{"<messenger>":{"spoke":{"<step>":gas},"hub":{"<step>":gas}}},  (messengers: hyperlane, layerzero)
 *  "operators":{"prover","requests","deliveriesPerSecond":{"one","two"},"operatorScaling","servedByEach","pinned",
 *    "native":{"prover","requests","deliveriesPerSecond":{"one","two"},"operatorScaling","servedByEach"}},
 *  "gasNodes":{"requestInference","openJob","reassign"},
 *  "batching":{"batch1"|"batch16"|"batch64":{"maxRows","requests","rate","windowMs",
 *    "spoke":{"<messenger>":{"allInGasPerRequest","verificationPerRequest"}},"hub":{"gasPerRequest"},
 *    "latencyMs":{"p50","p95"},"deliveriesPerSecond","spokeTransactions","rowsPerTransaction"}}}
 *
 * `npm run bench -- models <dir>` builds and measures a folder of models instead (see models.ts).
 *
 * BENCH_RUNS (default 5): engine and prover runs; BENCH_REQUESTS (default 20): spine requests;
 * BENCH_PROVER (default ezkl-native): the spine's prover; BENCH_ONLY=spine runs part 2 alone,
 * BENCH_ONLY=crosschain part 4 alone; BENCH_XCHAIN_REQUESTS (default 10) and BENCH_BLOCK_TIME
 * (seconds, default 1): part 4's requests and the anvils' block time; BENCH_OPERATORS_REQUESTS
 * (default 24) and BENCH_OPERATORS_NATIVE_REQUESTS (default 48): part 5's bursts (one operator,
 * then two) with the WASM prover and with the native one; BENCH_ONLY=operators runs it alone;
 * BENCH_BATCHING_REQUESTS (default 384: three full 64-row batches per spoke),
 * BENCH_BATCHING_BASELINE_REQUESTS (default 32, batching off) and BENCH_BATCHING_RATE (per second,
 * default 6): part 6's steady stream from both spokes, batching off then at most 16 and 64 rows; BENCH_BATCHING_SIZES
 * (default 1,16,64) picks runs; BENCH_ONLY=batching.
 */
import { benchCrossChain } from './crosschain.ts'
import { benchEngineAndGas } from './engine.ts'
import { benchBatching } from './batching.ts'
import { benchOperators } from './operators.ts'
import { benchModels, modelsTable } from './models.ts'
import { benchProvers } from './provers.ts'
import { benchSpine } from './spine.ts'
import { log } from './stats.ts'

const runs = Number(process.env.BENCH_RUNS ?? 5)
const requests = Number(process.env.BENCH_REQUESTS ?? 20)
const prover = (process.env.BENCH_PROVER ?? 'ezkl-native') as 'ezkl-wasm' | 'ezkl-native'

const xchainRequests = Number(process.env.BENCH_XCHAIN_REQUESTS ?? 10)
const blockTime = Number(process.env.BENCH_BLOCK_TIME ?? 1)
const operatorsRequests = Number(process.env.BENCH_OPERATORS_REQUESTS ?? 24)
const operatorsNativeRequests = Number(process.env.BENCH_OPERATORS_NATIVE_REQUESTS ?? 48)
const batchingRequests = Number(process.env.BENCH_BATCHING_REQUESTS ?? 384)
const batchingBaselineRequests = Number(process.env.BENCH_BATCHING_BASELINE_REQUESTS ?? 32)
const batchingRate = Number(process.env.BENCH_BATCHING_RATE ?? 6)
const batchingSizes = (process.env.BENCH_BATCHING_SIZES ?? '1,16,64').split(',').map(Number) as (1 | 16 | 64)[]
if (batchingSizes.some((n) => n !== 1 && n !== 16 && n !== 64)) throw new Error('BENCH_BATCHING_SIZES: 1, 16 and/or 64')
const only = process.env.BENCH_ONLY // 'spine', 'crosschain', 'operators' or 'batching' to run that part alone (for tuning)

async function main() {
  const [part, ...args] = process.argv.slice(2)
  if (part === 'models') {
    if (args.length !== 1) throw new Error('usage: npm run bench -- models <dir>   (a folder of <name>/network.onnx + <name>/input.json)')
    const rows = await benchModels(args[0]!, runs)
    console.log(modelsTable(rows))
    console.log(JSON.stringify({ models: rows }))
    return
  }
  if (part !== undefined) throw new Error(`unknown bench part "${part}" (npm run bench, or npm run bench -- models <dir>)`)
  if (only === 'spine') {
    console.log(JSON.stringify(await benchSpine({ requests, prover })))
    return
  }
  if (only === 'operators') {
    console.log(JSON.stringify(await benchOperators({ requests: operatorsRequests, nativeRequests: operatorsNativeRequests })))
    return
  }
  if (only === 'batching') {
    console.log(
      JSON.stringify(
        await benchBatching({
          requests: batchingRequests,
          baselineRequests: batchingBaselineRequests,
          rate: batchingRate,
          sizes: batchingSizes,
        }),
      ),
    )
    return
  }
  if (only === 'crosschain') {
    console.log(JSON.stringify(await benchCrossChain({ requests: xchainRequests, prover, blockTime })))
    return
  }
  const engine = await benchEngineAndGas(runs)
  log(`gas: gateway's own cost ${engine.gas.fulfill - engine.gas.verifier - engine.gas.callback}`)
  const provers = await benchProvers(runs)
  log(`native is ${(provers['ezkl-wasm'].proveMs / provers['ezkl-native'].proveMs).toFixed(1)}× faster than WASM`)
  const spine = await benchSpine({ requests, prover })
  const crossChain = await benchCrossChain({ requests: xchainRequests, prover, blockTime })
  const operators = await benchOperators({ requests: operatorsRequests, nativeRequests: operatorsNativeRequests })
  const batching = await benchBatching({
    requests: batchingRequests,
    baselineRequests: batchingBaselineRequests,
    rate: batchingRate,
    sizes: batchingSizes,
  })
  console.log(JSON.stringify({ ...engine, ...spine, provers, ...crossChain, ...operators, batching }))
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
