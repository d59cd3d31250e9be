"""Floors: the matrix products a computation cannot avoid, done alone into preallocated
arrays, at the speed this machine's BLAS reaches on them."""

from __future__ import annotations

import numpy as np

from ..nn.fast import EVAL_CHUNK
from .timing import Clock


def _weights(sizes, rng, w1_in_out: bool):
    Ws = [(rng.standard_normal((sizes[i + 1], sizes[i])) * 0.02).astype(np.float32) for i in range(len(sizes) - 1)]
    return Ws, (np.ascontiguousarray(Ws[0].T) if w1_in_out else Ws[0].T)


def update_products(sizes, n_batch: int, w1_in_out: bool, seed: int = 0):
    """A callable doing the products of one update and nothing else, into preallocated
    arrays: s = h W^T for every layer, dW = g^T h for every layer, and g W for every
    layer but the first. ``w1_in_out`` stores W1 as d_in x d_out (kmlp's layout; the
    products are then x W1T and dW1T = x^T g), else as d_out x d_in."""
    rng = np.random.default_rng(seed)
    Ws, W1T = _weights(sizes, rng, w1_in_out)
    X = rng.standard_normal((n_batch, sizes[0]), dtype=np.float32)
    acts = [X] + [np.empty((n_batch, m), np.float32) for m in sizes[1:]]
    grads = [np.empty((n_batch, m), np.float32) for m in sizes[1:-1]]
    dWs = [np.empty(W.shape, np.float32) for W in Ws]
    dW1T = np.empty((sizes[0], sizes[1]), np.float32)
    k = len(Ws)

    def run():
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W1T if i == 0 else W.T, out=acts[i + 1])
        g = acts[-1]
        for i in range(k - 1, -1, -1):
            if i == 0 and w1_in_out:
                np.matmul(X.T, g, out=dW1T)
            else:
                np.matmul(g.T, acts[i], out=dWs[i])
            if i:
                np.matmul(g, Ws[i], out=grads[i - 1])
                g = grads[i - 1]

    return run


def eval_products(sizes, rows: int, w1_in_out: bool, seed: int = 0):
    """A callable doing the products of evaluating ``rows`` images: h W^T per layer."""
    rng = np.random.default_rng(seed)
    Ws, W1T = _weights(sizes, rng, w1_in_out)
    acts = [rng.standard_normal((rows, sizes[0]), dtype=np.float32)]
    acts += [np.empty((rows, m), np.float32) for m in sizes[1:]]

    def run():
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W1T if i == 0 else W.T, out=acts[i + 1])

    return run


def run_floor(sizes, n_batch: int, rows: int = EVAL_CHUNK, calls: int = 100, chunks: int = 3, seed: int = 0):
    """A callable timing a run's floor in place: ``calls`` updates' products and
    ``chunks`` evaluation chunks of ``rows`` images, each after one untimed call and in
    both layouts of W1 (the faster counts). Returns seconds per update and per evaluated
    image (CPU and wall); a run's floor is its numbers of updates and of evaluated
    images times these."""
    upd = {lay: update_products(sizes, n_batch, lay, seed) for lay in (False, True)}
    ev = {lay: eval_products(sizes, rows, lay, seed) for lay in (False, True)}

    def per_call(fn, n):
        fn()
        c = Clock()
        for _ in range(n):
            fn()
        return {k: v / n for k, v in c.read().items()}

    def run():
        best = {}
        for lay in (False, True):
            u, e = per_call(upd[lay], calls), per_call(ev[lay], chunks)
            t = {"update": u, "image": {k: v / rows for k, v in e.items()}}
            for unit in t:
                best[unit] = {k: min(best[unit][k], v) for k, v in t[unit].items()} if unit in best else t[unit]
        return best

    return run
