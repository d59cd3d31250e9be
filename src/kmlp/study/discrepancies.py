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

from dataclasses import asdict, dataclass, field

from ..nn.metrics import FINAL_METRICS

KINDS = ("implementation", "procedure")


@dataclass(frozen=True)
class Hypothesis:
    name: str
    says: str  # the hypothesis, one line
    runs: tuple[str, ...]  # the experiments whose runs test it
    plausible: bool  # a reading the report's text allows
    because: str  # the report's words that make it plausible, or not
    pick: str = ""  # with several experiments: per seed, the run with the highest value of this metric
    kind: str = "implementation"  # a claim about the report's code, or about its procedure
    touches: dict = field(default_factory=dict)  # other report experiment -> its experiment under the hypothesis
    untrained: tuple[str, ...] = ()  # report experiments it touches that no run tests (the budget)
    report_pick: tuple[str, ...] = ()  # a pick's: the experiments the report itself put best
    posed: str = ""  # the commit that first stated it
    post_hoc: bool = True  # posed or revised after its result was seen (unknown: it may have been)
    history: tuple[str, ...] = ()  # each later change and why

    @classmethod
    def from_dict(cls, h: dict) -> Hypothesis:
        seq = {k: tuple(h[k]) for k in ("runs", "untrained", "report_pick", "history") if k in h}
        return cls(**{**h, **seq, "touches": dict(h.get("touches") or {})})

    def tested(self, experiment: str) -> dict[str, str]:
        """Every report experiment it touches -> the experiment whose runs stand for it under
        the hypothesis; the number's own experiment first (for a pick: the hypothesis's name)."""
        own = self.name if self.pick else self.runs[0]
        return {experiment: own, **{e: r for e, r in self.touches.items() if e != experiment}}

    @property
    def complete(self) -> bool:
        """Trained on every number it touches."""
        return not self.untrained


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
            hypotheses=tuple(Hypothesis.from_dict(h) for h in d["hypotheses"]),
            untested=tuple(d.get("untested", ())),
        )

    def as_dict(self) -> dict:
        return asdict(self)

    def experiments(self) -> list[str]:
        """Every experiment whose runs it reads."""
        read = [e for h in self.hypotheses for e in (*h.runs, *h.touches, *h.touches.values(), *h.report_pick)]
        return list(dict.fromkeys([self.experiment, *read]))

    @staticmethod
    def check(d: dict, known) -> list[str]:
        """Every rule an entry breaks, a line each (the schema holds the types)."""
        found = []
        if d["metric"] not in FINAL_METRICS:
            found.append(f"metric: {d['metric']!r} is not one of {', '.join(FINAL_METRICS)}")
        names = [h["name"] for h in d["hypotheses"]]
        if len(set(names)) < len(names):
            found.append(f"hypotheses: names must differ, got {names}")
        named = [
            e
            for h in d["hypotheses"]
            for e in (*h["runs"], *h.get("touches", {}), *h.get("touches", {}).values(), *h.get("untrained", ()),
                      *h.get("report_pick", ()))
        ]  # fmt: skip
        for e in dict.fromkeys([d["experiment"], *named]):
            if e not in known:
                found.append(f"{e!r} is not an experiment of the config")
        for h in d["hypotheses"]:
            both = set(h.get("touches", {})) & set(h.get("untrained", ()))
            if both:
                found.append(f"hypotheses.{h['name']}: {', '.join(sorted(both))} both touched and untrained")
            own = h["runs"][0] if len(h["runs"]) == 1 and not h.get("pick") else None
            if d["experiment"] in h.get("touches", {}) and h["touches"][d["experiment"]] != own:
                found.append(f"hypotheses.{h['name']}: touches {d['experiment']} with another experiment than its runs")
            if h.get("report_pick") and not h.get("pick"):
                found.append(f"hypotheses.{h['name']}: report_pick needs a `pick`")
        for h in d["hypotheses"]:
            if len(h["runs"]) > 1 and not h.get("pick"):
                found.append(f"hypotheses.{h['name']}: several experiments need a `pick` metric")
            if h.get("pick") and h["pick"] not in FINAL_METRICS:
                found.append(f"hypotheses.{h['name']}.pick: {h['pick']!r} is not one of {', '.join(FINAL_METRICS)}")
        return found
