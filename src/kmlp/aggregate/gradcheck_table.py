"""Gradient-check results (the JSON of `kmlp gradcheck`) as table rows."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import KmlpError

GRAD_STATS = ["grad_mean", "grad_std", "diff_mean", "diff_std", "diff_max", "rel_error", "max_elem_rel_error"]
GRAD_HEADER = ["check", "parameter", "shape", *GRAD_STATS, "kinks", "passed", "tolerance"]


def gradcheck_rows(checks) -> list[dict]:
    """One dict per (check, parameter) of parsed gradcheck JSON documents (GRAD_HEADER keys)."""
    out = []
    for doc in checks:
        for name, p in doc["parameters"].items():
            out.append(
                {
                    "check": doc["name"],
                    "parameter": name,
                    "shape": "x".join(str(int(d)) for d in p["shape"]),
                    **{k: float(p[k]) for k in GRAD_STATS},
                    "kinks": int(p.get("kinks", 0)),
                    "passed": "yes" if doc["passed"] else "no",
                    "tolerance": float(doc["tolerance"]),
                }
            )
    return out


def read_gradcheck(path) -> dict:
    """Parse and validate one gradcheck JSON file; any defect is one KmlpError."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc["parameters"], dict):
            raise TypeError("not a JSON object with a 'parameters' object")
        gradcheck_rows([doc])  # touches every field the tables need
    except FileNotFoundError:
        raise KmlpError(f"gradient-check file {path} does not exist") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KmlpError(f"gradient-check file {path} is malformed ({type(exc).__name__}: {exc})") from None
    return doc
