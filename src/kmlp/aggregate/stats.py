"""Our numbers beside the report's: run files as one tidy frame, statistics per experiment,
and the verdict rule.

The report gives one run per number, so the question is whether ONE run of ours could
plausibly give it (a prediction interval, not a band around our mean). Per number:

- x̄, n: our mean over the seeds whose run completed with a finite value;
- s²: the seed variance of the metric, pooled over the experiment's pool for it
  (``pools``: experiments whose seed spread is alike), ``s² = Σ (n_i − 1) s_i² /
  Σ (n_i − 1)`` with ``df = Σ (n_i − 1)`` degrees of freedom (in no pool: its own);
  a pool holds only members Bartlett's test does not set apart at ``homogeneity``
  (:func:`homogeneous`: the others are judged on their own variance);
- s_e² = f p (1 − p) / N: the sampling spread of an accuracy on N images, for metrics
  whose evaluation images are not the report's (``sampling``: our validation images);
  the report's value and our mean each sit on their own images, so twice the part of the
  binomial variance that all nets share: ``f = sampling_factor`` (measured);
- s_r² = u² / 12: the report's rounding to ``paper_decimals`` decimals (u = 10^−d);
- σ = sqrt(s² (1 + 1/n) + s_e² + s_r²): the spread of one new run around our mean;
- z = (paper − x̄) / σ, and the interval x̄ ± t σ that one run falls in with
  probability ``consistent`` (t: Student's t quantile with df degrees of freedom);
- verdict: *consistent* when the paper's value lies inside that interval,
  *inconsistent* when it lies outside the wider ``inconsistent`` one, *borderline*
  between: a band wide enough that the noise of another machine's floats does not move
  a number from one outer level to the other; an accuracy's interval is cut to [0, 1];
- stability: the share of bootstrap resamples of our seeds that give the same verdict
  (drawn here with NumPy: ``scipy.stats.bootstrap`` makes a confidence interval of a
  statistic, while this is the agreement of a verdict over the resamples).

Student's t and the beta quantiles of the Clopper–Pearson bound come from SciPy
(``scipy.stats.t``, ``scipy.stats.beta``).

A net can also collapse: predict one class, and score the chance accuracy 1/K. An
accuracy whose runs split into collapsed and learned ones is two-valued, and a mean with
a normal interval describes it badly (3 runs at 0.100 and 2 at 0.52 are not 0.34 ±
0.22). Such a number is described as what it is (k of n runs collapsed), its variance and
interval come from the learned runs, and its verdict says how it was reached (``by``):

- *collapse rate*, when the report's value is itself at chance: the report's run
  collapsed, which one run of ours does with probability p = k/n: consistent when
  p >= 1 − ``consistent``, inconsistent when even the exact (Clopper–Pearson) upper
  bound of p at level ``inconsistent`` is below 1 − ``inconsistent``, borderline
  between (so no collapse among a few seeds is borderline, not inconsistent);
- *learned runs*, when it is not: the interval above, from the learned runs alone;
- *interval*: every other number.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
import pandas as pd
import scipy.stats

from ..errors import KmlpError
from ..nn.metrics import FINAL_METRICS
from ..study.tables import TableSpec
from ..study.verdict import VerdictRule
from .grouping import paper_disagreement

# The report's own numbers come first, in this order; any other metric follows.
METRIC_ORDER = ["val_acc", "test_acc"] + [m for m in FINAL_METRICS if m not in ("val_acc", "test_acc")]
LEVELS = ("consistent", "borderline", "inconsistent")
#: Columns of a judged number, in the CSV outputs.
STAT_COLUMNS = ["n", "diverged", "nonfinite", "mean", "std", "paper", "pool", "df", "pool_p", "s_seed", "s_eval",
                "s_paper", "sigma", "lo", "hi", "z", "verdict", "stability", "chance", "collapsed", "learned_mean",
                "learned_std", "p_collapse_lo", "p_collapse_hi", "by"]  # fmt: skip
#: A run has collapsed when its accuracy lies within this share of chance (1/K) of chance.
COLLAPSE_BAND = 0.2


# -- Student's t ---------------------------------------------------------------------
@functools.cache
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (normal for df = inf)."""
    return float(scipy.stats.norm.ppf(p) if math.isinf(df) else scipy.stats.t.ppf(p, df))


# -- the tidy frame --------------------------------------------------------------------
def tidy(runs) -> pd.DataFrame:
    """One row per (run, metric): experiment, seed, status, metric, value, paper, eval_size,
    and chance (1/K for an accuracy of a K-class net, else NaN)."""
    rows = [
        {
            "experiment": r.experiment,
            "seed": r.seed,
            "status": r.status,
            "metric": m,
            "value": float(r.final[m]),
            "paper": float(r.paper[m]) if m in r.paper else math.nan,
            "eval_size": r.eval_sizes.get(m.split("_")[0], 0),
            "chance": 1 / r.model["sizes"][-1] if m.endswith("_acc") and r.model.get("sizes") else math.nan,
        }
        for r in runs
        for m in FINAL_METRICS
    ]
    columns = ["experiment", "seed", "status", "metric", "value", "paper", "eval_size", "chance"]
    return pd.DataFrame(rows, columns=columns)


def at_chance(value, chance):
    """Whether an accuracy is that of a collapsed net (within COLLAPSE_BAND of chance)."""
    return np.abs(np.asarray(value, float) - chance) <= COLLAPSE_BAND * chance


def describe(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, metric), experiments in order of appearance: n (completed runs with a
    finite value), mean, std (ddof 1), diverged (runs), nonfinite (completed runs whose value
    is not finite), the report's value, the evaluation-set size, chance, collapsed (runs at
    chance) and the learned runs' mean and std."""
    f = frame.assign(
        done=frame.status != "diverged",
        ok=(frame.status != "diverged") & np.isfinite(frame.value),
        diverged=frame.status == "diverged",
    )
    f["nonfinite"] = f.done & ~f.ok
    f["kept"] = f.value.where(f.ok)
    f["collapsed"] = f.ok & at_chance(f.value, f.chance)
    f["learned"] = f.kept.where(~f.collapsed)
    g = f.groupby(["experiment", "metric"], sort=False)
    out = g.agg(
        n=("ok", "sum"),
        diverged=("diverged", "sum"),
        nonfinite=("nonfinite", "sum"),
        mean=("kept", "mean"),
        std=("kept", "std"),
        eval_size=("eval_size", "max"),
        chance=("chance", "max"),
        collapsed=("collapsed", "sum"),
        learned_mean=("learned", "mean"),
        learned_std=("learned", "std"),
    )
    papers = g.paper.agg(lambda p: sorted(set(p.dropna())))
    bad = papers[papers.map(len) > 1]
    if len(bad):
        (exp, metric), values = next(iter(bad.items()))
        raise paper_disagreement(exp, metric, values)
    out["paper"] = papers.map(lambda p: p[0] if p else math.nan)
    out.loc[out.n == 1, "std"] = math.nan  # one run: no spread (not 0)
    return out.astype({"n": int, "diverged": int, "nonfinite": int, "collapsed": int})


# -- the verdict ---------------------------------------------------------------------
def bartlett_p(groups) -> float:
    """Bartlett's test of equal variances over groups of values (``scipy.stats.bartlett``);
    1 for fewer than two groups, 0 where a group has no spread (its log variance is -inf)."""
    groups = [np.asarray(g, float) for g in groups]
    if len(groups) < 2:
        return 1.0
    if any(np.var(g) == 0 for g in groups):
        return 0.0
    return float(scipy.stats.bartlett(*groups).pvalue)


def homogeneous(groups: dict, level: float) -> tuple[list, float]:
    """The members of a pool whose seed variances Bartlett's test does not reject at
    ``level``, and that test's p: while it rejects, the member whose removal leaves the
    highest p is taken out (ties: the earlier one), to be judged on its own variance.
    ``groups``: member -> its learned values, in the pool's order; members with fewer than
    two values add nothing to a pooled variance and stay."""
    tested = [m for m, g in groups.items() if len(g) >= 2]
    kept = list(tested)
    p = bartlett_p([groups[m] for m in kept])
    while level > 0 and p < level and len(kept) > 1:
        trials = [bartlett_p([groups[o] for o in kept if o != m]) for m in kept]
        best = int(np.argmax(trials))
        kept.pop(best)
        p = trials[best]
    return [m for m in groups if m in kept or m not in tested], p


#: The comment key of the summary CSV's pool report (:func:`pools_comment`).
POOLS_KEY = "pools"


def pools_comment(runs, rule: VerdictRule) -> str:
    """The summary CSV's comment line of :func:`pool_report` on these runs."""
    import json

    return f"{POOLS_KEY}: {json.dumps(pool_report(tidy(runs), rule))}"


def pool_report(frame: pd.DataFrame, rule: VerdictRule) -> dict:
    """Per configured pool, over the experiments of ``frame``: its metric, the members kept
    and those Bartlett's test at ``rule.homogeneity`` set apart (:func:`homogeneous`, in the
    config's order), and the kept members' Bartlett p. A member's values are its learned
    runs' (finite, not diverged, not at chance)."""
    learned = frame[(frame.status != "diverged") & np.isfinite(frame.value)]
    learned = learned[~at_chance(learned.value, learned.chance)]
    values = learned.groupby(["experiment", "metric"], sort=False).value.agg(list)
    present = set(frame.experiment)
    out = {}
    for name, spec in rule.pools.items():
        members = [e for e in spec["experiments"] if e in present]
        if not members:
            continue
        kept, p = homogeneous({e: values.get((e, spec["metric"]), []) for e in members}, rule.homogeneity)
        out[name] = {"metric": spec["metric"], "p": p, "kept": kept, "apart": [e for e in members if e not in kept]}
    return out


def _pooled(stats: pd.DataFrame, rule: VerdictRule, frame: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, metric): its pool, the pooled seed std of the learned runs, its
    degrees of freedom and the pool's Bartlett p (collapsed runs are another mode, not seed
    spread). A pool's members whose variance Bartlett's test at ``rule.homogeneity`` sets
    apart (:func:`homogeneous`) are judged on their own variance."""
    pool = pd.Series([rule.pool_of(e, m) for e, m in stats.index], index=stats.index)
    pool_p = pd.Series(math.nan, index=stats.index)
    for found in pool_report(frame, rule).values():
        for e in found["kept"]:
            pool_p[e, found["metric"]] = found["p"]
        for e in found["apart"]:
            pool[e, found["metric"]] = ""
    key = pool.where(pool != "", [f"\0{e}" for e, _ in stats.index])  # no pool: its own
    dof = (stats.n - stats.collapsed - 1).clip(lower=0)
    ss = (stats["learned_std"].fillna(0.0) ** 2) * dof
    metric = stats.index.get_level_values("metric")
    sums = pd.DataFrame({"key": key.values, "metric": metric, "dof": dof.values, "ss": ss.values})
    agg = sums.groupby(["key", "metric"]).sum()
    df = agg.dof.reindex(list(zip(key.values, metric, strict=True))).to_numpy()
    var = (agg.ss / agg.dof.where(agg.dof > 0)).reindex(list(zip(key.values, metric, strict=True))).to_numpy()
    return pd.DataFrame(
        {"pool": pool.values, "df": df, "pool_p": pool_p.values, "s_seed": np.sqrt(var)}, index=stats.index
    )


def _verdicts(z, df, rule: VerdictRule) -> np.ndarray:
    """The level of each |z| given its degrees of freedom ('n/a' where either is undefined)."""
    z, df = np.atleast_1d(np.asarray(z, float)), np.atleast_1d(np.asarray(df, float))
    ok = ~np.isnan(z) & (df > 0)
    t_in = np.array([t_quantile((1 + rule.consistent) / 2, float(d)) if d > 0 else np.nan for d in df])
    t_out = np.array([t_quantile((1 + rule.inconsistent) / 2, float(d)) if d > 0 else np.nan for d in df])
    level = np.where(np.abs(z) <= t_in, LEVELS[0], np.where(np.abs(z) > t_out, LEVELS[2], LEVELS[1]))
    return np.where(ok, level, "n/a")


def _sigma(s_seed, n, mean, eval_size, sampled: bool, rule: VerdictRule):
    spread = rule.sampling_factor * np.clip(mean * (1 - mean), 0, None)
    s_eval = np.sqrt(spread / eval_size) if sampled and eval_size else 0.0 * mean
    s_paper = 10.0**-rule.paper_decimals / math.sqrt(12)
    return np.sqrt(s_seed**2 * (1 + 1 / n) + s_eval**2 + s_paper**2), s_eval, s_paper


def binomial_bound(k: int, n: int, level: float, upper: bool = True) -> float:
    """The exact (Clopper–Pearson) one-sided bound at ``level`` of a probability seen k times
    in n trials: the largest (smallest) p under which k or fewer (more) happen with
    probability at least 1 − level. P(X <= k | p) = 1 − I_p(k + 1, n − k), so the upper
    bound is the ``level`` quantile of Beta(k + 1, n − k), the lower one the 1 − ``level``
    quantile of Beta(k, n − k + 1)."""
    if n == 0:
        return 1.0 if upper else 0.0
    if (upper and k >= n) or (not upper and k <= 0):
        return 1.0 if upper else 0.0
    if upper:
        return float(scipy.stats.beta.ppf(level, k + 1, n - k))
    return float(scipy.stats.beta.ppf(1 - level, k, n - k + 1))


def rate_verdict(k: int, n: int, rule: VerdictRule) -> str:
    """The report's run did something (collapsed; picked a setting) that one run of ours
    does with probability k/n."""
    if n == 0:
        return "n/a"
    if k / n >= 1 - rule.consistent:
        return LEVELS[0]
    if binomial_bound(k, n, rule.inconsistent) < 1 - rule.inconsistent:
        return LEVELS[2]
    return LEVELS[1]


def p_value(z, df) -> np.ndarray:
    """The two-sided p of |z| under Student's t with ``df`` degrees of freedom: the
    probability that one run of ours lies at least that far from our mean."""
    z, df = np.asarray(z, float), np.asarray(df, float)
    return 2 * scipy.stats.t.sf(np.abs(z), np.where(df > 0, df, np.nan))


def holm(p) -> np.ndarray:
    """Holm's step-down adjustment of a family of p values: the j-th smallest becomes
    max over i <= j of min(1, (m − i + 1) p_(i)); NaN stays NaN and counts in no family."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def level_of_p(p, rule: VerdictRule) -> np.ndarray:
    """The verdict of a (corrected) p: consistent at or above 1 − ``consistent``, inconsistent
    below 1 − ``inconsistent``, borderline between ('n/a' for NaN): for an uncorrected p the
    interval rule's (|z| <= t inside, |z| > t outside)."""
    p = np.asarray(p, float)
    level = np.where(p >= 1 - rule.consistent, LEVELS[0], np.where(p < 1 - rule.inconsistent, LEVELS[2], LEVELS[1]))
    return np.where(np.isnan(p), "n/a", level)


def _by(row) -> str:
    """How a number is judged: its interval, the collapse rate, or the learned runs."""
    if not (row.collapsed or (math.isfinite(row.chance) and at_chance(row.paper, row.chance))):
        return "interval"
    return "collapse rate" if at_chance(row.paper, row.chance) else "learned runs"


def judge(frame: pd.DataFrame, rule: VerdictRule, numbers=None, variance: dict | None = None) -> pd.DataFrame:
    """Statistics and the verdict for every (experiment, metric) of ``frame`` (or of the
    index ``numbers``); pools are taken over all experiments of ``frame``. ``variance``:
    (experiment, metric) -> (pool, s_seed, df, pool_p) of another number, whose variance
    model these runs are judged with (a hypothesis on a pooled number: its pool's seed
    variance); such a number has no stability (its runs are not in that pool)."""
    stats = describe(frame)
    stats = stats.join(_pooled(stats, rule, frame))
    for key, model in (variance or {}).items():
        stats.loc[key, ["pool", "s_seed", "df", "pool_p"]] = model
    if numbers is not None:
        stats = stats.loc[list(numbers)]
    metric = stats.index.get_level_values("metric")
    sampled = np.isin(metric, list(rule.sampling))
    has_paper = stats.paper.notna()
    stats["by"] = [_by(row) if has_paper[key] else "" for key, row in stats.iterrows()]
    # the spread of one run: of every run, or of the learned runs where some collapsed
    split = stats.by != "interval"
    n_spread = stats.n.where(~split, stats.n - stats.collapsed)
    centre = stats["mean"].where(~split, stats.learned_mean)
    sigma, s_eval = [], []
    for key, smp in zip(stats.index, sampled, strict=True):
        if n_spread[key] == 0:  # no run, or every run collapsed: no spread
            sigma.append(math.nan)
            s_eval.append(math.nan)
            continue
        sg, se, _ = _sigma(stats.s_seed[key], n_spread[key], centre[key], stats.eval_size[key], smp, rule)
        sigma.append(float(sg))
        s_eval.append(float(se))
    s_paper = 10.0**-rule.paper_decimals / math.sqrt(12)
    stats["s_eval"], stats["s_paper"], stats["sigma"] = s_eval, s_paper, sigma
    t = np.array([t_quantile((1 + rule.consistent) / 2, d) if d > 0 else math.nan for d in stats.df])
    lo, hi = centre - t * stats.sigma, centre + t * stats.sigma
    accuracy = stats.chance.notna()
    stats["lo"], stats["hi"] = lo.where(~accuracy, lo.clip(0, 1)), hi.where(~accuracy, hi.clip(0, 1))
    stats["z"] = ((stats.paper - centre) / stats.sigma).where(stats.by != "collapse rate")
    stats["verdict"] = np.where(has_paper, _verdicts(stats.z.fillna(math.nan), stats.df.fillna(0), rule), "")
    for key in stats.index[stats.by == "collapse rate"]:
        stats.loc[key, "verdict"] = rate_verdict(int(stats.collapsed[key]), int(stats.n[key]), rule)
    stats["p_collapse_lo"] = [
        binomial_bound(int(k), int(n), (1 + rule.consistent) / 2, upper=False) if b != "interval" else math.nan
        for k, n, b in zip(stats.collapsed, stats.n, stats.by, strict=True)
    ]
    stats["p_collapse_hi"] = [
        binomial_bound(int(k), int(n), (1 + rule.consistent) / 2) if b != "interval" else math.nan
        for k, n, b in zip(stats.collapsed, stats.n, stats.by, strict=True)
    ]
    borrowed = set(variance or ())
    stats["stability"] = [
        _stability(frame, stats, rule, key)
        if has_paper[key] and stats.verdict[key] != "n/a" and key not in borrowed
        else math.nan
        for key in stats.index
    ]
    return stats


def _rest_of_pool(row) -> tuple[float, float]:
    """The pooled sum of squares and degrees of freedom of a number's pool without its own
    learned runs: what a resample of those runs is pooled with again."""
    own_df = max(row.n - row.collapsed - 1, 0)
    own_ss = row.learned_std**2 * own_df if own_df else 0.0
    return row.s_seed**2 * row.df - own_ss, row.df - own_df


def _stability(frame: pd.DataFrame, stats: pd.DataFrame, rule: VerdictRule, key) -> float:
    """The share of bootstrap resamples of this experiment's seeds giving the same verdict."""
    exp, metric = key
    row = stats.loc[key]
    sel = frame[(frame.experiment == exp) & (frame.metric == metric) & (frame.status != "diverged")]
    values = sel.value[np.isfinite(sel.value)].to_numpy()
    n = len(values)
    if n < 2:
        return math.nan
    rng = np.random.default_rng([rule.seed, zlib.crc32(f"{exp}\0{metric}".encode())])
    draws = values[rng.integers(0, n, size=(rule.resamples, n))]
    if row.by != "interval":
        return float(np.mean([_resampled_verdict(d, row, rule, metric) == row.verdict for d in draws]))
    means = draws.mean(axis=1)
    own_ss = ((draws - means[:, None]) ** 2).sum(axis=1)  # this experiment's (n - 1) s²
    others_ss, _ = _rest_of_pool(row)
    s_seed = np.sqrt(np.clip(others_ss + own_ss, 0, None) / row.df)
    sigma, _, _ = _sigma(s_seed, n, means, row.eval_size, metric in rule.sampling, rule)
    z = (row.paper - means) / sigma
    return float(np.mean(_verdicts(z, np.full(len(z), row.df), rule) == row.verdict))


def _resampled_verdict(values, row, rule: VerdictRule, metric: str) -> str:
    """The verdict of a number whose runs split, on one resample of its runs' values."""
    collapsed = at_chance(values, row.chance)
    if row.by == "collapse rate":
        return rate_verdict(int(collapsed.sum()), len(values), rule)
    learned = values[~collapsed]
    others_ss, others_df = _rest_of_pool(row)
    df = others_df + max(len(learned) - 1, 0)
    if len(learned) == 0 or df <= 0:
        return "n/a"
    s_seed = math.sqrt(max(others_ss + float(((learned - learned.mean()) ** 2).sum()), 0.0) / df)
    sigma, _, _ = _sigma(s_seed, len(learned), learned.mean(), row.eval_size, metric in rule.sampling, rule)
    return str(_verdicts((row.paper - learned.mean()) / sigma, df, rule)[0])


# -- the two kinds of table ----------------------------------------------------------
def summary_frame(runs, rule: VerdictRule, readings: dict | None = None, need: dict | None = None) -> pd.DataFrame:
    """Every number of the report (any run's ``paper`` entry) beside ours, judged; with
    ``need`` (``rule``: kmlp.study.seeds.SeedsByNeed's, ``configured``: experiment -> its
    configured seeds), how many seeds each number's experiment was given and why it
    stopped there (``seeds``, ``added``, ``need``)."""
    frame = tidy(runs)
    unknown = sorted({m for r in runs for m in r.paper} - set(FINAL_METRICS))
    if unknown:
        raise KmlpError(f"paper values for unknown metric(s) {unknown}")
    exps = list(dict.fromkeys(frame.experiment))
    has = frame.dropna(subset=["paper"]).groupby("experiment").metric.agg(set)
    numbers = [(e, m) for e in exps for m in METRIC_ORDER if m in has.get(e, set())]
    out = judge(frame, rule, numbers).reset_index()
    out.insert(2, "reading", [(readings or {}).get(e, "") for e in out.experiment])
    if need:
        from ..study.seeds import SeedsByNeed

        policy = SeedsByNeed.from_dict(need["rule"])
        seeds = frame.drop_duplicates(["experiment", "seed"]).groupby("experiment").size()
        out["seeds"] = [int(seeds[e]) for e in out.experiment]
        out["added"] = [s - len(need["configured"].get(e, [])) for e, s in zip(out.experiment, out.seeds, strict=True)]
        out["need"] = [policy.state(st, n) for st, n in zip(out.stability, out.seeds, strict=True)]
    return out


def grid_frame(runs, spec: TableSpec, rule: VerdictRule) -> pd.DataFrame:
    """One row per cell of a grid table, row by row."""
    frame = tidy(runs)
    present = set(frame.experiment)
    cells = spec.cells()
    missing = list(dict.fromkeys(e for _, _, e, _ in cells if e not in present))
    if missing:
        raise KmlpError(f"no run file was given for experiment(s) {', '.join(missing)}")
    judged = judge(frame, rule, list(dict.fromkeys((e, m) for _, _, e, m in cells)))
    out = pd.DataFrame(cells, columns=["row", "column", "experiment", "metric"])
    return out.join(judged, on=["experiment", "metric"])
