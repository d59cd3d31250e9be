"""Mini-batch gradient descent with a cyclical learning rate: the epoch loop and a whole run.

Knows nothing of files: it takes arrays and a net and returns a history and the final
metrics. Same arrays, settings and seed give bit-identical results. The loop asks four
things of a net (:class:`Net`), so the bench's PyTorch twin trains through the same
loop, on the same batches, learning rates and evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .metrics import Evaluation
from .model import MLP
from .schedules import cyclic_eta
from .settings import TrainSettings

#: One row per evaluation: where in training, then train and validation metrics.
HISTORY_COLUMNS = ("step", "epoch", "eta", "train_loss", "train_cost", "train_acc", "val_loss", "val_cost", "val_acc")


class Net(Protocol):
    """What the epoch loop needs of a net (:class:`~kmlp.nn.model.MLP` is one)."""

    batch_norm: bool

    def seed_statistics(self, X) -> None: ...
    def train_step(self, X, y, lam: float, eta: float) -> float: ...
    def evaluate(self, X, y, lam: float) -> Evaluation: ...
    def state(self) -> dict: ...  # for checkpoint best_val only
    def load_state(self, state) -> None: ...


#: ``on_evaluate(step, total, row)``: after each evaluation, ``row`` a dict of HISTORY_COLUMNS.
OnEvaluate = Callable[[int, int, dict], None]
#: ``on_batch(step, rows, eta)``: before each update, the training rows of its batch (a view:
#: copy to keep) and its learning rate.
OnBatch = Callable[[int, np.ndarray, float], None]


@dataclass
class TrainResult:
    history: dict  # column -> np.ndarray, one entry per evaluation
    final: dict  # metric (FINAL_METRICS) -> float (test only after `run`); all NaN if diverged
    status: str  # "completed" | "diverged" | "partial" (stopped after ``evaluations``)
    stopped_at: int | None
    checkpoint_step: int | None = None  # with checkpoint best_val: the step final measures


def seed_streams(seed):
    """Independent streams: weight initialisation, shuffling, the evaluation subset."""
    return np.random.SeedSequence(seed).spawn(3)


def init_seed(seed):
    """The seed a model should be built with for run seed ``seed``."""
    return seed_streams(seed)[0]


def build_model(settings: TrainSettings, d_in: int, n_classes: int, seed: int) -> MLP:
    """The untrained net of ``settings`` for run seed ``seed``."""
    return MLP(
        [d_in, *settings.hidden, n_classes],
        batch_norm=settings.batch_norm,
        init=settings.init,
        sigma=settings.sigma,
        seed=init_seed(seed),
        dtype=settings.dtype,
        bn_order=settings.bn_order,
    )


def evaluation_subset(n: int, settings: TrainSettings, seed: int):
    """The sorted rows of the fixed training subset the history evaluates on, or None
    for the whole training set."""
    if 0 < settings.eval_train_subset < n:
        rows = np.random.default_rng(seed_streams(seed)[2]).choice(n, settings.eval_train_subset, replace=False)
        return np.sort(rows)
    return None


def run(
    settings: TrainSettings,
    data,
    seed: int,
    wrap: Callable[[MLP], Net] | None = None,
    on_evaluate: OnEvaluate | None = None,
    on_batch: OnBatch | None = None,
    evaluations: int | None = None,
) -> tuple[Net, TrainResult]:
    """A whole run: the net of ``seed``, trained on ``data`` (X_/y_ train, val, test and
    class_names, as :func:`kmlp.data.dataset.load` gives), then measured on the test set.

    ``wrap`` turns the untrained model into the net that is trained (the bench's timing,
    the PyTorch twin). Returns the net and its result, whose ``final`` has every
    FINAL_METRICS entry (NaN when the run diverged: nothing is measured on such a net).
    ``evaluations``: stop after that many evaluations after step 0 (:func:`fit`).
    """
    model = build_model(settings, data.X_train.shape[1], len(data.class_names), seed)
    net = wrap(model) if wrap else model
    result = fit(
        net, data.X_train, data.y_train, data.X_val, data.y_val, settings, seed, on_evaluate, on_batch, evaluations
    )
    if result.status == "diverged":
        test = Evaluation(math.nan, math.nan, math.nan)
    else:
        with np.errstate(all="ignore"):
            test = net.evaluate(data.X_test, data.y_test, settings.lam)
    result.final.update(zip(("test_loss", "test_cost", "test_acc"), test, strict=True))
    return net, result


def fit(
    net: Net,
    X_train,
    y_train,
    X_val,
    y_val,
    settings: TrainSettings,
    seed: int,
    on_evaluate: OnEvaluate | None = None,
    on_batch: OnBatch | None = None,
    evaluations: int | None = None,
) -> TrainResult:
    """Train ``net`` in place: the epoch loop. Each epoch's batches are consecutive slices
    of one permutation of the training rows; the learning rate follows the triangular
    cycle; the net is evaluated at step 0, every ``eval_every`` updates (0: every epoch)
    and at the end. With ``checkpoint`` best_val, the net ends as it was at the
    evaluation with the best validation accuracy (the first, on a tie), and the final
    metrics are measured there.

    With ``eval_train_subset`` set, the history's training metrics come from a fixed
    random subset of that size (evaluation then costs a fraction of an epoch's
    updates); the final training metrics always use the whole training set.

    With ``evaluations`` set, the run stops at its ``evaluations``-th evaluation after step 0
    (status "partial", unless the schedule ended there): its history is, bit for bit, the
    beginning of the whole run's, so the record check can retrain a run's first epoch for a
    fraction of its time (kmlp.aggregate.retrained). Its final metrics are that evaluation's:
    no checkpoint is restored.
    """
    if evaluations is not None and evaluations < 1:
        raise ValueError(f"evaluations must be at least 1, not {evaluations}")
    n = X_train.shape[0]
    settings.check_data(n)
    rng = np.random.default_rng(seed_streams(seed)[1])
    y_train = np.asarray(y_train, np.intp)
    pick = evaluation_subset(n, settings, seed)
    if pick is not None:
        X_eval, y_eval = X_train[pick], y_train[pick]
    else:
        X_eval, y_eval = X_train, y_train
    batches_per_epoch = n // settings.n_batch
    eval_every = settings.eval_every or batches_per_epoch
    total = settings.total_updates
    lam = settings.lam
    y_val = np.asarray(y_val, np.intp)
    cols = {c: [] for c in HISTORY_COLUMNS}
    best = {"acc": -math.inf, "row": None, "state": None}  # checkpoint best_val

    def keep_if_best(row):
        # the first of equal accuracies: a later evaluation must beat it
        if settings.checkpoint == "best_val" and row["val_acc"] > best["acc"]:
            best.update(acc=row["val_acc"], row=len(cols["step"]) - 1)
            best["state"] = {name: a.copy() for name, a in net.state().items()}

    def evaluate(step):
        tr = net.evaluate(X_eval, y_eval, lam)
        va = net.evaluate(X_val, y_val, lam)
        row = dict(
            step=step,
            epoch=step / batches_per_epoch,
            eta=cyclic_eta(step, settings.eta_min, settings.eta_max, settings.n_s),
            train_loss=tr.loss,
            train_cost=tr.cost,
            train_acc=tr.acc,
            val_loss=va.loss,
            val_cost=va.cost,
            val_acc=va.acc,
        )
        for k, v in row.items():
            cols[k].append(v)
        keep_if_best(row)
        if on_evaluate:
            on_evaluate(step, total, row)
        return row

    # The batch is gathered into the same two arrays every update; the indices come
    # from a permutation, so "clip" never clips (and, unlike "raise", copies directly).
    Xb = np.empty((settings.n_batch, X_train.shape[1]), X_train.dtype)
    yb = np.empty(settings.n_batch, np.intp)
    etas = cyclic_eta(np.arange(total), settings.eta_min, settings.eta_max, settings.n_s).tolist()
    status, stopped_at = "completed", None
    step = 0
    order = None
    evaluated_at = -1
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if not net.batch_norm:
            evaluate(0)
            evaluated_at = 0
        while step < total:
            j = step % batches_per_epoch
            if j == 0:
                order = rng.permutation(n)
            idx = order[j * settings.n_batch : (j + 1) * settings.n_batch]
            np.take(X_train, idx, axis=0, out=Xb, mode="clip")
            np.take(y_train, idx, out=yb, mode="clip")
            if evaluated_at < 0:
                # Eval-mode batch norm needs statistics: step-0 metrics use the moving
                # averages as seeded from the first batch, before any update.
                net.seed_statistics(Xb)
                evaluate(0)
                evaluated_at = 0
            if on_batch:
                on_batch(step, idx, etas[step])
            cost = net.train_step(Xb, yb, lam, etas[step])
            step += 1
            if not math.isfinite(cost):
                status, stopped_at = "diverged", step
                break
            if step % eval_every == 0 or step == total:
                row = evaluate(step)
                evaluated_at = step
                if not np.isfinite(row["train_cost"]):
                    status, stopped_at = "diverged", step
                    break
                if evaluations is not None and len(cols["step"]) > evaluations and step < total:
                    status, stopped_at = "partial", step
                    break
        if status == "diverged" and evaluated_at != step:
            evaluate(step)
    history = {k: np.asarray(v, np.float64) for k, v in cols.items()}
    at, checkpoint_step = -1, None
    if status == "completed" and best["state"] is not None:
        net.load_state(best["state"])
        at = best["row"]
        checkpoint_step = int(history["step"][at])
    final = {k: float(history[k][at]) for k in cols if k not in ("step", "epoch", "eta")}
    if status == "diverged":  # nothing is measured on a diverged net
        final = dict.fromkeys(final, float("nan"))
    elif X_eval is not X_train and status == "completed":
        with np.errstate(all="ignore"):
            whole = net.evaluate(X_train, y_train, lam)
        final.update(train_loss=whole.loss, train_cost=whole.cost, train_acc=whole.acc)
    return TrainResult(history, final, status, stopped_at, checkpoint_step)
