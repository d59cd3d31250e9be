"""The course's coarse-to-fine random search for lambda: pick the best, draw the next grid."""

from __future__ import annotations

import math

import numpy as np


def random_lambdas(n: int, log10_min: float, log10_max: float, seed: int) -> list[float]:
    """``n`` values of lambda, log10-uniform in [log10_min, log10_max], reproducibly.

    Stratified: one draw in each of ``n`` equal slices of the interval, so that no stretch
    of it is left untried by chance (a plain draw of 8 over four decades can leave the best
    decade empty, and the search then picks among the wrong values).
    """
    if n < 1 or not log10_min < log10_max:
        raise ValueError(f"need n >= 1 and log10_min < log10_max, got {n}, {log10_min}, {log10_max}")
    width = (log10_max - log10_min) / n
    exps = log10_min + width * (np.arange(n) + np.random.default_rng(seed).uniform(0, 1, n))
    return [float(f"{10.0**e:.6g}") for e in exps]


def rank(runs, passes: dict | None = None) -> list[dict]:
    """Experiments by mean final validation accuracy over seeds, best first.

    ``passes`` names the search pass of each experiment (e.g. coarse, fine); every entry
    gets a ``label`` that tells it apart from all others in a table: its lambda with as
    many digits as that takes (3 at least) and its pass.
    """
    by_exp: dict[str, dict] = {}
    for run in runs:
        entry = by_exp.setdefault(
            run.experiment, {"experiment": run.experiment, "lam": run.settings["lam"], "accs": []}
        )
        if entry["lam"] != run.settings["lam"]:
            raise ValueError(f"runs of {run.experiment} disagree on lambda")
        if run.status == "completed" and math.isfinite(run.final["val_acc"]):
            entry["accs"].append(run.final["val_acc"])
    ranked = []
    for e in by_exp.values():
        acc = float(np.mean(e["accs"])) if e["accs"] else float("nan")
        ranked.append(
            {
                "experiment": e["experiment"],
                "pass": (passes or {}).get(e["experiment"], "search"),
                "lam": e["lam"],
                "val_acc": acc,
                "n": len(e["accs"]),
            }
        )
    ranked.sort(key=lambda r: (-r["val_acc"] if math.isfinite(r["val_acc"]) else math.inf, r["lam"]))
    if not ranked or not math.isfinite(ranked[0]["val_acc"]):
        raise ValueError("no completed run to pick a lambda from")
    for entry, label in zip(ranked, _labels(ranked), strict=True):
        entry["label"] = label
    return ranked


def _labels(ranked) -> list[str]:
    for digits in range(3, 18):
        labels = [f"{r['lam']:.{digits}g} ({r['pass']})" for r in ranked]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{r['lam']:.17g} ({r['pass']}: {r['experiment']})" for r in ranked]
