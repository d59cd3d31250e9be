"""The epoch loop's semantics, held through its hooks and independently of floats: which
rows each update sees, its learning rate, when and on what the net is evaluated, and
which random stream decides what. Nothing here re-implements the loop: the indices and
learning rates come from ``on_batch``, the evaluations from a wrapped net."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from kmlp.nn.settings import TrainSettings
from kmlp.nn.training import build_model, run

N, D, CLASSES = 107, 12, 3  # 107 rows in batches of 10: 10 batches an epoch, 7 rows left out


def data(seed=0):
    rng = np.random.default_rng(seed)
    split = {}
    for name, n in (("train", N), ("val", 20), ("test", 15)):
        split[f"X_{name}"] = rng.standard_normal((n, D)).astype(np.float32)
        split[f"y_{name}"] = rng.integers(0, CLASSES, n)
    return SimpleNamespace(**split, class_names=[str(c) for c in range(CLASSES)])


class Watched:
    """A net that records what it is evaluated on (the loop trains it like any net)."""

    def __init__(self, net, seen):
        self.net, self.seen, self.batch_norm = net, seen, net.batch_norm

    def seed_statistics(self, X):
        self.net.seed_statistics(X)

    def train_step(self, X, y, lam, eta):
        return self.net.train_step(X, y, lam, eta)

    def evaluate(self, X, y, lam):
        self.seen.append(np.array(X, copy=True))
        return self.net.evaluate(X, y, lam)


def watch(settings, seed=1, ds=None):
    """The run's batches (step, rows, eta), its evaluation rows (step) and evaluated
    arrays, in order, and the trained net."""
    ds = ds or data()
    batches, rows, seen = [], [], []
    net, result = run(
        settings,
        ds,
        seed,
        wrap=lambda model: Watched(model, seen),
        on_batch=lambda step, idx, eta: batches.append((step, idx.copy(), eta)),
        on_evaluate=lambda step, total, row: rows.append(row["step"]),
    )
    return SimpleNamespace(batches=batches, evaluated_at=rows, seen=seen, net=net.net, result=result, data=ds)


def triangular(t, eta_min, eta_max, n_s):
    """The course's cyclical learning rate (Smith 2015), written from its definition:
    up from eta_min to eta_max over n_s steps, down again over the next n_s."""
    cycle = t // (2 * n_s)
    if 2 * cycle * n_s <= t <= (2 * cycle + 1) * n_s:
        return eta_min + (t - 2 * cycle * n_s) / n_s * (eta_max - eta_min)
    return eta_max - (t - (2 * cycle + 1) * n_s) / n_s * (eta_max - eta_min)


SETTINGS = TrainSettings(hidden=(6,), n_batch=10, n_s=7, cycles=2, eval_every=4, eval_train_subset=30, lam=0.01)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_each_epochs_batches_are_disjoint_slices_of_one_permutation(batch_norm):
    w = watch(TrainSettings(**{**SETTINGS.as_dict(), "batch_norm": batch_norm}))
    per_epoch = N // SETTINGS.n_batch
    assert [step for step, _, _ in w.batches] == list(range(SETTINGS.total_updates))  # 28 updates: 2.8 epochs
    epochs = [w.batches[i : i + per_epoch] for i in range(0, len(w.batches), per_epoch)]
    assert [len(e) for e in epochs] == [10, 10, 8]
    orders = []
    for epoch in epochs:
        rows = np.concatenate([idx for _, idx, _ in epoch])
        assert all(len(idx) == SETTINGS.n_batch for _, idx, _ in epoch)
        assert len(set(rows.tolist())) == len(rows) and rows.min() >= 0 and rows.max() < N  # disjoint, in range
        orders.append(rows)
    assert len(orders[0]) == per_epoch * SETTINGS.n_batch == 100  # the 7 rows left out differ from epoch to epoch
    assert set(range(N)) - set(orders[0].tolist()) != set(range(N)) - set(orders[1].tolist())
    assert not np.array_equal(orders[0][:80], orders[1][:80])  # a new permutation each epoch


def test_the_learning_rate_at_every_step_is_the_triangular_cycle():
    s = TrainSettings(**{**SETTINGS.as_dict(), "eta_min": 1e-4, "eta_max": 0.2})
    w = watch(s)
    for step, _, eta in w.batches:
        assert eta == pytest.approx(triangular(step, s.eta_min, s.eta_max, s.n_s), rel=1e-12, abs=1e-15), step
    etas = [eta for _, _, eta in w.batches]
    assert etas[0] == s.eta_min and etas[s.n_s] == pytest.approx(s.eta_max) and etas[2 * s.n_s] == s.eta_min
    # the history's eta column is the same cycle at the evaluated steps
    for step, eta in zip(w.result.history["step"], w.result.history["eta"], strict=True):
        assert eta == pytest.approx(triangular(int(step), s.eta_min, s.eta_max, s.n_s), rel=1e-12)


@pytest.mark.parametrize("eval_every, expected", [(4, [0, 4, 8, 12, 16, 20, 24, 28]), (0, [0, 10, 20, 28])])
def test_evaluations_happen_at_the_configured_steps_on_one_fixed_subset(eval_every, expected):
    w = watch(TrainSettings(**{**SETTINGS.as_dict(), "eval_every": eval_every}))
    assert w.evaluated_at == expected
    assert list(w.result.history["step"]) == expected
    # each evaluation: the training subset, then the validation set; at the end the whole training set, the test set
    assert len(w.seen) == 2 * len(expected) + 2
    subsets, vals = w.seen[0 : 2 * len(expected) : 2], w.seen[1 : 2 * len(expected) : 2]
    first = subsets[0]
    assert first.shape == (SETTINGS.eval_train_subset, D)
    assert all(np.array_equal(x, first) for x in subsets)  # one fixed subset
    rows = [int(np.flatnonzero((w.data.X_train == r).all(axis=1))[0]) for r in first]
    assert len(set(rows)) == len(rows) and rows == sorted(rows)  # distinct training rows, in order
    assert all(np.array_equal(v, w.data.X_val) for v in vals)
    assert np.array_equal(w.seen[-2], w.data.X_train) and np.array_equal(w.seen[-1], w.data.X_test)


def test_without_a_subset_the_history_evaluates_the_whole_training_set():
    w = watch(TrainSettings(**{**SETTINGS.as_dict(), "eval_train_subset": 0}))
    assert all(np.array_equal(x, w.data.X_train) for x in w.seen[0:-1:2])
    assert len(w.seen) == 2 * len(w.evaluated_at) + 1  # no second pass over the training set at the end


def test_seeds_draw_independent_streams():
    """Initial weights, shuffling and the evaluation subset each come from their own
    stream of the seed: changing one setting that uses one stream leaves the others alone,
    and another seed changes all three."""
    base = watch(SETTINGS, seed=1)
    again = watch(SETTINGS, seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(base.batches, again.batches, strict=True))
    no_subset = watch(TrainSettings(**{**SETTINGS.as_dict(), "eval_train_subset": 0}), seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(base.batches, no_subset.batches, strict=True))
    fewer_batches = watch(TrainSettings(**{**SETTINGS.as_dict(), "n_s": 3, "cycles": 1}), seed=1)
    assert np.array_equal(fewer_batches.seen[0], base.seen[0])  # the same subset, however long the run

    # ... and they are not one stream read twice: the subset is not the rows the first updates train on
    subset = {int(np.flatnonzero((base.data.X_train == r).all(axis=1))[0]) for r in base.seen[0]}
    first = {int(i) for _, idx, _ in base.batches[:3] for i in idx}
    assert len(subset) == len(first) == 30 and subset != first

    other = watch(SETTINGS, seed=2)
    assert not np.array_equal(other.batches[0][1], base.batches[0][1])
    assert not np.array_equal(other.seen[0], base.seen[0])

    def initial(seed, settings):
        """W1 of the net as the run builds it, before training."""
        built = []

        def keep(model):
            built.append(model.parameters()["W1"].copy())
            return model

        run(settings, data(), seed, wrap=keep)
        return built[0]

    w1 = initial(1, SETTINGS)
    assert np.array_equal(w1, initial(1, TrainSettings(**{**SETTINGS.as_dict(), "eval_train_subset": 0, "n_s": 3})))
    assert not np.array_equal(w1, initial(2, SETTINGS))


def test_a_diverging_run_stops_and_measures_nothing():
    w = watch(TrainSettings(**{**SETTINGS.as_dict(), "eta_min": 1e3, "eta_max": 1e4, "init": "normal", "sigma": 10.0}))
    assert w.result.status == "diverged" and w.result.stopped_at < SETTINGS.total_updates
    assert len(w.batches) == w.result.stopped_at  # no update after the divergence
    assert all(math.isnan(v) for v in w.result.final.values()) and len(w.result.final) == 9


class Received:
    """A net that records what each update and each evaluation receives, and the
    batch-norm averages it holds when evaluated (the loop trains it like any net)."""

    def __init__(self, net):
        self.net, self.batch_norm = net, net.batch_norm
        self.updates, self.evaluations, self.seeded = [], [], []

    def seed_statistics(self, X):
        self.seeded.append(np.array(X, copy=True))
        self.net.seed_statistics(X)

    def train_step(self, X, y, lam, eta):
        self.updates.append((np.array(X, copy=True), np.array(y, copy=True), lam, eta))
        return self.net.train_step(X, y, lam, eta)

    def evaluate(self, X, y, lam):
        bn = self.net.bn_mean, self.net.bn_var
        stats = {k: (None if v is None else (v.copy(), bn[1][k].copy())) for k, v in bn[0].items()}
        params = {k: v.copy() for k, v in self.net.parameters().items()}
        self.evaluations.append((np.array(X, copy=True), lam, stats, params, len(self.updates)))
        return self.net.evaluate(X, y, lam)


def receive(settings, seed=1):
    ds = data()
    got, hooked = [], []
    _, result = run(
        settings,
        ds,
        seed,
        wrap=lambda model: got.append(Received(model)) or got[0],
        on_batch=lambda step, idx, eta: hooked.append((step, idx.copy(), eta)),
    )
    return got[0], hooked, ds, result


@pytest.mark.parametrize("batch_norm", [False, True])
def test_each_update_receives_its_batchs_rows_and_labels_the_cycles_rate_and_lambda(batch_norm):
    """What train_step is called with, not only what on_batch says: the training rows and
    labels of the batch, in order; eta of the triangular cycle at that step; the run's
    lambda. The batches themselves are disjoint slices of each epoch's permutation
    (test_each_epochs_batches_are_disjoint_slices_of_one_permutation)."""
    s = TrainSettings(**{**SETTINGS.as_dict(), "batch_norm": batch_norm, "lam": 0.0123, "eta_max": 0.07})
    net, hooked, ds, _ = receive(s)
    assert len(net.updates) == len(hooked) == s.total_updates
    per_epoch = N // s.n_batch
    for step, ((X, y, lam, eta), (_, idx, _)) in enumerate(zip(net.updates, hooked, strict=True)):
        assert X.shape == (s.n_batch, D) and X.dtype == np.float32
        np.testing.assert_array_equal(X, ds.X_train[idx])
        np.testing.assert_array_equal(y, ds.y_train[idx])
        assert lam == s.lam
        assert eta == pytest.approx(triangular(step, s.eta_min, s.eta_max, s.n_s), rel=1e-12, abs=1e-15)
    for start in range(0, s.total_updates, per_epoch):  # each epoch: distinct training rows
        rows = np.concatenate([u[0] for u in net.updates[start : start + per_epoch]])
        assert np.unique(rows, axis=0).shape[0] == rows.shape[0]
    # every evaluation costs with the run's lambda too
    assert {lam for _, lam, _, _, _ in net.evaluations} == {s.lam}


def test_batch_norm_averages_are_seeded_from_the_first_batch_before_the_step_0_evaluation():
    """Eval-mode batch norm needs averages before any update: the step-0 evaluation uses the
    statistics of the first training batch under the untrained weights (not of another
    batch, not after an update), and that batch is the one the first update trains on."""
    s = TrainSettings(**{**SETTINGS.as_dict(), "hidden": (6,), "batch_norm": True})
    net, hooked, ds, result = receive(s)
    [seeded] = net.seeded
    np.testing.assert_array_equal(seeded, ds.X_train[hooked[0][1]])  # the first batch
    np.testing.assert_array_equal(seeded, net.updates[0][0])
    _, _, stats, params, updates_before = net.evaluations[0]
    assert updates_before == 0 and net.evaluations[1][4] == 0  # step 0: before the first update
    first_pass = seeded.astype(np.float64) @ params["W1"].T.astype(np.float64) + params["b1"]
    mean, var = stats[1]
    np.testing.assert_allclose(mean, first_pass.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, first_pass.var(axis=0), rtol=1e-4, atol=1e-6)
    # the step-0 validation metrics are the untrained net's, by these averages
    untrained = build_model(s, D, CLASSES, 1)
    untrained.set_statistics([(mean, var)])
    assert result.history["step"][0] == 0
    assert result.history["val_cost"][0] == untrained.evaluate(ds.X_val, ds.y_val, s.lam).cost


@pytest.mark.parametrize("checkpoint", ["last", "best_val"])
@pytest.mark.parametrize("evaluations", [1, 2])
def test_a_partial_run_is_the_beginning_of_the_whole_run_bit_for_bit(checkpoint, evaluations):
    """``evaluations`` (kmlp train --evaluations, the record check's first epochs) stops the
    run at that evaluation after step 0: its history is the whole run's up to there, bit
    for bit, its final metrics that evaluation's (no checkpoint restored)."""
    settings = TrainSettings(hidden=(8,), batch_norm=True, n_batch=10, n_s=15, cycles=2, eval_every=4,
                             eval_train_subset=50, checkpoint=checkpoint)  # fmt: skip
    _, whole = run(settings, data(), seed=3)
    _, part = run(settings, data(), seed=3, evaluations=evaluations)
    assert whole.status == "completed" and part.status == "partial"
    assert part.stopped_at == 4 * evaluations == part.history["step"][-1]
    assert len(part.history["step"]) == evaluations + 1 and part.checkpoint_step is None
    for column, values in part.history.items():
        np.testing.assert_array_equal(values, whole.history[column][: evaluations + 1], err_msg=column)
    assert part.final["val_acc"] == part.history["val_acc"][-1]
    assert part.final["train_cost"] == part.history["train_cost"][-1]  # on the subset, as evaluated
    # one that ends with the schedule is whole
    _, last = run(settings, data(), seed=3, evaluations=len(whole.history["step"]) - 1)
    assert last.status == "completed" and last.history["step"][-1] == settings.total_updates
    with pytest.raises(ValueError, match="evaluations must be at least 1"):
        run(settings, data(), seed=3, evaluations=0)
