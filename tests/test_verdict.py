"""The verdict rule on constructed inputs: a report value inside, at the edge of and
outside the interval one run of ours falls in; pooling; the sampling term; one seed
changed. Expected numbers are computed here from the formulas, not by the module."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from kmlp.aggregate.stats import grid_frame, summary_frame, t_quantile
from kmlp.runs import FINAL_METRICS, RunRecord
from kmlp.study import TableSpec, VerdictRule

TINY = Path(__file__).resolve().parents[1] / ".test" / "config" / "config.yaml"
# The tiny config's rule: 95 % consistent, 99.9 % inconsistent, sampling on val_acc, 3 decimals.
RULE = yaml.safe_load(TINY.read_text())["verdict"]
ROUNDING = 1e-3 / math.sqrt(12)
# Student's t quantiles from tables (2, 3, 4, 6 and 8 degrees of freedom)
T975 = {2: 4.3026527, 3: 3.1824463, 4: 2.7764451, 6: 2.4469119, 8: 2.3060041}
T9995 = {2: 31.599055, 3: 12.923979, 4: 8.6103016, 6: 5.9588157, 8: 5.0413054}


def run(exp, seed, value, paper=None, metric="test_acc", eval_size=10000, status="completed"):
    final = dict.fromkeys(FINAL_METRICS, 0.5)
    final[metric] = value
    return RunRecord(exp, seed, status, {}, {}, {}, final, paper={metric: paper} if paper is not None else {},
                     eval_sizes={"train": 100, "val": eval_size, "test": eval_size})  # fmt: skip


def judged(runs, pools=None, metric="test_acc"):
    rule = VerdictRule.from_dict({**RULE, "pools": pools or {}})
    rows = summary_frame(runs, rule)
    return rows.set_index(["experiment", "metric"]).loc[(runs[0].experiment, metric)]


VALUES = [0.50, 0.51, 0.52, 0.53, 0.54]  # mean 0.52, sample std 0.0158114


def one_run_spread(values, s=None):
    s = np.std(values, ddof=1) if s is None else s
    return math.sqrt(s**2 * (1 + 1 / len(values)) + ROUNDING**2)


def test_t_quantiles_match_the_tables():
    for df, t in T975.items():
        assert t_quantile(0.975, df) == pytest.approx(t, abs=1e-6)
    for df, t in T9995.items():
        assert t_quantile(0.9995, df) == pytest.approx(t, abs=1e-6)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize(
    "where, expected",
    [
        (0.0, "consistent"),  # the paper's value is our mean
        (0.999999, "consistent"),  # just inside the 95 % interval
        (1.000001, "borderline"),  # just outside it
        (T9995[4] / T975[4] * 0.99999, "borderline"),  # just inside the 99.9 % interval
        (T9995[4] / T975[4] * 1.00001, "inconsistent"),  # just outside it
    ],
)
def test_inside_at_the_edge_and_outside_the_interval(where, expected):
    sigma = one_run_spread(VALUES)
    paper = 0.52 + where * T975[4] * sigma
    row = judged([run("e", s, v, paper) for s, v in enumerate(VALUES, 1)])
    assert row["mean"] == pytest.approx(0.52) and row.n == 5 and row.df == 4
    assert row.sigma == pytest.approx(sigma, rel=1e-12)
    assert row.hi == pytest.approx(0.52 + T975[4] * sigma, rel=1e-9)
    assert row.z == pytest.approx(where * T975[4], rel=1e-9, abs=1e-12)
    assert row.verdict == expected


def level(z, df):
    """The verdict rule with the tables' quantiles."""
    return "consistent" if abs(z) <= T975[df] else "inconsistent" if abs(z) > T9995[df] else "borderline"


def exact_stability(values, paper, others=()):
    """The verdict of ``values`` (pooled with the seeds ``others`` of another experiment),
    and the share of all n^n resamples of its seeds, with replacement and equally likely,
    that give the same verdict: the bootstrap's limit, enumerated."""
    n = len(values)
    others_ss = float(np.sum((np.asarray(others) - np.mean(others)) ** 2)) if len(others) else 0.0
    df = n - 1 + max(len(others) - 1, 0)

    def verdict(sample):
        mean = sum(sample) / n
        s2 = (sum((v - mean) ** 2 for v in sample) + others_ss) / df
        return level((paper - mean) / math.sqrt(s2 * (1 + 1 / n) + ROUNDING**2), df)

    seen = verdict(values)
    resamples = list(itertools.product(values, repeat=n))
    return seen, sum(verdict(r) == seen for r in resamples) / len(resamples)


def within_bootstrap_error(share, exact, resamples):
    """A bootstrap share is a binomial proportion: within 4 standard errors of its limit."""
    return abs(share - exact) <= 4 * math.sqrt(exact * (1 - exact) / resamples)


@pytest.mark.parametrize(
    "values, paper, others, expected",
    [
        ([0.50, 0.52, 0.55], 0.62, [], ("consistent", 15 / 27)),
        ([0.50, 0.51, 0.53, 0.56], 0.60, [], ("consistent", 170 / 256)),
        ([0.50, 0.52, 0.55], 0.59, [0.40, 0.42, 0.44, 0.46, 0.48], ("consistent", 20 / 27)),
        ([0.50, 0.52, 0.55], 0.62, [0.40, 0.42, 0.44, 0.46, 0.48], ("borderline", 23 / 27)),
    ],
    ids=["3-seeds", "4-seeds", "pooled", "pooled-borderline"],
)
def test_stability_is_the_bootstrap_estimate_of_the_share_of_all_resamples(values, paper, others, expected):
    """Against exact enumeration (3^3 or 4^4 resamples, the other pool member's seeds fixed),
    with 4000 resamples: a binomial standard error of at most 0.008."""
    assert exact_stability(values, paper, others) == pytest.approx(expected)
    rule = VerdictRule.from_dict(
        {**RULE, "bootstrap": {"resamples": 4000, "seed": 0},
         "pools": {"p": {"metric": "test_acc", "experiments": ["e", "f"]}} if others else {}}
    )  # fmt: skip
    runs = [run("e", s, v, paper) for s, v in enumerate(values, 1)] + [run("f", s, v) for s, v in enumerate(others, 1)]
    row = summary_frame(runs, rule).set_index(["experiment", "metric"]).loc[("e", "test_acc")]
    assert row.verdict == expected[0]
    assert within_bootstrap_error(row.stability, expected[1], 4000), (row.stability, expected[1])


def test_one_seed_changed_moves_the_verdict_and_its_stability():
    sigma = one_run_spread(VALUES)
    paper = 0.52 + 1.2 * T975[4] * sigma  # borderline with these seeds
    before = judged([run("e", s, v, paper) for s, v in enumerate(VALUES, 1)])
    assert before.verdict == "borderline"
    wider = VALUES[:-1] + [0.58]  # one seed's run ends higher: wider spread, higher mean
    after = judged([run("e", s, v, paper) for s, v in enumerate(wider, 1)])
    assert after.verdict == "consistent"
    assert after.z == pytest.approx((paper - np.mean(wider)) / one_run_spread(wider))
    # the verdict's stability moves too: 2740 of the 5^5 resamples give "borderline"
    # before, 2100 "consistent" after (enumerated); the tiny config's 200 resamples
    # estimate each within its binomial error
    assert exact_stability(VALUES, paper) == ("borderline", 2740 / 3125)
    assert exact_stability(wider, paper) == ("consistent", 2100 / 3125)
    resamples = RULE["bootstrap"]["resamples"]
    assert within_bootstrap_error(before.stability, 2740 / 3125, resamples), before.stability
    assert within_bootstrap_error(after.stability, 2100 / 3125, resamples), after.stability
    assert after.stability < before.stability


def test_pooling_shares_the_variance_and_its_degrees_of_freedom():
    other = [0.40, 0.42, 0.44, 0.46, 0.48]  # sample std 0.0316228
    runs = [run("e", s, v, 0.6) for s, v in enumerate(VALUES, 1)]
    runs += [run("f", s, v) for s, v in enumerate(other, 1)]
    row = judged(runs, pools={"p": {"metric": "test_acc", "experiments": ["e", "f"]}})
    pooled = math.sqrt((4 * np.var(VALUES, ddof=1) + 4 * np.var(other, ddof=1)) / 8)
    assert row.df == 8 and row.pool == "p"
    assert row.s_seed == pytest.approx(pooled)
    assert row.sigma == pytest.approx(one_run_spread(VALUES, pooled))
    z = (0.6 - 0.52) / one_run_spread(VALUES, pooled)
    assert row.z == pytest.approx(z)
    assert row.verdict == (
        "consistent" if abs(z) <= T975[8] else "borderline" if abs(z) <= T9995[8] else "inconsistent"
    )
    # a pool is per metric: the same experiments pooled for val_acc leave test_acc alone
    alone = judged(runs, pools={"p": {"metric": "val_acc", "experiments": ["e", "f"]}})
    assert alone.pool == "" and alone.df == 4 and alone.s_seed == pytest.approx(np.std(VALUES, ddof=1))


def test_validation_numbers_carry_the_sampling_spread_of_their_images():
    runs = [run("e", s, v, 0.55, metric="val_acc", eval_size=5000) for s, v in enumerate(VALUES, 1)]
    row = judged(runs, metric="val_acc")
    s_eval = math.sqrt(RULE["sampling_factor"] * 0.52 * 0.48 / 5000)
    assert row.s_eval == pytest.approx(s_eval)
    assert row.sigma == pytest.approx(math.sqrt(np.var(VALUES, ddof=1) * 1.2 + s_eval**2 + ROUNDING**2))
    test_row = judged([run("e", s, v, 0.55) for s, v in enumerate(VALUES, 1)])
    assert test_row.s_eval == 0  # the test images are the report's: no such term


def test_identical_runs_are_judged_by_the_reports_rounding_alone():
    same = judged([run("e", s, 0.1, 0.1) for s in range(1, 6)])
    assert same["std"] == 0 and same.z == 0 and same.verdict == "consistent"
    off = judged([run("e", s, 0.1, 0.103) for s in range(1, 6)])  # z = 0.003 / 0.000289 > 8.61
    assert off.verdict == "inconsistent"


def test_diverged_and_non_finite_runs_are_counted_not_averaged():
    runs = [run("e", s, v, 0.52) for s, v in enumerate(VALUES, 1)]
    runs += [run("e", 6, math.nan, 0.52, status="diverged"), run("e", 7, math.inf, 0.52)]
    row = judged(runs)
    assert (row.n, row.diverged, row.nonfinite) == (5, 1, 1)
    assert row["mean"] == pytest.approx(0.52)


def test_a_single_run_shows_no_spread_and_no_verdict():
    cells = grid_frame(
        [run("e", 1, 0.5, 0.5)],
        TableSpec.from_dict({"metric": "test_acc", "columns": ["c"], "rows": {"r": ["e"]}}),
        VerdictRule.from_dict(RULE),
    )
    cell = cells.iloc[0]
    assert cell.n == 1 and math.isnan(cell["std"]) and cell.verdict == "n/a"
