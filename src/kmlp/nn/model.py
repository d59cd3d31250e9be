"""The k-layer MLP: dense layers, optional batch norm on hidden layers, ReLU, softmax.

Pure NumPy and no I/O: saving and loading live in :mod:`kmlp.runs`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from . import initializers
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


class Tape(NamedTuple):
    """What a training-mode forward pass leaves: per-layer caches and batch statistics."""

    caches: list  # (affine, batch norm or None, ReLU or None) per layer
    stats: list  # (mean, variance) per batch-normalised layer

    def relu_pattern(self) -> np.ndarray:
        """Which ReLUs were on, as one flat mask: a crossed kink shows as a change."""
        masks = [(relu > 0).ravel() for _, _, relu in self.caches if relu is not None]
        return np.concatenate(masks or [np.zeros(0, bool)])


class MLP:
    """A k-layer perceptron ``sizes = [d, m_1, ..., m_{k-1}, K]``.

    Hidden layer l: s = W_l x + b_l, then (if ``batch_norm``) gamma_l * s_hat + beta_l,
    then ReLU; the last layer is affine + softmax. Batch-norm moving averages use
    ``alpha`` and are initialised from the first training batch.
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
        self.alpha, self.eps = float(alpha), float(eps)
        draw = initializers.get(init, sigma)
        rng = np.random.default_rng(seed)
        params = OrderedDict()
        for layer in range(1, self.k + 1):
            d_in, d_out = sizes[layer - 1], sizes[layer]
            params[f"W{layer}"] = draw(rng, d_out, d_in).astype(self.dtype)
            params[f"b{layer}"] = np.zeros(d_out, self.dtype)
            if self.batch_norm and layer < self.k:
                params[f"gamma{layer}"] = np.ones(d_out, self.dtype)
                params[f"beta{layer}"] = np.zeros(d_out, self.dtype)
        self._params = params
        # Test-time statistics per hidden layer, None until the first training batch.
        self.bn_mean: dict[int, np.ndarray | None] = {}
        self.bn_var: dict[int, np.ndarray | None] = {}
        if self.batch_norm:
            for layer in range(1, self.k):
                self.bn_mean[layer] = None
                self.bn_var[layer] = None

    # -- parameters -------------------------------------------------------------
    def parameters(self) -> OrderedDict[str, np.ndarray]:
        """The live parameter arrays, ordered W1, b1, gamma1, beta1, ..., Wk, bk."""
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
            bn = None
            if self.batch_norm and train:
                s, bn, mu, var = batchnorm_forward(s, p[f"gamma{layer}"], p[f"beta{layer}"], self.eps)
                stats.append((mu, var))
            elif self.batch_norm:
                s = batchnorm_eval(
                    s, p[f"gamma{layer}"], p[f"beta{layer}"], self.bn_mean[layer], self.bn_var[layer], self.eps
                )
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
            ds = relu_backward(dh, relu)
            if bn is not None:
                ds, grads[f"gamma{layer}"], grads[f"beta{layer}"] = batchnorm_backward(ds, bn)
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
            _, tape = self.forward(X, "train", keep=True)
            for layer, (mu, var) in enumerate(tape.stats, start=1):
                self.bn_mean[layer], self.bn_var[layer] = mu.copy(), var.copy()

    def train_step(self, X, y, lam: float, eta: float) -> float:
        """One mini-batch gradient-descent update; folds the batch statistics into the
        moving averages. Returns the batch loss before the update (may be non-finite)."""
        logits, tape = self.forward(X, "train", keep=True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        # The backward pass is linear in dlogits: scaling it by eta yields eta * grad
        # for every parameter, so the update is one subtraction per array.
        dlogits *= eta
        steps = self._backward(dlogits, tape.caches, 0.0)
        decay = 1.0 - 2.0 * lam * eta  # W <- W - eta (g + 2 lam W)
        for name, p in self._params.items():
            if decay != 1.0 and name[0] == "W":
                p *= decay
            p -= steps[name]
        for layer, (mu, var) in enumerate(tape.stats, start=1):
            if self.bn_mean[layer] is None:
                self.bn_mean[layer], self.bn_var[layer] = mu.copy(), var.copy()
            else:
                self.bn_mean[layer] *= self.alpha
                self.bn_mean[layer] += (1 - self.alpha) * mu
                self.bn_var[layer] *= self.alpha
                self.bn_var[layer] += (1 - self.alpha) * var
        return loss

    # -- evaluation -------------------------------------------------------------
    def logits(self, X, chunk: int = 10000):
        """Evaluation-mode scores (moving-average batch-norm statistics), in chunks."""
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        for start in range(0, X.shape[0], chunk):
            out[start : start + chunk] = self.forward(np.asarray(X[start : start + chunk], self.dtype))
        return out

    def evaluate(self, X, y, lam: float = 0.0):
        """(loss, cost, accuracy) in evaluation mode; the accuracy is NaN when a score is not
        finite (a diverged net: argmax over NaN or inf predicts nothing)."""
        y = np.asarray(y, np.intp)
        z = self.logits(X)
        acc = float(np.mean(np.argmax(z, axis=1) == y)) if np.isfinite(z).all() else float("nan")
        with np.errstate(over="ignore", invalid="ignore"):
            loss = softmax_cross_entropy(z, y, grad=False)
        return loss, loss + self.penalty(lam), acc

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
        for name in self._params:
            arr = np.asarray(state[name], self.dtype)
            if arr.shape != self._params[name].shape:
                raise ValueError(f"{name}: shape {arr.shape}, expected {self._params[name].shape}")
            self._params[name] = arr.copy()
        for layer in self.bn_mean:
            if f"bn_mean{layer}" in state:
                self.bn_mean[layer] = np.asarray(state[f"bn_mean{layer}"], self.dtype).copy()
                self.bn_var[layer] = np.asarray(state[f"bn_var{layer}"], self.dtype).copy()

    def config(self) -> dict:
        return {
            "sizes": self.sizes,
            "batch_norm": self.batch_norm,
            "init": self.init,
            "sigma": self.sigma,
            "dtype": self.dtype.name,
            "alpha": self.alpha,
            "eps": self.eps,
        }
