"""The cost model's rates (:mod:`kmlp.study.cost`) fitted to measured runs.

Snakemake writes a benchmark file per training run (``results/benchmarks/train/
<experiment>/seed<N>.tsv``); each run's terms come from the study's settings for it. The
fit takes the run's wall time ``s`` (its ``cpu_time`` is sampled every second for 30 s,
then every 30 s, so it misses most of a longer run), so fit it to runs made the way the
times are meant for: for the cluster's requests, runs of a cluster job, one per CPU
(``profiles/slurm``). The rates are the non-negative least-squares fit of the times to
the terms, scaled so that half the runs take longer than predicted (the median).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import KmlpError
from ..study import Study, cost

_RUN = re.compile(r"(?P<experiment>[^/]+)/seed(?P<seed>\d+)\.tsv$")


@dataclass(frozen=True)
class Fit:
    rates: dict[str, float]
    #: (experiment, seed, measured s, predicted s) of every run fitted
    runs: list[tuple[str, int, float, float]]

    def errors(self) -> list[float]:
        """Predicted over measured, minus one, per run (positive: predicted slower)."""
        return [p / m - 1 for _, _, m, p in self.runs]


def measured(root: Path, study: Study) -> list[tuple[str, int, float]]:
    """(experiment, seed, wall seconds) of every benchmarked run of the study under ``root``."""
    found = []
    for path in sorted(root.rglob("seed*.tsv")):
        m = _RUN.search(path.relative_to(root).as_posix())
        if not m or m["experiment"] not in study.experiments:
            continue
        try:
            with path.open(newline="") as f:
                row = next(csv.DictReader(f, delimiter="\t"))
            found.append((m["experiment"], int(m["seed"]), float(row["s"])))
        except (OSError, StopIteration, KeyError, ValueError) as exc:
            raise KmlpError(f"{path}: not a Snakemake benchmark file ({type(exc).__name__}: {exc})") from None
    if not found:
        raise KmlpError(f"{root}: no benchmark file of a training run of the study (<experiment>/seed<N>.tsv)")
    return found


def fit(study: Study, runs: list[tuple[str, int, float]], quantile: float = 0.5) -> Fit:
    """Non-negative rates whose predictions are at least the measured time for
    ``quantile`` of the runs (the least-squares fit, scaled up to that)."""
    import numpy as np

    rows = [cost.terms(study.settings(e, lam=0.0), study.sizes(e)) for e, _, _ in runs]
    A = np.array([[r[t] for t in cost.TERMS] for r in rows])
    y = np.array([s for _, _, s in runs])
    scale = A.max(axis=0)
    scale[scale == 0] = 1
    active = list(range(len(cost.TERMS)))
    while True:  # drop a term that fits negative and fit again (non-negative least squares)
        coef, *_ = np.linalg.lstsq(A[:, active] / scale[active], y, rcond=None)
        if (coef >= 0).all() or len(active) == 1:
            break
        active.pop(int(np.argmin(coef)))
    rates = np.zeros(len(cost.TERMS))
    rates[active] = np.clip(coef, 0, None) / scale[active]
    predicted = A @ rates
    rates *= float(np.quantile(y / predicted, quantile))
    predicted = A @ rates
    return Fit(
        {t: float(f"{r:.4g}") for t, r in zip(cost.TERMS, rates, strict=True)},
        [(e, s, m, float(p)) for (e, s, m), p in zip(runs, predicted, strict=True)],
    )
