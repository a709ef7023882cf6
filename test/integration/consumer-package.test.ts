/**
 * The Solidity package `@sertn/contracts` (contracts/src) as its users get it: the worked example
 * consumer (LoanRiskScorer) copied into a project outside the repository, importing the package by
 * its name, compiled with Hardhat's node_modules resolution (through the package's `exports`) and
 * with Foundry's remappings (read from the repository's remappings.txt and foundry.toml as forge
 * reads a dependency's); then the compiled consumer's behaviour on anvil against SertnTestGateway:
 * request, fulfil, decline, error with refund, expiry, double settlement refused, callbacks only
 * from the gateway, a gas-starved callback, and a model change refused by the pins.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseEventLogs, type Address, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { confirm, deployContract } from '../../chains/evm/transactions.ts'
import { LOCAL_CHAINS, startLocalChain, type LocalChain } from '../../chains/local.ts'
import { LoanRiskScorer, SertnTestGateway } from '../../contracts/artifacts/index.ts'
import { compileSolidity, VKA_SOLC_SETTINGS, type CompiledContract } from '../../contracts/solc.ts'
import { balanceOf, expectRevert, increaseTime } from '../support/chain.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const PACKAGE_DIR = join(root, 'contracts', 'src')
const EXAMPLE = join(PACKAGE_DIR, 'examples', 'LoanRiskScorer.sol')

/** The users' pipeline: solc's legacy pipeline with the optimizer (Hardhat's and forge's default, not via-IR). */
const USER_SETTINGS = VKA_SOLC_SETTINGS

const STATUS = { Pending: 1, Fulfilled: 2, Failed: 3, Refunded: 4 } as const
const CALLBACK = { Succeeded: 0, Failed: 1 } as const
const DECISION = { None: 0, Pending: 1, Approved: 2, Declined: 3, Failed: 4, Unanswered: 5 } as const
/** Risk grades the test model scores (its outputs), and the riskiest the lender approves. */
const GRADES = 3
const MAX_APPROVED_GRADE = 1
const ERROR_CODE = { ModelFailed: 2, Timeout: 5 } as const

const MODEL: Hex = `0x${'5e'.repeat(32)}`
const ARTIFACTS: Hex = `0x${'a1'.repeat(32)}`
const FEE = 10n ** 15n
const CALLBACK_GAS = 100_000
const FEATURES = [2048n, -1024n, 4096n, 512n]
const TEST_MODEL = {
  active: true,
  version: 1,
  inputLength: 4,
  outputLength: GRADES,
  maxAbsInput: 1n << 20n,
  fee: FEE,
  inputHashed: false,
  outputHashed: false,
  artifactsHash: ARTIFACTS,
}

let project: string
/** The example as a user's project compiled it (Hardhat-style), and again (Foundry-style). */
let hardhatBuild: CompiledContract
let foundryBuild: CompiledContract
let foundryRemappings: string[]

/** The example as a user copies it into their project: imports by the package's name. */
function exampleAsUserSource(): string {
  const source = readFileSync(EXAMPLE, 'utf8').replaceAll('"../', '"@sertn/contracts/')
  expect(source).not.toMatch(/import [^;]*"\.\.?\//)
  return source
}

/** A user's test fixture: deploys the package's test gateway. */
const FIXTURE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {SertnTestGateway} from "@sertn/contracts/testing/SertnTestGateway.sol";
import {IInferenceGateway} from "@sertn/contracts/interfaces/IInferenceGateway.sol";
contract LenderFixture {
    function deployGateway() external returns (IInferenceGateway) {
        return new SertnTestGateway();
    }
}
`

/**
 * The remappings forge derives for a dependency installed at `lib/<name>`: its remappings.txt
 * (read because it has a foundry.toml), each target under `lib/<name>/`; and the package entry
 * point `<name>/=lib/<name>/<src>/` from its foundry.toml's `src`.
 */
function forgeDependencyRemappings(projectDir: string, name: string): string[] {
  const dep = join(projectDir, 'lib', name)
  const toml = readFileSync(join(dep, 'foundry.toml'), 'utf8')
  const src = /^\s*src\s*=\s*"([^"]+)"/m.exec(toml)?.[1]
  if (!src) throw new Error('the dependency foundry.toml names no src')
  const own = readFileSync(join(dep, 'remappings.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [prefix, target] = l.split('=') as [string, string]
      return `${prefix}=lib/${name}/${target}`
    })
  return [...own, `${name}/=lib/${name}/${src.replace(/\/?$/, '/')}`]
}

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'sertn-lender-'))
  // Hardhat: `npm install @sertn/contracts` puts the package under node_modules (a link here, as
  // a workspace or `file:` install makes it).
  await mkdir(join(project, 'node_modules', '@sertn'), { recursive: true })
  await symlink(PACKAGE_DIR, join(project, 'node_modules', '@sertn', 'contracts'), 'dir')
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'lender', private: true, dependencies: { '@sertn/contracts': '0.1.0' } }),
  )
  // Foundry: `forge install` clones the whole repository under lib/.
  await mkdir(join(project, 'lib'))
  await symlink(root, join(project, 'lib', 'sertn'), 'dir')
  await mkdir(join(project, 'contracts'))
  await writeFile(join(project, 'contracts', 'LoanRiskScorer.sol'), exampleAsUserSource())
  await writeFile(join(project, 'contracts', 'LenderFixture.sol'), FIXTURE)
})

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true })
})

describe('the package as users import it', () => {
  test('default: Hardhat-style, the example and a test fixture compile against node_modules/@sertn/contracts', () => {
    const sources = {
      'contracts/LoanRiskScorer.sol': { content: readFileSync(join(project, 'contracts', 'LoanRiskScorer.sol'), 'utf8') },
      'contracts/LenderFixture.sol': { content: FIXTURE },
    }
    const out = compileSolidity(sources, project, USER_SETTINGS)
    hardhatBuild = out.contracts['contracts/LoanRiskScorer.sol']!.LoanRiskScorer!
    expect(hardhatBuild.bytecode.length).toBeGreaterThan(1000)
    expect(out.contracts['contracts/LenderFixture.sol']!.LenderFixture!.bytecode.length).toBeGreaterThan(1000)
    // The same interface as the package's own build.
    expect(hardhatBuild.abi).toEqual(LoanRiskScorer.abi)
    // Only the package was needed: nothing the users did not install.
    expect(out.warnings.filter((w) => w.file?.startsWith('@sertn/'))).toEqual([])
  })

  test('default: Foundry-style, the same sources compile with the remappings forge derives from the repository', () => {
    foundryRemappings = forgeDependencyRemappings(project, 'sertn')
    expect(foundryRemappings).toEqual(['@sertn/contracts/=lib/sertn/contracts/src/', 'sertn/=lib/sertn/contracts/src/'])
    const sources = {
      'src/LoanRiskScorer.sol': { content: exampleAsUserSource() },
      'test/LenderFixture.sol': { content: FIXTURE },
    }
    const out = compileSolidity(sources, project, { ...USER_SETTINGS, remappings: foundryRemappings })
    foundryBuild = out.contracts['src/LoanRiskScorer.sol']!.LoanRiskScorer!
    expect(foundryBuild.abi).toEqual(LoanRiskScorer.abi)
    expect(Object.keys(out.contracts)).toContain('lib/sertn/contracts/src/testing/SertnTestGateway.sol')
    expect(out.contracts['lib/sertn/contracts/src/testing/SertnTestGateway.sol']!.SertnTestGateway!.abi).toEqual(SertnTestGateway.abi)
  })

  test('behavior: every Solidity file of the package resolves through its package.json exports, as Node and Hardhat resolve it', () => {
    const req = createRequire(join(project, 'package.json'))
    const files = (function walk(dir: string): string[] {
      return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.sol') ? [join(dir, e.name)] : [],
      )
    })(PACKAGE_DIR)
    expect(files.length).toBeGreaterThan(20)
    for (const f of files) {
      const specifier = `@sertn/contracts/${relative(PACKAGE_DIR, f)}`
      expect(req.resolve(specifier)).toBe(f)
    }
    // Hardhat 2 finds a package's root through its package.json, which must stay exported.
    expect(req.resolve('@sertn/contracts/package.json')).toBe(join(PACKAGE_DIR, 'package.json'))
    expect(() => req.resolve('@sertn/contracts/README.md')).toThrow()
  })

  test('behavior: the consumer-facing set imports nothing outside the package (no peer dependencies), and the package ships it', () => {
    const entry = ['SertnConsumer.sol', 'examples/LoanRiskScorer.sol', 'testing/SertnTestGateway.sol', 'interfaces/ISertnCopies.sol']
    const seen = new Set<string>()
    const pending = entry.map((e) => join(PACKAGE_DIR, e))
    while (pending.length > 0) {
      const file = pending.pop()!
      if (seen.has(file)) continue
      seen.add(file)
      for (const [, path] of readFileSync(file, 'utf8').matchAll(/import\s[^;]*?"([^"]+)"/g)) {
        expect(path, `${relative(PACKAGE_DIR, file)} imports ${path}`).toMatch(/^\.\.?\//)
        const target = resolve(dirname(file), path!)
        expect(target.startsWith(`${PACKAGE_DIR}/`), `${relative(PACKAGE_DIR, file)} imports ${path}`).toBe(true)
        expect(existsSync(target)).toBe(true)
        pending.push(target)
      }
    }
    expect(seen.size).toBeGreaterThanOrEqual(8)
    // What `npm publish` would ship holds all of them, and the readme.
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PACKAGE_DIR, encoding: 'utf8' }),
    ) as [{ name: string; files: { path: string }[] }]
    expect(packed.name).toBe('@sertn/contracts')
    const shipped = new Set(packed.files.map((f) => f.path))
    for (const f of [...seen].map((f) => relative(PACKAGE_DIR, f))) expect(shipped, f).toContain(f)
    expect(shipped).toContain('README.md')
    const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as Record<string, unknown>
    expect(pkg.peerDependencies).toBeUndefined()
    expect(pkg.dependencies).toBeUndefined()
  })
})

// ───────────────────────── behaviour against SertnTestGateway ─────────────────────────

describe('the example consumer against SertnTestGateway', () => {
  let chain: LocalChain
  let gateway: Address
  let scorer: Address
  const abi = LoanRiskScorer.abi

  beforeAll(async () => {
    chain = await startLocalChain({ name: 'lender', chainId: LOCAL_CHAINS.hub.chainId })
    gateway = await deployContract(chain.owner, SertnTestGateway)
    await confirm(
      chain.owner,
      await chain.owner.writeContract({ address: gateway, abi: SertnTestGateway.abi, functionName: 'setModel', args: [MODEL, TEST_MODEL] }),
    )
    scorer = await deployScorer()
  })

  afterAll(async () => {
    await chain?.anvil.stop()
  })

  /** Deploys the example as the user's project compiled it (Foundry-style build; its ABI is the package's). */
  function deployScorer(opts: { gateway?: Address; artifacts?: Hex; callbackGas?: number } = {}): Promise<Address> {
    const build = foundryBuild ?? hardhatBuild
    if (!build) throw new Error('the example did not compile')
    return deployContract(chain.user, { abi: build.abi, bytecode: build.bytecode }, [
      opts.gateway ?? gateway,
      MODEL,
      1,
      opts.artifacts ?? ARTIFACTS,
      GRADES,
      MAX_APPROVED_GRADE,
      opts.callbackGas ?? CALLBACK_GAS,
    ])
  }

  async function price(at = scorer): Promise<bigint> {
    return chain.user.readContract({ address: at, abi, functionName: 'price' })
  }

  /** Applies as `chain.user`, paying `value` (default: the price); returns the request id. */
  async function apply(at = scorer, value?: bigint): Promise<bigint> {
    const { request, result } = await chain.user.simulateContract({
      address: at,
      abi,
      functionName: 'applyForLoan',
      args: [FEATURES],
      value: value ?? (await price(at)),
    })
    await confirm(chain.user, await chain.user.writeContract(request))
    return result
  }

  async function settle(functionName: 'fulfillRequest' | 'failRequest' | 'expireRequest', args: readonly unknown[]) {
    const { request } = await chain.owner.simulateContract({ address: gateway, abi: SertnTestGateway.abi, functionName, args } as never)
    const receipt = await confirm(chain.owner, await chain.owner.writeContract(request as never))
    return {
      receipt,
      gatewayEvents: parseEventLogs({ abi: SertnTestGateway.abi, logs: receipt.logs }),
      scorerEvents: parseEventLogs({ abi, logs: receipt.logs }),
    }
  }

  const requestOf = (id: bigint) =>
    chain.user.readContract({ address: gateway, abi: SertnTestGateway.abi, functionName: 'getRequest', args: [id] })
  const applicationOf = (id: bigint, at = scorer) => chain.user.readContract({ address: at, abi, functionName: 'application', args: [id] })
  const refundOf = (who: Address, at = scorer) => chain.user.readContract({ address: at, abi, functionName: 'refundOf', args: [who] })

  test('default: request, paid at the quote, pinned; a verified-style result approves; a second settlement is refused', async () => {
    const expected = FEE + BigInt(750_000 + CALLBACK_GAS) * 10n ** 9n
    expect(await price()).toBe(expected)
    const before = await refundOf(chain.user.account.address)
    const id = await apply(scorer, expected + 7n)
    expect(await requestOf(id)).toMatchObject({
      status: STATUS.Pending,
      requester: scorer,
      modelId: MODEL,
      modelVersion: 1,
      escrow: expected,
      callbackGasLimit: CALLBACK_GAS,
    })
    expect(await applicationOf(id)).toMatchObject({ applicant: chain.user.account.address, decision: DECISION.Pending, escrow: expected })
    expect(await refundOf(chain.user.account.address)).toBe(before + 7n)
    expect(
      await chain.user.readContract({ address: scorer, abi, functionName: 'openApplicationOf', args: [chain.user.account.address] }),
    ).toBe(id)
    expect((await expectRevert(apply())).errorName).toBe('LoanRiskScorerApplicationOpen')

    const ownerBefore = await balanceOf(chain.owner, chain.owner.account.address)
    const { receipt, gatewayEvents, scorerEvents } = await settle('fulfillRequest', [id, [100n, 900n, 50n]])
    const fulfilled = gatewayEvents.find((e) => e.eventName === 'InferenceFulfilled')
    expect(fulfilled?.args).toMatchObject({ requestId: id, output: [100n, 900n, 50n], callbackStatus: CALLBACK.Succeeded })
    expect(scorerEvents.find((e) => e.eventName === 'LoanScored')?.args).toMatchObject({
      requestId: id,
      decision: DECISION.Approved,
      grade: 1,
      scores: [100n, 900n, 50n],
    })
    expect(await applicationOf(id)).toMatchObject({ decision: DECISION.Approved, grade: 1 })
    expect((await requestOf(id)).status).toBe(STATUS.Fulfilled)
    // The escrow went to the one who answered (here the test, in the node's place).
    expect(await balanceOf(chain.owner, chain.owner.account.address)).toBe(
      ownerBefore + expected - receipt.gasUsed * receipt.effectiveGasPrice,
    )

    // At most once: the gateway refuses a second result, a failure or an expiry of a settled request.
    for (const [fn, args] of [
      ['fulfillRequest', [id, [1n, 2n, 3n]]],
      ['failRequest', [id, ERROR_CODE.ModelFailed, 'late']],
      ['expireRequest', [id]],
    ] as const) {
      const r = await expectRevert(
        chain.owner.simulateContract({ address: gateway, abi: SertnTestGateway.abi, functionName: fn, args } as never),
      )
      expect(r).toEqual({ errorName: 'GatewayRequestNotPending', args: [id, STATUS.Fulfilled] })
    }
  })

  test('default: a riskier grade declines', async () => {
    const id = await apply()
    // The result must have one score per grade, as the model declares.
    const shape = await expectRevert(
      chain.owner.simulateContract({ address: gateway, abi: SertnTestGateway.abi, functionName: 'fulfillRequest', args: [id, [1n, 2n]] }),
    )
    expect(shape).toEqual({ errorName: 'ResultOutputShapeMismatch', args: [3n, 2n] })
    await settle('fulfillRequest', [id, [100n, -200n, 700n]])
    expect(await applicationOf(id)).toMatchObject({ decision: DECISION.Declined, grade: 2 })
  })

  test('error: a failed request refunds the escrow to the consumer, which owes it to the applicant', async () => {
    const id = await apply()
    const escrow = (await requestOf(id)).escrow
    const scorerBalance = await balanceOf(chain.user, scorer)
    const owedBefore = await refundOf(chain.user.account.address)
    const { gatewayEvents, scorerEvents } = await settle('failRequest', [id, ERROR_CODE.ModelFailed, 'the model run failed'])
    expect(gatewayEvents.find((e) => e.eventName === 'InferenceFailed')?.args).toMatchObject({
      requestId: id,
      code: ERROR_CODE.ModelFailed,
      callbackStatus: CALLBACK.Succeeded,
    })
    expect(scorerEvents.find((e) => e.eventName === 'LoanScoringFailed')?.args).toMatchObject({
      requestId: id,
      code: ERROR_CODE.ModelFailed,
      reason: 'the model run failed',
    })
    expect((await requestOf(id)).status).toBe(STATUS.Failed)
    expect(await balanceOf(chain.user, scorer)).toBe(scorerBalance + escrow)
    expect(await applicationOf(id)).toMatchObject({ decision: DECISION.Failed })
    expect(await refundOf(chain.user.account.address)).toBe(owedBefore + escrow)

    const userBefore = await balanceOf(chain.user, chain.user.account.address)
    const { request } = await chain.user.simulateContract({ address: scorer, abi, functionName: 'withdrawRefund' })
    const receipt = await confirm(chain.user, await chain.user.writeContract(request))
    expect(await balanceOf(chain.user, chain.user.account.address)).toBe(
      userBefore + owedBefore + escrow - receipt.gasUsed * receipt.effectiveGasPrice,
    )
    expect(await refundOf(chain.user.account.address)).toBe(0n)
    expect((await expectRevert(chain.user.simulateContract({ address: scorer, abi, functionName: 'withdrawRefund' }))).errorName).toBe(
      'LoanRiskScorerNothingToWithdraw',
    )
  })

  test('error: expiry, by the test control and by the deadline passing, refunds with a Timeout callback', async () => {
    const a = await apply()
    const { scorerEvents } = await settle('expireRequest', [a])
    expect(scorerEvents.find((e) => e.eventName === 'LoanScoringFailed')?.args).toMatchObject({ requestId: a, code: ERROR_CODE.Timeout })
    expect((await requestOf(a)).status).toBe(STATUS.Refunded)

    const b = await apply()
    // Not before the deadline, from anyone.
    expect(
      (await expectRevert(chain.stranger.simulateContract({ address: scorer, abi, functionName: 'reconcile', args: [b] }))).errorName,
    ).toBe('LoanRiskScorerStillPending')
    expect(
      (
        await expectRevert(
          chain.stranger.simulateContract({ address: gateway, abi: SertnTestGateway.abi, functionName: 'refund', args: [b] }),
        )
      ).errorName,
    ).toBe('GatewayRequestNotExpired')
    await increaseTime(chain.user, 3601)
    // The consumer's reconcile asks the gateway for the refund, which calls its error callback.
    const { request } = await chain.stranger.simulateContract({ address: scorer, abi, functionName: 'reconcile', args: [b] })
    await confirm(chain.stranger, await chain.stranger.writeContract(request))
    expect((await requestOf(b)).status).toBe(STATUS.Refunded)
    expect(await applicationOf(b)).toMatchObject({ decision: DECISION.Failed })
    // A late result is refused.
    const late = await expectRevert(
      chain.owner.simulateContract({
        address: gateway,
        abi: SertnTestGateway.abi,
        functionName: 'fulfillRequest',
        args: [b, [1n, 2n, 3n]],
      }),
    )
    expect(late).toEqual({ errorName: 'GatewayRequestNotPending', args: [b, STATUS.Refunded] })
  })

  test('security: only the gateway calls back; a callback for a request the consumer never made is refused', async () => {
    for (const functionName of ['rawOnInferenceResult', 'rawOnInferenceError'] as const) {
      const args = functionName === 'rawOnInferenceResult' ? [1n, [1n, 2n, 3n]] : [1n, ERROR_CODE.ModelFailed, 'x']
      const r = await expectRevert(chain.stranger.simulateContract({ address: scorer, abi, functionName, args } as never))
      expect(r).toEqual({ errorName: 'SertnConsumerOnlyGateway', args: [chain.stranger.account.address] })
    }
    // A consumer whose "gateway" is an account we hold: even its gateway cannot deliver a result
    // for a request the consumer did not make.
    const other = await deployScorer({ gateway: chain.stranger.account.address })
    const r = await expectRevert(
      chain.stranger.simulateContract({ address: other, abi, functionName: 'rawOnInferenceResult', args: [42n, [1n, 2n, 3n]] }),
    )
    expect(r).toEqual({ errorName: 'LoanRiskScorerNotPending', args: [42n] })
    // The test gateway takes no node answers, and only its owner settles.
    const node = await expectRevert(
      chain.stranger.readContract({
        address: gateway,
        abi: SertnTestGateway.abi,
        functionName: 'fail',
        args: [1n, ERROR_CODE.ModelFailed, ''],
      }),
    )
    expect(node.errorName).toBe('GatewayUnauthorizedNode')
    const owner = await expectRevert(
      chain.stranger.simulateContract({
        address: gateway,
        abi: SertnTestGateway.abi,
        functionName: 'fulfillRequest',
        args: [1n, [1n, 2n, 3n]],
      }),
    )
    expect(owner.errorName).toBe('OwnedUnauthorized')
  })

  test('behavior: a callback runs with exactly its gas limit; one that runs out is settled regardless and reconciled', async () => {
    // Too little gas for the consumer's bookkeeping.
    const starved = await deployScorer({ callbackGas: 8_000 })
    const id = await apply(starved)
    // The gateway refuses to call back with less than the whole limit (100,000 gas here).
    const roomy = await deployScorer()
    const other = await apply(roomy)
    const short = await expectRevert(
      chain.owner.simulateContract({
        address: gateway,
        abi: SertnTestGateway.abi,
        functionName: 'fulfillRequest',
        args: [other, [1n, 2n, 3n]],
        gas: 100_000n,
      }),
    )
    expect(short.errorName).toBe('GatewayInsufficientGasForCallback')

    const { gatewayEvents } = await settle('fulfillRequest', [id, [900n, 100n, 50n]])
    const fulfilled = gatewayEvents.find((e) => e.eventName === 'InferenceFulfilled')
    expect(fulfilled?.args.callbackStatus).toBe(CALLBACK.Failed)
    // It ran out: it used its whole limit (plus the call's own cost), not a unit more.
    expect(fulfilled?.args.callbackGasUsed).toBeGreaterThanOrEqual(8_000n)
    expect(fulfilled?.args.callbackGasUsed).toBeLessThanOrEqual(8_000n + 2_600n)
    expect((await requestOf(id)).status).toBe(STATUS.Fulfilled)
    expect(await applicationOf(id, starved)).toMatchObject({ decision: DECISION.Pending })
    // Reconciling closes it (the result is lost to the contract) and frees the applicant.
    const { request } = await chain.stranger.simulateContract({ address: starved, abi, functionName: 'reconcile', args: [id] })
    const receipt = await confirm(chain.stranger, await chain.stranger.writeContract(request))
    expect(parseEventLogs({ abi, logs: receipt.logs, eventName: 'LoanUnanswered' })[0]?.args).toMatchObject({
      requestId: id,
      status: STATUS.Fulfilled,
    })
    expect(await applicationOf(id, starved)).toMatchObject({ decision: DECISION.Unanswered })
    expect(
      await chain.user.readContract({ address: starved, abi, functionName: 'openApplicationOf', args: [chain.user.account.address] }),
    ).toBe(0n)

    // A limit above the gateway's maximum is refused up front.
    const greedy = await deployScorer({ callbackGas: 2_000_001 })
    const r = await expectRevert(
      chain.user.simulateContract({ address: greedy, abi, functionName: 'applyForLoan', args: [FEATURES], value: 10n ** 18n }),
    )
    expect(r).toEqual({ errorName: 'GatewayCallbackGasLimitTooHigh', args: [2_000_001n, 2_000_000n] })
  })

  test('error: bad requests are refused with the gateway’s errors: underpaid, wrong shape, another artifacts hash', async () => {
    const cost = await price()
    expect(await expectRevert(apply(scorer, cost - 1n))).toEqual({ errorName: 'LoanRiskScorerUnderpaid', args: [cost, cost - 1n] })
    const shape = await expectRevert(
      chain.user.simulateContract({ address: scorer, abi, functionName: 'applyForLoan', args: [[1n, 2n, 3n]], value: cost }),
    )
    expect(shape).toEqual({ errorName: 'GatewayInputShapeMismatch', args: [4n, 3n] })
    const audited = await deployScorer({ artifacts: `0x${'bb'.repeat(32)}` })
    expect(await expectRevert(apply(audited, cost))).toEqual({
      errorName: 'GatewayModelArtifactsMismatch',
      args: [`0x${'bb'.repeat(32)}`, ARTIFACTS],
    })
  })

  test('behavior: hashed models: an input commitment needs its storage reference; a hashed result goes to the hashed callback', async () => {
    const HASHED: Hex = `0x${'4a'.repeat(32)}`
    const { request: set } = await chain.owner.simulateContract({
      address: gateway,
      abi: SertnTestGateway.abi,
      functionName: 'setModel',
      args: [HASHED, { ...TEST_MODEL, inputLength: 1, outputLength: 1, inputHashed: true, outputHashed: true }],
    })
    await confirm(chain.owner, await chain.owner.writeContract(set))
    const value = await chain.user.readContract({
      address: gateway,
      abi: SertnTestGateway.abi,
      functionName: 'quote',
      args: [HASHED, CALLBACK_GAS],
    })
    const params = {
      modelId: HASHED,
      input: [-5n],
      inputRef: ARTIFACTS,
      callbackGasLimit: CALLBACK_GAS,
      modelVersion: 0,
      artifactsHash: `0x${'00'.repeat(32)}` as Hex,
      failIfNoCapacity: false,
    }
    const missing = await expectRevert(
      chain.user.simulateContract({
        address: gateway,
        abi: SertnTestGateway.abi,
        functionName: 'requestInferenceWith',
        args: [{ ...params, inputRef: `0x${'00'.repeat(32)}` }],
        value,
      }),
    )
    expect(missing.errorName).toBe('GatewayMissingInputRef')
    // An account without code is settled without a callback.
    const { request, result: id } = await chain.user.simulateContract({
      address: gateway,
      abi: SertnTestGateway.abi,
      functionName: 'requestInferenceWith',
      args: [params],
      value,
    })
    await confirm(chain.user, await chain.user.writeContract(request))
    const eoa = await settle('fulfillRequest', [id, [7n]])
    expect(eoa.gatewayEvents.find((e) => e.eventName === 'InferenceFulfilled')?.args.callbackStatus).toBe(2 /* Skipped */)
    // A model with a public input and a hashed output: the example consumer does not override the
    // hashed callback, SertnConsumer's default refuses it, and the request is settled regardless.
    const HASHED_OUT: Hex = `0x${'4b'.repeat(32)}`
    const { request: set2 } = await chain.owner.simulateContract({
      address: gateway,
      abi: SertnTestGateway.abi,
      functionName: 'setModel',
      args: [HASHED_OUT, { ...TEST_MODEL, outputLength: 1, outputHashed: true }],
    })
    await confirm(chain.owner, await chain.owner.writeContract(set2))
    const build = foundryBuild ?? hardhatBuild
    const consumer = await deployContract(chain.user, { abi: build.abi, bytecode: build.bytecode }, [
      gateway,
      HASHED_OUT,
      1,
      ARTIFACTS,
      1,
      0,
      CALLBACK_GAS,
    ])
    const id2 = await apply(consumer)
    const hashed = await settle('fulfillRequest', [id2, [-5n]])
    const fulfilled = hashed.gatewayEvents.find((e) => e.eventName === 'InferenceFulfilled')
    expect(fulfilled?.args).toMatchObject({ output: [-5n], callbackStatus: CALLBACK.Failed })
    expect((await requestOf(id2)).status).toBe(STATUS.Fulfilled)
    expect(await applicationOf(id2, consumer)).toMatchObject({ decision: DECISION.Pending })
    // What that callback did, replayed from the gateway's address: the default's refusal.
    const replay = await expectRevert(
      chain.user.simulateContract({
        account: gateway,
        address: consumer,
        abi,
        functionName: 'rawOnHashedInferenceResult',
        args: [id2, 5n, ARTIFACTS],
      }),
    )
    expect(replay).toEqual({ errorName: 'SertnConsumerHashedResultUnhandled', args: [id2] })
  })

  test('security: a new model version is refused by the pin, and cannot answer a request made before it', async () => {
    const id = await apply()
    const { request } = await chain.owner.simulateContract({
      address: gateway,
      abi: SertnTestGateway.abi,
      functionName: 'setModel',
      args: [MODEL, { ...TEST_MODEL, version: 2 }],
    })
    await confirm(chain.owner, await chain.owner.writeContract(request))
    const stale = await expectRevert(
      chain.owner.simulateContract({
        address: gateway,
        abi: SertnTestGateway.abi,
        functionName: 'fulfillRequest',
        args: [id, [1n, 2n, 3n]],
      }),
    )
    expect(stale).toEqual({ errorName: 'GatewayModelVersionChanged', args: [id, 1, 2] })
    // The applicant is still waiting on `id`; another applicant is refused by the pin.
    const other = await deployScorer()
    expect(await expectRevert(apply(other))).toEqual({ errorName: 'GatewayModelVersionMismatch', args: [1, 2] })
  })
})
