"""Cyclical learning rate, a run that learns, determinism, divergence."""

import numpy as np
import pytest

from kmlp import MLP
from kmlp.nn.schedules import cyclic_eta
from kmlp.nn.settings import TrainSettings
from kmlp.nn.training import fit as train
from kmlp.nn.training import init_seed
from kmlp.runs import HISTORY_COLUMNS


def test_cyclic_eta_landmarks():
    lo, hi, ns = 1e-5, 1e-1, 500
    assert cyclic_eta(0, lo, hi, ns) == pytest.approx(lo)
    assert cyclic_eta(ns, lo, hi, ns) == pytest.approx(hi)
    assert cyclic_eta(2 * ns, lo, hi, ns) == pytest.approx(lo)
    assert cyclic_eta(2.5 * ns, lo, hi, ns) == pytest.approx((lo + hi) / 2)
    assert cyclic_eta(ns // 2, lo, hi, ns) == pytest.approx((lo + hi) / 2)
    t = np.arange(4 * ns)
    eta = cyclic_eta(t, lo, hi, ns)
    assert eta.min() >= lo and eta.max() <= hi
    assert np.all(np.diff(eta[: ns + 1]) > 0) and np.all(np.diff(eta[ns : 2 * ns + 1]) < 0)
    with pytest.raises(ValueError):
        cyclic_eta(0, lo, hi, 0)


def blobs(n, d=20, k=4, seed=0, spread=1.0):
    """Gaussian clusters: a small problem an MLP should solve almost perfectly."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).standard_normal((k, d)) * 2
    y = rng.integers(0, k, n)
    X = centres[y] + spread * rng.standard_normal((n, d))
    return X.astype(np.float32), y


def small_run(batch_norm, seed=0, **kw):
    Xtr, ytr = blobs(1000, seed=1)
    Xva, yva = blobs(300, seed=2)
    model = MLP([20, 30, 30, 4], batch_norm=batch_norm, seed=init_seed(seed), dtype=np.float32)
    settings = TrainSettings(
        **{"lam": 1e-3, "n_batch": 50, "n_s": 100, "cycles": 2, "eta_max": 0.1, "eval_every": 20, **kw}
    )
    return model, train(model, Xtr, ytr, Xva, yva, settings, seed)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_training_learns_a_synthetic_problem(batch_norm):
    model, res = small_run(batch_norm)
    assert res.status == "completed"
    h = res.history
    assert set(h) == set(HISTORY_COLUMNS)
    assert list(h["step"]) == list(range(0, 401, 20))  # step 0, then every eval_every = 20 updates
    assert res.final["val_acc"] > 0.95 and res.final["train_acc"] > 0.95
    assert h["val_acc"][0] < 0.6  # it did not start there
    assert h["train_cost"][-1] < h["train_cost"][0]
    assert h["eta"][list(h["step"]).index(100)] == pytest.approx(0.1)


def test_same_seed_bit_identical_and_other_seed_differs():
    m1, r1 = small_run(True, seed=5)
    m2, r2 = small_run(True, seed=5)
    for col in HISTORY_COLUMNS:
        assert r1.history[col].tobytes() == r2.history[col].tobytes()
    for name, arr in m1.state().items():
        assert arr.tobytes() == m2.state()[name].tobytes()
    m3, r3 = small_run(True, seed=6)
    assert r3.history["val_cost"].tobytes() != r1.history["val_cost"].tobytes()


def test_divergence_is_recorded_not_raised():
    model, res = small_run(False, eta_max=1e6, eta_min=1e5, lam=0.0)
    assert res.status == "diverged"
    assert 0 < res.stopped_at < 400
    # evaluated every 20 updates until then, finite, and once more where it stopped
    assert list(res.history["step"]) == [*range(0, res.stopped_at, 20), res.stopped_at]
    assert np.isfinite(res.history["train_cost"][:-1]).all()
    assert not np.isfinite(res.history["train_cost"][-1])


def test_a_diverged_run_reports_no_metrics():
    """'Their test "accuracy" is argmax over NaN logits': nothing is measured on a diverged
    model, and no accuracy is computed from non-finite scores."""
    model, res = small_run(False, eta_max=1e6, eta_min=1e5, lam=0.0)
    assert res.status == "diverged"
    assert all(np.isnan(v) for v in res.final.values()), res.final
    for split in ("train", "val"):
        assert np.isnan(res.history[f"{split}_acc"][-1])
    X, y = blobs(50)
    assert np.isnan(model.evaluate(X, y)[2])


def test_accuracy_of_non_finite_scores_is_nan():
    X, y = blobs(50)
    model = MLP([20, 4], seed=0)
    assert np.isfinite(model.evaluate(X, y)[2])
    model.parameters()["W1"][0, 0] = np.inf  # one class's score is inf or nan for every image
    assert np.isnan(model.evaluate(X, y)[2])


def test_every_epoch_by_default():
    Xtr, ytr = blobs(1000, seed=1)
    model = MLP([20, 10, 4], seed=0, dtype=np.float32)
    res = train(model, Xtr, ytr, Xtr[:100], ytr[:100], TrainSettings(n_batch=100, n_s=25, cycles=1), seed=0)
    assert list(res.history["step"]) == [0, 10, 20, 30, 40, 50]
    assert list(res.history["epoch"]) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "bad", [dict(n_batch=0), dict(n_batch=5000), dict(n_s=0), dict(eta_min=0.2, eta_max=0.1), dict(lam=-1.0)]
)
def test_bad_settings_rejected(bad):
    Xtr, ytr = blobs(100)
    model = MLP([20, 5, 4], seed=0)
    with pytest.raises(ValueError):
        train(model, Xtr, ytr, Xtr, ytr, TrainSettings(**bad), seed=0)


def test_random_lambdas_are_reproducible_and_in_range():
    from kmlp.nn.search import random_lambdas

    lams = random_lambdas(50, -5, -1, seed=3)
    assert lams == random_lambdas(50, -5, -1, seed=3)
    assert lams != random_lambdas(50, -5, -1, seed=4)
    assert all(1e-5 <= x <= 1e-1 for x in lams)
    assert min(lams) < 1e-4 and max(lams) > 1e-2  # spread over the decades
    # stratified: each of 8 half-decades of [1e-5, 1e-1] holds exactly one of 8 draws
    slices = np.floor((np.log10(random_lambdas(8, -5, -1, seed=1)) + 5) / 0.5)
    assert sorted(slices) == list(range(8))
    with pytest.raises(ValueError):
        random_lambdas(3, -1, -5, seed=0)


def test_rank_orders_by_mean_validation_accuracy():
    from kmlp.nn.search import rank
    from kmlp.runs import RunRecord

    def run(exp, lam, acc, status="completed"):
        return RunRecord(exp, 1, status, {"lam": lam}, {}, {}, {"val_acc": acc})

    ranked = rank([run("a", 0.1, 0.4), run("b", 0.01, 0.5), run("b", 0.01, 0.6), run("c", 1.0, 0.9, "diverged")])
    assert [r["experiment"] for r in ranked] == ["b", "a", "c"]
    assert ranked[0]["val_acc"] == pytest.approx(0.55) and ranked[0]["n"] == 2
    with pytest.raises(ValueError):
        rank([run("c", 1.0, float("nan"), "diverged")])


def test_rank_labels_tell_apart_lambdas_that_round_alike():
    from kmlp.nn.search import rank
    from kmlp.runs import RunRecord

    def run(exp, lam, acc):
        return RunRecord(exp, 1, "completed", {"lam": lam}, {}, {}, {"val_acc": acc})

    runs = [run("c0", 0.0012341, 0.5), run("c1", 0.0012342, 0.4), run("f0", 0.0012341, 0.45)]
    ranked = rank(runs, passes={"c0": "coarse", "c1": "coarse", "f0": "fine"})
    assert [r["label"] for r in ranked] == ["0.0012341 (coarse)", "0.0012341 (fine)", "0.0012342 (coarse)"]
    assert [r["pass"] for r in ranked] == ["coarse", "fine", "coarse"]
    assert rank([run("a", 0.5, 0.3)])[0]["label"] == "0.5 (search)"
