/**
 * The one table of contract rejections (chains/evm/plugin/rejections.ts): every custom error of the
 * Sertn contracts' ABIs has an entry, the entries' codes and retry verdicts are sound, a few
 * classifications; and the code's way to the workflow: the error's `errorCode`, the activity
 * failure's details, the workflow's reading of them (with the frozen legacy codes for failures
 * recorded without details).
 */
import { ApplicationFailure } from '@temporalio/common'
import { ContractFunctionRevertedError, encodeErrorResult, toFunctionSelector, type Abi } from 'viem'
import { describe, expect, expectTypeOf, test } from 'vitest'
import {
  GatewayRejectedError,
  InvalidProofError,
  InvalidResultError,
  ModelNotDeployedError,
  ModelVersionChangedError,
  NotAssignedError,
  RequestExpiredError,
  RequestSettledError,
  TransientRevertError,
  UnauthorizedNodeError,
  type DecodedRevert,
} from '../../chains/evm/plugin/errors.ts'
import {
  CONTRACT_REJECTIONS,
  decodedRevertOf,
  rejectionFor,
  rejectionOf,
  revertOrThrow,
  type ContractErrorName,
} from '../../chains/evm/plugin/rejections.ts'
import { ArtifactIndexError } from '../../core/artifacts.ts'
import { InputCommitmentError } from '../../core/commitment.ts'
import {
  BadRequestError,
  ChainTransientError,
  failureDetailsOf,
  isRetryable,
  NON_RETRYABLE_ERROR_TYPES,
  readFailureDetails,
  SertnError,
} from '../../core/errors.ts'
import { InputOutOfRangeError, InputShapeError } from '../../core/input.ts'
import { ArtifactHashMismatchError, InsecureSrsError, ManifestError } from '../../core/manifest.ts'
import { UnknownModelError } from '../../core/models.ts'
import { CircuitMismatchError } from '../../core/registered.ts'
import { INFERENCE_ERROR_CODES } from '../../core/types.ts'
import {
  CopyDelivery,
  HyperlanePort,
  InferenceGateway,
  InferenceMarket,
  LayerZeroPort,
  ModelRegistry,
  NodeRegistry,
  SpokeGateway,
} from '../../contracts/artifacts/index.ts'
import { VerifyingKeyMismatchError } from '../../plugins/provers/ezkl-common/keys.ts'
import { createActivities, ModelNotResolvedError, ModelVersionMismatchError, UnknownMarketError } from '../../workflows/activities/index.ts'
import { codeOfFailure, LEGACY_FAILURE_CODES } from '../../workflows/failure-codes.ts'

const CONTRACTS = {
  InferenceGateway,
  SpokeGateway,
  CopyDelivery,
  InferenceMarket,
  ModelRegistry,
  NodeRegistry,
  HyperlanePort,
  LayerZeroPort,
}
const errorsOf = (abi: Abi) => abi.filter((x) => x.type === 'error')
const namesOf = (abi: Abi) => errorsOf(abi).map((e) => e.name)
const ALL_NAMES = new Set(Object.values(CONTRACTS).flatMap((c) => namesOf(c.abi as Abi)))
const ENTRIES = Object.entries(CONTRACT_REJECTIONS)
const revert = (errorName: string, args: readonly unknown[] = []): DecodedRevert => ({ errorName, args })

describe('the table of contract rejections', () => {
  test('default: its keys are exactly the ABIs’ custom errors (by type, and here at run time)', () => {
    expectTypeOf<keyof typeof CONTRACT_REJECTIONS>().toEqualTypeOf<ContractErrorName>()
    for (const [contract, { abi }] of Object.entries(CONTRACTS)) {
      for (const name of namesOf(abi as Abi)) expect(Object.hasOwn(CONTRACT_REJECTIONS, name), `${contract}.${name}`).toBe(true)
    }
    for (const [name] of ENTRIES) expect(ALL_NAMES.has(name), name).toBe(true)
  })

  test('default: codes are InferenceErrorCodes (or none), and each verdict is its class’s and Temporal’s', () => {
    for (const [name, r] of ENTRIES) {
      if (r.code !== undefined) expect(INFERENCE_ERROR_CODES, name).toContain(r.code)
      const err = new r.error(`call`, revert(name))
      expect(err, name).toBeInstanceOf(SertnError)
      expect(err.retryable, name).toBe(r.retryable)
      // A retryable rejection must not be of a type that the workflow's retry policy never retries.
      if (r.retryable) expect(NON_RETRYABLE_ERROR_TYPES as readonly string[], name).not.toContain(err.name)
      if (r.retryable) expect(err, name).toBeInstanceOf(ChainTransientError)
      else expect(err, name).toBeInstanceOf(GatewayRejectedError)
    }
  })

  test('default: the result errors are declared once: the gateways and the market share their selectors; the old names are gone', () => {
    for (const name of ['ResultInputMismatch', 'ResultOutputShapeMismatch', 'ResultInvalidProof', 'ResultReasonTooLong']) {
      const selectors = [InferenceGateway, SpokeGateway, InferenceMarket].map((c) => {
        const item = errorsOf(c.abi as Abi).find((e) => e.name === name)
        expect(item, `${c.contractName}.${name}`).toBeDefined()
        return toFunctionSelector(`${name}(${item!.inputs.map((i) => i.type).join(',')})`)
      })
      expect(new Set(selectors).size, name).toBe(1)
    }
    for (const prefix of ['Gateway', 'Market']) {
      for (const old of ['InputMismatch', 'OutputShapeMismatch', 'InvalidProof', 'ReasonTooLong'])
        expect(ALL_NAMES.has(`${prefix}${old}`)).toBe(false)
    }
  })

  test('behavior: a rejected result is non-retryable with its code; the revert stays readable', () => {
    const err = rejectionOf('fulfill req:1', revert('ResultInvalidProof', [7n]), undefined)
    expect(err).toBeInstanceOf(InvalidProofError)
    expect(err).toMatchObject({
      name: 'InvalidProofError',
      errorCode: 'ProvingFailed',
      retryable: false,
      errorName: 'ResultInvalidProof',
      args: [7n],
    })
    expect(err.message).toBe('fulfill req:1: the contract reverted with ResultInvalidProof(7)')
    expect(rejectionOf('x', revert('ResultOutputShapeMismatch', [3n, 2n]), undefined)).toBeInstanceOf(InvalidResultError)
    expect(rejectionOf('x', revert('ResultInputMismatch', [1n]), undefined).errorCode).toBe('ProvingFailed')
  })

  test('behavior: the gateway’s and the market’s other rejections', () => {
    const cases: [ContractErrorName, new (...a: never[]) => SertnError, string | undefined][] = [
      ['GatewayModelVersionChanged', ModelVersionChangedError, 'ModelUnavailable'],
      ['MarketModelVersionMismatch', ModelVersionChangedError, 'ModelUnavailable'],
      ['MarketModelNotDeployed', ModelNotDeployedError, 'ModelUnavailable'],
      ['MarketUnknownModel', ModelNotDeployedError, 'ModelUnavailable'],
      ['GatewayRequestExpired', RequestExpiredError, 'Timeout'],
      ['MarketRequestExpired', RequestExpiredError, 'Timeout'],
      ['GatewayUnauthorizedNode', UnauthorizedNodeError, undefined],
      ['NodeRegistryNotAssigned', NotAssignedError, undefined],
      ['NodeRegistryNotMarket', GatewayRejectedError, undefined],
      ['GatewayRequestNotPending', RequestSettledError, undefined],
      ['MarketRequestNotOpen', RequestSettledError, undefined],
      ['OwnedUnauthorized', GatewayRejectedError, undefined],
    ]
    for (const [name, cls, code] of cases) {
      const err = rejectionOf('x', revert(name), undefined)
      expect(err, name).toBeInstanceOf(cls)
      expect(err.errorCode, name).toBe(code)
      expect(isRetryable(err), name).toBe(false)
    }
  })

  test('behavior: too little gas for the callback and a fee that rose are retryable', () => {
    for (const name of [
      'GatewayInsufficientGasForCallback',
      'MessengerInsufficientFee',
      'PortInsufficientFee',
      'NotEnoughNative',
      'NodeRegistryNoCapacity',
      'NodeRegistryWindowOpen',
    ] as const) {
      const err = rejectionOf('x', revert(name, [1n, 2n]), undefined)
      expect(err, name).toBeInstanceOf(TransientRevertError)
      expect(isRetryable(err), name).toBe(true)
      expect(err.errorCode, name).toBeUndefined()
    }
  })

  test('error: a name outside the table (a reason string, a panic, another contract’s error) is refused for good, with no code', () => {
    for (const name of ['Error', 'Panic', 'SomethingElse', 'constructor', 'toString']) {
      expect(rejectionFor(name), name).toEqual({ error: GatewayRejectedError, retryable: false, code: undefined })
      const err = rejectionOf('x', revert(name), undefined)
      expect(err.constructor, name).toBe(GatewayRejectedError)
      expect(err.errorCode, name).toBeUndefined()
    }
  })

  test('behavior: a revert bubbled up from a nested call (the market’s port) is decoded with every Sertn contract’s errors', () => {
    const data = encodeErrorResult({ abi: HyperlanePort.abi, errorName: 'PortInsufficientFee', args: [5n, 4n] })
    const err = new ContractFunctionRevertedError({ abi: InferenceMarket.abi as Abi, data, functionName: 'submitResult' })
    expect(err.data).toBeUndefined()
    expect(decodedRevertOf(err)).toEqual({ errorName: 'PortInsufficientFee', args: [5n, 4n] })
    const direct = encodeErrorResult({ abi: InferenceMarket.abi, errorName: 'ResultInvalidProof', args: [9n] })
    expect(
      revertOrThrow(
        'x',
        new ContractFunctionRevertedError({ abi: InferenceMarket.abi as Abi, data: direct, functionName: 'submitResult' }),
      ),
    ).toEqual(revert('ResultInvalidProof', [9n]))
    const unknown = new ContractFunctionRevertedError({ abi: InferenceMarket.abi as Abi, data: '0xdeadbeef', functionName: 'submitResult' })
    expect(() => revertOrThrow('x', unknown)).toThrow(GatewayRejectedError)
  })

  test('behavior: a node that is not the assigned one: the node registry’s refusal, bubbled up through the gateway, is a NotAssignedError', () => {
    const args = [
      '0x0000000000000000000000000000000000000001',
      7n,
      '0x0000000000000000000000000000000000000002',
      '0x0000000000000000000000000000000000000003',
    ] as const
    const data = encodeErrorResult({ abi: NodeRegistry.abi, errorName: 'NodeRegistryNotAssigned', args })
    const err = new ContractFunctionRevertedError({ abi: InferenceGateway.abi as Abi, data, functionName: 'fulfill' })
    const decoded = revertOrThrow('fulfill req:7', err)
    expect(decoded).toEqual(revert('NodeRegistryNotAssigned', args))
    const rejected = rejectionOf('fulfill req:7', decoded, err)
    expect(rejected).toBeInstanceOf(NotAssignedError)
    expect(rejected).toMatchObject({ name: 'NotAssignedError', retryable: false, errorCode: undefined })
    expect(NON_RETRYABLE_ERROR_TYPES).toContain('NotAssignedError')
    // The market's own refusal is gone: the registry decides who answers.
    expect(ALL_NAMES.has('MarketUnauthorizedNode')).toBe(false)
  })
})

describe('the code’s way to the workflow', () => {
  test('default: errors that know their code carry it; others carry none', () => {
    expect(new BadRequestError('x').errorCode).toBe('InvalidInput')
    expect(new UnknownModelError('x').errorCode).toBe('ModelUnavailable')
    expect(new SertnError('x').errorCode).toBeUndefined()
    expect(new ChainTransientError('x').errorCode).toBeUndefined()
    expect(new SertnError('x', { errorCode: 'ModelFailed' }).errorCode).toBe('ModelFailed')
    expect(new BadRequestError('x', { errorCode: 'Timeout' }).errorCode).toBe('Timeout')
  })

  test('default: the codes carried now are the codes the workflow’s legacy list gave the same failure types', () => {
    const classes: Record<string, { errorCode: unknown }> = {
      UnknownModelError,
      ModelNotResolvedError,
      ModelVersionMismatchError,
      CircuitMismatchError,
      VerifyingKeyMismatchError,
      ArtifactIndexError,
      InputCommitmentError,
      ManifestError,
      ArtifactHashMismatchError,
      InsecureSrsError,
      InputShapeError,
      InputOutOfRangeError,
      BadRequestError,
      UnknownMarketError,
    }
    const rejected = new Set(ENTRIES.map(([, r]) => r.error.name))
    for (const [type, code] of Object.entries(LEGACY_FAILURE_CODES)) {
      if (classes[type]) expect(classes[type].errorCode, type).toBe(code)
      else {
        // A contract rejection's class: every table entry of that class gives the legacy code.
        expect(rejected.has(type), type).toBe(true)
        for (const [name, r] of ENTRIES) if (r.error.name === type) expect(r.code, `${name} → ${type}`).toBe(code)
      }
    }
  })

  test('behavior: an activity’s failure carries the error’s code in its details', async () => {
    const request = {
      key: 'req:1:0x0000000000000000000000000000000000000001:1',
      chainId: 1,
      gateway: '0x0000000000000000000000000000000000000001',
    }
    const chain = {
      chainId: 1,
      gateway: request.gateway,
      fulfill: async () => {
        throw rejectionOf('fulfill', revert('ResultInvalidProof', [1n]), undefined)
      },
      fail: async () => {
        throw new ChainTransientError('rpc down')
      },
    }
    const activities = createActivities({ chains: [chain] } as never)
    const rejected = await activities.fulfillRequest(request as never, {} as never, {} as never).catch((e: unknown) => e)
    expect(rejected).toBeInstanceOf(ApplicationFailure)
    expect(rejected).toMatchObject({ type: 'InvalidProofError', nonRetryable: true, details: [{ code: 'ProvingFailed' }] })
    const transient = await activities.failRequest(request as never, 'Unknown', '').catch((e: unknown) => e)
    expect(transient).toMatchObject({ type: 'ChainTransientError', nonRetryable: false, details: [{ code: null }] })
  })

  test('behavior: the workflow reads the code from the details; failures without details get their legacy code', () => {
    expect(failureDetailsOf(new InputShapeError(4, 3, [4]))).toEqual({ code: 'InvalidInput' })
    expect(failureDetailsOf(new Error('x'))).toEqual({ code: null })
    expect(readFailureDetails([{ code: 'InvalidInput' }])).toEqual({ code: 'InvalidInput' })
    expect(readFailureDetails([{ code: 'NotACode' }])).toEqual({ code: null })
    expect(readFailureDetails(undefined)).toBeUndefined()
    expect(readFailureDetails([])).toBeUndefined()
    expect(readFailureDetails(['text'])).toBeUndefined()

    // Carried: the details decide, whatever the type.
    expect(codeOfFailure('InvalidProofError', [{ code: 'ProvingFailed' }])).toBe('ProvingFailed')
    expect(codeOfFailure('InvalidProofError', [{ code: null }])).toBeUndefined()
    expect(codeOfFailure('PluginError', [{ code: 'ModelUnavailable' }])).toBe('ModelUnavailable')
    // Recorded before codes were carried: the legacy list, by type.
    expect(codeOfFailure('InvalidProofError', undefined)).toBe('ProvingFailed')
    expect(codeOfFailure('ModelNotDeployedError', null)).toBe('ModelUnavailable')
    expect(codeOfFailure('PluginError', undefined)).toBeUndefined()
    expect(codeOfFailure('constructor', undefined)).toBeUndefined()
  })
})
