/**
 * The `sertn` command line.
 *
 *   sertn start [--once] [--prover ezkl-wasm|ezkl-native] …   the local hub and spoke, persisted in .data, and a demo request
 *   sertn request --features x1,x2,x3,x4 [--chain spoke|hub] …  a request from the example dApp on the running stack
 *   sertn status <request-key|requestId> [--json]               a request's workflow status (and hops)
 *   sertn explorer [--host 127.0.0.1] [--port 8090] …            a web page of the requests, verified in the browser
 *   sertn verify <request-key> [--json] [--storage URL]          re-checks a delivered result's proof off-chain
 *   sertn worker [--role ROLES] [--config FILE]                 Temporal workers (chain-io, inference, prover)
 *   sertn relay [--config FILE]                                  local Hyperlane validator and relayers between the chains
 *   sertn relay rejected [--json] | retry <id…|--all>           messages the local agents gave up on; send them again
 *   sertn keeper [--once] [--json] [--config FILE]              refunds expired requests, sends deferred receipts, dispatches Infernet subscriptions
 *   sertn demo [--model NAME] [--features x1,x2,x3,x4]          one verified inference on a local anvil, in one process
 *   sertn model build <network.onnx> --input <samples.json> …    a model's circuit, sized by search, with its report
 *   sertn model register <dir> …                                 its artifacts stored, registered on every chain
 *   sertn model upgrade <dir> …                                  a registered model's circuit replaced on every chain
 *   sertn node register|status|leave|withdraw|claim …           the node's stake and pools in the hub's NodeRegistry
 *   sertn keys new|import|address|list …                        encrypted keystores (as cast wallet's)
 *   sertn deploy --network network.json …                        a network on any EVM RPCs, from a network file
 *   sertn help [COMMAND]
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { SertnError } from '../core/errors.ts'
import { DEFAULT_DATA_DIR, DEMO_FEATURES, DEMO_MODEL, parseFeatures, parsePort, parseStackChain, UsageError } from './common.ts'
import type { ProverName } from './stack.ts'

/**
 * Commands are loaded when run: they import the generated contract artifacts, which a fresh
 * checkout does not have until `npm run build:contracts`.
 */
async function load<T>(importer: () => Promise<T>): Promise<T> {
  try {
    return await importer()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ERR_MODULE_NOT_FOUND' && /contracts[\\/]artifacts/.test(e.message))
      throw new SertnError('the contract artifacts are not built', {
        details: 'Run `npm run build:contracts` (npm start and npm test do it first).',
      })
    throw err
  }
}

const USAGE: Record<string, string> = {
  start: `sertn start [--once] [--prover ezkl-wasm|ezkl-native] [--data-dir .data] [--reset]
            [--features x1,x2,x3,x4] [--model NAME] [--verbose]
            [--hub-port 8545] [--spoke-port 8546] [--spokelz-port 8547]
            [--temporal-port 7233] [--ui-port 8233] [--arlocal-port 1984]
      The local stack in one command, persisted in the data directory: three anvils, the hub (chain
      31337: the market and its own gateway; state anvil-hub-state.json), a spoke joined to it over
      Hyperlane (chain 31338: a SpokeGateway; state anvil-spoke-state.json) and a spoke joined over
      LayerZero V2 (chain 31339, spokelz; state anvil-spokelz-state.json), with each messenger's
      real contracts (reused from deployment.json while every chain has them), the Temporal dev
      server with its UI (temporal.db), arlocal (arlocal/, funded wallet arweave-wallet.json), and as
      child processes two node operators' workers and the relay. Operator 1 (anvil account 1,
      Temporal namespace default, sertn.config.json) runs a worker process per role (chain-io,
      inference, prover); operator 2 (anvil account 5, namespace operator-2,
      sertn.operator-2.config.json, its cursors and fetched models in operator-2/) runs one process
      with every role; the relay (\`sertn relay\`: the messengers' local agents, state in relay/)
      reads sertn.config.json. Both operators are staked in every model's pool of the hub's node
      registry, which assigns each request to one of them; the other's workflow stands aside
      (settled-elsewhere). Then a demo request from the example dApp on
      each spoke, followed hop by hop: watch, spoke → hub (the request relayed and recorded by the
      market), inference, witness, prove, verify, store, hub (the result verified and sent), hub →
      spoke (delivered, verified on the spoke, callback), spoke → hub (the receipt settled on the
      hub), to the verified result. Each demo request says which operator the hub assigned it to
      (\`assigned  operator N (0x…) in epoch E, window 120 s\`) and which one served it. Keeps running until Ctrl-C, which stops everything it started;
      with --once, stops after the demo (exit 0 when the result was verified). The first start builds
      the Temporal CLI with Go into .tools/bin (about 5 minutes); later starts reuse everything.
      --prover     ezkl-wasm (default) or ezkl-native (Python venv in .tools/venv, set up on first use)
      --reset      delete the stack's files in the data directory first (new chains and history; both
                   operators' configurations and operator-2/)
      --verbose    print the child processes' output (the relay's deliveries among it)
      ports        0 means any free port; the UI port defaults to the Temporal port + 1000;
                   --anvil-port is the old name of --hub-port
      Keys are anvil's well-known accounts (0 owner, 1 and 5 the operators' nodes, 2 user, 3 relayer) and a validator key
      derived from a public label: local and insecure by design. Requests are served after 1
      confirmation: anvil automines, and the stack mines one empty block on top of any block that
      holds a request, on either chain.`,
  request: `sertn request --features x1,x2,x3,x4 [--chain spoke|hub] [--model NAME] [--wait] [--data-dir .data | --config FILE]
      Sends a classification request from the example dApp (ExampleClassifier) on the running local
      stack's spoke (default; served through the hub) or hub (--chain hub: the hub's own gateway),
      addresses from <data-dir>/deployment.json, and prints its request key on stdout. With --wait,
      follows it stage by stage (and hop by hop) to the verified result in the namespace of the
      operator the hub assigned it to, and says which operator served it (exit 1 if it is not fulfilled).`,
  status: `sertn status <request-key|requestId> [--json] [--chain NAME] [--data-dir .data | --config FILE]
      Prints a request's workflow status: stage, timings and attempts, output, storage ids,
      transactions, error; for a spoke's request also its market request on the hub and its hops
      (spoke → hub, hub, hub → spoke, spoke → hub). Reads the Temporal address from the configuration
      (default <data-dir>/sertn.config.json) and looks for the request's workflow in every operator's
      namespace (that configuration's, then each <data-dir>/sertn.operator-<n>.config.json's): it shows
      the workflow of the operator the hub assigned the request to, with an \`operator\` line (--json
      adds \`operator\` and \`others\`); a bare request id is taken on the gateway of --chain
      (default spoke). --json prints the status as JSON.`,
  explorer: `sertn explorer [--host 127.0.0.1] [--port 8090] [--data-dir .data | --config FILE]
      Serves a read-only web page of the node's requests on http://127.0.0.1:8090/ (--port 0: any
      free port): the newest requests of every operator's namespace with their stage, hops,
      transactions, gas, storage ids and operator, a page per request with its events on its chain,
      and a "verify in your browser" button that fetches the proof and the model's verifying key,
      settings and SRS from storage (each checked against the sha256 the model registry pins) and
      verifies the proof with the EZKL WASM engine in the page, showing the public instances next
      to the request's input and the delivered output. Reads the Temporal address, chains and
      storage from the configuration (default <data-dir>/sertn.config.json). --host 0.0.0.0 serves
      it beyond this machine (the browser then verifies only from 127.0.0.1 or behind HTTPS).`,
  verify: `sertn verify <request-key> [--json] [--storage URL] [--data-dir .data | --config FILE]
      Re-checks a delivered result off-chain (the client's verifyResult): fetches its proof and output
      document from storage (--storage, an Arweave gateway; default the configuration's
      storage.arweave.url) and the model's registered circuit (verifying key, settings, SRS, each
      checked against the registry's sha256), verifies the proof with the WASM engine, and checks its
      public instances against the request's input and the delivered output. Prints each check;
      exit 1 when one fails. The chain's RPC comes from the configuration (its chain id is the key's).`,
  worker: `sertn worker [--role chain-io,inference,prover] [--config sertn.config.json] [--log-level info] [--log-format auto]
      Runs Temporal workers for the given task-queue roles (all by default); with chain-io, also the
      chain watchers that start a workflow per confirmed request. Configuration: the file (default
      sertn.config.json, or SERTN_CONFIG) plus SERTN__* environment overrides. Logs go to standard
      error as JSON lines (pretty on a terminal; --log-format json|pretty|auto, --log-level
      trace…silent, default observability.logLevel / logFormat), a request's lines with its
      requestKey. With observability.http.port set (0: any free port), serves /metrics (Prometheus,
      Temporal's SDK metrics included), /healthz and /readyz. Keys: chain-io signs as the node (its
      keystore in the secrets file: secretsFile or SERTN_SECRETS); prover and inference need none.
      Before any worker starts it checks the secrets, keystores and passwords, and every RPC URL's
      chain id, and stops with one line naming what to fix. Temporal: temporal.address, namespace,
      tls (and the secrets file's temporal.apiKey or TEMPORAL_API_KEY for Temporal Cloud).`,
  relay: `sertn relay [--config sertn.config.json] [--log-level info] [--log-format auto]
      Runs the local agents of every messaging network configured on two chains or more (each
      chain's \`messenger: { kind, … }\` sections): for Hyperlane a validator signing each chain's
      merkle-tree checkpoints and a relayer per direction calling \`process\`; for LayerZero a DVN
      verifying each packet through the DVN contract and an executor calling \`lzReceive\`. They
      attest with relay.validatorKey after relay.confirmations blocks, pay with relay.relayerKey
      (default the node's key), relay only messages between Sertn's enrolled ports, keep their state
      in <dataDir>/relay/<kind> and resume from it after a restart. A message whose delivery failed
      relay.maxAttempts times is given up on (rejected) and kept:

  sertn relay rejected [--json] [--config sertn.config.json]
      Lists the messages the local agents gave up on, for every messenger: id, route, agent, the
      last failure's reason, attempts, when, and the origin transaction (read from the relay's
      state; safe while it runs).

  sertn relay retry <id…|--all> [--json] [--config sertn.config.json]
      Moves rejected messages (these ids, or all of them) back to pending once their cause is fixed:
      the request is left in <dataDir>/relay/<kind>/retry/, the running relay applies it within a
      poll (or the next \`sertn relay\` at its start) and the agents deliver them again. Waits a
      few seconds to say whether a running relay took it.`,
  keeper: `sertn keeper [--once] [--json] [--config sertn.config.json]
      Refunds expired requests and sends deferred settlement receipts on every configured chain: a
      gateway request still pending after its deadline is refunded (its requester gets its escrow
      back and an error callback; on a spoke the receipt closes its record in the hub market), and a
      spoke's receipt that its messenger refused when the request settled is sent, topping up its
      reserve by at most keeper.maxReceiptTopUpEth. Found from the gateways' events in bounded
      ranges (chains.<name>.logRangeBlocks), resumed from <dataDir>/keeper; paid by the node's
      account. Runs every keeper.intervalMs until Ctrl-C; --once runs one round and prints what it
      did (--json: as JSON; exit 1 if a chain's round failed). The chain-io worker runs the same
      keeper while keeper.enabled (default on); several keepers may run: a refund already made is done.
      It also dispatches the subscriptions of each chain's Infernet facade (chains.<name>.infernetCoordinator),
      every chains.<name>.pollingIntervalMs, as Infernet nodes do.`,
  model: `sertn model build <network.onnx> --input <samples.json> [--name NAME] [--out DIR] [--tolerance 0.01]
            [--target resources|accuracy] [--input-visibility public|hashed] [--output-visibility public|hashed]
            [--input-bound X] [--var name=N,…] [--description TEXT] [--max-logrows N] [--columns 1,2] [--scales 4,6,…]
            [--batch 16,64 | auto[,N…]] [--batch-max 64] [--srs-dir circuits/srs] [--no-wasm] [--json]
      Turns an ONNX model into a Sertn model directory (default circuits/<name>) with the pinned
      native ezkl 21.0.0: weights fixed in the circuit, input and output public (or Poseidon-hashed),
      calibrated on the samples ({"input_data": [[…]]}, one flat list per model input holding the
      samples one after another; the corners ±bound are added). The circuit is sized by a search over
      scales and layouts (range-check decomposition, inner columns, lookup margin) that keeps the
      smallest logrows whose output error against onnxruntime stays within --tolerance (--target
      accuracy: the smallest error). --columns widens the inner columns tried (default 1,2: every
      column past 2 costs about 290k verify gas per request; 8 does not verify on-chain). Then keys, the verifying-key artifact (VKA), a sample proof
      verified natively, by the WASM engine and on anvil, and a report: logrows, rows and columns,
      pk/vk/proof sizes, witness/prove/verify times (native and WASM), verify gas, and the output
      error on every sample (also in <out>/.build/report.json; --json prints it on stdout). The
      proving key is not kept: provers derive it from the compiled circuit and the SRS. An SRS is
      reused from --srs-dir (default circuits/srs) or generated there (insecure: dev and tests only). An unsupported
      operator, a dynamic dimension or a circuit too large for this machine ends in one line naming it.
      --batch N,… also builds the model's batch circuits: the graph widened to N rows per proof (each
      input's and output's first dimension, 1 in the model), with the model's run arguments, in
      <out>/batch-<N>/ and listed in its manifest; nodes prove up to N requests in one proof with it.
      --batch auto builds the ladder of sizes that fill their logrows: for each logrows from the
      model's own up to --max-logrows, the most rows per proof that fit, up to --batch-max (default
      64: the demo's 64-row batch is a 7 KB message, under LayerZero's default limit of 10,000
      bytes), which ends the ladder. The report gives each one's share of its rows used.

  sertn model register <dir> [--name NAME] [--compute-units N] [--data-dir .data | --config FILE]
            [--private-key 0x… | --keystore FILE [--password-file FILE] | SERTN_MODEL_OWNER_KEY] [--json]
      Uploads the model's artifacts (manifest, compiled circuit, settings, vk, VKA, ONNX graph,
      samples and SRS, then an index of them) to the configured storage, and registers the model on
      every configured chain's registry: its VKA deployed, its schema, scales, bound, visibility,
      compute units (from the circuit's size) and the artifacts' storage index and content hashes,
      paying each registry's registration fee; each spoke's VKA is recorded on the hub. The fee per
      inference is not chosen here: on each chain it is the compute units times the price per
      compute unit of the model's pool, set by that registry's owner (printed per chain). The
      model id is derived from the creator's account and the name. On a local stack the dev owner
      key is used when no key is given. Re-running it finishes an interrupted registration.

  sertn model upgrade <dir> [--name NAME] [--owner ADDRESS] [--data-dir .data | --config FILE]
            [--private-key 0x… | --keystore FILE [--password-file FILE] | SERTN_MODEL_OWNER_KEY] [--json]
      Replaces a registered model's circuit with a new build of it (new weights, keys or schema):
      uploads the build's artifacts to the configured storage, deploys its VKA (and its batch
      circuits' VKAs) and calls updateCircuit on every configured chain whose registry has another
      build (its version goes up by one there), then records each spoke's new deployment on the
      hub, so that the hub's market serves the new version. Prints each chain's version before →
      after. A chain at this build already is skipped: re-running it finishes an interrupted
      upgrade and otherwise sends nothing. Requests pending against the old version can then only
      be failed or refunded. The model must be registered (\`sertn model register\`) and owned by
      the signer; --name is the registered name (default: the build's manifest name), --owner the
      account its id was derived from (default: the signer; for a model handed over with
      transferModelOwnership).

  sertn model show <name|id> [--owner ADDRESS | --deployment deployment.json] [--data-dir .data | --config FILE] [--json]
      The model's registration on every configured chain (version, owner, verifier, VKA, artifacts
      hash, visibility, insecure-SRS flag), its pricing there (compute units, the pool's price per
      compute unit in the chain's native token, and the resulting fee per inference), its usage
      there (requests, served, distinct and repeat requesters: one call to the gateway's
      modelUsage) and its published backtests. A name is looked up under --owner (default: the
      local stack's dev owner).

  sertn model backtest publish <dir> [--input samples.json] [--name NAME] [--private-key 0x…] [--json]
      Proves the model's samples (default <dir>/samples.json) with the configured prover, stores the
      proven input/output pairs as one document, and records its storage id, sha256 and size on
      every chain's registry (ModelRegistry.publishBacktests).
  sertn model backtest verify <name|id> [--chain NAME] [--owner ADDRESS] [--json]
      Fetches the published pairs (checked against the recorded sha256) and the registered
      artifacts, and checks every pair: its proof's instances are its input and output (or their
      commitments), the proof verifies off-chain against the registered vk and on-chain with the
      registry's verifier and the model's VKA. Exit 1 unless every pair is valid.`,
  node: `sertn node register [--model NAME|ID …] [--owner ADDRESS] [--capacity 1000] [--stake ETH] [--json]
            [--data-dir .data | --config FILE] [--rpc-url URL] [--registry ADDRESS] [--gateway ADDRESS] [--private-key 0x… | --keystore FILE [--password-file FILE]]
      Stakes and joins the pools of the hub's NodeRegistry as the node (the configuration's node key,
      or --private-key, or --keystore and --password-file as cast takes them): stakes up to --stake (default: the models' minimum stake; never less than
      what is staked already: only the difference is sent), then registers for each model (default:
      the local stack's models, else ${DEMO_MODEL}; --model may be repeated; a name is looked up
      under --owner, default the local stack's dev owner) with --capacity compute units per epoch.
      A registration is active from the next epoch: it prints that epoch and its first block. A
      model already registered (and not leaving) is reported, not registered again.

  sertn node status [--node ADDRESS] [--json] [connection options]
      The node's epoch view: the epoch and the blocks left in it, its stake, each pool it registered
      for (capacity, used and remaining this epoch, active from/until, active now), its misses this
      epoch and the suspension limit, unbonding, credits, its earnings on the hub gateway (the
      escrow of each request it was paid for: model fee + fulfilment gas; spokes' payments are not
      counted) and its jobs (assigned, closed, reassigned away after a missed window), from the
      registry's events since its deployment. The node defaults to the key's account.

  sertn node leave [--model NAME|ID …] [--owner ADDRESS] [--json] [connection options]
      Leaves the pools (default: every pool the node serves) at the next epoch boundary, and says
      from which epoch (and block) the stake can be withdrawn once every pool is left.

  sertn node withdraw [--json] [connection options]
      Withdraws the whole stake once the node serves no pool and its unbonding ended; otherwise one
      line saying why (still registered, unbonding, nothing to withdraw) and when it becomes possible.

  sertn node claim [--json] [connection options]
      Claims the slash shares credited to the account (a requester whose job a node missed).

      Connection: the hub chain (the configured chain with a market), its gateway and the node key
      come from the configuration (default <data-dir>/sertn.config.json; --config FILE, such as the
      one \`sertn deploy\` writes); --deployment FILE (a \`sertn deploy\` record) names the models and
      who registered them (the local stack's deployment.json does with --data-dir). --rpc-url reaches a hub
      without one (pass --registry or --gateway, and --private-key or --node); --registry names the
      NodeRegistry (default: the hub gateway's nodes()); --gateway the hub gateway. Every
      transaction is simulated first: a refusal is one line and exit code 1.`,
  keys: `sertn keys new [NAME] [--keystore-dir keystores] [--password-file FILE]
  sertn keys import NAME [--private-key-file FILE] [--password-file FILE] [--keystore-dir keystores]
  sertn keys address NAME|FILE [--password-file FILE] [--keystore-dir keystores]
  sertn keys list [--keystore-dir keystores]
      Encrypted keystores (Web3 Secret Storage v3, scrypt with cast's parameters), as \`cast wallet
      new|import|address|list\` make and read them: \`new\` makes a key and writes only its keystore
      (named NAME, else a UUID) into the directory; \`import\` encrypts a raw key read from
      --private-key-file or a prompt; \`address\` decrypts a keystore and prints its address; \`list\`
      names the directory's keystores. Passwords come from --password-file (trailing whitespace
      trimmed) or a prompt without echo. Name the keystores in the secrets file (secretsFile or
      SERTN_SECRETS: {"node": {"keystore": …, "passwordFile": …}, "relayer": …, "validator": …}).`,
  deploy: `sertn deploy --network network.json [--record deployment.json] [--config-out sertn.config.json]
            [--dry-run] [--yes] (--keystore FILE --password-file FILE | --private-key 0x…)
      Deploys a Sertn network on the EVM chains a network file names (see examples/network.example.json):
      the hub (registry, node registry, gateway, market, each spoke's messenger), each spoke (its
      messenger, verifier, registry, spoke gateway) joined to the hub both ways, the file's models
      registered everywhere and their pools' minimum stake set. First it checks each RPC's chain id,
      the deployer's balance and, for a resume, the code at every recorded address; then it runs the
      whole deployment on a fork of each chain (anvil --fork-url) and prints the transactions, gas
      and cost per chain at the current fee. --dry-run stops there; otherwise it asks (or --yes) and
      sends. Each step is recorded in --record as it ends: a rerun skips what is recorded and sends
      only what is missing (nothing, once complete); an interrupted run finishes. Then it writes the
      node configuration (--config-out: chains, addresses, messengers, Temporal defaults) for operators.
      The deployer signs with a JSON keystore (as cast: --keystore, --password-file) or --private-key
      (local development only).`,
  demo: `sertn demo [--model NAME] [--features x1,x2,x3,x4]
      Everything in one process, no Temporal: a fresh anvil, the contracts, one request served
      stage by stage.`,
}

const HELP = `sertn — verified ML inference for smart contracts

Usage:
  ${Object.values(USAGE).join('\n\n  ')}

  sertn help [COMMAND]

Common options:
  --model      model directory under circuits/ (default: ${DEMO_MODEL})
  --features   comma-separated real inputs (default: ${DEMO_FEATURES})
  --data-dir   where \`start\` keeps the local stack's state (default: ${DEFAULT_DATA_DIR})

Examples:
  npm start                                        # = sertn start: hub, spoke and a demo request, until Ctrl-C
  npx tsx cli/sertn.ts start --once                # start, serve the demo request (spoke → hub → spoke), stop
  npx tsx cli/sertn.ts request --features 1,-2,0.5,3 --wait              # on the spoke
  npx tsx cli/sertn.ts request --features 1,-2,0.5,3 --wait --chain hub  # on the hub's own gateway
  npx tsx cli/sertn.ts status 2 --json             # request 2 on the spoke
`

/** parseArgs with errors that name the command's usage. */
function args<O extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true })
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)}`, {
      details: `usage: ${USAGE[command]?.split('\n')[0] ?? command}`,
    })
  }
}

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv
  switch (command) {
    case 'start': {
      const { values } = args('start', rest, {
        once: { type: 'boolean', default: false },
        prover: { type: 'string', default: 'ezkl-wasm' },
        'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
        reset: { type: 'boolean', default: false },
        model: { type: 'string', default: DEMO_MODEL },
        features: { type: 'string', default: DEMO_FEATURES },
        verbose: { type: 'boolean', default: false },
        'hub-port': { type: 'string' },
        'anvil-port': { type: 'string' },
        'spoke-port': { type: 'string' },
        'spokelz-port': { type: 'string' },
        'temporal-port': { type: 'string' },
        'ui-port': { type: 'string' },
        'arlocal-port': { type: 'string' },
      })
      if (values.prover !== 'ezkl-wasm' && values.prover !== 'ezkl-native')
        throw new UsageError(`--prover must be ezkl-wasm or ezkl-native, got "${values.prover}"`)
      const temporal = parsePort(values['temporal-port'], '--temporal-port', 7233)
      if (values['hub-port'] !== undefined && values['anvil-port'] !== undefined)
        throw new UsageError('--anvil-port is the old name of --hub-port: pass one of them')
      const hubFlag = values['anvil-port'] !== undefined ? '--anvil-port' : '--hub-port'
      const { startCommand } = await load(() => import('./stack.ts'))
      return startCommand({
        dataDir: values['data-dir'],
        once: values.once,
        prover: values.prover as ProverName,
        model: values.model,
        features: parseFeatures(values.features),
        reset: values.reset,
        verbose: values.verbose,
        ports: {
          hub: parsePort(values['hub-port'] ?? values['anvil-port'], hubFlag, 8545),
          spoke: parsePort(values['spoke-port'], '--spoke-port', 8546),
          spokelz: parsePort(values['spokelz-port'], '--spokelz-port', 8547),
          temporal,
          ui: parsePort(values['ui-port'], '--ui-port', temporal === 0 ? 0 : temporal + 1000),
          arlocal: parsePort(values['arlocal-port'], '--arlocal-port', 1984),
        },
      })
    }
    case 'request': {
      const { values } = args('request', rest, {
        features: { type: 'string' },
        model: { type: 'string', default: DEMO_MODEL },
        wait: { type: 'boolean', default: false },
        chain: { type: 'string' },
        'data-dir': { type: 'string' },
        config: { type: 'string' },
      })
      if (values.features === undefined) throw new UsageError(`sertn request needs --features, like --features ${DEMO_FEATURES}`)
      const chain = parseStackChain(values.chain)
      const { requestCommand } = await load(() => import('./request.ts'))
      return requestCommand({
        features: parseFeatures(values.features),
        model: values.model,
        wait: values.wait,
        chain,
        dataDir: values['data-dir'],
        config: values.config,
      })
    }
    case 'status': {
      const { values, positionals } = args(
        'status',
        rest,
        {
          json: { type: 'boolean', default: false },
          chain: { type: 'string' },
          'data-dir': { type: 'string' },
          config: { type: 'string' },
        },
        true,
      )
      if (positionals.length > 1) throw new UsageError(`sertn status takes one request key or id, got ${positionals.length}`)
      const { statusCommand } = await load(() => import('./status.ts'))
      return statusCommand({
        target: positionals[0],
        json: values.json,
        chain: values.chain,
        dataDir: values['data-dir'],
        config: values.config,
      })
    }
    case 'explorer': {
      const { values } = args('explorer', rest, {
        host: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        config: { type: 'string' },
      })
      const { explorerCommand } = await load(() => import('./explorer.ts'))
      return explorerCommand({
        host: values.host,
        port: parsePort(values.port, '--port', 8090),
        dataDir: values['data-dir'],
        config: values.config,
      })
    }
    case 'verify': {
      const { values, positionals } = args(
        'verify',
        rest,
        {
          json: { type: 'boolean', default: false },
          storage: { type: 'string' },
          'data-dir': { type: 'string' },
          config: { type: 'string' },
        },
        true,
      )
      if (positionals.length > 1) throw new UsageError(`sertn verify takes one request key, got ${positionals.length}`)
      const { verifyCommand } = await load(() => import('./verify.ts'))
      return verifyCommand({
        key: positionals[0],
        json: values.json,
        storage: values.storage,
        dataDir: values['data-dir'],
        config: values.config,
      })
    }
    case 'demo': {
      const { values } = args('demo', rest, {
        model: { type: 'string', default: DEMO_MODEL },
        features: { type: 'string', default: DEMO_FEATURES },
      })
      const { runDemo } = await load(() => import('./demo.ts'))
      await runDemo({ model: values.model, features: parseFeatures(values.features) })
      return 0
    }
    case 'model': {
      const [sub, ...more] = rest
      if (sub === 'register') {
        const { values, positionals } = args(
          'model',
          more,
          {
            name: { type: 'string' },
            fee: { type: 'string' },
            'compute-units': { type: 'string' },
            'data-dir': { type: 'string' },
            config: { type: 'string' },
            'private-key': { type: 'string' },
            keystore: { type: 'string' },
            'password-file': { type: 'string' },
            json: { type: 'boolean', default: false },
          },
          true,
        )
        if (positionals.length !== 1)
          throw new UsageError('sertn model register takes one model directory (what `sertn model build` wrote)')
        if (values.fee !== undefined)
          throw new UsageError(
            "sertn model register takes no --fee: a model's fee per inference is its compute units × its pool's unit price, set by the registry owner",
            { details: "Change the compute units with --compute-units; `sertn model show` prints each chain's unit price and fee." },
          )
        const cu = values['compute-units'] === undefined ? undefined : Number(values['compute-units'])
        if (cu !== undefined && !(Number.isSafeInteger(cu) && cu > 0))
          throw new UsageError(`--compute-units must be a positive integer, got "${values['compute-units']}"`)
        const key = values['private-key']
        if (key !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(key))
          throw new UsageError('--private-key must be a 0x-prefixed 32-byte hex key')
        if (key !== undefined && values.keystore !== undefined) throw new UsageError('pass --private-key or --keystore, not both')
        const { modelRegisterCommand } = await load(() => import('./model.ts'))
        return modelRegisterCommand({
          dir: positionals[0]!,
          json: values.json,
          ...(values.name !== undefined ? { name: values.name } : {}),
          ...(cu !== undefined ? { computeUnits: cu } : {}),
          ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
          ...(values.config !== undefined ? { config: values.config } : {}),
          ...(key !== undefined ? { privateKey: key as `0x${string}` } : {}),
          ...(values.keystore !== undefined ? { keystore: values.keystore } : {}),
          ...(values['password-file'] !== undefined ? { passwordFile: values['password-file'] } : {}),
        })
      }
      if (sub === 'upgrade') {
        const { values, positionals } = args(
          'model',
          more,
          {
            name: { type: 'string' },
            owner: { type: 'string' },
            'data-dir': { type: 'string' },
            config: { type: 'string' },
            'private-key': { type: 'string' },
            keystore: { type: 'string' },
            'password-file': { type: 'string' },
            json: { type: 'boolean', default: false },
          },
          true,
        )
        if (positionals.length !== 1)
          throw new UsageError('sertn model upgrade takes one model directory (the new build, what `sertn model build` wrote)')
        const key = values['private-key']
        if (key !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(key))
          throw new UsageError('--private-key must be a 0x-prefixed 32-byte hex key')
        if (key !== undefined && values.keystore !== undefined) throw new UsageError('pass --private-key or --keystore, not both')
        if (values.owner !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.owner))
          throw new UsageError(`--owner must be an address (0x and 40 hex digits), got "${values.owner}"`)
        const { modelUpgradeCommand } = await load(() => import('./model.ts'))
        return modelUpgradeCommand({
          dir: positionals[0]!,
          json: values.json,
          ...(values.name !== undefined ? { name: values.name } : {}),
          ...(values.owner !== undefined ? { owner: values.owner as `0x${string}` } : {}),
          ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
          ...(values.config !== undefined ? { config: values.config } : {}),
          ...(key !== undefined ? { privateKey: key as `0x${string}` } : {}),
          ...(values.keystore !== undefined ? { keystore: values.keystore } : {}),
          ...(values['password-file'] !== undefined ? { passwordFile: values['password-file'] } : {}),
        })
      }
      if (sub === 'backtest' || sub === 'show') {
        const [action, ...tail] = sub === 'backtest' ? more : ['show', ...more]
        if (action !== 'publish' && action !== 'verify' && action !== 'show')
          throw new UsageError(`sertn model backtest takes publish or verify, got "${action ?? ''}"`)
        const { values, positionals } = args(
          'model',
          tail,
          {
            input: { type: 'string' },
            name: { type: 'string' },
            owner: { type: 'string' },
            chain: { type: 'string' },
            'data-dir': { type: 'string' },
            config: { type: 'string' },
            'private-key': { type: 'string' },
            deployment: { type: 'string' },
            json: { type: 'boolean', default: false },
          },
          true,
        )
        if (positionals.length !== 1)
          throw new UsageError(
            action === 'publish'
              ? 'sertn model backtest publish takes one model directory'
              : `sertn model ${sub === 'show' ? 'show' : 'backtest verify'} takes one model name or id`,
          )
        if (values.owner !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.owner))
          throw new UsageError('--owner must be the address that registered the model')
        const key = values['private-key']
        if (key !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(key))
          throw new UsageError('--private-key must be a 0x-prefixed 32-byte hex key')
        const common = {
          json: values.json,
          ...(values.owner !== undefined ? { owner: values.owner as `0x${string}` } : {}),
          ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
          ...(values.config !== undefined ? { config: values.config } : {}),
        }
        const m = await load(() => import('./model.ts'))
        if (action === 'show')
          return m.modelShowCommand({
            target: positionals[0]!,
            ...common,
            ...(values.deployment !== undefined ? { deployment: values.deployment } : {}),
          })
        return m.modelBacktestCommand({
          action,
          target: positionals[0]!,
          ...common,
          ...(values.input !== undefined ? { samples: values.input } : {}),
          ...(values.name !== undefined ? { name: values.name } : {}),
          ...(values.chain !== undefined ? { chain: values.chain } : {}),
          ...(key !== undefined ? { privateKey: key as `0x${string}` } : {}),
        })
      }
      if (sub !== 'build')
        throw new UsageError(`unknown model command "${sub ?? ''}"`, { details: `usage: ${USAGE.model!.split('\n')[0]}` })
      const { values, positionals } = args(
        'model',
        more,
        {
          input: { type: 'string' },
          name: { type: 'string' },
          out: { type: 'string' },
          tolerance: { type: 'string' },
          target: { type: 'string' },
          'input-visibility': { type: 'string' },
          'output-visibility': { type: 'string' },
          'input-bound': { type: 'string' },
          var: { type: 'string' },
          description: { type: 'string' },
          'max-logrows': { type: 'string' },
          columns: { type: 'string' },
          scales: { type: 'string' },
          batch: { type: 'string' },
          'batch-max': { type: 'string' },
          'srs-dir': { type: 'string' },
          'no-wasm': { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
        },
        true,
      )
      if (positionals.length !== 1)
        throw new UsageError('sertn model build takes one ONNX file', { details: `usage: ${USAGE.model!.split('\n')[0]}` })
      if (!values.input) throw new UsageError('sertn model build needs --input <samples.json> (EZKL\'s {"input_data": [[…]]})')
      const { modelBuildCommand, parseVariables } = await load(() => import('./model.ts'))
      const num = (v: string | undefined, flag: string) => {
        if (v === undefined) return undefined
        const n = Number(v)
        if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got "${v}"`)
        return n
      }
      const choice = <T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined => {
        if (v === undefined) return undefined
        if (!allowed.includes(v as T)) throw new UsageError(`${flag} must be ${allowed.join(' or ')}, got "${v}"`)
        return v as T
      }
      const input = choice(values['input-visibility'], '--input-visibility', ['public', 'hashed'] as const)
      const output = choice(values['output-visibility'], '--output-visibility', ['public', 'hashed'] as const)
      const target = choice(values.target, '--target', ['resources', 'accuracy'] as const)
      const tolerance = num(values.tolerance, '--tolerance')
      const inputBound = num(values['input-bound'], '--input-bound')
      const maxLogrows = num(values['max-logrows'], '--max-logrows')
      const ints = (v: string | undefined, flag: string) => {
        if (v === undefined) return undefined
        const list = v.split(',').map((x) => Number(x.trim()))
        if (!list.length || !list.every((n) => Number.isSafeInteger(n) && n > 0))
          throw new UsageError(`${flag} takes positive integers separated by commas, got "${v}"`)
        return list
      }
      const columns = ints(values.columns, '--columns')
      const scales = ints(values.scales, '--scales')
      // --batch takes sizes and `auto` (the sizes that fill their logrows), separated by commas.
      const batchTokens = values.batch?.split(',').map((x) => x.trim())
      const batchAuto = batchTokens?.includes('auto') ?? false
      const explicit = batchTokens?.filter((x) => x !== 'auto') ?? []
      const batches = explicit.length ? ints(explicit.join(','), '--batch') : undefined
      if (batches?.some((n) => n < 2))
        throw new UsageError(`--batch takes sizes above 1 (1 is the model itself) or auto, got "${values.batch}"`)
      const batchMax = values['batch-max'] !== undefined ? ints(values['batch-max'], '--batch-max')?.[0] : undefined
      if (batchMax !== undefined && !batchAuto) throw new UsageError('--batch-max bounds --batch auto: add --batch auto')
      if (batchMax !== undefined && batchMax < 2) throw new UsageError(`--batch-max must be 2 or more, got "${values['batch-max']}"`)
      return modelBuildCommand({
        onnx: positionals[0]!,
        samples: values.input,
        variables: parseVariables(values.var),
        wasm: !values['no-wasm'],
        json: values.json,
        visibility: { ...(input ? { input } : {}), ...(output ? { output } : {}) },
        ...(values.name !== undefined ? { name: values.name } : {}),
        ...(values.out !== undefined ? { outDir: values.out } : {}),
        ...(values.description !== undefined ? { description: values.description } : {}),
        ...(target ? { target } : {}),
        ...(tolerance !== undefined ? { tolerance } : {}),
        ...(inputBound !== undefined ? { inputBound } : {}),
        ...(maxLogrows !== undefined ? { maxLogrows } : {}),
        ...(columns || scales ? { search: { ...(columns ? { columns } : {}), ...(scales ? { scales } : {}) } } : {}),
        ...(batches ? { batches } : {}),
        ...(batchAuto ? { batchAuto: batchMax !== undefined ? { maxRows: batchMax } : {} } : {}),
        ...(values['srs-dir'] !== undefined ? { srsDir: values['srs-dir'] } : {}),
      })
    }
    case 'node': {
      const [sub, ...more] = rest
      const subs = ['register', 'status', 'leave', 'withdraw', 'claim'] as const
      if (!subs.includes(sub as (typeof subs)[number]))
        throw new UsageError(`sertn node takes ${subs.join(', ')}; got "${sub ?? ''}"`, { details: `usage: ${USAGE.node!.split('\n')[0]}` })
      const connection = {
        'data-dir': { type: 'string' },
        config: { type: 'string' },
        'rpc-url': { type: 'string' },
        registry: { type: 'string' },
        gateway: { type: 'string' },
        'private-key': { type: 'string' },
        keystore: { type: 'string' },
        'password-file': { type: 'string' },
        deployment: { type: 'string' },
        json: { type: 'boolean', default: false },
      } as const
      const models = { model: { type: 'string', multiple: true }, owner: { type: 'string' } } as const
      const { values } = args(
        'node',
        more,
        sub === 'register'
          ? { ...connection, ...models, capacity: { type: 'string' }, stake: { type: 'string' } }
          : sub === 'leave'
            ? { ...connection, ...models }
            : sub === 'status'
              ? { ...connection, node: { type: 'string' } }
              : connection,
      )
      const v = values as Record<string, string | string[] | boolean | undefined>
      const str = (name: string) => v[name] as string | undefined
      const address = (name: string) => {
        const a = str(name)
        if (a !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(a))
          throw new UsageError(`--${name} must be a 0x-prefixed 20-byte address, got "${a}"`)
        return a as `0x${string}` | undefined
      }
      const key = str('private-key')
      if (key !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(key)) throw new UsageError('--private-key must be a 0x-prefixed 32-byte hex key')
      if (key !== undefined && str('keystore') !== undefined) throw new UsageError('pass --private-key or --keystore, not both')
      const rpcUrl = str('rpc-url')
      if (rpcUrl !== undefined && !/^https?:\/\/./.test(rpcUrl)) throw new UsageError(`--rpc-url must be an http(s) URL, got "${rpcUrl}"`)
      const common = {
        json: v.json === true,
        dataDir: str('data-dir'),
        config: str('config'),
        rpcUrl,
        registry: address('registry'),
        gateway: address('gateway'),
        privateKey: key as `0x${string}` | undefined,
        keystore: str('keystore'),
        passwordFile: str('password-file'),
        deployment: str('deployment'),
      }
      const m = await load(() => import('./node.ts'))
      if (sub === 'status') return m.nodeStatusCommand({ ...common, node: address('node') })
      if (sub === 'withdraw') return m.nodeWithdrawCommand(common)
      if (sub === 'claim') return m.nodeClaimCommand(common)
      const modelOptions = { models: v.model as string[] | undefined, owner: address('owner') }
      if (sub === 'leave') return m.nodeLeaveCommand({ ...common, ...modelOptions })
      let stake: bigint | undefined
      const rawStake = str('stake')
      if (rawStake !== undefined) {
        const { parseEther } = await import('viem')
        try {
          stake = parseEther(rawStake)
        } catch {
          throw new UsageError(`--stake is in ether, like --stake 1.5; got "${rawStake}"`)
        }
        if (stake <= 0n) throw new UsageError(`--stake must be more than 0 ether, got "${rawStake}"`)
      }
      const rawCapacity = str('capacity')
      let capacity: bigint | undefined
      if (rawCapacity !== undefined) {
        if (!/^\d+$/.test(rawCapacity) || BigInt(rawCapacity) === 0n || BigInt(rawCapacity) >= 2n ** 64n - 1n)
          throw new UsageError(`--capacity must be a positive integer (compute units per epoch), got "${rawCapacity}"`)
        capacity = BigInt(rawCapacity)
      }
      return m.nodeRegisterCommand({ ...common, ...modelOptions, stake, capacity })
    }
    case 'deploy': {
      const { values } = args('deploy', rest, {
        network: { type: 'string' },
        record: { type: 'string' },
        'config-out': { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        yes: { type: 'boolean', default: false },
        keystore: { type: 'string' },
        'password-file': { type: 'string' },
        'private-key': { type: 'string' },
      })
      if (!values.network) throw new UsageError('sertn deploy needs --network FILE (see examples/network.example.json)')
      const { deployCommand } = await load(() => import('./deploy.ts'))
      return deployCommand({
        network: values.network,
        record: values.record,
        configOut: values['config-out'],
        dryRun: values['dry-run'],
        yes: values.yes,
        keystore: values.keystore,
        passwordFile: values['password-file'],
        privateKey: values['private-key'],
      })
    }
    case 'worker': {
      const { values } = args('worker', rest, {
        role: { type: 'string', default: 'chain-io,inference,prover' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
      })
      const { workerCommand } = await load(() => import('./worker.ts'))
      return workerCommand({
        roles: values.role,
        ...(values['log-level'] ? { logLevel: values['log-level'] } : {}),
        ...(values['log-format'] ? { logFormat: values['log-format'] } : {}),
        ...(values.config ? { config: values.config } : {}),
      })
    }
    case 'relay': {
      const [sub, ...more] = rest
      if (sub === 'rejected' || sub === 'retry') {
        const { values, positionals } = args(
          'relay',
          more,
          { config: { type: 'string' }, json: { type: 'boolean', default: false }, all: { type: 'boolean', default: false } },
          sub === 'retry',
        )
        const relay = await load(() => import('./relay.ts'))
        const config = values.config ? { config: values.config } : {}
        if (sub === 'rejected') return relay.relayRejectedCommand({ ...config, json: values.json })
        if (values.all === positionals.length > 0)
          throw new UsageError(
            values.all
              ? 'sertn relay retry takes message ids or --all, not both'
              : 'sertn relay retry needs the ids of the messages to retry (from `sertn relay rejected`), or --all',
          )
        for (const id of positionals)
          if (!/^0x[0-9a-fA-F]{64}$/.test(id)) throw new UsageError(`a message id is 32 bytes of hex (0x + 64 digits), got "${id}"`)
        return relay.relayRetryCommand({ ...config, json: values.json, ids: values.all ? 'all' : (positionals as `0x${string}`[]) })
      }
      const { values } = args('relay', rest, {
        config: { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
      })
      const { relayCommand } = await load(() => import('./relay.ts'))
      return relayCommand({
        ...(values['log-level'] ? { logLevel: values['log-level'] } : {}),
        ...(values['log-format'] ? { logFormat: values['log-format'] } : {}),
        ...(values.config ? { config: values.config } : {}),
      })
    }
    case 'keeper': {
      const { values } = args('keeper', rest, {
        once: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        config: { type: 'string' },
      })
      const { keeperCommand } = await load(() => import('./keeper.ts'))
      return keeperCommand({ once: values.once, json: values.json, ...(values.config ? { config: values.config } : {}) })
    }
    case 'keys': {
      const [sub, ...more] = rest
      const subs = ['new', 'import', 'address', 'list'] as const
      if (!subs.includes(sub as (typeof subs)[number]))
        throw new UsageError(`sertn keys takes ${subs.join(', ')}; got "${sub ?? ''}"`, { details: `usage: ${USAGE.keys!.split('\n')[0]}` })
      const { values, positionals } = args(
        'keys',
        more,
        {
          'keystore-dir': { type: 'string' },
          'password-file': { type: 'string' },
          ...(sub === 'import' ? { 'private-key-file': { type: 'string' } } : {}),
        },
        true,
      )
      const v = values as Record<string, string | undefined>
      const common = { keystoreDir: v['keystore-dir'], passwordFile: v['password-file'] }
      const k = await import('./keys.ts')
      if (sub === 'list') {
        if (positionals.length) throw new UsageError('sertn keys list takes no name')
        return k.keysListCommand(common)
      }
      if (sub === 'new') {
        if (positionals.length > 1) throw new UsageError('sertn keys new takes at most one name')
        return k.keysNewCommand({ ...common, name: positionals[0] })
      }
      if (positionals.length !== 1)
        throw new UsageError(`sertn keys ${sub} takes one ${sub === 'import' ? 'name' : 'keystore name or file'}`)
      if (sub === 'import') return k.keysImportCommand({ ...common, name: positionals[0]!, privateKeyFile: v['private-key-file'] })
      return k.keysAddressCommand({ ...common, target: positionals[0]! })
    }
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0]
      console.log(topic && USAGE[topic] ? `usage: ${USAGE[topic]}` : HELP)
      return 0
    }
    default:
      throw new UsageError(`unknown command "${command}"`, { details: `commands: ${Object.keys(USAGE).join(', ')}, help` })
  }
}

// A closed pipe (`sertn start | head`) must not crash the stack before it has stopped its processes.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n(see \`sertn help\`)`)
      process.exit(2)
    }
    const message = err instanceof Error ? err.message : String(err)
    console.error(`\nerror: ${message}`)
    if (process.env.SERTN_DEBUG && err instanceof Error) {
      if (!(err instanceof SertnError)) console.error(err.stack)
      else if (err.cause instanceof Error) console.error(`cause: ${err.cause.message}`)
    } else if (err instanceof SertnError && err.cause instanceof Error) console.error('(SERTN_DEBUG=1 shows the cause)')
    process.exit(1)
  },
)
