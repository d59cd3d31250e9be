"""The tiny study's numbers on every machine: final costs and accuracies, gradient-check
errors, the verdicts and their inputs, against golden/tiny_numbers.json.

The golden hashes (test_golden.py) hold the outputs whole, but only where a numeric
environment has an entry; this check needs none, and never skips. The recorded values
are the tiny workflow's numbers under three OpenBLAS kernels (tiny_numbers.RECORD), made
from the running code; their spread sets each kind's tolerance (``max(10 * spread,
floor)``), but a gradient check's error, which is rounding noise, must stay within an order
of magnitude of the recordings and below its own threshold. Two settings that set no
tolerance (tiny_numbers.HELD_OUT: another kernel, NumPy without its SIMD loops) are
recorded beside them and must lie within; .ci/run also runs this file under both.

A change meant to move numbers, or any change of the code they come from, records them
again with ``python tests/tiny_numbers.py record`` (about two minutes).
"""

from __future__ import annotations

import copy
import math
import shutil

import pytest

import tiny_numbers as tn


@pytest.mark.slow
def test_the_tiny_studys_numbers_match_the_recorded_values(tiny_project):
    moved = tn.check(tiny_project)
    assert moved == [], f"the tiny study's numbers moved under {tn.kernel()}:\n" + "\n".join(moved)


def test_the_recordings_are_three_kernels_made_from_the_running_code():
    recs = tn.recordings()
    assert sorted(label.split(":")[0] for label in recs) == sorted(tn.RECORD)
    kernels = {label.split(";")[0].split()[-1] for label in recs}
    assert len(kernels) == 3, f"three distinct kernels, not {kernels}"
    assert {r["fingerprint"] for r in recs.values()} == {tn.fingerprint()}, (
        "the recordings come from another version of the numeric code: python tests/tiny_numbers.py record"
    )
    names = [sorted(r["numbers"]) for r in recs.values()]
    assert all(n == names[0] for n in names)
    kinds = {tn.kind(n) for n in names[0]}
    assert kinds == {*tn.FLOOR, "verdict", "gradcheck error"}  # every kind is there, and is judged


@pytest.mark.parametrize(
    "rel, numeric", [("src/kmlp/nn/layers.py", True), ("src/kmlp/aggregate/figures.py", False)], ids=["math", "figure"]
)
def test_the_fingerprint_follows_the_numeric_code_only(rel, numeric, tmp_path, monkeypatch):
    """A change of the math changes it; a change of a figure's drawing does not."""
    base = tn.fingerprint()
    repo = tmp_path / "repo"
    shutil.copytree(tn.REPO / "src" / "kmlp", repo / "src" / "kmlp", ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("workflow", ".test", "tests"):
        (repo / part).symlink_to(tn.REPO / part)
    (repo / rel).write_text((repo / rel).read_text() + "\n# edited\n")
    monkeypatch.setattr(tn, "REPO", repo)
    monkeypatch.setattr(tn, "TINY_CONFIG", repo / ".test" / "config" / "config.yaml")
    assert (tn.fingerprint() != base) == numeric


def test_the_held_out_settings_lie_within_the_tolerances_they_did_not_set():
    recs, held = tn.recordings(), tn.held_out()
    assert sorted(label.split(":")[0] for label in held) == sorted(tn.HELD_OUT)
    assert not {label.split(": ")[1] for label in held} & {label.split(": ")[1] for label in recs}
    for label, rec in held.items():
        assert rec["fingerprint"] == tn.fingerprint()
        assert tn.differences(rec["numbers"], recs) == [], label


def test_the_tolerances_are_tight_enough_to_see_a_changed_result():
    """The measured tolerances stay far below what a change of the code moves: a shift of
    0.02 in an accuracy, 1e-3 in a cost, a tenth of z's shown digit."""
    tol = tn.tolerances(tn.recordings())
    assert tol["accuracy"] < 0.02 and tol["accuracy statistic"] < 0.02
    assert tol["cost"] < 1e-3
    assert tol["z"] <= 0.05


def shifted(numbers: dict, kind: str, by: float) -> dict:
    out = copy.deepcopy(numbers)
    for name, value in out.items():
        if tn.kind(name) == kind and isinstance(value, float):
            out[name] = value + by
    return out


@pytest.mark.parametrize("kind", ["accuracy", "accuracy statistic", "cost", "z", "gradient", "lambda"])
def test_the_check_fails_on_a_shift_beyond_the_tolerance_and_passes_within(kind):
    recs = tn.recordings()
    reference = next(iter(recs.values()))["numbers"]
    tol = tn.tolerances(recs)[kind]
    assert tn.differences(reference, recs) == []
    assert tn.differences(shifted(reference, kind, 0.3 * tol), recs) == []
    moved = tn.differences(shifted(reference, kind, 3 * tol), recs)
    assert moved and all(f"({kind})" in line for line in moved)


def test_a_gradient_checks_error_is_judged_by_orders_of_magnitude_not_by_the_recordings_spread():
    recs = tn.recordings()
    reference = next(iter(recs.values()))["numbers"]
    errors = [n for n, v in reference.items() if tn.kind(n) == "gradcheck error" and v]
    zeros = [n for n, v in reference.items() if tn.kind(n) == "gradcheck error" and v == 0]
    assert errors and zeros
    for factor, ok in [(3.0, True), (1 / 3, True), (100.0, False), (1 / 100, False)]:
        moved = tn.differences({**reference, **{n: reference[n] * factor for n in errors}}, recs)
        assert (moved == []) == ok, (factor, moved[:2])
    # above the check's own threshold, whatever the band
    name = errors[0]
    assert tn.band(name, recs)[1] <= tn.thresholds()[name.split()[1]]
    # a gradient compared absolutely stays exactly 0
    assert tn.differences({**reference, zeros[0]: 1e-12}, recs)
    # the spread of the recordings would not have admitted a third kernel: the band does
    spread = max(abs(a["numbers"][n] - b["numbers"][n]) for n in errors for a in recs.values() for b in recs.values())
    assert all(math.log10(tn.band(n, recs)[1] / tn.band(n, recs)[0]) >= 2 - 1e-9 for n in errors), spread


def test_the_check_fails_on_a_changed_verdict_a_missing_number_or_recordings_from_other_code():
    recs = tn.recordings()
    reference = next(iter(recs.values()))["numbers"]
    verdict = next(n for n in reference if tn.kind(n) == "verdict")
    assert tn.differences({**reference, verdict: "something else"}, recs)
    fewer = {k: v for k, v in reference.items() if k != verdict}
    assert tn.differences(fewer, recs)
    stale = copy.deepcopy(recs)
    next(iter(stale.values()))["fingerprint"] = "another version of the code"
    [why] = tn.differences(reference, stale)
    assert "another version of the code" in why and "tiny_numbers.py record" in why
    two = dict(list(recs.items())[:2])
    [why] = tn.differences(reference, two)
    assert "need 3" in why


def landing(numbers: dict, recs: dict) -> dict:
    """How far a setting's numbers land from the recordings: per kind, the largest distance
    as a share of the tolerance; for gradient-check errors, the largest factor from the
    band's centre."""
    tol, found = tn.tolerances(recs), {}
    for name, value in numbers.items():
        kind = tn.kind(name)
        if kind in tol and isinstance(value, float):
            far = max(abs(value - r["numbers"][name]) for r in recs.values()) / tol[kind]
            found[kind] = max(found.get(kind, 0.0), far)
        elif kind == "gradcheck error" and value:
            lo, hi = tn.band(name, recs)
            centre = math.sqrt(lo * hi) if hi < lo * tn.BAND**2 else lo * tn.BAND
            found[kind] = max(found.get(kind, 1.0), value / centre, centre / value)
    return found


def test_tests_readme_states_the_spread_and_where_the_held_out_settings_land():
    """The numbers of tests/README.md's two tables, from golden/tiny_numbers.json."""
    text = (tn.REPO / "tests" / "README.md").read_text()
    recs = tn.recordings()
    spread, tol = tn.spreads(recs), tn.tolerances(recs)
    assert f"| final cost or loss | {spread['cost']:.2e} | {tol['cost']:.2e} |" in text
    assert f"| gradient statistic (float64) | {spread['gradient']:.1e} | 1e-12 (floor) |" in text
    rows = {"Nehalem": "Nehalem", "numpy-baseline": "NumPy without SIMD"}
    for label, rec in tn.held_out().items():
        far = landing(rec["numbers"], recs)
        assert max(far["accuracy"], far["accuracy statistic"], far["z"], far["lambda"]) == 0
        row = f"| {rows[label.split(':')[0]]} | {100 * far['cost']:.1f} % | {100 * far['gradient']:.2f} % |"
        assert row in text, row
        assert f"{far['gradcheck error']:.2f} ×" in text
