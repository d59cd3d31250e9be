"""CSV files that start with comment lines of provenance, read back as dicts; and the
number formats the LaTeX and Markdown outputs share."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd

from ..errors import KmlpError


def to_float(x) -> float:
    """A number, or NaN for anything that is not one (a CSV cell may be empty)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def fmt3(x) -> str:
    """Three decimals, or n/a for a missing or non-finite value."""
    x = to_float(x)
    return f"{x:.3f}" if math.isfinite(x) else "n/a"


def collapsed_runs(r) -> int:
    """How many of a number's runs collapsed to chance (0 where the column is empty)."""
    k = to_float(r.get("collapsed"))
    return int(k) if math.isfinite(k) else 0


def split_text(r) -> str:
    """A number whose runs collapsed, as what it is: ``3 of 5 at chance (0.100); 2 at
    0.523 ± 0.004``; empty for any other number."""
    k, n = collapsed_runs(r), int(to_float(r["n"]))
    if not k:
        return ""
    text = f"{k} of {n} at chance ({fmt3(r['chance'])})"
    mean, std = to_float(r["learned_mean"]), to_float(r["learned_std"])
    if k < n:
        text += f"; {n - k} at {mean:.3f}" + (f" ± {std:.3f}" if math.isfinite(std) else "")
    return text


def interval_text(r) -> str:
    """The values one run of ours takes with 95 % probability: ``[lo, hi]``, or for a number
    judged by its collapse rate the chance value with that rate's exact 95 % interval."""
    lo, hi = to_float(r["lo"]), to_float(r["hi"])
    band = f"[{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else ""
    if r.get("by") == "collapse rate":
        k, n = collapsed_runs(r), int(to_float(r["n"]))
        rate = (f"{fmt3(r['chance'])} with p = {k}/{n} "
                f"[{to_float(r['p_collapse_lo']):.2f}, {to_float(r['p_collapse_hi']):.2f}]")  # fmt: skip
        return rate + (f", or {band}" if band else "")
    return band or "n/a"


def verdict_text(r, z: bool = False) -> str:
    """The verdict, with z if asked, and how it was reached where it was not by the interval:
    ``consistent (z = -0.4)``, ``consistent (by collapse rate)``."""
    if not r.get("verdict"):
        return ""
    notes = [f"z = {to_float(r['z']):.1f}"] if z and math.isfinite(to_float(r.get("z"))) else []
    notes += [f"by {r['by']}"] if r.get("by") not in ("interval", "", None) else []
    return r["verdict"] + (f" ({', '.join(notes)})" if notes else "")


def prov_lines(prov: dict, extra: dict | None = None) -> list[str]:
    items = {**prov, **(extra or {})}
    return [f"{k}: {v if v != '' else '(not given)'}" for k, v in items.items()]


def csv_text(frame: pd.DataFrame, comments) -> str:
    """Comment lines, then the frame: floats at full precision, missing values empty."""
    return "".join(f"# {line}\n" for line in comments) + frame.to_csv(index=False, lineterminator="\n", na_rep="")


def read_csv(path) -> tuple[dict, list[dict]]:
    """Read a CSV written here: ``(comment key/values, rows as dicts of strings)``."""
    path = Path(path)
    if not path.exists():
        raise KmlpError(f"CSV file {path} does not exist")
    meta, body = {}, []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(": ")
            meta[key] = value
        elif line.strip():
            body.append(line)
    if not body:
        raise KmlpError(f"CSV file {path} has no header line")
    return meta, list(csv.DictReader(body))


def recorded_lambda(path, experiment: str, seed: int) -> float:
    """The lambda a run of the record's data (``kmlp record --out-runs``) was trained with:
    what a lambda search run is trained again with, its passes not searched again."""
    _, rows = read_csv(path)
    lam = [r.get("lam", "") for r in rows if (r["experiment"], r["seed"]) == (experiment, str(seed))]
    if not lam or not lam[0]:
        raise KmlpError(
            f"{path} gives no lambda for {experiment} seed {seed}: the record check cannot train it"
            " again without the lambda search"
        )
    return float(lam[0])
