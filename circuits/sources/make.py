"""Writes the float sources of Sertn's model zoo: for each model, <name>/network.onnx and <name>/input.json.

Usage: python circuits/sources/make.py [name ...]   (every model when none is named)

Each model is a small ONNX graph (standard ONNX-domain operators, float32 tensors, IR version 8,
producer "sertn") that onnxruntime runs and EZKL 21 can prove; input.json holds 12-16 sample inputs
in EZKL's format ({"input_data": [[...]]}: one flat list per model input, the samples one after
another), drawn inside the input bound the model is meant for, rounded to 6 decimals.

  sertn-mlp-demo   4 -> 8 (ReLU) -> 3 MLP, seed 7: byte for byte circuits/sertn-mlp-demo/network.onnx
  sertn-mlp-twin   the same architecture with seed 8 (byte for byte circuits/sertn-mlp-twin/network.onnx)
  sertn-conv       8x8 grey image -> Conv 3x3 stride 2 (3 filters) -> ReLU -> Flatten -> Gemm -> 3 scores
  sertn-linreg     3 -> 1 linear regression, fitted by least squares on synthetic data
  sertn-trees      6 regression trees of depth 3 over 4 features in hummingbird's GEMM form
  sertn-svm        linear one-vs-rest SVC, 3 classes over 6 features (hinge-loss subgradient)
  sertn-svm-rbf    RBF-kernel one-vs-rest SVC, 3 classes over 4 features, 9 shared support vectors
  sertn-attention  layer norm + single-head self-attention over 4 tokens x 4 dims, with a residual

A model whose entry in circuits/models.json lists "batches" also gets <name>/batch-<N>/: the same
graph with batch dimension N (each input's and output's first dimension), and batch samples whose
rows cycle through the model's samples.

Everything is deterministic: weights, fits and samples come from fixed numpy seeds, and running the
script twice writes byte-identical files. Needs numpy and onnx only.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pipeline"))
from widen import WidenError, batched  # noqa: E402  (the one place a model is widened to a batch)
OPSET = 13


# ─────────────────────────────── helpers ────────────────────────────────


def const(name: str, value: np.ndarray) -> onnx.TensorProto:
    """A float32 initializer."""
    value = np.asarray(value, dtype=np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, value.shape, value.flatten().tolist())


def finish(graph: onnx.GraphProto, opset: int = OPSET) -> onnx.ModelProto:
    """The model of a graph: standard ONNX domain at `opset`, IR version 8, producer "sertn", checked."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="sertn")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def write(name: str, model: onnx.ModelProto, samples: list[np.ndarray]) -> str:
    """Writes <name>/network.onnx and <name>/input.json (one [N, ...] array per model input)."""
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    onnx.save(model, os.path.join(out, "network.onnx"))
    data = [[round(float(v), 6) for v in np.asarray(s, dtype=np.float32).reshape(-1)] for s in samples]
    with open(os.path.join(out, "input.json"), "w") as f:
        json.dump({"input_data": data}, f)
        f.write("\n")
    n = len(samples[0])
    ops = " ".join(dict.fromkeys(node.op_type for node in model.graph.node))
    return f"{name}: {n} samples, {len(model.graph.node)} nodes ({ops})"


# ────────────────────────────────── MLPs ─────────────────────────────────


def mlp_weights(seed: int, dims: list[int]):
    """The weights the original circuits/build.py drew (the committed demo and twin networks hold them)."""
    n_in, n_hidden, n_out = dims
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_hidden, n_in)).astype(np.float32)
    b1 = rng.normal(0.0, 0.1, size=(n_hidden,)).astype(np.float32)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), size=(n_out, n_hidden)).astype(np.float32)
    b2 = rng.normal(0.0, 0.1, size=(n_out,)).astype(np.float32)
    return w1, b1, w2, b2


def mlp(seed: int):
    """Gemm -> Relu -> Gemm, input "input" [1,4], output "output" [1,3]: the graph the original
    circuits/build.py wrote (write_onnx), so that the network bytes stay the committed ones."""
    dims = [4, 8, 3]
    w1, b1, w2, b2 = mlp_weights(seed, dims)
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
    # Samples: uniform in [-4, 4] (the build adds the two corners), a few on the bound.
    rng = np.random.default_rng(seed + 2_000_003)
    x = rng.uniform(-4.0, 4.0, size=(16, 4))
    x[0, 0], x[1, 1], x[2, 2], x[3, 3] = 4.0, -4.0, 3.99, -3.99
    return finish(graph), [x]


def sertn_mlp_demo():
    return mlp(7)


def sertn_mlp_twin():
    return mlp(8)


# ────────────────────────────────── conv ─────────────────────────────────


def sertn_conv():
    """[1,1,8,8] in [0,1] -> Conv 3 filters 3x3, stride 2, padding 1 [1,3,4,4] -> Relu -> Flatten [1,48]
    -> Gemm [3,48] -> [1,3] scores. (A stride-1 convolution followed by AveragePool 2x2 computes
    about twice as many products and needs 2^13 rows at 2 columns; this one fits 2^12.)"""
    rng = np.random.default_rng(31)
    k = rng.normal(0.0, 1.0 / 3.0, size=(3, 1, 3, 3))
    kb = rng.normal(0.0, 0.1, size=(3,))
    w = rng.normal(0.0, 1.0 / np.sqrt(48), size=(3, 48))
    b = rng.normal(0.0, 0.1, size=(3,))
    nodes = [
        helper.make_node("Conv", ["input", "k", "kb"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w", "b"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sertn_conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])],
        [const("k", k), const("kb", kb), const("w", w), const("b", b)],
    )
    # Samples: grey images in [0, 1]: noise, smooth gradients and bright/dark blobs, some pixels at 0 and 1.
    srng = np.random.default_rng(32)
    imgs = []
    yy, xx = np.mgrid[0:8, 0:8] / 7.0
    for i in range(16):
        kind = i % 4
        if kind == 0:
            img = srng.uniform(0.0, 1.0, size=(8, 8))
        elif kind == 1:
            a, c = srng.uniform(-1, 1, size=2)
            img = 0.5 + a * (xx - 0.5) + c * (yy - 0.5)
        elif kind == 2:
            cy, cx = srng.uniform(0.2, 0.8, size=2)
            img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)
        else:
            img = (srng.uniform(0.0, 1.0, size=(8, 8)) > 0.5).astype(float)
        imgs.append(np.clip(img, 0.0, 1.0))
    return finish(graph), [np.array(imgs).reshape(16, 1, 1, 8, 8)]


# ───────────────────────────── linear regression ─────────────────────────


def sertn_linreg():
    """[1,3] in [-2,2] -> MatMul [3,1] -> Add [1] -> [1,1]; coefficients by least squares."""
    rng = np.random.default_rng(41)
    true_w, true_b = np.array([0.8, -0.5, 0.3]), 0.25
    X = rng.uniform(-2.0, 2.0, size=(200, 3))
    y = X @ true_w + true_b + rng.normal(0.0, 0.1, size=200)
    coef, *_ = np.linalg.lstsq(np.hstack([X, np.ones((200, 1))]), y, rcond=None)
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "sertn_linreg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1])],
        [const("w", coef[:3].reshape(3, 1)), const("b", coef[3:])],
    )
    x = np.random.default_rng(42).uniform(-2.0, 2.0, size=(14, 3))
    x[0, 0], x[1, 1], x[2, 2], x[3] = 2.0, -2.0, 1.995, [-1.99, 1.99, -1.99]
    return finish(graph), [x]


# ─────────────────────────────────── trees ───────────────────────────────

TREE_DEPTH = 3
N_TREES = 6
N_FEATURES = 4
TREE_BOUND = 2.0
# Samples keep this far from every threshold on their feature: a tree jumps there, and the circuit
# (which compares quantised inputs) may take the other branch within a quantisation step of it.
TREE_MARGIN = 0.05


def tree_target(X: np.ndarray) -> np.ndarray:
    return np.sin(X[:, 0]) + 0.5 * X[:, 1] * (X[:, 2] > 0) - 0.3 * X[:, 3] ** 2 + 0.4


def fit_tree(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, depth: int):
    """A complete binary CART regression tree (least squares) of the given depth, on a random
    subset of the features at each node (so the trees differ). Thresholds are midpoints between
    data values, rounded to 1/64. Returns (feature, threshold) per internal node in breadth-first
    order (node i has children 2i+1, 2i+2) and the leaf means, left to right."""
    features, thresholds, leaves = [], [], []
    level = [np.arange(len(y))]
    for _ in range(depth):
        nxt = []
        for idx in level:
            best = (np.inf, 0, 0.0)
            for f in sorted(rng.choice(X.shape[1], size=2, replace=False)):
                v = np.unique(X[idx, f])
                for t in np.round((v[:-1] + v[1:]) / 2 * 64) / 64 if len(v) > 1 else [float(v[0])]:
                    left = X[idx, f] < t
                    if left.all() or not left.any():
                        continue
                    sse = y[idx][left].var() * left.sum() + y[idx][~left].var() * (~left).sum()
                    if sse < best[0]:
                        best = (sse, int(f), float(t))
            _, f, t = best
            if not np.isfinite(best[0]):  # a node nothing can split: any threshold sends everything left
                f, t = 0, TREE_BOUND
            features.append(f)
            thresholds.append(t)
            left = X[idx, f] < t
            nxt += [idx[left], idx[~left]]
        level = nxt
    for idx in level:
        leaves.append(float(y[idx].mean()) if len(idx) else float(y.mean()))
    return features, thresholds, leaves


def sertn_trees():
    """A bagged ensemble of 6 depth-3 regression trees over [1,4] in [-2,2], mean of the trees, in the
    GEMM form hummingbird produces (I = 6*7 internal nodes, L = 6*8 leaves, block-diagonal over trees):
      MatMul A [4,I] (one-hot feature of each node) -> Less B [I] (thresholds; 1 = go left) -> Cast float
      -> MatMul C [I,L] (+1 leaf under the node's left child, -1 under its right, 0 elsewhere)
      -> Equal D [L] (the number of left turns on the leaf's path) -> Where (1, 0)
      -> MatMul E [L,T] (leaf values, divided by T) -> ReduceSum over the trees -> [1,1].
    The second Cast of hummingbird's graph is a Where here: EZKL 21 gives Cast(Equal(..)) the scale
    of Equal's inputs, so its 1 reads as 2^-scale and every tree's output comes out as 0."""
    rng = np.random.default_rng(51)
    X = rng.uniform(-TREE_BOUND, TREE_BOUND, size=(400, N_FEATURES))
    y = tree_target(X) + rng.normal(0.0, 0.05, size=400)
    n_int, n_leaf = 2**TREE_DEPTH - 1, 2**TREE_DEPTH
    I, L = N_TREES * n_int, N_TREES * n_leaf
    A = np.zeros((N_FEATURES, I))
    B = np.zeros(I)
    C = np.zeros((I, L))
    D = np.zeros(L)
    E = np.zeros((L, N_TREES))
    for t in range(N_TREES):
        boot = rng.integers(0, len(y), size=len(y))
        features, thresholds, leaves = fit_tree(X[boot], y[boot], rng, TREE_DEPTH)
        for i in range(n_int):
            A[features[i], t * n_int + i] = 1.0
            B[t * n_int + i] = thresholds[i]
        for leaf in range(n_leaf):
            # Walk from the root to the leaf: bit d (from the top) of the leaf index is 1 for a right turn.
            node = 0
            for d in range(TREE_DEPTH):
                right = (leaf >> (TREE_DEPTH - 1 - d)) & 1
                C[t * n_int + node, t * n_leaf + leaf] = -1.0 if right else 1.0
                D[t * n_leaf + leaf] += 0 if right else 1
                node = 2 * node + 1 + right
            E[t * n_leaf + leaf, t] = leaves[leaf] / N_TREES
    nodes = [
        helper.make_node("MatMul", ["input", "A"], ["xa"]),
        helper.make_node("Less", ["xa", "B"], ["lt"]),
        helper.make_node("Cast", ["lt"], ["ltf"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["ltf", "C"], ["paths"]),
        helper.make_node("Equal", ["paths", "D"], ["hit"]),
        helper.make_node("Where", ["hit", "one", "zero"], ["hitf"]),
        helper.make_node("MatMul", ["hitf", "E"], ["per_tree"]),
        helper.make_node("ReduceSum", ["per_tree", "axes"], ["output"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sertn_trees",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, N_FEATURES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1])],
        [const("A", A), const("B", B), const("C", C), const("D", D), const("E", E),
         const("one", np.array([1.0])), const("zero", np.array([0.0])),
         helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    # Samples: uniform in [-2, 2], a few on the bound, none within TREE_MARGIN of a threshold.
    srng = np.random.default_rng(52)
    cuts = [B[A[f] == 1] for f in range(N_FEATURES)]
    picks = []
    while len(picks) < 16:
        x = srng.uniform(-TREE_BOUND, TREE_BOUND, size=N_FEATURES)
        if len(picks) < 4:
            x[len(picks)] = TREE_BOUND if len(picks) % 2 == 0 else -TREE_BOUND
        x = np.round(x, 6)
        if all(np.all(np.abs(cuts[f] - x[f]) >= TREE_MARGIN) for f in range(N_FEATURES)):
            picks.append(x)
    return finish(graph), [np.array(picks)]


# ─────────────────────────────────── SVMs ────────────────────────────────


def svm_data(seed: int, n_features: int, bound: float, n_per_class: int = 60, spread: float = 0.6):
    """Three gaussian blobs (mostly separable) inside [-bound, bound]^n."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-0.6 * bound, 0.6 * bound, size=(3, n_features))
    X = np.vstack([c + rng.normal(0.0, spread, size=(n_per_class, n_features)) for c in centers])
    y = np.repeat(np.arange(3), n_per_class)
    return np.clip(X, -bound, bound), y, rng


def hinge_ovr(Phi: np.ndarray, y: np.ndarray, lam: float = 0.01, steps: int = 2000):
    """One-vs-rest linear SVMs over the rows of Phi: each class's (w, b) minimises the L2-regularised
    hinge loss by full-batch subgradient descent (step 0.5/sqrt(k)). Returns W [3, n], b [3]."""
    n = Phi.shape[1]
    W, b = np.zeros((3, n)), np.zeros(3)
    for c in range(3):
        s = np.where(y == c, 1.0, -1.0)
        w, bc = np.zeros(n), 0.0
        for k in range(1, steps + 1):
            lr = 0.5 / np.sqrt(k)
            active = s * (Phi @ w + bc) < 1.0
            gw = lam * w - (s[active, None] * Phi[active]).sum(0) / len(s)
            gb = -s[active].sum() / len(s)
            w, bc = w - lr * gw, bc - lr * gb
        W[c], b[c] = w, bc
    return W, b


def svm_samples(X: np.ndarray, rng: np.random.Generator, bound: float) -> np.ndarray:
    """10 training points and 4 uniform points of the box, 4 coordinates of them on its faces."""
    pick = rng.choice(len(X), size=10, replace=False)
    x = np.vstack([X[np.sort(pick)], rng.uniform(-bound, bound, size=(4, X.shape[1]))])
    x[10, 0], x[11, 1], x[12, 2], x[13, 3] = bound, -bound, bound, -bound
    return x


def sertn_svm():
    """Linear one-vs-rest SVC: [1,6] in [-3,3] -> Gemm W [3,6] (transB), b [3] -> [1,3] decision scores."""
    X, y, rng = svm_data(61, 6, 3.0)
    W, b = hinge_ovr(X, y)
    nodes = [helper.make_node("Gemm", ["input", "W", "b"], ["output"], transB=1)]
    graph = helper.make_graph(
        nodes,
        "sertn_svm",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])],
        [const("W", W), const("b", b)],
    )
    return finish(graph), [svm_samples(X, rng, 3.0)]


# The Exp lookup table spans gamma * (the largest squared distance in the box): 0.1 keeps it within
# 2^13 rows at scale 10.
RBF_GAMMA = 0.1


def sertn_svm_rbf():
    """RBF-kernel one-vs-rest SVC in decision-function form: [1,4] in [-2,2]; 9 support vectors S [9,4]
    (3 training points of each class) shared by the three classifiers:
      Sub (x - S) [9,4] -> Mul (square) -> ReduceSum over features [9] -> Mul by -gamma -> Exp
      -> Reshape [1,9] -> Gemm with the dual coefficients W [3,9] (transB) and b [3] -> [1,3].
    The coefficients are hinge_ovr's on the kernel features k(x, S) of the training set."""
    bound = 2.0
    X, y, rng = svm_data(71, 4, bound, n_per_class=40, spread=0.5)
    S = np.vstack([X[np.sort(rng.choice(np.flatnonzero(y == c), size=3, replace=False))] for c in range(3)])

    def kernel(P):
        return np.exp(-RBF_GAMMA * ((P[:, None, :] - S[None, :, :]) ** 2).sum(-1))

    W, b = hinge_ovr(kernel(X), y)
    nodes = [
        helper.make_node("Sub", ["input", "S"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axes"], ["d2"], keepdims=0),
        helper.make_node("Mul", ["d2", "neg_gamma"], ["arg"]),
        helper.make_node("Exp", ["arg"], ["k"]),
        helper.make_node("Reshape", ["k", "row"], ["k_row"]),
        helper.make_node("Gemm", ["k_row", "W", "b"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sertn_svm_rbf",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])],
        [const("S", S), const("neg_gamma", np.array([-RBF_GAMMA])), const("W", W), const("b", b),
         helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
         helper.make_tensor("row", TensorProto.INT64, [2], [1, len(S)])],
    )
    return finish(graph), [svm_samples(X, rng, bound)]


# ───────────────────────────────── attention ─────────────────────────────


def sertn_attention():
    """Pre-norm single-head self-attention over [1,4,4] (4 tokens x 4 dims) in [-1,1] (opset 17):
      h = LayerNormalization(x, gamma, beta, axis -1, epsilon 1/64)
      Q, K, V = h @ Wq, h @ Wk, h @ Wv ([4,4] each); scores = Q @ Transpose(K) * 1/sqrt(4)
      out = x + Softmax(scores, axis -1) @ V @ Wo   -> [1,4,4]
    epsilon is 1/64, not the usual 1e-5: a token whose values are all equal (the corners of the
    input box, which the build checks) has variance 0, and the circuit's 1/sqrt(var + eps) needs
    eps to survive quantisation (at scale s, eps < 2^-s rounds to 0 and the reciprocal overflows)."""
    d = 4
    rng = np.random.default_rng(81)
    gamma = 1.0 + rng.normal(0.0, 0.1, size=d)
    beta = rng.normal(0.0, 0.1, size=d)
    wq, wk, wv, wo = (rng.normal(0.0, 1.0 / np.sqrt(d), size=(d, d)) for _ in range(4))
    # Smaller query/key weights keep the attention logits within about ±2, so that the softmax's
    # exp lookup table (its range grows with the logits' spread) fits a 2^12-row circuit at scale 10.
    wq, wk = wq * 0.5, wk * 0.5
    nodes = [
        helper.make_node("LayerNormalization", ["input", "ln_gamma", "ln_beta"], ["h"], axis=-1, epsilon=1.0 / 64),
        helper.make_node("MatMul", ["h", "wq"], ["q"]),
        helper.make_node("MatMul", ["h", "wk"], ["k"]),
        helper.make_node("MatMul", ["h", "wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["qk"]),
        helper.make_node("Mul", ["qk", "inv_sqrt_d"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "v"], ["ctx"]),
        helper.make_node("MatMul", ["ctx", "wo"], ["proj"]),
        helper.make_node("Add", ["input", "proj"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "sertn_attention",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, d])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, d])],
        [const("ln_gamma", gamma), const("ln_beta", beta), const("wq", wq), const("wk", wk), const("wv", wv),
         const("wo", wo), const("inv_sqrt_d", np.array([1.0 / np.sqrt(d)]))],
    )
    # Samples: tokens uniform in [-1, 1], and the cases layer norm and attention find hard: tokens
    # on the bound, a spike, a nearly constant token (small variance), a repeated token (flat attention).
    srng = np.random.default_rng(83)
    x = srng.uniform(-1.0, 1.0, size=(16, 1, 4, d))
    x[0, 0, 0], x[1, 0, 1] = [1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, 0.5, -0.5]
    x[2, 0, :, 0], x[3, 0, 2] = 1.0, -1.0
    x[4, 0, 1] = [1.0, -1.0, -1.0, -1.0]
    x[5, 0, 3] = x[5, 0, 3].mean() + srng.uniform(-0.05, 0.05, size=d)
    x[6, 0, 1:] = x[6, 0, 0]
    return finish(graph, opset=17), [x]


# ───────────────────────────────── main ──────────────────────────────────

MODELS = {
    "sertn-mlp-demo": sertn_mlp_demo,
    "sertn-mlp-twin": sertn_mlp_twin,
    "sertn-conv": sertn_conv,
    "sertn-linreg": sertn_linreg,
    "sertn-trees": sertn_trees,
    "sertn-svm": sertn_svm,
    "sertn-svm-rbf": sertn_svm_rbf,
    "sertn-attention": sertn_attention,
}


def batch_sizes(name: str) -> list[int]:
    """The batch sizes circuits/models.json lists for a model (its "batches"; none by default)."""
    with open(os.path.join(HERE, "..", "models.json")) as f:
        entries = json.load(f)["models"]
    return next((e.get("batches", []) for e in entries if e["name"] == name), [])


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    for name in names or list(MODELS):
        model, samples = MODELS[name]()
        print(write(name, model, samples), flush=True)
        for n in batch_sizes(name):
            try:
                bm, bs = batched(model, samples, n)
            except WidenError as e:
                sys.exit(str(e))
            print(write(os.path.join(name, f"batch-{n}"), bm, bs), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
