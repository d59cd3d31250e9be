#!/usr/bin/env python3
"""A study of thousands of cheap runs through profiles/slurm: what the login node and the controller spend.

Issue 32, item 7.  The tiny configuration (.test/config, a small archive in the official
format as the tests make it: tests/workflow_project.py) with seeds 1..N, run as a user
runs the study (`snakemake --profile COPY`, its default target: every run, the lambda
search, tables, figures, report and record) through a copy of profiles/slurm with only
its partition and account lines set (as tests/test_slurm.py sets them), on a test cluster
started with tests/slurm/cluster.sh, as root (`sdiag -r`), after `source STATE_DIR/env`:

    python3 tests/slurm/scale_test.py --seeds 500 --out tests/slurm/scale_test.json

Measured:
- the login node's CPU time: Snakemake runs as a child of this script, which reads
  `getrusage(RUSAGE_CHILDREN)` once it has exited: user + system time of Snakemake and of
  every process it waited for (the sidecar, every status and submit call, the local
  rules); the SLURM jobs' processes are slurmd's children, not counted there.  The local
  rules' own CPU time (their benchmark files' cpu_time) is given apart;
- the controller's RPCs: `sdiag -r` just before Snakemake starts, `sdiag` just after it
  exits, by message type and by user, and per minute of Snakemake's wall time; slurmdbd's
  job queries (sacct) from `sacctmgr show stats` (cleared at the start);
- the jobs: sacct's line of every job that ran in the project (state, node, Submit,
  Start, End, Elapsed, TotalCPU, AllocCPUS): how many, their summed Elapsed and TotalCPU,
  the makespan (first Start to last End) against summed Elapsed / the cluster's CPUs;
- the machine (CPU, kernel, BLAS as threadpoolctl sees it), the load average before and
  after, SLURM's version, the command and the config overlay.

Standard library, PyYAML and the project's own modules (kmlp.study, tests/workflow_project).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import workflow_project  # noqa: E402
from kmlp.study import Study  # noqa: E402

PROFILE = REPO / "profiles" / "slurm"
# the local rules with a benchmark file (workflow/rules/aggregate.smk): their own CPU time
LOCAL_BENCHMARKS = [
    "figure/*.tsv",
    "table/*.tsv",
    "gradtable.tsv",
    "summary.tsv",
    "discrepancies.tsv",
    "diagnose.tsv",
    "report_tex.tsv",
    "report_pdf.tsv",
    "record.tsv",
    "check_runs.tsv",
]
SACCT = ["JobID", "JobName", "State", "NodeList", "AllocCPUS", "Submit", "Start", "End", "Elapsed", "TotalCPU",
         "WorkDir"]  # fmt: skip


def sh(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw).stdout


def sdiag() -> dict:
    """sdiag's counts by message type and by user (sdiag's own REQUEST_STATS_INFO left out)."""
    text = sh(["sdiag"])
    by_type = text.split("Remote Procedure Call statistics by message type", 1)[1]
    by_type, by_user = by_type.split("Remote Procedure Call statistics by user", 1)
    by_user = by_user.split("Pending RPC", 1)[0]
    count = r"^\s+(\S+)\s+\(\s*\d+\)\s+count:(\d+)"
    types = {m[1]: int(m[2]) for m in re.finditer(count, by_type, re.M)}
    users = {m[1]: int(m[2]) for m in re.finditer(count, by_user, re.M)}
    stats = types.pop("REQUEST_STATS_INFO", 0)
    for user in users:  # sdiag's own call is root's
        if user == "root":
            users[user] -= stats
    return {"by_type": dict(sorted(types.items(), key=lambda kv: -kv[1])), "by_user": users}


def dbd_counts() -> dict[str, int]:
    text = sh(["sacctmgr", "show", "stats"])
    part = text.split("Remote Procedure Call statistics by message type", 1)[-1].split("by user", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+(DBD_\w+)\s+\(\s*\d+\)\s+count:(\d+)", part, re.M)}


def seconds(duration: str) -> float:
    """sacct durations: [D-][HH:]MM:SS[.mmm]."""
    days, _, rest = duration.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, s = parts
    return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s


def when(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp).timestamp()


def last_jobid() -> int:
    out = sh(["sacct", "--allusers", "--noheader", "--parsable2", "-X", "--starttime=now-7days", "--format=JobID"])
    return max((int(j.split("_")[0]) for j in out.split()), default=0)


def jobs_of(project: Path, after: int) -> list[dict]:
    """sacct's line of every job that ran in the project since job ``after``: the job's own
    line (without -X: with it sacct gives TotalCPU 0, the job's line sums its steps')."""
    out = sh(["sacct", "--allusers", "--noheader", "--parsable2", "--starttime=now-1days",
              f"--format={','.join(SACCT)}"])  # fmt: skip
    rows = [dict(zip(SACCT, line.split("|"), strict=True)) for line in out.splitlines()]
    return [r for r in rows if "." not in r["JobID"] and Path(r["WorkDir"]) == project and int(r["JobID"]) > after]


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    import numpy  # noqa: F401  (loads its BLAS for threadpoolctl)
    from threadpoolctl import threadpool_info

    blas = [
        {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "blas": blas,
    }


def local_rules_cpu(project: Path) -> tuple[float, int]:
    """The local rules' own CPU seconds (their benchmark files), and how many files."""
    total, n = 0.0, 0
    bench = project / "results" / "benchmarks"
    for pattern in LOCAL_BENCHMARKS:
        for path in bench.glob(pattern):
            rows = list(csv.DictReader(path.open(), delimiter="\t"))
            total += sum(float(r["cpu_time"]) for r in rows if r["cpu_time"] not in ("", "NA"))
            n += 1
    return total, n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500, help="seeds 1..N for every configured experiment")
    parser.add_argument(
        "--n-s", type=int, help="steps a half cycle of every run, the lambda search's too (default: the tiny config's)"
    )
    parser.add_argument("--out", type=Path, help="the measurements as JSON")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kmlp-scale-test"), help="made afresh")
    parser.add_argument("--partition", default="study")
    parser.add_argument("--account", default="kmlp-project")
    parser.add_argument("--cpus", type=int, default=2, help="the cluster's CPUs (cluster.sh: 2 nodes of 1)")
    parser.add_argument("--cprofile", type=Path, help="run Snakemake under cProfile, its stats to this file")
    parser.add_argument(
        "--count-calls", action="store_true", help="count the submit and status calls (a shell wrapper around each)"
    )
    parser.add_argument("--snakemake-args", nargs=argparse.REMAINDER, default=[],
                        help="added to snakemake's command line (the profile's own settings otherwise)")  # fmt: skip
    args = parser.parse_args()

    # the project: the tiny config with seeds 1..N, and the workflow
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    project = args.workdir / "project"
    overlay = {"seeds": list(range(1, args.seeds + 1))}
    if args.n_s:  # as tests/test_slurm.py's OVERRIDES lengthen the runs
        tiny = yaml.safe_load(workflow_project.TINY_CONFIG.read_text())
        overlay |= {key: {**tiny[key], "n_s": args.n_s} for key in ("training", "lambda_search")}
    workflow_project.make_project(project, **overlay)
    shutil.copytree(REPO / "workflow", project / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    study = Study(config).check()
    planned_runs = len(study.chunks)
    planned_jobs = len({c.name for c in study.chunks.values()})

    # the profile as shipped, its partition and account lines set
    profile = args.workdir / "profile"
    shutil.copytree(PROFILE, profile)
    text = (profile / "config.yaml").read_text()
    for key, value in (("slurm_partition", args.partition), ("slurm_account", args.account)):
        line = f'  {key}: ""\n'
        assert text.count(line) == 1, line
        text = text.replace(line, f'  {key}: "{value}"\n')
    (profile / "config.yaml").write_text(text)
    calls = args.workdir / "calls.txt"
    if args.count_calls:
        for script in ("sbatch-submit.py", "sbatch-status.py"):
            (profile / script).rename(profile / f"real-{script}")
            (profile / script).write_text(f'#!/bin/sh\necho {script} >> {calls}\nexec "{profile}/real-{script}" "$@"\n')
            (profile / script).chmod(0o755)

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("SNAKEMAKE_PROFILE", None)
    profiler = ["-m", "cProfile", "-o", str(args.cprofile)] if args.cprofile else []
    cmd = [sys.executable, *profiler, "-m", "snakemake", "--profile", str(profile), *args.snakemake_args]
    log = args.workdir / "snakemake.log"
    version = sh(["sinfo", "--version"]).strip()
    first = last_jobid()
    load_before = os.getloadavg()
    print(f"{planned_runs} runs planned in {planned_jobs} chunk jobs; $ (cd {project} && {' '.join(cmd)}) > {log}",
          flush=True)  # fmt: skip

    subprocess.run(["sacctmgr", "-i", "clear", "stats"], check=True, capture_output=True)
    subprocess.run(["sdiag", "-r"], check=True, capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    with log.open("w") as out:
        rc = subprocess.run(cmd, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rpcs = sdiag()
    dbd = dbd_counts()
    load_after = os.getloadavg()
    login_user = after.ru_utime - before.ru_utime
    login_sys = after.ru_stime - before.ru_stime
    login_cpu = login_user + login_sys

    jobs = jobs_of(project, first)
    runs_made = len(list((project / "results" / "runs").glob("*/*.h5")))
    elapsed = sum(seconds(j["Elapsed"]) for j in jobs)
    jobs_cpu = sum(seconds(j["TotalCPU"]) for j in jobs)
    start = min(when(j["Start"]) for j in jobs)
    end = max(when(j["End"]) for j in jobs)
    makespan = end - start
    rpc_total = sum(rpcs["by_type"].values())
    local_cpu, local_files = local_rules_cpu(project)
    summary_line = next((line for line in log.read_text().splitlines() if "sbatch-sidecar.py:" in line
                         and "SLURM jobs" in line), "")  # fmt: skip
    by_node: dict[str, float] = {}
    for j in jobs:
        by_node[j["NodeList"]] = by_node.get(j["NodeList"], 0.0) + seconds(j["Elapsed"])
    states: dict[str, int] = {}
    for j in jobs:
        states[j["State"]] = states.get(j["State"], 0) + 1

    result = {
        "what": __doc__.splitlines()[0],
        "command": "python3 tests/slurm/scale_test.py " + " ".join(sys.argv[1:]),
        "snakemake_command": f"snakemake --profile COPY {' '.join(args.snakemake_args)}".strip(),
        "profile": f"profiles/slurm, slurm_partition {args.partition!r} and slurm_account {args.account!r} set",
        "config": ".test/config/config.yaml (a small archive: tests/workflow_project.py) with this overlay",
        "config_overlay": {"seeds": f"1..{args.seeds}", **({"n_s": args.n_s} if args.n_s else {})},
        "cluster": f"tests/slurm/cluster.sh, {version}, 2 nodes of 1 CPU",
        "cluster_cpus": args.cpus,
        "machine": machine(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0)),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "snakemake_exit_status": rc,
        "runs_planned": planned_runs,
        "runs_made": runs_made,
        "chunks_planned": planned_jobs,
        "jobs_submitted": len(jobs),
        "job_states": states,
        "snakemake_wall_s": round(wall, 1),
        "first_submit_after_s": round(min(when(j["Submit"]) for j in jobs) - t0, 1),
        "makespan_s": round(makespan, 1),
        "jobs_elapsed_s": round(elapsed, 1),
        "jobs_elapsed_by_node_s": by_node,
        "jobs_elapsed_over_cpus_s": round(elapsed / args.cpus, 1),
        "makespan_over_elapsed_per_cpu": round(makespan / (elapsed / args.cpus), 3),
        "wall_over_elapsed_per_cpu": round(wall / (elapsed / args.cpus), 3),
        "jobs_cpu_s": round(jobs_cpu, 1),
        "login_cpu_s": round(login_cpu, 1),
        "login_user_s": round(login_user, 1),
        "login_sys_s": round(login_sys, 1),
        "login_cpu_per_1000_runs_s": round(1000 * login_cpu / runs_made, 1) if runs_made else None,
        "login_share_of_jobs_cpu": round(login_cpu / jobs_cpu, 4),
        "local_rules_cpu_s": round(local_cpu, 1),
        "local_rules_benchmarks": local_files,
        "login_cpu_less_local_rules_s": round(login_cpu - local_cpu, 1),
        "rpcs_total": rpc_total,
        "rpcs_per_minute": round(rpc_total / (wall / 60), 1),
        "rpcs_by_type": rpcs["by_type"],
        "rpcs_by_user": rpcs["by_user"],
        "slurmdbd_job_queries": dbd.get("DBD_GET_JOBS_COND", 0),
        "efficiency_summary": summary_line.strip(),
    }
    if args.count_calls:
        said = calls.read_text().split()
        result["calls"] = {name: said.count(name) for name in sorted(set(said))}
    keys = ["runs_made", "jobs_submitted", "snakemake_wall_s", "makespan_s", "jobs_elapsed_over_cpus_s",
            "makespan_over_elapsed_per_cpu", "jobs_cpu_s", "login_cpu_s", "login_cpu_per_1000_runs_s",
            "login_share_of_jobs_cpu", "local_rules_cpu_s", "rpcs_total", "rpcs_per_minute"]  # fmt: skip
    for k in keys:
        print(f"{k}: {result[k]}")
    print(f"rpcs_by_type: {result['rpcs_by_type']}\nrpcs_by_user: {result['rpcs_by_user']}\nstates: {states}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
