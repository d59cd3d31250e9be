"""Mini-batch gradient descent with a cyclical learning rate.

Knows nothing of files: it takes arrays and a model and returns a history and the
final metrics. Same arrays, settings and seed give bit-identical results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .schedules import cyclic_eta


#: One row per evaluation: where in training, then train and validation metrics.
HISTORY_COLUMNS = (
    "step", "epoch", "eta",
    "train_loss", "train_cost", "train_acc",
    "val_loss", "val_cost", "val_acc",
)


@dataclass(frozen=True)
class TrainSettings:
    lam: float = 0.005
    n_batch: int = 100
    eta_min: float = 1e-5
    eta_max: float = 1e-1
    n_s: int = 2250
    cycles: int = 2
    eval_every: int = 0      # updates between evaluations; 0 = once per epoch
    eval_train_subset: int = 0  # training images the history's train metrics use; 0 = all

    def validate(self, n_train: int) -> None:
        if self.n_batch < 1 or self.n_batch > n_train:
            raise ValueError(f"n_batch must be in 1..{n_train} (the training-set size), got {self.n_batch}")
        if self.n_s < 1 or self.cycles < 1:
            raise ValueError(f"n_s and cycles must be positive, got n_s={self.n_s}, cycles={self.cycles}")
        if not 0 < self.eta_min <= self.eta_max:
            raise ValueError(f"need 0 < eta_min <= eta_max, got {self.eta_min}, {self.eta_max}")
        if self.lam < 0 or self.eval_every < 0 or self.eval_train_subset < 0:
            raise ValueError("lam, eval_every and eval_train_subset must not be negative")

    @property
    def total_updates(self) -> int:
        return 2 * self.n_s * self.cycles

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    history: dict          # column -> np.ndarray, one entry per evaluation
    final: dict            # split_metric -> float (train/val; test added by the caller)
    status: str            # "completed" | "diverged"
    stopped_at: int | None


def _split_seeds(seed):
    """Independent streams: weight initialisation, shuffling, the evaluation subset."""
    return np.random.SeedSequence(seed).spawn(3)


def init_seed(seed):
    """The seed a model should be built with for run seed ``seed``."""
    return _split_seeds(seed)[0]


def train(model, X_train, y_train, X_val, y_val, settings: TrainSettings, seed: int,
          progress=None):
    """Train ``model`` in place; returns a :class:`TrainResult`.

    ``progress`` is a callable ``(step, total, row)`` called after each evaluation.
    With ``eval_train_subset`` set, the history's training metrics come from a fixed
    random subset of that size (evaluation then costs a fraction of an epoch's
    updates); the final training metrics always use the whole training set.
    """
    n = X_train.shape[0]
    settings.validate(n)
    _, shuffle_ss, subset_ss = _split_seeds(seed)
    rng = np.random.default_rng(shuffle_ss)
    y_train = np.asarray(y_train, np.intp)
    if 0 < settings.eval_train_subset < n:
        pick = np.sort(np.random.default_rng(subset_ss).choice(n, settings.eval_train_subset, replace=False))
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
        row = dict(step=step, epoch=step / batches_per_epoch,
                   eta=cyclic_eta(step, settings.eta_min, settings.eta_max, settings.n_s),
                   train_loss=tr[0], train_cost=tr[1], train_acc=tr[2],
                   val_loss=va[0], val_cost=va[1], val_acc=va[2])
        for k, v in row.items():
            cols[k].append(v)
        if progress:
            progress(step, total, row)
        return row

    Xb = np.empty((settings.n_batch, X_train.shape[1]), X_train.dtype)
    etas = cyclic_eta(np.arange(total), settings.eta_min, settings.eta_max, settings.n_s)
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
            idx = order[j * settings.n_batch:(j + 1) * settings.n_batch]
            np.take(X_train, idx, axis=0, out=Xb)
            yb = y_train[idx]
            if evaluated_at < 0:
                # Eval-mode batch norm needs statistics: step-0 metrics use the moving
                # averages as seeded from the first batch, before any update.
                model.seed_statistics(Xb)
                evaluate(0)
                evaluated_at = 0
            cost = model.train_step(Xb, yb, lam, float(etas[step]))
            step += 1
            if not np.isfinite(cost):
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
    if X_eval is not X_train:
        with np.errstate(all="ignore"):
            final.update(zip(("train_loss", "train_cost", "train_acc"),
                             model.evaluate(X_train, y_train, lam)))
    return TrainResult(history, final, status, stopped_at)
