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
