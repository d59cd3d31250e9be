#!/usr/bin/env python3
"""Print the state of one SLURM job for Snakemake: running, success or failed.

Snakemake's cluster-generic executor calls this as `sbatch-status.py JOBID` for every job it
waits for, every `seconds-between-status-checks` (profiles/slurm/config.yaml).

The controller is asked first (`squeue`, which also lists a finished job for MinJobAge
seconds), the accounting database after that (`sacct`).  A job that neither knows any more
has failed (it can no longer end well); a controller that does not answer at all counts as
"still running", so that a busy or restarting controller does not fail the workflow.
Standard library only: it runs with any python3.
"""

from __future__ import annotations

import subprocess
import sys

# SLURM job states (squeue %T / sacct State) that are not final
ACTIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
}


def verdict(state: str) -> str:
    state = state.split()[0].rstrip("+") if state.split() else ""
    if state == "COMPLETED":
        return "success"
    if state in ACTIVE:
        return "running"
    return "failed"  # FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, DEADLINE, PREEMPTED...


def run(cmd: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None


def main(argv: list[str]) -> int:
    jobid = argv[1].split(";")[0]
    queue = run(["squeue", "--noheader", "--states=all", "--jobs", jobid, "--format=%T"])
    if queue is not None and queue.returncode == 0 and queue.stdout.strip():
        print(verdict(queue.stdout.strip().splitlines()[0]))
        return 0
    gone = queue is not None and "Invalid job id" in queue.stderr
    acct = run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", jobid, "--format=State"])
    if acct is not None and acct.returncode == 0 and acct.stdout.strip():
        print(verdict(acct.stdout.strip().splitlines()[0]))
        return 0
    # the controller forgot the job and accounting never saw it: it cannot end well
    print("failed" if gone else "running")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
