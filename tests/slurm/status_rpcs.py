#!/usr/bin/env python3
"""The SLURM controller's RPCs per round of status checks, with and without the sidecar.

Counted for a growing number of jobs: with the sidecar (profiles/slurm/sbatch-sidecar.py:
one squeue for all jobs) and without it (one squeue per job).

Run against a test cluster (tests/slurm/cluster.sh), as root (`sdiag -r` resets the
controller's counters), after `source STATE_DIR/env`:

    python3 tests/slurm/status_rpcs.py --jobs 10 500 --rounds 2 --out tests/slurm/status_rpcs.json

For each number of jobs it submits that many held `sleep` jobs (`sbatch --hold`: pending,
they never run), adds the jobs `--left` names (ended, and gone from squeue) if any,
starts the sidecar as Snakemake does, and makes rounds of status calls as the
cluster-generic executor does (`sh -c "sbatch-status.py 'JOBID'"`, one after another,
SNAKEMAKE_CLUSTER_SIDECAR_VARS set to the sidecar's first line): `--rounds` rounds with
the sidecar, then one without (the variable unset: each call asks squeue itself).  Each
round starts with `sdiag -r` and ends with `sdiag`, whose counts by message type are kept
(sdiag's own REQUEST_STATS_INFO left out).  The sidecar's accounting queries go to
slurmdbd, not the controller: their count is `sacctmgr show stats`' DBD_GET_JOBS_COND,
reset with `sacctmgr -i clear stats`.  Stopping the sidecar then cancels the held jobs
(one scancel) and writes its efficiency report.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
# the controller's RPCs a status query makes (squeue: by job id, for a user, or all jobs)
JOB_QUERIES = ("REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE", "REQUEST_JOB_USER_INFO")


def sh(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw).stdout


def rpc_counts() -> dict[str, int]:
    """sdiag's counts by message type (the section before the one by user)."""
    text = sh(["sdiag"])
    section = text.split("Remote Procedure Call statistics by message type", 1)[1]
    section = section.split("Remote Procedure Call statistics by user", 1)[0]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^\s+([A-Z_]+)\s+\(\s*\d+\)\s+count:(\d+)", section, re.M)}
    counts.pop("REQUEST_STATS_INFO", None)  # sdiag itself
    return counts


def dbd_job_queries() -> int:
    text = sh(["sacctmgr", "show", "stats"])
    m = re.search(r"^\s*DBD_GET_JOBS_COND\s+\(\s*\d+\)\s+count:(\d+)", text, re.M)
    return int(m[1]) if m else 0


def status_round(jobs: list[str], env: dict[str, str], cwd: Path) -> dict:
    subprocess.run(["sdiag", "-r"], check=True, capture_output=True)
    subprocess.run(["sacctmgr", "-i", "clear", "stats"], check=True, capture_output=True)
    t0 = time.monotonic()
    said = []
    for job in jobs:
        out = subprocess.run(
            f"{PROFILE / 'sbatch-status.py'} '{job}'", shell=True, env=env, capture_output=True, cwd=cwd
        )
        said.append(out.stdout.decode().strip())
    seconds = time.monotonic() - t0
    counts = rpc_counts()
    return {
        "seconds": round(seconds, 2),
        "answers": {a: said.count(a) for a in sorted(set(said))},
        "status_queries": sum(counts.get(k, 0) for k in JOB_QUERIES),
        "accounting_queries": dbd_job_queries(),
        "rpcs": counts,
    }


def measure(n: int, rounds: int, workdir: Path, left: list[str] = ()) -> list[dict]:
    """Rounds for ``n`` held jobs, and the jobs ``left`` (that have left squeue) if any."""
    env = dict(os.environ)
    held = [
        sh(["sbatch", "--parsable", "--hold", "--time=1", f"--job-name=rpc-{n}", "--output=/dev/null",
            "--wrap", "sleep 300"]).strip()
        for _ in range(n)
    ]  # fmt: skip
    jobs = held + list(left)
    sidecar = subprocess.Popen(
        [sys.executable, str(PROFILE / "sbatch-sidecar.py")],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    record = sidecar.stdout.readline().strip()
    Path(record).write_text("".join(f"{job}\n" for job in jobs))
    results = []
    try:
        with_sidecar = {**env, "SNAKEMAKE_CLUSTER_SIDECAR_VARS": record}
        for r in range(1, rounds + 1):
            results.append(
                {"jobs": n, "left": len(left), "sidecar": True, "round": r, **status_round(jobs, with_sidecar, workdir)}
            )
        without = {k: v for k, v in env.items() if k != "SNAKEMAKE_CLUSTER_SIDECAR_VARS"}
        results.append(
            {"jobs": n, "left": len(left), "sidecar": False, "round": 1, **status_round(jobs, without, workdir)}
        )
    finally:
        sidecar.send_signal(signal.SIGTERM)
        _, err = sidecar.communicate(timeout=120)
    for row in results:
        print(json.dumps({k: v for k, v in row.items() if k != "rpcs"}), flush=True)
    print(err.strip(), flush=True)
    left = sh(["squeue", "--noheader", f"--name=rpc-{n}", "--format=%i"]).split()
    assert not left, f"the sidecar left {len(left)} jobs"
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--left", nargs="+", default=[], metavar="JOBID",
        help="jobs of this user that have ended and left squeue (MinJobAge), asked about in every round too",
    )  # fmt: skip
    args = parser.parse_args()
    version = sh(["sinfo", "--version"]).strip()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.jobs:
            results += measure(n, args.rounds, Path(tmp), args.left)
    if args.out:
        doc = {
            "what": __doc__.splitlines()[0],
            "command": "python3 tests/slurm/status_rpcs.py " + " ".join(sys.argv[1:]),
            "cluster": f"tests/slurm/cluster.sh, {version}, {os.cpu_count()} CPUs, {platform.processor() or 'x86_64'}",
            "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "rounds": results,
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
