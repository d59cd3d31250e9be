"""Every failure of a kmlp verb is one line on stderr that names the file, option or key,
with a non-zero exit, found before any work starts; --debug shows the traceback (issue 11,
"One-line errors"). Each test names the case of the issue it covers."""

from __future__ import annotations

import json
import shutil

import h5py
import pytest

from kmlp.cli import main


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def assert_one_line(err: str, *words: str) -> None:
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


@pytest.fixture(scope="module")
def run_file(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "seed1.h5"
    argv = ["train", "--data", data, "--out", out, "--hidden", "8", "--n-batch", "30", "--n-s", "5", "--cycles", "1"]
    assert main([*map(str, argv), "--quiet"]) == 0
    return out


# -- "an output path that cannot be written: kmlp train finds out only after training" --
@pytest.mark.parametrize("where", ["below a file", "a folder"])
def test_unwritable_output_is_refused_before_training(data, tmp_path, capsys, monkeypatch, where):
    import kmlp.nn.training

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking that the output can be written")

    monkeypatch.setattr(kmlp.nn.training, "run", no_training)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run.h5" if where == "below a file" else tmp_path
    rc, err = run(capsys, "train", "--data", data, "--out", out, "--n-batch", "30", "--quiet")
    assert rc == 1
    assert_one_line(err, "--out", str(out))


def test_table_checks_both_outputs_before_writing_either(run_file, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    spec = {"metric": "val_acc", "columns": ["a"], "rows": {"r": ["run"]}}
    tex, csv = tmp_path / "t.tex", tmp_path / "file" / "t.csv"
    rc, err = run(capsys, "table", run_file, "--spec", json.dumps(spec), "--out-tex", tex, "--out-csv", csv)
    assert rc == 1
    assert_one_line(err, "--out-csv", str(csv))
    assert not tex.exists()


# -- "kmlp gradcheck --init normal without --sigma" (already one line on main since the
# settings refactoring; kept as a regression test) --
def test_gradcheck_init_normal_without_sigma(capsys):
    rc, err = run(capsys, "gradcheck", "--init", "normal")
    assert rc == 1
    assert_one_line(err, "sigma")


# -- "a run file with a missing attribute or bad JSON (read_run guards only the open)" --
@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda f: f.attrs.__delitem__("seed"), ["'seed'"]),
        (lambda f: f.attrs.__setitem__("settings", "{not json"), ["'settings'", "JSON"]),
        (lambda f: f["history"].__delitem__("val_acc"), ["history/val_acc"]),
        (lambda f: f["final"].attrs.__delitem__("test_acc"), ["test_acc"]),
    ],
)
@pytest.mark.parametrize("verb", ["figure", "lambda-pick"])
def test_damaged_run_file_is_one_line(run_file, tmp_path, capsys, damage, words, verb):
    bad = tmp_path / "bad.h5"
    shutil.copyfile(run_file, bad)
    with h5py.File(bad, "a") as f:
        damage(f)
    rc, err = run(capsys, verb, bad, "--out", tmp_path / ("f.pdf" if verb == "figure" else "p.json"))
    assert rc == 1
    assert_one_line(err, str(bad), *words)


# -- "lambda-pick --fine-n -1" (refused before any run file is read) --
def test_lambda_pick_negative_fine_n(tmp_path, capsys):
    rc, err = run(capsys, "lambda-pick", tmp_path / "not-read.h5", "--fine-n", "-1", "--out", tmp_path / "p.json")
    assert rc != 0
    assert_one_line(err, "--fine-n", "-1")


# -- "a table spec whose rows is a list" --
@pytest.mark.parametrize(
    "spec, words",
    [
        ({"metric": "val_acc", "columns": ["a"], "rows": [["run"]]}, ["rows"]),
        ({"metric": "val_acc", "columns": ["a"], "rows": {"r": "run"}}, ["rows", "'r'"]),
        ({"metric": "val_acc", "columns": ["a"], "rows": {"r": ["run", "run"]}}, ["'r'", "2", "1 column"]),
        ({"metric": "val_acc", "columns": "a", "rows": {"r": ["run"]}}, ["columns"]),
        ([1, 2], ["--spec"]),
    ],
)
def test_bad_table_spec_is_one_line(tmp_path, capsys, spec, words):
    argv = ["table", tmp_path / "not-read.h5", "--spec", json.dumps(spec)]
    rc, err = run(capsys, *argv, "--out-tex", tmp_path / "t.tex", "--out-csv", tmp_path / "t.csv")
    assert rc != 0
    assert_one_line(err, *words)


# -- "memory errors answered in one line" and a --debug flag that shows the traceback --
@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("something unforeseen")])
def test_any_failure_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch, exc):
    import kmlp.nn.search

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(kmlp.nn.search, "random_lambdas", fail)
    argv = ["lambda-grid", "--n", "3", "--log10-min", "-3", "--log10-max", "-1", "--out", tmp_path / "g.json"]
    rc, err = run(capsys, *argv)
    assert rc == 1
    assert_one_line(err, "kmlp lambda-grid: error:", "memory" if isinstance(exc, MemoryError) else str(exc))
    assert "--debug" in err
    with pytest.raises(type(exc)):
        main([*map(str, argv), "--debug"])


def test_usage_errors_are_one_line(capsys):
    rc, err = run(capsys, "train", "--n-batch", "many")
    assert rc == 2
    assert_one_line(err, "--n-batch", "many")
