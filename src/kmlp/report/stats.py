"""The arithmetic of the tables: our mean and spread per experiment beside the report's
number, and the verdict."""

from __future__ import annotations

import math

import numpy as np

from ..errors import KmlpError
from ..runs import FINAL_METRICS
from .grouping import paper_value, unique

TABLE_HEADER = ["row", "column", "experiment", "metric", "n", "mean", "std", "paper", "verdict"]
SUMMARY_HEADER = ["experiment", "metric", "paper", "mean", "std", "n", "diverged", "verdict", "reading"]
# The report's own numbers come first, in this order; any other metric follows.
METRIC_ORDER = ["val_acc", "test_acc"] + [m for m in FINAL_METRICS if m not in ("val_acc", "test_acc")]


def verdict(paper, mean, std, n, within_std: float) -> str:
    """ "yes" if the paper's value lies within ``within_std`` sample stds of our mean.

    A tiny absolute slack lets a zero std with equal values count as reproduced despite
    rounding in the mean.
    """
    if paper is None:
        return ""
    if n == 0 or not math.isfinite(mean):
        return "n/a"
    return "yes" if abs(paper - mean) <= within_std * std + 1e-12 else "no"


def cell_stats(values, paper=None, within_std: float = 2.0) -> dict:
    """Mean and sample std (ddof=1; 0 for a single value) of the finite ``values``."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    mean = float(v.mean()) if n else math.nan
    std = float(v.std(ddof=1)) if n > 1 else (0.0 if n == 1 else math.nan)
    paper = None if paper is None else float(paper)
    return {"n": n, "mean": mean, "std": std, "paper": paper, "verdict": verdict(paper, mean, std, n, within_std)}


def experiment_stats(members, metric, within_std):
    """Stats over the completed runs; diverged runs are counted, not averaged."""
    done = [r.final[metric] for r in members if r.status != "diverged"]
    stats = cell_stats(done, paper_value(members, metric), within_std)
    stats["diverged"] = sum(r.status == "diverged" for r in members)
    return stats


def table_rows(groups: dict, spec: dict, within_std: float = 2.0) -> list[dict]:
    """One dict per cell of a grid table (``config["tables"][...]``), row by row."""
    for key in ("metric", "columns", "rows"):
        if key not in spec:
            raise KmlpError(f"the table spec lacks the key {key!r} (it has {sorted(spec)})")
    metric, columns = spec["metric"], list(spec["columns"])
    # A column may show another metric of the same runs (e.g. test beside validation).
    metrics = list(spec.get("column_metrics") or [metric] * len(columns))
    if len(metrics) != len(columns):
        raise KmlpError(f"the table has {len(columns)} columns but {len(metrics)} column_metrics")
    for m in {metric, *metrics}:
        if m not in FINAL_METRICS:
            raise KmlpError(f"the table metric {m!r} is not one of {list(FINAL_METRICS)}")
    wanted = [e for exps in spec["rows"].values() for e in exps]
    missing = unique(e for e in wanted if e not in groups)
    if missing:
        raise KmlpError(f"no run file was given for experiment(s) {', '.join(missing)}")
    out = []
    for row, exps in spec["rows"].items():
        if len(exps) != len(columns):
            raise KmlpError(f"table row {row!r} has {len(exps)} experiments for {len(columns)} columns")
        for column, col_metric, exp in zip(columns, metrics, exps, strict=True):
            stats = experiment_stats(groups[exp], col_metric, within_std)
            out.append({"row": str(row), "column": column, "experiment": exp, "metric": col_metric, **stats})
    return out


def summary_rows(groups: dict, within_std: float = 2.0, readings: dict | None = None) -> list[dict]:
    """Every number of the report (any run's ``paper`` entry) beside ours.

    ``readings`` names, per experiment, the alternative reading of the report it tests
    (empty for the report's setting as the config states it).
    """
    readings = readings or {}
    out = []
    for exp, members in groups.items():
        metrics = {m for r in members for m in r.paper}
        unknown = sorted(metrics - set(FINAL_METRICS))
        if unknown:
            raise KmlpError(f"experiment {exp} has paper values for unknown metric(s) {unknown}")
        for metric in (m for m in METRIC_ORDER if m in metrics):
            out.append(
                {
                    "experiment": exp,
                    "metric": metric,
                    **experiment_stats(members, metric, within_std),
                    "reading": readings.get(exp, ""),
                }
            )
    return out
