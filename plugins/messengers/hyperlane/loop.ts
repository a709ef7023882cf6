/** What the local validator and relayer share: their errors' base class, and the agents' polling loop (core/loop.ts). */
import { SertnError } from '../../../core/errors.ts'

/** Something in the local Hyperlane agents went wrong. */
export class HyperlaneAgentError extends SertnError {
  override name = 'HyperlaneAgentError'
}

/** An agent was used after it was disposed. */
export class AgentDisposedError extends HyperlaneAgentError {
  override name = 'AgentDisposedError'
}

export { type PollLoop, runPollLoop, sleep } from '../../../core/loop.ts'
