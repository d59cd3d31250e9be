"""The tiny study's numbers, read from a finished project, and their check against the
values recorded in golden/tiny_numbers.json, with tolerances that hold on machines that
recorded nothing.

test_tiny_numbers.py runs the check on every machine; test_golden.py runs it before it
records new hashes; ``python tests/tiny_numbers.py record`` makes the recordings. How the
tolerances are made: :func:`tolerances`; why they hold elsewhere: tests/README.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from kmlp.aggregate.tabular import read_csv, to_float
from kmlp.nn.metrics import FINAL_METRICS
from kmlp.runs import read_run

REPO = Path(__file__).resolve().parents[1]
NUMBERS = Path(__file__).parent / "golden" / "tiny_numbers.json"
TINY_CONFIG = REPO / ".test" / "config" / "config.yaml"

#: The numeric settings the recordings are made under, each an environment overlay: three
#: OpenBLAS kernels that every x86-64 CPU with AVX2 runs (so any of our machines can record
#: them again). Their spread sets the tolerances.
RECORD = {
    "Haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "Sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "Prescott": {"OPENBLAS_CORETYPE": "Prescott"},
}
#: Settings that set no tolerance and must lie within them: another OpenBLAS kernel, and
#: NumPy without its dispatched SIMD loops (exp, log, sums: NPY_DISABLE_CPU_FEATURES with
#: every dispatch target this CPU has, AVX-512's included where it has them). .ci/run runs
#: test_tiny_numbers.py under both.
HELD_OUT = {"Nehalem": {"OPENBLAS_CORETYPE": "Nehalem"}, "numpy-baseline": {"NPY_DISABLE_CPU_FEATURES": "{dispatch}"}}

#: Ten times the largest difference the recorded settings give, for the kinds rounding moves
#: smoothly (costs, gradient statistics): the recordings are a sample of three, so a fourth
#: setting may land farther off (the held-out ones land within a fifth of it: tests/README.md),
#: and a change of the code moves these numbers by orders of magnitude more (a changed
#: initialisation, learning rate, lambda or data moves a final cost by more than 1e-2).
MULTIPLE = 10.0
#: The least tolerance of each kind, for kinds every setting gives identically (spread 0):
#: accuracies and what is made of them alone are counts of images over 30 or 100; half of
#: 1/100 keeps "every image classified as recorded" (as every setting we ran does) and
#: tolerates nothing else. z: half the last digit the record shows. The float kinds: a few
#: ulps of their scale, never reached (their spread is far larger).
FLOOR = {"accuracy": 0.005, "accuracy statistic": 0.005, "z": 0.05, "cost": 1e-6, "gradient": 1e-12, "lambda": 1e-12}
#: A gradient check's relative error is rounding noise (about 1e-10 for centred differences
#: of step 1e-5 in float64): its value on another kernel is not bounded by the recordings'
#: spread. It must stay below its check's own threshold, and within BAND times the
#: recordings' geometric mean either way (an order of magnitude: the recorded and held-out
#: settings differ by at most 2.1x; a wrong gradient or step moves it by several orders).
#: A recorded 0 is a gradient compared absolutely (all below 1e-8: kmlp.nn.gradcheck), and
#: stays 0.
BAND = 10.0
#: The summary's verdict inputs (kmlp.aggregate.stats.summary_frame's columns).
SUMMARY = ("mean", "std", "s_seed", "sigma", "lo", "hi", "z")
#: Code that makes no number of the tiny study (figures, documents, the cluster's cost
#: model, the bench): left out of the fingerprint, so a change there needs no new recording.
NOT_NUMERIC = (
    "src/kmlp/bench/",
    "src/kmlp/study/cost.py",
    "src/kmlp/aggregate/figures.py",
    "src/kmlp/aggregate/document.py",
    "src/kmlp/aggregate/latex.py",
    "src/kmlp/aggregate/diagnose.py",
    "src/kmlp/cli/bench.py",
    "workflow/report/",
)


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
    """The code and inputs the tiny study's numbers come from: the package and the workflow
    less NOT_NUMERIC, the tiny config and the fake archive's maker. The recordings must carry
    the running code's, so that their spread is the kernels' and their values this code's."""
    h = hashlib.sha256()
    files = [*sorted((REPO / "src" / "kmlp").rglob("*.py")), *sorted((REPO / "workflow").rglob("*"))]
    files += [TINY_CONFIG, REPO / "tests" / "cifar_fake.py"]
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and not rel.startswith(NOT_NUMERIC):
            h.update(f"{rel}\n".encode() + path.read_bytes())
    return h.hexdigest()


def numpy_dispatch() -> list[str]:
    """The SIMD targets NumPy dispatches to on this CPU (empty: its baseline loops only)."""
    from numpy._core import _multiarray_umath as umath

    return [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]


def kernel() -> str:
    """The numeric setting this process computes in: OpenBLAS's kernel and NumPy's SIMD."""
    from threadpoolctl import threadpool_info

    blas = [
        f"{i.get('internal_api')} {i.get('architecture')}"
        for i in threadpool_info()
        if i["user_api"] == "blas" and Path(i.get("filepath", "")).parent.name != "scipy.libs"
    ]
    return f"{'; '.join(blas) or 'no blas'}; numpy {' '.join(numpy_dispatch()) or 'baseline'}"


def golden() -> dict:
    return json.loads(NUMBERS.read_text()) if NUMBERS.exists() else {}


def recordings() -> dict:
    """Label -> {"fingerprint", "numbers"} of the settings that set the tolerances."""
    return golden().get("recordings", {})


def held_out() -> dict:
    """Label -> {"fingerprint", "numbers"} of settings that set none (their proof)."""
    return golden().get("held_out", {})


def thresholds() -> dict:
    """Each gradient check's pass threshold in the tiny config (max_rel_error)."""
    checks = yaml.safe_load(TINY_CONFIG.read_text())["gradcheck"]["checks"]
    return {name: float(spec.get("max_rel_error", 1e-6)) for name, spec in checks.items()}


def spreads(recs: dict) -> dict:
    """The largest absolute difference between two recordings, per kind of number."""
    spread = dict.fromkeys(FLOOR, 0.0)
    values = [r["numbers"] for r in recs.values()]
    for name in values[0]:
        xs = [v[name] for v in values]
        if kind(name) in FLOOR and all(isinstance(x, float | int) and not isinstance(x, bool) for x in xs):
            spread[kind(name)] = max(spread[kind(name)], max(xs) - min(xs))
    return spread


def tolerances(recs: dict) -> dict:
    """Per kind of number (but the gradient checks' errors: BAND): ``max(MULTIPLE * spread,
    FLOOR)``, the spread being the largest absolute difference of a number of that kind
    between the recordings (RECORD's settings, made from the same code)."""
    return {k: max(MULTIPLE * s, FLOOR[k]) for k, s in spreads(recs).items()}


def band(name: str, recs: dict) -> tuple[float, float]:
    """The interval a gradient check's error must lie in (BAND, thresholds)."""
    values = [r["numbers"][name] for r in recs.values()]
    limit = thresholds()[name.split()[1]]
    if all(v == 0 for v in values):
        return 0.0, 0.0
    centre = math.exp(sum(math.log(max(v, 1e-300)) for v in values) / len(values))
    return centre / BAND, min(centre * BAND, limit)


def problems_with(recs: dict) -> list[str]:
    """Why ``recs`` cannot set tolerances (empty: they can)."""
    made = {r["fingerprint"] for r in recs.values()}
    if len(recs) < len(RECORD) or made != {fingerprint()}:
        return [
            f"{len(recs)} recordings, from {'this' if made == {fingerprint()} else 'another'} version of the "
            f"code: the tolerances need {len(RECORD)} ({', '.join(RECORD)}), made from the running code "
            "(its numeric files changed since). Record them again: python tests/tiny_numbers.py record"
        ]
    return []


def differences(found: dict, recs: dict) -> list[str]:
    """What of ``found`` lies outside the tolerance of any recording (empty: all agree)."""
    out = problems_with(recs)
    if out:
        return out
    tol = tolerances(recs)
    for label, rec in sorted(recs.items()):
        want = rec["numbers"]
        for name in sorted(set(want) - set(found)):
            out.append(f"{name}: recorded ({label}) but not made")
        for name in sorted(set(found) - set(want)):
            out.append(f"{name}: made but not recorded ({label})")
    for name in sorted(set(found) & set.intersection(*(set(r["numbers"]) for r in recs.values()))):
        got = found[name]
        refs = {label: r["numbers"][name] for label, r in sorted(recs.items())}
        if kind(name) == "gradcheck error":
            lo, hi = band(name, recs)
            if got is None or not lo <= got <= hi:
                out.append(f"{name}: {got!r}, outside its band [{lo:.3g}, {hi:.3g}] (gradcheck error)")
            continue
        for label, ref in refs.items():
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
    """The tiny study in ``root`` against the recordings: what differs (empty: nothing)."""
    return differences(numbers(root), recordings())


# -- making the recordings -----------------------------------------------------------------
def overlay(env: dict) -> dict:
    """An environment overlay with ``{dispatch}`` filled in: NumPy's targets on this CPU,
    with those this process was started without (recording X86_V3's numbers on a CPU with
    AVX-512 switches X86_V4 off: the held-out baseline switches both off)."""
    off = os.environ.get("NPY_DISABLE_CPU_FEATURES", "").replace(",", " ").split()
    dispatch = " ".join(dict.fromkeys(numpy_dispatch() + off)) or "none"
    return {k: v.format(dispatch=dispatch) for k, v in env.items()}


def measure(env: dict) -> dict:
    """The tiny study made from scratch in a child process under ``env`` (an overlay):
    {"kernel", "fingerprint", "numbers"}."""
    with tempfile.TemporaryDirectory(prefix="kmlp-numbers-") as tmp:
        out = Path(tmp) / "numbers.json"
        child = {**os.environ, **overlay(env)}
        subprocess.run([sys.executable, __file__, "_one", str(out)], env=child, check=True)
        return json.loads(out.read_text())


def _one(out: Path) -> None:
    from workflow_project import make_project, snakemake

    with tempfile.TemporaryDirectory(prefix="kmlp-tiny-") as tmp:
        root = make_project(Path(tmp) / "project")
        snakemake(root, "--cores", "2")
        doc = {"kernel": kernel(), "fingerprint": fingerprint(), "numbers": numbers(root)}
    out.write_text(json.dumps(doc))


def record(settings: dict, section: str) -> None:
    """Measure each setting and store it under ``section`` (recordings or held_out)."""
    doc = golden()
    doc[section] = {}
    for name, env in settings.items():
        made = measure(env)
        label = f"{name}: {made['kernel']}"
        doc[section][label] = {"fingerprint": made["fingerprint"], "numbers": made["numbers"]}
        print(f"{section}: {label}", file=sys.stderr)
    NUMBERS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def main(argv: list[str]) -> int:
    """``record``: the recordings and the held-out settings, made again from scratch (a change
    meant to move numbers, or one of the numeric code: about two minutes)."""
    if argv[:1] == ["_one"]:
        _one(Path(argv[1]))
        return 0
    if argv != ["record"]:
        print("usage: python tests/tiny_numbers.py record", file=sys.stderr)
        return 2
    record(RECORD, "recordings")
    record(HELD_OUT, "held_out")
    recs = recordings()
    for label, rec in held_out().items():
        moved = differences(rec["numbers"], recs)
        print(f"held out {label}: {'within the tolerances' if not moved else 'OUTSIDE: ' + '; '.join(moved)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main(sys.argv[1:]))
