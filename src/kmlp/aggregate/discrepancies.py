"""The record's "Discrepancies": every number of the report that is not consistent under the
report's setting (and any the config tests explanations of), beside the explanations
tested for it (:mod:`kmlp.study.discrepancies`), each judged by the summary's rule and
graded by what its evidence shows (config/README.md, "Judging an explanation").

- **One variance model.** A hypothesis's runs stand in for a report experiment's; they
  are judged with that number's variance model: its pool's seed variance where the
  number is pooled, their own where it is not.
- **Corrected for the tries.** On the number it is posed for, the m hypotheses tried are
  one family: their two-sided p values are Holm-adjusted before the verdict.
- **Every number it touches.** A hypothesis is judged on every report number it touches
  (``touches``: under the summary's uncorrected rule), and by a joint fit over all of
  them, Σ z*² against χ² with k degrees of freedom (z*: the normal quantile of each
  number's two-sided t p value), beside our setting's over the same numbers. A procedure
  that picks per seed is also judged on the report's own pick (``report_pick``): the
  share of seeds whose pick is one of the report's, by the rate rule.
- **Graded.** *ruled out*: inconsistent on the number, or borderline on it and
  inconsistent on another it touches; *not ruled out*: borderline; *fits this number
  only*: consistent on it, but inconsistent on another number it touches or a worse
  joint fit than our setting's; *explains*: consistent, none of that, a plausible reading,
  posed before its result and trained on every number it touches; *fits*: the same
  short of the last three.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.stats

from ..errors import KmlpError
from ..study.discrepancies import Discrepancy, Hypothesis
from .stats import STAT_COLUMNS, holm, judge, level_of_p, p_value, rate_verdict, tidy

#: What the table holds per row besides the judged statistics.
KEYS = ["experiment", "metric", "paper", "hypothesis", "says", "runs", "pick", "plausible", "because", "role",
        "number_experiment", "number_metric", "stands_in", "kind", "posed", "post_hoc", "untrained"]  # fmt: skip
#: ... and the judged statistics (those of the summary).
STATS = [c for c in STAT_COLUMNS if c != "paper"]
#: ... and what a hypothesis row adds: the family, the corrected verdict, the numbers it
#: touches, the joint fits, the report's pick and the grade.
GRADED = ["p", "m", "p_holm", "verdict_holm", "touched", "inconsistent_on", "chi2", "chi2_p", "chi2_ours",
          "chi2_ours_p", "pick_k", "pick_n", "pick_verdict", "grade", "explains", "ours_mean", "ours_z",
          "ours_verdict"]  # fmt: skip
#: The row of a number under the report's setting (the summary's verdict, judged again).
AS_RUN = "the report's setting"
#: The grades, from the strongest claim to none.
GRADES = ("explains", "fits", "fits this number only", "not ruled out", "ruled out")


def _paper(runs, experiment: str, metric: str) -> float:
    values = {r.paper.get(metric) for r in runs if r.experiment == experiment} - {None}
    if len(values) != 1:
        raise KmlpError(f"the runs of {experiment} give {len(values)} report values for {metric}, not one")
    return float(values.pop())


def hypothesis_runs(runs, h: Hypothesis, metric: str, paper: float) -> tuple[list, str]:
    """The runs a hypothesis is judged on and the experiment name to judge: one experiment's
    runs with ``paper`` as their report value, or, with ``pick``, per seed that all its
    experiments share, the run with the highest ``pick`` value renamed ``h.name``."""
    picked, _ = picks(runs, h)
    if not h.pick:
        (source,) = h.runs
        return [replace(r, paper={**r.paper, metric: paper}) if r.experiment == source else r for r in runs], source
    return [replace(r, experiment=h.name, paper={metric: paper}) for r in picked], h.name


def picks(runs, h: Hypothesis) -> tuple[list, list[str]]:
    """With ``pick``: per seed all its experiments share, the run with the highest ``pick``
    value, and the experiment each came from (without: no runs)."""
    present = {r.experiment for r in runs}
    missing = [e for e in h.runs if e not in present]
    if missing:
        raise KmlpError(f"hypothesis {h.name}: no run file was given for {', '.join(missing)}")
    if not h.pick:
        return [], []
    by_seed: dict[int, list] = {}
    for r in runs:
        if r.experiment in h.runs and r.status != "diverged":
            by_seed.setdefault(r.seed, []).append(r)

    def score(r) -> float:
        v = float(r.final[h.pick])
        return v if math.isfinite(v) else -math.inf

    order = {e: i for i, e in enumerate(h.runs)}  # a tie goes to the first in `runs`
    chosen = [
        max(sorted(members, key=lambda r: order[r.experiment]), key=score)
        for _, members in sorted(by_seed.items())
        if len(members) == len(h.runs)
    ]
    return chosen, [r.experiment for r in chosen]


def _stand_in(runs, source: str, name: str, papers: dict) -> list:
    """``source``'s runs as the experiment ``name`` with the report's values ``papers``."""
    return [replace(r, experiment=name, paper=dict(papers)) for r in runs if r.experiment == source]


def _normal_equivalent(p) -> np.ndarray:
    """The |z| of a standard normal with the same two-sided p (so that t values of other
    degrees of freedom add up as χ²)."""
    return scipy.stats.norm.isf(np.asarray(p, float) / 2)


def discrepancy_frame(runs, specs: list[Discrepancy], summary: list[dict], rule) -> pd.DataFrame:
    """A row per (number, hypothesis), for every number not consistent under the report's
    setting and every number the config tests explanations of, with its grade; then, per
    hypothesis, a row per other report number it touches (``role`` "touched"). First the
    number as the summary judges it (``role`` "setting"), then each hypothesis (``role``
    "hypothesis"). ``summary``: the summary CSV's rows, whose order the numbers keep."""
    by_number = {(d.experiment, d.metric): d for d in specs}
    report_rows = [r for r in summary if not r.get("reading")]
    by_key = {(r["experiment"], r["metric"]): r for r in report_rows}
    metrics_of: dict[str, list[str]] = {}
    for e, m in by_key:
        metrics_of.setdefault(e, []).append(m)
    open_numbers = [k for k in by_key if by_key[k]["verdict"] != "consistent" or k in by_number]
    frame_all = tidy(runs)
    base = judge(frame_all, rule, list(by_key))  # the summary's numbers, their variance models

    def model(key):
        row = base.loc[key]
        return (row.pool, row.s_seed, row.df, row.pool_p) if row.pool else None

    def judged_as(members: list, name: str, keys: list) -> pd.DataFrame:
        """``members`` (the runs of experiment ``name``) judged on the numbers ``keys``, each
        with the variance model of the report number it stands in for."""
        variance = {(name, k[1]): model(k) for k in keys if model(k)}
        frame = pd.concat([frame_all[frame_all.experiment != name], tidy(members)], ignore_index=True)
        return judge(frame, rule, [(name, m) for _, m in keys], variance)

    rows = []
    for experiment, metric in open_numbers:
        d = by_number.get((experiment, metric))
        paper = _paper(runs, experiment, metric)
        number_rows = []
        setting = Hypothesis(AS_RUN, "as the summary judges it", (experiment,), True, "", posed="")
        for h in [setting, *(d.hypotheses if d else ())]:
            is_setting = h is setting
            tested = {experiment: experiment} if is_setting else h.tested(experiment)
            touched = []
            for e, source in tested.items():
                ms = [metric] if (e == experiment and (h.pick or is_setting)) else metrics_of.get(e, [])
                ms = [metric, *(m for m in ms if m != metric)] if e == experiment else ms
                if not ms:
                    continue
                if e == experiment and h.pick:
                    chosen, _ = picks(runs, h)
                    members = [replace(r, experiment=h.name, paper={metric: paper}) for r in chosen]
                    name = h.name
                else:
                    name = source if is_setting else f"{source}\0{h.name}"
                    papers = {m: float(by_key[(e, m)]["paper"]) for m in ms}
                    members = _stand_in(runs, source, name, papers)
                    if not members:
                        raise KmlpError(f"hypothesis {h.name}: no run file was given for {source}")
                if is_setting:
                    judged, name = base, e
                else:
                    judged = judged_as(members, name, [(e, m) for m in ms])
                for m in ms:
                    stats = judged.loc[(name, m)].copy()
                    if not is_setting:
                        stats["stability"] = math.nan  # judged by its verdicts; no bootstrap of a stand-in
                    role = "setting" if is_setting else ("hypothesis" if (e, m) == (experiment, metric) else "touched")
                    keys = [experiment, metric, float(by_key[(e, m)]["paper"]), h.name, h.says, " ".join(h.runs),
                            h.pick, h.plausible, h.because, role, e, m, source if not h.pick or e != experiment
                            else h.name, h.kind, h.posed, h.post_hoc, " ".join(h.untrained)]  # fmt: skip
                    ours = base.loc[(e, m)]
                    mine = {"ours_mean": ours["mean"], "ours_z": ours.z, "ours_verdict": ours.verdict}
                    touched.append({**stats[STATS].to_dict(), **dict(zip(KEYS, keys, strict=True)), **mine})
            number_rows.append((h, touched))
        # the family on this number: its hypotheses' p values, Holm-adjusted
        own = [t[0] for _, t in number_rows]
        p = p_value([r["z"] for r in own], [r["df"] for r in own])
        p_holm = np.full(len(own), np.nan)
        p_holm[1:] = holm(p[1:])
        for i, (h, touched) in enumerate(number_rows):
            head = touched[0]
            head["p"], head["m"] = float(p[i]), len(own) - 1
            head["p_holm"] = float(p_holm[i]) if i else float(p[i])
            head["verdict_holm"] = (
                head["verdict"] if i == 0 or head["by"] != "interval" else str(level_of_p(p_holm[i], rule))
            )
            others = touched[1:]
            head["touched"] = len(touched)
            head["inconsistent_on"] = " ".join(
                f"{t['number_experiment']}:{t['number_metric']}" for t in others if t["verdict"] == "inconsistent"
            )
            zs = [t for t in touched if math.isfinite(float(t["z"]))]
            p_h = p_value([t["z"] for t in zs], [t["df"] for t in zs])
            ours = [base.loc[(t["number_experiment"], t["number_metric"])] for t in zs]
            p_o = p_value([o.z for o in ours], [o.df for o in ours])
            head["chi2"] = float(np.sum(_normal_equivalent(p_h) ** 2))
            head["chi2_ours"] = float(np.sum(_normal_equivalent(p_o) ** 2))
            head["chi2_p"] = float(scipy.stats.chi2.sf(head["chi2"], len(zs))) if zs else math.nan
            head["chi2_ours_p"] = float(scipy.stats.chi2.sf(head["chi2_ours"], len(zs))) if zs else math.nan
            head["pick_k"], head["pick_n"], head["pick_verdict"] = 0, 0, ""
            if i and h.report_pick:
                _, came_from = picks(runs, h)
                k = sum(e in h.report_pick for e in came_from)
                head["pick_k"], head["pick_n"] = k, len(came_from)
                head["pick_verdict"] = rate_verdict(k, len(came_from), rule)
            head["grade"] = "" if i == 0 else grade(h, head)
            head["explains"] = head["grade"] == "explains"
            for t in others:
                t.update({c: math.nan for c in ("p", "m", "p_holm", "chi2", "chi2_p", "chi2_ours", "chi2_ours_p")})
                t.update(verdict_holm="", touched=0, inconsistent_on="", pick_k=0, pick_n=0, pick_verdict="")
                t.update(grade="", explains=False)
            rows += touched
    return pd.DataFrame(rows, columns=KEYS + STATS + GRADED)


def grade(h: Hypothesis, row: dict) -> str:
    """What a hypothesis's evidence shows on its number (module docstring; config/README.md)."""
    here = row["verdict_holm"]
    elsewhere = bool(row["inconsistent_on"]) or row["pick_verdict"] == "inconsistent"
    if here == "inconsistent" or (here == "borderline" and elsewhere):
        return "ruled out"
    if here != "consistent":
        return "not ruled out"
    if elsewhere or not row["chi2"] <= row["chi2_ours"]:
        return "fits this number only"
    if h.plausible and not h.post_hoc and h.complete:
        return "explains"
    return "fits"


def why_not(h_row: dict) -> str:
    """Why a hypothesis that fits does not explain: the conditions it misses, a phrase each."""
    missed = []
    if h_row["plausible"] not in (True, "True"):
        missed.append("not a plausible reading")
    if h_row["post_hoc"] in (True, "True"):
        missed.append("posed or revised after its result")
    if h_row["untrained"]:
        n = len(str(h_row["untrained"]).split())
        missed.append(f"{n} number{'s' if n > 1 else ''} it touches untrained")
    return "; ".join(missed)
