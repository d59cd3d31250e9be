#!/usr/bin/env python3
"""A target of the real study on one node and on two: wall time, SLURM's accounting, the run files compared.

Issue 32, item 2: the 40 runs of figures 1-4 on 2 nodes x 1 CPU must take at most 0.55
times one node, with the chunks sized to the cluster (`cluster.cpus: 2`, the default).
Run from the repository root (the project: the offline archive is `../shared/data`, as
config/rebuild-archive.yaml says), against a test cluster started with
tests/slurm/cluster.sh, after `source STATE_DIR/env`, with the data set and the gradient
checks made first (not timed):

    snakemake --cores 2 --configfile config/rebuild-archive.yaml -- results/tables/gradcheck.csv
    python3 tests/slurm/two_nodes.py --out tests/slurm/two_nodes.json

For each partition in turn (`single`: node1 only; `study`: both nodes), from an empty
results/runs (it refuses to start when results/runs holds run files; the first timing's are
copied aside, then removed, with the targets' figures): `snakemake
--profile COPY --configfile config/rebuild-archive.yaml -- TARGETS` through a copy of
profiles/slurm with only its partition and account lines set, timed from start to exit;
sacct's line of every job it submitted (node, Start, End, Elapsed); the load average
before and after.  Then the run files of the two are compared byte for byte.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_test import jobs_of, last_jobid, machine, seconds, sh  # noqa: E402

PROFILE = REPO / "profiles" / "slurm"
LABELS = ("one node", "two nodes")
TARGETS = [f"results/figures/figure{k}.pdf" for k in (1, 2, 3, 4)]


def when(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp).timestamp()


def profile_copy(dest: Path, partition: str, account: str) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PROFILE, dest)
    text = (dest / "config.yaml").read_text()
    for key, value in (("slurm_partition", partition), ("slurm_account", account)):
        line = f'  {key}: ""\n'
        assert text.count(line) == 1, line
        text = text.replace(line, f'  {key}: "{value}"\n')
    (dest / "config.yaml").write_text(text)
    return dest


def one(label: str, partition: str, args, project: Path, aside: Path, env: dict) -> dict:
    results = project / "results"
    for old in [results / "runs", results / "logs" / "train", results / "benchmarks" / "train"]:
        if old.exists():
            shutil.rmtree(old)
    for target in TARGETS:
        for ext in (".pdf", ".png"):
            Path(project / target).with_suffix(ext).unlink(missing_ok=True)
    profile = profile_copy(aside / f"profile-{partition}", partition, args.account)
    configs = [a for c in args.configfile for a in ("--configfile", c)]
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(profile), *configs, "--", *args.targets]
    log = aside / f"{label}.log"
    first = last_jobid()
    load_before = os.getloadavg()
    print(f"{label}: $ {' '.join(cmd)} > {log}", flush=True)
    t0 = time.time()
    with log.open("w") as out:
        rc = subprocess.run(cmd, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    load_after = os.getloadavg()
    assert rc == 0, f"snakemake failed ({rc}): {log}"
    jobs = jobs_of(project, first)
    elapsed = sum(seconds(j["Elapsed"]) for j in jobs)
    makespan = max(when(j["End"]) for j in jobs) - min(when(j["Start"]) for j in jobs)
    runs = sorted(p.relative_to(results / "runs").as_posix() for p in (results / "runs").glob("*/*.h5"))
    shutil.copytree(results / "runs", aside / label / "runs")
    row = {
        "label": label,
        "partition": partition,
        "command": f"snakemake --profile COPY {' '.join(configs)} -- {' '.join(args.targets)}",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "wall_s": round(wall, 1),
        "runs": len(runs),
        "jobs": [{k: j[k] for k in ("JobID", "JobName", "State", "NodeList", "Start", "End", "Elapsed")} for j in jobs],
        "jobs_elapsed_s": elapsed,
        "makespan_s": makespan,
        "makespan_over_elapsed": round(makespan / elapsed, 3),
    }
    print(json.dumps({k: v for k, v in row.items() if k != "jobs"}), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--configfile", nargs="+", default=["config/rebuild-archive.yaml"])
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--partitions", nargs=2, default=["single", "study"], metavar=("ONE_NODE", "TWO_NODES"))
    parser.add_argument("--account", default="kmlp-project")
    parser.add_argument("--aside", type=Path, default=Path("/tmp/kmlp-two-nodes"), help="run files and logs")
    args = parser.parse_args()
    project = REPO
    if any((project / "results" / "runs").glob("*/*.h5")):
        sys.exit("results/runs holds run files: move them aside first (each timing starts from an empty results/runs)")
    if args.aside.exists():
        shutil.rmtree(args.aside)
    args.aside.mkdir(parents=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("SNAKEMAKE_PROFILE", None)
    version = sh(["sinfo", "--version"]).strip()
    rows = [one(label, p, args, project, args.aside, env) for label, p in zip(LABELS, args.partitions, strict=True)]
    a, b = (args.aside / label / "runs" for label in LABELS)
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.h5"))
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*.h5"))
    differ = [f for f in files_a if (a / f).read_bytes() != (b / f).read_bytes()]
    identical = files_a == files_b and not differ
    one_node, two_nodes = rows
    result = {
        "what": __doc__.splitlines()[0],
        "command": "python3 tests/slurm/two_nodes.py " + " ".join(sys.argv[1:]),
        "profile": "profiles/slurm, slurm_partition and slurm_account set (kmlp-project)",
        "config": "config/config.yaml + " + " + ".join(args.configfile) + " (cluster.cpus: 2, the default)",
        "cluster": f"tests/slurm/cluster.sh, {version}, 2 nodes of 1 CPU; 'single': node1 only",
        "machine": machine(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "runs": [one_node, two_nodes],
        "wall_ratio": round(two_nodes["wall_s"] / one_node["wall_s"], 3),
        "two_nodes_makespan_over_elapsed": two_nodes["makespan_over_elapsed"],
        "run_files_compared": len(files_a),
        "run_files_identical": identical,
        "run_files_differ": differ,
    }
    print(
        f"one node {one_node['wall_s']} s, two nodes {two_nodes['wall_s']} s: {result['wall_ratio']} x; accounting "
        f"{result['two_nodes_makespan_over_elapsed']}; {len(files_a)} run files identical: {identical}"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
