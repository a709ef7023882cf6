/** The example dApp as the benchmarks drive it: one `classify` call, paying its price. */
import type { Address, TransactionReceipt } from 'viem'
import type { SertnClient } from '../../chains/evm/clients.ts'
import { writeWithMargin } from '../../chains/evm/deploy.ts'
import { ExampleClassifier } from '../../contracts/artifacts/index.ts'
import { quantize } from '../../core/field.ts'
import { DEMO_INPUT_SCALE } from '../support/stack.ts'

/** Request `i`'s features: the demo input shifted by a pattern of i, inside the model's bound. */
export const featuresOf = (i: number): bigint[] =>
  [0.5, -1.25, 2, 0.75].map((x, j) => quantize(x + ((i * 7 + j * 3) % 11) / 10 - 0.5, DEMO_INPUT_SCALE))

/** `user` asks the ExampleClassifier at `dapp` to classify request `i`'s features; returns the request id and the mined receipt. */
export async function classify(
  user: SertnClient,
  dapp: Address,
  price: bigint,
  i: number,
): Promise<{ id: bigint; receipt: TransactionReceipt }> {
  const { request, result: id } = await user.simulateContract({
    address: dapp,
    abi: ExampleClassifier.abi,
    functionName: 'classify',
    args: [featuresOf(i)],
    value: price,
  })
  return { id, receipt: await writeWithMargin(user, request) }
}
