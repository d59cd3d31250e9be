"""The training update and the evaluation pass of :class:`~kmlp.nn.model.MLP`, fast.

The layer functions in :mod:`kmlp.nn.layers` are the reference: clear, one function per
step, new arrays as they go. An update made of them took 1.3 times as long as its matrix
products alone (3-layer net with batch norm, batch 100), the rest going to allocating
arrays and to some 80 NumPy calls on 100 x 50 arrays. This module does the same
arithmetic, op for op, but

* every intermediate lives in a buffer made once per batch size (``out=``);
* the weight matrices of all layers are one flat buffer and the vectors (b, gamma,
  beta) another, each with a gradient buffer of the same layout, so the update
  (weight decay included) is three calls for the whole net;
* the batch statistics of all layers are one flat vector, so the moving averages are
  three calls;
* ReLU and its mask compare with a zero array, not the scalar 0 (same result, a third
  of the cost on small arrays);
* W1's gradient is multiplied out as X^T G into W1's d_in x d_out storage, where the
  layers compute G^T X (d_out x d_in). It is the same sum, but with the operands swapped
  a BLAS may add its terms in another order: OpenBLAS's SkylakeX kernels do not, its
  Haswell kernels do (inner dimension 8 or more), and that product then differs in its
  last bits, within the rounding bound of a sum of n terms.

So every value but W1's gradient has the layers' bits on any BLAS kernel, and W1's too
where the kernel adds both layouts alike. ``tests/test_fast.py`` holds it to the
reference: bit for bit against the layer functions with W1's product in this layout,
and against them as they are within that bound; the update equals
``cost_and_gradients`` followed by plain gradient descent; the logits equal
``forward(X, "eval")`` bit for bit.
"""

from __future__ import annotations

import numpy as np

#: Rows per product in evaluation: large enough for BLAS, small enough for the cache.
EVAL_CHUNK = 10000


class TrainStep:
    """One update of ``model`` on a batch of ``n`` rows: ``step(X, y, lam, eta)``.

    Semantics of ``MLP.train_step``: W <- W - eta (grad + 2 lam W), other parameters
    <- p - eta grad, then the moving averages take the batch statistics (the first
    batch seeds them). Returns the batch loss before the update.
    """

    def __init__(self, model, n: int):
        dt, sizes, k = model.dtype, model.sizes, model.k
        self.model, self.n, self.k = model, n, k
        self.bn = model.batch_norm
        p = model.parameters()
        self.W = [p[f"W{i}"] for i in range(1, k + 1)]
        self.b = [p[f"b{i}"] for i in range(1, k + 1)]
        self.gamma = [p[f"gamma{i}"] for i in range(1, k)] if self.bn else []
        self.beta = [p[f"beta{i}"] for i in range(1, k)] if self.bn else []
        # Gradients (times eta) in the parameters' flat layout.
        self.dflat_w = np.empty_like(model.flat_weights)
        self.dflat_v = np.zeros_like(model.flat_vectors)
        g = model.views(self.dflat_w, self.dflat_v)
        self.dW = [g[f"W{i}"] for i in range(1, k + 1)]
        self.dW1T = self.dW[0].T
        self.db = [g[f"b{i}"] for i in range(1, k + 1)]
        # gamma and beta of a layer are adjacent: one division makes both "/ n".
        self.dgb = (
            [self.dflat_v[_span(g[f"gamma{i}"], g[f"beta{i}"], self.dflat_v)] for i in range(1, k)] if self.bn else []
        )

        def per_layer(kind=dt, fill=np.empty):
            return [fill((n, m), kind) for m in sizes[1:-1]]

        self.S = per_layer()  # affine output; with BN normalised in place (x_hat)
        self.H = per_layer() if self.bn else self.S  # ReLU output
        self.zeros = per_layer(fill=np.zeros)
        self.mask = per_layer(bool)
        self.G = per_layer()  # gradient w.r.t. H, then w.r.t. the layer's output
        self.T = per_layer() if self.bn else []  # batch-norm backward
        self.stats = np.empty_like(model.flat_statistics)  # batch means, then variances
        self.stat_views = model.statistic_views(self.stats)
        self.stats_tmp = np.empty_like(self.stats)
        self.inv_std = [np.empty(m, dt) for m in sizes[1:-1]]
        self.scale = [np.empty(m, dt) for m in sizes[1:-1]]
        self.vec2 = [np.empty(2 * m, dt) for m in sizes[1:-1]]
        K = sizes[-1]
        self.Z = np.empty((n, K), dt)  # logits -> softmax -> dlogits
        self.Zflat = self.Z.reshape(-1)
        self.z_max = np.empty((n, 1), dt)
        self.sum_ez = np.empty(n, dt)
        self.lse = np.empty(n, dt)
        self.z_y = np.empty(n, dt)
        self.row_start = np.arange(n) * K
        self.classes = np.arange(K)
        self.label = np.empty(n, np.intp)
        self.flat_label = np.empty(n, np.intp)

    def forward(self, X) -> None:
        """Training-mode forward pass into the buffers: logits in ``Z``, batch
        statistics in ``stats``, x_hat in ``S`` and ReLU outputs in ``H``."""
        n, eps = self.n, self.model.eps
        h = X
        for i in range(self.k - 1):
            S, H = self.S[i], self.H[i]
            np.matmul(h, self.W[i].T, out=S)  # layer 1: x @ W1T, W1T contiguous
            np.add(S, self.b[i], out=S)
            if self.bn:
                mu, var = self.stat_views[i]
                inv_std = self.inv_std[i]
                np.add.reduce(S, axis=0, out=mu)
                np.divide(mu, n, out=mu)
                np.subtract(S, mu, out=S)
                np.einsum("ij,ij->j", S, S, out=var)
                np.divide(var, n, out=var)
                np.add(var, eps, out=inv_std)
                np.power(inv_std, -0.5, out=inv_std)
                np.multiply(S, inv_std, out=S)
                np.multiply(S, self.gamma[i], out=H)
                np.add(H, self.beta[i], out=H)
            np.maximum(H, self.zeros[i], out=H)
            h = H
        np.matmul(h, self.W[-1].T, out=self.Z)
        np.add(self.Z, self.b[-1], out=self.Z)

    def loss_and_dlogits(self, y, scale: float) -> float:
        """Mean cross-entropy of labels ``y``; ``Z`` becomes ``scale`` times its gradient."""
        Z, n = self.Z, self.n
        # Labels as NumPy indexes them (negative ones count from the end, others raise),
        # then as flat positions in Z.
        np.take(self.classes, y, out=self.label)
        np.add(self.row_start, self.label, out=self.flat_label)
        np.maximum.reduce(Z, axis=1, keepdims=True, out=self.z_max)
        np.subtract(Z, self.z_max, out=Z)
        np.take(self.Zflat, self.flat_label, out=self.z_y)
        np.exp(Z, out=Z)
        np.add.reduce(Z, axis=1, out=self.sum_ez)
        np.log(self.sum_ez, out=self.lse)
        np.subtract(self.lse, self.z_y, out=self.lse)
        # np.mean's arithmetic (a sum, divided in the array's dtype), without its overhead
        loss = float(np.divide(np.add.reduce(self.lse), n, dtype=self.lse.dtype))
        np.divide(Z, self.sum_ez[:, None], out=Z)
        self.Zflat[self.flat_label] -= 1
        np.divide(Z, n, out=Z)
        np.multiply(Z, scale, out=Z)
        return loss

    def backward(self, X) -> None:
        """Gradients (times the scale of ``Z``) into ``dflat_w`` and ``dflat_v``."""
        n, k = self.n, self.k
        D = self.Z
        if k == 1:
            np.matmul(X.T, D, out=self.dW1T)
        else:
            np.matmul(D.T, self.H[-1], out=self.dW[-1])
        np.add.reduce(D, axis=0, out=self.db[-1])
        if k > 1:
            np.matmul(D, self.W[-1], out=self.G[-1])
        for i in range(k - 2, -1, -1):
            G = self.G[i]
            np.greater(self.H[i], self.zeros[i], out=self.mask[i])
            np.multiply(G, self.mask[i], out=G)
            if self.bn:
                S, T, gb, v = self.S[i], self.T[i], self.dgb[i], self.vec2[i]
                m = S.shape[1]
                dgamma, dbeta = gb[:m], gb[m:]
                np.add.reduce(G, axis=0, out=dbeta)
                np.einsum("ij,ij->j", G, S, out=dgamma)
                np.divide(gb, n, out=v)
                np.multiply(S, v[:m], out=T)
                np.add(T, v[m:], out=T)
                np.subtract(G, T, out=T)
                np.multiply(self.gamma[i], self.inv_std[i], out=self.scale[i])
                np.multiply(T, self.scale[i], out=T)
                G = T
            if i == 0:
                np.matmul(X.T, G, out=self.dW1T)
            else:
                np.matmul(G.T, self.H[i - 1], out=self.dW[i])
            np.add.reduce(G, axis=0, out=self.db[i])
            if i > 0:
                np.matmul(G, self.W[i], out=self.G[i - 1])

    def __call__(self, X, y, lam: float, eta: float) -> float:
        model = self.model
        self.forward(X)
        # The backward pass is linear in dlogits: scaled by eta it yields eta * grad.
        loss = self.loss_and_dlogits(y, eta)
        self.backward(X)
        decay = 1.0 - 2.0 * lam * eta
        if decay != 1.0:
            np.multiply(model.flat_weights, decay, out=model.flat_weights)
        np.subtract(model.flat_weights, self.dflat_w, out=model.flat_weights)
        np.subtract(model.flat_vectors, self.dflat_v, out=model.flat_vectors)
        if self.bn:
            if model.bn_mean[1] is None:
                model.set_statistics(self.stat_views)
            else:
                run, alpha = model.flat_statistics, model.alpha
                np.multiply(run, alpha, out=run)
                np.multiply(self.stats, 1 - alpha, out=self.stats_tmp)
                np.add(run, self.stats_tmp, out=run)
        return loss


def _span(a, b, base) -> slice:
    """The slice of the flat ``base`` that views ``a`` and ``b``, ``b`` directly after ``a``."""
    start = (a.ctypes.data - base.ctypes.data) // base.itemsize
    assert b.ctypes.data == a.ctypes.data + a.nbytes
    return slice(start, start + a.size + b.size)


class EvalBuffers:
    """Evaluation-mode logits of a model, chunk by chunk in buffers kept between calls."""

    def __init__(self, model):
        self.model = model
        self.rows = 0
        self.H = []

    def logits(self, X, chunk: int = EVAL_CHUNK):
        """``forward(X, "eval")``'s arithmetic (``layers.batchnorm_eval``), in chunks."""
        model, k = self.model, self.model.k
        p = model.parameters()
        W = [p[f"W{i}"] for i in range(1, k + 1)]
        b = [p[f"b{i}"] for i in range(1, k + 1)]
        affine = []  # batch norm in evaluation mode: x * scale + shift
        if model.batch_norm:
            for i in range(1, k):
                scale = p[f"gamma{i}"] / np.sqrt(model.bn_var[i] + model.eps)
                affine.append((scale, p[f"beta{i}"] - model.bn_mean[i] * scale))
        rows = min(chunk, X.shape[0])
        if rows > self.rows:
            self.rows = rows
            self.H = [np.empty((rows, m), model.dtype) for m in model.sizes[1:-1]]
        out = np.empty((X.shape[0], model.sizes[-1]), model.dtype)
        for start in range(0, X.shape[0], chunk):
            h = np.asarray(X[start : start + chunk], model.dtype)
            c = h.shape[0]
            for i in range(k - 1):
                H = self.H[i][:c]
                np.matmul(h, W[i].T, out=H)
                np.add(H, b[i], out=H)
                if affine:
                    np.multiply(H, affine[i][0], out=H)
                    np.add(H, affine[i][1], out=H)
                np.maximum(H, 0, out=H)
                h = H
            o = out[start : start + c]
            np.matmul(h, W[-1].T, out=o)
            np.add(o, b[-1], out=o)
        return out
