"""Every training setting reaches the training loop and changes the run as documented.

One row per field of TrainSettings (and the data set's validation split): each trains
through ``kmlp train`` (the verb every workflow rule calls, with ``--settings`` as JSON,
as the workflow passes them) a tiny net with the field at two values, reads the run files
back, and checks what the setting is documented to do, computed independently of the
code under test where it can be. A setting dropped anywhere on the way (the CLI, the
settings object, the net, the loop, the run file) fails its row; a new setting without a
row fails ``test_every_setting_has_a_row``.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from kmlp.cli import main
from kmlp.data.dataset import load
from kmlp.nn.layers import BN_EPS
from kmlp.nn.schedules import cyclic_eta
from kmlp.nn.settings import TrainSettings
from kmlp.nn.training import seed_streams
from kmlp.runs import load_model, read_run

#: The base of every row: a 2-layer net with batch norm, 8 updates, an evaluation every 2.
BASE = {
    "hidden": [8],
    "batch_norm": True,
    "n_batch": 30,
    "n_s": 4,
    "cycles": 1,
    "eval_every": 2,
    "lam": 0.01,
    "eta_min": 1e-5,
    "eta_max": 0.1,
}
#: Updates too small to move a float32 weight: the final weights are the initial ones, and
#: the batch statistics of every update come from them (the rows on initialisation and on
#: the moving averages compute them independently).
FROZEN = {"eta_min": 1e-30, "eta_max": 1e-30}
SEED = 3


@pytest.fixture(scope="module")
def train(data, tmp_path_factory):
    """``train(**settings)``: the run file of ``kmlp train`` with BASE updated by ``settings``
    (cached: rows share their base run)."""
    out = tmp_path_factory.mktemp("runs")

    @cache
    def run(frozen: str, data_file: Path = data):
        settings = {**BASE, **json.loads(frozen)}
        path = out / f"run{len(list(out.iterdir()))}.h5"
        argv = ["train", "--data", str(data_file), "--seed", str(SEED), "--settings", json.dumps(settings)]
        assert main([*argv, "--out", str(path), "--quiet"]) == 0
        return read_run(path, weights=True), path

    return lambda data_file=data, **settings: run(json.dumps(settings, sort_keys=True), data_file)


def train_data(data):
    return load(data, dtype=np.float32)


def batches(data, settings: dict):
    """The training rows of each update, as the documented loop draws them: each epoch a
    permutation of the rows from the run seed's shuffling stream, cut into consecutive
    batches."""
    n = len(train_data(data).y_train)
    rng = np.random.default_rng(seed_streams(SEED)[1])
    per_epoch = n // settings["n_batch"]
    total = 2 * settings["n_s"] * settings["cycles"]
    out = []
    for step in range(total):
        if step % per_epoch == 0:
            order = rng.permutation(n)
        j = step % per_epoch
        out.append(order[j * settings["n_batch"] : (j + 1) * settings["n_batch"]])
    return out


def moving_averages(run, data, settings: dict, after: bool):
    """The moving mean and variance of each batch-normalised layer as the docs state them:
    seeded with the first batch's statistics, then ``0.9 * average + 0.1 * batch`` at every
    update (the batch's mean and biased variance of the normalised input: the affine output,
    or with ``bn_order: after`` the ReLU's), computed from the run's (frozen) weights."""
    X = train_data(data).X_train.astype(np.float64)
    w = {k: np.asarray(v, np.float64) for k, v in run.weights.items()}
    hidden = len(settings["hidden"])
    avg: dict = {}
    for step, rows in enumerate(batches(data, settings)):
        h = X[rows]
        for layer in range(1, hidden + 1):
            s = h @ w[f"W{layer}"].T + w[f"b{layer}"]
            x = np.maximum(s, 0) if after else s
            mu, var = x.mean(0), x.var(0)
            if step == 0:
                avg[layer] = (mu, var)
            avg[layer] = tuple(0.9 * a + 0.1 * b for a, b in zip(avg[layer], (mu, var), strict=True))
            xn = w[f"gamma{layer}"] * (x - mu) / np.sqrt(var + BN_EPS) + w[f"beta{layer}"]
            h = xn if after else np.maximum(xn, 0)
    return avg


def weight_std(run, layer=1):
    return float(np.std(run.weights[f"W{layer}"]))


# -- the rows: (settings of run A, settings of run B, what must hold of the two runs) -------
def hidden(train, data):
    (a, _), (b, _) = train(hidden=[8]), train(hidden=[8, 6])
    assert a.model["sizes"] == [3072, 8, 10] and b.model["sizes"] == [3072, 8, 6, 10]
    assert b.weights["W2"].shape == (6, 8) and b.weights["W3"].shape == (10, 6) and "W3" not in a.weights


def batch_norm(train, data):
    (a, _), (b, _) = train(batch_norm=False), train(batch_norm=True)
    assert not a.model["batch_norm"] and b.model["batch_norm"]
    assert not any(k.startswith(("gamma", "beta", "bn_")) for k in a.weights)
    assert {"gamma1", "beta1", "bn_mean1", "bn_var1"} <= set(b.weights)


def init(train, data):
    """He: std sqrt(2 / fan-in); normal: the given sigma (frozen weights: the initial ones)."""
    (he, _), (normal, _) = train(init="he", **FROZEN), train(init="normal", sigma=0.3, **FROZEN)
    assert weight_std(he) == pytest.approx(math.sqrt(2 / 3072), rel=0.03)
    assert weight_std(he, 2) == pytest.approx(math.sqrt(2 / 8), rel=0.35)  # 80 weights
    assert weight_std(normal) == pytest.approx(0.3, rel=0.03)


def sigma(train, data):
    (a, _), (b, _) = train(init="normal", sigma=1e-3, **FROZEN), train(init="normal", sigma=1e-1, **FROZEN)
    assert weight_std(a) == pytest.approx(1e-3, rel=0.03) and weight_std(b) == pytest.approx(1e-1, rel=0.03)


def bn_order(train, data):
    """Both moving averages are the exponential averages of the normalised input's batch
    statistics: the affine output before the ReLU, or the ReLU's output after it."""
    settings = {**BASE, "hidden": [8, 6], **FROZEN}
    for order in ("before", "after"):
        run, _ = train(hidden=[8, 6], bn_order=order, **FROZEN)
        assert run.model.get("bn_order", "before") == order
        want = moving_averages(run, data, settings, after=order == "after")
        for layer, (mean, var) in want.items():
            np.testing.assert_allclose(run.weights[f"bn_mean{layer}"], mean, rtol=2e-4, atol=1e-6)
            np.testing.assert_allclose(run.weights[f"bn_var{layer}"], var, rtol=2e-4, atol=1e-6)
        other = moving_averages(run, data, settings, after=order != "after")
        assert not np.allclose(run.weights["bn_var1"], other[1][1], rtol=1e-2)


def lam(train, data):
    """The cost is the loss plus lam times the squared weights (not the biases), and a
    larger lam shrinks the weights."""
    (a, _), (b, _) = train(lam=0.0), train(lam=0.5)
    for run, value in ((a, 0.0), (b, 0.5)):
        assert run.settings["lam"] == value
        squares = sum(float(np.sum(np.asarray(w, np.float64) ** 2)) for k, w in run.weights.items() if k[0] == "W")
        for split in ("train", "val", "test"):  # every cost the run reports, the history's last too
            gap = run.final[f"{split}_cost"] - run.final[f"{split}_loss"]
            assert gap == pytest.approx(value * squares, rel=1e-4, abs=1e-6), split
        for split in ("train", "val"):
            gap = run.history[f"{split}_cost"] - run.history[f"{split}_loss"]
            assert gap[-1] == pytest.approx(value * squares, rel=1e-4, abs=1e-6)
            assert (gap > 0).all() if value else (gap == 0).all()
    assert weight_std(b) < 0.99 * weight_std(a)


def n_batch(train, data):
    """An epoch is n // n_batch updates (the history's epoch column) and each update takes
    n_batch rows: the moving averages come from batches of that size."""
    for size in (30, 15):
        run, _ = train(n_batch=size)
        np.testing.assert_array_equal(run.history["epoch"], run.history["step"] / (270 // size))
        frozen, _ = train(n_batch=size, **FROZEN)
        want = moving_averages(frozen, data, {**BASE, "n_batch": size}, after=False)
        np.testing.assert_allclose(frozen.weights["bn_var1"], want[1][1], rtol=2e-4, atol=1e-6)


def eta_min(train, data):
    """The learning rate is the triangular cycle from eta_min to eta_max (the history's eta)."""
    run, _ = train(eta_min=1e-4, eta_max=0.05)
    want = [1e-4 + (0.05 - 1e-4) * (1 - abs(s / 4 - 1)) for s in run.history["step"]]
    np.testing.assert_allclose(run.history["eta"], want, rtol=1e-12)
    assert cyclic_eta(0, 1e-4, 0.05, 4) == run.history["eta"][0] == 1e-4


def eta_max(train, data):
    (a, _), (b, _) = train(eta_max=0.05), train(eta_max=0.2)
    assert max(a.history["eta"]) == 0.05 and max(b.history["eta"]) == 0.2
    assert not np.array_equal(a.weights["W1"], b.weights["W1"])  # the updates used it


def n_s(train, data):
    """2 n_s updates a cycle; the rate peaks at step n_s."""
    run, _ = train(n_s=6, eval_every=1)
    assert run.history["step"][-1] == 12
    assert run.history["step"][int(np.argmax(run.history["eta"]))] == 6


def cycles(train, data):
    run, _ = train(cycles=2)
    assert run.history["step"][-1] == 2 * 2 * 4
    assert list(run.history["eta"][run.history["step"] % 8 == 0]) == pytest.approx([1e-5, 1e-5, 1e-5])


def eval_every(train, data):
    """Evaluations at step 0, every eval_every updates and after the last; 0: every epoch."""
    (a, _), (b, _), (c, _) = train(eval_every=3), train(eval_every=0), train(eval_every=0, n_batch=90)
    assert list(a.history["step"]) == [0, 3, 6, 8]
    assert list(b.history["step"]) == [0, 8]  # 9 updates an epoch: only the end
    assert list(c.history["step"]) == [0, 3, 6, 8]  # 3 updates an epoch


def eval_train_subset(train, data):
    """The history's training metrics come from a fixed subset of that many images; the
    final ones from all 270."""
    (a, _), (b, _) = train(eval_train_subset=0), train(eval_train_subset=50)
    counts = b.history["train_acc"] * 50
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert b.final["train_acc"] * 270 == pytest.approx(round(b.final["train_acc"] * 270), abs=1e-9)
    assert b.final["train_acc"] == a.final["train_acc"]  # the same training, measured on all
    assert not np.array_equal(a.history["train_cost"], b.history["train_cost"])


def dtype(train, data):
    """float64 trains in float64: its weights are not float32 numbers widened (as they
    would be if the arithmetic were float32's), and its metrics differ from float32's."""
    (a, _), (b, _) = train(dtype="float32"), train(dtype="float64")
    assert all(w.dtype == np.float32 for w in a.weights.values())
    assert all(w.dtype == np.float64 for w in b.weights.values())
    w = b.weights["W1"]
    assert np.mean(w != w.astype(np.float32).astype(np.float64)) > 0.99
    assert a.final["train_cost"] != b.final["train_cost"]
    assert a.final["train_cost"] == pytest.approx(b.final["train_cost"], rel=1e-4)
    assert load_model(train(dtype="float64")[1]).dtype == np.float64


def checkpoint(train, data):
    """best_val: the final metrics and the weights are those of the first evaluation with
    the best validation accuracy, whose step the run records; last: after the last update."""
    kw = {"eta_max": 0.5, "eval_every": 1, "n_s": 6}
    (last, _), (best, path) = train(**kw), train(checkpoint="best_val", **kw)
    np.testing.assert_array_equal(best.history["val_acc"], last.history["val_acc"])
    i = int(np.argmax(best.history["val_acc"]))
    assert best.checkpoint_step == best.history["step"][i] and last.checkpoint_step is None
    assert best.checkpoint_step != best.history["step"][-1], "the row needs a best evaluation before the last"
    for metric in ("val_acc", "val_cost", "val_loss"):
        assert best.final[metric] == best.history[metric][i] and last.final[metric] == last.history[metric][-1]
    ds = load(data, dtype=np.float32)
    evaluation = load_model(path).evaluate(ds.X_val, ds.y_val, BASE["lam"])
    assert (evaluation.loss, evaluation.cost, evaluation.acc) == (
        best.final["val_loss"],
        best.final["val_cost"],
        best.final["val_acc"],
    )


def val_size(train, data, tmp_path_factory):
    """The data set's validation split (``kmlp prepare --val-size``, per experiment in the
    config) is what the run validates on: its size, and training on the rest."""
    root = Path(data).parent
    other = tmp_path_factory.mktemp("val") / "d50.h5"
    md5 = __import__("hashlib").md5((root / "a.tar.gz").read_bytes()).hexdigest()
    argv = ["prepare", "--archive", str(root / "a.tar.gz"), "--md5", md5, "--val-size", "50"]
    assert main([*argv, "--out", str(other), "--quiet"]) == 0
    (a, _), (b, _) = train(), train(data_file=other)
    assert a.eval_sizes == {"train": 270, "val": 30, "test": 100}
    assert b.eval_sizes == {"train": 250, "val": 50, "test": 100}
    assert np.array_equal(b.history["epoch"], b.history["step"] / (250 // 30))


ROWS = {
    f.__name__: f
    for f in (hidden, batch_norm, init, sigma, bn_order, lam, n_batch, eta_min, eta_max, n_s, cycles)
    + (eval_every, eval_train_subset, dtype, checkpoint, val_size)
}


def test_every_setting_has_a_row():
    assert set(ROWS) == {f.name for f in fields(TrainSettings)} | {"val_size"}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_setting_reaches_the_run_as_documented(name, train, data, tmp_path_factory):
    row = ROWS[name]
    if name == "val_size":
        row(train, data, tmp_path_factory)
    else:
        row(train, data)
