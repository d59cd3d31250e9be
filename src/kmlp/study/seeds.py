"""Seeds by need: a number of the report whose verdict is not stable gets more seeds.

After the configured seeds are trained, the workflow judges every number and asks
:meth:`SeedsByNeed.decide` which experiments get ``step`` seeds more; it trains them,
judges again, and asks again, until no number gets more (a checkpoint per round). A
number gets none when it is stable (``stable``: the share of bootstrap resamples that
give its verdict), when its experiment holds ``cap`` seeds, or when the seeds would take
the study past ``budget`` (a share of its predicted training time, kmlp.study.cost):
the budget is spent on the report's own numbers first, then on the other readings,
the least stable first. Deterministic: the same runs give the same decision.

Pure Python, like the rest of :mod:`kmlp.study`: the workflow asks it while it plans.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

#: A number's state: stable, given more seeds this round, or held at the cap or budget.
STABLE, MORE, CAP, BUDGET = "stable", "more seeds", "at the cap", "budget spent"
#: The comment key of the rule and the configured seeds in the summary's CSV and the record's data.
COMMENT_KEY = "seeds_by_need"


@dataclass(frozen=True)
class SeedsByNeed:
    enabled: bool
    stable: float
    step: int
    cap: int
    budget: float

    @classmethod
    def from_dict(cls, d: dict) -> SeedsByNeed:
        return cls(bool(d["enabled"]), float(d["stable"]), int(d["step"]), int(d["cap"]), float(d["budget"]))

    def as_dict(self) -> dict:
        return asdict(self)

    def state(self, stability: float, runs: int) -> str:
        """Where a number ended: stable, at the cap, or held by the budget ('' if unjudged)."""
        if not math.isfinite(stability):
            return ""
        if stability >= self.stable:
            return STABLE
        return CAP if runs >= self.cap else BUDGET

    def decide(self, numbers, seeds: dict, configured: dict, seconds: dict, study_seconds: float) -> dict:
        """One round: which experiments get which seeds more.

        ``numbers``: the judged numbers, each a dict with experiment, metric, stability and
        reading ('' under the report's setting); ``seeds``: experiment -> the seeds it has
        now; ``configured``: -> the seeds the config gives it; ``seconds``: -> a run's
        predicted seconds; ``study_seconds``: the study's predicted training time.
        Returns the round: ``added`` (experiment -> new seeds), ``seeds`` (every
        experiment's seeds after it), each number's ``state``, and the budget in seconds.
        """
        budget_s = self.budget * study_seconds
        spent = sum((len(seeds[e]) - len(configured[e])) * seconds[e] for e in seeds)
        added: dict[str, list[int]] = {}
        states = {}
        judged = [n for n in numbers if math.isfinite(n["stability"])]
        for n in sorted(judged, key=lambda n: (bool(n["reading"]), n["stability"])):
            e, key = n["experiment"], (n["experiment"], n["metric"])
            if n["stability"] >= self.stable:
                states[key] = STABLE
                continue
            if e in added:  # another of its numbers got it seeds this round
                states[key] = MORE
                continue
            more = min(self.step, self.cap - len(seeds[e]))
            if more <= 0:
                states[key] = CAP
            elif spent + more * seconds[e] > budget_s:
                states[key] = BUDGET
            else:
                start = max(seeds[e]) + 1
                added[e] = list(range(start, start + more))
                spent += more * seconds[e]
                states[key] = MORE
        return {
            "added": added,
            "seeds": {e: [*s, *added.get(e, [])] for e, s in seeds.items()},
            "numbers": [
                {
                    "experiment": n["experiment"],
                    "metric": n["metric"],
                    "stability": n["stability"],
                    "runs": len(seeds[n["experiment"]]),
                    "state": states.get((n["experiment"], n["metric"]), ""),
                }
                for n in numbers
            ],  # fmt: skip
            "spent_s": spent,
            "budget_s": budget_s,
            "done": not added,
        }
