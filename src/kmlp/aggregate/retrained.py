"""Runs trained again beside the record's rows for them (``kmlp check-runs``).

The record is made once, at the report's scale; CI trains one seed of each training
setting again and asks whether the code that landed still gives those rows. A run trained
again whole is compared on its final metrics; a partial one (``kmlp train --evaluations 1``:
its first epoch, a seventh of its time or less) on its history at that evaluation, which the
record's data keeps for every run (``early_*``): the same numbers the whole run passes
through, so the same code gives them bit for bit. Where the numeric environment is the one
that made a row, the same seed must give the same numbers bit for bit. Elsewhere a BLAS
kernel of its own turns rounding into seed-like noise (docs/notes.md measures it), so a
number must lie within ``k`` standard deviations of the difference of two seeds (the row's
configuration's seed spread in the record's data, times sqrt(2)), and, per metric, the mean
of those standardised differences over the configurations within ``k`` standard errors: a
shift shared by every run (a change that moves all accuracies by 0.02) is found even where
each number alone stays inside.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..environment import describe
from ..errors import KmlpError
from ..nn.metrics import FINAL_METRICS
from .record_data import EARLY_COLUMNS, HISTORY_METRICS, runs_frame, runs_of_rows
from .tabular import read_csv, to_float

#: The columns of the comparison: one row per (experiment, seed, metric).
COLUMNS = ["experiment", "seed", "metric", "record", "retrained", "difference", "basis", "tolerance", "ok"]


#: What a partial run is compared on: its history at its last evaluation.
EARLY = tuple(f"early_{m}" for m in HISTORY_METRICS)


def record_frame(path) -> pd.DataFrame:
    """A record's data file as :func:`~kmlp.aggregate.record_data.runs_frame` gives it,
    each row's numeric environment and early columns included (checked as ``kmlp
    check-record`` reads it; the early columns empty in a record made before them)."""
    _, rows = read_csv(path)
    frame = runs_frame(runs_of_rows(rows, path)).assign(environment=[r["environment"] for r in rows])
    for c in EARLY_COLUMNS:
        frame[c] = [to_float(r.get(c, "")) for r in rows]
    return frame


def _spread(rows: pd.DataFrame, metrics) -> pd.DataFrame:
    """Each experiment's seed standard deviation of each metric (ddof 1), from the rows of
    the record's data that share the environment of most of its rows."""
    env = rows["environment"].mode().iloc[0]
    same = rows[rows["environment"] == env]
    return same.groupby("experiment")[list(metrics)].std(ddof=1)


def compare_runs(record: pd.DataFrame, retrained, k: float, early: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The retrained runs against their rows in ``record`` (a record's data,
    :func:`record_frame`): their final metrics, or with ``early`` their history at the first
    evaluation after step 0 (a partial run's, ``kmlp train --evaluations 1``, or a whole
    one's) against the record's early columns; a row per number, and per metric the mean
    standardised difference over the runs compared on the spread."""
    if not early:
        partial = [f"{r.experiment} seed {r.seed}" for r in retrained if r.status == "partial"]
        if partial:
            raise KmlpError(f"partial runs have no final metrics to compare ({', '.join(partial)}): use --early")
        return _compare(record, runs_frame(retrained), k, list(FINAL_METRICS), early=False)
    if record["early_step"].isna().all():
        raise KmlpError(
            "the record's data keeps no early columns (made before them): only whole runs' final metrics can "
            "be compared; make the record's data again (kmlp record --out-runs) to compare first epochs"
        )
    rows = []
    for r in retrained:
        if len(r.history["step"]) < 2:
            raise KmlpError(f"{r.experiment} seed {r.seed} has no evaluation after step 0 to compare")
        row = {"experiment": r.experiment, "seed": r.seed, "status": r.status}
        row["environment"] = describe(r.environment) or "unknown"
        row["early_step"] = float(r.history["step"][1])
        row.update({f"early_{m}": float(r.history[m][1]) for m in HISTORY_METRICS})
        rows.append(row)
    return _compare(record, pd.DataFrame(rows), k, ["early_step", *EARLY], early=True)


def _compare(record: pd.DataFrame, mine: pd.DataFrame, k: float, metrics: list, early: bool):
    keys = ["experiment", "seed"]
    missing = mine.merge(record[keys], on=keys, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    if len(missing):
        names = ", ".join(f"{e} seed {s}" for e, s in zip(missing["experiment"], missing["seed"], strict=True))
        raise KmlpError(f"the record's data has no row for {names}: nothing to compare with")
    if mine.duplicated(keys).any():
        raise KmlpError("a run is given twice: each (experiment, seed) once")
    spread = _spread(record[record["experiment"].isin(mine["experiment"])], metrics)
    both = mine.merge(record[[*keys, "status", "environment", *metrics]], on=keys, suffixes=("", "_record"))
    rows = []
    for _, r in both.iterrows():
        bitwise = r["environment"] == r["environment_record"]
        for m in metrics:
            new, old = float(r[m]), float(r[f"{m}_record"])
            s = float(spread.at[r["experiment"], m]) if r["experiment"] in spread.index else math.nan
            tol = 0.0 if bitwise or m == "early_step" else k * math.sqrt(2) * s
            same = new == old or (math.isnan(new) and math.isnan(old))
            # a first epoch: its step says where it stopped (a partial run's status is its own)
            status_ok = early or r["status"] == r["status_record"]
            ok = (same or (not bitwise and abs(new - old) <= tol)) and status_ok
            basis = "bitwise" if bitwise else "spread"
            rows.append([r["experiment"], r["seed"], m, old, new, new - old, basis, tol, ok])
    table = pd.DataFrame(rows, columns=COLUMNS)
    on_spread = table[(table["basis"] == "spread") & (table["tolerance"] > 0)]
    z = on_spread["difference"] / (on_spread["tolerance"] / k)
    joint = (
        z.groupby(on_spread["metric"]).agg(["mean", "count"]).reindex(metrics).dropna()
        .assign(bound=lambda d: k / np.sqrt(d["count"]))
        .assign(ok=lambda d: d["mean"].abs() <= d["bound"])
        .rename(columns={"mean": "mean_z", "count": "runs"})
        .rename_axis("metric").reset_index()
    )  # fmt: skip
    return table, joint


def report(table: pd.DataFrame, joint: pd.DataFrame, k: float) -> list[str]:
    """What was compared, on which basis, and every number outside its bound, a line each."""
    runs = table[["experiment", "seed"]].drop_duplicates()
    bitwise = table[table["basis"] == "bitwise"]
    out = [
        f"{len(runs)} runs trained again, {len(table)} numbers compared with the record's rows: "
        f"{len(bitwise)} bit for bit (same numeric environment), {len(table) - len(bitwise)} within "
        f"{k:g} x sqrt(2) x their configuration's seed std (another environment)"
    ]
    for _, r in table.iterrows():
        if r["basis"] == "bitwise":
            state = "identical" if r["ok"] else "DIFFERENT"
        else:
            state = f"|d| <= {r['tolerance']:.2g}" if r["ok"] else f"OUTSIDE {r['tolerance']:.2g}"
        if r["metric"].endswith("_acc") or not r["ok"]:  # the accuracies, and whatever failed
            out.append(
                f"  {r['experiment']} seed {r['seed']} {r['metric']}: record {r['record']:.6f}, "
                f"retrained {r['retrained']:.6f} (d = {r['difference']:+.2e}): {state}"
            )
    for _, j in joint.iterrows():
        out.append(
            f"  mean standardised difference of {j['metric']} over {int(j['runs'])} runs: "
            f"{j['mean_z']:+.2f} (bound {j['bound']:.2f}): {'ok' if j['ok'] else 'SHIFTED'}"
        )
    bad = int((~table["ok"]).sum()) + int((~joint["ok"]).sum())
    verdict = f"do NOT match the record's rows: {bad} number(s) or mean(s) out of bounds" if bad else "match its rows"
    out.append(f"the retrained runs {verdict}")
    return out
