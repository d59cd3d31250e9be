"""The real Snakemake workflow, end to end, on the tiny configuration (.test/config)."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kmlp import MLP
from kmlp.data.dataset import load
from kmlp.nn.settings import GradcheckSettings, TrainSettings
from kmlp.runs import load_model, read_run
from kmlp.study import Study
from workflow_project import LATEX, REPO, make_project, outputs, path_without, snakemake

pytestmark = pytest.mark.slow


def planned_jobs(proc) -> dict[str, int]:
    """Rule -> job count from a dry run's "Job stats" table."""
    counts = {}
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return counts
    table = text.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture
def project(tiny_project):
    return tiny_project


def test_every_output_exists_and_parses(project):
    cfg = yaml.safe_load((project / "config" / "config.yaml").read_text())
    for check in cfg["gradcheck"]["checks"]:
        doc = json.loads((project / f"results/gradcheck/{check}.json").read_text())
        assert doc["passed"] and doc["name"] == check
    ds = load(project / "results/data/cifar10.h5")
    for exp in cfg["experiments"]:
        for seed in cfg["seeds"]:
            path = project / f"results/runs/{exp}/seed{seed}.h5"
            run = read_run(path, weights=True)
            assert run.experiment == exp and run.seed == seed and run.status == "completed"
            assert run.paper == cfg["experiments"][exp]["paper"]
            assert run.data_md5 == cfg["data"]["md5"]
            # the final test accuracy is what the stored weights give on the test set
            assert run.eval_sizes["test"] == len(ds.y_test) == 100
            assert run.final["test_acc"] == load_model(path).evaluate(ds.X_test, ds.y_test)[2]
    for fig in cfg["figures"]:
        assert (project / f"results/figures/{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (project / f"results/figures/{fig}.pdf").read_bytes()[:5] == b"%PDF-"
    for table, rows in expected_rows(project, cfg).items():
        tex = (project / f"results/tables/{table}.tex").read_text()
        assert "\\toprule" in tex and "\\bottomrule" in tex and cfg["data"]["md5"] in tex
        got = [
            tuple(f"{float(row[k]):.12f}" if k == "mean" else row[k] for k in rows[0])
            for row in csv.DictReader(
                line
                for line in (project / f"results/tables/{table}.csv").read_text().splitlines()
                if not line.startswith("#")
            )
        ]
        assert sorted(got) == sorted(rows[1]), table
    summary = list(
        csv.DictReader(line for line in (project / "results/tables/summary.csv").open() if not line.startswith("#"))
    )
    n_paper = sum(len(e["paper"]) for e in cfg["experiments"].values())
    n_paper += len(cfg["lambda_search"]["final"]["paper"])
    assert len(summary) == n_paper
    best = json.loads((project / "results/lambda_search/best.json").read_text())["best"]
    final = read_run(project / "results/runs/lsearch-final/seed1.h5")
    assert final.settings["lam"] == best["lam"] and final.settings["cycles"] == 2
    assert all(r["verdict"] in ("consistent", "borderline", "inconsistent") for r in summary)
    # the discrepancies: every number of the report's setting that is not consistent, first as
    # the summary judges it, then each configured hypothesis
    hypotheses = {(d["experiment"], d["metric"]): [h["name"] for h in d["hypotheses"]] for d in cfg["discrepancies"]}
    expected = [
        (r["experiment"], r["metric"], h)
        for r in summary
        if not r["reading"] and r["verdict"] != "consistent"
        for h in ["the report's setting", *hypotheses.get((r["experiment"], r["metric"]), [])]
    ]
    table = pd.read_csv(project / "results/tables/discrepancies.csv", comment="#", keep_default_na=False)
    heads = table[table.role != "touched"]
    assert list(zip(heads["experiment"], heads["metric"], heads["hypothesis"], strict=True)) == expected
    # the hypothesis small-bn touches small-nobn's two numbers too, judged under it
    touched = table[(table.role == "touched") & (table.hypothesis == "small-bn")]
    assert sorted(zip(touched.number_experiment, touched.number_metric, touched.stands_in, strict=True)) == [
        ("small-nobn", "test_acc", "small-bn"),
        ("small-nobn", "val_acc", "small-bn"),
    ]
    assert ("lambda-bn-0.1", "val_acc", "best-val") in expected  # the tiny config's entry is exercised
    assert "## Discrepancies" in (project / "docs/reproduction.md").read_text()
    report = (project / "results/report/report.tex").read_text()
    assert "\\input{../tables/summary.tex}" in report
    record = (project / "docs/reproduction.md").read_text()
    assert cfg["data"]["md5"] in record and "figures/figure1.png" in record
    for fig in cfg["figures"]:  # the record's figures are the workflow's
        shown = (project / f"docs/figures/{fig}.png").read_bytes()
        assert shown == (project / f"results/figures/{fig}.png").read_bytes(), fig
    # the record's data: a row per run, from which its judged tables are derived again
    from kmlp.aggregate.record_data import compare_record, read_runs_csv

    _, rows = read_runs_csv(project / "docs/reproduction-runs.csv")
    assert sorted((r.experiment, r.seed) for r in rows) == sorted(
        (p.parent.name, int(p.stem[4:])) for p in (project / "results/runs").glob("*/seed*.h5")
    )
    found = compare_record(record, project / "docs/reproduction-runs.csv")
    assert found.equal and {"summary", "lambda_search", *cfg["tables"]} <= set(found.derived), found.report()


def expected_rows(project, cfg) -> dict:
    """Per table, (the CSV columns that identify a row, the rows the config asks for);
    a grid table's rows with the mean of the cell's run files (to 12 digits)."""

    def mean(exp, metric):
        seeds = cfg["experiments"][exp].get("seeds", cfg["seeds"])
        return np.mean([read_run(project / f"results/runs/{exp}/seed{s}.h5").final[metric] for s in seeds])

    tables = {}
    for name, spec in cfg["tables"].items():
        metrics = spec.get("column_metrics") or [spec["metric"]] * len(spec["columns"])
        tables[name] = (
            ("row", "column", "experiment", "metric", "mean"),
            [
                (row, col, exp, metric, f"{mean(exp, metric):.12f}")
                for row, exps in spec["rows"].items()
                for col, exp, metric in zip(spec["columns"], exps, metrics, strict=True)
            ],
        )
    d = cfg["gradcheck"]["input_dim"]
    tables["gradcheck"] = (
        ("check", "parameter", "passed"),
        [
            (name, parameter, "yes")
            for name, check in cfg["gradcheck"]["checks"].items()
            for parameter in MLP([d, *check["hidden"], 10], batch_norm=check["batch_norm"]).parameters()
        ],
    )
    tables["summary"] = (
        ("experiment", "metric", "paper"),
        [(e, m, repr(float(v))) for e, spec in cfg["experiments"].items() for m, v in spec["paper"].items()]
        + [("lsearch-final", m, repr(float(v))) for m, v in cfg["lambda_search"]["final"]["paper"].items()],
    )
    split_metrics = [(f"{e}: {split}", e) for e in cfg["diagnostics"]["experiments"] for split in ("val", "test")]
    columns = ("moving averages", "batch statistics", "sampling std (binomial)")
    tables["diagnostics"] = (("row", "experiment", "column"), [(r, e, c) for r, e in split_metrics for c in columns])
    search = cfg["lambda_search"]
    runs = [f"lsearch-coarse-{i:02d}" for i in range(search["coarse"]["n"])]
    runs += [f"lsearch-fine-{i:02d}" for i in range(search["fine"]["n"])]
    runs += [f"lsearch-top-{i}" for i in range(search["confirm"]["top"])]
    tables["lambda_search"] = (("experiment",), [(r,) for r in runs])
    return tables


def test_second_invocation_has_nothing_to_do(project):
    proc = snakemake(project, "--cores", "2", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _plan_with_overlay(project, text: str) -> dict:
    overlay = project / "config" / "overlay.yaml"
    overlay.write_text(text)
    try:
        return planned_jobs(snakemake(project, "--cores", "2", "-n", "--configfile", str(overlay)))
    finally:
        overlay.unlink()


def test_the_same_config_under_another_name_redoes_nothing(project):
    """The config's file name is provenance (run files, tables, record), not a rerun
    trigger: an overlay that changes nothing plans only the record, which names it."""
    jobs = _plan_with_overlay(project, "seeds: [1, 2]\n")  # as config.yaml
    assert jobs == {"record": 1, "all": 1}, jobs


def test_a_changed_setting_retrains_in_the_same_invocation(project):
    """Naming the config in the gradient-check table's params made that table rerun with
    any overlay, and Snakemake then skipped the runs that have it as an ancient input
    (snakemake/snakemake#4166): a changed setting was trained only by the next call."""
    jobs = _plan_with_overlay(project, "experiments: {small-bn: {lam: 0.0123}}\n")
    assert jobs.get("train") == 2, jobs  # small-bn, seeds 1 and 2
    assert "gradtable" not in jobs, jobs


def plain(text: str) -> str:
    """Text as pdftotext gives it back from the report: words apart by single spaces, and
    without the letters that LaTeX's T1 fonts set as ligatures (pdftotext drops them)."""
    return re.sub("ffi|ffl|ff|fi|fl", "", " ".join(text.split()))


@pytest.mark.needs("latex")
def test_the_report_compiles_with_latex(project, tmp_path):
    """`snakemake results/report/report.pdf` with a real LaTeX (CI installs a minimal TeX
    Live): a PDF of several pages whose text holds every table's caption and numbers and
    every figure, its caption and its own text (title, legend)."""
    found = {p: shutil.which(p) for p in ("pdflatex", "latexmk", "pdftotext", "pdfinfo")}
    if not (found["pdflatex"] or found["latexmk"]) or not (found["pdftotext"] and found["pdfinfo"]):
        pytest.skip(
            f"needs LaTeX (latexmk or pdflatex) and poppler's pdftotext and pdfinfo, found {found}: "
            "whether the report compiles, and what its PDF holds, is not checked here"
        )
    work = tmp_path / "copy"
    shutil.copytree(project, work, symlinks=True)
    snakemake(work, "--cores", "2", "results/report/report.pdf")
    pdf = work / "results/report/report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)$", info, re.M).group(1))
    text = plain(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout)
    report = (work / "results/report/report.tex").read_text()
    tables = re.findall(r"\\input\{\.\./tables/(\w+)\.tex\}", report)
    figures = re.findall(r"\\includegraphics\[[^]]*\]\{\.\./figures/(\w+)\.pdf\}", report)
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    assert tables == ["summary", "discrepancies", "gradcheck", *cfg["tables"], "lambda_search", "diagnostics"]
    assert figures == list(cfg["figures"]) and pages >= 2
    assert "best-val: per seed, the better of two lambdas by validation" in text  # a hypothesis, in its table
    for k in range(1, len(tables) + 1):
        assert f"Table {k}:" in text, k
    for name in cfg["tables"]:
        assert plain(cfg["tables"][name]["caption"]) in text, name
        tex = (work / f"results/tables/{name}.tex").read_text()
        cells = re.findall(r"\$(\d+\.\d+) \\pm (\d+\.\d+)\$", tex)
        assert cells and all(f"{a} ± {b}" in text for a, b in cells), name
    for k, name in enumerate(figures, 1):
        assert f"Figure {k}: {plain(name)}" in text
        assert plain(cfg["figures"][name]["title"]) in text  # drawn in the figure itself
        for exp in cfg["figures"][name]["experiments"]:
            assert f"{exp} (n=" in text, (name, exp)


def test_pdf_target_without_latex_says_so(project, tmp_path, monkeypatch):
    """The README's "says so if absent", on any machine: LaTeX hidden from PATH."""
    monkeypatch.setenv("PATH", path_without(LATEX, tmp_path / "bin"))
    proc = snakemake(project, "--cores", "1", "results/report/report.pdf", check=False)
    assert proc.returncode != 0
    log = (project / "results/logs/report_pdf.log").read_text()
    assert "no LaTeX installation found" in log
    assert not (project / "results/report/report.pdf").exists()


def test_changing_one_lambda_reruns_only_affected_jobs(project, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(project, work, symlinks=True)
    before = outputs(work)
    cfg_path = work / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["experiments"]["lambda-bn-0.1"]["lam"] = 0.2
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(snakemake(work, "--cores", "2", "-n"))
    assert jobs == {"train": 2, "table": 1, "summary": 1, "discrepancies": 1, "report_tex": 1, "record": 1, "all": 1}
    snakemake(work, "--cores", "2")
    after = outputs(work)
    changed = {k for k in before if before[k] != after.get(k)}
    assert {"results/runs/lambda-bn-0.1/seed1.h5", "results/runs/lambda-bn-0.1/seed2.h5"} <= changed
    assert not any(k.startswith(("results/figures/", "results/gradcheck/", "results/data/")) for k in changed)
    assert not any(k.startswith("results/runs/") and "lambda-bn-0.1" not in k for k in changed)


def test_the_retrain_check_compares_every_training_setting_with_the_records_rows(project, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(project, work, symlinks=True)
    target = ("--cores", "2", "results/tables/retrained.csv")
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    settings = sorted(Study(cfg).retrained())  # every training setting: readings and the search's final too
    assert set(settings) == {*cfg["experiments"], "lsearch-final"} and "lambda-bn-0" in cfg["experiments"]
    # each setting's first epoch, trained again (a search run with the record's lambda: no search), then the check
    assert planned_jobs(snakemake(work, "-n", *target)) == {"retrain": len(settings), "check_runs": 1}
    snakemake(work, *target)
    table = pd.read_csv(work / "results/tables/retrained.csv", comment="#")
    assert sorted(set(zip(table["experiment"], table["seed"], strict=True))) == [(e, 1) for e in settings]
    assert (table["basis"] == "bitwise").all() and table["ok"].all()  # same machine: bit for bit
    assert set(table["metric"]) == {"early_step", "early_train_loss", "early_train_cost", "early_train_acc",
                                    "early_val_loss", "early_val_cost", "early_val_acc"}  # fmt: skip
    for e in settings:  # partial runs, apart from the study's
        assert read_run(work / f"results/retrain/{e}/seed1.h5").status == "partial"
    # a row the code no longer gives: the check fails, says which number, and leaves no table
    data = work / "docs/reproduction-runs.csv"
    rows = pd.read_csv(data, comment="#")
    rows.loc[(rows["experiment"] == "small-bn") & (rows["seed"] == 1), "early_val_cost"] += 1e-9
    rows.to_csv(data, index=False)
    (work / "results/tables/retrained.csv").unlink()
    assert snakemake(work, *target, check=False).returncode != 0
    log = (work / "results/logs/check_runs.log").read_text()
    assert "small-bn seed 1 early_val_cost" in log and "DIFFERENT" in log and "do NOT match" in log, log
    assert not (work / "results/tables/retrained.csv").exists()


def test_same_config_gives_identical_outputs(project, tmp_path):
    again = make_project(tmp_path / "again")
    snakemake(again, "--cores", "2")
    first, second = outputs(project), outputs(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_failed_gradient_check_stops_before_training(tmp_path):
    root = make_project(tmp_path / "p")
    cfg_path = root / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["gradcheck"]["checks"]["tiny-bn"]["max_rel_error"] = 1e-30
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(root, "--cores", "2", check=False)
    assert proc.returncode != 0
    assert not (root / "results" / "runs").exists()
    assert "FAILED" in (root / "results/logs/gradcheck/tiny-bn.log").read_text()


def test_bad_config_is_rejected_by_the_schema(tmp_path):
    root = make_project(tmp_path / "p")
    cfg_path = root / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["experiments"]["small-bn"]["lam"] = -1
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(root, "--cores", "1", "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "-1" in out and "minimum" in out


def test_default_config_plans_every_configuration_and_seed(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    proc = snakemake(tmp_path, "--cores", "2", "-n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    jobs = planned_jobs(proc)
    # the report's 17 configurations over 10 seeds, the 20 that test other readings over 5,
    # the 8 ablations of the discrepancies' first round over 10, the 22 that carry two
    # hypotheses to every number they touch over 5
    seeds = {e: spec.get("seeds", cfg["seeds"]) for e, spec in cfg["experiments"].items()}
    assert jobs["train"] == sum(map(len, seeds.values())) == 17 * 10 + 20 * 5 + 8 * 10 + 22 * 5
    assert jobs["download"] == 1 and jobs["gradcheck"] == len(cfg["gradcheck"]["checks"])
    for exp, exp_seeds in seeds.items():
        for seed in exp_seeds:
            assert f"results/runs/{exp}/seed{seed}.h5" in proc.stdout
    # Every experiment's settings, as the workflow hands them over, are valid TrainSettings.
    handed = re.findall(r"--settings '(\{.*?\})'", proc.stdout)
    assert len(handed) >= jobs["train"]
    for text in handed:
        values = json.loads(text)
        (TrainSettings if "n_batch" in values else GradcheckSettings).from_dict(values)


def local_rules() -> set[str]:
    """The rules the workflow runs where Snakemake runs (its `localrules:` blocks)."""
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return {name for block in re.findall(r"^localrules:\n((?:    \w+,\n)+)", text, re.M)
            for name in re.findall(r"\w+", block)} | {"all"}  # fmt: skip


def test_the_full_study_goes_to_slurm_as_chunks_of_runs(tmp_path):
    """profiles/slurm as shipped, on the full study with the lambda search (a small archive
    stands in for CIFAR-10): the training runs go in the chunks kmlp.study cuts them into
    (one job each, every run in exactly one), the data sets and checks one job;
    everything else runs where Snakemake runs; the README's count of submissions."""
    from cifar_fake import write_archive
    from kmlp.study import load

    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    md5 = write_archive(tmp_path / "fake.tar.gz", n_train_per_batch=60, n_test=100, seed=0)
    (tmp_path / "fake.yaml").write_text(f"data: {{archive: fake.tar.gz, md5: '{md5}'}}\n")
    overlays = [str(tmp_path / "config" / "rebuild-archive.yaml"), str(tmp_path / "fake.yaml")]
    proc = snakemake(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--configfile", *overlays, "-n")
    members, alone, group = {}, [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        if m := re.search(r"Group job (\S+) \(jobs in", line):
            group = members.setdefault(m.group(1), [])
        elif m := re.match(r"(    )?(?:rule|checkpoint) (\w+):$", line):
            if m.group(1) and group is not None:  # a job of the group above
                group.append(m.group(2))
            elif not m.group(1):  # a job of its own
                group = None
                alone += [m.group(2)] if m.group(2) not in local_rules() else []
        elif m := re.match(r"        output: (results/runs/\S+)$", line):
            if group is not None:
                group.append(m.group(1))
    study = load(REPO / "config" / "config.yaml", *overlays)
    chunks: dict[str, set[str]] = {}
    for (e, s), chunk in study.chunks.items():
        chunks.setdefault(chunk.name, set()).add(f"results/runs/{e}/seed{s}.h5")
    planned = {name: {j for j in jobs if j.startswith("results/")} for name, jobs in members.items()}
    assert planned.pop("setup") == set() and sorted(members["setup"]) == ["gradcheck"] * 12 + ["prepare"] * 2
    assert planned == chunks, sorted(set(planned) ^ set(chunks))
    assert all(set(members[name]) == {"train", *chunks[name]} for name in chunks)
    assert sum(map(len, chunks.values())) == len(study.runs(study.experiments))
    assert alone == []
    # the README's and config/README.md's counts are these
    readme = (REPO / "README.md").read_text()
    said = re.search(r"(\d+) submissions: (\d+) chunks of the configured runs, (\d+) of the search's passes", readme)
    train = [name for name in chunks if name.startswith("train-")]
    assert said and [int(g) for g in said.groups()] == [len(members), len(train), len(chunks) - len(train)]
    config_readme = (REPO / "config" / "README.md").read_text()
    assert f"the full study is then {len(train)} chunks of the configured runs" in config_readme


def test_snakemake_report_shows_every_figure_and_table(project, tmp_path):
    import zipfile

    snakemake(project, "--report", str(tmp_path / "report.zip"))
    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()
    cfg = yaml.safe_load((project / "config" / "config.yaml").read_text())
    for fig in cfg["figures"]:
        assert any(n.endswith(f"{fig}.png") for n in names), fig
    for table in [*cfg["tables"], "gradcheck", "summary", "diagnostics", "lambda_search"]:
        assert any(n.endswith(f"{table}.csv") for n in names), table


def _copy_with(project, tmp_path, edit):
    """A copy of the tiny project whose config ``edit(cfg)`` has changed."""
    work = tmp_path / "copy"
    shutil.copytree(project, work, symlinks=True)
    cfg_path = work / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    edit(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return work


def _csv_rows(path):
    return list(csv.DictReader(line for line in path.open() if not line.startswith("#")))


def test_lambda_search_table_keeps_lambdas_that_round_alike(project, tmp_path):
    """Coarse lambdas drawn from a sliver of a decade agree to 3 digits: one row each."""

    def edit(cfg):
        cfg["lambda_search"]["coarse"].update(n=3, log10_min=-3.0, log10_max=-2.9999)

    work = _copy_with(project, tmp_path, edit)
    snakemake(work, "--cores", "2", "results/tables/lambda_search.csv")
    rows = _csv_rows(work / "results/tables/lambda_search.csv")
    searched = json.loads((work / "results/lambda_search/fine.json").read_text())["ranked"]
    confirmed = json.loads((work / "results/lambda_search/best.json").read_text())["ranked"]
    assert len(searched) == 3 + 2 and len(confirmed) == 2
    assert sorted(r["experiment"] for r in rows) == sorted(e["experiment"] for e in searched + confirmed)
    assert len({r["row"] for r in rows}) == len(rows)


def test_record_times_only_the_configured_runs(project, tmp_path):
    """A benchmark left behind by an experiment no longer in the config is not counted."""
    work = _copy_with(project, tmp_path, lambda cfg: None)
    stale = work / "results/benchmarks/train/removed-experiment/seed1.tsv"
    stale.parent.mkdir(parents=True)
    stale.write_text("s\th:m:s\tmax_rss\n100000.0\t27:46:40\t1.0\n")
    snakemake(work, "--cores", "2", "--forcerun", "record")
    record = (work / "docs/reproduction.md").read_text()
    line = next(x for x in record.splitlines() if "of job time in all" in x)
    jobs, seconds = re.search(r"its (\d+) jobs took (\d+) s", line).groups()
    # the job time is the sum over the study's benchmark files (every row): the data sets',
    # the checks' and the configured runs', not the stale one's 100000 s
    bench = work / "results/benchmarks"
    counted = [*bench.glob("prepare*.tsv"), *bench.glob("gradcheck/*.tsv")]
    counted += [p for p in bench.glob("train/*/*.tsv") if p != stale]
    assert int(jobs) == len(counted), (line, counted)
    rows = [row for p in counted for row in list(csv.reader(p.read_text().splitlines(), delimiter="\t"))[1:]]
    assert abs(int(seconds) - sum(float(row[0]) for row in rows)) <= 0.5, line
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    search = cfg["lambda_search"]
    n_runs = sum(len(e.get("seeds", cfg["seeds"])) for e in cfg["experiments"].values())
    n_runs += search["coarse"]["n"] + search["fine"]["n"] + search["confirm"]["top"] * len(search["confirm"]["seeds"])
    n_runs += len(cfg["seeds"])  # the final search runs
    assert int(jobs) == n_runs + 1 + len(cfg["gradcheck"]["checks"])  # and prepare and the checks


def test_diagnose_runs_on_each_experiments_own_data_set(project, tmp_path):
    """An experiment with its own validation hold-out is diagnosed on its own data set."""

    def edit(cfg):
        cfg["experiments"]["small-val20"] = {"val_size": 20, "paper": {"val_acc": 0.5}}
        cfg["diagnostics"]["experiments"].append("small-val20")

    work = _copy_with(project, tmp_path, edit)
    snakemake(work, "--cores", "2", "results/tables/diagnostics.csv")
    rows = _csv_rows(work / "results/tables/diagnostics.csv")
    val20 = [r for r in rows if r["experiment"] == "small-val20" and r["metric"].startswith("binomial")]
    assert val20 and "20 images" in val20[0]["metric"]


# -- config errors at planning time (issue 11): `snakemake -n` names the key ----------
def _set(path, value):
    """An edit of the config that sets the value at ``path`` (a list of keys)."""

    def edit(cfg):
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _copy(src, dst):
    """An edit that copies the config's entry at ``src`` to ``dst`` (lists of keys)."""

    def edit(cfg):
        node = cfg
        for key in src:
            node = node[key]
        _set(dst, json.loads(json.dumps(node)))(cfg)

    return edit


# Mistakes the schema catches: it stops at the first, so one `snakemake -n` each.
SCHEMA_ERRORS = {
    "a run's key among the training defaults": (_set(["training", "seeds"], [1]), ["seeds", "unexpected"]),
    "init normal without sigma, gradient check": (
        _set(["gradcheck", "checks", "tiny-bn", "init"], "normal"),
        ["tiny-bn", "sigma"],
    ),
    "init normal with sigma null, gradient check": (
        _set(["gradcheck", "checks", "tiny-nobn", "sigma"], None),
        ["tiny-nobn", "sigma"],
    ),
    "hidden [] with batch_norm, gradient check": (
        _set(["gradcheck", "checks", "tiny-bn", "hidden"], []),
        ["tiny-bn", "hidden"],
    ),
    "val_size out of range": (_set(["data", "val_size"], 50000), ["val_size", "49999"]),
    "val_size out of range, experiment": (
        _set(["experiments", "small-bn", "val_size"], 60000),
        ["small-bn", "val_size", "49999"],
    ),
}
# Mistakes across keys (kmlp.study): it reports them all, a line each, so they share
# one config and one `snakemake -n`; each case's words must be on one line.
CROSS_KEY_ERRORS = {
    **{
        f"a table named {name}": (_copy(["tables", "table1_lambda"], ["tables", name]), [f"tables.{name}", "reserved"])
        for name in ("summary", "gradcheck", "diagnostics", "lambda_search")
    },
    "an experiment named lsearch-final": (
        _copy(["experiments", "small-bn"], ["experiments", "lsearch-final"]),
        ["experiments.lsearch-final", "reserved"],
    ),
    "an experiment named lsearch-coarse-00": (
        _copy(["experiments", "small-bn"], ["experiments", "lsearch-coarse-00"]),
        ["experiments.lsearch-coarse-00", "reserved"],
    ),
    "eta_min > eta_max": (_set(["experiments", "small-bn", "eta_min"], 0.5), ["experiments.small-bn", "eta_min"]),
    "init normal without sigma, experiment": (
        _set(["experiments", "small-nobn", "init"], "normal"),
        ["experiments.small-nobn", "sigma"],
    ),
    "n_batch larger than the training set": (
        _set(["experiments", "small-bn", "n_batch"], 50000),
        ["experiments.small-bn", "n_batch", "49970"],
    ),
    "hidden [] with batch_norm": (
        _set(["experiments", "small-bn", "hidden"], []),
        ["experiments.small-bn", "batch_norm", "hidden"],
    ),
    "a table row longer than its columns": (
        _set(["tables", "table1_lambda", "rows", "0"], ["lambda-bn-0", "lambda-bn-0.1"]),
        ["tables.table1_lambda.rows['0']", "2 experiments for 1 column"],
    ),
    "unknown experiment in a table": (
        _set(["tables", "table1_lambda", "rows", "0.1"], ["nope"]),
        ["tables.table1_lambda.rows['0.1']", "'nope'"],
    ),
    "unknown experiment in a figure": (
        _set(["figures", "figure1", "experiments"], ["small-bn", "nope"]),
        ["figures.figure1.experiments", "'nope'"],
    ),
    "consistent above inconsistent": (_set(["verdict", "consistent"], 0.9995), ["verdict", "consistent", "below"]),
    "an experiment in two pools for one metric": (
        _set(["verdict", "pools", "bn-val-2"], {"metric": "val_acc", "experiments": ["small-bn"]}),
        ["verdict.pools.bn-val-2", "small-bn", "also in pool bn-val"],
    ),
    "coarse lambda range upside down": (
        _set(["lambda_search", "coarse", "log10_min"], 0.0),
        ["lambda_search.coarse", "log10_min", "below"],
    ),
    "unknown experiment in diagnostics": (
        _set(["diagnostics", "experiments"], ["small-bn", "nope"]),
        ["diagnostics.experiments", "'nope'"],
    ),
}


def _plan(root, *edits):
    """`snakemake -n` in ``root`` after ``edits`` of its config."""
    cfg_path = root / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    for edit in edits:
        edit(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(root, "-n", check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", SCHEMA_ERRORS)
def test_config_errors_the_schema_catches_when_planning(tmp_path, case):
    """Each passed `snakemake -n` on main."""
    edit, words = SCHEMA_ERRORS[case]
    rc, out = _plan(make_project(tmp_path / "p"), edit)
    assert rc != 0 and "Traceback" not in out, out
    for word in words:
        assert word in out, out


@pytest.fixture(scope="module")
def cross_key_plan(tmp_path_factory):
    return _plan(make_project(tmp_path_factory.mktemp("cross") / "p"), *(e for e, _ in CROSS_KEY_ERRORS.values()))


@pytest.mark.parametrize("case", CROSS_KEY_ERRORS)
def test_config_errors_across_keys_are_caught_when_planning(cross_key_plan, case):
    """Each passed `snakemake -n` on main (unknown experiments failed on a missing file
    without naming the key)."""
    rc, out = cross_key_plan
    words = CROSS_KEY_ERRORS[case][1]
    assert rc != 0 and "Traceback" not in out, out
    assert any(all(word in line for word in words) for line in out.splitlines()), out


def test_valid_cross_field_settings_pass(tmp_path):
    """init normal takes its sigma from the training defaults; hidden [] without BN."""
    root = make_project(tmp_path / "p")
    cfg_path = root / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["training"]["sigma"] = 0.1
    cfg["experiments"]["small-nobn"].update(init="normal", hidden=[])
    cfg["experiments"]["small-bn"]["n_batch"] = 49970
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(root, "-n")


def test_training_memory_follows_dtype_and_data_size(project, tmp_path):
    """'mem_mb=1500 for train is fixed, but dtype: float64 needs about 1.6 GB'"""

    def edit(cfg):
        cfg["experiments"]["small-bn"]["dtype"] = "float64"

    work = _copy_with(project, tmp_path, edit)
    targets = ["results/runs/small-nobn/seed1.h5", "results/runs/small-bn/seed1.h5"]
    proc = snakemake(work, "--cores", "1", "--forcerun", *targets)
    mem = dict(re.findall(r"experiment=(\S+), seed=1\n.*?mem_mb=(\d+)", proc.stdout + proc.stderr, re.S))
    assert set(mem) == {"small-nobn", "small-bn"}, proc.stdout
    size_mb = (work / "results/data/cifar10.h5").stat().st_size / 1e6
    base32, base64 = int(mem["small-nobn"]) - 400, int(mem["small-bn"]) - 400
    assert 4 * size_mb < base32 < base64 and abs(base64 - 2 * base32) <= 2
    # and the float64 run trained in float64: its weights are no float32 numbers widened
    for experiment, dtype in (("small-nobn", np.float32), ("small-bn", np.float64)):
        weights = read_run(work / f"results/runs/{experiment}/seed1.h5", weights=True).weights
        assert {w.dtype for w in weights.values()} == {np.dtype(dtype)}, experiment
    w1 = read_run(work / "results/runs/small-bn/seed1.h5", weights=True).weights["W1"]
    assert np.mean(w1 != w1.astype(np.float32).astype(np.float64)) > 0.99


# A stand-in for kmlp on PATH whose first two training jobs are cut short: the first
# is SIGKILLed at the rename of its complete output (its temporary file stays), the
# second writes its output; both then hang, as jobs of a node about to be lost do.
CUT_SHORT = """#!/bin/sh
if [ "$1" = train ]; then
    if mkdir "{state}/first" 2>/dev/null; then
        "{python}" -c 'import os, signal, sys
os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
from kmlp.cli import main
sys.exit(main(sys.argv[1:]))' "$@"
        touch "{state}/killed-at-rename"
    else
        "{kmlp}" "$@"
        touch "{state}/written"
    fi
    exec sleep 600
fi
exec "{kmlp}" "$@"
"""


def test_a_killed_run_is_unlocked_then_resumed_with_rerun_incomplete(tiny_project, tmp_path):
    """SIGKILL to Snakemake and its jobs (a lost node, an OOM kill) during the writes:
    the next run names --unlock; after it, the job whose output was complete but not
    confirmed is rerun by the workflow profile's rerun-incomplete (without it Snakemake
    refuses), the killed writer's temporary file is removed, and the outputs are those
    of an uninterrupted run. (The lock and rerun-incomplete path worked on main; the
    temporary file stayed.)"""
    root = make_project(tmp_path / "p")
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    state.mkdir()
    bin_dir.mkdir()
    kmlp = shutil.which("kmlp", path=str(Path(sys.executable).parent))
    (bin_dir / "kmlp").write_text(CUT_SHORT.format(state=state, python=sys.executable, kmlp=kmlp))
    (bin_dir / "kmlp").chmod(0o755)
    target = "results/tables/table1_lambda.csv"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile")]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [*cmd, "--cores", "2", target],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not ((state / "killed-at-rename").exists() and (state / "written").exists()):
            assert proc.poll() is None and time.monotonic() < deadline, "the two training jobs did not start"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    runs = root / "results" / "runs"
    left = sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*") if p.is_file())
    assert len(left) == 2 and any(".tmp-" in name for name in left), left

    locked = snakemake(root, "--cores", "2", target, check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(root, "--unlock")
    refused = snakemake(root, "--cores", "2", "-n", "--workflow-profile", "none", target, check=False)
    assert refused.returncode != 0 and "--rerun-incomplete" in refused.stdout + refused.stderr
    snakemake(root, "--cores", "2", target)

    assert not [p for p in (root / "results").rglob("*") if ".tmp-" in p.name]
    made = sorted(p.relative_to(root).as_posix() for p in runs.rglob("*.h5"))
    assert len(made) == 7  # the table's 5 runs and small-bn's 2, pooled with them by the verdict
    for rel in [*made, target, target.replace(".csv", ".tex")]:
        assert (root / rel).read_bytes() == (tiny_project / rel).read_bytes(), rel


@pytest.fixture(scope="module")
def need_project(tmp_path_factory):
    """The tiny study with seeds by need on: every number under 100 % stable gets a seed,
    up to 3 (.test/config's seeds_by_need, switched on)."""
    tiny = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    root = make_project(
        tmp_path_factory.mktemp("need") / "project", seeds_by_need={**tiny["seeds_by_need"], "enabled": True}
    )
    snakemake(root, "--cores", "2")
    return root


def test_seeds_by_need_adds_seeds_round_by_round_until_every_number_is_stable_or_capped(need_project):
    from kmlp.study.seeds import CAP, MORE, STABLE

    cfg = yaml.safe_load((need_project / "config" / "config.yaml").read_text())
    study, rule = Study(cfg), Study(cfg).seeds_by_need
    rounds = sorted((need_project / "results/seeds_by_need").glob("round*.json"), key=lambda p: int(p.stem[5:]))
    docs = [json.loads(p.read_text()) for p in rounds]
    assert [d["round"] for d in docs] == list(range(1, len(docs) + 1)) and len(docs) >= 2
    assert [d["done"] for d in docs] == [False] * (len(docs) - 1) + [True]
    seeds = {e: study.seeds(e) for e in docs[0]["seeds"]}
    for doc in docs:
        # a round gives `step` seeds to each experiment with a number under the threshold
        # and room under the cap, continuing its seeds; the others keep theirs
        unstable = {n["experiment"] for n in doc["numbers"] if n["stability"] < rule.stable}
        room = {e for e in unstable if len(seeds[e]) < rule.cap}
        assert set(doc["added"]) == room, doc
        for e, new in doc["added"].items():
            assert new == list(range(max(seeds[e]) + 1, max(seeds[e]) + 1 + rule.step))
        assert {n["state"] for n in doc["numbers"]} <= {STABLE, MORE, CAP}
        seeds = {e: [*s, *doc["added"].get(e, [])] for e, s in seeds.items()}
        assert doc["seeds"] == seeds
    assert docs[0]["added"], "the tiny study should have a number under 100 % stable at 2 seeds"
    # every added run was trained, and the summary judges every run there is
    summary = pd.read_csv(need_project / "results/tables/summary.csv", comment="#")
    for row in summary.itertuples():
        on_disk = sorted(int(p.stem[4:]) for p in (need_project / f"results/runs/{row.experiment}").glob("seed*.h5"))
        assert on_disk == seeds[row.experiment] and row.seeds == len(on_disk)
        assert row.added == len(on_disk) - len(study.seeds(row.experiment))
        assert row.need == rule.state(row.stability, row.seeds)
    assert summary.added.sum() > 0
    # the final round's numbers are the summary's: each stable or at the cap
    final = {(n["experiment"], n["metric"]): n for n in docs[-1]["numbers"]}
    assert {(r.experiment, r.metric): r.need for r in summary.itertuples()} == {k: n["state"] for k, n in final.items()}
    # the figures show the configured seeds (their PNG's provenance), the record's data every run
    from PIL import Image

    for name, fig in cfg["figures"].items():
        shown = Image.open(need_project / f"results/figures/{name}.png").text["experiments"]
        assert shown == "; ".join(f"{e} (seeds {','.join(map(str, study.seeds(e)))})" for e in fig["experiments"])
    data = pd.read_csv(need_project / "docs/reproduction-runs.csv", comment="#")
    for e, s in seeds.items():
        assert sorted(data.seed[data.experiment == e]) == s
    record = (need_project / "docs/reproduction.md").read_text()
    added = sum(len(d["added"].get(e, [])) for d in docs for e in seeds)
    assert f"Seeds by need added {added} training runs" in record
    assert "**Seeds by need:** " in record and "| seeds |" in record
    check = subprocess.run(
        [sys.executable, "-m", "kmlp", "check-record", "docs/reproduction.md"],
        cwd=need_project, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0 and "the record and its data agree" in check.stdout, check.stdout + check.stderr
    assert planned_jobs(snakemake(need_project, "--cores", "2", "-n")) == {}


def test_an_edited_seeds_line_of_the_record_is_found(need_project, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(need_project, work, symlinks=True)
    record = work / "docs/reproduction.md"
    text = record.read_text()
    assert "(+1)" in text
    record.write_text(text.replace("(+1)", "(+2)", 1))
    check = subprocess.run(
        [sys.executable, "-m", "kmlp", "check-record", "docs/reproduction.md"], cwd=work, capture_output=True, text=True
    )
    assert check.returncode == 1 and "(+2)" in check.stdout, check.stdout
