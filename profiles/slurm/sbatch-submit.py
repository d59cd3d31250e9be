#!/usr/bin/env python3
"""Submit one Snakemake job script to SLURM and print the job id (see profiles/slurm/config.yaml).

Snakemake's cluster-generic executor calls this as `sbatch-submit.py JOBSCRIPT` for every
job it sends to the cluster: a single job, or a group job (several jobs in one submission).
The job script's second line holds the job's properties as JSON ("# properties = {...}"):
its rule or group and its resources as Snakemake computed them.  For a group, Snakemake
stacks its jobs in layers of at most `cores` CPUs: the CPUs and memory are those of the
widest layer (a resource that is not a time: the largest of its layers).  They become the
request:

    resources.cpus_per_task    -> --cpus-per-task (a job's threads; a group: its widest layer)
    resources.mem_mb           -> --mem           (MB)
    resources.job_s, run_s     -> --time          (seconds, from the cost model; see below)
    resources.runtime          -> --time          (minutes; for rules without job_s)
    resources.slurm_partition  -> --partition     (only when not empty)
    resources.slurm_account    -> --account       (only when not empty)
    resources.slurm_nice       -> --nice          (a lower priority in the queue; only when set)
    resources.slurm_extra      -> further sbatch options, split like a shell would

The time a chunk of runs asks for is worked out here, not by Snakemake: Snakemake adds up
its members' `runtime` in whole minutes (a minute at least each), far above what runs of
seconds need.  Each member instead carries the seconds its whole chunk asks for (job_s,
the same for all of them) and its own (run_s): a job asks for job_s, or for members x the
largest run_s when only some of its chunk's runs are needed, in whole minutes (SLURM's
unit).  Both already hold cluster.time_factor and the attempt (workflow/rules/common.smk).

A job is never requeued by SLURM (--no-requeue): after a node failure or a preemption it
ends, and Snakemake's retry resubmits it.  A retry (resources.attempt above 1) runs only
the members whose outputs are missing: the Snakemake inside the job is given the job's
output files as its targets, without `--force`, instead of its jobs (`--target-jobs`
always runs them: snakemake/dag.py adds their outputs to the forced files), so members
that finished before the failure (kept by the profile's keep-incomplete; every kmlp
output is written whole or not at all) are up to date and not trained again.  Snakemake lists a job's outputs in its
properties up to 100 of them (kmlp.study never makes a chunk of more runs).  A job script
that no longer has the parts this edits is refused with a message, not retried whole.

The Snakemake inside the job gets exactly that allocation as its limits (`--cores` and
`--resources mem_mb=` in the job script are set to the request), so the jobs of a group
run side by side on the CPUs the job asked for, never more at once.

The job is named "<tag>-<rule or group>" (e.g. "3fa2c1-train-07"): the tag, six hex
digits of the SHA-256 of the working directory's absolute path (`study_tag`), tells apart
the jobs of two studies in one account, and stays the same for one study run after run.
The SLURM log goes to .snakemake/slurm_logs/<rule or group>/<jobid>.log (the working
directory already says whose it is), and the job's comment is "kmlp:<rule or
group>[:<wildcards>]" (`sacct -o Comment` shows it where the cluster stores comments).
When sbatch refuses the job (an account that does not exist, a partition the account may
not use, more CPUs or memory than a node has), its message is printed (Snakemake shows
it) and the exit status is 1.  Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

PREFIX = "# properties = "
# the workflow jobs a job script runs, in the Snakemake inside it (group 1)
TARGET_JOBS = r"--target-jobs (.*?) (?=--)"


def properties(text: str, jobscript: Path) -> dict:
    for line in text.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX) :])
    raise SystemExit(f"sbatch-submit.py: no '{PREFIX.strip()}' line in {jobscript}")


def limited(text: str, cpus: int, mem_mb: int | None, attempt: int = 1, outputs: list | None = None) -> str:
    """The job script with the inner Snakemake held to the allocation (and, on a retry,
    running only the members whose ``outputs`` are missing)."""
    text, n = re.subn(r"--cores\s+'?[^\s']+'?", f"--cores {cpus}", text, count=1)
    if n != 1:
        raise SystemExit("sbatch-submit.py: no --cores in the job script")
    if mem_mb and "--resources" not in text:
        text = text.replace(f"--cores {cpus}", f"--cores {cpus} --resources mem_mb={mem_mb}", 1)
    if attempt > 1 and outputs:
        targets = " ".join(shlex.quote(str(f)) for f in outputs)
        text, n = re.subn(TARGET_JOBS, lambda _: f"{targets} ", text, count=1)
        text, forced = re.subn(r" --force(?= )", "", text, count=1)
        if n != 1 or forced != 1:
            # Snakemake's job script changed: a retry would train the finished runs again
            raise SystemExit(
                "sbatch-submit.py: the job script has no '--target-jobs ... --' and ' --force' to turn into "
                "its missing outputs (has Snakemake's job script changed? pyproject.toml bounds its version)"
            )
    return text


def members(text: str) -> int:
    """How many workflow jobs the job script runs (its --target-jobs)."""
    m = re.search(TARGET_JOBS, text)
    return len(m.group(1).split()) if m else 1


def minutes(props: dict, text: str) -> int | None:
    """The job's time limit in minutes (see the module's docstring)."""
    res = props.get("resources") or {}
    if res.get("job_s") and res.get("run_s"):
        seconds = min(int(res["job_s"]), members(text) * int(res["run_s"]))
        return max(1, math.ceil(seconds / 60))
    return int(res["runtime"]) if res.get("runtime") else None


def study_tag(cwd: Path) -> str:
    """The prefix of a study's job names: six hex digits of the SHA-256 of its working
    directory's absolute path, as `printf %s "$(pwd -P)" | sha256sum | cut -c1-6` prints
    it there.  Snakemake's chunk names (train-07, lsearch-coarse-1, setup) are the same in
    every study, so two studies in one account could not be told apart in squeue or sacct
    without it.  (sbatch-status.py takes it off again for the log's path.)"""
    return hashlib.sha256(str(cwd.resolve()).encode()).hexdigest()[:6]


def sbatch_args(props: dict, cwd: Path, text: str = "") -> list[str]:
    res = props.get("resources") or {}
    if props.get("type") == "group":
        name, detail = props["groupid"], ""
    else:
        name = props["rule"]
        detail = ",".join(f"{k}={v}" for k, v in (props.get("wildcards") or {}).items())
    logdir = cwd / ".snakemake" / "slurm_logs" / name
    logdir.mkdir(parents=True, exist_ok=True)
    args = [
        "sbatch",
        "--parsable",
        "--export=ALL",
        f"--job-name={study_tag(cwd)}-{name}",
        f"--comment=kmlp:{name}" + (f":{detail}" if detail else ""),
        f"--output={logdir}/%j.log",
        "--no-requeue",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={cpus_of(props)}",
    ]
    if res.get("mem_mb"):
        args.append(f"--mem={int(res['mem_mb'])}")
    limit = minutes(props, text)
    if limit:
        args.append(f"--time={limit}")
    for key, option in (("slurm_partition", "--partition"), ("slurm_account", "--account")):
        value = str(res.get(key) or "").strip()
        if value:
            args.append(f"{option}={value}")
    if res.get("slurm_nice"):
        args.append(f"--nice={int(res['slurm_nice'])}")
    if res.get("slurm_extra"):
        args += shlex.split(str(res["slurm_extra"]))
    return args


def cpus_of(props: dict) -> int:
    res = props.get("resources") or {}
    return max(1, int(res.get("cpus_per_task") or props.get("threads") or 1))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: sbatch-submit.py [SBATCH_OPTION...] JOBSCRIPT", file=sys.stderr)
        return 2
    jobscript = Path(argv[-1])
    text = jobscript.read_text()
    props = properties(text, jobscript)
    res = props.get("resources") or {}
    mem, attempt = res.get("mem_mb"), int(res.get("attempt") or 1)
    jobscript.write_text(limited(text, cpus_of(props), int(mem) if mem else None, attempt, props.get("output")))
    cmd = sbatch_args(props, Path.cwd(), text) + argv[1:-1] + [str(jobscript)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        message = (
            f"sbatch refused the job (exit status {proc.returncode}): {proc.stderr.strip()}\n"
            f"sbatch call: {shlex.join(cmd)}\n"
            "(partition and account: slurm_partition / slurm_account under default-resources"
            " in the profile's config.yaml)"
        )
        # stdout goes into Snakemake's error record; stderr shows on the terminal at once
        print(message)
        print(f"sbatch-submit.py: {message}", file=sys.stderr)
        return 1
    # --parsable: "JOBID", or "JOBID;CLUSTER" for a job sent to a cluster of --clusters,
    # which sbatch-status.py and the sidecar must then ask about with --clusters
    printed = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    jobid, _, cluster = printed.partition(";")
    if not jobid.isdigit():
        print(f"sbatch printed no job id: {proc.stdout.strip()!r} {proc.stderr.strip()!r}")
        return 1
    external = f"{jobid};{cluster}" if cluster else jobid
    # the sidecar's record of this Snakemake's jobs, to cancel what it leaves (sbatch-sidecar.py)
    if record := os.environ.get("SNAKEMAKE_CLUSTER_SIDECAR_VARS"):
        with open(record, "a") as f:
            f.write(f"{external}\n")
    print(external)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
