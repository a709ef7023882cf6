/**
 * The client's typed errors: a contract's refusal, decoded through the one table of contract
 * rejections, becomes its own class with the hint the table gives (what the requester should
 * change); other failures keep their cause. The requester hints of the table are here too.
 */
import { ContractFunctionRevertedError, encodeErrorResult, type Abi, type Hex } from 'viem'
import { describe, expect, test } from 'vitest'
import { requesterHintOf, rejectionFor } from '../../chains/evm/plugin/rejections.ts'
import { InferenceGateway, SpokeGateway } from '../../contracts/artifacts/index.ts'
import { SertnError } from '../../core/errors.ts'
import {
  CallbackGasLimitTooHighError,
  ContractRejectedError,
  InsufficientPaymentError,
  InvalidInputError,
  ModelNotFoundError,
} from '../../client/index.ts'
import { rethrowCall } from '../../client/errors.ts'

const MODEL = `0x${'ab'.repeat(32)}` as Hex
const reverted = (errorName: string, args: readonly unknown[]) =>
  new ContractFunctionRevertedError({
    abi: SpokeGateway.abi as Abi,
    data: encodeErrorResult({ abi: InferenceGateway.abi as Abi, errorName, args }),
    functionName: 'requestInference',
  })
const thrown = (err: unknown) => {
  try {
    rethrowCall('requestInference', err)
  } catch (e) {
    return e as SertnError
  }
  throw new Error('rethrowCall returned')
}

describe('requester hints in the table of contract rejections', () => {
  test('default: a requester’s mistakes say what to change', () => {
    expect(requesterHintOf({ errorName: 'GatewayCallbackGasLimitTooHigh', args: [5_000_000n, 2_500_000n] })).toBe(
      "callbackGasLimit 5,000,000 is above this gateway's cap 2,500,000: lower it",
    )
    expect(requesterHintOf({ errorName: 'GatewayInsufficientPayment', args: [1_234_567n, 1_000n] })).toBe(
      'pay at least 1,234,567 wei (quote(modelId, callbackGasLimit)); 1,000 wei was sent',
    )
    expect(requesterHintOf({ errorName: 'GatewayUnknownModel', args: [MODEL] })).toBe(
      `model ${MODEL} is not registered on this chain's registry: check the model id (getModel)`,
    )
  })

  test('behavior: the node’s verdicts are unchanged; node-side errors carry no hint', () => {
    for (const name of ['GatewayCallbackGasLimitTooHigh', 'GatewayInsufficientPayment', 'GatewayUnknownModel'] as const) {
      expect(rejectionFor(name)).toMatchObject({ retryable: false, code: undefined })
    }
    expect(rejectionFor('ModelRegistryUnknownModel')).toMatchObject({ retryable: false, code: 'ModelUnavailable' })
    expect(requesterHintOf({ errorName: 'ResultInvalidProof', args: [1n] })).toBeUndefined()
    expect(requesterHintOf({ errorName: 'NotInTheTable', args: [] })).toBeUndefined()
  })
})

describe('the client’s typed errors', () => {
  test('default: a wrong model id, an underpaid request and too much callback gas each get their class and message', () => {
    const unknown = thrown(reverted('GatewayUnknownModel', [MODEL]))
    expect(unknown).toBeInstanceOf(ModelNotFoundError)
    expect(unknown).toBeInstanceOf(ContractRejectedError)
    expect(unknown).toBeInstanceOf(SertnError)
    expect((unknown as ModelNotFoundError).modelId).toBe(MODEL)
    expect(unknown.message).toMatchInlineSnapshot(
      `"requestInference: model 0xabababababababababababababababababababababababababababababababab is not registered on this chain's registry: check the model id (getModel) (GatewayUnknownModel(0xabababababababababababababababababababababababababababababababab))"`,
    )

    const underpaid = thrown(reverted('GatewayInsufficientPayment', [2_000n, 1_999n])) as InsufficientPaymentError
    expect(underpaid).toBeInstanceOf(InsufficientPaymentError)
    expect([underpaid.required, underpaid.paid, underpaid.errorName]).toEqual([2_000n, 1_999n, 'GatewayInsufficientPayment'])
    expect(underpaid.message).toMatchInlineSnapshot(
      `"requestInference: pay at least 2,000 wei (quote(modelId, callbackGasLimit)); 1,999 wei was sent (GatewayInsufficientPayment(2000, 1999))"`,
    )

    const gas = thrown(reverted('GatewayCallbackGasLimitTooHigh', [5_000_000n, 2_500_000n])) as CallbackGasLimitTooHighError
    expect(gas).toBeInstanceOf(CallbackGasLimitTooHighError)
    expect([gas.requested, gas.max]).toEqual([5_000_000n, 2_500_000n])
    expect(gas.hint).toBe("callbackGasLimit 5,000,000 is above this gateway's cap 2,500,000: lower it")
    expect(gas.retryable).toBe(false)
  })

  test('behavior: input errors, other refusals, and failures that are not refusals', () => {
    expect(thrown(reverted('GatewayInputShapeMismatch', [4n, 3n]))).toBeInstanceOf(InvalidInputError)
    const other = thrown(reverted('GatewayReentrantCall', []))
    expect(other.constructor).toBe(ContractRejectedError)
    expect((other as ContractRejectedError).hint).toBeUndefined()
    expect(other.message).toBe('requestInference: the contract refused it (GatewayReentrantCall())')
    const rpc = thrown(new Error('socket hang up'))
    expect(rpc.constructor).toBe(SertnError)
    expect(rpc).toMatchObject({ retryable: true, message: 'requestInference: socket hang up' })
    const mine = new SertnError('already typed')
    expect(thrown(mine)).toBe(mine)
  })
})
