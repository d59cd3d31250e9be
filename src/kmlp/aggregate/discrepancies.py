"""The record's "Discrepancies": every number of the report that is not consistent under the
report's setting (and any the config tests explanations of), beside the explanations
tested for it (:mod:`kmlp.study.discrepancies`), each judged by the same rule as the summary.

A hypothesis on one experiment is that experiment's number with the report's value put
in its place, judged within its variance pool as the summary would judge it; one that
picks among several experiments is a new set of runs (per seed, the best by ``pick``),
judged on its own seed variance.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from ..errors import KmlpError
from ..study.discrepancies import Discrepancy, Hypothesis
from .stats import STAT_COLUMNS, judge, tidy

#: What the table holds per row besides the judged statistics.
KEYS = ["experiment", "metric", "paper", "hypothesis", "says", "runs", "pick", "plausible", "because"]
#: ... and the judged statistics (those of the summary).
STATS = [c for c in STAT_COLUMNS if c != "paper"]
#: The row of a number under the report's setting (the summary's verdict, judged again).
AS_RUN = "the report's setting"


def _paper(runs, experiment: str, metric: str) -> float:
    values = {r.paper.get(metric) for r in runs if r.experiment == experiment} - {None}
    if len(values) != 1:
        raise KmlpError(f"the runs of {experiment} give {len(values)} report values for {metric}, not one")
    return float(values.pop())


def hypothesis_runs(runs, h: Hypothesis, metric: str, paper: float) -> tuple[list, str]:
    """The runs a hypothesis is judged on and the experiment name to judge: one experiment's
    runs with ``paper`` as their report value, or, with ``pick``, per seed that all its
    experiments share, the run with the highest ``pick`` value renamed ``h.name``."""
    present = {r.experiment for r in runs}
    missing = [e for e in h.runs if e not in present]
    if missing:
        raise KmlpError(f"hypothesis {h.name}: no run file was given for {', '.join(missing)}")
    if not h.pick:
        (source,) = h.runs
        return [replace(r, paper={**r.paper, metric: paper}) if r.experiment == source else r for r in runs], source
    by_seed: dict[int, list] = {}
    for r in runs:
        if r.experiment in h.runs and r.status != "diverged":
            by_seed.setdefault(r.seed, []).append(r)

    def score(r) -> float:
        v = float(r.final[h.pick])
        return v if math.isfinite(v) else -math.inf

    picked = [
        replace(max(members, key=score), experiment=h.name, paper={metric: paper})
        for seed, members in sorted(by_seed.items())
        if len(members) == len(h.runs)
    ]
    return picked, h.name


def discrepancy_frame(runs, specs: list[Discrepancy], summary: list[dict], rule) -> pd.DataFrame:
    """A row per (number, hypothesis), for every number not consistent under the report's
    setting and every number the config tests explanations of (its verdict may have moved
    to consistent: the explanations stay in view). First the number as the summary judges
    it, then each hypothesis; a number with no configured explanation gets its first row
    alone. ``summary``: the summary CSV's rows, whose order the numbers keep."""
    by_number = {(d.experiment, d.metric): d for d in specs}
    open_numbers = [
        (r["experiment"], r["metric"])
        for r in summary
        if not r.get("reading") and (r["verdict"] != "consistent" or (r["experiment"], r["metric"]) in by_number)
    ]
    rows = []
    for experiment, metric in open_numbers:
        d = by_number.get((experiment, metric))
        paper = _paper(runs, experiment, metric)
        setting = Hypothesis(AS_RUN, "as the summary judges it", (experiment,), True, "")
        for h in [setting, *(d.hypotheses if d else ())]:
            members, name = hypothesis_runs(runs, h, metric, paper)
            stats = judge(tidy(members), rule, [(name, metric)]).iloc[0]
            keys = [experiment, metric, paper, h.name, h.says, " ".join(h.runs), h.pick, h.plausible, h.because]
            rows.append({**stats[STATS].to_dict(), **dict(zip(KEYS, keys, strict=True))})
    frame = pd.DataFrame(rows, columns=KEYS + STATS)
    frame["explains"] = (frame.hypothesis != AS_RUN) & frame.plausible & (frame.verdict == "consistent")
    return frame
