/**
 * Prover routing: which task queue proves a circuit. Prover workers declare a hardware class and
 * poll its queue (`prover` for the CPU class, `proverGpu` for the GPU class, see
 * `temporal.taskQueues`). A node's workflows send each proof to the class whose workers can hold
 * it: a model (or one of its batch sizes) pinned to a class goes there; otherwise a circuit that
 * needs more memory than a CPU prover offers goes to the GPU class, when the node has one.
 *
 * Deterministic (workflow code): it reads only the workflow's input and activity results.
 *
 * @example
 * proverRouteOf(queues, { model: 'sertn-mlp-demo', size: 64, memoryBytes: 756 << 20 })
 * // → { queue: 'sertn-prover-gpu', hardware: 'gpu', reason: 'needs 756 MiB, over the CPU provers' 512 MiB' }
 */
export type ProverClass = 'cpu' | 'gpu'

/** How a node routes its proofs (`prover.routing` in its configuration, resolved). */
export type ProverRouting = {
  /** The GPU class's queue; absent: the node has no GPU provers and every proof goes to the CPU queue. */
  gpu?: string
  /** The most memory one proof may need on a CPU prover. */
  cpuMemoryBytes: number
  /** A class named outright, by model name or `<name>@<rows>` for one batch size. */
  pin?: Record<string, ProverClass>
}

/** The memory a circuit of a model needs to be proven (size 1: the model itself; above: its batch circuit). */
export type CircuitMemory = { size: number; memoryBytes: number }

export type ProofRoute = { queue: string; hardware: ProverClass; reason: string }

const mib = (b: number) => `${Math.ceil(b / 2 ** 20)} MiB`

/**
 * The queue that proves `circuit`. Queues from before routing existed (no `routing`) send every
 * proof to the one prover queue.
 */
export function proverRouteOf(
  queues: { prover: string; routing?: ProverRouting },
  circuit: { model: string; size: number; memoryBytes?: number },
): ProofRoute {
  const r = queues.routing
  const cpu = (reason: string): ProofRoute => ({ queue: queues.prover, hardware: 'cpu', reason })
  if (!r) return cpu('one prover queue')
  const pinnedBy = [`${circuit.model}@${circuit.size}`, circuit.model].find((k) => r.pin?.[k] !== undefined)
  if (pinnedBy !== undefined) {
    const cls = r.pin![pinnedBy]!
    if (cls === 'cpu') return cpu(`pinned to cpu (${pinnedBy})`)
    if (r.gpu !== undefined) return { queue: r.gpu, hardware: 'gpu', reason: `pinned to gpu (${pinnedBy})` }
    return cpu(`pinned to gpu (${pinnedBy}), but the node has no GPU provers`)
  }
  const need = circuit.memoryBytes
  if (need === undefined) return cpu('its memory need is unknown')
  if (need <= r.cpuMemoryBytes) return cpu(`needs ${mib(need)}, within the CPU provers' ${mib(r.cpuMemoryBytes)}`)
  if (r.gpu !== undefined)
    return { queue: r.gpu, hardware: 'gpu', reason: `needs ${mib(need)}, over the CPU provers' ${mib(r.cpuMemoryBytes)}` }
  return cpu(`needs ${mib(need)}, over the CPU provers' ${mib(r.cpuMemoryBytes)}, and the node has no GPU provers`)
}

/** The memory the circuit of `size` rows needs, as `list` has it (its manifest's figure, raised by {@link withMeasured}). */
export function memoryOf(list: readonly CircuitMemory[] | undefined, size: number): number | undefined {
  return list?.find((c) => c.size === size)?.memoryBytes
}

/** `list` with the circuit of `size` raised to `measured` where a prover measured more than it says. */
export function withMeasured(list: readonly CircuitMemory[], size: number, measured: number | undefined): CircuitMemory[] {
  if (measured === undefined) return [...list]
  const known = list.some((c) => c.size === size)
  const next = list.map((c) => (c.size === size ? { size, memoryBytes: Math.max(c.memoryBytes, measured) } : c))
  return known ? next : [...next, { size, memoryBytes: measured }]
}
