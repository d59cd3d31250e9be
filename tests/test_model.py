"""The whole network's gradients, batch-norm modes, initialisation and state."""

import numpy as np
import pytest

from kmlp import MLP
from kmlp.nn.gradcheck import check_model, compare, numerical_gradients
from kmlp.runs import RunRecord, load_model, write_run


def batch(n=20, d=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, 10, n)


@pytest.mark.parametrize("hidden", [[50], [50, 50], [50, 50, 20]], ids=["2-layer", "3-layer", "4-layer"])
@pytest.mark.parametrize("batch_norm", [False, True], ids=["no-bn", "bn"])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_network_gradients_match_numerical(hidden, batch_norm, lam):
    X, y = batch()
    model = MLP([10, *hidden, 10], batch_norm=batch_norm, seed=3, dtype=np.float64)
    stats = check_model(model, X, y, lam)
    assert list(stats) == list(model.parameters())
    for name, s in stats.items():
        assert s["rel_error"] < 1e-6, (name, s)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_report_setting_sigma_2(batch_norm):
    """The report's Listing: 3 layers, 10-dim inputs, weights of std 2."""
    X, y = batch(seed=1)
    model = MLP([10, 50, 50, 10], batch_norm=batch_norm, init="normal", sigma=2.0, seed=1)
    stats = check_model(model, X, y, 0.0)
    assert max(s["rel_error"] for s in stats.values()) < 1e-6


def test_gradcheck_catches_a_wrong_gradient():
    X, y = batch()
    model = MLP([10, 20, 10], batch_norm=True, seed=0)
    _, analytic = model.cost_and_gradients(X, y, 0.0)
    numerical, kinks = numerical_gradients(model, X, y, 0.0)
    analytic["gamma1"] = analytic["gamma1"] * 1.001
    stats = compare(analytic, numerical, kinks)
    assert stats["gamma1"]["rel_error"] > 1e-4
    assert stats["W1"]["rel_error"] < 1e-6


def test_bias_before_batch_norm_has_zero_gradient():
    X, y = batch()
    model = MLP([10, 30, 10], batch_norm=True, seed=0)
    _, g = model.cost_and_gradients(X, y, 0.0)
    assert np.abs(g["b1"]).max() < 1e-12
    assert np.abs(g["b2"]).max() > 1e-3


def test_parameters_are_ordered_and_live():
    model = MLP([10, 5, 4, 3], batch_norm=True, seed=0)
    assert list(model.parameters()) == ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
    assert model.parameters()["W2"].shape == (4, 5)
    X, y = batch(n=8)
    y = y % 3
    c0 = model.cost(X, y)
    model.parameters()["W3"] *= 0  # the dict holds the live arrays
    assert model.cost(X, y) != c0
    assert model.cost(X, y) == pytest.approx(np.log(3))


def test_cost_adds_l2_of_weights_only():
    X, y = batch()
    model = MLP([10, 8, 10], batch_norm=True, seed=0)
    p = model.parameters()
    p["b2"] += 5.0
    p["beta1"] += 5.0
    w2 = sum(float(np.sum(p[k] ** 2)) for k in ("W1", "W2"))
    assert model.cost(X, y, 0.1) == pytest.approx(model.cost(X, y, 0.0) + 0.1 * w2)


def test_he_and_fixed_sigma_init():
    m = MLP([3072, 50, 10], seed=0)
    assert m.parameters()["W1"].std() == pytest.approx(np.sqrt(2 / 3072), rel=0.02)
    assert m.parameters()["W2"].std() == pytest.approx(np.sqrt(2 / 50), rel=0.1)
    m = MLP([3072, 50, 10], init="normal", sigma=1e-3, seed=0)
    assert m.parameters()["W1"].std() == pytest.approx(1e-3, rel=0.02)
    assert not m.parameters()["b1"].any()
    with pytest.raises(ValueError):
        MLP([10, 5, 2], init="normal")
    with pytest.raises(ValueError):
        MLP([10, 5, 2], init="xavier")


def test_batch_norm_train_vs_eval_and_moving_averages():
    rng = np.random.default_rng(0)
    model = MLP([4, 6, 3], batch_norm=True, seed=0, alpha=0.9)
    with pytest.raises(RuntimeError):
        model.logits(rng.standard_normal((2, 4)))
    batches = [rng.standard_normal((32, 4)) * (i + 1) + i for i in range(3)]
    y = rng.integers(0, 3, 32)
    mus, vars_ = [], []
    for Xb in batches:
        s = Xb @ model.parameters()["W1"].T + model.parameters()["b1"]
        mus.append(s.mean(0))
        vars_.append(s.var(0))
        model.train_step(Xb, y, 0.0, 0.0)  # eta 0: only the statistics move
    mu_av, var_av = mus[0], vars_[0]  # initialised from the first batch
    for mu, var in zip(mus[1:], vars_[1:], strict=True):
        mu_av = 0.9 * mu_av + 0.1 * mu
        var_av = 0.9 * var_av + 0.1 * var
    np.testing.assert_allclose(model.bn_mean[1], mu_av)
    np.testing.assert_allclose(model.bn_var[1], var_av)
    # Evaluation mode uses the averages, so a single sample has a defined output and
    # the output of a sample does not depend on the rest of the batch.
    X = batches[2]
    z_all = model.logits(X)
    np.testing.assert_allclose(model.logits(X[:1]), z_all[:1], rtol=1e-12)
    # Training mode normalises with the batch's own statistics: different outputs.
    z_train = model.forward(X, "train")
    assert not np.allclose(z_train, z_all)


def test_float32_model_stays_float32():
    model = MLP([10, 5, 3], batch_norm=True, seed=0, dtype=np.float32)
    X, y = batch(n=8)
    model.train_step(X.astype(np.float32), y % 3, 0.01, 0.01)
    assert all(p.dtype == np.float32 for p in model.parameters().values())
    assert model.logits(X).dtype == np.float32


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    model = MLP([10, 7, 3], batch_norm=True, seed=0)
    X = rng.standard_normal((16, 10))
    model.train_step(X, rng.integers(0, 3, 16), 0.01, 0.1)
    hist = {
        c: np.zeros(1)
        for c in ("step", "epoch", "eta", "train_loss", "train_cost", "train_acc", "val_loss", "val_cost", "val_acc")
    }
    write_run(
        tmp_path / "r.h5", RunRecord("e", 1, "completed", {}, model.config(), hist, {}, weights=dict(model.state()))
    )
    again = load_model(tmp_path / "r.h5")
    np.testing.assert_array_equal(again.logits(X), model.logits(X))
    assert again.config() == model.config()


def test_bad_sizes_rejected():
    with pytest.raises(ValueError):
        MLP([10])
    with pytest.raises(ValueError):
        MLP([10, 0, 3])
    with pytest.raises(ValueError):
        MLP([10, 3], dtype=np.int32)


def test_kinks_are_detected_and_left_out():
    """A bias at exactly zero pre-activation: the step crosses the ReLU kink."""
    X, y = batch(n=6, d=4)
    model = MLP([4, 3, 2], seed=0)
    p = model.parameters()
    # make unit 0's pre-activation exactly 0 for sample 0
    p["b1"][0] = -float(X[0] @ p["W1"][0])
    y = y % 2
    _, analytic = model.cost_and_gradients(X, y, 0.0)
    numerical, kinks = numerical_gradients(model, X, y, 0.0)
    assert kinks["b1"][0] and not kinks["b1"][1:].any()
    assert kinks["W1"][0].any()
    stats = compare(analytic, numerical, kinks)
    assert stats["b1"]["kinks"] == 1
    assert stats["b1"]["rel_error"] < 1e-6 and stats["W1"]["rel_error"] < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("init, sigma", [("he", None), ("normal", 1e-3)])
def test_batch_norm_starts_as_the_identity_scale_and_shift(dtype, init, sigma):
    """The report: gamma = 1 and beta = 0 at initialisation (every hidden layer), the
    biases 0; only the weights are drawn."""
    model = MLP([12, 7, 6, 5, 3], batch_norm=True, init=init, sigma=sigma, seed=4, dtype=dtype)
    p = model.parameters()
    for layer in (1, 2, 3):
        assert p[f"gamma{layer}"].dtype == dtype and p[f"gamma{layer}"].shape == (model.sizes[layer],)
        assert (p[f"gamma{layer}"] == 1).all(), layer
        assert (p[f"beta{layer}"] == 0).all(), layer
    assert all((p[f"b{layer}"] == 0).all() for layer in (1, 2, 3, 4))
    assert "gamma4" not in p and "beta4" not in p  # none on the output layer
    assert all(np.unique(p[f"W{layer}"]).size == p[f"W{layer}"].size for layer in (1, 2, 3, 4))  # drawn
