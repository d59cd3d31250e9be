"""CSV files that start with comment lines of provenance, read back as dicts; and the
number formats the LaTeX and Markdown outputs share."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

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


def csv_value(x) -> str:
    """Full precision for floats (repr round-trips), '' for missing."""
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else "nan"
    return str(x)


def prov_lines(prov: dict, extra: dict | None = None) -> list[str]:
    items = {**prov, **(extra or {})}
    return [f"{k}: {v if v != '' else '(not given)'}" for k, v in items.items()]


def csv_text(header, rows, comments) -> str:
    buf = io.StringIO()
    for line in comments:
        buf.write(f"# {line}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([csv_value(row[k]) for k in header])
    return buf.getvalue()


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
