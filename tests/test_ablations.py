"""The two training ablations the discrepancies test: batch norm after the ReLU, and the
final metrics at the best-validation checkpoint. Each is off by default and then leaves
every output as it was."""

import h5py
import numpy as np
import pytest

from kmlp import MLP
from kmlp.cli import main
from kmlp.nn.gradcheck import check_model
from kmlp.nn.layers import batchnorm_forward, relu_forward
from kmlp.nn.metrics import Evaluation
from kmlp.nn.settings import GradcheckSettings, SettingsError, TrainSettings
from kmlp.nn.training import build_model, fit
from kmlp.runs import load_model, read_run
from test_training import blobs


def small_run(seed=0, **kw):
    """test_training's small problem, the net built from its settings."""
    Xtr, ytr = blobs(1000, seed=1)
    Xva, yva = blobs(300, seed=2)
    base = {"hidden": [30, 30], "batch_norm": True, "lam": 1e-3, "n_batch": 50, "n_s": 100, "eval_every": 20}
    settings = TrainSettings(**{**base, **kw})
    model = build_model(settings, 20, 4, seed)
    return model, fit(model, Xtr, ytr, Xva, yva, settings, seed)


def batch(n=20, d=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, 10, n)


@pytest.mark.parametrize("hidden", [[50], [50, 50], [50, 30, 20, 10]], ids=["2-layer", "3-layer", "5-layer"])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_batch_norm_after_the_relu_has_the_numerical_gradients(hidden, lam):
    X, y = batch()
    model = MLP([10, *hidden, 10], batch_norm=True, bn_order="after", seed=3, dtype=np.float64)
    stats = check_model(model, X, y, lam)
    assert list(stats) == list(model.parameters())
    for name, s in stats.items():
        assert s["rel_error"] < 1e-6, (name, s)


def test_batch_norm_after_the_relu_normalises_the_relu_output():
    X, y = batch(seed=1)
    before = MLP([10, 8, 6, 10], batch_norm=True, seed=2, dtype=np.float64)
    after = MLP([10, 8, 6, 10], batch_norm=True, bn_order="after", seed=2, dtype=np.float64)
    p = after.parameters()
    h = X
    for layer in (1, 2):
        r, _ = relu_forward(h @ p[f"W{layer}"].T + p[f"b{layer}"])
        h = batchnorm_forward(r, p[f"gamma{layer}"], p[f"beta{layer}"])[0]
    np.testing.assert_allclose(after.forward(X, "train"), h @ p["W3"].T + p["b3"], rtol=1e-12)
    assert not np.allclose(after.forward(X, "train"), before.forward(X, "train"))
    # same weights, so the difference is the order alone
    for name, a in before.parameters().items():
        np.testing.assert_array_equal(a, p[name])


def test_an_update_after_the_relu_is_gradient_descent_with_moving_averages():
    X, y = batch(n=32, seed=4)
    model = MLP([10, 8, 6, 10], batch_norm=True, bn_order="after", seed=5, dtype=np.float64, alpha=0.9)
    model.train_step(*batch(n=32, seed=9), 0.0, 0.0)  # seeds the moving averages with another batch
    start = {k: v.copy() for k, v in model.parameters().items()}
    means = [model.bn_mean[layer].copy() for layer in (1, 2)]
    variances = [model.bn_var[layer].copy() for layer in (1, 2)]
    _, grads = model.cost_and_gradients(X, y, 0.01)
    _, tape = model.forward(X, "train", keep=True)
    loss = model.train_step(X, y, 0.01, 0.05)
    assert np.isfinite(loss)
    for name, g in grads.items():
        np.testing.assert_allclose(model.parameters()[name], start[name] - 0.05 * g, rtol=1e-12, atol=1e-15)
    for layer, (mu, var) in enumerate(tape.stats, 1):
        np.testing.assert_allclose(model.bn_mean[layer], 0.9 * means[layer - 1] + 0.1 * mu, rtol=1e-12)
        np.testing.assert_allclose(model.bn_var[layer], 0.9 * variances[layer - 1] + 0.1 * var, rtol=1e-12)
        # the batch's statistics are the ReLU output's: its mean and biased variance
        relu = tape.caches[layer - 1][2]
        np.testing.assert_allclose((mu, var), (relu.mean(0), relu.var(0)), rtol=1e-12)
        assert not np.allclose(model.bn_var[layer], var)  # an average, not the batch's own
    # evaluation uses the moving averages, in chunks that agree with one pass
    np.testing.assert_allclose(model.logits(X, chunk=5), model.forward(X, "eval"), rtol=1e-12)


def test_a_net_with_batch_norm_after_the_relu_learns():
    model, res = small_run(bn_order="after")
    assert model.after and res.status == "completed"
    assert res.final["val_acc"] > 0.95 and res.history["val_acc"][0] < 0.6


def test_the_best_validation_checkpoint_is_where_the_final_metrics_are_measured():
    """Stopped early in its cycle, the last evaluation is not the best one, so the two
    checkpoints differ; the net ends with the best one's weights."""
    kw = {"n_s": 100, "cycles": 1, "eta_max": 0.5, "eval_every": 10}
    last_model, last = small_run(seed=3, **kw)
    best_model, best = small_run(seed=3, checkpoint="best_val", **kw)
    for col, values in last.history.items():  # the same training
        np.testing.assert_array_equal(best.history[col], values)
    i = int(np.argmax(best.history["val_acc"]))
    assert best.checkpoint_step == best.history["step"][i] and last.checkpoint_step is None
    assert best.final["val_acc"] == best.history["val_acc"][i] == max(best.history["val_acc"])
    assert last.final["val_acc"] == last.history["val_acc"][-1]
    assert best.checkpoint_step != last.history["step"][-1], "the test needs a best evaluation before the last"
    # the net ends with the checkpoint's weights (and moving averages): they give its
    # validation metrics again
    X_val, y_val = blobs(300, seed=2)
    assert best_model.evaluate(X_val, y_val, 1e-3) == (
        best.final["val_loss"],
        best.final["val_cost"],
        best.final["val_acc"],
    )
    assert last_model.evaluate(X_val, y_val, 1e-3).cost == last.final["val_cost"] != best.final["val_cost"]


def test_ablation_settings_are_recorded_only_when_set_and_bad_ones_refused():
    plain = TrainSettings()
    assert "bn_order" not in plain.as_dict() and "checkpoint" not in plain.schedule_dict()
    set_ = TrainSettings(batch_norm=True, bn_order="after", checkpoint="best_val")
    assert set_.net_dict()["bn_order"] == "after" and set_.schedule_dict()["checkpoint"] == "best_val"
    assert "bn_order" not in GradcheckSettings().as_dict()
    with pytest.raises(SettingsError, match="bn_order after needs batch_norm: true"):
        TrainSettings(bn_order="after")
    with pytest.raises(SettingsError, match="checkpoint must be one of last, best_val"):
        TrainSettings(checkpoint="best")
    with pytest.raises(ValueError, match="bn_order must be"):
        MLP([4, 3, 2], batch_norm=True, bn_order="between")


def test_kmlp_train_records_the_ablations_and_load_model_rebuilds_them(data, tmp_path):
    common = ["train", "--data", str(data), "--hidden", "8", "--batch-norm", "--n-s", "4", "--cycles", "1"]
    common += ["--n-batch", "30", "--eval-every", "2", "--quiet"]
    assert main([*common, "--seed", "1", "--out", str(tmp_path / "plain.h5")]) == 0
    argv = [*common, "--seed", "1", "--bn-order", "after", "--checkpoint", "best_val"]
    assert main([*argv, "--out", str(tmp_path / "abl.h5")]) == 0
    plain, abl = read_run(tmp_path / "plain.h5"), read_run(tmp_path / "abl.h5")
    assert plain.checkpoint_step is None and "bn_order" not in plain.model
    with h5py.File(tmp_path / "plain.h5") as f:
        assert "checkpoint_step" not in f.attrs and "checkpoint" not in f.attrs["settings"]
    assert abl.model["bn_order"] == "after" and abl.settings["checkpoint"] == "best_val"
    i = int(np.argmax(abl.history["val_acc"]))
    assert abl.checkpoint_step == abl.history["step"][i] and abl.final["val_acc"] == abl.history["val_acc"][i]
    assert load_model(tmp_path / "abl.h5").after


def test_the_cost_model_predicts_batch_norm_after_the_relu_slower():
    """Its runs train through the layer functions (1.32-1.36 times as long per update,
    measured), so a SLURM job holding them must ask for more time."""
    from kmlp.study.cost import BN_AFTER_FACTOR, REFERENCE, Sizes, seconds

    sizes = Sizes(d_in=3072, n_classes=10, n_train=45000, n_val=5000, n_test=10000)
    before, after = TrainSettings(batch_norm=True), TrainSettings(batch_norm=True, bn_order="after")
    start = REFERENCE["constant"]  # starting Python and loading the data take as long
    assert seconds(after, sizes) - start == pytest.approx(BN_AFTER_FACTOR * (seconds(before, sizes) - start))
    assert BN_AFTER_FACTOR >= 1.36


class Scripted:
    """A net whose validation accuracy follows a script, one value per evaluation; its
    state is the number of updates made."""

    batch_norm = False

    def __init__(self, val_accs):
        self.val_accs, self.updates, self.calls = list(val_accs), np.zeros(1), 0

    def seed_statistics(self, X):
        pass

    def train_step(self, X, y, lam, eta):
        self.updates += 1
        return 1.0

    def evaluate(self, X, y, lam):
        self.calls += 1  # the training rows first, then the validation rows
        acc = self.val_accs[(self.calls - 1) // 2] if self.calls % 2 == 0 else 0.5
        return Evaluation(1.0, 1.0, acc)

    def state(self):
        return {"updates": self.updates}

    def load_state(self, state):
        self.updates[...] = state["updates"]


def test_the_checkpoint_keeps_the_first_of_equal_validation_accuracies():
    X, y = blobs(40, seed=1)
    settings = TrainSettings(hidden=[4], n_batch=10, n_s=4, cycles=1, eval_every=2, checkpoint="best_val")
    net = Scripted([0.1, 0.4, 0.6, 0.6, 0.2])  # evaluated at steps 0, 2, 4, 6, 8
    result = fit(net, X, y, X, y, settings, seed=0)
    assert list(result.history["step"]) == [0, 2, 4, 6, 8]
    assert result.checkpoint_step == 4 and net.updates[0] == 4 and result.final["val_acc"] == 0.6
