"""The fast update and evaluation (kmlp.nn.fast) against the reference layer functions.

The update does the layers' arithmetic op for op but one product: W1's gradient, the sum
over the batch of g_n x_n^T, which the layers multiply out as G^T X (d_out x d_in) and
kmlp.nn.fast as X^T G into W1's d_in x d_out storage. Same sum, operands swapped: a BLAS
may add its terms in another order then. OpenBLAS's SkylakeX kernels do not; its Haswell
kernels do (an inner dimension of 8 or more, at the edges of their register tiles), in
the last bits. So the update is held bit for bit to a reference that makes that one
product in W1's layout, and to the layer functions as they are, from the same parameters,
bit for bit in everything but W1 and W1 within the rounding bound of a sum of n terms.
"""

import tracemalloc

import numpy as np
import pytest

from kmlp import MLP
from kmlp.nn.layers import affine_backward, batchnorm_backward, relu_backward, softmax_cross_entropy

NETS = {"2-layer": [12], "3-layer": [12, 9], "9-layer": [12, 10, 8, 8, 6, 6, 5, 5]}
# (hidden widths, batch norm) of every net the update is checked on, by id
CASES = {"1-layer-no-bn": ([], False)} | {
    f"{name}-{bn}": (hidden, bn == "bn") for name, hidden in NETS.items() for bn in ("no-bn", "bn")
}
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def reference_steps(model, X, y, eta, w1_product):
    """eta times the gradient of the loss (no L2 term) per parameter, written with the
    layer functions: (loss, steps, batch statistics, eta times the gradient w.r.t. layer
    1's affine output).

    ``w1_product`` says how W1's step is multiplied out: ``"layers"`` as affine_backward
    does (G^T X, d_out x d_in), ``"storage"`` as kmlp.nn.fast does (X^T G, d_in x d_out,
    seen transposed).
    """
    logits, tape = model.forward(X, "train", keep=True)
    loss, dlogits = softmax_cross_entropy(logits, y)
    dlogits *= eta
    steps, dh = {}, dlogits
    for layer in range(model.k, 0, -1):
        aff, bn, relu = tape.caches[layer - 1]
        if relu is not None:
            dh = relu_backward(dh, relu)
        if bn is not None:
            dh, steps[f"gamma{layer}"], steps[f"beta{layer}"] = batchnorm_backward(dh, bn)
        dx, steps[f"W{layer}"], steps[f"b{layer}"] = affine_backward(dh, aff, need_dx=layer > 1)
        if layer == 1 and w1_product == "storage":
            steps["W1"] = (aff[0].T @ dh).T
        if layer > 1:
            dh = dx
    return loss, steps, tape.stats, dh


def reference_update(model, X, y, lam, eta, w1_product="storage"):
    """One update written with the layer functions (the update before kmlp.nn.fast);
    returns the loss and eta times the gradient w.r.t. layer 1's affine output."""
    loss, steps, stats, g1 = reference_steps(model, X, y, eta, w1_product)
    decay = 1.0 - 2.0 * lam * eta
    for name, p in model.parameters().items():
        if decay != 1.0 and name[0] == "W":
            p *= decay
        p -= steps[name]
    if model.batch_norm:
        if model.bn_mean[1] is None:
            model.set_statistics(stats)
        else:
            for layer, (mu, var) in enumerate(stats, start=1):
                model.bn_mean[layer] *= model.alpha
                model.bn_mean[layer] += (1 - model.alpha) * mu
                model.bn_var[layer] *= model.alpha
                model.bn_var[layer] += (1 - model.alpha) * var
    return loss, g1


def batches(d=30, n=16, count=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, d)).astype(dtype) * (i + 1), rng.integers(0, 7, n)) for i in range(count)]


def pair(hidden, batch_norm, dtype=np.float64, d=30):
    return [MLP([d, *hidden, 7], batch_norm=batch_norm, seed=4, dtype=dtype) for _ in range(2)]


def settings(i):
    """(lam, eta) of update i: one without weight decay."""
    return (0.0, 0.05) if i == 1 else (0.01, 0.1 * (i + 1))


@DTYPES
@pytest.mark.parametrize("hidden, batch_norm", list(CASES.values()), ids=list(CASES))
def test_update_is_bit_identical_to_the_layer_functions_with_w1s_product_in_its_layout(hidden, batch_norm, dtype):
    """Four updates in a row, every parameter and moving average bit for bit, on any BLAS
    kernel: the same products with the same operands, and the same elementwise steps."""
    fast, ref = pair(hidden, batch_norm, dtype)
    for i, (X, y) in enumerate(batches(dtype=dtype)):
        lam, eta = settings(i)
        assert fast.train_step(X, y, lam, eta) == reference_update(ref, X, y, lam, eta, "storage")[0]
        for name, a in ref.state().items():
            assert fast.state()[name].tobytes() == a.tobytes(), (i, name)


@DTYPES
@pytest.mark.parametrize("hidden, batch_norm", list(CASES.values()), ids=list(CASES))
def test_update_differs_from_the_layer_functions_only_by_the_rounding_of_w1s_product(hidden, batch_norm, dtype):
    """From the same parameters, an update and the layer functions' (W1's step as G^T X)
    agree bit for bit in the loss, every parameter but W1 and every moving average. W1's
    step is the same sum of n = 16 products in both, added in another order: the two
    differ by at most 2 gamma_n |G|^T |X| (gamma_n = n u / (1 - n u), u the unit
    roundoff: the error bound of any order, twice), and W1 - step by that difference and
    one spacing of W1 (its rounding)."""
    fast, ref = pair(hidden, batch_norm, dtype)
    n = batches()[0][0].shape[0]
    u = np.finfo(dtype).eps / 2
    gamma = n * u / (1 - n * u)
    for i, (X, y) in enumerate(batches(dtype=dtype)):
        lam, eta = settings(i)
        ref.load_state(fast.state())
        loss, G = reference_update(ref, X, y, lam, eta, "layers")
        assert fast.train_step(X, y, lam, eta) == loss
        for name, a in ref.state().items():
            if name != "W1":
                assert fast.state()[name].tobytes() == a.tobytes(), (i, name)
        # the two orders of W1's step (the update's is (X^T G)^T, bit for bit: the test above)
        apart = np.abs((X.T @ G).T - G.T @ X)
        bound = 2 * gamma * (np.abs(G).T @ np.abs(X)) * (1 + gamma)  # (|G|^T |X| is rounded too)
        assert np.all(apart <= bound), (i, float(np.max(apart / bound)))
        got, want = fast.parameters()["W1"], ref.parameters()["W1"]
        assert np.all(np.abs(got - want) <= apart + np.spacing(np.maximum(np.abs(got), np.abs(want)))), i


@pytest.mark.parametrize("batch_norm", [False, True], ids=["no-bn", "bn"])
@pytest.mark.parametrize("hidden", list(NETS.values()), ids=list(NETS))
def test_update_is_gradient_descent_on_cost_and_gradients(hidden, batch_norm):
    """p <- p - eta dJ/dp with J's L2 term, to 1e-12; the moving averages start at the
    first batch's statistics and then move by alpha."""
    lam, alpha = 0.01, 0.9
    fast, ref = pair(hidden, batch_norm)
    averages = None
    for i, (X, y) in enumerate(batches()):
        eta = 0.1 * (i + 1)
        _, tape = ref.forward(X, "train", keep=True)
        averages = (
            tape.stats
            if averages is None
            else [
                (alpha * m + (1 - alpha) * mu, alpha * v + (1 - alpha) * var)
                for (m, v), (mu, var) in zip(averages, tape.stats, strict=True)
            ]
        )
        cost, grads = ref.cost_and_gradients(X, y, lam)
        loss = fast.train_step(X, y, lam, eta)
        assert loss + ref.penalty(lam) == pytest.approx(cost, rel=1e-12)
        for name, p in ref.parameters().items():
            p -= eta * grads[name]
            np.testing.assert_allclose(fast.parameters()[name], p, rtol=1e-12, atol=1e-12)
    assert len(averages) == (len(hidden) if batch_norm else 0)
    for layer, (m, v) in enumerate(averages, start=1):
        np.testing.assert_allclose(fast.bn_mean[layer], m, rtol=1e-12)
        np.testing.assert_allclose(fast.bn_var[layer], v, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("batch_norm", [False, True], ids=["no-bn", "bn"])
def test_logits_are_the_evaluation_forward_pass(batch_norm, dtype):
    """Chunk by chunk: a 1-row chunk is a matrix-vector product, with other roundings."""
    model = MLP([30, 12, 9, 7], batch_norm=batch_norm, seed=1, dtype=dtype)
    for X, y in batches(dtype=dtype):
        model.train_step(X, y, 0.01, 0.1)
    X = np.random.default_rng(5).standard_normal((50, 30))
    for chunk in (50, 7, 1000, 20):  # buffers made, reused, grown
        want = [model.forward(np.asarray(X[s : s + chunk], dtype), "eval") for s in range(0, 50, chunk)]
        got = model.logits(X, chunk=chunk)
        assert got.dtype == dtype and got.tobytes() == np.concatenate(want).tobytes()


def test_w1_is_stored_input_major_and_parameters_stay_live_views():
    model = MLP([30, 12, 7], batch_norm=True, seed=0)
    p = model.parameters()
    assert p["W1"].shape == (12, 30) and p["W1"].T.flags.c_contiguous
    assert all(np.shares_memory(p[name], model.flat_weights) for name in ("W1", "W2"))
    before = {name: a for name, a in p.items()}
    X, y = batches()[0]
    model.train_step(X, y, 0.01, 0.1)
    other = MLP([30, 12, 7], batch_norm=True, seed=9)
    other.train_step(X, y, 0.0, 0.1)
    model.load_state(other.state())
    for name, a in model.parameters().items():
        assert a is before[name] and a.tobytes() == other.parameters()[name].tobytes()
    assert model.logits(X).tobytes() == other.logits(X).tobytes()


def test_labels_out_of_range_raise_as_in_the_reference():
    model = MLP([30, 12, 7], seed=0)
    X, y = batches()[0]
    y = y.copy()
    y[3] = 7
    with pytest.raises(IndexError):
        model.train_step(X, y, 0.0, 0.1)
    with pytest.raises(IndexError):
        softmax_cross_entropy(model.forward(X, "train"), y)


def test_an_update_allocates_no_arrays_of_the_batch_size():
    """Buffers are made on the first update of a batch size and reused after it; what
    is left is NumPy's own iteration buffers (at most 8192 elements)."""
    model = MLP([1000, 100, 100, 10], batch_norm=True, seed=0, dtype=np.float32)
    X, y = batches(d=1000, n=200, dtype=np.float32)[0]
    model.train_step(X, y, 0.01, 0.1)
    tracemalloc.start()
    try:
        for _ in range(3):
            model.train_step(X, y, 0.01, 0.1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # the batch is 800 kB, one layer's activations 80 kB
