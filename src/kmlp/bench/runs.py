"""Updates and whole runs against their floors (and the PyTorch twin), interleaved."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..data.cifar import N_CLASSES, N_DIM, TEST_IMAGES, TRAIN_IMAGES
from ..nn.fast import EVAL_CHUNK
from ..nn.model import MLP
from ..nn.settings import TrainSettings
from .floors import run_floor, update_products
from .timing import interleave, median, repeat, timed_run


def measure_updates(
    nets: dict,
    d_in: int = N_DIM,
    n_classes: int = 10,
    n_batch: int = 100,
    calls: int = 200,
    rounds: int = 7,
    seed: int = 0,
) -> dict:
    """Seconds per update of each net (name -> hidden widths) with and without batch norm
    (float32), beside the products alone in both layouts of W1, and the gather of a
    shuffled batch.

    ``ratio``: the update over the faster layout's products (the floor);
    ``ratio_dout_din``: over the products with W1 stored d_out x d_in, kmlp's layout
    before it stored W1 transposed (and the floor as earlier measurements defined it).
    """
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
    n_train = max(TRAIN_IMAGES, 2 * n_batch)
    pool = np.ones((n_train, d_in), np.float32)  # a training set's worth of rows, out of cache
    order, batch, pos = rng.permutation(n_train), np.empty_like(X), [0]

    def gather():
        start = pos[0] % (n_train - n_batch)
        np.take(pool, order[start : start + n_batch], axis=0, out=batch, mode="clip")
        pos[0] += n_batch

    candidates["gather"] = gather
    times = interleave({k: repeat(fn, calls) for k, fn in candidates.items()}, rounds)
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


def synthetic_data(
    n_train: int = TRAIN_IMAGES - 5000,
    n_val: int = 5000,
    n_test: int = TEST_IMAGES,
    d: int = N_DIM,
    n_classes: int = N_CLASSES,
    seed: int = 0,
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
    """A whole run as `kmlp train` makes it, timed by phase (:func:`.timing.timed_run`)."""
    return timed_run(load, settings, seed)


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
        from . import torch_twin

        torch_info = torch_twin.info()
        if torch_info["available"]:
            candidates["torch"] = lambda: torch_twin.torch_run(load, settings, seed, threads)
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
