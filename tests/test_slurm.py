"""End-to-end test of the SLURM profile on a real single-node SLURM cluster.

Skipped unless KMLP_SLURM=1.  Needs root and Debian 12 (tests/slurm/cluster.sh
installs munge, slurm and mariadb with apt-get when they are missing).

The project is the real workflow on the tiny configuration (.test/config). It is
run twice, in two fresh copies made by ``make_project`` at
the same path one after the other: locally (``snakemake --cores 2``) and on
SLURM (``snakemake --profile profiles/slurm``).  Then:

1. every file the runs produced is byte-identical between the two copies;
2. ``sacct`` shows one COMPLETED SLURM job per workflow job (per rule, as many
   as the dry run plans), nothing else;
3. the bring-up time of the cluster and the duration of both runs are printed.

"""

from __future__ import annotations

import collections
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import workflow_project

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm"
WORKFLOW_PROFILE = REPO / "workflow" / "profiles" / "default"

# Files produced by a run that may legitimately differ between runs
# (glob patterns relative to the project root; .snakemake/ is always skipped).
NONDETERMINISTIC: list[str] = [
    "results/logs/*",
    "results/benchmarks/*",
    # quotes the jobs' benchmark times; compared below without that line
    "docs/reproduction.md",
]

# Upper bound for the SLURM run (a broken status query makes the plugin wait
# silently instead of failing).
SLURM_RUN_TIMEOUT = 1200

# Rules whose jobs may run in the main Snakemake process instead of SLURM
# (rules without an action, like `all`, and `localrules:`).
LOCAL_RULES: set[str] = {"all"}

# Options added to the SLURM run only, to make it quick on an idle test cluster.
SLURM_TEST_OPTIONS = [
    "--slurm-init-seconds-before-status-checks",
    # a job here takes ~5 s from sbatch to exit (two Snakemake start-ups);
    # the plugin re-polls after this many seconds when a job has just ended,
    # else after 10 s more each time, so slightly above a job's length is best
    os.environ.get("KMLP_SLURM_INIT_SECONDS", "8"),
    "--latency-wait",
    "5",
    "--retries",
    "0",
]

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("KMLP_SLURM") != "1", reason="SLURM end-to-end test; set KMLP_SLURM=1 (needs root, Debian 12)"
    ),
]


def make_project(tmp_path: Path) -> Path:
    """The real workflow with the tiny test configuration and a small archive.

    The workflow directory (with its default profile) is copied in, so Snakemake
    runs from the project root as a user would.
    """
    root = workflow_project.make_project(tmp_path / "project")
    shutil.copytree(REPO / "workflow", root / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    return root


# --------------------------------------------------------------------------- #


def _venv_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for snakemake: this interpreter's bin dir first on PATH.

    The SLURM jobs inherit it (the plugin submits with --export=ALL), so
    `python` inside jobs is the same interpreter as here.
    """
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("SNAKEMAKE_PROFILE", None)
    if extra:
        env.update(extra)
    return env


def _snakemake(args: list[str], cwd: Path, env: dict[str, str], timeout: float):
    cmd = [sys.executable, "-m", "snakemake", *args]
    print(f"\n$ (cd {cwd} && {' '.join(cmd)})", flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        print(proc.stdout[-20000:])
        print(proc.stderr[-20000:], file=sys.stderr)
        for log in sorted((cwd / ".snakemake" / "slurm_logs").rglob("*.log")):
            print(f"----- {log} -----\n{log.read_text(errors='replace')[-3000:]}")
        raise AssertionError(f"snakemake failed with exit code {proc.returncode}")
    return proc


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".snakemake" not in p.relative_to(root).parts
    }


def _cluster_env(state: Path) -> dict[str, str]:
    """Variables that STATE/env sets (SLURM_CONF, PATH with client wrappers)."""
    base = _venv_env()
    proc = subprocess.run(
        ["bash", "-c", f'source "{state}/env" && env -0'], env=base, capture_output=True, text=True, check=True
    )
    after = dict(kv.split("=", 1) for kv in proc.stdout.split("\0") if "=" in kv)
    shell_vars = {"_", "SHLVL", "PWD", "OLDPWD"}
    return {k: v for k, v in after.items() if base.get(k) != v and k not in shell_vars and not k.startswith("BASH")}


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node SLURM cluster; yields the env to use it."""
    # munged wants every directory above its socket world-searchable, and the
    # socket path short: not under pytest's 0700 tmp dirs.  On tmpfs when
    # possible: MariaDB and slurmdbd fsync a lot (bring-up ~3 s vs ~10 s).
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path("/tmp")
    state = Path(tempfile.mkdtemp(prefix="kmlp-slurm-", dir=base))
    state.chmod(0o755)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            ["bash", str(CLUSTER_SH), "start", str(state)], capture_output=True, text=True, timeout=900
        )
        print(proc.stderr, file=sys.stderr)
        print(proc.stdout)
        if proc.returncode != 0:
            pytest.fail(f"cluster.sh start failed ({proc.returncode}), see output above")
        bringup = time.monotonic() - t0
        m = re.search(r"BRINGUP_SECONDS=([\d.]+)", proc.stdout)
        print(
            f"SLURM cluster up: {bringup:.1f} s including package check" + (f", daemons {m.group(1)} s" if m else ""),
            flush=True,
        )
        yield {"state": state, "env": _cluster_env(state), "bringup": bringup}
    finally:
        stop = subprocess.run(
            ["bash", str(CLUSTER_SH), "stop", str(state)], capture_output=True, text=True, timeout=300
        )
        print(stop.stderr, file=sys.stderr)
        if stop.returncode != 0:
            print(f"cluster.sh stop failed; state left in {state}", file=sys.stderr)
        elif os.environ.get("KMLP_SLURM_KEEP_STATE") == "1":
            print(f"KMLP_SLURM_KEEP_STATE=1: configs and logs left in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


def _job_stats(stdout: str) -> collections.Counter:
    """Rule -> job count from the "Job stats" table Snakemake prints."""
    m = re.search(r"^job\s+count\n[-\s]+\n(.*?)^total\s+(\d+)", stdout, re.M | re.S)
    assert m, f"no job stats table in:\n{stdout[-3000:]}"
    stats = collections.Counter()
    for line in m.group(1).splitlines():
        name, count = line.split()
        stats[name] = int(count)
    assert sum(stats.values()) == int(m.group(2))
    return stats


def _executed(stdout: str) -> tuple[collections.Counter, collections.Counter]:
    """(remote, local) rule -> job count from a run's log: a job sent to the
    executor prints as "rule NAME:", one run in the main process as
    "localrule NAME:" (checkpoints likewise)."""
    remote = collections.Counter(re.findall(r"^(?:rule|checkpoint) (\w+):$", stdout, re.M))
    local = collections.Counter(re.findall(r"^local(?:rule|checkpoint) (\w+):$", stdout, re.M))
    return remote, local


def _sacct_jobs(project: Path, env: dict[str, str]) -> list[dict[str, str]]:
    fields = ["JobID", "JobName", "State", "ExitCode", "WorkDir", "Comment", "Elapsed"]
    proc = subprocess.run(
        ["sacct", "-a", "-X", "-n", "-P", "-S", "now-1days", "-o", ",".join(fields)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [dict(zip(fields, line.split("|"), strict=False)) for line in proc.stdout.splitlines()]
    return [r for r in rows if Path(r["WorkDir"]) == project]


def test_slurm_run_matches_local_run(slurm_cluster, tmp_path):
    # Both runs happen at the same absolute path (tmp_path/run/project), one
    # after the other, so outputs that record their own path still compare
    # equal; the local run's copy is moved aside to tmp_path/local first.
    env_local = _venv_env()
    env_slurm = _venv_env(slurm_cluster["env"])

    local = make_project(tmp_path / "run")
    sources = _files(local)
    t0 = time.monotonic()
    _snakemake(["--cores", "2"], local, env_local, timeout=1800)
    t_local = time.monotonic() - t0
    (tmp_path / "run").rename(tmp_path / "local")
    local = tmp_path / "local" / local.name

    remote = make_project(tmp_path / "run")
    assert _files(remote) == sources, "make_project is not deterministic"

    dry = _snakemake(["--profile", str(SLURM_PROFILE), "--dry-run"], remote, env_slurm, timeout=300)
    planned = _job_stats(dry.stdout + dry.stderr)

    t0 = time.monotonic()
    run = _snakemake(
        ["--profile", str(SLURM_PROFILE), *SLURM_TEST_OPTIONS], remote, env_slurm, timeout=SLURM_RUN_TIMEOUT
    )
    t_slurm = time.monotonic() - t0
    if (remote / "workflow" / "profiles" / "default").is_dir():
        # Snakemake loads the workflow profile next to --profile, not instead
        assert "workflow specific profile" in run.stdout + run.stderr

    # (1) same outputs, bit for bit
    def outputs(root: Path) -> set[str]:
        return {f for f in _files(root) - sources if not any(fnmatch.fnmatch(f, pat) for pat in NONDETERMINISTIC)}

    out_local, out_slurm = outputs(local), outputs(remote)
    assert out_local, "local run produced no files"
    assert out_local == out_slurm, (
        f"only local: {sorted(out_local - out_slurm)}; only slurm: {sorted(out_slurm - out_local)}"
    )
    differ = [f for f in sorted(out_local) if (local / f).read_bytes() != (remote / f).read_bytes()]
    assert not differ, f"outputs differ between local and SLURM run: {differ}"
    record = "docs/reproduction.md"
    assert workflow_project.without_times((local / record).read_text()) == workflow_project.without_times(
        (remote / record).read_text()
    )

    # (2) every job ran as a SLURM job and completed
    jobs = _sacct_jobs(remote, env_slurm)
    print("\nsacct:")
    for j in jobs:
        print(f"  {j['JobID']:>6} {j['State']:<10} {j['Elapsed']} {j['Comment']}")
    not_completed = [j for j in jobs if j["State"] != "COMPLETED"]
    assert not not_completed, f"SLURM jobs not COMPLETED: {not_completed}"
    # the plugin's --comment is "rule_<name>[_wildcards_...]"
    rule_of = [re.match(r"rule_(.+?)(?:_wildcards_.*)?$", j["Comment"]) for j in jobs]
    assert all(rule_of), f"sacct Comment without the plugin's rule_<name>: {jobs}"
    in_sacct = collections.Counter(m.group(1) for m in rule_of)
    submitted, ran_locally = _executed(run.stdout + run.stderr)
    assert set(ran_locally) <= LOCAL_RULES, f"jobs run outside SLURM: {dict(ran_locally)}; allowed: {LOCAL_RULES}"
    assert submitted + ran_locally == planned, (
        f"executed {dict(submitted)} + local {dict(ran_locally)} != planned {dict(planned)}"
    )
    assert in_sacct == submitted, f"sacct jobs per rule {dict(in_sacct)} != submitted {dict(submitted)}"

    # (3) timings
    print(
        f"\nSLURM bring-up {slurm_cluster['bringup']:.1f} s; local run {t_local:.1f} s;"
        f" SLURM run {t_slurm:.1f} s for {sum(submitted.values())} SLURM jobs"
        f" ({len(out_local)} output files identical)",
        flush=True,
    )
