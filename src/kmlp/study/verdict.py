"""The verdict rule's parameters: how a number of the report is judged against ours.

Light (no NumPy): the study checks the config's ``verdict`` section with it when the
workflow plans; :mod:`kmlp.aggregate.stats` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import KmlpError
from ..nn.metrics import ACCURACIES


class VerdictError(ValueError):
    """A verdict section that breaks rules: one line per broken rule in ``problems``."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class VerdictRule:
    """The verdict rule's parameters: the config's ``verdict`` section."""

    consistent: float = 0.95
    inconsistent: float = 0.999
    sampling: tuple = ("val_acc",)
    sampling_factor: float = 1.0
    paper_decimals: int = 3
    pools: dict = field(default_factory=dict)
    homogeneity: float = 0.0  # Bartlett's level: a pool member it sets apart gets its own variance
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise VerdictError(problems)

    def problems(self) -> list[str]:
        """Every rule the parameters break, a line each, named by their config key."""
        found = []
        if not 0 < self.consistent < 1 or not 0 < self.inconsistent < 1:
            found.append(f"consistent and inconsistent must lie in (0, 1), got {self.consistent}, {self.inconsistent}")
        elif not self.consistent < self.inconsistent:
            found.append(f"consistent {self.consistent} must be below inconsistent {self.inconsistent}")
        if not 0 <= self.homogeneity < 1:
            found.append(f"homogeneity must lie in [0, 1), got {self.homogeneity}")
        if not self.sampling_factor > 0:
            found.append(f"sampling_factor must be positive, got {self.sampling_factor}")
        if not all(m in ACCURACIES for m in self.sampling):
            found.append(f"sampling must list accuracies ({', '.join(ACCURACIES)}), got {list(self.sampling)}")
        for name, key, low in (("paper_decimals",) * 2 + (0,), ("resamples", "bootstrap.resamples", 1),
                               ("seed", "bootstrap.seed", 0)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                found.append(f"{key} must be an integer >= {low}, got {value!r}")
        seen: dict = {}
        for pool, spec in self.pools.items():
            if spec["metric"] not in ACCURACIES:
                found.append(f"pools.{pool}.metric: {spec['metric']!r} is not one of {', '.join(ACCURACIES)}")
            for e in spec["experiments"]:
                other = seen.setdefault((e, spec["metric"]), pool)
                if other != pool:
                    found.append(f"pools.{pool}.experiments: {e} is also in pool {other} for {spec['metric']}")
        return found

    @classmethod
    def from_dict(cls, d: dict | None) -> VerdictRule:
        """The rule of a config's ``verdict`` section; a KmlpError names what is wrong."""
        try:
            return cls._build(d)
        except VerdictError as exc:
            raise KmlpError(f"bad verdict rule: {exc}") from None

    @classmethod
    def check(cls, d: dict | None) -> list[str]:
        """Every rule a ``verdict`` section breaks, a line each (empty: it is valid)."""
        try:
            cls._build(d)
        except VerdictError as exc:
            return exc.problems
        return []

    @classmethod
    def _build(cls, d: dict | None) -> VerdictRule:
        d = dict(d or {})
        boot = d.pop("bootstrap", {})
        sampling = d.pop("sampling", cls.sampling)
        if not isinstance(boot, dict):
            raise VerdictError(["bootstrap must be a mapping"])
        if isinstance(sampling, str):
            raise VerdictError(["sampling must be a list"])
        try:
            return cls(
                sampling=tuple(sampling),
                pools={
                    k: {"metric": v["metric"], "experiments": list(v["experiments"])}
                    for k, v in d.pop("pools", {}).items()
                },  # fmt: skip
                resamples=boot.get("resamples", cls.resamples),
                seed=boot.get("seed", cls.seed),
                **d,
            )
        except (TypeError, KeyError, AttributeError) as exc:
            raise VerdictError([repr(exc)]) from None

    def as_json(self) -> str:
        """The rule as the CSV outputs record it (their ``verdict`` comment line)."""
        import json
        from dataclasses import asdict

        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> VerdictRule:
        """The rule :meth:`as_json` recorded (an empty text: the default rule)."""
        import json

        d = json.loads(text) if text else {}
        boot = {"resamples": d.pop("resamples", cls.resamples), "seed": d.pop("seed", cls.seed)}
        return cls.from_dict({**d, "bootstrap": boot})

    def pool_of(self, experiment: str, metric: str) -> str:
        """The pool of an experiment's metric ('' for none: its own variance)."""
        return next(
            (p for p, spec in self.pools.items() if spec["metric"] == metric and experiment in spec["experiments"]), ""
        )

    def pooled_with(self, experiments) -> list[str]:
        """The experiments and every experiment pooled with one of them (their variance is shared)."""
        more = [e for p in self.pools.values() if set(p["experiments"]) & set(experiments) for e in p["experiments"]]
        return list(dict.fromkeys([*experiments, *more]))

    def describe(self) -> str:
        """The rule in one sentence, for captions and the record."""
        alike = "experiments"
        if self.homogeneity:
            alike += f" Bartlett's test at {self.homogeneity:g} does not set apart"
        return (
            f"consistent when the report's value lies inside the interval that one run of ours falls in "
            f"with {self.consistent:.0%} probability, inconsistent outside the {self.inconsistent:.1%} one, "
            f"borderline between; the spread of one run is the seed variance (pooled within alike {alike}) "
            "plus, for "
            + (", ".join(self.sampling) or "no metric")
            + f", {self.sampling_factor:g} times the binomial sampling variance of an accuracy on our evaluation "
            f"images, which are not the report's, plus the report's rounding to {self.paper_decimals} decimals"
        )
