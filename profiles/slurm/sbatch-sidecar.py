#!/usr/bin/env python3
"""Cancel the SLURM jobs this Snakemake submitted and left in the queue when it exits.

Snakemake's cluster-generic executor starts this once, beside Snakemake, and stops it
(SIGTERM) when Snakemake shuts down (profiles/slurm/config.yaml: `cluster-generic-sidecar-cmd`).
Its first output line, a file name, is passed to every sbatch-submit.py, which appends the
id of each job it submits.  When stopped, or when Snakemake is gone (killed), this cancels
those of the jobs still pending or running, says so in one line and removes the file.
After a run that completed there are none, and it says nothing.

Why: on Ctrl-C Snakemake cancels the jobs in its list of active jobs, and that list is
empty while a round of status checks runs (snakemake-interface-executor-plugins 9.4,
`RemoteExecutor._wait_for_jobs` takes the jobs out and puts the running ones back when the
round is over).  A round asks for the status of one job after another, so it lasts seconds,
and a Ctrl-C during it cancelled nothing: the jobs ran on with no one waiting for them
(seen in CI here: all 9 jobs of an interrupted run left in the queue).  The executor also
kills its cancel command after two seconds (`cancel_timeout = 2` in
snakemake-executor-plugin-cluster-generic 1.0.9; scancel under a time limit: snakemake#2113).

Standard library only: it runs with any python3.
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# squeue states (%T) in which a job still holds, or waits for, an allocation
LIVE = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING"}


def live_jobs(submitted: list[str], squeue_output: str) -> list[str]:
    """The submitted jobs that squeue's `JOBID|STATE` lines show still pending or running."""
    states = dict(line.split("|", 1) for line in squeue_output.splitlines() if "|" in line)
    return [job for job in submitted if states.get(job, "").strip() in LIVE]


def cancel_left(record: Path) -> int:
    """Cancel the recorded jobs still queued, cluster by cluster (a line is "JOBID" or,
    sent with --clusters, "JOBID;CLUSTER")."""
    submitted = list(dict.fromkeys(record.read_text().split())) if record.exists() else []
    clusters: dict[str, list[str]] = {}
    for line in submitted:
        jobid, _, cluster = line.partition(";")
        clusters.setdefault(cluster, []).append(jobid)
    status = 0
    for cluster, jobs in clusters.items():
        where = ["--clusters", cluster] if cluster else []
        listed = subprocess.run(
            ["squeue", *where, "--noheader", f"--user={getpass.getuser()}", "--format=%i|%T"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        left = live_jobs(jobs, listed.stdout) if listed.returncode == 0 else jobs
        if not left:
            continue
        done = subprocess.run(["scancel", *where, *left], capture_output=True, text=True, timeout=300)
        said = f": {done.stderr.strip()}" if done.returncode else ""
        queue = f"the queue of cluster {cluster}" if cluster else "the queue"
        print(
            f"sbatch-sidecar.py: cancelled {len(left)} SLURM jobs Snakemake left in {queue} ({' '.join(left)}){said}",
            file=sys.stderr,
        )
        status = status or done.returncode
    return status


def main() -> int:
    record = Path(".snakemake", "slurm_logs", f"submitted-{os.getpid()}.txt").resolve()
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("")
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # a signal the sidecar inherits ignored stays ignored: under `nohup` (SIGHUP) or
        # started in the background by a script (SIGINT), Snakemake goes on when the
        # terminal closes, and so must its jobs
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, lambda *_: stop.append(True))
    print(record, flush=True)
    snakemake = os.getppid()
    while not stop and os.getppid() == snakemake:
        time.sleep(0.5)
    try:
        status = cancel_left(record)
    except (OSError, subprocess.SubprocessError) as e:  # no squeue/scancel, or no answer
        print(f"sbatch-sidecar.py: could not cancel the jobs in {record}: {e}", file=sys.stderr)
        return 1
    record.unlink(missing_ok=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
