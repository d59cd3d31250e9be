"""Mini-batch gradient descent with a cyclical learning rate.

Knows nothing of files: it takes arrays and a model and returns a history and the
final metrics. Same arrays, settings and seed give bit-identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model import MLP
from .schedules import cyclic_eta
from .settings import TrainSettings

#: One row per evaluation: where in training, then train and validation metrics.
HISTORY_COLUMNS = ("step", "epoch", "eta", "train_loss", "train_cost", "train_acc", "val_loss", "val_cost", "val_acc")


@dataclass
class TrainResult:
    history: dict  # column -> np.ndarray, one entry per evaluation
    final: dict  # split_metric -> float (train/val; test added by the caller); NaN if diverged
    status: str  # "completed" | "diverged"
    stopped_at: int | None


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
    )


def evaluation_subset(n: int, settings: TrainSettings, seed: int):
    """The sorted rows of the fixed training subset the history evaluates on, or None
    for the whole training set."""
    if 0 < settings.eval_train_subset < n:
        rows = np.random.default_rng(seed_streams(seed)[2]).choice(n, settings.eval_train_subset, replace=False)
        return np.sort(rows)
    return None


def train(model, X_train, y_train, X_val, y_val, settings: TrainSettings, seed: int, progress=None):
    """Train ``model`` in place; returns a :class:`TrainResult`.

    ``progress`` is a callable ``(step, total, row)`` called after each evaluation.
    With ``eval_train_subset`` set, the history's training metrics come from a fixed
    random subset of that size (evaluation then costs a fraction of an epoch's
    updates); the final training metrics always use the whole training set.
    """
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

    def evaluate(step):
        tr = model.evaluate(X_eval, y_eval, lam)
        va = model.evaluate(X_val, y_val, lam)
        row = dict(
            step=step,
            epoch=step / batches_per_epoch,
            eta=cyclic_eta(step, settings.eta_min, settings.eta_max, settings.n_s),
            train_loss=tr[0],
            train_cost=tr[1],
            train_acc=tr[2],
            val_loss=va[0],
            val_cost=va[1],
            val_acc=va[2],
        )
        for k, v in row.items():
            cols[k].append(v)
        if progress:
            progress(step, total, row)
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
        if not model.batch_norm:
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
                model.seed_statistics(Xb)
                evaluate(0)
                evaluated_at = 0
            cost = model.train_step(Xb, yb, lam, etas[step])
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
        if status == "diverged" and evaluated_at != step:
            evaluate(step)
    history = {k: np.asarray(v, np.float64) for k, v in cols.items()}
    final = {k: float(history[k][-1]) for k in cols if k not in ("step", "epoch", "eta")}
    if status == "diverged":  # nothing is measured on a diverged net
        final = dict.fromkeys(final, float("nan"))
    elif X_eval is not X_train:
        with np.errstate(all="ignore"):
            final.update(
                zip(("train_loss", "train_cost", "train_acc"), model.evaluate(X_train, y_train, lam), strict=True)
            )
    return TrainResult(history, final, status, stopped_at)
