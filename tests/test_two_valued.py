"""Numbers whose runs split into collapsed nets (chance accuracy) and learned ones, and
intervals that stay inside an accuracy's range: described as what they are, judged by a
rule that says how it judged."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from kmlp.aggregate.stats import binomial_bound, summary_frame
from kmlp.aggregate.tabular import interval_text, split_text, verdict_text
from kmlp.runs import FINAL_METRICS, RunRecord
from kmlp.study import VerdictRule

RULE = VerdictRule.from_dict(
    yaml.safe_load((Path(__file__).parents[1] / ".test/config/config.yaml").read_text())["verdict"]
)


def run(exp, seed, value, paper, classes=10, metric="test_acc"):
    final = dict.fromkeys(FINAL_METRICS, 0.5)
    final[metric] = value
    return RunRecord(exp, seed, "completed", {}, {"sizes": [8, 4, classes]}, {}, final, paper={metric: paper},
                     eval_sizes={"train": 100, "val": 10000, "test": 10000})  # fmt: skip


def judged(values, paper, **kw):
    rows = summary_frame([run("e", i + 1, v, paper, **kw) for i, v in enumerate(values)], RULE)
    return rows.iloc[0]


SPLIT = [0.1, 0.1, 0.1, 0.523, 0.531]  # 3 of 5 collapsed, as sigma-nobn-1e-3 on the default schedule


def test_clopper_pearson_bounds_match_their_closed_forms_and_tables():
    # k = 0 and k = n have closed forms; (3, 5) and (1, 10) from published tables
    assert binomial_bound(0, 5, 0.95) == pytest.approx(1 - 0.05 ** (1 / 5), abs=1e-9)
    assert binomial_bound(5, 5, 0.975, upper=False) == pytest.approx(0.025 ** (1 / 5), abs=1e-9)
    assert (binomial_bound(3, 5, 0.975, upper=False), binomial_bound(3, 5, 0.975)) == pytest.approx(
        (0.1466, 0.9473), abs=1e-4
    )
    assert (binomial_bound(1, 10, 0.975, upper=False), binomial_bound(1, 10, 0.975)) == pytest.approx(
        (0.0025, 0.4450), abs=1e-4
    )
    # the edges: seen every time (or never, or never tried), a probability is bounded by 1 and 0
    assert (binomial_bound(5, 5, 0.95), binomial_bound(0, 5, 0.95, upper=False)) == (1.0, 0.0)
    assert (binomial_bound(0, 0, 0.95), binomial_bound(0, 0, 0.95, upper=False)) == (1.0, 0.0)


def test_a_split_number_is_described_as_what_it_is_and_judged_by_its_collapse_rate():
    r = judged(SPLIT, paper=0.1)
    assert (r.collapsed, r.by, r.verdict) == (3, "collapse rate", "consistent")
    assert math.isnan(r.z)  # no distance to a mean of two modes
    assert split_text(r) == "3 of 5 at chance (0.100); 2 at 0.527 ± 0.006"
    assert (r.p_collapse_lo, r.p_collapse_hi) == pytest.approx((0.1466, 0.9473), abs=1e-4)
    assert interval_text(r).startswith("0.100 with p = 3/5 [0.15, 0.95], or [")
    assert 0 <= r.lo <= r.hi <= 1 and r.lo > 0.4  # the learned runs' interval, inside [0, 1]
    assert verdict_text(r) == "consistent (by collapse rate)"


def test_a_learned_report_value_is_judged_against_the_learned_runs():
    r = judged(SPLIT, paper=0.527)
    assert (r.by, r.verdict) == ("learned runs", "consistent") and abs(r.z) < 0.1
    # two learned runs: one degree of freedom, whose 99.9 % t quantile (636.6) keeps 0.9 borderline
    assert judged(SPLIT, paper=0.9).verdict == "borderline"
    far = judged([0.1, 0.1, 0.1, 0.523, 0.531, 0.527, 0.519, 0.525, 0.529], paper=0.9)
    assert (far.by, far.df, far.verdict) == ("learned runs", 5, "inconsistent")


@pytest.mark.parametrize(
    "collapsed, n, expected",
    [
        (1, 10, "consistent"),  # a collapse in 10 % of runs: the report's could be one
        (0, 5, "borderline"),  # none of 5 collapsed: a collapse cannot be ruled out
        (1, 40, "borderline"),  # 2.5 %: below 5 %, not below 0.1 % at 99.9 %
    ],
)
def test_the_collapse_rate_decides_when_the_report_collapsed(collapsed, n, expected):
    values = [0.1] * collapsed + list(np.linspace(0.50, 0.54, n - collapsed))
    r = judged(values, paper=0.1)
    assert (r.by, r.verdict) == ("collapse rate", expected)


def test_many_learned_runs_make_a_collapse_inconsistent():
    r = judged(list(np.linspace(0.50, 0.54, 8000)), paper=0.1)
    assert binomial_bound(0, 8000, 0.999) < 1e-3
    assert (r.by, r.verdict) == ("collapse rate", "inconsistent")


def test_every_run_collapsed():
    r = judged([0.1] * 5, paper=0.1)
    assert (r.collapsed, r.verdict, r.stability) == (5, "consistent", 1.0)
    assert split_text(r) == "5 of 5 at chance (0.100)"


def test_chance_follows_the_number_of_classes():
    r = judged([0.25, 0.25, 0.6, 0.62], paper=0.25, classes=4)
    assert (r.chance, r.collapsed, r.verdict) == (0.25, 2, "consistent")
    assert judged([0.25, 0.26, 0.24, 0.25], paper=0.25, classes=10).collapsed == 0  # 0.25 is not chance of 10


def test_the_stability_of_a_split_number_resamples_its_collapse_rate():
    """3 of 5 collapsed, the report's run learned at 0.527: a resample is judged on its
    learned runs; one with fewer than 2 has no spread and no verdict, so it disagrees."""
    r = judged(SPLIT, paper=0.1)
    # a resample gives 'consistent' unless it has no collapsed run: P = 1 - (2/5)^5
    assert r.stability == pytest.approx(1 - 0.4**5, abs=4 * math.sqrt(0.01 * 0.99 / RULE.resamples))


def test_an_accuracys_interval_stays_inside_zero_and_one():
    r = judged([0.99, 0.999, 0.97, 1.0, 0.995], paper=0.99, metric="test_acc")
    assert r.by == "interval" and r.hi == 1.0 and 0 < r.lo < 1
    assert r["mean"] + 2 * r.sigma > 1  # the normal interval would reach past 1
