#!/usr/bin/env python3
"""Print the state of one SLURM job for Snakemake: running, success or failed.

Snakemake's cluster-generic executor calls this as `sbatch-status.py JOBID` for every job it
waits for, one after another, every `seconds-between-status-checks` (profiles/slurm/config.yaml).

The answer comes from the sidecar (sbatch-sidecar.py), which asks SLURM once per round for
all of this Snakemake's jobs: one squeue and one sacct per round instead of one or two per
job, which a controller with hundreds of jobs to answer for would feel.  The first call of
a round, finding no answer newer than the one it gave for its job last time, asks the
sidecar for one and waits for it (at most WAIT seconds); the others of the round find it.
This call asks SLURM itself, as before the sidecar, when there is no sidecar (no
SNAKEMAKE_CLUSTER_SIDECAR_VARS, or its process is gone), when it does not answer in
time, or when the job is in neither its squeue nor its sacct.

Asked itself, the controller comes first (`squeue`, which also lists a finished job for
MinJobAge seconds), the accounting database after that (`sacct`).  A job that neither knows any more
has failed (it can no longer end well); a controller that does not answer at all counts as
"still running", so that a busy or restarting controller does not fail the workflow.

A job that did not complete is reported in one line on stderr, which Snakemake shows on
the submitting terminal: its id and name, the state SLURM ended it in (TIMEOUT,
OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, CANCELLED, FAILED ...), how long it ran against its
limit, the memory it used against its request, and its log (named by its rule or group, the
job's name less the study's prefix, see sbatch-submit.py), e.g.

    sbatch-status.py: SLURM job 42 (train-07) ended TIMEOUT after 00:04:00 (limit 00:04:00),
    MaxRSS 1084M of 1390M; log: .snakemake/slurm_logs/train-07/42.log

Standard library only: it runs with any python3.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from sidecar_files import output_lines as lines
from sidecar_files import run, served_file, status_file, wanted_file, write_atomically

# seconds a status call waits for the sidecar's round before it asks SLURM itself
WAIT = 30

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


def own_name(job_name: str, cwd: Path) -> str:
    """A job's name less the prefix sbatch-submit.py gives the jobs of the study in ``cwd``
    (its study_tag: six hex digits of the SHA-256 of the working directory's absolute
    path): the rule or group, which names its log's folder.  Snakemake asks from that
    working directory."""
    tag = hashlib.sha256(str(cwd.resolve()).encode()).hexdigest()[:6]
    return job_name.removeprefix(f"{tag}-")


def why(jobid: str, state: str, where: list[str] = ()) -> str:
    """One line on how a job that did not complete ended (sacct; its log's path)."""
    fields = ["JobName", "State", "Elapsed", "Timelimit", "ReqMem", "MaxRSS"]
    acct = run(
        ["sacct", *where, "--noheader", "--parsable2", "--units=M", "--jobs", jobid, f"--format={','.join(fields)}"]
    )
    rows = [dict(zip(fields, line.split("|"), strict=False)) for line in lines(acct)]
    job = rows[0] if rows else {"State": state}
    name = own_name(job.get("JobName") or "?", Path.cwd())
    # accounting is written behind the controller (slurmdbd): sacct may still say RUNNING of
    # a job squeue already has as NODE_FAIL; the line names the state the verdict came from
    ended = job["State"] if job.get("State") and verdict(job["State"]) == "failed" else state
    used = max((float(r["MaxRSS"].rstrip("M")) for r in rows if r.get("MaxRSS", "").rstrip("M")), default=None)
    memory = f", MaxRSS {used:.0f}M of {job.get('ReqMem') or '?'}" if used is not None else ""
    asked = job.get("ReqMem", "").rstrip("M")
    if ended.split()[:1] == ["FAILED"] and used is not None and asked.replace(".", "").isdigit():
        if used >= 0.95 * float(asked):
            # a cluster that enforces memory by sampling (no cgroups) ends such a job FAILED;
            # a job that ended otherwise (TIMEOUT, CANCELLED, ...) says so alone
            ended += ", OUT_OF_MEMORY"
    log = Path(".snakemake") / "slurm_logs" / name / f"{jobid}.log"
    return (
        f"sbatch-status.py: SLURM job {jobid} ({name}) ended {ended}"
        f" after {job.get('Elapsed') or '?'} (limit {job.get('Timelimit') or '?'}){memory}; log: {log}"
    )


def report(jobid: str, state: str, where: list[str] = ()) -> int:
    status = verdict(state)
    if status == "failed":
        print(why(jobid, state, where), file=sys.stderr, flush=True)
    print(status)
    return 0


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def newer_round(record: Path, answers: dict) -> dict | None:
    """Ask the sidecar for a round newer than ``answers`` and wait for it; None when it
    does not come within WAIT seconds (or an earlier call already waited that long in vain)."""
    wanted = wanted_file(record)
    try:
        pending = float(wanted.read_text() or 0)
    except (OSError, ValueError):
        pending = 0.0
    now = time.time()
    if pending > answers["asked_at"]:  # an earlier call of this round asked already
        if now - pending > WAIT:
            return None  # the sidecar is stuck: do not wait again
        since = pending
    else:
        since = now
        write_atomically(wanted, repr(now))
    status = status_file(record)
    while time.time() < since + WAIT and alive(answers.get("pid")):  # stopped with Snakemake: no round
        time.sleep(0.02)
        fresh = read_json(status)
        if fresh and fresh.get("asked_at", 0) >= since:
            return fresh
    return None


def from_sidecar(external: str) -> str | None:
    """The job's state as the sidecar's last round found it, when that round is newer than
    the answer this job was given last time (sbatch-sidecar.py); None: ask SLURM itself."""
    if not os.environ.get("SNAKEMAKE_CLUSTER_SIDECAR_VARS"):
        return None
    record = Path(os.environ["SNAKEMAKE_CLUSTER_SIDECAR_VARS"])
    answers = read_json(status_file(record))
    if not answers or not alive(answers.get("pid")):
        return None
    if external in answers.get("unknown", []):
        return None  # neither squeue nor sacct knew it in the last round: ask them again
    served_path = served_file(record)
    served = read_json(served_path) or {}
    known = external in answers.get("jobs", {}) or external in answers.get("silent", [])
    if not known or answers["asked_at"] <= served.get(external, -1.0):
        answers = newer_round(record, answers)
        if answers is None:
            return None
    state = answers["jobs"].get(external) or ("RUNNING" if external in answers.get("silent", []) else None)
    if state is not None:
        # noted, so that this job's next call waits for a newer round (without the note it
        # would be given this answer again and again: asked itself instead)
        served[external] = answers["asked_at"]
        write_atomically(served_path, json.dumps(served))
    return state


def main(argv: list[str]) -> int:
    # "JOBID" or, for a job sent to another cluster (--clusters in slurm_extra), "JOBID;CLUSTER"
    jobid, _, cluster = argv[1].partition(";")
    where = ["--clusters", cluster] if cluster else []
    try:
        state = from_sidecar(argv[1])
    except (OSError, KeyError, TypeError, AttributeError):  # the sidecar's files unreadable or unwritable
        state = None
    if state is not None:
        return report(jobid, state, where)
    queue = run(["squeue", *where, "--noheader", "--states=all", "--jobs", jobid, "--format=%T"])
    if lines(queue):
        return report(jobid, lines(queue)[0], where)
    gone = queue is not None and "Invalid job id" in queue.stderr
    acct = run(["sacct", *where, "--noheader", "--parsable2", "--allocations", "--jobs", jobid, "--format=State"])
    if lines(acct):
        return report(jobid, lines(acct)[0], where)
    # the controller forgot the job and accounting never saw it: it cannot end well
    if gone:
        print(f"sbatch-status.py: SLURM job {jobid} is unknown to squeue and sacct", file=sys.stderr)
    print("failed" if gone else "running")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
