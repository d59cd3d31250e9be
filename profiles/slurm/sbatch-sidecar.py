#!/usr/bin/env python3
"""Beside Snakemake: answer every job's status from one query per round, and cancel the
jobs it left in the queue when it exits.

Snakemake's cluster-generic executor starts this once, beside Snakemake, and stops it
(SIGTERM) when Snakemake shuts down (profiles/slurm/config.yaml: `cluster-generic-sidecar-cmd`).
Its first output line, a file name (the record), is given to every sbatch-submit.py and
sbatch-status.py in `SNAKEMAKE_CLUSTER_SIDECAR_VARS`; sbatch-submit.py appends the id of
each job it submits to it.

**Status, one query per round.**  The executor runs `sbatch-status.py JOBID` once per
running job every round (`seconds-between-status-checks`): asked of SLURM one by one, 500
jobs were 500 squeue calls per round.  Instead the first sbatch-status.py of a round asks
this sidecar for a fresh answer (it writes the time into `<record>.wanted`); the sidecar
asks one `squeue` about all the jobs of the record that have not ended, and one `sacct`
about those squeue no longer lists, and writes the answers atomically (a temporary file,
then os.replace) to `<record>.status.json`; that status call and every other one of the
round answer from it (sbatch-status.py says when it asks SLURM itself instead).  So the
controller sees one query per round, whatever the number of jobs, and the answers are as
recent as the round, as before.

**Cancel what is left.**  When stopped, or when Snakemake is gone (killed), this cancels
the recorded jobs still pending or running, and says so in one line.  After a run that
completed there are none, and it says nothing about it.  Why: on Ctrl-C Snakemake cancels
the jobs in its list of active jobs, and that list is empty while a round of status checks
runs (snakemake-interface-executor-plugins 9.4, `RemoteExecutor._wait_for_jobs` takes the
jobs out and puts the running ones back when the round is over), so a Ctrl-C during a
round cancelled nothing (seen in CI here: all 9 jobs of an interrupted run left in the
queue).  The executor also kills its cancel command after two seconds (`cancel_timeout =
2` in snakemake-executor-plugin-cluster-generic 1.0.9; scancel under a time limit:
snakemake#2113).

Standard library only: it runs with any python3.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# squeue states (%T) in which a job still holds, or waits for, an allocation
LIVE = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING"}
# states after which a job does not change: it is not asked about again
FINAL = {
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
    "PREEMPTED", "REVOKED",
}  # fmt: skip
# seconds a query of squeue or sacct may take before its answer counts as none
QUERY_TIMEOUT = 60
# seconds between two looks at whether Snakemake is gone or a status call wants an answer
TICK = 0.1


def status_file(record: Path) -> Path:
    """The answers of the last round (sbatch-status.py reads them)."""
    return record.with_name(record.stem + ".status.json")


def wanted_file(record: Path) -> Path:
    """Where a status call writes the time it wants answers newer than."""
    return record.with_name(record.stem + ".wanted")


def recorded(record: Path) -> list[str]:
    """The jobs sbatch-submit.py recorded, in order, once each ("JOBID" or "JOBID;CLUSTER")."""
    return list(dict.fromkeys(record.read_text().split())) if record.exists() else []


def by_cluster(jobs: list[str]) -> dict[str, list[str]]:
    clusters: dict[str, list[str]] = {}
    for job in jobs:
        jobid, _, cluster = job.partition(";")
        clusters.setdefault(cluster, []).append(jobid)
    return clusters


def run(cmd: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=QUERY_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None


def rows(proc: subprocess.CompletedProcess | None) -> list[list[str]]:
    """What squeue or sacct printed, split at "|", less the "CLUSTER: name" line --clusters adds."""
    out = proc.stdout if proc is not None and proc.returncode == 0 else ""
    return [line.strip().split("|") for line in out.splitlines() if "|" in line and not line.startswith("CLUSTER:")]


def write_atomically(path: Path, text: str) -> None:
    """Write whole or not at all: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def ask(jobs: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """One round: the state of each job (external ids, "JOBID" or "JOBID;CLUSTER") from
    one squeue per cluster, and one sacct for the jobs squeue did not list; the jobs whose
    controller did not answer and that accounting does not know (still running, as
    sbatch-status.py takes them); and the jobs neither squeue nor sacct knows, which
    sbatch-status.py asks about itself (and fails, as before, when SLURM says so)."""
    states: dict[str, str] = {}
    silent: list[str] = []
    unknown: list[str] = []
    for cluster, ids in by_cluster(jobs).items():
        where = ["--clusters", cluster] if cluster else []
        name = {jobid: f"{jobid};{cluster}" if cluster else jobid for jobid in ids}.__getitem__
        queue = run(["squeue", *where, "--noheader", "--states=all", f"--user={getpass.getuser()}", "--format=%i|%T"])
        listed = {row[0]: row[1] for row in rows(queue) if len(row) == 2}
        answered = queue is not None and (queue.returncode == 0 or "Invalid job id" in queue.stderr)
        states.update({name(jobid): listed[jobid] for jobid in ids if jobid in listed})
        left = [jobid for jobid in ids if jobid not in listed]
        if left:
            acct = run(
                ["sacct", *where, "--noheader", "--parsable2", "--allocations", f"--jobs={','.join(left)}",
                 "--format=JobID,State"]
            )  # fmt: skip
            known = {row[0]: row[1] for row in rows(acct) if len(row) == 2}
            states.update({name(jobid): known[jobid] for jobid in left if jobid in known})
            (unknown if answered else silent).extend(name(jobid) for jobid in left if jobid not in known)
    return states, silent, unknown


def final(state: str | None) -> bool:
    return bool(state) and state.split()[0].rstrip("+") in FINAL


def refresh(record: Path, previous: dict) -> dict:
    """Ask SLURM about the recorded jobs that have not ended, and write the answers (with
    the time the round began, and this process's id so a status call sees it is alive)."""
    began = time.time()
    ended = {job: state for job, state in previous.get("jobs", {}).items() if final(state)}
    pending = [job for job in recorded(record) if job not in ended]
    states, silent, unknown = ask(pending) if pending else ({}, [], [])
    answers = {"asked_at": began, "pid": os.getpid(), "jobs": {**ended, **states}, "silent": silent, "unknown": unknown}
    write_atomically(status_file(record), json.dumps(answers))
    return answers


def wanted(record: Path) -> float:
    try:
        return float(wanted_file(record).read_text() or 0)
    except (OSError, ValueError):
        return 0.0


# --- when Snakemake exits ---------------------------------------------------------------


def live_jobs(submitted: list[str], squeue_output: str) -> list[str]:
    """The submitted jobs that squeue's `JOBID|STATE` lines show still pending or running."""
    states = dict(line.split("|", 1) for line in squeue_output.splitlines() if "|" in line)
    return [job for job in submitted if states.get(job, "").strip() in LIVE]


def cancel_left(record: Path) -> int:
    """Cancel the recorded jobs still queued, cluster by cluster (a line is "JOBID" or,
    sent with --clusters, "JOBID;CLUSTER")."""
    status = 0
    for cluster, jobs in by_cluster(recorded(record)).items():
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
    answers = refresh(record, {})  # no job yet: no query, but the status calls see the sidecar
    print(record, flush=True)
    snakemake = os.getppid()
    warned = False
    while not stop and os.getppid() == snakemake:
        if wanted(record) >= answers["asked_at"]:
            try:
                answers = refresh(record, answers)
            except OSError as e:  # the status calls ask SLURM themselves meanwhile
                if not warned:
                    print(f"sbatch-sidecar.py: could not write the status of the jobs: {e}", file=sys.stderr)
                warned = True
        time.sleep(TICK)
    try:
        status = cancel_left(record)
    except (OSError, subprocess.SubprocessError) as e:  # no squeue/scancel, or no answer
        print(f"sbatch-sidecar.py: could not cancel the jobs in {record}: {e}", file=sys.stderr)
        return 1
    served = record.with_name(record.stem + ".served.json")  # sbatch-status.py's own notes
    for path in (record, status_file(record), wanted_file(record), served):
        path.unlink(missing_ok=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
