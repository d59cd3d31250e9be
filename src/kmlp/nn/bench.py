"""`kmlp bench`: one training update against the matrix-product floor, same run."""

from __future__ import annotations

import time

import numpy as np

from .model import MLP


def _per_call(fn, updates: int) -> float:
    t = time.perf_counter()
    for _ in range(updates):
        fn()
    return (time.perf_counter() - t) / updates


def measure(sizes=(3072, 50, 50, 10), n_batch=100, updates=200, repeats=7, seed=0) -> dict:
    """Median seconds per call of the GEMM floor, both updates and the batch gather.

    The candidates are timed in turn within each round, so a slow spell of a noisy
    machine hits them alike and the ratios stay meaningful.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], n_batch)
    Ws = [rng.standard_normal((sizes[i + 1], sizes[i])).astype(np.float32) * 0.01 for i in range(len(sizes) - 1)]

    def gemms():
        # The products an update cannot avoid: forward s = x W^T per layer, backward
        # dW = g^T x per layer and dx = g W for every layer but the first.
        h = X
        acts = []
        for W in Ws:
            acts.append(h)
            h = h @ W.T
        g = h
        for i in range(len(Ws) - 1, -1, -1):
            _ = g.T @ acts[i]
            if i:
                g = g @ Ws[i]

    models = {bn: MLP(sizes, batch_norm=bn, seed=seed, dtype=np.float32) for bn in (False, True)}
    # Gathering a shuffled mini-batch from a training-sized array (fresh rows each time).
    Xtr = rng.standard_normal((45000, sizes[0])).astype(np.float32)
    buf = np.empty_like(X)
    order = rng.permutation(45000)
    pos = [0]

    def gather():
        start = pos[0] % (45000 - n_batch)
        np.take(Xtr, order[start : start + n_batch], axis=0, out=buf)
        pos[0] += n_batch

    candidates = {
        "gemm_floor_s": gemms,
        "update_nobn_s": lambda: models[False].train_step(X, y, 0.005, 1e-3),
        "update_bn_s": lambda: models[True].train_step(X, y, 0.005, 1e-3),
        "gather_s": gather,
    }
    times = {k: [] for k in candidates}
    for fn in candidates.values():
        fn()  # warm up
    for _ in range(repeats):
        for name, fn in candidates.items():
            times[name].append(_per_call(fn, updates))
    out = {"sizes": list(sizes), "n_batch": n_batch, "dtype": "float32"}
    out.update({k: float(np.median(v)) for k, v in times.items()})
    out["ratio_nobn"] = out["update_nobn_s"] / out["gemm_floor_s"]
    out["ratio_bn"] = out["update_bn_s"] / out["gemm_floor_s"]
    return out
