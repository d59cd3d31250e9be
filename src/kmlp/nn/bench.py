"""`kmlp bench`: training updates and whole training runs against their floors.

A floor is the time of the matrix products a computation cannot avoid, at the speed
this machine's BLAS reaches on them, measured in the same process. Candidates are
timed in turn, round after round (A B C A B C ...), so a slow spell of a shared
machine hits them alike, and the medians are reported. The clock that counts is the
CPU time of the process (what other jobs on the machine do not inflate); wall time is
kept beside it.

Nothing here reads files: a whole run gets its data from a ``load`` callable (the
command line passes the data set's loader, or :func:`synthetic_data`).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from .fast import EVAL_CHUNK
from .model import MLP
from .settings import TrainSettings
from .training import build_model, train

#: The nets of the report whose update is timed: widths of the hidden layers.
NETS = {"3-layer": (50, 50), "9-layer": (50, 30, 20, 20, 10, 10, 10, 10)}


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


# -- floors -------------------------------------------------------------------------
def _weights(sizes, rng, w1_in_out: bool):
    Ws = [(rng.standard_normal((sizes[i + 1], sizes[i])) * 0.02).astype(np.float32) for i in range(len(sizes) - 1)]
    return Ws, (np.ascontiguousarray(Ws[0].T) if w1_in_out else Ws[0].T)


def update_products(sizes, n_batch: int, w1_in_out: bool, seed: int = 0):
    """A callable doing the products of one update and nothing else, into preallocated
    arrays: s = h W^T for every layer, dW = g^T h for every layer, and g W for every
    layer but the first. ``w1_in_out`` stores W1 as d_in x d_out (kmlp's layout; the
    products are then x W1T and dW1T = x^T g), else as d_out x d_in."""
    rng = np.random.default_rng(seed)
    Ws, W1T = _weights(sizes, rng, w1_in_out)
    X = rng.standard_normal((n_batch, sizes[0]), dtype=np.float32)
    acts = [X] + [np.empty((n_batch, m), np.float32) for m in sizes[1:]]
    grads = [np.empty((n_batch, m), np.float32) for m in sizes[1:-1]]
    dWs = [np.empty(W.shape, np.float32) for W in Ws]
    dW1T = np.empty((sizes[0], sizes[1]), np.float32)
    k = len(Ws)

    def run():
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W1T if i == 0 else W.T, out=acts[i + 1])
        g = acts[-1]
        for i in range(k - 1, -1, -1):
            if i == 0 and w1_in_out:
                np.matmul(X.T, g, out=dW1T)
            else:
                np.matmul(g.T, acts[i], out=dWs[i])
            if i:
                np.matmul(g, Ws[i], out=grads[i - 1])
                g = grads[i - 1]

    return run


def eval_products(sizes, rows: int, w1_in_out: bool, seed: int = 0):
    """A callable doing the products of evaluating ``rows`` images: h W^T per layer."""
    rng = np.random.default_rng(seed)
    Ws, W1T = _weights(sizes, rng, w1_in_out)
    acts = [rng.standard_normal((rows, sizes[0]), dtype=np.float32)]
    acts += [np.empty((rows, m), np.float32) for m in sizes[1:]]

    def run():
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W1T if i == 0 else W.T, out=acts[i + 1])

    return run


def _repeat(fn, calls: int):
    def run():
        for _ in range(calls):
            fn()

    return run


# -- one update ---------------------------------------------------------------------
def measure_updates(
    nets=None,
    d_in: int = 3072,
    n_classes: int = 10,
    n_batch: int = 100,
    calls: int = 200,
    rounds: int = 7,
    seed: int = 0,
) -> dict:
    """Seconds per update of each net with and without batch norm (float32), beside
    the products alone in both layouts of W1, and the gather of a shuffled batch.

    ``ratio``: the update over the faster layout's products (the floor);
    ``ratio_dout_din``: over the products with W1 stored d_out x d_in, kmlp's layout
    before it stored W1 transposed (and the floor as earlier measurements defined it).
    """
    nets = NETS if nets is None else nets
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_batch, d_in), dtype=np.float32)
    y = rng.integers(0, n_classes, n_batch)
    candidates = {}
    for name, hidden in nets.items():
        sizes = [d_in, *hidden, n_classes]
        candidates[f"{name} floor d_out x d_in"] = update_products(sizes, n_batch, False, seed)
        candidates[f"{name} floor d_in x d_out"] = update_products(sizes, n_batch, True, seed)
        for bn in (False, True):
            model = MLP(sizes, batch_norm=bn, seed=seed, dtype=np.float32)
            candidates[f"{name} {'BN' if bn else 'no BN'}"] = lambda m=model: m.train_step(X, y, 0.005, 1e-3)
    n_train = max(45000, 2 * n_batch)
    pool = np.ones((n_train, d_in), np.float32)  # a training set's worth of rows, out of cache
    order, batch, pos = rng.permutation(n_train), np.empty_like(X), [0]

    def gather():
        start = pos[0] % (n_train - n_batch)
        np.take(pool, order[start : start + n_batch], axis=0, out=batch, mode="clip")
        pos[0] += n_batch

    candidates["gather"] = gather
    times = interleave({k: _repeat(fn, calls) for k, fn in candidates.items()}, rounds)
    per_call = {k: {c: median(v[c]) / calls for c in ("cpu", "wall")} for k, v in times.items()}
    out = {"n_batch": n_batch, "dtype": "float32", "d_in": d_in, "calls": calls, "rounds": rounds, "nets": {}}
    for name, hidden in nets.items():
        old, new = per_call[f"{name} floor d_out x d_in"], per_call[f"{name} floor d_in x d_out"]
        floor = {c: min(old[c], new[c]) for c in ("cpu", "wall")}
        entry = {
            "sizes": [d_in, *hidden, n_classes],
            "floor_s": floor,
            "floor_dout_din_s": old,
            "floor_din_dout_s": new,
        }
        for bn, key in ((False, "no_bn"), (True, "bn")):
            t = per_call[f"{name} {'BN' if bn else 'no BN'}"]
            entry[f"update_{key}_s"] = t
            entry[f"ratio_{key}"] = {c: t[c] / floor[c] for c in t}
            entry[f"ratio_{key}_dout_din"] = {c: t[c] / old[c] for c in t}
        out["nets"][name] = entry
    out["gather_s"] = per_call["gather"]
    return out


# -- a whole run ----------------------------------------------------------------------
def synthetic_data(
    n_train: int = 45000, n_val: int = 5000, n_test: int = 10000, d: int = 3072, n_classes: int = 10, seed: int = 0
):
    """CIFAR-shaped float32 data with some structure (class centres plus noise), so a run
    learns and does not diverge; in the attributes of a loaded data set."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, d), dtype=np.float32) * 0.1
    splits = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        y = rng.integers(0, n_classes, n)
        X = rng.standard_normal((n, d), dtype=np.float32)
        X += centres[y]
        splits[f"X_{split}"], splits[f"y_{split}"] = X, y
    return SimpleNamespace(**splits, class_names=[str(c) for c in range(n_classes)])


def kmlp_run(load, settings: TrainSettings, seed: int = 1) -> dict:
    """A whole run as `kmlp train` does it (writing the run file aside): load, train with
    the history's evaluations, evaluate on the test set. Phase times and counts."""
    phases = Phases()
    ds = load()
    phases.loaded()
    model = build_model(settings, ds.X_train.shape[1], len(ds.class_names), seed)
    evaluate = model.evaluate

    def timed_evaluate(X, y, lam=0.0):
        c = Clock()
        res = evaluate(X, y, lam)
        phases.evaluated(c, X.shape[0])
        return res

    model.evaluate = timed_evaluate
    result = train(model, ds.X_train, ds.y_train, ds.X_val, ds.y_val, settings, seed)
    with np.errstate(all="ignore"):
        test = model.evaluate(ds.X_test, ds.y_test, settings.lam)
    updates = int(result.stopped_at or settings.total_updates)
    return phases.record(updates, result.status, result.final["val_acc"], test[2])


def run_floor(sizes, n_batch: int, rows: int = EVAL_CHUNK, calls: int = 100, chunks: int = 3, seed: int = 0):
    """A callable timing a run's floor in place: ``calls`` updates' products and
    ``chunks`` evaluation chunks of ``rows`` images, each after one untimed call and in
    both layouts of W1 (the faster counts). Returns seconds per update and per evaluated
    image (CPU and wall); a run's floor is its numbers of updates and of evaluated
    images times these."""
    upd = {lay: update_products(sizes, n_batch, lay, seed) for lay in (False, True)}
    ev = {lay: eval_products(sizes, rows, lay, seed) for lay in (False, True)}

    def per_call(fn, n):
        fn()
        c = Clock()
        for _ in range(n):
            fn()
        return {k: v / n for k, v in c.read().items()}

    def run():
        best = {}
        for lay in (False, True):
            u, e = per_call(upd[lay], calls), per_call(ev[lay], chunks)
            t = {"update": u, "image": {k: v / rows for k, v in e.items()}}
            for unit in t:
                best[unit] = {k: min(best[unit][k], v) for k, v in t[unit].items()} if unit in best else t[unit]
        return best

    return run


def measure_run(
    load, settings: TrainSettings, rounds: int = 3, torch: bool = True, seed: int = 1, threads: int = 1
) -> dict:
    """A whole run (load, training, the history's evaluations, final evaluation) beside
    its floor and, when PyTorch is installed and ``torch`` is true, the same training in
    PyTorch, interleaved in ``rounds`` rounds. Each round's floor is that round's
    products-only time per update and per image times the run's counts; ratios are per
    round, then medians."""
    torch_info, candidates = {"available": False}, {}
    ds = load()
    settings.check_data(ds.X_train.shape[0])
    sizes = [ds.X_train.shape[1], *settings.hidden, len(ds.class_names)]
    rows = min(EVAL_CHUNK, ds.X_train.shape[0])
    del ds
    candidates["floor"] = run_floor(sizes, settings.n_batch, rows, seed=seed)
    candidates["kmlp"] = lambda: kmlp_run(load, settings, seed)
    if torch:
        from . import torch_baseline

        torch_info = torch_baseline.info()
        if torch_info["available"]:
            candidates["torch"] = lambda: torch_baseline.torch_run(load, settings, seed, threads)
    times = interleave(candidates, rounds, warm=0)
    floors = times["floor"]["extra"]
    out = {"settings": settings.as_dict(), "sizes": sizes, "rounds": rounds, "torch": torch_info, "runs": {}}
    for unit in ("update", "image"):
        out[f"floor_per_{unit}_s"] = {c: median([f[unit][c] for f in floors]) for c in ("cpu", "wall")}
    for name in candidates:
        if name == "floor":
            continue
        t, extras = times[name], times[name]["extra"]
        run_floors = [
            {c: e["updates"] * f["update"][c] + e["evaluated_images"] * f["image"][c] for c in ("cpu", "wall")}
            for e, f in zip(extras, floors, strict=True)
        ]
        entry = {
            "per_round": {c: t[c] for c in ("cpu", "wall")},
            "floor_per_round": run_floors,
            "total_s": {c: median(t[c]) for c in ("cpu", "wall")},
            "floor_s": {c: median([f[c] for f in run_floors]) for c in ("cpu", "wall")},
            "ratio": {c: median([a / f[c] for a, f in zip(t[c], run_floors, strict=True)]) for c in ("cpu", "wall")},
        }
        for key in ("load_s", "updates_s", "evaluation_s"):
            entry[key] = {c: median([e[key][c] for e in extras]) for c in ("cpu", "wall")}
        for key in ("updates", "evaluated_images", "status", "val_acc", "test_acc"):
            entry[key] = extras[-1][key]
        out["runs"][name] = entry
    if "torch" in out["runs"]:
        out["speedup_over_torch"] = {
            c: median([a / b for a, b in zip(times["torch"][c], times["kmlp"][c], strict=True)])
            for c in ("cpu", "wall")
        }
    return out
