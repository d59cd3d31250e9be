"""The tiny study's numbers, read from a finished project, and their check against the
values recorded in golden/tiny_numbers.json with tolerances measured across BLAS kernels.

test_tiny_numbers.py runs the check on every machine; test_golden.py runs it before it
records new hashes. How the tolerances are made: :func:`tolerances`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from kmlp.aggregate.tabular import read_csv, to_float
from kmlp.nn.metrics import FINAL_METRICS
from kmlp.runs import read_run

REPO = Path(__file__).resolve().parents[1]
NUMBERS = Path(__file__).parent / "golden" / "tiny_numbers.json"

#: Ten times the largest difference the two kernels give: two kernels are a sample of two
#: (another CPU's kernel, or NumPy's SIMD code for another CPU, may land farther off), and
#: a change of the code moves these numbers by orders of magnitude more (a changed
#: initialisation, learning rate, lambda or data moves a final cost by more than 1e-2).
MULTIPLE = 10.0
#: The least tolerance of each kind, for kinds the kernels give identical values (spread 0):
#: accuracies and what is made of them alone are counts of images over 30 or 100; half of
#: 1/100 keeps "every image classified as recorded" (as both kernels do) and tolerates
#: nothing else. z: half the last digit the record shows. The float kinds: a few ulps of
#: their scale, never reached (their spread is far larger).
FLOOR = {
    "accuracy": 0.005,
    "accuracy statistic": 0.005,
    "z": 0.05,
    "cost": 1e-6,
    "gradient": 1e-12,
    "gradcheck error": 1e-13,
    "lambda": 1e-12,
}
#: The summary's verdict inputs (kmlp.aggregate.stats.summary_frame's columns).
SUMMARY = ("mean", "std", "s_seed", "sigma", "lo", "hi", "z")


def kind(name: str) -> str:
    """What a number is, from its name: ``run small-bn/seed1 val_acc`` is an accuracy."""
    what, *_, field = name.split()
    if what == "run":
        return "accuracy" if field.endswith("_acc") else "cost"
    if what == "gradcheck":
        return "gradcheck error" if "error" in field else "gradient"
    if what == "summary":
        return "z" if field == "z" else "accuracy statistic"
    return "verdict" if what == "verdict" else "lambda"


def numbers(root: Path) -> dict:
    """Every number of the tiny study that a change of the math or the statistics moves:
    each run's final losses, costs and accuracies; each gradient check's analytic gradient
    statistics and errors; each row of the summary's verdict inputs (mean, std, the seed
    spread, one run's sigma and interval, z) and its verdict; the lambda the search picks.
    Name -> float (None for NaN), or str for a verdict."""
    found: dict = {}
    for path in sorted((root / "results" / "runs").glob("*/*.h5")):
        run = read_run(path)
        for metric in FINAL_METRICS:
            found[f"run {run.experiment}/seed{run.seed} {metric}"] = run.final[metric]
    for path in sorted((root / "results" / "gradcheck").glob("*.json")):
        doc = json.loads(path.read_text())
        found[f"gradcheck {doc['name']} max_rel_error"] = doc["max_rel_error"]
        for param, stats in doc["parameters"].items():
            for field in ("grad_mean", "grad_std", "rel_error"):
                found[f"gradcheck {doc['name']} {param} {field}"] = stats[field]
    _, rows = read_csv(root / "results" / "tables" / "summary.csv")
    for row in rows:
        for field in SUMMARY:
            found[f"summary {row['experiment']} {row['metric']} {field}"] = to_float(row[field])
        found[f"verdict {row['experiment']} {row['metric']}"] = row["verdict"]
    best = json.loads((root / "results" / "lambda_search" / "best.json").read_text())["best"]
    found["lambda_search best lam"] = best["lam"]
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in found.items()}


def fingerprint() -> str:
    """The code and inputs the tiny study's numbers come from (the package, the workflow,
    the tiny config and the fake archive's maker): recordings made under different kernels
    must share it, so that their spread is the kernels' and not a change of the code."""
    h = hashlib.sha256()
    files = [*sorted((REPO / "src" / "kmlp").rglob("*.py")), *sorted((REPO / "workflow").rglob("*"))]
    files += [REPO / ".test" / "config" / "config.yaml", REPO / "tests" / "cifar_fake.py"]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(f"{path.relative_to(REPO).as_posix()}\n".encode() + path.read_bytes())
    return h.hexdigest()


def kernel() -> str:
    """The BLAS kernel this process uses (OpenBLAS's architecture), the recordings' key."""
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info() if i["user_api"] == "blas"]
    return "; ".join(blas) or "none"


def recordings() -> dict:
    return json.loads(NUMBERS.read_text())["recordings"] if NUMBERS.exists() else {}


def record(found: dict) -> None:
    """Store this kernel's numbers (KMLP_UPDATE_NUMBERS=1), beside the other kernels'."""
    rec = recordings()
    rec[kernel()] = {"fingerprint": fingerprint(), "numbers": found}
    NUMBERS.write_text(json.dumps({"recordings": rec}, indent=1, sort_keys=True) + "\n")


def spreads(recs: dict) -> dict:
    """The largest absolute difference between two recordings, per kind of number."""
    spread = dict.fromkeys(FLOOR, 0.0)
    values = [r["numbers"] for r in recs.values()]
    for name in values[0]:
        xs = [v[name] for v in values]
        if all(isinstance(x, float | int) and not isinstance(x, bool) for x in xs):
            spread[kind(name)] = max(spread[kind(name)], max(xs) - min(xs))
    return spread


def tolerances(recs: dict) -> dict:
    """Per kind of number: ``max(MULTIPLE * spread, FLOOR)``, the spread being the largest
    absolute difference of a number of that kind between the recordings (one per BLAS
    kernel: SkylakeX and Haswell on our machines, made from the same code)."""
    return {k: max(MULTIPLE * s, FLOOR[k]) for k, s in spreads(recs).items()}


def differences(found: dict, recs: dict) -> list[str]:
    """What of ``found`` lies outside the tolerance of any recording (empty: all agree)."""
    made = {r["fingerprint"] for r in recs.values()}
    if len(recs) < 2 or len(made) > 1:
        return [
            f"{len(recs)} recordings from {len(made)} versions of the code: the tolerances need one per kernel "
            "(SkylakeX, Haswell), all from the same code. Record with KMLP_UPDATE_NUMBERS=1 under each kernel."
        ]
    tol = tolerances(recs)
    out = []
    for label, rec in sorted(recs.items()):
        want = rec["numbers"]
        for name in sorted(set(want) - set(found)):
            out.append(f"{name}: recorded ({label}) but not made")
        for name in sorted(set(found) - set(want)):
            out.append(f"{name}: made but not recorded ({label})")
        for name in sorted(set(found) & set(want)):
            got, ref = found[name], want[name]
            if isinstance(ref, str) or ref is None or got is None:
                if got != ref:
                    out.append(f"{name}: {got!r}, recorded ({label}) {ref!r}")
            elif abs(got - ref) > tol[kind(name)]:
                out.append(
                    f"{name}: {got!r}, recorded ({label}) {ref!r}, off by {abs(got - ref):.3g} > "
                    f"tolerance {tol[kind(name)]:.3g} ({kind(name)})"
                )
    return out


def check(root: Path) -> list[str]:
    """The tiny study in ``root`` against the recordings: what differs (empty: nothing).

    With KMLP_UPDATE_NUMBERS=1, this kernel's numbers are recorded first (a change meant
    to move numbers: run it under each kernel, as for the golden hashes)."""
    found = numbers(root)
    if os.environ.get("KMLP_UPDATE_NUMBERS"):
        record(found)
    return differences(found, recordings())
