"""Build every Sertn model listed in circuits/models.json with native ezkl 21.0.0.

For each model: generate a small MLP as ONNX from a fixed seed, then run the ezkl
pipeline (settings with public input/output and weights fixed in the circuit,
calibration, compile, setup, a sample proof verified natively), write the model's
verifying-key artifact (VKA) and the reusable Halo2 EVM verifier (one contract for
every model), measure the circuit's fidelity against the float model, and write a
manifest with content hashes.

The SRS in circuits/srs/ is reused when it exists; otherwise a new one is generated
locally, which is insecure (its secret is known to this machine) and is marked so in
every manifest: such artifacts are for development and tests only.

Run it through `npm run circuits:build`, which prepares the pinned Python venv.
"""

import asyncio
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

import ezkl

HERE = os.path.dirname(os.path.abspath(__file__))
SRS_DIR = os.path.join(HERE, "srs")
VERIFIER_DIR = os.path.join(HERE, "verifier")
CALIBRATION_SAMPLES = 32
# Files of a model directory that the manifest pins by hash.
PINNED = ["network.onnx", "settings.json", "model.compiled", "vk.key", "pk.key", "vka.sol", "input.json"]


def log(msg: str) -> None:
    print(f"[circuits] {msg}", flush=True)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def await_(make):
    """ezkl 21 returns awaitables that must be created inside a running event loop."""

    async def run():
        return await make()

    return asyncio.run(run())


def mlp_weights(seed: int, dims: list[int]):
    n_in, n_hidden, n_out = dims
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_hidden, n_in)).astype(np.float32)
    b1 = rng.normal(0.0, 0.1, size=(n_hidden,)).astype(np.float32)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), size=(n_out, n_hidden)).astype(np.float32)
    b2 = rng.normal(0.0, 0.1, size=(n_out,)).astype(np.float32)
    return w1, b1, w2, b2


def mlp_forward(weights, x: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = (w.astype(np.float64) for w in weights)
    return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2


def write_onnx(path: str, weights, dims: list[int]) -> None:
    """A dims[0] -> dims[1] (ReLU) -> dims[2] MLP as an ONNX graph (opset 13)."""
    w1, b1, w2, b2 = weights
    init = [
        helper.make_tensor(n, TensorProto.FLOAT, w.shape, w.flatten().tolist())
        for n, w in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))
    ]
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["h_relu"]),
        helper.make_node("Gemm", ["h_relu", "w2", "b2"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sertn_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, dims[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, dims[2]])],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="sertn")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def find_srs(logrows: int):
    path = os.path.join(SRS_DIR, f"kzg-local-k{logrows}.srs")
    return path, os.path.exists(path)


def build_model(spec: dict, cfg: dict) -> dict:
    name, seed, dims = spec["name"], spec["seed"], spec["dims"]
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    p = lambda f: os.path.join(out, f)  # noqa: E731
    bound = float(cfg["inputBound"])
    in_scale = int(cfg["inputScale"])

    log(f"{name}: MLP {dims} from seed {seed}")
    weights = mlp_weights(seed, dims)
    write_onnx(p("network.onnx"), weights, dims)

    rng = np.random.default_rng(seed + 1_000_003)
    calib = rng.uniform(-bound, bound, size=(CALIBRATION_SAMPLES, dims[0]))
    calib[0, :], calib[1, :] = bound, -bound
    tmp = os.path.join(out, ".build")
    os.makedirs(tmp, exist_ok=True)
    t = lambda f: os.path.join(tmp, f)  # noqa: E731
    with open(t("calibration.json"), "w") as f:
        json.dump({"input_data": [calib.flatten().tolist()]}, f)
    # The sample input is exactly representable at the input scale.
    sample = [round(float(v) * 2**in_scale) / 2**in_scale for v in rng.uniform(-1, 1, size=dims[0])]
    with open(p("input.json"), "w") as f:
        json.dump({"input_data": [sample]}, f)

    ra = ezkl.PyRunArgs()
    ra.input_visibility = "public"
    ra.output_visibility = "public"
    ra.param_visibility = "fixed"  # weights are constants of the circuit, hence bound to the vk
    ra.input_scale = in_scale
    ra.param_scale = int(cfg["paramScale"])
    ra.decomp_base = int(cfg["decompBase"])
    ra.decomp_legs = int(cfg["decompLegs"])
    log(f"{name}: gen_settings, calibrate_settings")
    assert ezkl.gen_settings(p("network.onnx"), p("settings.json"), py_run_args=ra)
    await_(
        lambda: ezkl.calibrate_settings(
            t("calibration.json"), p("network.onnx"), p("settings.json"), "resources", scales=[in_scale]
        )
    )
    # Make a rebuild byte-identical: calibration stamps the settings with the time and lists the
    # range checks in hash-set order, and the settings are compiled into the circuit, so both reach
    # the keys and the VKA.
    with open(p("settings.json")) as f:
        settings = json.load(f)
    settings["timestamp"] = 0
    settings["required_range_checks"] = sorted(settings["required_range_checks"])
    with open(p("settings.json"), "w") as f:
        json.dump(settings, f)
    log(f"{name}: compile_circuit")
    assert ezkl.compile_circuit(p("network.onnx"), p("model.compiled"), p("settings.json"))
    with open(p("settings.json")) as f:
        settings = json.load(f)
    logrows = settings["run_args"]["logrows"]
    srs, exists = find_srs(logrows)
    if not exists:
        os.makedirs(SRS_DIR, exist_ok=True)
        log(f"{name}: gen_srs logrows={logrows} -> {os.path.relpath(srs, HERE)} (INSECURE: local secret)")
        ezkl.gen_srs(srs, logrows)
    log(f"{name}: setup (SRS {os.path.relpath(srs, HERE)})")
    assert ezkl.setup(p("model.compiled"), p("vk.key"), p("pk.key"), srs)

    log(f"{name}: sample proof, verified natively")
    await_(lambda: ezkl.gen_witness(p("input.json"), p("model.compiled"), t("witness.json")))
    assert ezkl.prove(t("witness.json"), p("model.compiled"), p("pk.key"), t("proof.json"), "single", srs)
    assert ezkl.verify(t("proof.json"), p("settings.json"), p("vk.key"), srs)

    log(f"{name}: fidelity of the circuit against the float model on {CALIBRATION_SAMPLES} inputs")
    out_scale = settings["model_output_scales"][0]
    max_err = 0.0
    for i, row in enumerate(calib):
        x = [round(float(v) * 2**in_scale) / 2**in_scale for v in row]
        with open(t("fid.json"), "w") as f:
            json.dump({"input_data": [x]}, f)
        await_(lambda: ezkl.gen_witness(t("fid.json"), p("model.compiled"), t("fid.witness.json")))
        with open(t("fid.witness.json")) as f:
            w = json.load(f)
        got = np.array([float(v) for v in w["pretty_elements"]["rescaled_outputs"][0]])
        want = mlp_forward(weights, np.array([x]))[0]
        max_err = max(max_err, float(np.max(np.abs(got - want))))

    log(f"{name}: verifying-key artifact and reusable verifier")
    verifier = t("Halo2VerifierReusable.sol")
    for make, target in (
        (lambda: ezkl.create_evm_vka(p("vk.key"), p("settings.json"), p("vka.sol"), t("vka.abi"), srs), p("vka.sol")),
        (lambda: ezkl.create_evm_verifier(p("vk.key"), p("settings.json"), verifier, t("v.abi"), srs, True), verifier),
    ):
        try:
            await_(make)
        except Exception as e:  # ezkl fetches solc after writing the .sol file; offline that fails
            if not os.path.exists(target):
                raise
            log(f"{name}:   (ignored once {os.path.basename(target)} was written: {str(e).splitlines()[0][:90]})")

    srs_rel = os.path.relpath(srs, out)
    manifest = {
        "schema": 1,
        "name": name,
        "description": spec["description"],
        "ezkl": ezkl.__version__ if hasattr(ezkl, "__version__") else settings["version"],
        "architecture": {"kind": "mlp", "dims": dims, "activation": "relu", "seed": seed},
        "logrows": logrows,
        "inputScale": settings["model_input_scales"][0],
        "paramScale": settings["run_args"]["param_scale"],
        "outputScale": out_scale,
        "inputShape": settings["model_instance_shapes"][0],
        "outputShape": settings["model_instance_shapes"][1],
        "inputBound": bound,
        "maxAbsInput": int(round(bound * 2**in_scale)),
        "visibility": {"input": "public", "output": "public", "params": "fixed"},
        "fidelity": {"samples": CALIBRATION_SAMPLES, "maxAbsError": max_err},
        "srs": {
            "file": srs_rel,
            "source": "local",
            "insecure": True,
            "note": "generated with ezkl.gen_srs on a build machine; its secret is not destroyed: dev and tests only",
            "sha256": sha256(srs),
        },
        "verifier": {"file": "../verifier/Halo2VerifierReusable.sol", "sha256": None},
        "files": {f: sha256(p(f)) for f in PINNED},
    }
    return {"manifest": manifest, "out": out, "verifier": verifier}


def main() -> None:
    with open(os.path.join(HERE, "models.json")) as f:
        cfg = json.load(f)
    only = set(sys.argv[1:])
    built = [build_model(s, cfg) for s in cfg["models"] if not only or s["name"] in only]

    # The reusable verifier is the same contract for every circuit: check it, keep one copy.
    os.makedirs(VERIFIER_DIR, exist_ok=True)
    target = os.path.join(VERIFIER_DIR, "Halo2VerifierReusable.sol")
    hashes = {sha256(b["verifier"]) for b in built}
    if len(hashes) != 1:
        raise SystemExit("the reusable verifier differs between models; refusing to pick one")
    shutil.copyfile(built[0]["verifier"], target)
    vhash = sha256(target)
    for b in built:
        b["manifest"]["verifier"]["sha256"] = vhash
        with open(os.path.join(b["out"], "manifest.json"), "w") as f:
            json.dump(b["manifest"], f, indent=2)
            f.write("\n")
        shutil.rmtree(os.path.join(b["out"], ".build"))
        m = b["manifest"]
        log(
            f"{m['name']}: logrows {m['logrows']}, scales in/out {m['inputScale']}/{m['outputScale']}, "
            f"max |circuit - float| {m['fidelity']['maxAbsError']:.6f}"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # ezkl 21 may abort during interpreter teardown (PyGILState_Release)


if __name__ == "__main__":
    main()
