"""What a study's jobs ask a SLURM cluster for (profiles/slurm), and which go first.

The cost model (:mod:`.cost`) predicts a run's seconds and the study cuts the runs into
chunks (:attr:`kmlp.study.Study.chunks`); this turns those predictions into the resources
of the workflow's rules: the seconds a job and each of its members ask for, the memory,
sbatch's ``--nice`` and Snakemake's ``priority:``. The rules (workflow/rules/*.smk) only
look these up, so the arithmetic is tested here without Snakemake (tests/test_cluster.py).
On a local run Snakemake ignores all but the memory.

Pure Python, like the rest of :mod:`kmlp.study`: the workflow asks it while it plans.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from .cost import CHECK_S, JOB_START_S, PREPARE_S, makespan

if TYPE_CHECKING:
    from . import Study

#: Snakemake's ``priority:`` of the jobs on the study's chains of checkpoints (the lambda
#: search's passes, each waiting for the previous one's pick, and seeds by need's rounds,
#: each waiting for the runs the one before added) and of the runs those wait for: once more
#: jobs are ready than the profile's ``jobs`` allows, Snakemake submits these first, so
#: the chains do not wait behind the bulk of training (:data:`BULK_PRIORITY`).
CHAIN_PRIORITY = 10
BULK_PRIORITY = 0

#: sbatch ``--nice`` of the configured runs' chunks: in SLURM's queue the lambda search's
#: chunks (nice 0) go ahead of them; the configured runs can wait.
WAITING_NICE = 100

#: Memory of a gradient check in MB: the benchmark files of a local run of the study show
#: 56-183 MB peak RSS for its 12 checks, and the Snakemake of a cluster job adds about
#: 110 MB (a data set: 540 MB alone, 650 MB in a cluster job).
CHECK_MEM_MB = 500


class Requests:
    """The resources a study's jobs ask a cluster for: each a plain function of the run
    (experiment, seed), the input's size and the attempt (Snakemake's retry counter, 1
    for a first submission)."""

    def __init__(self, study: Study):
        self.study = study

    @property
    def _cluster(self) -> dict:
        return self.study.config["cluster"]

    def seconds(self, predicted: float, attempt: int) -> int:
        """The seconds a SLURM job asks for ``predicted`` seconds of work: ``cluster.time_factor``
        times it (the cost model errs by up to 44 % on a run, and a job killed at its limit
        loses the run in flight), times the attempt (a retry of a job that ran out of time
        asks for more), rounded up to whole seconds."""
        return math.ceil(self._cluster["time_factor"] * attempt * predicted)

    # -- a training run and its chunk ----------------------------------------------------
    def run_s(self, experiment: str, attempt: int) -> int:
        """The seconds one run asks for: profiles/slurm/sbatch-submit.py asks members x the
        largest of these for a chunk of which a target needs only some runs."""
        return self.seconds(self.study.run_seconds(experiment), attempt)

    def job_s(self, experiment: str, seed: int, attempt: int) -> int:
        """The seconds the whole chunk of a run asks for: its runs' predicted seconds added
        up, and the start of the Snakemake inside the job. The same in every member, so that
        the group job keeps it (Snakemake would add up whole minutes of ``runtime``, a
        minute at least per member: 4-12 times what runs of seconds need)."""
        chunk = self.study.chunk(experiment, seed)
        return self.seconds(chunk.seconds + JOB_START_S, attempt)

    def train_mem_mb(self, experiment: str, stored_pixels: int, attempt: int) -> int:
        """A training job's memory in MB for a data set of ``stored_pixels``
        (:meth:`kmlp.nn.settings.TrainSettings.memory_mb`: measured), times the attempt (a
        retry of a job that ran out of memory asks for more)."""
        return self.study.memory_mb(experiment, stored_pixels) * attempt

    def nice(self, experiment: str) -> int:
        """sbatch ``--nice`` of a run's chunk: 0 for the lambda search's (one pass after
        another, the study's longest chain), :data:`WAITING_NICE` for the others."""
        return 0 if self.study.family(experiment) != "train" else WAITING_NICE

    def priority(self, experiment: str, seed: int) -> int:
        """Snakemake's ``priority:`` of a training run: :data:`CHAIN_PRIORITY` for a run of
        the lambda search (its pass's pick waits for it) or one seeds by need added (the
        next round waits for it), :data:`BULK_PRIORITY` for a configured run."""
        chained = self.study.family(experiment) != "train" or (experiment, seed) not in self.study.chunks
        return CHAIN_PRIORITY if chained else BULK_PRIORITY

    # -- the setup job: every data set and gradient check ------------------------------
    def prepare_s(self, attempt: int) -> int:
        """The seconds making one data set asks for (:data:`.cost.PREPARE_S`, measured)."""
        return self.seconds(PREPARE_S / self._cluster["speed"], attempt)

    def check_s(self, attempt: int) -> int:
        """The seconds one gradient check asks for (:data:`.cost.CHECK_S`, measured)."""
        return self.seconds(CHECK_S / self._cluster["speed"], attempt)

    def setup_s(self, attempt: int) -> int:
        """The seconds the setup job asks for: every data set and gradient check of the
        study, one after another, and the start of the Snakemake inside it."""
        work = len(self.study.val_sizes()) * PREPARE_S + len(self.study.gradchecks) * CHECK_S
        return self.seconds(work / self._cluster["speed"] + JOB_START_S, attempt)

    @staticmethod
    def prepare_mem_mb(archive_bytes: int, attempt: int) -> int:
        """Making a data set's memory in MB, from its archive's size: measured 540 MB peak
        RSS for CIFAR-10's 170 MB archive (650 MB with the Snakemake of a cluster job), so
        400 MB and 3.5 times the archive, times the attempt."""
        return math.ceil(400 + 3.5 * archive_bytes / 1e6) * attempt

    @staticmethod
    def check_mem_mb(attempt: int) -> int:
        """A gradient check's memory in MB (:data:`CHECK_MEM_MB`), times the attempt."""
        return CHECK_MEM_MB * attempt


# -- the plan: what a study (or a target of it) sends to a cluster ---------------------------
class Plan:
    """The SLURM jobs of a study's training runs, or of the runs of some of its experiments
    (a target), as ``kmlp cluster-plan`` shows them: each job's predicted seconds and runs,
    and the predicted time until the last ends on ``cluster.cpus`` CPUs.

    A target that needs only some runs of a chunk sends those alone, in the chunk's job
    (profiles/slurm/sbatch-submit.py). The lambda search's chunks go first (their priority),
    then the others in study order; the passes are counted as if they did not wait for
    each other's picks, so the makespan is a lower bound for a study with the search."""

    def __init__(self, study: Study, experiments: list[str] | None = None):
        self.study = study
        self.cpus = study.config["cluster"]["cpus"]
        wanted = set(study.runs(experiments if experiments is not None else study.experiments))
        #: chunk name -> (predicted seconds of its runs the target needs, how many)
        self.jobs: dict[str, tuple[float, int]] = {}
        for (e, s), chunk in study.chunks.items():
            if (e, s) in wanted:
                seconds, runs = self.jobs.get(chunk.name, (0.0, 0))
                self.jobs[chunk.name] = (seconds + study.run_seconds(e), runs + 1)
        self.jobs = dict(sorted(self.jobs.items(), key=lambda item: (not item[0].startswith("lsearch-"), item[0])))

    @property
    def runs(self) -> int:
        return sum(n for _, n in self.jobs.values())

    @property
    def seconds(self) -> float:
        """The predicted training seconds of every run of the plan, one after another."""
        return sum(s for s, _ in self.jobs.values())

    def makespan(self, cpus: int | None = None) -> float:
        """Predicted seconds until the plan's last job ends on ``cpus`` (default: the
        config's) CPUs, each job's start included (:func:`.cost.makespan`)."""
        return makespan([s for s, _ in self.jobs.values()], cpus or self.cpus)

    def families(self) -> dict[str, list[tuple[float, int]]]:
        """Family -> its jobs' (seconds, runs)."""
        out: dict[str, list] = {}
        for name, job in self.jobs.items():
            out.setdefault(name.rsplit("-", 1)[0], []).append(job)
        return out


def runs_not_made(jobs) -> list[tuple[str, int]]:
    """The training runs among Snakemake's planned ``jobs`` (its DAG's) whose files do not
    exist: after a failure (the profile keeps going past a job that failed twice), what
    the invocation left undone."""
    return [
        (job.wildcards.experiment, int(job.wildcards.seed))
        for job in jobs
        if job.rule.name == "train" and not os.path.exists(job.output[0])
    ]


def not_made(study: Study, runs: list[tuple[str, int]]) -> str:
    """What a run that failed (Snakemake's keep-going) left undone, for the terminal: the
    training ``runs`` an invocation needed and did not make, by the chunk (SLURM job) they
    belong to, in study order; "" when there are none."""
    if not runs:
        return ""
    order = {run: i for i, run in enumerate(study.runs(study.experiments))}
    by_chunk: dict[str, dict[str, list[int]]] = {}
    for e, s in sorted(set(runs), key=lambda r: (order.get(r, len(order)), r)):
        by_chunk.setdefault(study.chunk(e, s).name, {}).setdefault(e, []).append(s)
    n = len(set(runs))
    lines = [
        f"{n} training run{'s' if n > 1 else ''} not made (a job failed, theirs or one they wait for), by chunk; "
        "the next invocation trains only these:"
    ]
    for name, experiments in by_chunk.items():
        seeds = "; ".join(f"{e} seed {', '.join(map(str, s))}" for e, s in experiments.items())
        lines.append(f"  {name}: {seeds}")
    return "\n".join(lines)
