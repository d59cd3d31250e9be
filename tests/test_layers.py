"""Every layer's backward against centred differences, in float64."""

import numpy as np
import pytest

from kmlp.nn import layers


def num_grad(f, x, h=1e-6):
    """Numerical gradient of scalar f() w.r.t. array x (modified in place)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def rel(a, b):
    return np.linalg.norm(a - b) / max(1e-12, np.linalg.norm(a) + np.linalg.norm(b))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_affine_backward(rng):
    x, W, b = rng.standard_normal((6, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    dout = rng.standard_normal((6, 4))
    loss = lambda: float(np.sum(layers.affine_forward(x, W, b)[0] * dout))  # noqa: E731
    out, cache = layers.affine_forward(x, W, b)
    np.testing.assert_allclose(out, x @ W.T + b)
    dx, dW, db = layers.affine_backward(dout, cache)
    for analytic, arr in ((dx, x), (dW, W), (db, b)):
        assert rel(analytic, num_grad(loss, arr)) < 1e-8
    assert layers.affine_backward(dout, cache, need_dx=False)[0] is None


def test_relu_backward(rng):
    x = rng.standard_normal((7, 3))
    x[np.abs(x) < 1e-3] = 0.5  # stay away from the kink
    dout = rng.standard_normal((7, 3))
    loss = lambda: float(np.sum(layers.relu_forward(x.copy())[0] * dout))  # noqa: E731
    out, cache = layers.relu_forward(x.copy())
    assert np.all(out >= 0) and np.array_equal(out, np.maximum(x, 0))
    assert rel(layers.relu_backward(dout.copy(), cache), num_grad(loss, x)) < 1e-8


def test_batchnorm_forward_normalises_with_biased_variance(rng):
    x = rng.standard_normal((50, 4)) * 3 + 7
    gamma, beta = np.array([1.0, 2.0, 0.5, 1.0]), np.array([0.0, 1.0, -1.0, 3.0])
    out, _, mu, var = layers.batchnorm_forward(x, gamma, beta)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(var, x.var(0))  # ddof=0: the biased variance
    np.testing.assert_allclose(out.mean(0), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(0), gamma, rtol=1e-9)


def test_batchnorm_backward(rng):
    x = rng.standard_normal((8, 5)) * 2 + 1
    gamma, beta = rng.standard_normal(5) + 1, rng.standard_normal(5)
    dout = rng.standard_normal((8, 5))
    loss = lambda: float(np.sum(layers.batchnorm_forward(x, gamma, beta)[0] * dout))  # noqa: E731
    _, cache, _, _ = layers.batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = layers.batchnorm_backward(dout.copy(), cache)
    for analytic, arr in ((dx, x), (dgamma, gamma), (dbeta, beta)):
        assert rel(analytic, num_grad(loss, arr)) < 1e-7


def test_batchnorm_eval_uses_given_statistics(rng):
    x = rng.standard_normal((10, 3))
    mu, var = np.array([1.0, -1.0, 0.0]), np.array([4.0, 1.0, 0.25])
    gamma, beta = np.array([2.0, 1.0, 1.0]), np.array([0.0, 0.5, 0.0])
    out = layers.batchnorm_eval(x, gamma, beta, mu, var)
    np.testing.assert_allclose(out, gamma * (x - mu) / np.sqrt(var + layers.BN_EPS) + beta)


def test_softmax_cross_entropy(rng):
    z = rng.standard_normal((6, 4)) * 3
    y = np.array([0, 1, 2, 3, 1, 0])
    loss, dz = layers.softmax_cross_entropy(z, y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(6), y])))
    f = lambda: layers.softmax_cross_entropy(z, y)[0]  # noqa: E731
    assert rel(dz, num_grad(f, z)) < 1e-8


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    loss, dz = layers.softmax_cross_entropy(z, np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(500.0)
    assert np.all(np.isfinite(dz))
