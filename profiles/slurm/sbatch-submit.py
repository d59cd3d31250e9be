#!/usr/bin/env python3
"""Submit one Snakemake job script to SLURM and print the job id (see profiles/slurm/config.yaml).

Snakemake's cluster-generic executor calls this as `sbatch-submit.py JOBSCRIPT` for every
job it sends to the cluster: a single job, or a group job (several jobs in one submission).
The job script's second line holds the job's properties as JSON ("# properties = {...}"):
its rule or group and its resources as Snakemake computed them.  For a group, Snakemake
stacks its jobs in layers of at most `cores` CPUs: the CPUs and memory are those of the
widest layer, the time limit is the layers' time limits added up.  They become the request:

    resources.cpus_per_task    -> --cpus-per-task (a job's threads; a group: its widest layer)
    resources.mem_mb           -> --mem           (MB)
    resources.runtime          -> --time          (minutes)
    resources.slurm_partition  -> --partition     (only when not empty)
    resources.slurm_account    -> --account       (only when not empty)
    resources.slurm_extra      -> further sbatch options, split like a shell would

The Snakemake inside the job gets exactly that allocation as its limits (`--cores` and
`--resources mem_mb=` in the job script are set to the request), so the jobs of a group
run side by side on the CPUs the job asked for, never more at once.

The SLURM log goes to .snakemake/slurm_logs/<rule or group>/<jobid>.log, and the job's
comment is "kmlp:<rule or group>[:<wildcards>]" (`sacct -o Comment` shows it where the
cluster stores comments).  When sbatch refuses the job (an account that does not exist,
a partition the account may not use, more CPUs or memory than a node has), its message is
printed (Snakemake shows it) and the exit status is 1.  Standard library only.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

PREFIX = "# properties = "


def properties(text: str, jobscript: Path) -> dict:
    for line in text.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX) :])
    raise SystemExit(f"sbatch-submit.py: no '{PREFIX.strip()}' line in {jobscript}")


def limited(text: str, cpus: int, mem_mb: int | None) -> str:
    """The job script with the inner Snakemake held to the allocation."""
    text, n = re.subn(r"--cores\s+'?[^\s']+'?", f"--cores {cpus}", text, count=1)
    if n != 1:
        raise SystemExit("sbatch-submit.py: no --cores in the job script")
    if mem_mb and "--resources" not in text:
        text = text.replace(f"--cores {cpus}", f"--cores {cpus} --resources mem_mb={mem_mb}", 1)
    return text


def sbatch_args(props: dict, cwd: Path) -> list[str]:
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
        f"--job-name={name}",
        f"--comment=kmlp:{name}" + (f":{detail}" if detail else ""),
        f"--output={logdir}/%j.log",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={cpus_of(props)}",
    ]
    if res.get("mem_mb"):
        args.append(f"--mem={int(res['mem_mb'])}")
    if res.get("runtime"):
        args.append(f"--time={int(res['runtime'])}")
    for key, option in (("slurm_partition", "--partition"), ("slurm_account", "--account")):
        value = str(res.get(key) or "").strip()
        if value:
            args.append(f"{option}={value}")
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
    mem = (props.get("resources") or {}).get("mem_mb")
    jobscript.write_text(limited(text, cpus_of(props), int(mem) if mem else None))
    cmd = sbatch_args(props, Path.cwd()) + argv[1:-1] + [str(jobscript)]
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
    jobid = proc.stdout.strip().split(";")[0]
    if not jobid.isdigit():
        print(f"sbatch printed no job id: {proc.stdout.strip()!r} {proc.stderr.strip()!r}")
        return 1
    print(jobid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
