import json
import math
import os
import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = "results"
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
# The top candidates of the search, re-run with several seeds before the pick.
CONFIRM = (
    [f"lsearch-top-{i}" for i in range(SEARCH["confirm"]["top"])] if SEARCH_ON else []
)
FINAL = ["lsearch-final"] if SEARCH_ON else []
SEARCH_RUNS = COARSE + FINE + CONFIRM + FINAL
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
# Outputs record it from the shell's environment, not from a param: params are a rerun trigger,
# and naming the same config another way must not redo the work. (It would also hide
# changed training settings for one invocation: when the gradient-check table reruns,
# Snakemake skips the jobs with it as an ancient input, snakemake/snakemake#4166.)
_source = shlex.quote(json.dumps({"config": CONFIG_NAME}))
shell.prefix(  # (bash's strict mode, which a prefix replaces; doubled braces: it is formatted)
    "set -euo pipefail;"
    f" export KMLP_CONFIG={shlex.quote(CONFIG_NAME)}"
    f" KMLP_SOURCE={_source.replace('{', '{{').replace('}', '}}')}; "
)
# Keys of an experiment that say how the workflow uses it, not how it is trained.
EXPERIMENT_KEYS = ("paper", "reading", "val_size", "seeds")
# The images of CIFAR-10's five training batches: training set = this less val_size.
TRAINING_BATCH_IMAGES = 50000
# Names of the tables the workflow makes itself, and of its lambda search's runs.
RESERVED_TABLES = ("summary", "gradcheck", "diagnostics", "lambda_search")
SEARCH_PREFIX = "lsearch-"


def check_config(config):
    """Stop the workflow before it plans anything if the config breaks a rule across keys
    that the schema cannot state; the error has a line per broken rule, naming its key.

    Settings are checked as a run gets them (`training` with the experiment's own keys);
    a key set by neither keeps kmlp's default, which `kmlp train` checks in turn.
    """
    problems = []
    runs = {f"experiments.{e}": spec for e, spec in config["experiments"].items()}
    if SEARCH_ON:
        runs["lambda_search"] = {k: SEARCH[k] for k in ("batch_norm", "n_s", "cycles")}
    for key, spec in runs.items():
        s = {**config["training"], **spec}
        if s.get("init") == "normal" and s.get("sigma") is None:
            problems.append(f"{key}: init normal needs a sigma (in it or in training)")
        if s.get("eta_min", 0) > s.get("eta_max", float("inf")):
            problems.append(
                f"{key}: eta_min {s['eta_min']} is larger than eta_max {s['eta_max']}"
            )
        if s.get("batch_norm") and s.get("hidden") == []:
            problems.append(f"{key}: batch_norm needs a hidden layer, but hidden is []")
        n_train = TRAINING_BATCH_IMAGES - spec.get(
            "val_size", config["data"]["val_size"]
        )
        if s.get("n_batch", 0) > n_train:
            problems.append(
                f"{key}: n_batch {s['n_batch']} is larger than the training set"
                f" ({n_train} images: {TRAINING_BATCH_IMAGES} less val_size)"
            )
    for e in config["experiments"]:
        if e.startswith(SEARCH_PREFIX):
            problems.append(
                f"experiments.{e}: names starting with {SEARCH_PREFIX} are reserved"
                " for the lambda search's runs"
            )
    known = set(EXPERIMENTS + SEARCH_RUNS)

    def unknown(key, names):
        for e in names:
            if e not in known:
                problems.append(f"{key}: {e!r} is not an experiment of the config")

    for name, fig in config["figures"].items():
        unknown(f"figures.{name}.experiments", fig["experiments"])
    for name, table in config["tables"].items():
        key = f"tables.{name}"
        if name in RESERVED_TABLES:
            problems.append(f"{key}: the name {name} is reserved for a built-in table")
        n = len(table["columns"])
        if len(table.get("column_metrics", table["columns"])) != n:
            problems.append(f"{key}: column_metrics must name one metric per column")
        for label, cells in table["rows"].items():
            if len(cells) != n:
                problems.append(
                    f"{key}.rows[{label!r}]: {len(cells)} experiments for {n} column"
                    + ("s" if n != 1 else "")
                )
            unknown(f"{key}.rows[{label!r}]", cells)
    unknown("diagnostics.experiments", config["diagnostics"]["experiments"])
    verdict = config["verdict"]
    if not verdict["consistent"] < verdict["inconsistent"]:
        problems.append(
            f"verdict: consistent {verdict['consistent']} must be below"
            f" inconsistent {verdict['inconsistent']}"
        )
    pooled = {}
    for name, pool in verdict["pools"].items():
        key = f"verdict.pools.{name}.experiments"
        unknown(key, pool["experiments"])
        for e in pool["experiments"]:
            other = pooled.setdefault((e, pool["metric"]), name)
            if other != name:
                problems.append(
                    f"{key}: {e} is also in pool {other} for {pool['metric']}"
                )
    coarse = SEARCH["coarse"]
    if SEARCH_ON and not coarse["log10_min"] < coarse["log10_max"]:
        problems.append(
            f"lambda_search.coarse: log10_min {coarse['log10_min']} must be below"
            f" log10_max {coarse['log10_max']}"
        )
    if problems:
        raise WorkflowError("the config breaks these rules:\n" + "\n".join(problems))


check_config(config)


wildcard_constraints:
    experiment="|".join(map(re.escape, EXPERIMENTS + SEARCH_RUNS)),
    seed=r"\d+",
    check="|".join(map(re.escape, CHECKS)) or "NONE",
    figure="|".join(map(re.escape, FIGURES)) or "NONE",
    table="|".join(map(re.escape, TABLES)) or "NONE",


def data_variant(val_size):
    """The data file's name part for a validation hold-out: none for the default."""
    return "" if val_size == config["data"]["val_size"] else f"-val{val_size}"


def val_sizes():
    """Data-file name part -> validation hold-out, for every hold-out the config uses."""
    sizes = [config["data"]["val_size"]]
    sizes += [
        spec["val_size"]
        for spec in config["experiments"].values()
        if "val_size" in spec
    ]
    return {data_variant(v): v for v in sizes}


def data_h5(val_size=None):
    return f"{RESULTS}/data/cifar10{data_variant(val_size or config['data']['val_size'])}.h5"


def data_file(wildcards):
    """The data set an experiment trains on: the default split, or its own hold-out."""
    return data_h5(experiment_spec(wildcards.experiment).get("val_size"))


def archive_input():
    """The archive `prepare` reads: the configured local one, or the download."""
    return config["data"]["archive"] or DOWNLOADED


def run_file(experiment, seed):
    return f"{RESULTS}/runs/{experiment}/seed{seed}.h5"


def seeds_of(experiment):
    """A search pass trains each lambda once (as the course does), its top candidates
    with the confirmation's seeds; an experiment may name its own seeds; all else every seed.
    """
    if experiment in COARSE + FINE:
        return [SEARCH["seed"]]
    if experiment in CONFIRM:
        return SEARCH["confirm"]["seeds"]
    return config["experiments"].get(experiment, {}).get("seeds", SEEDS)


def runs_of(experiments):
    return [run_file(e, s) for e in experiments for s in seeds_of(e)]


def train_benchmarks(experiments):
    return [
        f"{RESULTS}/benchmarks/train/{e}/seed{s}.tsv"
        for e in experiments
        for s in seeds_of(e)
    ]


def _json(path):
    with open(path) as f:
        return json.load(f)


def search_lambda(experiment):
    """Lambda of a search run: drawn by the grid checkpoint, or picked by a later pass."""
    if experiment in COARSE:
        grid = _json(checkpoints.lambda_grid.get().output[0])
        return grid["lambdas"][COARSE.index(experiment)]
    if experiment in FINE:
        return _json(checkpoints.lambda_coarse.get().output[0])["fine"][
            FINE.index(experiment)
        ]
    if experiment in CONFIRM:
        return _json(checkpoints.lambda_fine.get().output[0])["top"][
            CONFIRM.index(experiment)
        ]["lam"]
    return _json(checkpoints.lambda_best.get().output[0])["best"]["lam"]


def experiment_spec(experiment):
    """An experiment's config entry; search runs are built from `lambda_search`."""
    if experiment not in SEARCH_RUNS:
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
    return {k: v for k, v in merged.items() if k not in EXPERIMENT_KEYS}


def train_mem_mb(wildcards, input):
    """A training job's memory in MB: its data set in the run's dtype (the file holds a
    byte per pixel), the copy of the training subset its history evaluates, and 400 MB
    for Python and, on a cluster, the Snakemake process sharing the job's allocation.

    Measured on CIFAR-10 (/usr/bin/time -v, subset 10,000): peak RSS of `kmlp train`
    929 MB in float32 and 1,799 MB in float64; this gives 1,390 and 2,380 MB.
    """
    # `training` with the experiment's own keys (a search run's lambda, which takes a
    # checkpoint to know, does not matter here)
    s = {**config["training"], **config["experiments"].get(wildcards.experiment, {})}
    itemsize = 8 if s.get("dtype") == "float64" else 4
    pixels = input.size + 3072 * s.get("eval_train_subset", 0)
    return math.ceil(400 + 1.15 * itemsize * pixels / 1e6)


def search_inputs(wildcards):
    """A search run waits for the pass that draws or picks its lambda."""
    if wildcards.experiment in COARSE:
        return checkpoints.lambda_grid.get().output
    if wildcards.experiment in FINE:
        return checkpoints.lambda_coarse.get().output
    if wildcards.experiment in CONFIRM:
        return checkpoints.lambda_fine.get().output
    if wildcards.experiment in FINAL:
        return checkpoints.lambda_best.get().output
    return []


def paper_of(experiment):
    """The report's numbers for an experiment (stored in its run files)."""
    return experiment_spec(experiment).get("paper", {})


def gradcheck_settings(wildcards):
    """A check's settings: the shared ones with the check's own, as JSON."""
    shared = {k: v for k, v in config["gradcheck"].items() if k != "checks"}
    return json.dumps({**shared, **config["gradcheck"]["checks"][wildcards.check]})


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
    """The search's table: every lambda tried with one seed, and the top candidates
    re-run with several (the pick's spread), best first."""
    ranked = _json(input.confirmed)["ranked"] + _json(input.searched)["ranked"]
    spec = {
        "caption": (
            "Coarse-to-fine random search for lambda: validation accuracy per lambda tried (one seed), "
            "and of the top candidates re-run with more seeds (confirm), from which the best is picked."
        ),
        "metric": "val_acc",
        "row_label": "$\\lambda$ (pass)",
        "columns": ["with BN" if SEARCH["batch_norm"] else "without BN"],
        "rows": {r["label"]: [r["experiment"]] for r in ranked},
    }
    return json.dumps(spec)


def verdict_rule():
    """The verdict rule's parameters, as JSON for the table verbs."""
    return json.dumps(config["verdict"], sort_keys=True)


def with_pools(experiments):
    """The experiments and every experiment pooled with one of them (their variance is shared)."""
    pools = [p["experiments"] for p in config["verdict"]["pools"].values()]
    more = [e for members in pools if set(members) & set(experiments) for e in members]
    return list(dict.fromkeys(list(experiments) + more))


def diagnose_data(wildcards):
    """The data sets of the diagnosed experiments (each run is checked against its own)."""
    exps = config["diagnostics"]["experiments"]
    return sorted({data_h5(experiment_spec(e).get("val_size")) for e in exps})


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


def cores():
    """The cores this invocation runs on (none when it runs no jobs, as for --report)."""
    try:
        return workflow.cores
    except WorkflowError:
        return None


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
        "cores": cores(),
    }


def record_tables():
    """The table CSVs the record shows as grids."""
    return [f"{RESULTS}/tables/{t}.csv" for t in TABLES + EXTRA_TABLES]


def report_runs():
    """The training runs behind the report's own numbers (no alternative reading)."""
    return [e for e in paper_experiments() if not json.loads(readings()).get(e)]


def study_benchmarks():
    """Every benchmark of the study's data, checks and training jobs (its times)."""
    out = [f"{RESULTS}/benchmarks/prepare{v}.tsv" for v in val_sizes()]
    out += [f"{RESULTS}/benchmarks/gradcheck/{c}.tsv" for c in CHECKS]
    return out + train_benchmarks(EXPERIMENTS + SEARCH_RUNS)
