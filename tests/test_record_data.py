"""The record's data (``kmlp record --out-runs``: a row per run) and ``kmlp check-record``,
which derives the record's verdicts, z and intervals again from those rows alone: on
synthetic runs, where a changed number must be found, and on the committed record
(docs/reproduction.md and docs/reproduction-runs.csv), which must agree line for line."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kmlp.aggregate.record_data import COLUMNS, EARLY_COLUMNS, compare_record, read_runs_csv, record_sections
from kmlp.cli import main
from kmlp.errors import KmlpError
from kmlp.runs import FINAL_METRICS, read_run
from test_aggregate import SPEC, checks, files, runs  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]
#: A second table: a metric per column, and a cell left empty.
SPEC2 = {"metric": "test_acc", "columns": ["val", "test"], "column_metrics": ["val_acc", "test_acc"],
         "rows": {"a": ["exp_a", "exp_a"], "b": ["exp-b", ""]}}  # fmt: skip


@pytest.fixture()
def record(runs, checks, tmp_path, monkeypatch):  # noqa: F811
    """A record made by the verbs from the synthetic runs, with its data beside it."""
    monkeypatch.chdir(tmp_path)
    every = files(runs, "exp_a", "exp-b", "exp-c")
    readings = json.dumps({"exp-b": "another reading"})
    assert main(["summary", *every, "--readings", readings, "--out-tex", "s.tex", "--out-csv", "s.csv"]) == 0
    for name, spec in (("t1", SPEC), ("t2", SPEC2)):
        argv = ["table", *every, "--spec", json.dumps(spec), "--out-tex", f"{name}.tex", "--out-csv", f"{name}.csv"]
        assert main(argv) == 0
    assert main(["gradtable", *checks, "--out-tex", "g.tex", "--out-csv", "g.csv"]) == 0
    argv = ["record", "--summary", "s.csv", "--gradcheck", "g.csv", "--tables", "t1.csv", "t2.csv"]
    assert main([*argv, "--runs", *every, "--out-runs", "docs/rec-runs.csv", "--out", "docs/rec.md"]) == 0
    return tmp_path / "docs" / "rec.md"


def test_the_rows_hold_every_runs_numbers_exactly(record, runs):  # noqa: F811
    meta, got = read_runs_csv(record.with_name("rec-runs.csv"))
    assert [(r.experiment, r.seed) for r in got] == [(e, s) for e in ("exp_a", "exp-b", "exp-c") for s in (1, 2, 3)] + [
        ("exp-c", 4)
    ]
    for r in got:
        orig = read_run(runs[r.experiment, r.seed])
        a, b = np.array([orig.final[m] for m in FINAL_METRICS]), np.array([r.final[m] for m in FINAL_METRICS])
        assert (np.isnan(a) == np.isnan(b)).all() and np.isnan(a).any() == (r.status == "diverged")
        assert (a[~np.isnan(a)].view(np.uint64) == b[~np.isnan(b)].view(np.uint64)).all()  # bit for bit
        assert r.status == orig.status and r.paper == orig.paper
    assert json.loads(meta["readings"]) == {"exp-b": "another reading"}
    assert json.loads(meta["table t2"])["rows"] == SPEC2["rows"]
    assert "rec-runs.csv: a row per run" in record.read_text()


def test_check_record_derives_the_same_tables(record, capsys):
    assert main(["check-record", str(record)]) == 0
    out = capsys.readouterr().out
    assert "3 tables (summary, t1, t2)" in out and "10 runs" in out and "agree" in out
    found = compare_record(record.read_text(), record.with_name("rec-runs.csv"))
    # the summary: exp_a val and test, exp-b val; t1: 3 cells with a report number (exp-c has
    # none); t2: 3 cells. Only the summary shows intervals.
    assert found.equal and found.counts() == {"verdicts": 9, "z": 9, "intervals": 3}
    assert {k: len(v) for k, v in found.derived.items()} == {"summary": 6, "t1": 4, "t2": 4}


@pytest.mark.parametrize(
    ("column", "delta", "section"),
    [
        ("val_acc", 0.02, "summary"),
        ("test_acc", 0.02, "t2"),
        ("paper_val_acc", 0.01, "summary"),
        ("images_val", 5000, "summary"),
    ],  # fmt: skip
)
def test_a_changed_number_in_the_data_is_found(record, capsys, column, delta, section):
    data = record.with_name("rec-runs.csv")
    text = data.read_text()
    comments = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    frame = pd.read_csv(data, comment="#", keep_default_na=False, dtype=str)
    at = (
        (frame.experiment == "exp_a") & (frame.seed == "1")
        if column != "paper_val_acc"
        else frame.experiment == "exp_a"
    )
    kind = type(delta)
    frame.loc[at, column] = [str(kind(v) + delta) for v in frame.loc[at, column]]
    data.write_text(comments + frame.to_csv(index=False, lineterminator="\n"))
    assert main(["check-record", str(record)]) == 1
    out = capsys.readouterr().out
    assert f"DIFFERENT in {section}:" in out and "disagree" in out


def test_a_changed_record_is_found(record, capsys):
    text = record.read_text()
    line = next(v for v in record_sections(text)["t1"] if "consistent" in v)
    record.write_text(text.replace(line, line.replace("consistent", "borderline", 1)))
    assert main(["check-record", str(record)]) == 1
    assert "DIFFERENT in t1:" in capsys.readouterr().out


def test_record_diff_says_which_numbers_moved(record, tmp_path, capsys):
    data = record.with_name("rec-runs.csv")
    assert main(["record-diff", str(data), str(data)]) == 0
    assert "no number moved" in capsys.readouterr().out
    comments = "".join(line + "\n" for line in data.read_text().splitlines() if line.startswith("#"))
    frame = pd.read_csv(data, comment="#", keep_default_na=False, dtype=str)
    at = (frame.experiment == "exp_a") & (frame.seed == "2")
    frame.loc[at, "test_acc"] = [str(float(v) + 0.02) for v in frame.loc[at, "test_acc"]]
    moved = tmp_path / "moved.csv"
    moved.write_text(comments + frame[frame.seed != "3"].to_csv(index=False, lineterminator="\n"))
    assert main(["record-diff", str(data), str(moved)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  exp_a: 1 of 2 runs changed (val_acc max |d| 0.0000, test_acc max |d| 0.0200)" in out
    assert set(out[1].removeprefix("runs only before: ").split(", ")) == {
        "exp_a seed 3",
        "exp-b seed 3",
        "exp-c seed 3",
    }
    # the judged lines that moved, before and now, by table: t1 judges test_acc
    before = [line for line in out if line.startswith("  t1, before: |")]
    now = [line for line in out if line.startswith("  t1, now:    |")]
    assert before and len(before) == len(now) and before != [b.replace("before:", "now:   ") for b in now]
    assert out[-1].startswith("1 run(s) changed, 3 added or removed, ")


def test_bad_record_data_is_refused(record, tmp_path, capsys):
    data = record.with_name("rec-runs.csv")
    frame = pd.read_csv(data, comment="#")
    frame.drop(columns="classes").to_csv(data, index=False)
    with pytest.raises(KmlpError, match="no column.*classes"):
        read_runs_csv(data)
    frame.assign(val_acc="abc").to_csv(data, index=False)
    with pytest.raises(KmlpError, match="val_acc is not a number"):
        read_runs_csv(data)
    assert main(["check-record", str(record), "--data", str(tmp_path / "none.csv")]) != 0
    assert "does not exist" in capsys.readouterr().err
    argv = ["record", "--summary", "s.csv", "--gradcheck", "g.csv", "--out", "x.md"]
    assert main([*argv, "--out-runs", "x.csv"]) != 0
    assert "--runs and --out-runs go together" in capsys.readouterr().err


def test_the_committed_record_is_derived_again_from_its_committed_data(capsys, monkeypatch, ci_log):
    """The committed record (docs/reproduction.md) and its data (a row per run of the full
    study): every verdict, z and interval the judged tables state, computed again by the
    README's command."""
    record = REPO / "docs" / "reproduction.md"
    data = REPO / "docs" / "reproduction-runs.csv"
    command = next(line for line in (REPO / "README.md").read_text().splitlines() if "kmlp check-record" in line)
    monkeypatch.chdir(REPO)
    code = main(shlex.split(command)[1:])
    out = capsys.readouterr().out
    ci_log(out)  # in CI's log: what was derived again
    assert code == 0, out
    found = compare_record(record.read_text(), data)
    _, rows = read_runs_csv(data)
    assert len(rows) == found.runs > 300
    assert set(found.record) - set(found.derived) == {"diagnostics"}  # it re-evaluates weights
    c = found.counts()
    assert c["verdicts"] > 70 and c["z"] > 60 and c["intervals"] > 40, c
    header = next(line for line in data.read_text().splitlines() if not line.startswith("#"))
    assert header.split(",") == COLUMNS + EARLY_COLUMNS
    assert not math.isnan(rows[0].final["val_acc"])


def test_changed_lines_pair_a_row_with_the_same_rows_new_version():
    from kmlp.aggregate.record_data import changed_lines

    old = ["**Headline: 1 of 2.**", "| e | m | z |", "| a | val | 0.5 |", "| b | val | 1.0 |"]
    new = ["**Headline: 2 of 2.**", "**Added: a line.**", "| e | m | z | seeds |", "| a | val | 0.5 | 10 |",
           "| c | val | 3.0 | 5 |", "| b | val | 1.1 | 10 |"]  # fmt: skip
    assert changed_lines(old, new) == [
        ("**Headline: 1 of 2.**", "**Headline: 2 of 2.**"),
        ("| e | m | z |", "| e | m | z | seeds |"),
        ("| a | val | 0.5 |", "| a | val | 0.5 | 10 |"),
        ("| b | val | 1.0 |", "| b | val | 1.1 | 10 |"),
        ("(none)", "**Added: a line.**"),
        ("(none)", "| c | val | 3.0 | 5 |"),
    ]
