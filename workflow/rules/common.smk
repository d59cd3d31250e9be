# The study (kmlp.study) answers what to run; this file turns its answers into paths
# and the rules' params (what a checkpoint decides is looked up beside the checkpoint:
# lambda_search.smk, seeds_by_need.smk). The kmlp package is imported while Snakemake
# plans: the README's install and environment.yml put it beside Snakemake, and
# kmlp.study loads no NumPy or h5py.
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from kmlp.study import Study, StudyError
from kmlp.study.cluster import CHAIN_PRIORITY, Requests, not_made, runs_not_made

validate(config, schema="../schemas/config.schema.yaml")
try:
    study = Study(config).check()
except StudyError as exc:  # every broken rule, a line each, before anything is planned
    raise WorkflowError(str(exc)) from None

RESULTS = "results"
DOWNLOADED = f"{RESULTS}/data/cifar-10-python.tar.gz"
SEARCH = study.search
CHECKS = list(study.gradchecks)
FIGURES = list(study.figures)
TABLES = list(study.tables)
_extra = {"lambda_search": SEARCH, "diagnostics": study.diagnostics}
EXTRA_TABLES = [t for t, on in _extra.items() if on]  # made by rules of their own
# The record's data: a row per run, beside the record (kmlp record --out-runs).
_record = Path(config["record"]["out"])
RECORD_RUNS = str(_record.with_name(f"{_record.stem}-runs.csv"))
# What outputs record as "the config they came from", through the shell's environment,
# not a param (a rerun trigger: naming the same config another way must not redo work,
# nor hide changed settings for one invocation, snakemake/snakemake#4166).
CONFIG_NAME = (
    ";".join(os.path.relpath(f) for f in workflow.configfiles) or "config/config.yaml"
)
# (the prefix is formatted: braces doubled)
_quoted = shlex.quote(CONFIG_NAME).replace("{", "{{").replace("}", "}}")
shell.prefix(f"set -euo pipefail; export KMLP_CONFIG={_quoted}; ")


wildcard_constraints:
    experiment="|".join(map(re.escape, study.experiments)),
    seed=r"\d+",
    round=r"\d+",
    check="|".join(map(re.escape, CHECKS)) or "NONE",
    figure="|".join(map(re.escape, FIGURES)) or "NONE",
    table="|".join(map(re.escape, TABLES)) or "NONE",


# -- paths -------------------------------------------------------------------------
def data_h5(val_size=None):
    return f"{RESULTS}/data/cifar10{study.data_name(val_size)}.h5"


def data_file(wildcards):
    """The data set an experiment trains on: the default split, or its own hold-out."""
    return data_h5(study.val_size(wildcards.experiment))


def archive_input():
    """The archive `prepare` reads: the configured local one, or the download."""
    return config["data"]["archive"] or DOWNLOADED


def runs_of(experiments):
    return [f"{RESULTS}/runs/{e}/seed{s}.h5" for e, s in study.runs(experiments)]


def discrepancy_experiments():
    """The report's numbers (any may need explaining) and every hypothesis's experiments."""
    found = study.paper_experiments()
    return list(
        dict.fromkeys(found + [e for d in study.discrepancies for e in d.experiments()])
    )


def retrained_runs():
    """Every training setting of the record at the seeds its check trains again, each to
    its first evaluation after step 0 (rule retrain)."""
    seeds = config["retrain_check"]["seeds"]
    return [
        f"{RESULTS}/retrain/{e}/seed{s}.h5" for e in study.retrained() for s in seeds
    ]


def retrain_settings(wildcards):
    """A retrained run's settings: its experiment's, a lambda search run's with the lambda
    its row in the record's data gives (its passes are not trained again to pick it)."""
    if study.family(wildcards.experiment) == "train":
        return train_settings(wildcards)
    from kmlp.aggregate.tabular import recorded_lambda  # (pandas: not while planning)

    lam = recorded_lambda(RECORD_RUNS, wildcards.experiment, int(wildcards.seed))
    return json.dumps(
        study.settings(wildcards.experiment, lam).as_dict(), sort_keys=True
    )


def train_benchmarks(experiments):
    return [
        f"{RESULTS}/benchmarks/train/{e}/seed{s}.tsv"
        for e, s in study.runs(experiments)
    ]


def search_runs(*passes):
    return [e for p in passes for e in SEARCH.passes[p]] if SEARCH else []


# -- params: what a verb is handed (JSON) ------------------------------------------------
def train_settings(wildcards):
    """A run's settings; a search run's lambda is its pass's pick (lambda_search.smk)."""
    settings = study.settings(wildcards.experiment, run_lambda(wildcards.experiment))
    return json.dumps(settings.as_dict(), sort_keys=True)


def search_table_spec(wildcards, input):
    ranked = [
        json.loads(Path(p).read_text())["ranked"]
        for p in (input.confirmed, input.searched)
    ]
    return json.dumps(study.search_table(ranked[0] + ranked[1]).as_dict())


def diagnose_data(wildcards):
    """The data sets of the diagnosed experiments (each run is checked against its own)."""
    return sorted({data_h5(study.val_size(e)) for e in study.diagnostics})


# -- on a cluster (profiles/slurm): which runs share a SLURM job, and what it asks for --
# The rules look up their resources and priorities in kmlp.study.cluster (the arithmetic).
ASK = Requests(study)


def train_group(wildcards):
    """The SLURM job a run goes in: a chunk of its family's runs (kmlp.study's chunks),
    registered under the family so that the profile's group-components for "train" or
    "lsearch-coarse" apply to each of its chunks, as they would to a group named with
    wildcards (snakemake/rules.py: Rule.expand_group)."""
    chunk = study.chunk(wildcards.experiment, int(wildcards.seed))
    workflow.parent_groupids[chunk.name] = study.family(wildcards.experiment)
    return chunk.name


# A failed job is reported where it fails; at the end, the runs it cost, by chunk (SLURM
# job), so that a long study's failures need not be searched for in its log. (No DAG
# when planning itself failed.)
onerror:
    dag = getattr(workflow, "dag", None)
    if report := not_made(study, runs_not_made(dag.jobs if dag else [])):
        print(report, file=sys.stderr)


# -- what the workflow makes ----------------------------------------------------------
def all_outputs():
    out = [f"{RESULTS}/gradcheck/{c}.json" for c in CHECKS]
    out += runs_of(list(config["experiments"]) + search_runs("final"))
    out += [f"{RESULTS}/figures/{f}.{ext}" for f in FIGURES for ext in ("pdf", "png")]
    tables = TABLES + ["gradcheck", "summary", "discrepancies"] + EXTRA_TABLES
    out += [f"{RESULTS}/tables/{t}.{ext}" for t in tables for ext in ("tex", "csv")]
    out += [f"{RESULTS}/report/report.tex"]
    if config["record"]["enabled"]:
        out += [config["record"]["out"]]
    return out


def record_meta():
    """What the reproduction record states about how it was made."""
    rec = config["record"]
    try:
        cores = workflow.cores
    except WorkflowError:  # it runs no jobs (--report)
        cores = None
    return {
        "command": rec["command"],
        "config": CONFIG_NAME,
        "data_archive": config["data"]["archive"] or config["data"]["url"],
        "data_md5": config["data"]["md5"],
        "data_note": rec["data_note"],
        "seeds": config["seeds"],
        "cores": cores,
    }


def study_benchmarks():
    """Every benchmark of the study's data, checks and training jobs (its times)."""
    out = [
        f"{RESULTS}/benchmarks/prepare{study.data_name(v)}.tsv"
        for v in study.val_sizes()
    ]
    out += [f"{RESULTS}/benchmarks/gradcheck/{c}.tsv" for c in CHECKS]
    return out + train_benchmarks(study.experiments)
