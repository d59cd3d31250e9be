"""What a training run costs, predicted before it runs: the cluster's time requests.

A run's wall time is modelled as a sum of what it computes, each term with a rate
measured on our reference machine (``REFERENCE``): the matrix products of the updates
and evaluations (multiply-adds), the per-layer work of an update that does not scale
with the layer's width (NumPy calls on a mini-batch), the elementwise work (ReLU, batch
norm) and a constant (starting Python, loading the data set). The rates come from the
benchmark files of a whole study (``kmlp cost-fit``, which also says how well they
fit); a cluster whose nodes are slower or faster sets ``cluster.speed``.

Pure Python, like the rest of :mod:`kmlp.study`: the workflow asks it while it plans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..nn.settings import TrainSettings

#: The cost model's terms, in the order of :data:`REFERENCE`.
TERMS = ("madds", "layer_updates", "elementwise", "constant")

#: Seconds per unit of each term on the reference machine (2-core Intel Xeon, OpenBLAS
#: 0.3.31, SkylakeX kernel, one BLAS thread), fitted by ``kmlp cost-fit`` to the wall
#: times of 222 runs of the full study made through profiles/slurm on the two-node test
#: cluster, one run per CPU: median error 8 %, 90th percentile 20 %, largest 44 %.
REFERENCE = {"madds": 2.625e-11, "layer_updates": 2.599e-05, "elementwise": 1.604e-08, "constant": 1.101}

#: How much longer an update with batch norm after the ReLU takes: that ablation trains
#: through the layer functions, not kmlp.nn.fast. Measured 1.32-1.36 times (3- and
#: 9-layer nets, batch 100, float32, one BLAS thread, interleaved rounds; AMD EPYC,
#: OpenBLAS Haswell kernel).
BN_AFTER_FACTOR = 1.4

#: Seconds of the other SLURM work on the same machine (the full study's benchmark files,
#: run through profiles/slurm): a data set 3.3-3.6 s, a gradient check 0.7-2.9 s, and a
#: job's own start (the Snakemake inside it) under 10 s.
PREPARE_S, CHECK_S, JOB_START_S = 4.0, 2.0, 10.0


@dataclass(frozen=True)
class Sizes:
    """The data a run trains on: image dimension, classes and the three splits."""

    d_in: int
    n_classes: int
    n_train: int
    n_val: int
    n_test: int


def terms(settings: TrainSettings, sizes: Sizes) -> dict[str, float]:
    """The amounts a run computes, one per term of the model."""
    dims = [sizes.d_in, *settings.hidden, sizes.n_classes]
    weights = sum(a * b for a, b in zip(dims, dims[1:], strict=False))
    units = sum(dims[1:]) * (2 if settings.batch_norm else 1)
    updates = settings.total_updates
    subset = settings.history_rows(sizes.n_train)
    rows_evaluated = settings.evaluations(sizes.n_train) * (subset + sizes.n_val)
    rows_evaluated += sizes.n_train + sizes.n_val + sizes.n_test  # the final metrics
    # an update: the forward pass and the two products of the backward pass
    madds = (3 * updates * settings.n_batch + rows_evaluated) * weights
    if settings.dtype == "float64":
        madds *= 2
    slower = BN_AFTER_FACTOR if settings.bn_order == "after" else 1.0  # (settings: only with batch norm)
    return {
        "madds": float(madds) * slower,
        "layer_updates": float(updates * (len(dims) - 1)) * slower,
        "elementwise": float((updates * settings.n_batch + rows_evaluated) * units) * slower,
        "constant": 1.0,
    }


def seconds(settings: TrainSettings, sizes: Sizes, rates: dict[str, float] | None = None, speed: float = 1.0) -> float:
    """A run's predicted wall time in seconds on one CPU, on a machine ``speed`` times as
    fast as the reference one."""
    rates = rates or REFERENCE
    return sum(rates[t] * amount for t, amount in terms(settings, sizes).items()) / speed


@dataclass(frozen=True)
class Chunk:
    """Runs sent to the cluster as one job, one after another: its name, the runs'
    predicted seconds added up, and how many runs it holds."""

    name: str
    seconds: float
    runs: int


#: The most runs a chunk holds: Snakemake lists at most 100 outputs in a job's properties,
#: and a retry names the missing ones as its targets (profiles/slurm/sbatch-submit.py).
MAX_RUNS = 100


def chunked(runs: list[tuple[tuple[str, int], float]], family: str, seconds_per_chunk: float) -> dict:
    """The runs of one family cut, in their order, into chunks of about
    ``seconds_per_chunk`` predicted seconds each (as equal as whole runs allow) and at most
    MAX_RUNS runs: run -> its :class:`Chunk`. In order, so that the runs of one experiment
    share a chunk and a single figure or table touches few chunks."""
    total = sum(s for _, s in runs)
    n = max(1, min(len(runs), round(total / seconds_per_chunk))) if runs else 0
    n = max(n, math.ceil(len(runs) / MAX_RUNS))
    members: list[list[tuple[tuple[str, int], float]]] = [[] for _ in range(n)]
    done = 0.0
    for run, s in runs:
        # the chunk whose share of the total this run's midpoint falls in
        k = min(n - 1, math.floor((done + s / 2) / total * n)) if total > 0 else 0
        members[k].append((run, s))
        done += s
    out = {}
    width = len(str(n))
    for k, chunk in enumerate(m for m in members if m):
        info = Chunk(f"{family}-{k + 1:0{width}d}", sum(s for _, s in chunk), len(chunk))
        for run, _ in chunk:
            out[run] = info
    return out
