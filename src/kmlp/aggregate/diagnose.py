"""`kmlp diagnose`: re-evaluate trained runs to test explanations of a gap to the paper.

Two questions, answered from the stored weights (nothing is retrained):

- Does it matter how batch norm is evaluated? The report's code might have normalised
  a whole split with its own batch statistics instead of the moving averages.
- How much does an accuracy move with the choice of evaluation images? Our validation
  images are not the report's (the archive's positions differ), so a validation
  number carries this sampling spread on top of the seed spread: the binomial
  standard error sqrt(p (1 - p) / n) of an accuracy p measured on n images.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..nn.model import accuracy
from .grouping import paper_value

COLUMNS = ["moving averages", "batch statistics", "sampling std (binomial)"]


def diagnose_run(model, ds) -> dict:
    """Accuracies of one trained model in both batch-norm evaluation modes."""
    out = {}
    for split, X, y in (("val", ds.X_val, ds.y_val), ("test", ds.X_test, ds.y_test)):
        out[f"{split}_moving"] = accuracy(model.logits(X), y)
        # Training-mode forward over the whole split: its own batch statistics.
        out[f"{split}_batch"] = accuracy(model.forward(X, "train"), y) if model.batch_norm else math.nan
    return out


def diagnose_frame(groups: dict, model_of, data_of) -> pd.DataFrame:
    """Table cells (the grid-table layout of ``kmlp table``); ``model_of(run)`` gives a run's
    model and ``data_of(run)`` the data set it was trained on."""
    cells = []
    for exp, members in groups.items():
        ds = data_of(members[0])
        done = [r for r in members if r.status != "diverged"]
        results = [diagnose_run(model_of(r), ds) for r in done]
        for metric, split in (("val_acc", "val"), ("test_acc", "test")):
            common = {"row": f"{exp}: {split}", "experiment": exp, "diverged": len(members) - len(done),
                      "paper": _or_nan(paper_value(members, metric)), "verdict": ""}  # fmt: skip
            for column, key in zip(COLUMNS[:2], ("moving", "batch"), strict=True):
                v = np.array([res[f"{split}_{key}"] for res in results], float)
                ok = v[np.isfinite(v)]
                cells.append({**common, "column": column, "metric": metric, "n": len(ok),
                              "nonfinite": int((~np.isfinite(v)).sum()) if key == "moving" else 0,
                              "mean": ok.mean() if len(ok) else math.nan,
                              "std": ok.std(ddof=1) if len(ok) > 1 else math.nan})  # fmt: skip
            # What another choice of the same number of images would move it by.
            n_images = len(ds.y_val if split == "val" else ds.y_test)
            p = cells[-2]["mean"]
            cells.append({**common, "column": COLUMNS[2], "metric": f"binomial std on {n_images} images",
                          "n": cells[-2]["n"], "nonfinite": 0, "paper": math.nan, "std": math.nan,
                          "mean": math.sqrt(p * (1 - p) / n_images) if math.isfinite(p) else math.nan})  # fmt: skip
    return pd.DataFrame(cells)


def _or_nan(value):
    return math.nan if value is None else value


#: The table's layout (its rows come from :func:`diagnose_frame`).
CAPTION = (
    "Re-evaluation of trained runs: accuracy with batch norm evaluated with the moving averages "
    "(as trained) and with each split's own batch statistics, and the binomial standard error of an accuracy "
    "on that many images: the spread another choice of evaluation images would add (our validation images "
    "are not the report's; the test images are)."
)
ROW_LABEL = "experiment: split"
