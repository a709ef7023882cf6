/**
 * Dependency-injection tokens. The tsyringe container itself is built only in composition roots
 * (`workflows/worker/container.ts`, the CLI); workflow code never sees it.
 */
export const TOKENS = {
  Config: Symbol.for('sertn.Config'),
  Models: Symbol.for('sertn.Models'),
  Runtime: Symbol.for('sertn.Runtime'),
  Prover: Symbol.for('sertn.Prover'),
  Storage: Symbol.for('sertn.Storage'),
  Chains: Symbol.for('sertn.Chains'),
  Markets: Symbol.for('sertn.Markets'),
} as const
