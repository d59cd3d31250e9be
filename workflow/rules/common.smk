import json
import os
import re
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
# Keys of an experiment that say how the workflow uses it, not how it is trained.
EXPERIMENT_KEYS = ("paper", "reading", "val_size", "seeds")


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
    pools = config["verdict"]["pools"].values()
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
