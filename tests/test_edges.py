"""Edges found in review: bad values answered before any work, settings merged in the
documented order, and an accuracy that is never computed from non-finite scores."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from kmlp.cli import main
from kmlp.errors import KmlpError
from kmlp.nn.model import accuracy
from kmlp.study import VerdictRule
from test_errors import assert_one_line, run

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def test_accuracy_of_non_finite_scores_is_nan():
    y = np.array([0, 0])
    assert accuracy(np.array([[2.0, 1.0], [0.0, 1.0]]), y) == 0.5
    for bad in (math.nan, math.inf, -math.inf):
        assert math.isnan(accuracy(np.array([[bad, 1.0], [2.0, 0.0]]), y))


@pytest.mark.parametrize(
    "rule, words",
    [
        ({"sampling": "val_acc"}, ["sampling"]),
        ({"bootstrap": 5}, ["bootstrap"]),
        ({"paper_decimals": "x"}, ["paper_decimals"]),
        ({"paper_decimals": -1}, ["paper_decimals"]),
        ({"bootstrap": {"resamples": 0}}, ["resamples"]),
        ({"bootstrap": {"seed": -3}}, ["seed"]),
        ({"consistent": 0.999, "inconsistent": 0.95}, ["consistent"]),
    ],
)
def test_bad_verdict_rule_is_named(rule, words):
    with pytest.raises(KmlpError) as exc:
        VerdictRule.from_dict(rule)
    for word in words:
        assert word in str(exc.value)


def test_lambda_pick_top_must_not_be_negative(tmp_path, capsys):
    rc, err = run(capsys, "lambda-pick", tmp_path / "not-read.h5", "--top", "-1", "--out", tmp_path / "p.json")
    assert rc == 2
    assert_one_line(err, "--top")


def test_bench_checks_its_data_before_timing(tmp_path, capsys, monkeypatch):
    import kmlp.bench.runs

    def no_timing(*args, **kwargs):
        raise AssertionError("timed before checking the data")

    monkeypatch.setattr(kmlp.bench.runs, "measure_updates", no_timing)
    rc, err = run(capsys, "bench", "--no-torch", "--data", tmp_path / "missing.h5")
    assert rc == 1
    assert_one_line(err, "missing.h5")
    rc, err = run(capsys, "bench", "--no-torch", "--train-size", "50")  # the batch is 100
    assert rc == 1
    assert_one_line(err, "n_batch")


def test_bench_settings_lie_over_the_workflow_net(monkeypatch, capsys):
    """--settings and the flags change the bench's default run, key by key, not replace it."""
    import kmlp.bench.runs
    from kmlp.cli import bench as cli_bench
    from kmlp.study import load

    seen = {}

    def fake_run(load, settings, **kw):
        seen["settings"] = settings
        raise SystemExit(0)

    no_updates = {"n_batch": 100, "rounds": 1, "calls": 1, "nets": {}, "gather_s": {"cpu": 0, "wall": 0}}
    monkeypatch.setattr(kmlp.bench.runs, "measure_updates", lambda nets, **kw: no_updates)
    monkeypatch.setattr(kmlp.bench.runs, "measure_run", fake_run)
    monkeypatch.setattr(kmlp.bench.runs, "synthetic_data", lambda *a, **k: None)
    with pytest.raises(SystemExit):
        main(["bench", "--no-torch", "--config", str(CONFIG), "--settings", json.dumps({"n_s": 225}), "--lam", "0.01"])
    s = seen["settings"]
    assert (s.n_s, s.lam) == (225, 0.01)
    workflow = load(CONFIG).settings(cli_bench.RUN)  # the run as the workflow trains it
    assert s == dataclasses.replace(workflow, n_s=225, lam=0.01)
