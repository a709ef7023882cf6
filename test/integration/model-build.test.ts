/**
 * `sertn model build` as a creator runs it (the CLI, in a child process, with the pinned native
 * ezkl): a model the repository ships is built from its sources into a scratch folder and comes out
 * the same circuit as the committed one, with its report; models EZKL cannot prove end in one line
 * that names the operator, the dimension or the limit, never a Python traceback.
 */
import { BLINDING_ROWS, batchLadder } from '../../circuits/pipeline/batches.ts'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { BuildReport } from '../../circuits/pipeline/build.ts'
import { quantize } from '../../core/field.ts'
import { loadBatchArtifacts, loadModelArtifacts, modelDir, parseManifest } from '../../core/manifest.ts'
import { startProcess } from '../../core/process.ts'
import { ensureNativeEzkl, ezklNativeProver } from '../../plugins/provers/ezkl-native/index.ts'
import { DEV_ONLY } from '../support/artifacts.ts'
import { REPO_ROOT, SERTN_CLI } from '../../cli/common.ts'

let tmp: string
let python: string

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sertn-model-build-'))
  python = await ensureNativeEzkl()
})

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

/** Runs `sertn model build …`; resolves to its exit code and output. */
async function build(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const proc = startProcess({
    name: 'sertn-model-build',
    command: process.execPath,
    args: ['--import', 'tsx', SERTN_CLI, 'model', 'build', ...args],
    cwd: REPO_ROOT,
    onLine: (line, stream) => {
      if (stream === 'stdout') stdout += `${line}\n`
      else stderr += `${line}\n`
    },
  })
  const code = await proc.closed
  return { code, stdout, stderr }
}

/** Writes an ONNX graph made with onnx.helper (Python) from `body`, which builds `graph` from `x`. */
function onnxOf(file: string, body: string, inputShape = '[1, 4]') {
  const script = [
    'import onnx, sys',
    'from onnx import helper, TensorProto',
    `x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ${inputShape})`,
    'y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)',
    body,
    'g = helper.make_graph(nodes, "g", [x], [y])',
    'm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]); m.ir_version = 8',
    'onnx.save(m, sys.argv[1])',
  ].join('\n')
  const r = spawnSync(python, ['-c', script, file], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
}

/** Builds a graph of `onnxOf` named `name` (with the demo's samples) into a scratch folder of that name. */
async function buildGraph(name: string, body: string, inputShape?: string, extra: string[] = []) {
  const file = join(tmp, `${name}.onnx`)
  onnxOf(file, body, inputShape)
  const samples = join(REPO_ROOT, 'circuits', 'sources', 'sertn-mlp-demo', 'input.json')
  return build([file, '--input', samples, '--out', join(tmp, name), ...extra])
}

describe('sertn model build', () => {
  test('default: builds a shipped model from its sources into the committed circuit, with a report of every figure', async () => {
    const src = join(REPO_ROOT, 'circuits', 'sources', 'sertn-linreg')
    const out = join(tmp, 'sertn-linreg')
    const r = await build([
      join(src, 'network.onnx'),
      '--input',
      join(src, 'input.json'),
      '--name',
      'sertn-linreg',
      '--out',
      out,
      '--input-bound',
      '2',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as BuildReport
    // Progress on stderr: the steps, and the candidates the search tried.
    expect(r.stderr).toMatch(/✔ inspect .*MatMul/)
    expect(r.stderr).toMatch(/· scale \d+, decomp \d+\^\d+, [12] cols?, margin 2 +logrows \d+/)
    expect(report.candidates.length).toBeGreaterThan(4)
    expect(report.candidates.some((c) => !c.ok)).toBe(true) // the search rejected some scale
    // Every figure of the report.
    expect(report.layout.logrows).toBeGreaterThan(0)
    expect(report.layout.rows).toBeLessThan(2 ** report.layout.logrows)
    expect(report.sizes).toMatchObject({ pk: expect.any(Number), vk: expect.any(Number), proof: expect.any(Number) })
    expect(report.native.proveMs).toBeGreaterThan(0)
    expect(report.wasm?.verifiesNativeProof).toBe(true)
    expect(report.verifyGas).toBeGreaterThan(400_000)
    expect(report.fidelity.reference).toBe('onnxruntime')
    expect(report.fidelity.perSample).toHaveLength(report.fidelity.samples)
    expect(report.fidelity.maxAbsError).toBeLessThanOrEqual(report.fidelity.tolerance)
    expect(report.registrable).toEqual({ ok: true })
    // The committed circuit, byte for byte: the same run arguments, files and VKA.
    const committed = parseManifest('committed', await readFile(join(modelDir('sertn-linreg'), 'manifest.json')))
    const built = parseManifest('built', await readFile(join(out, 'manifest.json')))
    expect(built.runArgs).toEqual(committed.runArgs)
    expect(built.files).toEqual(committed.files)
    expect(built.vka).toEqual(committed.vka)
    expect(built.files['pk.key']).toBeUndefined()
    expect(JSON.parse(await readFile(join(out, '.build', 'report.json'), 'utf8'))).toMatchObject({
      name: 'sertn-linreg',
      verifyGas: report.verifyGas,
    })
  })

  test('error: an operator EZKL 21 cannot prove ends in one line that names it and its node', async () => {
    const r = await buildGraph(
      'isnan',
      'nodes = [helper.make_node("IsNaN", ["x"], ["isnan_out"], name="nan_check"), helper.make_node("Cast", ["isnan_out"], ["y"], to=1)]',
    )
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error: unsupported operator IsNaN \(node "nan_check"\): EZKL 21 cannot prove it$/m)
    expect(r.stderr).not.toMatch(/Traceback/)
  })

  test('error: an operator of a custom domain ends in one line that names it', async () => {
    const r = await buildGraph(
      'custom',
      'nodes = [helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", name="trees")]\nimport onnx as _o',
    )
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /^error: unsupported operator TreeEnsembleRegressor \(domain ai\.onnx\.ml, node "trees"\): EZKL 21 proves standard ONNX tensor operators only/m,
    )
  })

  test('error: a dynamic dimension ends in one line that names the input, the axis and the dimension', async () => {
    const r = await buildGraph('dynamic', 'nodes = [helper.make_node("Relu", ["x"], ["y"])]', '[1, "seq"]')
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error: input "x" has a dynamic dimension "seq" \(axis 1\): give it a size with --var seq=N$/m)
  })

  /**
   * Builds the linreg source model into `out` with `extra` options (bound 2, no WASM check, the
   * report as JSON); its SRS files (logrows 7 to 10) are made in the scratch folder, not in the repository's.
   */
  const buildLinreg = (out: string, extra: string[]) => {
    const src = join(REPO_ROOT, 'circuits', 'sources', 'sertn-linreg')
    return build([
      join(src, 'network.onnx'),
      ...['--input', join(src, 'input.json'), '--out', out, '--input-bound', '2'],
      ...extra,
      ...['--srs-dir', join(tmp, 'srs'), '--no-wasm', '--json'],
    ])
  }

  test('--batch: builds the batch circuits beside the model (its graph widened, its run arguments), listed and pinned in its manifest; each proves its rows', async () => {
    const out = join(tmp, 'linreg-batches')
    const r = await buildLinreg(out, ['--batch', '4,2'])
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as BuildReport & { batches: { size: number; dir: string }[] }
    expect(report.batches.map((b) => [b.size, b.dir])).toEqual([
      [2, 'batch-2'],
      [4, 'batch-4'],
    ])
    const model = await loadModelArtifacts(out, DEV_ONLY)
    expect(model.manifest.batches?.map((b) => b.size)).toEqual([2, 4])
    // Each batch circuit is pinned by the model's manifest, keeps its run arguments and proves 4 rows at once.
    const batch = await loadBatchArtifacts(model, 4, DEV_ONLY)
    expect(batch.manifest.runArgs).toEqual(model.manifest.runArgs)
    expect(batch.manifest.inputShape).toEqual([4, 3])
    const prover = ezklNativeProver()
    try {
      const rows = [0.5, -1, 1.5, 0, 1, -2, 2, 0.25, -0.75, 1, 1, 1].map((x) => quantize(x, batch.manifest.inputScale))
      const p = await prover.proveInference(batch, rows)
      expect(p.output).toHaveLength(4)
      expect((await prover.verify(batch, p.proofJson)).ok).toBe(true)
    } finally {
      await prover.dispose()
    }
  }, 300_000)

  test('--batch auto: builds the ladder of sizes that fill their logrows (linreg: 88 rows at logrows 7, so 2 and 5 rows fill logrows 8 and 9), ending at --batch-max, with any size named beside it', async () => {
    const out = join(tmp, 'linreg-auto')
    const r = await buildLinreg(out, ['--batch', 'auto,3', '--batch-max', '8'])
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as BuildReport & {
      batches: { size: number; logrows: number; rows: number }[]
    }
    const { rows, logrows } = report.layout
    expect(r.stderr).toContain(`--batch auto: ${rows} rows a proof at logrows ${logrows}`)
    expect([rows, logrows]).toEqual([88, 7])
    const ladder = batchLadder({ rows, logrows, maxLogrows: 26, maxRows: 8 })
    expect(ladder).toEqual([2, 5, 8])
    expect(report.batches.map((b) => b.size)).toEqual([...new Set([...ladder, 3])].sort((a, b) => a - b))
    // Every ladder size below the cap fills its logrows: its rows fit, and its rows grew with it.
    for (const b of report.batches.filter((x) => ladder.includes(x.size) && x.size < 8)) {
      expect(b.rows, `batch-${b.size}`).toBeLessThanOrEqual(2 ** b.logrows - BLINDING_ROWS)
      expect(b.rows + rows, `batch-${b.size}`).toBeGreaterThan(2 ** b.logrows - BLINDING_ROWS)
      expect(b.logrows).toBeGreaterThan(logrows)
    }
    const model = await loadModelArtifacts(out, DEV_ONLY)
    expect(model.manifest.batches?.map((b) => b.size)).toEqual(report.batches.map((b) => b.size))
  }, 300_000)

  test('error: --batch-max without --batch auto, and --batch with a size of 1, end in one line', async () => {
    const src = join(REPO_ROOT, 'circuits', 'sources', 'sertn-linreg')
    const common = [join(src, 'network.onnx'), '--input', join(src, 'input.json'), '--out', join(tmp, 'never')]
    const a = await build([...common, '--batch', '16', '--batch-max', '8'])
    expect(a.code).not.toBe(0)
    expect(a.stderr).toContain('--batch-max bounds --batch auto')
    const b = await build([...common, '--batch', 'auto,1'])
    expect(b.code).not.toBe(0)
    expect(b.stderr).toContain('--batch takes sizes above 1')
  })

  test('--batch widens only the inputs that take data: weights an exporter lists among the inputs keep their shape', async () => {
    const dir = join(tmp, 'weights-as-inputs')
    const script = [
      'import json, os, sys, numpy as np, onnx',
      'from onnx import helper, TensorProto',
      'd = sys.argv[1]; os.makedirs(d, exist_ok=True)',
      'w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], np.ones(8, dtype=np.float32).tolist())',
      'io = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)',
      'g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [io("x", [1, 4]), io("w", [4, 2])], [io("y", [1, 2])], [w])',
      'm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]); m.ir_version = 8',
      'onnx.save(m, os.path.join(d, "network.onnx"))',
      'json.dump({"input_data": [[0.1, 0.2, 0.3, 0.4, 1, 2, 3, 4]]}, open(os.path.join(d, "input.json"), "w"))',
    ].join('\n')
    const made = spawnSync(python, ['-c', script, dir], { encoding: 'utf8' })
    expect(made.status, made.stderr).toBe(0)
    const widen = join(REPO_ROOT, 'circuits', 'pipeline', 'widen.py')
    const r = spawnSync(python, [widen, join(dir, 'network.onnx'), join(dir, 'input.json'), '3', join(dir, 'batch-3')], {
      encoding: 'utf8',
    })
    expect(r.status, r.stderr).toBe(0)
    const shapes = spawnSync(
      python,
      [
        '-c',
        'import onnx, sys, json; g = onnx.load(sys.argv[1]).graph; print(json.dumps({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in list(g.input) + list(g.output)}))',
        join(dir, 'batch-3', 'network.onnx'),
      ],
      { encoding: 'utf8' },
    )
    expect(JSON.parse(shapes.stdout)).toEqual({ x: [3, 4], w: [4, 2], y: [3, 2] })
    // Two batch samples whose rows cycle through the two samples (the second starts at the second).
    const samples = JSON.parse(await readFile(join(dir, 'batch-3', 'input.json'), 'utf8')) as { input_data: number[][] }
    const [a, b] = [
      [0.1, 0.2, 0.3, 0.4],
      [1, 2, 3, 4],
    ]
    expect(samples.input_data).toEqual([[...a!, ...b!, ...a!, ...b!, ...a!, ...b!]])
  })

  test('error: --batch on a graph without a batch dimension of 1 ends in one line naming the tensor', async () => {
    const r = await buildGraph('no-batch-dim', 'nodes = [helper.make_node("Relu", ["x"], ["y"])]', '[4]', ['--batch', '8', '--no-wasm'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/error: --batch 8: the graph cannot be widened to 8 rows per proof: .*x has no batch dimension of 1 to widen/)
  }, 120_000)

  test('error: a circuit larger than the limit ends in one line naming the limit', async () => {
    const src = join(REPO_ROOT, 'circuits', 'sources', 'sertn-trees')
    const r = await build([
      join(src, 'network.onnx'),
      '--input',
      join(src, 'input.json'),
      '--out',
      join(tmp, 'too-large'),
      '--max-logrows',
      '9',
      '--no-wasm',
    ])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error: no layout of the circuit fits in 2\^9 rows, the most this machine sets up \(or --max-logrows\)/m)
  })
})
