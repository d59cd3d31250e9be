import json
import re
import shlex
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = "results"
DATA_H5 = f"{RESULTS}/data/cifar10.h5"
DOWNLOADED = f"{RESULTS}/data/cifar-10-python.tar.gz"
SEEDS = [int(s) for s in config["seeds"]]
EXPERIMENTS = list(config["experiments"])
CHECKS = list(config["gradcheck"]["checks"])
FIGURES = list(config["figures"])
TABLES = list(config["tables"])
# What outputs record as "the config they came from".
CONFIG_NAME = ";".join(str(f) for f in workflow.configfiles) or "config/config.yaml"
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
    experiment="|".join(map(re.escape, EXPERIMENTS)) or "NONE",
    seed=r"\d+",
    check="|".join(map(re.escape, CHECKS)) or "NONE",
    figure="|".join(map(re.escape, FIGURES)) or "NONE",
    table="|".join(map(re.escape, TABLES)) or "NONE",


def archive_input():
    """The archive `prepare` reads: the configured local one, or the download."""
    return config["data"]["archive"] or DOWNLOADED


def run_file(experiment, seed):
    return f"{RESULTS}/runs/{experiment}/seed{seed}.h5"


def runs_of(experiments):
    return [run_file(e, s) for e in experiments for s in SEEDS]


def settings(experiment):
    """The training settings of one experiment: the defaults with its overrides."""
    merged = {**config["training"], **config["experiments"][experiment]}
    return {k: merged[k] for k in TRAINING_KEYS}


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
    paper = config["experiments"][wildcards.experiment].get("paper", {})
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
    return [e for cells in rows.values() for e in cells]


def paper_experiments():
    """Experiments the report gives a number for: what the summary compares."""
    return [e for e, spec in config["experiments"].items() if spec.get("paper")]


def all_outputs():
    out = [f"{RESULTS}/gradcheck/{c}.json" for c in CHECKS]
    out += runs_of(EXPERIMENTS)
    out += [f"{RESULTS}/figures/{f}.{ext}" for f in FIGURES for ext in ("pdf", "png")]
    out += [
        f"{RESULTS}/tables/{t}.{ext}"
        for t in TABLES + ["gradcheck", "summary"]
        for ext in ("tex", "csv")
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
