"""Layer primitives as forward/backward pairs (cs231n style).

Every ``*_forward`` returns ``(out, cache)``; the matching ``*_backward`` takes the
upstream gradient and that cache. Samples are rows: ``x`` is ``n x d``. Nothing here
loops over samples, allocates more than it must, or knows about models or files.
"""

from __future__ import annotations

import numpy as np

#: The course's batch-norm epsilon: machine epsilon of float64.
BN_EPS = float(np.finfo(np.float64).eps)


def affine_forward(x, W, b):
    """s = x W^T + b, with ``W`` stored ``d_out x d_in`` as in the report."""
    out = x @ W.T
    out += b
    return out, (x, W)


def affine_backward(dout, cache, need_dx=True):
    """Gradients of an affine layer; ``need_dx=False`` skips the input gradient."""
    x, W = cache
    dW = dout.T @ x
    db = dout.sum(axis=0)
    dx = dout @ W if need_dx else None
    return dx, dW, db


def relu_forward(x):
    out = np.maximum(x, 0, out=x)  # in place: the pre-activation is not needed again
    return out, out


def relu_backward(dout, cache):
    """In place on ``dout``: zero where the unit was off."""
    np.multiply(dout, cache > 0, out=dout)
    return dout


def batchnorm_forward(x, gamma, beta, eps=BN_EPS):
    """Training-mode batch norm with batch mean and the biased batch variance.

    Returns ``(out, cache, mu, var)``; the caller decides what to do with the batch
    statistics (the model folds them into its moving averages).
    """
    n = x.shape[0]
    mu = x.sum(axis=0)
    mu /= n
    xc = x - mu
    var = np.einsum("ij,ij->j", xc, xc)
    var /= n
    inv_std = (var + eps) ** -0.5
    x_hat = xc
    x_hat *= inv_std
    out = x_hat * gamma
    out += beta
    return out, (x_hat, gamma, inv_std), mu, var


def batchnorm_backward(dout, cache):
    """Gradients of training-mode batch norm (statistics depend on the batch)."""
    x_hat, gamma, inv_std = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", dout, x_hat)
    # d x = inv_std / n * (n g - sum(g) - x_hat * sum(g * x_hat)), g = dout * gamma
    dx = x_hat * (dgamma / n)
    dx += dbeta / n
    np.subtract(dout, dx, out=dx)
    dx *= gamma * inv_std
    return dx, dgamma, dbeta


def batchnorm_eval(x, gamma, beta, mu, var, eps=BN_EPS):
    """Evaluation-mode batch norm with fixed (moving-average) statistics."""
    scale = gamma / np.sqrt(var + eps)
    out = x * scale
    out += beta - mu * scale
    return out


def softmax_cross_entropy(logits, y, grad: bool = True):
    """Mean cross-entropy of integer labels ``y`` and (``grad``) its gradient w.r.t.
    ``logits``: ``(loss, dlogits)``, or the loss alone."""
    n = logits.shape[0]
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)
    ez = np.exp(z)
    sum_ez = ez.sum(axis=1)
    loss = float(np.mean(np.log(sum_ez) - z[rows, y]))
    if not grad:
        return loss
    dlogits = ez
    dlogits /= sum_ez[:, None]
    dlogits[rows, y] -= 1
    dlogits /= n
    return loss, dlogits
