"""Every setting of a net, a training run and a gradient check, each defined once.

``kmlp train`` and ``kmlp gradcheck`` make their flags from these fields, the workflow
hands an experiment's settings over whole, and :mod:`kmlp.study` checks a config's
experiments by building them; so a new setting is a new field here (plus its line in the
config schema and the docs), and a rule between settings is written once, in
``problems``. Values are coerced when a settings object is made; a bad one raises
:class:`SettingsError` listing every broken rule.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields


class SettingsError(ValueError):
    """Settings that break rules: one line per broken rule in ``problems``; ``settings``
    the object they made, where their types were right."""

    def __init__(self, problems: list[str], settings=None):
        super().__init__("; ".join(problems))
        self.problems = problems
        self.settings = settings


def setting(default, help: str, choices: tuple | None = None, ablation: bool = False):
    """A field with its help text (and allowed values) for the command line. An
    ``ablation`` field is recorded only where it is not at its default, so that adding
    one leaves every earlier output (run files, gradient checks) byte for byte."""
    return field(default=default, metadata={"help": help, "choices": choices, "ablation": ablation})


def _recorded(obj) -> list[str]:
    """The names of the fields a record of ``obj`` holds: all but ablations at their default."""
    return [f.name for f in fields(obj) if not f.metadata.get("ablation") or getattr(obj, f.name) != f.default]


@dataclass(frozen=True)
class NetSettings:
    """What the net is: its hidden layers, batch norm and initial weights."""

    hidden: tuple[int, ...] = setting((50, 50), "hidden layer widths; 50 50 is a 3-layer net")
    batch_norm: bool = setting(False, "batch-normalise the hidden layers")
    init: str = setting("he", "weight initialisation", choices=("he", "normal"))
    sigma: float | None = setting(None, "std of every layer's weights, for init normal")
    bn_order: str = setting(
        "before", "batch norm before the ReLU (the course's) or after it", choices=("before", "after"), ablation=True
    )

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        problems = self.problems()
        if problems:
            raise SettingsError(problems, self)

    def problems(self) -> list[str]:
        """Every rule these settings break, a line each (the rules of settings live here)."""
        found = []
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                found.append(f"{f.name} must be one of {', '.join(choices)}, not {getattr(self, f.name)!r}")
        if any(w < 1 for w in self.hidden):
            found.append(f"hidden widths must be positive, got {list(self.hidden)}")
        if self.init == "normal" and self.sigma is None:
            found.append("init normal needs a sigma")
        if self.sigma is not None and not self.sigma > 0:
            found.append(f"sigma must be positive, got {self.sigma}")
        if self.batch_norm and not self.hidden:
            found.append("batch_norm needs at least one hidden layer (hidden is empty)")
        if self.bn_order != "before" and not self.batch_norm:
            found.append(f"bn_order {self.bn_order} needs batch_norm: true")
        return found

    @classmethod
    def from_dict(cls, values: dict):
        """Settings from a mapping such as a config entry; unknown keys are refused."""
        if not isinstance(values, dict):
            raise SettingsError([f"settings must be a mapping of names to values, not {values!r:.60}"])
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise SettingsError(
                [f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(f.name for f in fields(cls))}"]
            )
        return cls(**values)

    @classmethod
    def check(cls, values: dict, n_train: int | None = None) -> list[str]:
        """Every rule that settings made from ``values`` break, a line each, and with
        ``n_train`` those against a training set of that many images (empty: valid)."""
        try:
            made, found = cls.from_dict(values), []
        except SettingsError as exc:
            made, found = exc.settings, list(exc.problems)
        if made is not None and n_train is not None:
            found += made.data_problems(n_train)
        return found

    def data_problems(self, n_train: int) -> list[str]:
        """What can only be checked against the data (nothing, for a net alone)."""
        return []

    def as_dict(self) -> dict:
        """The settings as a mapping, ablation fields only where set."""
        d = asdict(self)
        d = {name: d[name] for name in _recorded(self)}
        d["hidden"] = list(self.hidden)
        return d

    def net_dict(self) -> dict:
        """The fields that say what the net is."""
        d = self.as_dict()
        return {f.name: d[f.name] for f in fields(NetSettings) if f.name in d}


@dataclass(frozen=True)
class TrainSettings(NetSettings):
    """A net and how it is trained: mini-batch GD, cyclical learning rate, L2."""

    lam: float = setting(0.005, "L2 weight lambda on the sum of squared weights")
    n_batch: int = setting(100, "mini-batch size")
    eta_min: float = setting(1e-5, "cyclical learning rate: minimum")
    eta_max: float = setting(1e-1, "cyclical learning rate: maximum")
    n_s: int = setting(2250, "half-cycle length in updates")
    cycles: int = setting(2, "number of cycles (one cycle is 2 n_s updates)")
    eval_every: int = setting(0, "updates between evaluations; 0: once per epoch")
    eval_train_subset: int = setting(
        0,
        "training images the history's train metrics use, a fixed random subset; "
        "0: all (the final train metrics always use all)",
    )
    dtype: str = setting("float32", "training precision", choices=("float32", "float64"))
    checkpoint: str = setting(
        "last",
        "the weights the final metrics measure: after the last update, or at the evaluation "
        "with the best validation accuracy",
        choices=("last", "best_val"),
        ablation=True,
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if self.lam < 0:
            found.append(f"lam must not be negative, got {self.lam}")
        for name in ("n_batch", "n_s", "cycles"):
            if getattr(self, name) < 1:
                found.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_every", "eval_train_subset"):
            if getattr(self, name) < 0:
                found.append(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0 < self.eta_min <= self.eta_max:
            found.append(f"need 0 < eta_min <= eta_max, got eta_min {self.eta_min}, eta_max {self.eta_max}")
        return found

    def data_problems(self, n_train: int) -> list[str]:
        """The batch must fit in the training set."""
        if self.n_batch > n_train:
            return [f"n_batch must be in 1..{n_train} (the training-set size), got {self.n_batch}"]
        return []

    def check_data(self, n_train: int) -> None:
        problems = self.data_problems(n_train)
        if problems:
            raise SettingsError(problems)

    def memory_mb(self, stored_pixels: int, d_in: int) -> int:
        """A run's memory in MB, for a data set of ``stored_pixels`` (its file holds a byte
        per pixel): the data in the run's dtype, the copy of the training subset the
        history evaluates, and 400 MB for Python and, on a cluster, the Snakemake process
        sharing the job's allocation.

        Measured on CIFAR-10 (/usr/bin/time -v, subset 10,000): peak RSS of `kmlp train`
        929 MB in float32 and 1,799 MB in float64; this gives 1,390 and 2,380 MB.
        """
        itemsize = 8 if self.dtype == "float64" else 4
        return math.ceil(400 + 1.15 * itemsize * (stored_pixels + d_in * self.eval_train_subset) / 1e6)

    @property
    def total_updates(self) -> int:
        return 2 * self.n_s * self.cycles

    def evaluations(self, n_train: int) -> int:
        """How often the history evaluates (as :func:`kmlp.nn.training.fit` does): at step
        0, every ``eval_every`` updates (0: every epoch) and after the last update."""
        every = self.eval_every or max(1, n_train // self.n_batch)
        return 1 + self.total_updates // every + (1 if self.total_updates % every else 0)

    def history_rows(self, n_train: int) -> int:
        """The training images an evaluation of the history reads (its subset, or all)."""
        return self.eval_train_subset or n_train

    def schedule_dict(self) -> dict:
        """How the net is trained (the run file keeps the net's own config apart)."""
        net = {f.name for f in fields(NetSettings)}
        own = [name for name in _recorded(self) if name not in net and name != "dtype"]
        return {name: getattr(self, name) for name in own}


@dataclass(frozen=True)
class GradcheckSettings(NetSettings):
    """A net and the centred-difference check of its analytic gradients (float64)."""

    lam: float = setting(0.0, "L2 weight lambda")
    n_samples: int = setting(20, "mini-batch size of the check")
    input_dim: int = setting(10, "input dimensions used (the first ones)")
    h: float = setting(1e-5, "finite-difference step")
    seed: int = setting(1, "seed of the weights and of random inputs")
    max_rel_error: float = setting(1e-6, "pass threshold on the largest relative error")

    def problems(self) -> list[str]:
        found = super().problems()
        if self.lam < 0:
            found.append(f"lam must not be negative, got {self.lam}")
        if self.n_samples < 2 or self.input_dim < 1 or self.seed < 0:
            found.append(
                "n_samples must be at least 2, input_dim at least 1 and seed "
                f"not negative, got {self.n_samples}, {self.input_dim}, {self.seed}"
            )
        if not (self.h > 0 and self.max_rel_error > 0):
            found.append(f"h and max_rel_error must be positive, got {self.h}, {self.max_rel_error}")
        return found


_UNIONS = (typing.Union, types.UnionType)


def _coerce(name: str, value, kind):
    """``value`` as the field's type, or a ValueError naming the field."""
    origin = typing.get_origin(kind)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float or (origin in _UNIONS and float in typing.get_args(kind)):
        if value is None and type(None) in typing.get_args(kind):
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(name, v, int) for v in value)
    raise SettingsError([f"{name} must be {_describe(kind)}, not {value!r:.60}"])


def _describe(kind) -> str:
    if typing.get_origin(kind) is tuple:
        return "a list of integers"
    if typing.get_origin(kind) in _UNIONS:
        return "a finite number or null"
    return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}.get(kind, str(kind))
