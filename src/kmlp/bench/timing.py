"""Clocks, candidates timed in interleaved rounds, and the phases of a whole run.

Candidates are timed in turn, round after round (A B C A B C ...), so a slow spell of a
shared machine hits them alike, and the medians are reported. The clock that counts is
the CPU time of the process (what other jobs on the machine do not inflate); wall time
is kept beside it.
"""

from __future__ import annotations

import time

import numpy as np

from ..nn.settings import TrainSettings
from ..nn.training import run


class Clock:
    """CPU and wall seconds since it was made (or since ``restart``)."""

    def __init__(self):
        self.restart()

    def restart(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def read(self) -> dict:
        return {"cpu": time.process_time() - self.cpu, "wall": time.perf_counter() - self.wall}


class Phases:
    """The phases of one whole run: load, evaluation (summed over its calls) and the
    updates (the rest of the total)."""

    def __init__(self):
        self.clock = Clock()
        self.load = None
        self.evaluation = {"cpu": 0.0, "wall": 0.0, "images": 0}

    def loaded(self):
        self.load = self.clock.read()

    def evaluated(self, clock: Clock, images: int):
        for k, v in clock.read().items():
            self.evaluation[k] += v
        self.evaluation["images"] += images

    def record(self, updates: int, status: str, val_acc: float, test_acc: float) -> dict:
        total = self.clock.read()
        spent = {c: self.load[c] + self.evaluation[c] for c in total}
        return {
            "load_s": self.load,
            "evaluation_s": {c: self.evaluation[c] for c in ("cpu", "wall")},
            "updates_s": {c: total[c] - spent[c] for c in total},
            "updates": updates,
            "evaluated_images": self.evaluation["images"],
            "status": status,
            "val_acc": val_acc,
            "test_acc": test_acc,
        }


def interleave(candidates: dict, rounds: int, warm: int = 1) -> dict:
    """Run each candidate once per round, in turn; ``{name: {"cpu": [...], "wall": [...]}}``
    with one entry per round. A candidate returns None or a dict of extra numbers,
    kept per round under its name's ``"extra"``. The order rotates from round to round,
    so no candidate always follows the same one (and finds its caches, or the page
    cache, as that one left them)."""
    for fn in candidates.values():
        for _ in range(warm):
            fn()
    out = {name: {"cpu": [], "wall": [], "extra": []} for name in candidates}
    names = list(candidates)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = candidates[name]
            clock = Clock()
            extra = fn()
            t = clock.read()
            out[name]["cpu"].append(t["cpu"])
            out[name]["wall"].append(t["wall"])
            out[name]["extra"].append(extra)
    return out


def median(values) -> float:
    return float(np.median(values))


def repeat(fn, calls: int):
    """``fn`` called ``calls`` times, as one candidate."""

    def run():
        for _ in range(calls):
            fn()

    return run


class TimedNet:
    """A net (kmlp's, or the PyTorch twin) whose evaluations are timed into ``phases``;
    the epoch loop trains it as it trains any net."""

    def __init__(self, net, phases: Phases):
        self.net, self.phases = net, phases
        self.batch_norm = net.batch_norm

    def seed_statistics(self, X) -> None:
        self.net.seed_statistics(X)

    def train_step(self, X, y, lam: float, eta: float) -> float:
        return self.net.train_step(X, y, lam, eta)

    def evaluate(self, X, y, lam: float):
        clock = Clock()
        result = self.net.evaluate(X, y, lam)
        self.phases.evaluated(clock, X.shape[0])
        return result


def timed_run(load, settings: TrainSettings, seed: int = 1, wrap=None) -> dict:
    """A whole run (:func:`kmlp.nn.training.run`, writing no file) with its phases timed:
    the load, the evaluations (summed) and the updates (the rest). ``wrap`` turns kmlp's
    model into the net that is trained (the PyTorch twin)."""
    phases = Phases()
    ds = load()
    phases.loaded()
    _, result = run(settings, ds, seed, wrap=lambda model: TimedNet(wrap(model) if wrap else model, phases))
    updates = int(result.stopped_at or settings.total_updates)
    return phases.record(updates, result.status, result.final["val_acc"], result.final["test_acc"])
