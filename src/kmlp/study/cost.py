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

#: The largest share of a chunk its job's start (:data:`JOB_START_S`) may take: chunks of
#: at least JOB_START_S / START_SHARE = 200 s of predicted work, unless a family has less.
START_SHARE = 0.05

#: The most chunks a family gives each CPU. Chunks as small as a job's start allows
#: (:data:`START_SHARE`) balance best: the last wave ends within a chunk of the others, and
#: a target smaller than the study (figures 1-4: 40 of the 460 runs) still spreads over two
#: CPUs; but a large study needs no more jobs than this (1,000 seeds on 100 CPUs: 800 jobs,
#: where 2-minute chunks made 2,900).
CHUNKS_PER_CPU = 8


def chunk_seconds(total: float, cpus: int, longest: float) -> float:
    """The predicted seconds of a chunk for a family of ``total`` predicted seconds on
    ``cpus`` CPUs: a share of the work (:data:`CHUNKS_PER_CPU`), not less than the start
    allows (:data:`START_SHARE`), not more than ``longest`` (the longest job a centre
    accepts, its time factor and start taken off)."""
    return min(max(total / (CHUNKS_PER_CPU * cpus), JOB_START_S / START_SHARE), longest)


def chunk_count(runs: int, total: float, seconds_per_chunk: float, cpus: int = 1, longest: float = math.inf) -> int:
    """How many chunks ``runs`` runs of ``total`` predicted seconds are cut into: about
    ``seconds_per_chunk`` each, rounded down to whole waves of ``cpus`` (a last wave of
    fewer chunks leaves CPUs idle while it runs); never a chunk of more than ``longest``
    seconds (as far as whole runs allow) or MAX_RUNS runs, nor more chunks than runs."""
    if not runs:
        return 0
    n = max(1, min(runs, round(total / seconds_per_chunk)))
    if n > cpus:
        n -= n % cpus
    at_least = max(math.ceil(runs / MAX_RUNS), math.ceil(total / longest))
    if n < at_least:  # whole waves again, where there are runs enough
        n = min(runs, math.ceil(at_least / cpus) * cpus) if at_least > cpus else at_least
    return n


def chunked(
    runs: list[tuple[tuple[str, int], float]],
    family: str,
    seconds_per_chunk: float,
    cpus: int = 1,
    longest: float = math.inf,
) -> dict:
    """The runs of one family cut, in their order, into :func:`chunk_count` chunks of
    nearly equal predicted time (each cut where a run's midpoint crosses a share of the
    total: no small last chunk, as a greedy fill would leave): run -> its :class:`Chunk`.
    In order, so that the runs of one experiment share a chunk and a single figure or
    table touches few chunks."""
    total = sum(s for _, s in runs)
    n = chunk_count(len(runs), total, seconds_per_chunk, cpus, longest)
    members: list[list[tuple[tuple[str, int], float]]] = [[] for _ in range(n)]
    done = 0.0
    for run, s in runs:
        # the chunk whose share of the total this run's midpoint falls in
        k = min(n - 1, math.floor((done + s / 2) / total * n)) if total > 0 else 0
        members[k].append((run, s))
        done += s
    members = _at_most(members, MAX_RUNS)
    out = {}
    width = len(str(len(members)))
    for k, chunk in enumerate(members):
        info = Chunk(f"{family}-{k + 1:0{width}d}", sum(s for _, s in chunk), len(chunk))
        for run, _ in chunk:
            out[run] = info
    return out


def _at_most(members: list[list], most: int) -> list[list]:
    """The chunks, none empty, each of more than ``most`` runs split in order (runs of very
    unequal times can crowd one share of the total)."""
    out = []
    for chunk in members:
        out += [chunk[i : i + most] for i in range(0, len(chunk), most)]
    return out


def makespan(chunks: list[float], cpus: int) -> float:
    """The predicted seconds until the last of ``chunks`` (seconds each, in the order they
    are submitted) ends on ``cpus`` CPUs, each starting on the first CPU free, as a queue
    of one priority places them; every job's start (:data:`JOB_START_S`) included."""
    free = [0.0] * max(1, cpus)
    for s in chunks:
        k = free.index(min(free))
        free[k] += s + JOB_START_S
    return max(free)
