"""Explanations of the report's numbers that ours do not match: each a hypothesis in one
line, the runs that test it, and whether it is a plausible reading of the report's text.

A hypothesis reads the runs of one experiment as they are (an ablation the config trains,
or an existing configuration read as the one the report meant), or, with ``pick``, the
runs of several: per seed, the run with the highest ``pick`` metric (a choice among the
grid's networks, as the report's "best network" may have been). It *explains* the number
only if it is consistent under the verdict rule and plausible; ``because`` quotes the
report's words that make it so, or not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..nn.metrics import FINAL_METRICS


@dataclass(frozen=True)
class Hypothesis:
    name: str
    says: str  # the hypothesis, one line
    runs: tuple[str, ...]  # the experiments whose runs test it
    plausible: bool  # a reading the report's text allows
    because: str  # the report's words that make it plausible, or not
    pick: str = ""  # with several experiments: per seed, the run with the highest value of this metric


@dataclass(frozen=True)
class Discrepancy:
    """A number of the report (an experiment's metric) and the explanations tried for it."""

    experiment: str
    metric: str
    hypotheses: tuple[Hypothesis, ...]
    untested: tuple[str, ...] = ()  # explanations this study cannot test, a line each

    @classmethod
    def from_dict(cls, d: dict) -> Discrepancy:
        return cls(
            experiment=d["experiment"],
            metric=d["metric"],
            hypotheses=tuple(Hypothesis(**{**h, "runs": tuple(h["runs"])}) for h in d["hypotheses"]),
            untested=tuple(d.get("untested", ())),
        )

    def as_dict(self) -> dict:
        return asdict(self)

    def experiments(self) -> list[str]:
        """Every experiment whose runs it reads."""
        return list(dict.fromkeys([self.experiment, *(e for h in self.hypotheses for e in h.runs)]))

    @staticmethod
    def check(d: dict, known) -> list[str]:
        """Every rule an entry breaks, a line each (the schema holds the types)."""
        found = []
        if d["metric"] not in FINAL_METRICS:
            found.append(f"metric: {d['metric']!r} is not one of {', '.join(FINAL_METRICS)}")
        names = [h["name"] for h in d["hypotheses"]]
        if len(set(names)) < len(names):
            found.append(f"hypotheses: names must differ, got {names}")
        for e in [d["experiment"], *(e for h in d["hypotheses"] for e in h["runs"])]:
            if e not in known:
                found.append(f"{e!r} is not an experiment of the config")
        for h in d["hypotheses"]:
            if len(h["runs"]) > 1 and not h.get("pick"):
                found.append(f"hypotheses.{h['name']}: several experiments need a `pick` metric")
            if h.get("pick") and h["pick"] not in FINAL_METRICS:
                found.append(f"hypotheses.{h['name']}.pick: {h['pick']!r} is not one of {', '.join(FINAL_METRICS)}")
        return found
