"""Native ezkl 21.0.0 driver of `sertn model build` (circuits/pipeline/build.ts runs it).

Usage: python ezkl_driver.py inspect|reference|build JOB.json

Every line this program prints on stdout is one JSON object (an event); anything ezkl itself prints
goes to stderr. The last event is either {"type": "inspected" | "reference" | "built", ...} or
{"type": "error", "code": CODE, "message": ONE LINE, ...}, with exit code 0 or 2. Codes:
  not-onnx             the file is not an ONNX model
  unsupported-operator an operator EZKL 21 cannot prove (the message names it and its node)
  dynamic-shape        a dimension with no size (the message names the input, the axis and the name)
  too-large            the circuit does not fit this machine (the message names the limit)
  bad-samples          the samples do not fit the model's input
  tolerance            no candidate keeps the output error within the tolerance
  verifier-mismatch    the circuit needs a verifier other than the reusable one every model shares
  ezkl-failed          anything else ezkl refused (its first line)

inspect: checks the graph (operators, dynamic dimensions) and asks ezkl for the circuit's tensor
shapes, so that the caller can run the float model (onnxruntime) on the samples.

reference: the float model's outputs on the samples with onnx's reference evaluator, for a graph
onnxruntime refuses (the build's reference is onnxruntime's otherwise).

build: sizes the circuit by search, then compiles it, sets it up, proves one sample natively and
writes the artifacts. The search has two stages, because the run arguments split in two kinds:
  1. scale (input and param scale together): the only one that changes the circuit's values. Each
     scale is calibrated and every sample's circuit output is compared with the reference outputs
     (onnxruntime's, from the job). target "resources" keeps the smallest scale within the
     tolerance; "accuracy" the one with the smallest error.
  2. layout (range-check decomposition base and legs, inner columns, lookup safety margin): these
     change how many rows the circuit needs, not what it computes. Each candidate is calibrated
     with the chosen scale and checked on the samples; the smallest logrows wins (then fewer
     columns, then fewer rows).
Every candidate is reported as an event, so the report can show what was tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import resource
import shutil
import sys
import time
import traceback

SEARCH_DEFAULTS = {
    "scales": [4, 6, 8, 10, 12, 14],
    "decomps": [[16, 4], [16, 6], [64, 3], [64, 4], [256, 3], [256, 4], [1024, 3], [16384, 2]],
    # Each inner column beyond 2 adds commitments to every proof: 4 columns halve the rows but cost
    # about 290k more verify gas per request on every chain (measured: 914k against 628k), so the
    # default stops at 2 (`--columns 1,2,4` widens it). 8 columns compile and prove, but the reusable
    # EVM verifier rejects their proofs (it runs out of 30M gas).
    "columns": [1, 2],
    "lookupMargins": [2],
}
# Stage 1 calibrates with a decomposition wide enough for any scale it tries (the layout search
# picks the real one afterwards).
WIDE_DECOMP = (16384, 4)


class BuildError(Exception):
    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.details = details


def emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def progress(step: str, message: str, **extra) -> None:
    emit({"type": "progress", "step": step, "message": message, **extra})


def run_async(make):
    """ezkl 21 returns awaitables that must be created inside a running event loop."""

    async def run():
        return await make()

    return asyncio.run(run())


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:500]
    return ""


# ─────────────────────────────── the graph ───────────────────────────────


def load_graph(path: str):
    import onnx

    try:
        model = onnx.load(path)
    except Exception as e:  # noqa: BLE001 - any parse failure is the same answer
        raise BuildError("not-onnx", f"{path} is not an ONNX model ({first_line(e)})") from None
    return model


def graph_inputs(model) -> list:
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def check_graph(model, variables: dict[str, int]) -> None:
    """Refuses, with one line, what no run argument can fix: custom-domain operators and unsized dimensions."""
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise BuildError(
                "unsupported-operator",
                f'unsupported operator {node.op_type} (domain {node.domain}, node "{node.name or node.output[0]}"): '
                "EZKL 21 proves standard ONNX tensor operators only; convert the model to them "
                "(trees, for instance, to the matrix form hummingbird produces)",
                operator=node.op_type,
                node=node.name or node.output[0],
            )
    for inp in graph_inputs(model):
        dims = inp.type.tensor_type.shape.dim
        for axis, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            name = d.dim_param if d.HasField("dim_param") else ""
            if name and name in variables:
                continue
            what = f'"{name}"' if name else "with no size"
            hint = f"give it a size with --var {name}=N" if name else "export the model with a fixed shape"
            raise BuildError(
                "dynamic-shape",
                f'input "{inp.name}" has a dynamic dimension {what} (axis {axis}): {hint}',
                input=inp.name,
                axis=axis,
                dimension=name,
            )


def operator_of(model, name: str) -> str | None:
    for node in model.graph.node:
        if node.name == name or name in node.output:
            return node.op_type
    return None


# Operators whose output size depends on the data: EZKL proves static shapes only.
DATA_DEPENDENT_SHAPES = ("NonZero", "Unique", "Compress", "NonMaxSuppression", "StringSplit")


@contextlib.contextmanager
def stderr_to(path: str):
    """Sends what ezkl logs on stderr (fd 2) to `path` too, so that a failure can be explained by it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    with open(path, errors="replace") as f:
        sys.stderr.write(f.read())


def classify(e: BaseException, model, step: str, log: str = "") -> BuildError:
    """One line for an ezkl failure: the operator and node when it names one, the limit when it is size."""
    text = str(e)
    unknown = re.search(r"Unknown op: (?:onnx\.)?(\w+)", log)
    if unknown:
        op = unknown.group(1)
        nodes = [n for n in model.graph.node if n.op_type.lower() == op.lower()]
        if nodes:
            op = nodes[0].op_type
        where = f' (node "{nodes[0].name or nodes[0].output[0]}")' if nodes else ""
        return BuildError("unsupported-operator", f"unsupported operator {op}{where}: EZKL 21 cannot prove it", operator=op)
    if "Undetermined symbol" in text:
        for node in model.graph.node:
            if node.op_type in DATA_DEPENDENT_SHAPES:
                return BuildError(
                    "dynamic-shape",
                    f'operator {node.op_type} (node "{node.name or node.output[0]}") makes a tensor whose size depends on the data: EZKL proves static shapes only',
                    operator=node.op_type,
                )
        return BuildError("dynamic-shape", f"{step}: a tensor's size is not fixed ({first_line(text)}): export the model with static shapes")
    m = re.search(r'node #\d+ "([^"]+)"', text)
    if m and ("Failed analyse" in text or "Translating node" in text or "Unimplemented" in text or "Unsupported" in text):
        op = operator_of(model, m.group(1))
        unimpl = re.search(r"Unimplemented\((\w+)\)", text)
        op = op or (unimpl.group(1) if unimpl else "?")
        return BuildError(
            "unsupported-operator",
            f'unsupported operator {op} (node "{m.group(1)}"): EZKL 21 cannot prove it',
            operator=op,
            node=m.group(1),
        )
    m = re.search(r"Unknown op: (\w+)|Unsupported op type[^A-Za-z]*(\w+)", text)
    if m:
        op = m.group(1) or m.group(2)
        return BuildError("unsupported-operator", f"unsupported operator {op}: EZKL 21 cannot prove it", operator=op)
    if re.search(r"larger than the max allowed area|extended k is too large|max_logrows|logrows .* too large", text):
        return BuildError("too-large", f"{step}: the circuit is too large ({first_line(text)})")
    if isinstance(e, MemoryError):
        return BuildError("too-large", f"{step}: ran out of memory")
    return BuildError("ezkl-failed", f"{step}: {first_line(text) or type(e).__name__}")


# ─────────────────────────────── settings ────────────────────────────────


def run_args(job: dict, scale: int, base: int, legs: int, columns: int):
    import ezkl

    ra = ezkl.PyRunArgs()
    ra.input_visibility = job["visibility"]["input"]
    ra.output_visibility = job["visibility"]["output"]
    ra.param_visibility = "fixed"  # weights are constants of the circuit, hence bound to the vk
    ra.input_scale = scale
    ra.param_scale = scale
    ra.decomp_base = base
    ra.decomp_legs = legs
    ra.num_inner_cols = columns
    ra.variables = [(k, v) for k, v in sorted(job["variables"].items())]
    return ra


def normalize_settings(path: str) -> dict:
    """Makes a rebuild byte-identical: calibration stamps the time and lists checks in hash-set order."""
    with open(path) as f:
        settings = json.load(f)
    settings["timestamp"] = 0
    settings["required_range_checks"] = sorted(settings["required_range_checks"])
    settings["required_lookups"] = sorted(settings["required_lookups"], key=json.dumps)
    with open(path, "w") as f:
        json.dump(settings, f)
    return settings


# Stage 1 only measures the circuit's values (witnesses, no keys), so it may exceed the logrows this
# machine can set up; the layout search then keeps within that limit.
VALUES_MAX_LOGROWS = 24
# Rows halo2 keeps for blinding at the end of the circuit (with a margin): a layout's rows must fit
# in 2^logrows minus these.
BLINDING_ROWS = 16


def calibrate(job: dict, model, ra, scale: int, margin: int, settings: str, step: str, max_logrows: int | None = None) -> dict:
    import ezkl

    try:
        assert ezkl.gen_settings(job["onnx"], settings, py_run_args=ra)
        run_async(
            lambda: ezkl.calibrate_settings(
                job["calibration"],
                job["onnx"],
                settings,
                job["target"],
                lookup_safety_margin=margin,
                scales=[scale],
                scale_rebase_multiplier=[1],
                max_logrows=max_logrows or job["maxLogrows"],
            )
        )
    except BaseException as e:  # noqa: BLE001
        raise classify(e, model, step) from None
    return normalize_settings(settings)


def compile_circuit(job: dict, model, settings: str, compiled: str, step: str) -> None:
    import ezkl

    try:
        assert ezkl.compile_circuit(job["onnx"], compiled, settings)
    except BaseException as e:  # noqa: BLE001
        raise classify(e, model, step) from None


def circuit_outputs(compiled: str, sample_file: str, witness: str) -> tuple[list[float], dict]:
    import ezkl

    run_async(lambda: ezkl.gen_witness(sample_file, compiled, witness))
    with open(witness) as f:
        w = json.load(f)
    flat = [float(v) for tensor in w["pretty_elements"]["rescaled_outputs"] for v in tensor]
    return flat, w


def errors_on(job: dict, compiled: str, indices: list[int]) -> list[float]:
    """Max |circuit - reference| per sample (dequantised outputs)."""
    out = []
    for i in indices:
        got, _ = circuit_outputs(compiled, job["sampleFiles"][i], os.path.join(job["workDir"], "w.json"))
        want = job["references"][i]
        if len(got) != len(want):
            raise BuildError("ezkl-failed", f"the circuit has {len(got)} outputs but the float model {len(want)}")
        out.append(max((abs(a - b) for a, b in zip(got, want)), default=0.0))
    return out


def layout_of(settings: dict) -> dict:
    ra = settings["run_args"]
    rows = settings["num_rows"]
    return {
        "logrows": ra["logrows"],
        "rows": rows,
        "columns": ra["num_inner_cols"],
        "totalAssignments": settings["total_assignments"],
        "advicePerRow": math.ceil(settings["total_assignments"] / max(rows, 1)),
        "lookupRange": ra["lookup_range"],
        "requiredLookups": len(settings["required_lookups"]),
        "rangeChecks": len(settings["required_range_checks"]),
    }


# ─────────────────────────────── commands ────────────────────────────────


def inspect(job: dict) -> dict:
    import ezkl

    model = load_graph(job["onnx"])
    check_graph(model, job["variables"])
    inputs = graph_inputs(model)
    ra = run_args({**job, "visibility": {"input": "public", "output": "public"}}, 7, 16384, 2, 2)
    settings = os.path.join(job["workDir"], "inspect.settings.json")
    log_file = os.path.join(job["workDir"], "gen_settings.log")
    try:
        with stderr_to(log_file):
            assert ezkl.gen_settings(job["onnx"], settings, py_run_args=ra)
    except BaseException as e:  # noqa: BLE001
        with open(log_file, errors="replace") as f:
            raise classify(e, model, "gen_settings", f.read()) from None
    with open(settings) as f:
        s = json.load(f)
    shapes = s["model_instance_shapes"]
    n_in = len(inputs)
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {
        "type": "inspected",
        "inputs": [{"name": i.name, "shape": shapes[k]} for k, i in enumerate(inputs)],
        "outputs": [{"name": o.name, "shape": shapes[n_in + k]} for k, o in enumerate(model.graph.output)],
        "operators": ops,
        "opset": [{"domain": o.domain, "version": o.version} for o in model.opset_import],
        "parameters": int(sum(math.prod(t.dims) for t in model.graph.initializer)),
    }


def reference(job: dict) -> dict:
    """The float model's outputs on each sample with onnx's reference evaluator (for a graph onnxruntime refuses)."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    model = load_graph(job["onnx"])
    try:
        evaluator = ReferenceEvaluator(model)
    except Exception as e:  # noqa: BLE001
        raise BuildError("reference-failed", f"onnx's reference evaluator cannot load the model ({first_line(e)})") from None
    names = [i.name for i in graph_inputs(model)]
    types = {i.name: i.type.tensor_type.elem_type for i in graph_inputs(model)}
    outputs = []
    for sample in job["samples"]:
        feeds = {}
        for k, spec in enumerate(job["inputs"]):
            dtype = onnx_dtype(types[names[k]])
            feeds[names[k]] = np.array(sample[k], dtype=dtype).reshape(spec["shape"])
        try:
            result = evaluator.run(None, feeds)
        except Exception as e:  # noqa: BLE001
            raise BuildError("reference-failed", f"onnx's reference evaluator failed on a sample ({first_line(e)})") from None
        outputs.append([float(v) for r in result for v in np.asarray(r).reshape(-1)])
    return {"type": "reference", "outputs": outputs}


def onnx_dtype(elem_type: int):
    import numpy as np
    from onnx import helper

    try:
        return helper.tensor_dtype_to_np_dtype(elem_type)
    except Exception:  # noqa: BLE001
        return np.float32


def search_scale(job: dict, model) -> tuple[int, list[float]]:
    scales = sorted(job["search"]["scales"])
    settings = os.path.join(job["workDir"], "scale.settings.json")
    compiled = os.path.join(job["workDir"], "scale.compiled")
    all_samples = list(range(len(job["sampleFiles"])))
    tried = []
    for k, scale in enumerate(scales):
        t0 = time.perf_counter()
        progress("scale", f"scale {scale}: calibrate and run {len(all_samples)} samples", index=k, total=len(scales))
        event = {"type": "candidate", "stage": "scale", "scale": scale}
        try:
            calibrate(job, model, run_args(job, scale, *WIDE_DECOMP, 2), scale, 2, settings, f"calibrate (scale {scale})", max(VALUES_MAX_LOGROWS, job["maxLogrows"]))
            compile_circuit(job, model, settings, compiled, f"compile (scale {scale})")
            errs = errors_on(job, compiled, all_samples)
        except BuildError as e:
            if e.code in ("unsupported-operator", "too-large"):
                raise
            emit({**event, "ok": False, "reason": str(e), "ms": (time.perf_counter() - t0) * 1000})
            continue
        except BaseException as e:  # noqa: BLE001 - a witness that fails rejects the candidate
            emit({**event, "ok": False, "reason": first_line(e) or type(e).__name__, "ms": (time.perf_counter() - t0) * 1000})
            continue
        worst = max(errs)
        ok = worst <= job["tolerance"]
        emit({**event, "ok": ok, "maxAbsError": worst, "meanAbsError": sum(errs) / len(errs), "ms": (time.perf_counter() - t0) * 1000})
        tried.append((scale, worst, errs))
        if ok and job["target"] == "resources":
            return scale, errs
    within = [t for t in tried if t[1] <= job["tolerance"]]
    if not within:
        best = min(tried, key=lambda t: t[1]) if tried else None
        detail = f"the smallest error was {best[1]:.6g} at scale {best[0]}" if best else "no scale could be calibrated"
        raise BuildError(
            "tolerance",
            f"no scale in {scales} keeps the output error within the tolerance {job['tolerance']:g}: {detail}",
        )
    scale, _, errs = min(within, key=lambda t: (t[1], t[0]))
    return scale, errs


def search_layout(job: dict, model, scale: int) -> dict:
    s = job["search"]
    candidates = [(b, l, c, m) for (b, l) in s["decomps"] for c in s["columns"] for m in s["lookupMargins"]]
    settings = os.path.join(job["workDir"], "layout.settings.json")
    compiled = os.path.join(job["workDir"], "layout.compiled")
    # The corners and a few samples: the layout does not change the values, only whether they fit.
    probe = list(range(min(len(job["sampleFiles"]), 4)))
    best = None
    any_fit = False  # whether some candidate could be calibrated within maxLogrows at all
    for k, (base, legs, cols, margin) in enumerate(candidates):
        t0 = time.perf_counter()
        label = f"decomp {base}^{legs}, {cols} column{'s' if cols > 1 else ''}, lookup margin {margin}"
        progress("layout", label, index=k, total=len(candidates))
        event = {"type": "candidate", "stage": "layout", "scale": scale, "decompBase": base, "decompLegs": legs, "columns": cols, "lookupMargin": margin}
        try:
            st = calibrate(job, model, run_args(job, scale, base, legs, cols), scale, margin, settings, label)
            compile_circuit(job, model, settings, compiled, label)
            errs = errors_on(job, compiled, probe)
        except BuildError as e:
            if e.code == "unsupported-operator":
                raise
            emit({**event, "ok": False, "reason": str(e), "ms": (time.perf_counter() - t0) * 1000})
            continue
        except BaseException as e:  # noqa: BLE001
            emit({**event, "ok": False, "reason": first_line(e) or type(e).__name__, "ms": (time.perf_counter() - t0) * 1000})
            continue
        lay = layout_of(st)
        # Calibration clamps logrows to the limit even when the rows do not fit: such a layout is out.
        fits = lay["rows"] + BLINDING_ROWS <= 2 ** lay["logrows"]
        ok = fits and max(errs) <= job["tolerance"]
        reason = {} if ok else {"reason": f"{lay['rows']} rows do not fit in 2^{lay['logrows']}" if not fits else "outputs differ on the probe samples"}
        emit({**event, **lay, "ok": ok, "maxAbsError": max(errs), "ms": (time.perf_counter() - t0) * 1000, **reason})
        if not fits:
            continue
        any_fit = True
        if not ok:
            continue
        key = (lay["logrows"], cols, lay["rows"])
        if best is None or key < best["key"]:
            best = {"key": key, "decompBase": base, "decompLegs": legs, "columns": cols, "lookupMargin": margin}
    if best is None:
        if not any_fit:
            raise BuildError(
                "too-large",
                f"no layout of the circuit fits in 2^{job['maxLogrows']} rows, the most this machine sets up (or --max-logrows): "
                "a smaller model, a looser --tolerance (a lower scale), or a machine with more memory",
            )
        raise BuildError("tolerance", f"no layout of the circuit at scale {scale} could be calibrated within the tolerance")
    return best


def srs_for(job: dict, logrows: int) -> tuple[str, bool]:
    """The SRS for `logrows`: reused from the SRS folder, else generated there (insecure: local secret)."""
    import ezkl

    path = os.path.join(job["srsDir"], f"kzg-local-k{logrows}.srs")
    if os.path.exists(path):
        return path, False
    os.makedirs(job["srsDir"], exist_ok=True)
    progress("srs", f"gen_srs logrows {logrows} (INSECURE: its secret is known to this machine)")
    tmp = f"{path}.{os.getpid()}.tmp"
    ezkl.gen_srs(tmp, logrows)
    os.replace(tmp, path)
    return path, True


def evm_artifact(make, target: str) -> None:
    """ezkl writes the .sol file, then tries to download solc, which fails offline: keep the file."""
    try:
        run_async(make)
    except Exception:  # noqa: BLE001
        if not os.path.exists(target):
            raise


def prepare_samples(job: dict) -> None:
    """One input file per sample (for witnesses) and one holding them all (for calibration)."""
    samples = job["samples"]
    if not samples:
        raise BuildError("bad-samples", "no samples: calibration needs at least one input")
    work = job["workDir"]
    job["sampleFiles"] = []
    for i, sample in enumerate(samples):
        path = os.path.join(work, f"sample-{i}.json")
        with open(path, "w") as f:
            json.dump({"input_data": sample}, f)
        job["sampleFiles"].append(path)
    job["calibration"] = os.path.join(work, "calibration.json")
    with open(job["calibration"], "w") as f:
        json.dump({"input_data": [[v for s in samples for v in s[t]] for t in range(len(samples[0]))]}, f)


def build(job: dict) -> dict:
    import ezkl

    model = load_graph(job["onnx"])
    check_graph(model, job["variables"])
    prepare_samples(job)
    work, out = job["workDir"], job["outDir"]
    os.makedirs(out, exist_ok=True)
    scale, _ = search_scale(job, model)
    layout = search_layout(job, model, scale)

    progress("compile", "settings, calibration and compile of the chosen candidate")
    settings = os.path.join(out, "settings.json")
    compiled = os.path.join(out, "model.compiled")
    ra = run_args(job, scale, layout["decompBase"], layout["decompLegs"], layout["columns"])
    st = calibrate(job, model, ra, scale, layout["lookupMargin"], settings, "calibrate")
    compile_circuit(job, model, settings, compiled, "compile")
    progress("fidelity", f"circuit outputs of {len(job['sampleFiles'])} samples against the reference")
    sample_errors = errors_on(job, compiled, list(range(len(job["sampleFiles"]))))
    if max(sample_errors) > job["tolerance"]:
        raise BuildError("tolerance", f"the chosen circuit's error {max(sample_errors):.6g} exceeds the tolerance {job['tolerance']:g}")
    logrows = st["run_args"]["logrows"]
    srs, generated = srs_for(job, logrows)

    vk, pk = os.path.join(out, "vk.key"), os.path.join(work, "pk.key")
    progress("setup", f"setup (proving and verifying keys) at logrows {logrows}")
    t0 = time.perf_counter()
    try:
        assert ezkl.setup(compiled, vk, pk, srs)
    except BaseException as e:  # noqa: BLE001
        raise classify(e, model, "setup") from None
    setup_ms = (time.perf_counter() - t0) * 1000

    progress("prove", "sample proof (native), verified natively")
    sample = job["sampleFiles"][job["proveSample"]]
    witness, proof = os.path.join(work, "witness.json"), os.path.join(work, "proof.json")
    t0 = time.perf_counter()
    run_async(lambda: ezkl.gen_witness(sample, compiled, witness))
    witness_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    try:
        assert ezkl.prove(witness, compiled, pk, proof, "single", srs)
    except BaseException as e:  # noqa: BLE001
        raise classify(e, model, "prove") from None
    prove_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    verified = ezkl.verify(proof, settings, vk, srs)
    verify_ms = (time.perf_counter() - t0) * 1000
    if verified is not True:
        raise BuildError("ezkl-failed", "the sample proof does not verify natively")

    progress("evm", "verifying-key artifact and the reusable verifier")
    vka = os.path.join(out, "vka.sol")
    verifier = os.path.join(work, "Halo2VerifierReusable.sol")
    evm_artifact(lambda: ezkl.create_evm_vka(vk, settings, vka, os.path.join(work, "vka.abi"), srs), vka)
    evm_artifact(lambda: ezkl.create_evm_verifier(vk, settings, verifier, os.path.join(work, "v.abi"), srs, True), verifier)
    if job.get("verifier") and sha256(verifier) != sha256(job["verifier"]):
        raise BuildError(
            "verifier-mismatch",
            f"this circuit's reusable verifier differs from {job['verifier']}, the one every model on a chain shares",
        )
    shutil.copyfile(job["onnx"], os.path.join(out, "network.onnx"))
    with open(proof) as f:
        proof_bytes = len(bytes.fromhex(json.load(f)["hex_proof"][2:]))

    return {
        "type": "built",
        "runArgs": {
            "inputScale": scale,
            "paramScale": scale,
            "decompBase": layout["decompBase"],
            "decompLegs": layout["decompLegs"],
            "numInnerCols": layout["columns"],
            "lookupSafetyMargin": layout["lookupMargin"],
            "lookupRange": st["run_args"]["lookup_range"],
            "inputVisibility": job["visibility"]["input"],
            "outputVisibility": job["visibility"]["output"],
            "paramVisibility": "fixed",
        },
        "layout": layout_of(st),
        "inputScales": st["model_input_scales"],
        "outputScales": st["model_output_scales"],
        "instanceShapes": st["model_instance_shapes"],
        "sampleErrors": sample_errors,
        "srs": {"path": srs, "logrows": logrows, "generated": generated, "sha256": sha256(srs)},
        "files": {"pk": pk, "witness": witness, "proof": proof, "verifier": verifier},
        "sizes": {"pk": os.path.getsize(pk), "vk": os.path.getsize(vk), "proof": proof_bytes, "compiled": os.path.getsize(compiled), "srs": os.path.getsize(srs)},
        "native": {"setupMs": setup_ms, "witnessMs": witness_ms, "proveMs": prove_ms, "verifyMs": verify_ms},
        "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main() -> None:
    commands = {"inspect": inspect, "reference": reference, "build": build}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        emit({"type": "error", "code": "usage", "message": "usage: ezkl_driver.py inspect|reference|build JOB.json"})
        os._exit(2)
    with open(sys.argv[2]) as f:
        job = json.load(f)
    job.setdefault("variables", {})
    search = {**SEARCH_DEFAULTS, **(job.get("search") or {})}
    job["search"] = search
    code = 0
    # ezkl prints its own tables and logs: keep stdout for events.
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(real_stdout, "w", buffering=1)
    try:
        emit(commands[sys.argv[1]](job))
    except BuildError as e:
        emit({"type": "error", "code": e.code, "message": str(e), **e.details})
        code = 2
    except MemoryError:
        emit({"type": "error", "code": "too-large", "message": "ran out of memory: the circuit is too large for this machine"})
        code = 2
    except BaseException as e:  # noqa: BLE001 - one line for the caller, the trace on stderr
        traceback.print_exc()
        emit({"type": "error", "code": "ezkl-failed", "message": first_line(e) or type(e).__name__})
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # ezkl 21 may abort during interpreter teardown (PyGILState_Release)


if __name__ == "__main__":
    main()
