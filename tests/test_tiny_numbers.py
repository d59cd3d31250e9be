"""The tiny study's numbers on every machine: final costs and accuracies, gradient-check
errors, the verdicts and their inputs, against golden/tiny_numbers.json.

The golden hashes (test_golden.py) hold the outputs whole, but only where a numeric
environment has an entry; this check needs none, and never skips. The recorded values
are the numbers of the tiny workflow under each BLAS kernel OpenBLAS picks on our
machines (SkylakeX, and Haswell with ``OPENBLAS_CORETYPE=Haswell``), made from the same
code. The tolerance of a number is ``max(10 * spread, floor)`` of its kind (final cost or
loss, accuracy, gradient statistic, gradient-check error, accuracy statistic of the
summary, z, the lambda picked), the spread being the largest absolute difference between
the two kernels' values of any number of that kind; the floor (tiny_numbers.FLOOR) takes
over for the kinds the kernels give identically (the accuracies: both kernels classify
every image alike; the floor, 0.005, tolerates no image classified otherwise).
``tiny_numbers.MULTIPLE`` says why ten times. Every number must lie within its tolerance
of both recordings, and every verdict equal theirs.

A change meant to move numbers records them with
``KMLP_UPDATE_NUMBERS=1 python -m pytest tests/test_tiny_numbers.py``, once under each
kernel (``OPENBLAS_CORETYPE=Haswell`` for the second), from the same code.
"""

from __future__ import annotations

import copy

import pytest

import tiny_numbers as tn


@pytest.mark.slow
def test_the_tiny_studys_numbers_match_the_recorded_values(tiny_project):
    moved = tn.check(tiny_project)
    assert moved == [], "the tiny study's numbers moved:\n" + "\n".join(moved)


def test_the_recordings_are_both_kernels_from_one_code():
    recs = tn.recordings()
    assert {"openblas SkylakeX", "openblas Haswell"} <= set(recs)
    assert len({r["fingerprint"] for r in recs.values()}) == 1
    names = [sorted(r["numbers"]) for r in recs.values()]
    assert all(n == names[0] for n in names)
    kinds = {tn.kind(n) for n in names[0]}
    assert kinds == {*tn.FLOOR, "verdict"}  # every kind is there, and has a floor


def test_the_tolerances_are_tight_enough_to_see_a_changed_result():
    """The measured tolerances stay far below what a change of the code moves: a shift of
    0.02 in an accuracy, 1e-3 in a cost, a tenth of z's shown digit."""
    tol = tn.tolerances(tn.recordings())
    assert tol["accuracy"] < 0.02 and tol["accuracy statistic"] < 0.02
    assert tol["cost"] < 1e-3
    assert tol["z"] <= 0.05
    assert tol["gradcheck error"] < 1e-9  # the check's own threshold is 1e-6


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


def test_the_check_fails_on_a_changed_verdict_a_missing_number_or_recordings_from_two_codes():
    recs = tn.recordings()
    reference = next(iter(recs.values()))["numbers"]
    verdict = next(n for n in reference if tn.kind(n) == "verdict")
    assert tn.differences({**reference, verdict: "something else"}, recs)
    fewer = {k: v for k, v in reference.items() if k != verdict}
    assert tn.differences(fewer, recs)
    stale = copy.deepcopy(recs)
    next(iter(stale.values()))["fingerprint"] = "another version of the code"
    [why] = tn.differences(reference, stale)
    assert "from 2 versions of the code" in why
