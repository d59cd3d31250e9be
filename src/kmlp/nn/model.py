"""The k-layer MLP: dense layers, optional batch norm on hidden layers, ReLU, softmax.

Pure NumPy and no I/O: saving and loading live in :mod:`kmlp.runs`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from . import initializers
from .fast import EVAL_CHUNK, EvalBuffers, TrainStep
from .layers import (
    BN_EPS,
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_eval,
    batchnorm_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)
from .metrics import Evaluation


class Tape(NamedTuple):
    """What a training-mode forward pass leaves: per-layer caches and batch statistics."""

    caches: list  # (affine, batch norm or None, ReLU or None) per layer
    stats: list  # (mean, variance) per batch-normalised layer

    def relu_pattern(self) -> np.ndarray:
        """Which ReLUs were on, as one flat mask: a crossed kink shows as a change."""
        masks = [(relu > 0).ravel() for _, _, relu in self.caches if relu is not None]
        return np.concatenate(masks or [np.zeros(0, bool)])


def accuracy(scores, y) -> float:
    """The share of rows whose largest score is at the label; NaN when a score is not
    finite (argmax over NaN or inf predicts nothing)."""
    if not np.isfinite(scores).all():
        return float("nan")
    return float(np.mean(np.argmax(scores, axis=1) == y))


class MLP:
    """A k-layer perceptron ``sizes = [d, m_1, ..., m_{k-1}, K]``.

    Hidden layer l: s = W_l x + b_l, then (if ``batch_norm``) gamma_l * s_hat + beta_l,
    then ReLU; the last layer is affine + softmax. ``bn_order="after"`` normalises the
    ReLU's output instead (an ablation: the layer functions compute it, not
    :mod:`kmlp.nn.fast`, so it trains slower). Batch-norm moving averages use ``alpha``
    and are initialised from the first training batch.
    """

    def __init__(
        self,
        sizes,
        batch_norm: bool = False,
        init: str = "he",
        sigma: float | None = None,
        seed: int | np.random.SeedSequence | None = 0,
        dtype=np.float64,
        alpha: float = 0.9,
        eps: float = BN_EPS,
        bn_order: str = "before",
    ):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least 2 positive layer widths, got {sizes}")
        self.sizes = sizes
        self.k = len(sizes) - 1
        self.batch_norm = bool(batch_norm)
        self.init, self.sigma = init, sigma
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        if self.batch_norm and self.k < 2:
            raise ValueError("batch norm needs at least one hidden layer")
        if bn_order not in ("before", "after"):
            raise ValueError(f"bn_order must be 'before' or 'after' (the ReLU), not {bn_order!r}")
        self.bn_order = bn_order
        self.after = self.batch_norm and bn_order == "after"
        self.alpha, self.eps = float(alpha), float(eps)
        draw = initializers.get(init, sigma)
        rng = np.random.default_rng(seed)
        # Storage: every weight matrix in one flat buffer, every vector (b, gamma, beta)
        # in another, so an update is a few NumPy calls for the whole net (kmlp.nn.fast).
        # W1 is stored d_in x d_out: the two big products of an update, x W1^T and the
        # gradient of W1, are faster that way with OpenBLAS (the gradient's product, X^T G
        # instead of G^T X, may round differently in the last bits under some kernels).
        # ``parameters()`` shows every W as d_out x d_in (W1 as a transposed view).
        self.flat_weights = np.empty(sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)), self.dtype)
        self.flat_vectors = np.zeros(sum(sizes[1:]) + (2 * sum(sizes[1:-1]) if self.batch_norm else 0), self.dtype)
        params = self.views(self.flat_weights, self.flat_vectors)
        for layer in range(1, self.k + 1):
            params[f"W{layer}"][...] = draw(rng, sizes[layer], sizes[layer - 1]).astype(self.dtype)
            if self.batch_norm and layer < self.k:
                params[f"gamma{layer}"][...] = 1
        self._params = params
        # Test-time statistics per hidden layer, None until the first training batch;
        # then views of one flat buffer laid out as kmlp.nn.fast's batch statistics.
        self.flat_statistics = np.zeros(2 * sum(sizes[1:-1]) if self.batch_norm else 0, self.dtype)
        self.bn_mean: dict[int, np.ndarray | None] = {}
        self.bn_var: dict[int, np.ndarray | None] = {}
        if self.batch_norm:
            for layer in range(1, self.k):
                self.bn_mean[layer] = None
                self.bn_var[layer] = None
        self._steps = {}  # batch size -> kmlp.nn.fast.TrainStep
        self._eval = None  # kmlp.nn.fast.EvalBuffers

    def views(self, flat_w, flat_v) -> OrderedDict[str, np.ndarray]:
        """Parameter-shaped views of a flat weight buffer and a flat vector buffer, in
        parameter order; the layout of the model's parameters and of their gradients."""
        views = OrderedDict()
        wo = vo = 0
        for layer in range(1, self.k + 1):
            d_in, d_out = self.sizes[layer - 1], self.sizes[layer]
            block = flat_w[wo : wo + d_in * d_out]
            views[f"W{layer}"] = block.reshape(d_in, d_out).T if layer == 1 else block.reshape(d_out, d_in)
            wo += d_in * d_out
            names = ("b", "gamma", "beta") if self.batch_norm and layer < self.k else ("b",)
            for name in names:
                views[f"{name}{layer}"] = flat_v[vo : vo + d_out]
                vo += d_out
        return views

    def statistic_views(self, flat):
        """(mean, variance) views per hidden layer of a flat statistics buffer:
        all means first, then all variances."""
        widths = self.sizes[1:-1]
        ends = np.cumsum(widths).tolist()
        half = ends[-1] if ends else 0
        return [(flat[end - w : end], flat[half + end - w : half + end]) for w, end in zip(widths, ends, strict=True)]

    def set_statistics(self, stats) -> None:
        """Set the moving averages to ``stats`` (a list of (mean, variance) per layer)."""
        for layer, ((mu, var), (m, v)) in enumerate(
            zip(stats, self.statistic_views(self.flat_statistics), strict=True), 1
        ):
            m[...] = mu
            v[...] = var
            self.bn_mean[layer], self.bn_var[layer] = m, v

    # -- parameters -------------------------------------------------------------
    def parameters(self) -> OrderedDict[str, np.ndarray]:
        """The live parameter arrays, ordered W1, b1, gamma1, beta1, ..., Wk, bk; each W
        is ``d_out x d_in`` (W1 a transposed view of its ``d_in x d_out`` storage)."""
        return self._params

    def penalty(self, lam: float) -> float:
        """The L2 term of the cost: lam times the sum of squared weights (not biases)."""
        return lam * float(
            sum(np.vdot(self._params[f"W{layer}"], self._params[f"W{layer}"]) for layer in range(1, self.k + 1))
        )

    # -- forward/backward -------------------------------------------------------
    def forward(self, X, mode: str = "eval", keep: bool = False):
        """Logits of the rows of ``X``, in one pass whose batch norm depends on ``mode``.

        ``"train"`` normalises with the batch's own statistics (what training and the
        gradients use); ``"eval"`` with the moving averages. ``keep=True`` returns
        ``(logits, tape)``, the tape holding what backward needs and the batch statistics.
        """
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', not {mode!r}")
        train = mode == "train"
        if self.batch_norm and not train and self.bn_mean[1] is None:
            raise RuntimeError("batch-norm statistics are unset: train first")
        p = self._params
        h = X
        caches, stats = [], []
        for layer in range(1, self.k):
            s, aff = affine_forward(h, p[f"W{layer}"], p[f"b{layer}"])
            bn = relu = None
            if self.after:
                s, relu = relu_forward(s)
            if self.batch_norm and train:
                s, bn, mu, var = batchnorm_forward(s, p[f"gamma{layer}"], p[f"beta{layer}"], self.eps)
                stats.append((mu, var))
            elif self.batch_norm:
                s = batchnorm_eval(
                    s, p[f"gamma{layer}"], p[f"beta{layer}"], self.bn_mean[layer], self.bn_var[layer], self.eps
                )
            if self.after:
                h = s
            else:
                h, relu = relu_forward(s)
            caches.append((aff, bn, relu))
        logits, aff = affine_forward(h, p[f"W{self.k}"], p[f"b{self.k}"])
        caches.append((aff, None, None))
        return (logits, Tape(caches, stats)) if keep else logits

    def _backward(self, dlogits, caches, lam):
        p = self._params
        grads = {}
        dh, dW, db = affine_backward(dlogits, caches[-1][0], need_dx=self.k > 1)
        grads[f"W{self.k}"], grads[f"b{self.k}"] = dW, db
        for layer in range(self.k - 1, 0, -1):
            aff, bn, relu = caches[layer - 1]
            ds = dh if self.after else relu_backward(dh, relu)
            if bn is not None:
                ds, grads[f"gamma{layer}"], grads[f"beta{layer}"] = batchnorm_backward(ds, bn)
            if self.after:
                ds = relu_backward(ds, relu)
            dh, dW, db = affine_backward(ds, aff, need_dx=layer > 1)
            grads[f"W{layer}"], grads[f"b{layer}"] = dW, db
        if lam:
            for layer in range(1, self.k + 1):
                grads[f"W{layer}"] += (2 * lam) * p[f"W{layer}"]
        return OrderedDict((name, grads[name]) for name in p)

    def cost_and_gradients(self, X, y, lam: float = 0.0):
        """Cost J (training mode, batch statistics) and its gradient per parameter.

        Pure: leaves parameters and moving averages untouched, so numerical checks
        can call it repeatedly.
        """
        X = np.asarray(X, self.dtype)
        y = np.asarray(y, np.intp)
        logits, tape = self.forward(X, "train", keep=True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        return loss + self.penalty(lam), self._backward(dlogits, tape.caches, lam)

    def cost(self, X, y, lam: float = 0.0, mode: str = "train") -> float:
        """J = cross-entropy + L2 penalty; in training mode the function the gradients are of."""
        logits = self.forward(np.asarray(X, self.dtype), mode)
        return softmax_cross_entropy(logits, np.asarray(y, np.intp), grad=False) + self.penalty(lam)

    def seed_statistics(self, X) -> None:
        """Initialise the moving averages from batch ``X`` (no parameter update)."""
        if self.batch_norm:
            _, tape = self.forward(np.asarray(X, self.dtype), "train", keep=True)
            self.set_statistics(tape.stats)

    def train_step(self, X, y, lam: float, eta: float) -> float:
        """One mini-batch gradient-descent update, W <- W - eta (grad + 2 lam W); folds the
        batch statistics into the moving averages. Returns the batch loss before the
        update (may be non-finite).

        Runs :class:`kmlp.nn.fast.TrainStep`: the arithmetic of ``forward("train")``,
        the softmax cross-entropy and the backward pass op for op, in buffers kept per
        batch size (tests check it against ``cost_and_gradients``).
        """
        X = np.asarray(X, self.dtype)
        if self.after:
            return self._reference_step(X, y, lam, eta)
        step = self._steps.get(X.shape[0])
        if step is None:
            step = self._steps[X.shape[0]] = TrainStep(self, X.shape[0])
        return step(X, y, lam, eta)

    def _reference_step(self, X, y, lam: float, eta: float) -> float:
        """``train_step`` made of the layer functions: ``cost_and_gradients``' forward and
        backward passes, then the same update and moving averages."""
        y = np.asarray(y, np.intp)
        logits, tape = self.forward(X, "train", keep=True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        grads = self._backward(dlogits, tape.caches, lam)
        for name, p in self._params.items():
            p -= eta * grads[name]
        if self.bn_mean[1] is None:
            self.set_statistics(tape.stats)
        else:
            for layer, (mu, var) in enumerate(tape.stats, 1):
                self.bn_mean[layer][...] = self.alpha * self.bn_mean[layer] + (1 - self.alpha) * mu
                self.bn_var[layer][...] = self.alpha * self.bn_var[layer] + (1 - self.alpha) * var
        return float(loss)

    # -- evaluation -------------------------------------------------------------
    def logits(self, X, chunk: int = EVAL_CHUNK):
        """Evaluation-mode scores (moving-average batch-norm statistics), in chunks.

        ``forward(X, "eval")``'s arithmetic in reused buffers (:mod:`kmlp.nn.fast`).
        """
        if self.batch_norm and self.bn_mean[1] is None:
            raise RuntimeError("batch-norm statistics are unset: train first")
        if self.after:
            X = np.asarray(X, self.dtype)
            return np.concatenate([self.forward(X[i : i + chunk]) for i in range(0, max(len(X), 1), chunk)])
        if self._eval is None:
            self._eval = EvalBuffers(self)
        return self._eval.logits(X, chunk)

    def evaluate(self, X, y, lam: float = 0.0) -> Evaluation:
        """Loss, cost and accuracy in evaluation mode; the accuracy is NaN when a score is not
        finite (a diverged net: argmax over NaN or inf predicts nothing)."""
        y = np.asarray(y, np.intp)
        z = self.logits(X)
        acc = accuracy(z, y)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = softmax_cross_entropy(z, y, grad=False)
        return Evaluation(loss, loss + self.penalty(lam), acc)

    # -- state ------------------------------------------------------------------
    def state(self) -> OrderedDict[str, np.ndarray]:
        """Everything needed to rebuild the model's predictions: parameters + BN stats."""
        st = OrderedDict(self._params)
        for layer in self.bn_mean:
            if self.bn_mean[layer] is not None:
                st[f"bn_mean{layer}"] = self.bn_mean[layer]
                st[f"bn_var{layer}"] = self.bn_var[layer]
        return st

    def load_state(self, state) -> None:
        """Copy parameters (and moving averages, where given) into the model's arrays."""
        for name, p in self._params.items():
            arr = np.asarray(state[name], self.dtype)
            if arr.shape != p.shape:
                raise ValueError(f"{name}: shape {arr.shape}, expected {p.shape}")
            p[...] = arr
        if self.batch_norm and "bn_mean1" in state:
            self.set_statistics([(state[f"bn_mean{layer}"], state[f"bn_var{layer}"]) for layer in self.bn_mean])

    def config(self) -> dict:
        return {
            "sizes": self.sizes,
            "batch_norm": self.batch_norm,
            "init": self.init,
            "sigma": self.sigma,
            "dtype": self.dtype.name,
            "alpha": self.alpha,
            "eps": self.eps,
        } | ({"bn_order": self.bn_order} if self.after else {})
