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

from .grouping import paper_value
from .stats import cell_stats, verdict

COLUMNS = ["moving averages", "batch statistics", "sampling std (binomial)", "seed + sampling std (moving averages)"]


def accuracy(scores, y) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == y))


def diagnose_run(model, ds) -> dict:
    """Accuracies of one trained model in both batch-norm evaluation modes."""
    out = {}
    for split, X, y in (("val", ds.X_val, ds.y_val), ("test", ds.X_test, ds.y_test)):
        out[f"{split}_moving"] = accuracy(model.logits(X), y)
        # Training-mode forward over the whole split: its own batch statistics.
        out[f"{split}_batch"] = accuracy(model.forward(X, "train"), y) if model.batch_norm else math.nan
    return out


def diagnose_rows(groups: dict, model_of, data_of, within_std: float) -> list[dict]:
    """Table rows (the `kmlp table` CSV layout); ``model_of(run)`` gives a run's model and
    ``data_of(run)`` the data set it was trained on."""
    rows = []
    for exp, members in groups.items():
        ds = data_of(members[0])
        done = [r for r in members if r.status != "diverged"]
        results = [diagnose_run(model_of(r), ds) for r in done]
        for metric, split in (("val_acc", "val"), ("test_acc", "test")):
            paper = paper_value(members, metric)
            for column, key in zip(COLUMNS[:2], ("moving", "batch"), strict=True):
                stats = cell_stats([res[f"{split}_{key}"] for res in results], paper, within_std)
                rows.append(
                    {
                        "row": f"{exp}: {split}",
                        "column": column,
                        "experiment": exp,
                        "metric": metric,
                        **stats,
                        "diverged": len(members) - len(done),
                    }
                )
            # What another choice of the same number of images would move it by.
            n_images = len(ds.y_val if split == "val" else ds.y_test)
            p = rows[-2]["mean"]
            se = math.sqrt(p * (1 - p) / n_images) if math.isfinite(p) else math.nan
            rows.append(
                {
                    "row": f"{exp}: {split}",
                    "column": COLUMNS[2],
                    "experiment": exp,
                    "metric": f"binomial std on {n_images} images",
                    "n": rows[-2]["n"],
                    "mean": se,
                    "std": 0.0,
                    "paper": None,
                    "verdict": "",
                    "diverged": len(members) - len(done),
                }
            )
            # The verdict again with that spread added, for validation numbers only: the
            # test images are the report's, the validation images are not.
            moving = dict(rows[-3])
            if split == "val" and math.isfinite(moving["std"]):
                moving["std"] = math.sqrt(moving["std"] ** 2 + se**2)
                moving["verdict"] = verdict(moving["paper"], moving["mean"], moving["std"], moving["n"], within_std)
            moving["column"] = COLUMNS[3]
            rows.append(moving)
    return rows


#: The table's layout (its rows come from :func:`diagnose_rows`).
SPEC = {
    "caption": "Re-evaluation of trained runs: accuracy with batch norm evaluated with "
    "the moving averages (as trained) and with each split's own batch "
    "statistics; the binomial standard error of an accuracy on that "
    "many images, the spread another choice of images would add; and the "
    "verdict with that spread added to the seed spread (validation only: "
    "the test images are the report's, the validation images are not).",
    "row_label": "experiment: split",
    "columns": COLUMNS,
}
