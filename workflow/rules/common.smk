import json
import os
import re
import shlex
from pathlib import Path

from snakemake.utils import validate

from kmlp.search import random_lambdas

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = "results"
DATA_H5 = f"{RESULTS}/data/cifar10.h5"
DOWNLOADED = f"{RESULTS}/data/cifar-10-python.tar.gz"
SEEDS = [int(s) for s in config["seeds"]]
EXPERIMENTS = list(config["experiments"])
CHECKS = list(config["gradcheck"]["checks"])
# The optional coarse-to-fine lambda search: its runs are experiments too, named here.
SEARCH = config["lambda_search"]
SEARCH_ON = SEARCH["enabled"]
COARSE = (
    [f"lsearch-coarse-{i:02d}" for i in range(SEARCH["coarse"]["n"])]
    if SEARCH_ON
    else []
)
FINE = (
    [f"lsearch-fine-{i:02d}" for i in range(SEARCH["fine"]["n"])] if SEARCH_ON else []
)
FINAL = ["lsearch-final"] if SEARCH_ON else []
FIGURES = list(config["figures"])
# Tables made by their own rules, when switched on.
EXTRA_TABLES = (["lambda_search"] if SEARCH_ON else []) + (
    ["diagnostics"] if config["diagnostics"]["experiments"] else []
)
TABLES = list(config["tables"])
# What outputs record as "the config they came from".
CONFIG_NAME = (
    ";".join(os.path.relpath(f) for f in workflow.configfiles) or "config/config.yaml"
)
TRAINING_KEYS = (
    "hidden",
    "batch_norm",
    "init",
    "sigma",
    "lam",
    "n_batch",
    "eta_min",
    "eta_max",
    "n_s",
    "cycles",
    "eval_every",
    "eval_train_subset",
    "dtype",
)


wildcard_constraints:
    experiment="|".join(map(re.escape, EXPERIMENTS + COARSE + FINE + FINAL)),
    seed=r"\d+",
    check="|".join(map(re.escape, CHECKS)) or "NONE",
    figure="|".join(map(re.escape, FIGURES)) or "NONE",
    table="|".join(map(re.escape, TABLES)) or "NONE",


def data_file(wildcards):
    """The data set an experiment trains on: the default split, or its own hold-out."""
    val_size = experiment_spec(wildcards.experiment).get(
        "val_size", config["data"]["val_size"]
    )
    if val_size == config["data"]["val_size"]:
        return DATA_H5
    return f"{RESULTS}/data/cifar10-val{val_size}.h5"


def archive_input():
    """The archive `prepare` reads: the configured local one, or the download."""
    return config["data"]["archive"] or DOWNLOADED


def run_file(experiment, seed):
    return f"{RESULTS}/runs/{experiment}/seed{seed}.h5"


def seeds_of(experiment):
    """A search pass trains each lambda once (as the course does); all else every seed."""
    return [SEARCH["seed"]] if experiment in COARSE + FINE else SEEDS


def runs_of(experiments):
    return [run_file(e, s) for e in experiments for s in seeds_of(e)]


def search_lambda(experiment):
    """Lambda of a search run: drawn from the config, or picked from earlier passes."""
    if experiment in COARSE:
        c = SEARCH["coarse"]
        lams = random_lambdas(c["n"], c["log10_min"], c["log10_max"], SEARCH["seed"])
        return lams[COARSE.index(experiment)]
    if experiment in FINE:
        with open(checkpoints.lambda_coarse.get().output[0]) as f:
            return json.load(f)["fine"][FINE.index(experiment)]
    with open(checkpoints.lambda_best.get().output[0]) as f:
        return json.load(f)["best"]["lam"]


def experiment_spec(experiment):
    """An experiment's config entry; search runs are built from `lambda_search`."""
    if experiment not in COARSE + FINE + FINAL:
        return config["experiments"][experiment]
    final = experiment in FINAL
    spec = {
        "batch_norm": SEARCH["batch_norm"],
        "n_s": SEARCH["n_s"],
        "cycles": SEARCH["final"]["cycles"] if final else SEARCH["cycles"],
        "lam": search_lambda(experiment),
    }
    if final:
        spec["paper"] = SEARCH["final"].get("paper", {})
        spec["reading"] = SEARCH["final"].get("reading", "")
    return spec


def settings(experiment):
    """The training settings of one experiment: the defaults with its overrides."""
    merged = {**config["training"], **experiment_spec(experiment)}
    return {k: merged[k] for k in TRAINING_KEYS}


def search_inputs(wildcards):
    """A fine or final search run waits for the pass that picks its lambda."""
    if wildcards.experiment in FINE:
        return checkpoints.lambda_coarse.get().output
    if wildcards.experiment in FINAL:
        return checkpoints.lambda_best.get().output
    return []


def train_args(wildcards):
    """`kmlp train` options for an experiment, straight from the config."""
    s = settings(wildcards.experiment)
    args = ["--hidden", *map(str, s["hidden"]), "--init", s["init"]]
    if s["batch_norm"]:
        args.append("--batch-norm")
    if s["sigma"] is not None:
        args += ["--sigma", repr(float(s["sigma"]))]
    for key in ("lam", "eta_min", "eta_max"):
        args += [f"--{key.replace('_', '-')}", repr(float(s[key]))]
    for key in ("n_batch", "n_s", "cycles", "eval_every", "eval_train_subset"):
        args += [f"--{key.replace('_', '-')}", str(int(s[key]))]
    args += ["--dtype", s["dtype"]]
    paper = experiment_spec(wildcards.experiment).get("paper", {})
    args += ["--paper", json.dumps(paper, sort_keys=True)]
    args += ["--source", json.dumps({"config": CONFIG_NAME}, sort_keys=True)]
    return shlex.join(args)


def gradcheck_args(wildcards):
    g = config["gradcheck"]
    c = g["checks"][wildcards.check]
    args = [
        "--name",
        wildcards.check,
        "--hidden",
        *map(str, c["hidden"]),
        "--init",
        c["init"],
    ]
    if c.get("batch_norm"):
        args.append("--batch-norm")
    if c.get("sigma") is not None:
        args += ["--sigma", repr(float(c["sigma"]))]
    args += ["--lam", repr(float(c.get("lam", 0.0))), "--h", repr(float(g["h"]))]
    args += ["--n-samples", str(g["n_samples"]), "--input-dim", str(g["input_dim"])]
    args += [
        "--seed",
        str(g["seed"]),
        "--max-rel-error",
        repr(float(c["max_rel_error"])),
    ]
    return shlex.join(args)


def figure_experiments(wildcards):
    return config["figures"][wildcards.figure]["experiments"]


def table_experiments(wildcards):
    rows = config["tables"][wildcards.table]["rows"]
    return list(dict.fromkeys(e for cells in rows.values() for e in cells))


def paper_experiments():
    """Experiments the report gives a number for: what the summary compares."""
    named = [e for e, spec in config["experiments"].items() if spec.get("paper")]
    return named + (FINAL if SEARCH_ON and SEARCH["final"].get("paper") else [])


def readings():
    """Experiment -> the alternative reading of the report it tests (JSON)."""
    found = {e: spec.get("reading", "") for e, spec in config["experiments"].items()}
    for e in FINAL:
        found[e] = SEARCH["final"].get("reading", "")
    return json.dumps({e: r for e, r in found.items() if r}, sort_keys=True)


def search_table_spec(wildcards, input):
    """The search's table: validation accuracy per lambda tried, best first."""
    with open(input.best) as f:
        ranked = json.load(f)["ranked"]
    rows = {
        f"{r['lam']:.3g} ({r['experiment'].split('-')[1]})": [r["experiment"]]
        for r in ranked
    }
    spec = {
        "caption": "Coarse-to-fine random search for lambda: validation accuracy per lambda.",
        "metric": "val_acc",
        "row_label": "$\\lambda$",
        "columns": ["with BN" if SEARCH["batch_norm"] else "without BN"],
        "rows": rows,
    }
    return json.dumps(spec)


def all_outputs():
    out = [f"{RESULTS}/gradcheck/{c}.json" for c in CHECKS]
    out += runs_of(EXPERIMENTS + FINAL)
    out += [f"{RESULTS}/figures/{f}.{ext}" for f in FIGURES for ext in ("pdf", "png")]
    out += [
        f"{RESULTS}/tables/{t}.{ext}"
        for t in TABLES + ["gradcheck", "summary"]
        for ext in ("tex", "csv")
    ]
    out += [
        f"{RESULTS}/tables/{t}.{ext}" for t in EXTRA_TABLES for ext in ("tex", "csv")
    ]
    out += [f"{RESULTS}/report/report.tex"]
    if config["record"]["enabled"]:
        out += [config["record"]["out"]]
    return out


def record_meta():
    """What the reproduction record states about how it was made."""
    rec = config["record"]
    return {
        "command": rec["command"],
        "config": CONFIG_NAME,
        "data_archive": config["data"]["archive"] or config["data"]["url"],
        "data_md5": config["data"]["md5"],
        "data_note": rec["data_note"],
        "seeds": SEEDS,
    }


def record_tables():
    """The table CSVs the record shows as grids."""
    return [f"{RESULTS}/tables/{t}.csv" for t in TABLES + EXTRA_TABLES]
