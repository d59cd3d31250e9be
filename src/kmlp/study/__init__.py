"""The study: what a config says to run, read once, checked once, asked by the workflow.

The workflow's rules only look things up here (experiments and their seeds, each run's
settings, the tables, figures and verdict rule, a run's memory); the rules a setting,
table or verdict must follow are written once, in their classes (:mod:`kmlp.nn.settings`,
:mod:`.tables`, :mod:`.verdict`), and :meth:`Study.problems` asks each of them.
Pure Python: importing it loads no NumPy or h5py, so the workflow asks it while it plans.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property

from ..data.cifar import N_CLASSES, N_DIM, TEST_IMAGES, TRAIN_IMAGES
from ..nn.settings import GradcheckSettings, TrainSettings
from . import cost
from .discrepancies import Discrepancy
from .seeds import SeedsByNeed
from .tables import TableSpec
from .verdict import VerdictRule

__all__ = [
    "Discrepancy", "Figure", "Search", "SeedsByNeed", "Study", "StudyError", "TableSpec", "VerdictRule", "cost", "load",
]  # fmt: skip

#: The lambda search's runs are named with this prefix, which experiments may not use.
SEARCH_PREFIX = "lsearch-"
#: Tables the workflow makes itself, whose names the config's tables may not take.
RESERVED_TABLES = ("summary", "gradcheck", "diagnostics", "lambda_search")
#: Keys of an experiment that say how the workflow uses it, not how it is trained.
EXPERIMENT_KEYS = ("paper", "reading", "val_size", "seeds")


class StudyError(ValueError):
    """A config that breaks rules; ``problems`` has a line per broken rule, named by key."""

    def __init__(self, problems: list[str]):
        super().__init__("the config breaks these rules:\n" + "\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Figure:
    experiments: tuple[str, ...]
    title: str


class Search:
    """The course's coarse-to-fine lambda search: its runs are experiments too, in four
    passes. Each pass's lambdas come from a JSON document the one before wrote
    (``kmlp lambda-grid`` / ``lambda-pick``): the grid, then the coarse, fine and best picks."""

    #: pass -> the document its lambdas come from
    PICKED_BY = {"coarse": "grid", "fine": "coarse", "confirm": "fine", "final": "best"}

    def __init__(self, config: dict):
        self.config = config
        #: pass -> its runs, in order (named once: the workflow asks for every job)
        self.passes = {
            "coarse": [f"{SEARCH_PREFIX}coarse-{i:02d}" for i in range(config["coarse"]["n"])],
            "fine": [f"{SEARCH_PREFIX}fine-{i:02d}" for i in range(config["fine"]["n"])],
            "confirm": [f"{SEARCH_PREFIX}top-{i}" for i in range(config["confirm"]["top"])],
            "final": [f"{SEARCH_PREFIX}final"],
        }
        self._pass = {e: p for p, names in self.passes.items() for e in names}
        self.runs = list(self._pass)

    def pass_of(self, experiment: str) -> str | None:
        return self._pass.get(experiment)

    def picked_by(self, experiment: str) -> str:
        """The document that holds this run's lambda: grid, coarse, fine or best."""
        return self.PICKED_BY[self.pass_of(experiment)]

    def lam(self, experiment: str, doc: dict) -> float:
        """This run's lambda, read from the document it is picked by."""
        pass_ = self.pass_of(experiment)
        i = self.passes[pass_].index(experiment)
        if pass_ == "coarse":
            return doc["lambdas"][i]
        if pass_ == "fine":
            return doc["fine"][i]
        if pass_ == "confirm":
            return doc["top"][i]["lam"]
        return doc["best"]["lam"]

    def seeds(self, experiment: str) -> list[int] | None:
        """A search pass trains each lambda once (as the course does), its top candidates
        with the confirmation's seeds; the final run every seed of the study (None)."""
        pass_ = self.pass_of(experiment)
        if pass_ in ("coarse", "fine"):
            return [self.config["seed"]]
        return self.config["confirm"]["seeds"] if pass_ == "confirm" else None

    def spec(self, experiment: str) -> dict:
        final = self.pass_of(experiment) == "final"
        return {
            "batch_norm": self.config["batch_norm"],
            "n_s": self.config["n_s"],
            "cycles": self.config["final"]["cycles"] if final else self.config["cycles"],
        }


class Study:
    """A config (a dict, as Snakemake or :func:`load` reads it), answered."""

    def __init__(self, config: dict):
        self.config = config
        search = config["lambda_search"]
        self.search = Search(search) if search["enabled"] else None
        #: the configured experiments, then the search's runs
        self.experiments = list(config["experiments"]) + (self.search.runs if self.search else [])
        self.tables = {}
        for name, spec in config["tables"].items():
            if not TableSpec.check(spec):
                self.tables[name] = TableSpec.from_dict(spec)
        self.figures = {name: Figure(tuple(f["experiments"]), f["title"]) for name, f in config["figures"].items()}
        self.diagnostics = list(config["diagnostics"]["experiments"])
        self.discrepancies = [
            Discrepancy.from_dict(d) for d in config["discrepancies"] if not Discrepancy.check(d, self.experiments)
        ]
        self.seeds_by_need = SeedsByNeed.from_dict(config["seeds_by_need"])

    # -- experiments ----------------------------------------------------------------
    def configured(self, experiment: str) -> dict:
        """An experiment's own entry (a search run's, from ``lambda_search``)."""
        if self.search and self.search.pass_of(experiment):
            entry = self.search.spec(experiment)
            if self.search.pass_of(experiment) == "final":
                final = self.config["lambda_search"]["final"]
                entry.update(paper=final.get("paper", {}), reading=final.get("reading", ""))
            return entry
        return self.config["experiments"][experiment]

    def seeds(self, experiment: str) -> list[int]:
        own = self.search.seeds(experiment) if self.search and self.search.pass_of(experiment) else None
        return own or self.configured(experiment).get("seeds", self.config["seeds"])

    def runs(self, experiments) -> list[tuple[str, int]]:
        """(experiment, seed) of every run of ``experiments``."""
        return [(e, s) for e in experiments for s in self.seeds(e)]

    def spec(self, experiment: str, lam: float | None = None) -> dict:
        """The settings an experiment is trained with: the training defaults with its own
        keys (and a search run's ``lam``, which a pass of the search picks)."""
        own = {k: v for k, v in self.configured(experiment).items() if k not in EXPERIMENT_KEYS}
        return {**self.config["training"], **own, **({"lam": lam} if lam is not None else {})}

    def settings(self, experiment: str, lam: float | None = None) -> TrainSettings:
        return TrainSettings.from_dict(self.spec(experiment, lam))

    def paper(self, experiment: str) -> dict:
        """The report's numbers for an experiment (its run files store them)."""
        return self.configured(experiment).get("paper", {})

    def readings(self) -> dict[str, str]:
        """Experiment -> the alternative reading of the report it tests."""
        found = {e: self.configured(e).get("reading", "") for e in self.experiments}
        return {e: r for e, r in found.items() if r}

    def pooled_with(self, experiments) -> list[str]:
        """The experiments and every experiment of the study pooled with one of them: the
        runs a verdict on them reads."""
        return [e for e in self.verdict.pooled_with(experiments) if e in self.experiments]

    def paper_experiments(self) -> list[str]:
        """Experiments the report gives a number for: what the summary compares."""
        return [e for e in self.experiments if self.paper(e)]

    def report_experiments(self) -> list[str]:
        """The report's own configurations (a number, and no alternative reading)."""
        readings = self.readings()
        return [e for e in self.paper_experiments() if e not in readings]

    def retrained(self) -> list[str]:
        """Every distinct training setting the record uses, an experiment each: the configured
        ones (the report's, the readings, the ablations; an ablation that differs from an earlier
        one only in lambda is not one) and the lambda search's final run (its other passes differ
        from it only in lambda). The record check trains these again."""
        kept, seen = [], set()
        for e in self.config["experiments"]:
            spec = self.spec(e)
            key = json.dumps({k: v for k, v in spec.items() if k not in ("lam", "paper", "seeds", "reading")},
                             sort_keys=True)  # fmt: skip
            if self.paper(e) or key not in seen:  # an ablation that differs from one kept only in lambda: not again
                kept.append(e)
            seen.add(key)
        return kept + (self.search.passes["final"] if self.search else [])

    # -- data -----------------------------------------------------------------------
    def val_size(self, experiment: str | None = None) -> int:
        """The validation hold-out an experiment trains with (None: the default)."""
        default = self.config["data"]["val_size"]
        return self.configured(experiment).get("val_size", default) if experiment else default

    def val_sizes(self) -> list[int]:
        """Every validation hold-out the study uses, the default first."""
        return list(dict.fromkeys([self.val_size(), *(self.val_size(e) for e in self.config["experiments"])]))

    def data_name(self, val_size: int | None = None) -> str:
        """A data file's name part for a validation hold-out: none for the default."""
        val_size = self.val_size() if val_size is None else val_size
        return "" if val_size == self.val_size() else f"-val{val_size}"

    def val_size_named(self, name: str) -> int:
        """The validation hold-out of a data file's name part (:meth:`data_name`)."""
        return {self.data_name(v): v for v in self.val_sizes()}[name]

    @staticmethod
    def n_train(val_size: int) -> int:
        return TRAIN_IMAGES - val_size

    def memory_mb(self, experiment: str, stored_pixels: int) -> int:
        """A training run's memory in MB, for a data set of ``stored_pixels`` (lambda,
        which a search pass picks, does not change it)."""
        return self.settings(experiment, lam=0.0).memory_mb(stored_pixels, N_DIM)

    # -- the cluster: what a run costs, which runs share a job --------------------------
    def sizes(self, experiment: str) -> cost.Sizes:
        """The CIFAR-10 splits an experiment trains and is evaluated on."""
        val = self.val_size(experiment)
        return cost.Sizes(N_DIM, N_CLASSES, self.n_train(val), val, TEST_IMAGES)

    def run_seconds(self, experiment: str) -> float:
        """A training run's predicted wall time on one CPU of the cluster (lambda, which a
        search pass picks, does not change it)."""
        speed = self.config["cluster"]["speed"]
        return cost.seconds(self.settings(experiment, lam=0.0), self.sizes(experiment), speed=speed)

    def family(self, experiment: str) -> str:
        """The runs that can share a SLURM job: the configured experiments' runs, or one pass
        of the lambda search (each pass waits for the previous one's pick)."""
        search_pass = self.search.pass_of(experiment) if self.search else None
        return f"{SEARCH_PREFIX}{search_pass}" if search_pass else "train"

    @cached_property
    def chunks(self) -> dict[tuple[str, int], cost.Chunk]:
        """(experiment, seed) -> the chunk of runs that share its SLURM job: each family's
        runs in study order, cut into jobs of nearly equal predicted time, whole waves of
        ``cluster.cpus`` (:meth:`chunk_seconds`)."""
        families: dict[str, list] = {}
        seconds = {e: self.run_seconds(e) for e in self.experiments}  # (asked once per experiment, not per run)
        for e, s in self.runs(self.experiments):
            families.setdefault(self.family(e), []).append(((e, s), seconds[e]))
        cpus, longest = self.config["cluster"]["cpus"], self.longest_chunk()
        return {
            run: c
            for name, runs in families.items()
            for run, c in cost.chunked(runs, name, self.chunk_seconds(sum(s for _, s in runs)), cpus, longest).items()
        }

    def longest_chunk(self) -> float:
        """The most predicted seconds a chunk may hold: its job, asking for ``time_factor``
        times them and its start, asks for at most ``cluster.max_job_minutes``."""
        c = self.config["cluster"]
        return 60 * c["max_job_minutes"] / c["time_factor"] - cost.JOB_START_S

    def chunk_seconds(self, total: float) -> float:
        """The predicted seconds of a chunk of a family of ``total`` seconds: 60 times
        ``cluster.chunk_minutes`` when the config sets it, else sized to the study and the
        cluster's ``cpus`` (:func:`.cost.chunk_seconds`)."""
        c = self.config["cluster"]
        if c.get("chunk_minutes"):
            return 60 * c["chunk_minutes"]
        return cost.chunk_seconds(total, c["cpus"], self.longest_chunk())

    def training_seconds(self) -> float:
        """The predicted training time of every configured run of the study."""
        return sum(self.run_seconds(e) for e, _ in self.runs(self.experiments))

    def added_chunk(self, experiment: str, seed: int) -> cost.Chunk:
        """The SLURM job of a run that seeds by need added: one per experiment and step
        (the ``step`` seeds a round gives it)."""
        need = self.seeds_by_need
        block = (seed - max(self.seeds(experiment)) - 1) // need.step
        return cost.Chunk(f"train-more-{experiment}-{block + 1}", need.step * self.run_seconds(experiment), need.step)

    def chunk(self, experiment: str, seed: int) -> cost.Chunk:
        """The SLURM job a run goes in: its planned chunk, or its round's for an added seed."""
        return self.chunks.get((experiment, seed)) or self.added_chunk(experiment, seed)

    def judged(self) -> list[str]:
        """The summary's experiments: those with a number of the report and those pooled
        with them (the runs seeds by need judges, and may add to)."""
        return self.pooled_with(self.paper_experiments())

    def need_plan(self) -> dict:
        """What ``kmlp seeds-needed`` is handed: the rule, the configured seeds, a run's
        predicted seconds per experiment and the study's."""
        judged = self.judged()
        return {
            "rule": self.seeds_by_need.as_dict(),
            "configured": {e: self.seeds(e) for e in judged},
            "seconds": {e: self.run_seconds(e) for e in judged},
            "study_seconds": self.training_seconds(),
            "readings": self.readings(),
        }

    # -- checks, tables, verdicts -------------------------------------------------------
    @property
    def gradchecks(self) -> dict[str, dict]:
        """Each gradient check's settings: the shared ones with the check's own."""
        shared = {k: v for k, v in self.config["gradcheck"].items() if k != "checks"}
        return {name: {**shared, **own} for name, own in self.config["gradcheck"]["checks"].items()}

    @property
    def verdict(self) -> VerdictRule:
        return VerdictRule.from_dict(self.config["verdict"])

    def search_table(self, ranked: list[dict]) -> TableSpec:
        """The search's table: every lambda tried with one seed, and the top candidates
        re-run with several (the pick's spread), best first (``ranked``: from lambda-pick)."""
        return TableSpec(
            caption="Coarse-to-fine random search for lambda: validation accuracy per lambda tried (one seed), "
            "and of the top candidates re-run with more seeds (confirm), from which the best is picked.",
            metric="val_acc",
            row_label="$\\lambda$ (pass)",
            columns=("with BN" if self.config["lambda_search"]["batch_norm"] else "without BN",),
            rows={r["label"]: (r["experiment"],) for r in ranked},
        )

    # -- the rules, checked once ----------------------------------------------------------
    def problems(self) -> list[str]:
        """Every rule the config breaks across keys (the schema holds types and ranges), a
        line each, named by key."""
        found = []
        own = {
            f"experiments.{e}": spec["val_size"] for e, spec in self.config["experiments"].items() if "val_size" in spec
        }
        for key, v in {"data": self.val_size(), **own}.items():
            if not 0 < v < TRAIN_IMAGES:
                found.append(
                    f"{key}.val_size: must be in 1..{TRAIN_IMAGES - 1} (CIFAR-10's {TRAIN_IMAGES:,} training-batch "
                    f"images hold the training and the validation set), got {v}"
                )
        for e in self.config["experiments"]:
            key = f"experiments.{e}"
            if e.startswith(SEARCH_PREFIX):
                found.append(f"{key}: names starting with {SEARCH_PREFIX} are reserved for the lambda search's runs")
            n_train = self.n_train(self.val_size(e)) if 0 < self.val_size(e) < TRAIN_IMAGES else None
            found += [_under(key, p) for p in TrainSettings.check(self.spec(e), n_train)]
        if self.search:
            c = self.config["lambda_search"]
            for e in (self.search.passes["coarse"][0], *self.search.passes["final"]):
                found += [_under("lambda_search", p) for p in TrainSettings.check(self.spec(e, 0.0), None)]
            if not c["coarse"]["log10_min"] < c["coarse"]["log10_max"]:
                found.append(
                    f"lambda_search.coarse: log10_min {c['coarse']['log10_min']} must be below"
                    f" log10_max {c['coarse']['log10_max']}"
                )
        for name, values in self.gradchecks.items():
            found += [_under(f"gradcheck.checks.{name}", p) for p in GradcheckSettings.check(values)]
        known = set(self.experiments)

        def unknown(key, names):
            return [f"{key}: {e!r} is not an experiment of the config" for e in names if e not in known]

        for name, fig in self.figures.items():
            found += unknown(f"figures.{name}.experiments", fig.experiments)
        for name, spec in self.config["tables"].items():
            key = f"tables.{name}"
            if name in RESERVED_TABLES:
                found.append(f"{key}: the name {name} is reserved for a built-in table")
            found += [_under(key, p) for p in TableSpec.check(spec)]
            for label, cells in spec["rows"].items():
                found += unknown(f"{key}.rows[{label!r}]", cells if isinstance(cells, list) else [])
        found += unknown("diagnostics.experiments", self.diagnostics)
        for i, d in enumerate(self.config["discrepancies"]):
            key = f"discrepancies[{i}]"
            found += [_under(key, p) for p in Discrepancy.check(d, known)]
            if d["experiment"] in known and d["metric"] not in self.paper(d["experiment"]):
                found.append(f"{key}: the report gives no {d['metric']} for {d['experiment']} (its `paper`)")
            report = set(self.report_experiments())
            for h in d["hypotheses"]:
                named = [*h.get("touches", {}), *h.get("untrained", ()), *h.get("report_pick", ())]
                found += [
                    f"{key}.hypotheses.{h['name']}: {e} is not a number of the report's own reading (a `paper`, "
                    "no `reading`): a hypothesis touches only those"
                    for e in dict.fromkeys(named)
                    if e in known and e not in report
                ]
        found += [_under("verdict", p) for p in VerdictRule.check(self.config["verdict"])]
        # (with valid settings only: the cost model reads them)
        longest = max(map(self.run_seconds, self.experiments), default=0.0) if not found else 0.0
        if longest > self.longest_chunk():
            found.append(
                f"cluster.max_job_minutes: {self.config['cluster']['max_job_minutes']:g} minutes cannot hold a run of "
                f"{longest:.0f} predicted seconds (times time_factor, and {cost.JOB_START_S:g} s for the job's start)"
            )
        # a pool may name the search's runs: they count when the search is switched on
        known |= set(Search(self.config["lambda_search"]).runs)
        for name, pool in self.config["verdict"]["pools"].items():
            found += unknown(f"verdict.pools.{name}.experiments", pool["experiments"])
        return found

    def check(self) -> Study:
        """This study, or a :class:`StudyError` listing every broken rule."""
        problems = self.problems()
        if problems:
            raise StudyError(problems)
        return self


def _under(key: str, problem: str) -> str:
    """``problem`` named by ``key``: a problem that names a sub-key (``rows['0']: ...``)
    continues the key's path."""
    head, sep, rest = problem.partition(": ")
    if sep and re.fullmatch(r"[\w.-]+(\[[^\]]*\])?", head):
        return f"{key}.{head}: {rest}"
    return f"{key}: {problem}"


def load(*paths) -> Study:
    """The study of config files, checked (YAML; each later file on top of the ones
    before, as Snakemake's ``--configfile`` overlays are; without the schema, which the
    workflow validates with); a StudyError says what is wrong."""
    from pathlib import Path

    import yaml

    config: dict = {}
    for path in paths:
        try:
            _overlay(config, yaml.safe_load(Path(path).read_text()) or {})
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise StudyError([f"cannot read {path} ({type(exc).__name__}: {' '.join(str(exc).split())})"]) from None
    try:
        study = Study(config)
    except (KeyError, TypeError, AttributeError) as exc:
        raise StudyError([f"not a kmlp config (missing or malformed: {exc})"]) from None
    return study.check()


def _overlay(base: dict, top: dict) -> None:
    """``top`` merged into ``base``, mapping by mapping (Snakemake's overlay of configs)."""
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value
