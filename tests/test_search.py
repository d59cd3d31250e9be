"""`kmlp lambda-pick`: the next, finer grid is centred on the best lambda found, in
log10, and on the floor --log10-floor when the best lambda is 0."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kmlp.cli import main
from kmlp.nn.search import random_lambdas
from kmlp.runs import FINAL_METRICS, HISTORY_COLUMNS, RunRecord, write_run


def search_run(path, experiment: str, lam: float, val_acc: float, seed: int = 1):
    final = dict.fromkeys(FINAL_METRICS, 0.5) | {"val_acc": val_acc}
    history = {c: np.zeros(2) for c in HISTORY_COLUMNS}
    write_run(
        path, RunRecord(experiment, seed, "completed", {"lam": lam}, {"sizes": [4, 3, 2]}, history, final, paper={})
    )
    return str(path)


def pick(tmp_path, runs: dict, *options: str) -> dict:
    """lambda-pick over runs {experiment: (lambda, val_acc)}; its JSON."""
    paths = [search_run(tmp_path / f"{e}.h5", e, lam, acc) for e, (lam, acc) in runs.items()]
    out = tmp_path / "pick.json"
    assert main(["lambda-pick", *paths, "--out", str(out), *options]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("half_width", [0.5, 0.25])
def test_the_fine_grid_is_centred_in_log10_on_the_best_lambda(tmp_path, half_width):
    runs = {"a": (1e-4, 0.40), "b": (3e-3, 0.55), "c": (0.05, 0.50)}  # b is best, neither end of the range
    doc = pick(tmp_path, runs, "--fine-n", "8", "--half-width", str(half_width), "--seed", "3")
    assert doc["best"]["experiment"] == "b" and doc["best"]["lam"] == 3e-3
    logs = np.log10(doc["fine"])
    centre = math.log10(3e-3)
    assert len(logs) == 8 and (abs(logs - centre) <= half_width + 1e-5).all()
    # stratified over the interval: one draw in each of 8 equal slices around the centre
    slices = np.floor((logs - (centre - half_width)) / (2 * half_width / 8)).astype(int)
    assert sorted(slices.tolist()) == list(range(8))
    assert doc["fine"] == random_lambdas(8, centre - half_width, centre + half_width, 3)


def test_a_best_lambda_of_0_centres_the_fine_grid_on_the_floor(tmp_path):
    runs = {"zero": (0.0, 0.60), "small": (1e-3, 0.50)}
    doc = pick(tmp_path, runs, "--fine-n", "4", "--half-width", "0.5", "--log10-floor", "-6.5")
    assert doc["best"]["lam"] == 0.0
    logs = np.log10(doc["fine"])
    assert (logs >= -7.0 - 1e-5).all() and (logs <= -6.0 + 1e-5).all()
    assert doc["fine"] == random_lambdas(4, -7.0, -6.0, 1)
    # the default floor is 1e-5
    default = pick(tmp_path, runs, "--fine-n", "4")
    assert default["fine"] == random_lambdas(4, -5.5, -4.5, 1)


def test_no_fine_grid_unless_asked(tmp_path):
    doc = pick(tmp_path, {"a": (1e-3, 0.5)})
    assert "fine" not in doc and doc["best"]["lam"] == 1e-3
