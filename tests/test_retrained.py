"""``kmlp check-runs``: runs trained again against the record's rows for them. Same numeric
environment: bit for bit. Another one: each number within k x sqrt(2) seed stds, and per
metric the mean standardised difference within k standard errors (a shift shared by all)."""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kmlp.aggregate.record_data import HISTORY_METRICS, runs_frame
from kmlp.aggregate.retrained import compare_runs, record_frame, report
from kmlp.cli import main
from kmlp.errors import KmlpError
from kmlp.runs import FINAL_METRICS, HISTORY_COLUMNS, RunRecord, write_run
from kmlp.study import Study

HERE = {"blas": "openblas 0.3.31 SkylakeX (1 threads)", "numpy": "2.4.6"}
THERE = {"blas": "openblas 0.3.31 Haswell (1 threads)", "numpy": "2.4.6"}
EXPERIMENTS = [f"exp{i}" for i in range(16)]
SEEDS = range(1, 11)
STD = 0.004  # every metric's seed spread in the synthetic record


def run(experiment, seed, final, env=HERE, status="completed") -> RunRecord:
    return RunRecord(experiment=experiment, seed=seed, status=status, settings={}, model={"sizes": [4, 10]},
                     history={c: np.zeros(1) for c in HISTORY_COLUMNS}, final=dict(final), environment=env)  # fmt: skip


@pytest.fixture(scope="module")
def record():
    """A record's runs: 16 experiments x 10 seeds, every metric 0.5 + i/100 with seed noise."""
    rng = np.random.default_rng(0)
    runs = []
    for i, e in enumerate(EXPERIMENTS):
        noise = rng.standard_normal((len(SEEDS), len(FINAL_METRICS)))
        noise = (noise - noise.mean(0)) / noise.std(0, ddof=1) * STD  # a spread of exactly STD
        for s, row in zip(SEEDS, noise, strict=True):
            runs.append(run(e, s, {m: 0.5 + i / 100 + x for m, x in zip(FINAL_METRICS, row, strict=True)}))
    return runs


def again(record, shift=0.0, env=HERE, only=None, metric=None):
    """Seed 1 of each experiment trained again: the record's numbers, ``shift`` added."""
    out = []
    for r in record:
        if r.seed == 1:
            moved = {m: v + (shift if (only in (None, r.experiment) and metric in (None, m)) else 0.0)
                     for m, v in r.final.items()}  # fmt: skip
            out.append(run(r.experiment, 1, moved, env))
    return out


def test_same_environment_is_bit_for_bit(record):
    table, joint = compare_runs(runs_frame(record), again(record), 4.4)
    assert len(table) == 16 * len(FINAL_METRICS) and (table["basis"] == "bitwise").all() and table["ok"].all()
    assert joint.empty  # nothing compared on the spread
    first = again(record)[3].final["val_acc"]
    nudged = again(record, shift=np.spacing(first), only="exp3", metric="val_acc")  # one ulp
    table, _ = compare_runs(runs_frame(record), nudged, 4.4)
    assert list(table.loc[~table["ok"], ["experiment", "metric"]].itertuples(index=False)) == [("exp3", "val_acc")]
    assert any("exp3 seed 1 val_acc" in line and "DIFFERENT" in line for line in report(table, _, 4.4))


def test_another_environment_within_the_seed_spread(record):
    bound = 4.4 * math.sqrt(2) * STD
    table, joint = compare_runs(runs_frame(record), again(record, env=THERE), 4.4)
    assert (table["basis"] == "spread").all() and table["ok"].all() and joint["ok"].all()
    assert np.allclose(table["tolerance"], bound)
    inside = again(record, 0.99 * bound, THERE, only="exp5", metric="test_acc")
    table, joint = compare_runs(runs_frame(record), inside, 4.4)
    assert table["ok"].all()
    # one run outside (1.01 x the bound; the mean of 16 runs also moves, 1.01 x 4.4/16 < 4.4/4)
    outside = again(record, 1.01 * bound, THERE, only="exp5", metric="test_acc")
    table, joint = compare_runs(runs_frame(record), outside, 4.4)
    assert list(table.loc[~table["ok"], ["experiment", "metric"]].itertuples(index=False)) == [("exp5", "test_acc")]
    assert joint["ok"].all()


def test_a_shift_every_run_shares_is_found_though_each_number_is_inside(record):
    # 0.3 of the per-number bound on all 16: each inside, their mean at 0.3 x 4.4 = 1.3 > 4.4/4
    shift = 0.3 * 4.4 * math.sqrt(2) * STD
    table, joint = compare_runs(runs_frame(record), again(record, shift, THERE, metric="test_acc"), 4.4)
    assert table["ok"].all()
    assert list(joint.loc[~joint["ok"], "metric"]) == ["test_acc"]
    assert joint.set_index("metric").at["test_acc", "mean_z"] == pytest.approx(0.3 * 4.4)
    assert any("test_acc over 16 runs" in line and "SHIFTED" in line for line in report(table, joint, 4.4))


def test_a_changed_status_fails(record):
    changed = again(record)
    changed[0].status = "diverged"
    table, _ = compare_runs(runs_frame(record), changed, 4.4)
    assert set(table.loc[~table["ok"], "experiment"]) == {"exp0"}


def test_a_run_without_a_row_is_refused(record):
    with pytest.raises(KmlpError, match="no row for exp0 seed 11"):
        compare_runs(runs_frame(record), [run("exp0", 11, record[0].final)], 4.4)


def test_the_verb_writes_the_table_and_exits_1_when_a_number_moved(record, tmp_path, capsys):
    data = tmp_path / "rec-runs.csv"
    from kmlp.aggregate.tabular import csv_text

    data.write_text(csv_text(runs_frame(record), ["verdict: {}"]))
    assert len(record_frame(data)) == len(record)
    paths = []
    for r in again(record, 0.05, THERE, only="exp2", metric="val_acc"):
        paths.append(str(tmp_path / f"{r.experiment}.h5"))
        write_run(paths[-1], r)
    out = tmp_path / "retrained.csv"
    assert main(["check-runs", *paths, "--data", str(data), "--out", str(out)]) == 1
    said = capsys.readouterr().out
    assert "exp2 seed 1 val_acc" in said and "OUTSIDE" in said and "do NOT match" in said
    assert "k: 4.4" in out.read_text() and out.read_text().count("\n") > 16 * len(FINAL_METRICS)
    assert main(["check-runs", *paths[:1], "--data", str(data), "--out", str(out)]) == 0


# -- the record at the report's scale ------------------------------------------------------
def early_run(experiment, seed, values, env=HERE, status="completed", step=450) -> RunRecord:
    """A run whose history has step 0 and one evaluation after it, at ``step``, holding ``values``."""
    history = {c: np.array([0.0, float(step)]) if c == "step" else np.zeros(2) for c in HISTORY_COLUMNS}
    for m, v in values.items():
        history[m][1] = v
    final = dict.fromkeys(FINAL_METRICS, 0.5)
    return RunRecord(experiment=experiment, seed=seed, status=status, settings={"lam": 0.01},
                     model={"sizes": [4, 10]}, history=history, final=final, environment=env)  # fmt: skip


@pytest.fixture(scope="module")
def early_record():
    """A record's runs whose first evaluations after step 0 are 0.4 + i/100 with seed noise."""
    rng = np.random.default_rng(1)
    runs = []
    for i, e in enumerate(EXPERIMENTS):
        noise = rng.standard_normal((len(SEEDS), len(HISTORY_METRICS)))
        noise = (noise - noise.mean(0)) / noise.std(0, ddof=1) * STD
        for s, row in zip(SEEDS, noise, strict=True):
            runs.append(early_run(e, s, {m: 0.4 + i / 100 + x for m, x in zip(HISTORY_METRICS, row, strict=True)}))
    return runs


def first_epochs(record, shift=0.0, env=HERE, only=None, metric=None, step=450):
    """Seed 1 of each experiment trained again to its first evaluation: partial runs."""
    out = []
    for r in record:
        if r.seed == 1:
            values = {m: r.history[m][1] + (shift if only in (None, r.experiment) and metric in (None, m) else 0.0)
                      for m in HISTORY_METRICS}  # fmt: skip
            out.append(early_run(r.experiment, 1, values, env, status="partial", step=step))
    return out


def _frame(runs, tmp_path):
    """The runs as a record's data file holds them, read back as check-runs reads it."""
    from kmlp.aggregate.tabular import csv_text

    data = tmp_path / "rec-runs.csv"
    data.write_text(csv_text(runs_frame(runs), ["verdict: {}"]))
    return record_frame(data)


def test_a_first_epoch_is_compared_with_the_records_early_columns(early_record, tmp_path):
    record = _frame(early_record, tmp_path)
    assert record["early_step"].eq(450).all() and record["lam"].eq(0.01).all()
    table, joint = compare_runs(record, first_epochs(early_record), 4.4, early=True)
    assert len(table) == 16 * (1 + len(HISTORY_METRICS)) and (table["basis"] == "bitwise").all()
    assert table["ok"].all() and joint.empty
    value = early_record[30].history["val_acc"][1]  # exp3 seed 1
    nudged = first_epochs(early_record, np.spacing(value), only="exp3", metric="val_acc")
    table, _ = compare_runs(record, nudged, 4.4, early=True)
    failed = list(table.loc[~table["ok"], ["experiment", "metric"]].itertuples(index=False))
    assert failed == [("exp3", "early_val_acc")]
    # a run that stopped elsewhere (another eval_every) is not the record's first epoch
    table, _ = compare_runs(record, first_epochs(early_record, step=900), 4.4, early=True)
    assert set(table.loc[~table["ok"], "metric"]) == {"early_step"}


def test_a_first_epoch_elsewhere_is_held_to_its_seed_spread(early_record, tmp_path):
    record = _frame(early_record, tmp_path)
    bound = 4.4 * math.sqrt(2) * STD
    table, joint = compare_runs(record, first_epochs(early_record, 0.99 * bound, THERE, "exp5", "train_cost"), 4.4,
                                early=True)  # fmt: skip
    numbers = table[table["metric"] != "early_step"]
    assert (table["basis"] == "spread").all() and np.allclose(numbers["tolerance"], bound) and table["ok"].all()
    table, joint = compare_runs(record, first_epochs(early_record, 1.01 * bound, THERE, "exp5", "train_cost"), 4.4,
                                early=True)  # fmt: skip
    assert list(table.loc[~table["ok"], ["experiment", "metric"]].itertuples(index=False)) == [
        ("exp5", "early_train_cost")
    ]
    shared = 0.3 * bound  # each inside; their mean 0.3 x 4.4 > 4.4 / 4
    table, joint = compare_runs(record, first_epochs(early_record, shared, THERE, metric="val_loss"), 4.4, early=True)
    assert table["ok"].all() and list(joint.loc[~joint["ok"], "metric"]) == ["early_val_loss"]


def test_partial_runs_have_no_final_metrics_and_old_records_no_first_epochs(record, early_record, tmp_path):
    with pytest.raises(KmlpError, match="partial runs have no final metrics.*--early"):
        compare_runs(_frame(early_record, tmp_path), first_epochs(early_record), 4.4)
    old = _frame(record, tmp_path)  # histories of one row: no evaluation after step 0, empty early columns
    with pytest.raises(KmlpError, match="keeps no early columns"):
        compare_runs(old, first_epochs(early_record), 4.4, early=True)
    from kmlp.aggregate.grouping import group_runs

    with pytest.raises(KmlpError, match="exp0 seed 1 is a partial run"):
        group_runs(first_epochs(early_record))


def test_the_verb_compares_first_epochs(early_record, tmp_path, capsys):
    from kmlp.aggregate.tabular import csv_text

    data = tmp_path / "rec-runs.csv"
    data.write_text(csv_text(runs_frame(early_record), ["verdict: {}"]))
    paths = []
    for r in first_epochs(early_record, 0.05, only="exp2", metric="val_acc"):
        paths.append(str(tmp_path / f"{r.experiment}.h5"))
        write_run(paths[-1], r)
    out = tmp_path / "retrained.csv"
    assert main(["check-runs", "--early", *paths, "--data", str(data), "--out", str(out)]) == 1
    said = capsys.readouterr().out
    assert "exp2 seed 1 early_val_acc" in said and "DIFFERENT" in said
    assert "compared: first evaluation after step 0" in out.read_text()
    assert main(["check-runs", "--early", *paths[:2], "--data", str(data), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["check-runs", *paths[:2], "--data", str(data), "--out", str(out)]) == 1  # whole: refused
    assert "partial runs have no final metrics to compare (exp0 seed 1, exp1 seed 1): use --early" in (
        capsys.readouterr().err
    )


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: Where config/rebuild-archive.yaml finds the offline CIFAR-10 (our workplace's ../shared/data).
ARCHIVE = REPO.parent / "shared" / "data" / "cifar-10-python.tar.gz"


@pytest.mark.slow
@pytest.mark.needs("archive")
def test_every_training_setting_trained_again_matches_the_committed_record(tmp_path, ci_log):
    """The README's line, as written, in a fresh checkout beside the offline archive: one
    seed of every training setting of the record (the report's configurations, the readings,
    the ablations) trained on CIFAR-10 and compared with
    docs/reproduction-runs.csv; the comparison and its time go into the log (CI's)."""
    if not ARCHIVE.exists():
        pytest.skip(f"no CIFAR-10 archive at {ARCHIVE}: the report's configurations are not trained again "
                    "against docs/reproduction-runs.csv")  # fmt: skip
    [line] = [x for x in README.read_text().splitlines() if "results/tables/retrained.csv" in x and "snakemake" in x]
    project = tmp_path / "kmlp"
    project.mkdir()
    for name in ("workflow", "config", "docs"):
        (project / name).symlink_to(REPO / name)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / ARCHIVE.name).symlink_to(ARCHIVE)
    argv = shlex.split(line)
    assert argv[0] == "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=project, env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    log = project / "results" / "logs" / "check_runs.log"
    # in CI's log: every retrained run beside its row, and the time
    ci_log(f"{line}\n(took {took:.0f} s)\n" + (log.read_text() if log.exists() else proc.stdout + proc.stderr))
    assert proc.returncode == 0, log.read_text() if log.exists() else proc.stderr[-3000:]
    table = pd.read_csv(project / "results" / "tables" / "retrained.csv", comment="#")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    overlay = yaml.safe_load((REPO / argv[argv.index("--configfile") + 1]).read_text())
    config["lambda_search"].update(overlay.get("lambda_search", {}))  # the offline overlay turns the search on
    expected = Study(config).retrained()  # every setting: the report's, the readings, the ablations, the search's
    assert set(Study(config).report_experiments()) < set(expected)
    study = Study(config)
    dropped = [e for e in config["experiments"] if e not in expected]
    assert len(expected) == len(config["experiments"]) - len(dropped) + bool(config["lambda_search"]["enabled"])
    for e in dropped:  # an ablation whose setting differs from a retrained one's only in lambda
        twins = [k for k in expected if k in config["experiments"] and study.spec(k) | {"lam": 0} == study.spec(e) | {
            "lam": 0}]  # fmt: skip
        assert not study.paper(e) and twins, e
    assert sorted(set(table["experiment"])) == sorted(expected)
    assert f"({len(expected)} runs: the report's {len(Study(config).report_experiments())} configurations" in (
        README.read_text()
    )
    # each setting's first epoch: the step of its first evaluation and the history's six numbers there
    assert len(table) == len(expected) * (1 + len(HISTORY_METRICS)) and table["ok"].all()
    assert set(table["metric"]) == {"early_step", *(f"early_{m}" for m in HISTORY_METRICS)}


def test_a_search_runs_lambda_is_read_from_its_row(tmp_path):
    """Rule retrain trains a lambda search run with its row's lambda (common.smk's
    retrain_settings), and refuses, naming the file, a run whose row gives none."""
    from kmlp.aggregate.tabular import recorded_lambda

    data = tmp_path / "runs.csv"
    data.write_text("# made by: a test\nexperiment,seed,lam\nlsearch-final-01,1,0.0061\nlsearch-final-01,2,\n")
    assert recorded_lambda(data, "lsearch-final-01", 1) == 0.0061
    for experiment, seed in (("lsearch-final-01", 2), ("lsearch-final-01", 3), ("other", 1)):
        with pytest.raises(KmlpError, match=f"runs.csv gives no lambda for {experiment} seed {seed}"):
            recorded_lambda(data, experiment, seed)
    with pytest.raises(KmlpError, match="does not exist"):
        recorded_lambda(tmp_path / "none.csv", "lsearch-final-01", 1)
