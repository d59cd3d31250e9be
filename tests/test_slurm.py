"""End-to-end tests of profiles/slurm on a real single-node SLURM cluster.

Skipped unless KMLP_SLURM=1.  Needs root and Debian 12 (tests/slurm/cluster.sh installs
munge, slurm and mariadb with apt-get when they are missing).  The cluster has a partition
that is not the default one ("study"), open to one account only, and enforces
associations; the profile is used with that partition and account written into a copy of
it, exactly where its comments tell a user to.

The project is the real workflow on the tiny configuration (.test/config) with more seeds
and longer runs, so that the training job carries 33 runs.  It is run once locally
(`snakemake --cores 2`, the reference), then on SLURM in fresh copies at the same path:

1. a wrong account, and none: refused within seconds with sbatch's message, no job left;
2. a whole run: outputs byte-identical to the local run; `sacct` shows the designed jobs
   (one per pass of runs, one for the data and checks, one for diagnose) and nothing
   else, each COMPLETED in the study partition under the study account, MaxRSS below
   ReqMem, Elapsed below Timelimit, and ReqCPUS equal to the threads its workflow jobs
   used at once (as the Snakemake inside it logged them); the runs of each job of
   training runs overlapped in time, two at a time on its two CPUs (measured from their
   log files' mtimes and benchmarks);
3. the running training job cancelled with scancel: resubmitted by the profile's retry,
   the study completes with every output byte-identical to the local run;
4. snakemake interrupted with SIGINT: no job of ours left in squeue, no half-written run
   taken as done, and the next invocation plans and redoes only the missing runs (and
   any left marked incomplete).
"""

from __future__ import annotations

import base64
import collections
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

import workflow_project

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm"

# The tiny config with ten seeds and 600 steps a half cycle (lambda search too): 33 runs
# in the training job (about 10 s on the test node's 2 CPUs), long enough to cancel or
# interrupt it halfway, and runs long enough (about 0.5 s) to see them overlap.
TINY = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
OVERRIDES = {
    "seeds": list(range(1, 11)),
    "training": {**TINY["training"], "n_s": 600},
    "lambda_search": {**TINY["lambda_search"], "n_s": 600},
}
# groups of training runs (workflow/rules/train.smk): their runs must overlap in time
RUN_GROUPS = {"train", "lsearch-coarse", "lsearch-fine", "lsearch-confirm", "lsearch-final"}

# The test node's CPUs: the profile's `cores` (CPUs per job) for the test.
CORES = 2
# Options added to the profile for quick runs on an idle test cluster.
FAST = ["--cores", str(CORES), "--seconds-between-status-checks", "2", "--latency-wait", "5"]

# Files produced by a run that may legitimately differ between runs
# (glob patterns relative to the project root; .snakemake/ is always skipped).
NONDETERMINISTIC = [
    "results/logs/*",
    "results/benchmarks/*",
    # quotes the jobs' benchmark times; compared below without that section
    "docs/reproduction.md",
]

# Rules that run in the main Snakemake process (`localrules:` in workflow/rules, and
# `all`); every other job goes to SLURM.
LOCAL_RULES = {
    "all",
    "download",
    "gradtable",
    "figure",
    "table",
    "lambda_table",
    "summary",
    "report_tex",
    "report_pdf",
    "record",
    "lambda_grid",
    "lambda_coarse",
    "lambda_fine",
    "lambda_best",
}
# The SLURM jobs of a whole run, by job name (group or rule): each pass of runs, the
# data sets with the gradient checks, and diagnose.
DESIGNED_JOBS = collections.Counter(
    ["setup", "train", "lsearch-coarse", "lsearch-fine", "lsearch-confirm", "lsearch-final", "diagnose"]
)
# threads of the rules whose jobs go to SLURM (workflow/rules/*.smk; train: set-threads 1)
THREADS = {"prepare": 1, "gradcheck": 1, "train": 1, "diagnose": 2}

# Upper bound for one SLURM run (a broken status query would make Snakemake wait).
RUN_TIMEOUT = 600

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("KMLP_SLURM") != "1",
        reason="set KMLP_SLURM=1 (needs root, Debian 12) to bring up a real SLURM cluster: profiles/slurm (its job "
        "count, sacct requests, partition and account, retries after scancel, Ctrl-C) is not checked here",
    ),
]


# ------------------------------------------------------------------ helpers --


def _venv_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for snakemake: this interpreter's bin dir first on PATH.

    The SLURM jobs inherit it (sbatch --export=ALL), so `python` and `kmlp` inside jobs
    are this interpreter's.
    """
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("SNAKEMAKE_PROFILE", None)
    env.update(extra or {})
    return env


def _snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def _snakemake(args: list[str], cwd: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT, check: bool = True):
    cmd = _snakemake_cmd(*args)
    print(f"\n$ (cd {cwd} && {' '.join(cmd)})", flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        _dump(proc.stdout + proc.stderr, cwd)
        raise AssertionError(f"snakemake failed with exit code {proc.returncode}")
    return proc


def _dump(output: str, cwd: Path) -> None:
    print(output[-20000:])
    for log in sorted((cwd / ".snakemake" / "slurm_logs").rglob("*.log")):
        print(f"----- {log} -----\n{log.read_text(errors='replace')[-3000:]}")


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


def _profile(dest: Path, partition: str, account: str) -> Path:
    """A copy of profiles/slurm with the partition and account written where its comments
    say: the lines `slurm_partition: ""` and `slurm_account: ""` under default-resources."""
    shutil.copytree(SLURM_PROFILE, dest)
    config = dest / "config.yaml"
    text = config.read_text()
    for key, value in (("slurm_partition", partition), ("slurm_account", account)):
        line = f'  {key}: ""\n'
        assert text.count(line) == 1, f"profiles/slurm/config.yaml has no single line {line!r}"
        text = text.replace(line, f'  {key}: "{value}"\n')
    config.write_text(text)
    return dest


def _squeue_ours(project: Path, env: dict[str, str]) -> list[str]:
    """squeue lines (id, name, state) of jobs whose working directory is the project."""
    out = subprocess.run(
        ["squeue", "--noheader", "--format=%i|%j|%T|%Z"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    return [line for line in out.splitlines() if line.split("|")[-1] == str(project)]


SACCT_FIELDS = ["JobID", "JobName", "State", "Partition", "Account", "ReqCPUS", "ReqMem", "Timelimit", "Elapsed"]


def _sacct(fields: list[str], env: dict[str, str]) -> list[dict[str, str]]:
    proc = subprocess.run(
        ["sacct", "--allusers", "--noheader", "--parsable2", "--starttime=now-1days", f"--format={','.join(fields)}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [dict(zip(fields, line.split("|"), strict=True)) for line in proc.stdout.splitlines()]


def _last_jobid(env: dict[str, str]) -> int:
    """The newest SLURM job id so far (0: none): a test's jobs are the ones after it."""
    return max((int(r["JobID"].split(".")[0]) for r in _sacct(["JobID"], env)), default=0)


def _sacct_jobs(project: Path, env: dict[str, str], after: int) -> list[dict]:
    """The SLURM jobs that ran in the project since job id `after`, with MaxRSS (the
    largest of their steps')."""
    fields = [*SACCT_FIELDS, "MaxRSS", "WorkDir"]
    jobs: dict[str, dict] = {}
    for row in _sacct(fields, env):
        job, _, step = row["JobID"].partition(".")
        if not step:
            if Path(row["WorkDir"]) == project and int(job) > after:
                jobs[job] = {**row, "MaxRSS_KB": 0}
        elif job in jobs:
            jobs[job]["MaxRSS_KB"] = max(jobs[job]["MaxRSS_KB"], _kb(row["MaxRSS"]))
    return list(jobs.values())


def _kb(size: str) -> int:
    """sacct sizes: 1234K, 816M, 2G (no suffix: bytes)."""
    m = re.fullmatch(r"([\d.]+)([KMGT]?)n?", size.strip())
    if not m:
        return 0
    scale = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}[m.group(2)]
    return int(float(m.group(1)) * scale)


def _seconds(duration: str) -> int:
    """sacct durations: [D-]HH:MM:SS or MM:SS."""
    days, _, rest = duration.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s


def _slurm_log(project: Path, job: dict) -> str:
    """A SLURM job's log: .snakemake/slurm_logs/<name>/<id>.log (profiles/slurm/sbatch-submit.py)."""
    return (project / ".snakemake" / "slurm_logs" / job["JobName"] / f"{job['JobID']}.log").read_text()


def _members(project: Path, job: dict) -> list[tuple[str, dict[str, str]]]:
    """The workflow jobs a SLURM job ran: the --target-jobs of the Snakemake inside it."""
    m = re.search(r"--target-jobs (.*?) --allowed-rules", _slurm_log(project, job))
    assert m, f"no --target-jobs in the log of job {job['JobID']}"
    members = []
    for spec in m.group(1).split():
        rule, _, wildcards = spec.strip("'").partition(":")
        members.append((rule, dict(kv.split("=", 1) for kv in wildcards.split(",") if kv)))
    return members


def _paths(rule: str, wc: dict[str, str]) -> tuple[str, str]:
    """(log, benchmark) of a workflow job, as the rules name them."""
    if rule == "train":
        name = f"train/{wc['experiment']}/seed{wc['seed']}"
    elif rule == "gradcheck":
        name = f"gradcheck/{wc['check']}"
    elif rule == "prepare":
        name = f"prepare{wc['variant']}"
    else:
        name = rule
    return f"results/logs/{name}.log", f"results/benchmarks/{name}.tsv"


def _interval(project: Path, rule: str, wc: dict[str, str]) -> tuple[float, float]:
    """When a workflow job ran: its log file is closed when its command ends (Snakemake
    touches outputs and benchmarks after a job, never logs), and it started its
    benchmark's wall time before."""
    log, bench = _paths(rule, wc)
    end = (project / log).stat().st_mtime
    header, values = (project / bench).read_text().splitlines()[:2]
    seconds = float(dict(zip(header.split("\t"), values.split("\t"), strict=True))["s"])
    return end - seconds, end


def _peak_threads_logged(log: str) -> int:
    """Most threads in use at once as the Snakemake inside a SLURM job ran its jobs: in
    the order of its log, a job holds its threads from its "localrule NAME:" block (with
    "jobid: N" and, above 1, "threads: T") to its "Finished jobid: N" line."""
    running: dict[str, int] = {}
    peak = 0
    for block in re.split(r"^(?=localrule \w+:$|Finished jobid: )", log, flags=re.M):
        if block.startswith("localrule "):
            jobid = re.search(r"^    jobid: (\d+)$", block, re.M).group(1)
            threads = re.search(r"^    threads: (\d+)$", block, re.M)
            running[jobid] = int(threads.group(1)) if threads else 1
            peak = max(peak, sum(running.values()))
        elif block.startswith("Finished jobid: "):
            running.pop(re.match(r"Finished jobid: (\d+)", block).group(1))
    return peak


def _peak_threads(intervals: list[tuple[float, float, int]], margin: float = 0.1) -> int:
    """Most threads in use at once; each interval shrunk by `margin` seconds at both ends,
    so that a run starting as another ends does not count as overlapping it."""
    events = []
    for start, end, threads in intervals:
        if end - start > 2 * margin:
            events += [(start + margin, threads), (end - margin, -threads)]
    peak = level = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        level += delta
        peak = max(peak, level)
    return peak


def _outputs(root: Path, sources: set[str]) -> set[str]:
    return {f for f in _files(root) - sources if not any(fnmatch.fnmatch(f, pat) for pat in NONDETERMINISTIC)}


def _assert_same_outputs(local: Path, remote: Path, sources: set[str]) -> int:
    out_local, out_remote = _outputs(local, sources), _outputs(remote, sources)
    assert out_local, "local run produced no files"
    assert out_local == out_remote, (
        f"only local: {sorted(out_local - out_remote)}; only slurm: {sorted(out_remote - out_local)}"
    )
    differ = [f for f in sorted(out_local) if (local / f).read_bytes() != (remote / f).read_bytes()]
    assert not differ, f"outputs differ between local and SLURM run: {differ}"
    record = "docs/reproduction.md"
    assert workflow_project.without_times((local / record).read_text()) == workflow_project.without_times(
        (remote / record).read_text()
    )
    return len(out_local)


def _marked_incomplete(project: Path, path: str) -> bool:
    """Whether Snakemake marked an output incomplete (.snakemake/incomplete/<base64 path>)."""
    return (project / ".snakemake" / "incomplete" / base64.urlsafe_b64encode(path.encode()).decode()).exists()


def _stray_snakemakes(project: Path) -> list[str]:
    """Snakemake processes still running inside a SLURM job of the project (a cancelled
    job's processes must all be gone with it)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--target-jobs" in argv and str(project / "workflow" / "Snakefile").encode() in argv:
            found.append(f"{proc.name}: {b' '.join(argv)[:200].decode(errors='replace')}")
    return found


def _run_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "results" / "runs").glob("*/*.h5")}


def _start(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = _snakemake_cmd(*args)
    print(f"\n$ (cd {cwd} && {' '.join(cmd)}) > {log}", flush=True)
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_for_training(proc: subprocess.Popen, project: Path, env: dict[str, str], log: Path, runs: int = 3) -> str:
    """The SLURM id of the running training job, once `runs` of its runs are written."""
    main = set(TINY["experiments"])
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        jobs = [line.split("|") for line in _squeue_ours(project, env)]
        running = [job[0] for job in jobs if job[1:3] == ["train", "RUNNING"]]
        done = [f for f in _run_files(project) if f.split("/")[2] in main]
        if running and len(done) >= runs:
            return running[0]
        if proc.poll() is not None:
            _dump(log.read_text(), project)
            raise AssertionError(f"snakemake ended ({proc.returncode}) before its training job was caught running")
        time.sleep(0.1)
    raise AssertionError("the training job did not start")


# ----------------------------------------------------------------- fixtures --


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node SLURM cluster: its env, partition and account."""
    # munged wants every directory above its socket world-searchable, and the socket
    # path short: not under pytest's 0700 tmp dirs.  On tmpfs when possible: MariaDB and
    # slurmdbd fsync a lot (bring-up ~3 s vs ~10 s).
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
        info = dict(re.findall(r"^(\w+)=(\S+)$", proc.stdout, re.M))
        bringup = time.monotonic() - t0
        print(f"SLURM cluster up: {bringup:.1f} s including package check, daemons {info['BRINGUP_SECONDS']} s")
        yield {
            "state": state,
            "env": _venv_env(_cluster_env(state)),
            "partition": info["STUDY_PARTITION"],
            "account": info["STUDY_ACCOUNT"],
            "bringup": bringup,
        }
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


class Projects:
    """Fresh copies of the project, all at one path (outputs that record their own path
    then compare equal), and the local reference run's copy."""

    def __init__(self, base: Path):
        self.base = base
        self.path = base / "run" / "project"
        self.count = 0
        self.local = self.fresh()
        self.sources = _files(self.local)
        t0 = time.monotonic()
        _snakemake(["--cores", str(CORES)], self.local, _venv_env())
        self.local_seconds = time.monotonic() - t0
        self.local = self._move_aside("local")

    def _move_aside(self, name: str) -> Path:
        dest = self.base / name
        (self.base / "run").rename(dest)
        return dest / self.path.name

    def fresh(self) -> Path:
        """A new copy at self.path (the previous one moved aside)."""
        if self.path.parent.exists():
            self.count += 1
            self._move_aside(f"slurm-{self.count}")
        root = workflow_project.make_project(self.path, **OVERRIDES)
        shutil.copytree(REPO / "workflow", root / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
        return root


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    return Projects(tmp_path_factory.mktemp("slurm"))


@pytest.fixture(scope="module")
def profile(slurm_cluster, tmp_path_factory):
    """profiles/slurm with the cluster's study partition and account filled in."""
    return _profile(tmp_path_factory.mktemp("profile") / "slurm", slurm_cluster["partition"], slurm_cluster["account"])


# -------------------------------------------------------------------- tests --


@pytest.mark.parametrize("account", ["no-such-project", ""], ids=["wrong-account", "no-account"])
def test_job_without_a_valid_account_is_refused_at_once(slurm_cluster, projects, tmp_path, account):
    env = slurm_cluster["env"]
    project = projects.fresh()
    bad = _profile(tmp_path / "slurm", slurm_cluster["partition"], account)
    first = _last_jobid(env)
    t0 = time.monotonic()
    proc = _snakemake(["--profile", str(bad), *FAST], project, env, timeout=120, check=False)
    seconds = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    print(f"account {account!r}: snakemake exit status {proc.returncode} after {seconds:.1f} s")
    assert proc.returncode != 0, "a job without a valid account ran"
    assert "Invalid account or account/partition combination specified" in out, out[-5000:]
    assert seconds < 60, f"took {seconds:.0f} s to fail"
    assert not _squeue_ours(project, env)
    assert not _sacct_jobs(project, env, first), "a job was accepted"


def test_slurm_run_matches_local_run(slurm_cluster, projects, profile):
    env = slurm_cluster["env"]
    project = projects.fresh()
    dry = _snakemake(["--profile", str(profile), *FAST, "--dry-run"], project, env, timeout=300)
    planned = collections.Counter(re.findall(r"Group job (\S+) \(jobs in", dry.stdout))
    planned.update(r for r in re.findall(r"^rule (\w+):$", dry.stdout, re.M) if r not in LOCAL_RULES)
    assert planned == DESIGNED_JOBS, f"the dry run plans {dict(planned)} SLURM jobs"

    first = _last_jobid(env)
    t0 = time.monotonic()
    run = _snakemake(["--profile", str(profile), *FAST], project, env)
    seconds = time.monotonic() - t0
    out = run.stdout + run.stderr
    assert "workflow specific profile" in out  # Snakemake loads workflow/profiles/default too
    ran_locally = set(re.findall(r"^local(?:rule|checkpoint) (\w+):$", out, re.M))
    assert ran_locally and ran_locally <= LOCAL_RULES, f"ran locally: {ran_locally}"
    n_outputs = _assert_same_outputs(projects.local, project, projects.sources)

    jobs = _sacct_jobs(project, env, first)
    print(
        "\nsacct; MaxRSS: its largest step's; jobs: workflow jobs it ran; used: most threads they used at once"
        " (as logged by the Snakemake inside it); measured: the same from their log files' mtimes and benchmarks"
    )
    print("  " + " ".join(f"{f:>14}" for f in [*SACCT_FIELDS, "MaxRSS", "jobs", "used", "measured"]))
    problems = []
    measured = {}
    for job in jobs:
        members = _members(project, job)
        peak = _peak_threads_logged(_slurm_log(project, job))
        intervals = [(*_interval(project, rule, wc), THREADS[rule]) for rule, wc in members]
        # the shortest jobs (0.2 s: data set, checks) are too short to be timed this way
        if min(end - start for start, end, _ in intervals) > 0.3:
            measured[job["JobName"]] = _peak_threads(intervals)
        values = [job[f] for f in SACCT_FIELDS]
        values += [f"{job['MaxRSS_KB']}K", len(members), peak, measured.get(job["JobName"], "-")]
        print("  " + " ".join(f"{v:>14}" for v in values))
        name = f"job {job['JobID']} ({job['JobName']})"
        if job["State"] != "COMPLETED":
            problems.append(f"{name}: state {job['State']}")
        if (job["Partition"], job["Account"]) != (slurm_cluster["partition"], slurm_cluster["account"]):
            problems.append(f"{name}: partition {job['Partition']}, account {job['Account']}")
        if not 0 < job["MaxRSS_KB"] < _kb(job["ReqMem"]):
            problems.append(f"{name}: MaxRSS {job['MaxRSS_KB']}K, ReqMem {job['ReqMem']}")
        if not _seconds(job["Elapsed"]) < _seconds(job["Timelimit"]):
            problems.append(f"{name}: Elapsed {job['Elapsed']}, Timelimit {job['Timelimit']}")
        if int(job["ReqCPUS"]) != peak:
            problems.append(f"{name}: ReqCPUS {job['ReqCPUS']}, but its runs used {peak} threads at once")
    assert not problems, "\n".join(problems)
    names = collections.Counter(job["JobName"] for job in jobs)
    assert names == DESIGNED_JOBS, f"SLURM jobs {dict(names)}, designed {dict(DESIGNED_JOBS)}"
    # the runs of each group of training runs overlapped in time, as many at once as the
    # job has CPUs
    for job in jobs:
        if job["JobName"] in RUN_GROUPS:
            assert int(job["ReqCPUS"]) == CORES, job
            assert measured.get(job["JobName"]) == CORES, f"runs of {job['JobName']} at once: {measured}"

    print(
        f"\nSLURM bring-up {slurm_cluster['bringup']:.1f} s; local run {projects.local_seconds:.1f} s;"
        f" SLURM run {seconds:.1f} s as {len(jobs)} SLURM jobs ({n_outputs} output files identical)",
        flush=True,
    )


def test_cancelled_job_is_resubmitted_and_study_completes(slurm_cluster, projects, profile, tmp_path):
    env = slurm_cluster["env"]
    project = projects.fresh()
    log = tmp_path / "snakemake.log"
    first = _last_jobid(env)
    t0 = time.monotonic()
    proc = _start(["--profile", str(profile), *FAST], project, env, log)
    try:
        victim = _wait_for_training(proc, project, env, log)
        done = len(_run_files(project))
        subprocess.run(["scancel", victim], env=env, check=True, timeout=60)
        print(f"scancel {victim} (the training job, {done} run files written) at {time.monotonic() - t0:.1f} s")
        rc = proc.wait(RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    seconds = time.monotonic() - t0
    if rc != 0:
        _dump(log.read_text(), project)
    assert rc == 0, f"snakemake failed ({rc}) after the cancelled job"
    out = log.read_text()
    assert "Trying to restart job" in out
    assert not _stray_snakemakes(project), _stray_snakemakes(project)

    jobs = _sacct_jobs(project, env, first)
    states = collections.defaultdict(list)
    for job in sorted(jobs, key=lambda j: int(j["JobID"])):
        states[job["JobName"]].append(job["State"].split()[0])
    print(f"sacct states: {dict(states)}")
    assert states["train"] == ["CANCELLED", "COMPLETED"], states["train"]
    others = {name: s for name, s in states.items() if name != "train"}
    assert others == {name: ["COMPLETED"] for name in DESIGNED_JOBS if name != "train"}, others
    n_outputs = _assert_same_outputs(projects.local, project, projects.sources)
    print(f"cancelled and resubmitted: study done in {seconds:.1f} s, {n_outputs} output files identical")


def test_interrupted_run_leaves_no_job_and_resumes(slurm_cluster, projects, profile, tmp_path):
    env = slurm_cluster["env"]
    project = projects.fresh()
    log = tmp_path / "snakemake.log"
    first = _last_jobid(env)
    proc = _start(["--profile", str(profile), *FAST], project, env, log)
    try:
        victim = _wait_for_training(proc, project, env, log)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped = time.monotonic() - t0
    print(f"SIGINT: snakemake exited with {rc} after {stopped:.1f} s")
    assert rc != 0
    # Snakemake cancels its jobs before it exits; give squeue a few seconds to forget
    # them (a cancelled job shows as COMPLETING briefly)
    deadline = time.monotonic() + 10
    while (left := _squeue_ours(project, env)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"jobs of the interrupted run still in squeue: {left}"
    assert not _stray_snakemakes(project), _stray_snakemakes(project)
    states = {job["JobID"]: job["State"].split()[0] for job in _sacct_jobs(project, env, first)}
    print(f"sacct states of the interrupted run: {states}")
    assert states[victim] == "CANCELLED", states
    assert set(states.values()) <= {"COMPLETED", "CANCELLED"}, states

    # the next invocation plans every missing run and every run left marked incomplete
    # (a run killed while writing: SLURM kills a cancelled job's processes), nothing else
    kept = _run_files(project)
    dry = _snakemake(["--profile", str(profile), *FAST, "--dry-run"], project, env, timeout=300)
    planned = set(re.findall(r"^\s+output: (results/runs/\S+\.h5)", dry.stdout, re.M))
    missing = _run_files(projects.local) - kept
    assert missing <= planned, f"missing, not planned: {sorted(missing - planned)}"
    unmarked = [f for f in sorted(planned & kept) if not _marked_incomplete(project, f)]
    assert not unmarked, f"finished runs planned again: {unmarked}"
    # nothing half-written is taken as done: every run kept is the local run's, byte for byte
    done = kept - planned
    assert done, "no run finished before the interrupt"
    broken = [f for f in sorted(done) if (project / f).read_bytes() != (projects.local / f).read_bytes()]
    assert not broken, f"run files differ from the local run after the interrupt: {broken}"
    stamps = {f: (project / f).stat().st_mtime_ns for f in done}

    _snakemake(["--profile", str(profile), *FAST], project, env)
    touched = [f for f, ns in stamps.items() if (project / f).stat().st_mtime_ns != ns]
    assert not touched, f"runs done before the interrupt were redone: {touched}"
    n_outputs = _assert_same_outputs(projects.local, project, projects.sources)
    print(
        f"interrupted with {len(done)} of {len(_run_files(projects.local))} runs done"
        f" ({len(planned & kept)} more left marked incomplete); the next invocation did the other"
        f" {len(planned)}; {n_outputs} output files identical"
    )
