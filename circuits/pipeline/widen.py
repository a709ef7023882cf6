"""A model's batch version: the same ONNX graph with batch dimension N, and batch samples.

Every input's and output's first dimension (1 in the single model) becomes N; the batch samples'
rows cycle through the single model's samples (batch sample k starts at row k), so that every row
is a sample the single model was checked on. Used by circuits/sources/make.py and by
`sertn model build --batch`.

Usage: python circuits/pipeline/widen.py <network.onnx> <input.json> <N> <out-dir>
  writes <out-dir>/network.onnx and <out-dir>/input.json (EZKL's {"input_data": [[...]]}).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnx


class WidenError(Exception):
    """The graph has no batch dimension of 1 to widen."""


def data_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The graph's inputs that take data (exporters may list the weights, its initializers, too)."""
    weights = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in weights]


def batched(model: onnx.ModelProto, samples: list[np.ndarray], n: int, count: int = 2):
    """The graph with batch dimension `n`, and `count` batch samples (see the module's comment)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    tensors = data_inputs(m.graph) + list(m.graph.output)
    for v in tensors:
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 0 or dims[0].dim_value != 1:
            raise WidenError(f"{m.graph.name or 'the graph'}: {v.name} has no batch dimension of 1 to widen")
    for v in tensors:
        v.type.tensor_type.shape.dim[0].dim_value = n
    # Intermediate shapes recorded for batch 1 would contradict the wider graph.
    del m.graph.value_info[:]
    onnx.checker.check_model(m, full_check=True)
    out = []
    for s in samples:
        rows = np.asarray(s, dtype=np.float32).reshape(len(s), -1)
        out.append(np.stack([rows[[(k + r) % len(rows) for r in range(n)]] for k in range(count)]))
    return m, out


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    src, samples_path, n, out = argv[0], argv[1], int(argv[2]), argv[3]
    model = onnx.load(src)
    with open(samples_path) as f:
        data = json.load(f)["input_data"]
    # Each input list holds the samples one after another: split it by the input's size.
    samples = []
    inputs = data_inputs(model.graph)
    if len(data) != len(inputs):
        print(f"the samples hold {len(data)} input list(s); the graph takes {len(inputs)} input(s)", file=sys.stderr)
        return 1
    for v, flat in zip(inputs, data):
        size = int(np.prod([d.dim_value for d in v.type.tensor_type.shape.dim]))
        if size <= 0 or len(flat) % size != 0:
            print(f"{v.name}: {len(flat)} values are not whole samples of {size}", file=sys.stderr)
            return 1
        samples.append(np.asarray(flat, dtype=np.float32).reshape(len(flat) // size, size))
    try:
        wide, wide_samples = batched(model, samples, n)
    except WidenError as e:
        print(str(e), file=sys.stderr)
        return 1
    os.makedirs(out, exist_ok=True)
    onnx.save(wide, os.path.join(out, "network.onnx"))
    with open(os.path.join(out, "input.json"), "w") as f:
        json.dump({"input_data": [[round(float(x), 6) for x in s.reshape(-1)] for s in wide_samples]}, f)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
