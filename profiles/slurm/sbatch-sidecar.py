#!/usr/bin/env python3
"""Beside Snakemake: answer every job's status from one query per round, cancel the jobs
it left in the queue when it exits, and report what each job used of what it asked for.

Snakemake's cluster-generic executor starts this once, beside Snakemake, and stops it
(SIGTERM) when Snakemake shuts down (profiles/slurm/config.yaml: `cluster-generic-sidecar-cmd`).
Its first output line, a file name (the record), is given to every sbatch-submit.py and
sbatch-status.py in `SNAKEMAKE_CLUSTER_SIDECAR_VARS` (snakemake-executor-plugin-cluster-
generic 1.0.9, `__init__.py:143-145` and `:198-200`); sbatch-submit.py appends the id of
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

**Efficiency report.**  Then one `sacct` for every recorded job writes each job's use
against its request (Elapsed of Timelimit, MaxRSS of ReqMem, TotalCPU of AllocCPUS x
Elapsed) to `results/cluster/efficiency-<UTC time>.csv`, and one summary line on stderr.

Standard library only: it runs with any python3.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import sidecar_files
from sidecar_files import output_lines, served_file, status_file, wanted_file, write_atomically

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
    return sidecar_files.run(cmd, QUERY_TIMEOUT)


def rows(proc: subprocess.CompletedProcess | None) -> list[list[str]]:
    """What squeue or sacct printed, split at "|"."""
    return [line.split("|") for line in output_lines(proc) if "|" in line]


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


EFFICIENCY_FIELDS = ["JobID", "JobName", "State", "NodeList", "Elapsed", "Timelimit", "TotalCPU", "AllocCPUS",
                     "ReqMem", "MaxRSS"]  # fmt: skip
EFFICIENCY_COLUMNS = [
    "job_id", "name", "state", "node", "elapsed_s", "timelimit_s", "time_used_of_asked", "maxrss_mb", "reqmem_mb",
    "memory_used_of_asked", "totalcpu_s", "alloc_cpus", "cpu_efficiency",
]  # fmt: skip

EFFICIENCY_NOTE = """\
# The SLURM jobs of one Snakemake run, each one's use against its request (sbatch-sidecar.py, {when}; sacct).
# elapsed_s of timelimit_s: wall time, seconds; time_used_of_asked = elapsed_s / timelimit_s
# maxrss_mb of reqmem_mb: memory, MB (MaxRSS: its largest step's); memory_used_of_asked = maxrss_mb / reqmem_mb
# totalcpu_s: CPU time (user + system) of its steps, seconds; cpu_efficiency = totalcpu_s / (alloc_cpus x elapsed_s)
# empty: not known (MaxRSS not sampled; a job cancelled before it started has no use to compare)
"""


def seconds(duration: str) -> float | None:
    """sacct's [D-][HH:]MM:SS[.mmm] (Elapsed, Timelimit, TotalCPU) in seconds; None for
    none, UNLIMITED or Partition_Limit."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", duration.strip())
    if not m:
        return None
    days, hours, minutes, secs = m.groups()
    return ((int(days or 0) * 24 + int(hours or 0)) * 60 + int(minutes)) * 60 + float(secs)


def megabytes(size: str) -> float | None:
    """A sacct size (with --units=M: "1390M", "1084.50M"; K, G, T or bytes also read) in MB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)[nc]?", size.strip())
    if not m:
        return None
    return float(m.group(1)) * {"": 1 / 2**20, "K": 1 / 1024, "M": 1, "G": 1024, "T": 2**20}[m.group(2)]


def ratio(used: float | None, asked: float | None) -> float | None:
    return used / asked if used is not None and asked else None


def efficiency_rows(sacct_rows: list[list[str]], cwd: Path) -> list[dict]:
    """One row per job from sacct's lines of the job and its steps: the job's line gives
    the request, Elapsed and TotalCPU (its steps' together); MaxRSS is its largest step's
    (the job's own line has none)."""
    tag = hashlib.sha256(str(cwd.resolve()).encode()).hexdigest()[:6]
    jobs: dict[str, dict] = {}
    steps: dict[str, list[float]] = {}
    for row in sacct_rows:
        if len(row) != len(EFFICIENCY_FIELDS):
            continue  # not a line of the format asked for
        line = dict(zip(EFFICIENCY_FIELDS, row, strict=True))
        jobid, _, step = line["JobID"].partition(".")
        rss = megabytes(line.get("MaxRSS", ""))
        if rss is not None:
            steps.setdefault(jobid, []).append(rss)
        if not step:
            jobs[jobid] = line
    out = []
    for jobid, line in jobs.items():
        elapsed, limit = seconds(line["Elapsed"]), seconds(line["Timelimit"])
        cpu, cpus = seconds(line["TotalCPU"]), int(line["AllocCPUS"]) if line["AllocCPUS"].isdigit() else None
        rss, asked = max(steps.get(jobid, []), default=None), megabytes(line["ReqMem"])
        started = bool(elapsed)  # a job cancelled before it started used nothing, of nothing
        out.append({
            "job_id": jobid,
            "name": line["JobName"].removeprefix(f"{tag}-"),
            "state": line["State"],
            "node": line["NodeList"],
            "elapsed_s": elapsed,
            "timelimit_s": limit,
            "time_used_of_asked": ratio(elapsed, limit) if started else None,
            "maxrss_mb": rss,
            "reqmem_mb": asked,
            "memory_used_of_asked": ratio(rss, asked) if started else None,
            "totalcpu_s": cpu,
            "alloc_cpus": cpus,
            "cpu_efficiency": ratio(cpu, elapsed * cpus if elapsed and cpus else None),
        })  # fmt: skip
    return out


def summary(table: list[dict], where: Path) -> str:
    """The report in one line: jobs, and the mean and least of each use of its request."""
    parts = []
    for column, what in (("time_used_of_asked", "time used/asked"), ("memory_used_of_asked", "memory used/asked"),
                         ("cpu_efficiency", "CPU efficiency")):  # fmt: skip
        values = [row[column] for row in table if row[column] is not None]
        parts.append(f"{what} mean {sum(values) / len(values):.2f}, min {min(values):.2f}" if values else f"{what} -")
    idle = sum(1 for row in table if not row["elapsed_s"])
    jobs = f"{len(table)} SLURM jobs" + (f" ({idle} did not start)" if idle else "")
    return f"sbatch-sidecar.py: {jobs}, {'; '.join(parts)} ({where})"


def efficiency_report(record: Path, out_dir: Path = Path("results", "cluster")) -> Path | None:
    """Write every recorded job's use against its request to a CSV (one sacct per cluster)
    and say it in one line; None when no job was submitted."""
    jobs = recorded(record)
    if not jobs:
        return None
    sacct_rows = []
    for cluster, ids in by_cluster(jobs).items():
        where = ["--clusters", cluster] if cluster else []
        cmd = ["sacct", *where, "--noheader", "--parsable2", "--units=M", f"--jobs={','.join(ids)}",
               f"--format={','.join(EFFICIENCY_FIELDS)}"]  # fmt: skip
        acct = run(cmd)
        if acct is None or acct.returncode != 0:
            said = (
                (acct.stderr.strip().splitlines() or [f"exit status {acct.returncode}"])[-1]
                if acct is not None
                else "no answer"
            )
            print(f"sbatch-sidecar.py: no efficiency report, sacct failed: {said}", file=sys.stderr)
            return None
        sacct_rows += rows(acct)
    table = efficiency_rows(sacct_rows, Path.cwd())
    if not table:
        print(f"sbatch-sidecar.py: no efficiency report, sacct knows none of the {len(jobs)} jobs", file=sys.stderr)
        return None
    now = time.gmtime()
    path = out_dir / f"efficiency-{time.strftime('%Y%m%dT%H%M%SZ', now)}.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    text.write(EFFICIENCY_NOTE.format(when=time.strftime("%Y-%m-%d %H:%M:%S UTC", now)))
    writer = csv.DictWriter(text, EFFICIENCY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()})
    write_atomically(path, text.getvalue())
    print(summary(table, path), file=sys.stderr)
    return path


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
            attempt = time.time()
            try:
                answers = refresh(record, answers)
            except Exception as e:  # the status calls ask SLURM themselves meanwhile
                if not warned:
                    print(f"sbatch-sidecar.py: could not write the status of the jobs: {e}", file=sys.stderr)
                warned = True
                answers = {**answers, "asked_at": attempt}  # not again until a later round asks
        time.sleep(TICK)
    try:
        status = cancel_left(record)
    except (OSError, subprocess.SubprocessError) as e:  # no squeue/scancel, or no answer
        print(f"sbatch-sidecar.py: could not cancel the jobs in {record}: {e}", file=sys.stderr)
        return 1
    try:
        efficiency_report(record)
    except Exception as e:  # it must not keep the files below from being removed
        print(f"sbatch-sidecar.py: no efficiency report: {e}", file=sys.stderr)
    for path in (record, status_file(record), wanted_file(record), served_file(record)):
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            print(f"sbatch-sidecar.py: could not remove {path}: {e}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
