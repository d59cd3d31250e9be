"""What a run measures: each split's loss, cost and accuracy.

Light (no NumPy): the study checks a table's metrics with it when the workflow plans.
"""

from __future__ import annotations

from typing import NamedTuple


class Evaluation(NamedTuple):
    """A net's numbers on a set of images, in evaluation mode."""

    loss: float
    cost: float  # the loss plus the L2 penalty
    acc: float  # NaN when a score is not finite


SPLITS = ("train", "val", "test")
#: The final metrics of a run: each split's Evaluation fields, e.g. val_acc.
FINAL_METRICS = tuple(f"{split}_{m}" for split in SPLITS for m in Evaluation._fields)
#: The accuracies among them (a binomial spread applies to these).
ACCURACIES = tuple(m for m in FINAL_METRICS if m.endswith("_acc"))
