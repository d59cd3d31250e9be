"""What a cluster run is made of, without a cluster: the cost model of a run, the chunks
of runs that share a SLURM job, what each job asks for and which go first
(kmlp.study.cluster, and the priorities as Snakemake plans them), the fit of the model's
rates (`kmlp cost-fit`), and the scripts of profiles/slurm (the request a job script
becomes, a job's name, the one-line report of a job that failed, the jobs cancelled when
Snakemake exits). tests/test_slurm.py runs them on a real cluster."""

from __future__ import annotations

import collections
import csv
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import yaml

from kmlp.study import Study, StudyError, cluster, cost, load
from kmlp.study.cluster import Requests

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "config.yaml"
SEARCH = REPO / "config" / "rebuild-archive.yaml"


def _script(name: str):
    """A script of profiles/slurm as a module (its folder on the path, as when it runs)."""
    if str(REPO / "profiles" / "slurm") not in sys.path:
        sys.path.insert(0, str(REPO / "profiles" / "slurm"))
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), REPO / "profiles" / "slurm" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study() -> Study:
    return load(CONFIG, SEARCH)


# -- the cost model -------------------------------------------------------------------


def test_cost_terms_follow_what_a_run_computes(study):
    three, nine = study.settings("3layer-nobn"), study.settings("9layer-nobn")
    sizes = study.sizes("3layer-nobn")
    t3, t9 = cost.terms(three, sizes), cost.terms(nine, sizes)
    # the first layer's product dominates: 3072 x 50 of 3072*50 + 50*50 + 50*10
    assert t3["madds"] == pytest.approx(
        (3 * 9000 * 100 + 21 * (10000 + 5000) + 45000 + 5000 + 10000) * (3072 * 50 + 50 * 50 + 50 * 10)
    )
    assert t9["layer_updates"] == 9000 * 9 and t3["layer_updates"] == 9000 * 3
    # twice the updates, twice the update terms; batch norm doubles the elementwise work
    longer = replace(three, cycles=4)
    assert cost.terms(longer, sizes)["layer_updates"] == 2 * t3["layer_updates"]
    bn = cost.terms(replace(three, batch_norm=True), sizes)
    assert bn["elementwise"] == 2 * t3["elementwise"] and bn["madds"] == t3["madds"]
    assert cost.terms(replace(three, dtype="float64"), sizes)["madds"] == 2 * t3["madds"]
    # a faster cluster: less time
    assert cost.seconds(three, sizes, speed=2.0) == pytest.approx(cost.seconds(three, sizes) / 2)


def test_evaluations_counts_step_zero_every_interval_and_the_end(study):
    s = study.settings("3layer-nobn")  # 9,000 updates, every 450
    assert s.evaluations(45000) == 1 + 20
    assert replace(s, eval_every=0).evaluations(45000) == 1 + 9000 // 450
    assert replace(s, eval_every=7000).evaluations(45000) == 1 + 1 + 1  # 0, 7000 and the last


def test_the_model_predicts_the_reference_runs_within_its_fit():
    """The reference rates give the 3- and 9-layer runs their measured order of time: a
    9-layer run costs more than a 3-layer one, a short-schedule run less."""
    s = load(CONFIG)
    three, nine, short = (s.run_seconds(e) for e in ("3layer-nobn", "9layer-nobn", "sigma-nobn-1e-1-short"))
    assert short < three < nine
    assert 2 < short < three < 60


# -- chunks ---------------------------------------------------------------------------


def test_every_run_is_in_one_chunk_of_its_family(study):
    runs = study.runs(study.experiments)
    assert set(study.chunks) == set(runs) and len(runs) == 501
    for (e, _), chunk in study.chunks.items():
        assert chunk.name.rsplit("-", 1)[0] == study.family(e)
    by_name: dict[str, list] = {}
    for run, chunk in study.chunks.items():
        by_name.setdefault(chunk.name, []).append(run)
    for members in by_name.values():
        chunk = study.chunks[members[0]]
        assert chunk.runs == len(members)
        assert chunk.seconds == pytest.approx(sum(study.run_seconds(e) for e, _ in members))


def test_chunks_hold_about_chunk_minutes_each_and_keep_the_study_order(study):
    per_chunk = 120.0  # cluster.chunk_minutes: 2, on one CPU
    train = [(run, study.run_seconds(run[0])) for run in study.runs(study.config["experiments"])]
    chunks = cost.chunked(train, "train", per_chunk)
    longest = max(s for _, s in train)
    names = [chunks[run].name for run, _ in train]
    assert names == sorted(names), "a chunk's runs are consecutive in the study's order"
    sizes = {c.name: c.seconds for c in chunks.values()}
    total = sum(s for _, s in train)
    assert len(sizes) == round(total / per_chunk)
    assert all(abs(s - total / len(sizes)) <= longest for s in sizes.values()), sizes


def test_chunked_edge_cases():
    runs = [(("a", i), 10.0) for i in range(1, 5)]
    one = cost.chunked(runs, "f", 1000.0)
    assert {c.name for c in one.values()} == {"f-1"} and one[("a", 1)].runs == 4
    each = cost.chunked(runs, "f", 1.0)  # never more chunks than runs
    assert sorted(c.name for c in each.values()) == ["f-1", "f-2", "f-3", "f-4"]
    assert cost.chunked([], "f", 60.0) == {}
    many = cost.chunked([(("a", i), 1.0) for i in range(250)], "f", 1e9)  # one chunk by time
    sizes = collections.Counter(c.name for c in many.values())
    assert len(sizes) == 3 and max(sizes.values()) <= cost.MAX_RUNS == 100  # Snakemake lists 100 outputs
    # whole waves of CPUs: 5 chunks' worth on 2 CPUs is 4 chunks, on 8 CPUs 5 (one wave)
    assert cost.chunk_count(50, 500.0, 100.0, cpus=2) == 4 and cost.chunk_count(50, 500.0, 100.0, cpus=8) == 5
    # a centre's longest job: more chunks, whole waves again
    assert cost.chunk_count(50, 500.0, 1000.0, cpus=2, longest=120.0) == 6
    # runs of very unequal time never crowd more than MAX_RUNS into one share
    crowded = cost.chunked([(("a", 0), 1000.0)] + [(("b", i), 0.01) for i in range(300)], "f", 500.0)
    assert max(collections.Counter(c.name for c in crowded.values()).values()) <= cost.MAX_RUNS


def _config(**cluster) -> dict:
    config = yaml.safe_load(CONFIG.read_text())
    config["cluster"].update(cluster)
    return config


def _train_chunks(study: Study) -> list[cost.Chunk]:
    return list({c.name: c for c in study.chunks.values() if c.name.startswith("train-")}.values())


def test_chunks_follow_the_config():
    """cluster.chunk_minutes, when set, sizes the chunks (4 times the minutes: fewer);
    without it, more CPUs make more chunks."""
    two, eight = (Study(_config(chunk_minutes=m)).check() for m in (2, 8))
    assert len(_train_chunks(eight)) < len(_train_chunks(two)) == 50
    wide = Study(_config(cpus=100)).check()
    assert len(_train_chunks(load(CONFIG))) < len(_train_chunks(wide))


def test_chunks_are_sized_to_the_study_and_the_cpus():
    """The full study on the two CPUs of the test cluster: whole waves of chunks of nearly
    equal predicted time, none so short that a job's start is over 5 % of it, the last job
    ending within 5 % of the work / CPUs; the 40 runs of figures 1-4 alone (a target)
    still spread over both CPUs, at most 0.55 of one CPU's time."""
    study = load(CONFIG)
    chunks = _train_chunks(study)
    seconds = [c.seconds for c in chunks]
    assert len(chunks) % study.config["cluster"]["cpus"] == 0 and len(chunks) >= 4
    assert min(seconds) * cost.START_SHARE >= cost.JOB_START_S and max(seconds) / min(seconds) < 1.15, seconds
    whole = cluster.Plan(study)
    assert whole.makespan() <= 1.05 * (whole.seconds / 2 + cost.JOB_START_S * len(chunks) / 2)
    figures = [e for f in ("figure1", "figure2", "figure3", "figure4") for e in study.figures[f].experiments]
    target = cluster.Plan(study, figures)
    assert target.runs == 40 and len(target.jobs) >= 3
    assert target.makespan() <= 0.55 * target.makespan(1), (target.makespan(), target.makespan(1))


@pytest.mark.parametrize("seeds, most_jobs", [(100, 300), (1000, 1000)])
def test_a_large_study_on_100_cpus_plans_a_few_hundred_jobs(seeds, most_jobs):
    """100 seeds on 100 CPUs (2,710 runs; 2-minute chunks made 298 jobs) and 1,000 (2,900
    jobs): whole waves of 100, chunks of nearly equal time, under 100 runs each, the last
    ending within 15 % of the work / CPUs."""
    config = _config(cpus=100)
    config["seeds"] = list(range(1, seeds + 1))
    study = Study(config).check()
    chunks = _train_chunks(study)
    plan = cluster.Plan(study)
    assert len(plan.jobs) == len(chunks) and len(chunks) % 100 == 0 and 100 <= len(chunks) <= most_jobs
    assert all(c.runs <= cost.MAX_RUNS for c in chunks)
    assert max(c.seconds for c in chunks) / min(c.seconds for c in chunks) < 1.2
    assert plan.makespan() <= 1.15 * plan.seconds / 100, (plan.makespan(), plan.seconds / 100)


def test_no_chunk_asks_for_more_than_the_longest_job():
    """cluster.max_job_minutes: a chunk asks for at most that (time_factor times its
    predicted seconds and the job's start); a config whose runs cannot fit is refused."""
    study = Study(_config(max_job_minutes=5)).check()
    ask = Requests(study)
    longest = max(study.run_seconds(e) for e in study.experiments)
    assert all(c.seconds <= study.longest_chunk() + longest for c in study.chunks.values())
    assert max(ask.job_s(e, s, 1) for e, s in study.chunks) <= 5 * 60 + 1.5 * longest
    assert len(study.chunks) == len(load(CONFIG).chunks)  # every run, in more chunks
    assert len(_train_chunks(study)) > len(_train_chunks(load(CONFIG)))
    with pytest.raises(StudyError, match="cluster.max_job_minutes: 0.5 minutes cannot hold a run"):
        Study(_config(max_job_minutes=0.5)).check()


def test_cluster_plan_command():
    proc = subprocess.run(
        [sys.executable, "-m", "kmlp", "cluster-plan", "--config", str(CONFIG), "--seeds", "100", "--cpus", "100"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.startswith("2710 runs,") and "\ntrain                100 " in proc.stdout, proc.stdout
    assert re.search(r"^100 jobs; predicted [\d,]+ s until the last ends on 100 CPUs", proc.stdout, re.M), proc.stdout
    figures = subprocess.run(
        [sys.executable, "-m", "kmlp", "cluster-plan", "--figures", "figure1", "nope"], capture_output=True, text=True
    )
    assert figures.returncode == 1 and "nope: not a figure or experiment" in figures.stderr


def test_the_plans_the_slurm_readme_shows_are_the_commands_output(capsys, monkeypatch):
    """profiles/slurm/README.md shows `kmlp cluster-plan` commands with their output: each
    is what the command prints now."""
    from kmlp.cli import main

    block = re.search(
        r"```text\n(\$ kmlp cluster-plan.*?)```", (REPO / "profiles" / "slurm" / "README.md").read_text(), re.S
    )
    shown = re.split(r"^\$ (kmlp cluster-plan.*)$", block.group(1), flags=re.M)[1:]
    assert len(shown) == 6, shown  # three commands, each with its output
    monkeypatch.chdir(REPO)
    for command, output in zip(shown[::2], shown[1::2], strict=True):
        assert main(command.split()[1:]) == 0
        assert capsys.readouterr().out.strip() == output.strip(), command


def test_load_overlays_configs_as_snakemake_does(tmp_path):
    top = tmp_path / "top.yaml"
    top.write_text("cluster: {speed: 4.0}\nlambda_search: {enabled: true}\n")
    s = load(CONFIG, top)
    assert s.config["cluster"] == {"cpus": 2, "max_job_minutes": 1440, "time_factor": 1.5, "speed": 4.0}
    assert s.search is not None and s.run_seconds("3layer-nobn") == pytest.approx(
        load(CONFIG).run_seconds("3layer-nobn") / 4
    )


# -- what a job asks for, and which go first (kmlp.study.cluster) ------------------------


@pytest.fixture(scope="module")
def ask(study) -> Requests:
    return Requests(study)


def _with(cluster_keys: dict) -> Requests:
    return Requests(Study(_config(**cluster_keys)).check())


def test_a_run_asks_for_its_predicted_seconds_times_the_time_factor(ask, study):
    factor = study.config["cluster"]["time_factor"]
    for e in ("3layer-nobn", "9layer-bn", "lambda-bn-0.001-val1000", "lsearch-coarse-00", "lsearch-final"):
        assert factor * study.run_seconds(e) <= ask.run_s(e, 1) < factor * study.run_seconds(e) + 1, e
    # twice the factor: twice what a run and the setup ask for; nodes half as fast: twice
    # the work, but not the setup job's own start (the Snakemake inside it)
    plain, slower, wider = Requests(load(CONFIG)), _with({"speed": 0.5}), _with({"time_factor": 3.0})
    for other in (slower, wider):
        assert abs(other.run_s("9layer-bn", 1) - 2 * plain.run_s("9layer-bn", 1)) <= 1
    assert abs(wider.setup_s(1) - 2 * plain.setup_s(1)) <= 1
    assert plain.setup_s(1) < slower.setup_s(1) < 2 * plain.setup_s(1)


def test_a_chunk_asks_for_its_runs_predicted_seconds_added_up_times_the_time_factor(ask, study):
    """Every member of a chunk carries the same job_s: the seconds of all its runs (each
    predicted on its own) and the job's start, times cluster.time_factor."""
    factor = study.config["cluster"]["time_factor"]
    members: dict[str, list] = {}
    for run, chunk in study.chunks.items():
        members.setdefault(chunk.name, []).append(run)
    assert len(members) == 20
    for name, runs in members.items():
        predicted = sum(study.run_seconds(e) for e, _ in runs) + cost.JOB_START_S
        asked = {ask.job_s(e, s, 1) for e, s in runs}
        assert len(asked) == 1, (name, asked)
        assert factor * predicted - 1e-6 <= asked.pop() < factor * predicted + 1, name
        # the whole chunk asks for at least what any one of its runs does
        assert ask.job_s(*runs[0], 1) >= max(ask.run_s(e, 1) for e, _ in runs)


def test_a_retry_asks_for_the_attempt_times_the_time_and_the_memory(ask, study):
    for e in ("3layer-nobn", "9layer-bn", "lsearch-top-0"):
        seed = study.seeds(e)[0]
        for attempt in (2, 3):
            # rounded up once: at most `attempt` seconds short of attempt x the first's
            for asked in (partial(ask.run_s, e), partial(ask.job_s, e, seed), ask.setup_s, ask.prepare_s):
                first = asked(1)
                assert attempt * first - attempt < asked(attempt) <= attempt * first
                assert asked(attempt) > asked(attempt - 1)
            assert ask.train_mem_mb(e, 10**8, attempt) == attempt * ask.train_mem_mb(e, 10**8, 1)
            assert ask.prepare_mem_mb(170_000_000, attempt) == attempt * ask.prepare_mem_mb(170_000_000, 1)
            assert ask.check_mem_mb(attempt) == attempt * ask.check_mem_mb(1)


def test_memory_grows_with_the_stored_pixels_and_the_dtype(ask):
    pixels = 50_000 * 3072
    assert ask.train_mem_mb("3layer-nobn", pixels, 1) < ask.train_mem_mb("3layer-nobn", 2 * pixels, 1)
    assert ask.train_mem_mb("3layer-nobn", pixels, 1) < ask.train_mem_mb("3layer-nobn-float64", pixels, 1)
    # a search run's lambda, picked while the study runs, changes nothing
    assert ask.train_mem_mb("lsearch-coarse-00", pixels, 1) == ask.train_mem_mb("lsearch-coarse-01", pixels, 1)
    # making CIFAR-10's data set from its 170 MB archive: above the 650 MB measured in a
    # cluster job, and more for a larger archive
    assert 650 < ask.prepare_mem_mb(170_000_000, 1) < ask.prepare_mem_mb(340_000_000, 1)


def test_each_validation_hold_out_has_a_data_file_of_its_own():
    """The data sets' file names (rule prepare): the default hold-out's has no suffix, every
    other its size, and each name gives its hold-out back."""
    study = load(CONFIG)
    default, *others = study.val_sizes()
    assert study.data_name() == study.data_name(default) == "" and others
    assert [study.data_name(v) for v in others] == [f"-val{v}" for v in others]
    assert [study.val_size_named(study.data_name(v)) for v in study.val_sizes()] == study.val_sizes()


def test_the_setup_job_asks_for_every_data_set_and_check():
    """The setup job runs its members one after another: it asks for at least what they
    ask for each (less their rounding up), and a check more asks for a check's time more."""
    study = load(CONFIG)
    plain = Requests(study)
    n_data, n_checks = len(study.val_sizes()), len(study.gradchecks)
    assert (n_data, n_checks) == (2, 12)
    assert plain.setup_s(1) >= n_data * (plain.prepare_s(1) - 1) + n_checks * (plain.check_s(1) - 1)
    config = yaml.safe_load(CONFIG.read_text())
    checks = config["gradcheck"]["checks"]
    config["gradcheck"]["checks"] = {**checks, "one-more": next(iter(checks.values()))}
    more = Requests(Study(config).check())
    assert abs(more.setup_s(1) - plain.setup_s(1) - plain.check_s(1)) <= 1


def test_the_chains_of_checkpoints_go_first(ask, study):
    """The lambda search's runs and those seeds by need adds come before the configured
    runs: Snakemake's priority, and SLURM's nice for the search's chunks."""
    configured = list(study.config["experiments"])
    bulk = {ask.priority(e, s) for e, s in study.runs(configured)}
    search = {ask.priority(e, s) for e, s in study.runs(study.search.runs)}
    added = {ask.priority(e, max(study.seeds(e)) + k) for e in study.judged() for k in (1, 5)}
    assert bulk == {cluster.BULK_PRIORITY} and min(search | added) > max(bulk)
    assert {ask.nice(e) for e in study.search.runs} == {0} and min(ask.nice(e) for e in configured) > 0


def test_the_search_and_seeds_by_need_go_before_the_bulk_as_snakemake_plans_them(tmp_path):
    """The priorities of a dry run through profiles/slurm (the tiny config with the lambda
    search and seeds by need): every checkpoint of the search and the first round of
    seeds by need, and the search's training runs, above every configured run."""
    from workflow_project import make_project, snakemake

    tiny = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    root = make_project(tmp_path / "p", seeds_by_need={**tiny["seeds_by_need"], "enabled": True})
    configured = Study(yaml.safe_load((root / "config" / "config.yaml").read_text())).runs(tiny["experiments"])
    proc = snakemake(root, "--profile", str(REPO / "profiles" / "slurm"), "-n")
    jobs, job = [], None
    for line in proc.stdout.splitlines():
        if m := re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):$", line):
            job = {"rule": m.group(1), "priority": 0}
            jobs.append(job)
        elif job and (m := re.match(r"\s+(wildcards|priority): (.*)$", line)):
            job[m.group(1)] = int(m.group(2)) if m.group(1) == "priority" else m.group(2)
    bulk = [j["priority"] for j in jobs if j["rule"] == "train" and "lsearch-" not in j["wildcards"]]
    search = [j["priority"] for j in jobs if j["rule"] == "train" and "lsearch-" in j["wildcards"]]
    checkpoints = {"lambda_grid", "lambda_coarse", "lambda_fine", "lambda_best", "seeds_needed"}
    chain = {j["rule"]: j["priority"] for j in jobs if j["rule"] in checkpoints}
    assert len(bulk) == len(configured) and len(search) >= 2 and chain.keys() == checkpoints, (bulk, search, chain)
    assert min(search + list(chain.values())) > max(bulk), (chain, set(search), set(bulk))


# -- a failure contained: keep going, and say what is missing ------------------------------


def test_runs_not_made_are_listed_by_chunk(study):
    missing = [("9layer-nobn", 3), ("3layer-nobn", 2), ("3layer-nobn", 1), ("lsearch-coarse-03", 1)]
    lines = cluster.not_made(study, missing).splitlines()
    assert lines[0].startswith("4 training runs not made (a job failed")
    assert lines[1:] == [
        f"  {study.chunk('3layer-nobn', 1).name}: 3layer-nobn seed 1, 2; 9layer-nobn seed 3",
        f"  {study.chunk('lsearch-coarse-03', 1).name}: lsearch-coarse-03 seed 1",
    ]
    assert cluster.not_made(study, []) == ""


def test_runs_not_made_are_the_planned_training_runs_without_a_file(tmp_path):
    """What the workflow's onerror handler hands not_made: of the DAG's jobs, the training
    runs whose file is not there (a job of another rule, or a run made, is not one)."""
    from types import SimpleNamespace as Job

    made = tmp_path / "made.h5"
    made.write_bytes(b"")
    jobs = [
        Job(rule=Job(name="train"), wildcards=Job(experiment="a", seed="2"), output=[str(tmp_path / "missing.h5")]),
        Job(rule=Job(name="train"), wildcards=Job(experiment="a", seed="1"), output=[str(made)]),
        Job(rule=Job(name="retrain"), wildcards=Job(experiment="a", seed="3"), output=[str(tmp_path / "r.h5")]),
    ]
    assert cluster.runs_not_made(jobs) == [("a", 2)]
    assert cluster.runs_not_made([]) == []


def test_a_failed_run_leaves_the_rest_made_and_is_reported(tmp_path):
    """As profiles/slurm runs it (keep-going): one training run fails (a `kmlp` on PATH
    that fails it); the other runs and the figure that needs none of it are made, and at
    the end the run is listed under its chunk."""
    from workflow_project import make_project

    root = make_project(tmp_path / "p")
    real = Path(sys.executable).parent / "kmlp"
    wrapper = tmp_path / "bin" / "kmlp"
    wrapper.parent.mkdir()
    wrapper.write_text(
        '#!/bin/sh\ncase "$*" in *"--experiment small-bn --seed 2 "*) echo "injected failure" >&2; exit 1 ;; esac\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{wrapper.parent}{os.pathsep}{real.parent}{os.pathsep}{os.environ['PATH']}"}
    targets = ["results/figures/figure1.png", "results/figures/figure2.png"]
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory",
         str(root), "--cores", "2", "--keep-going", *targets],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode != 0
    tiny = Study(yaml.safe_load((root / "config" / "config.yaml").read_text()))
    made = {(e, s) for e, s in tiny.runs(["small-nobn", "small-bn", "lambda-bn-0"])} - {("small-bn", 2)}
    assert all((root / f"results/runs/{e}/seed{s}.h5").is_file() for e, s in made)
    assert not (root / "results/runs/small-bn/seed2.h5").exists()
    assert (root / "results/figures/figure1.png").is_file() and not (root / "results/figures/figure2.png").exists()
    report = "1 training run not made (a job failed, theirs or one they wait for), by chunk"
    assert report in proc.stderr and f"  {tiny.chunk('small-bn', 2).name}: small-bn seed 2\n" in proc.stderr, (
        proc.stderr[-3000:]
    )


def test_the_profile_keeps_going_past_a_failed_job():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["keep-going"] is True and profile["retries"] >= 1


# -- kmlp cost-fit --------------------------------------------------------------------


def _benchmarks(root: Path, study: Study, rates: dict, noise: float = 0.0) -> None:
    for i, (e, s) in enumerate(study.runs(study.experiments)):
        seconds = cost.seconds(study.settings(e, lam=0.0), study.sizes(e), rates) * (1 + noise * (-1) ** i)
        path = root / e / f"seed{s}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{seconds:.4f}\t0:00:01\t900\t{seconds / 2:.4f}\n")


def test_cost_fit_recovers_known_rates(tmp_path, study):
    from kmlp.bench.cost_fit import fit, measured

    rates = {"madds": 4e-11, "layer_updates": 2e-6, "elementwise": 3e-9, "constant": 0.8}
    _benchmarks(tmp_path, study, rates)
    result = fit(study, measured(tmp_path, study))
    for term, rate in rates.items():
        assert result.rates[term] == pytest.approx(rate, rel=1e-3), term
    assert max(map(abs, result.errors())) < 1e-3


def test_cost_fit_command(tmp_path, study):
    rates = {"madds": 4e-11, "layer_updates": 2e-6, "elementwise": 3e-9, "constant": 0.8}
    _benchmarks(tmp_path / "bench", study, rates, noise=0.1)
    proc = subprocess.run(
        [sys.executable, "-m", "kmlp", "cost-fit", "--benchmarks", str(tmp_path / "bench"), "--config", str(CONFIG),
         str(SEARCH)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fitted = json.loads(proc.stdout.splitlines()[0].removeprefix("REFERENCE = "))
    assert fitted.keys() == rates.keys() and fitted["madds"] == pytest.approx(rates["madds"], rel=0.2)
    assert f"{len(study.runs(study.experiments))} runs" in proc.stdout and "median" in proc.stdout, proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "kmlp", "cost-fit", "--benchmarks", str(tmp_path / "none"), "--config", str(CONFIG)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no such folder" in bad.stderr


# -- profiles/slurm/sbatch-submit.py ------------------------------------------------------

JOBSCRIPT = """#!/bin/sh
# properties = {props}
cd /p && python -m snakemake --snakefile /p/workflow/Snakefile --target-jobs 'train:experiment=a,seed=1' \
'train:experiment=a,seed=2' --allowed-rules train --cores all --attempt 1 --force --target-files-omit-workdir-adjustment
"""


def _props(**resources) -> dict:
    return {"type": "group", "groupid": "train-03", "threads": 1, "resources": {"mem_mb": 1390, **resources}}


def test_a_chunk_asks_for_its_predicted_time_in_whole_minutes(tmp_path):
    submit = _script("sbatch-submit")
    text = JOBSCRIPT.format(props=json.dumps(_props(job_s=610, run_s=200, attempt=1)))
    args = submit.sbatch_args(_props(job_s=610, run_s=200, attempt=1), tmp_path, text)
    assert "--time=7" in args  # min(610, 2 x 200) = 400 s: 6.7 minutes
    assert "--no-requeue" in args and "--cpus-per-task=1" in args and "--mem=1390" in args
    assert any(re.fullmatch(r"--job-name=[0-9a-f]{6}-train-03", a) for a in args), args  # the study's prefix
    assert not any(a.startswith("--nice") for a in args)
    assert "--nice=100" in submit.sbatch_args(_props(job_s=610, run_s=200, slurm_nice=100), tmp_path, text)
    whole = submit.sbatch_args(_props(job_s=310, run_s=200, attempt=1), tmp_path, text)
    assert "--time=6" in whole  # the whole chunk: 310 s, 5.2 minutes
    assert "--time=30" in submit.sbatch_args({"type": "single", "rule": "x", "resources": {"runtime": 30}}, tmp_path)


def test_a_retry_runs_only_what_is_missing(tmp_path):
    """A retry names the job's outputs as targets (up to date when they exist) instead of
    its jobs (always run), and without --force."""
    submit = _script("sbatch-submit")
    text = JOBSCRIPT.format(props="{}")
    outputs = ["results/runs/a/seed1.h5", "results/runs/a/seed 2.h5"]
    first = submit.limited(text, 1, 1390, attempt=1, outputs=outputs)
    retry = submit.limited(text, 1, 1390, attempt=2, outputs=outputs)
    assert " --force " in first and "--target-jobs 'train:experiment=a,seed=1'" in first
    assert "--cores 1 --resources mem_mb=1390" in first
    assert "--force" not in retry and "--target-jobs" not in retry
    assert "Snakefile results/runs/a/seed1.h5 'results/runs/a/seed 2.h5' --allowed-rules train" in retry
    # more outputs than Snakemake lists (none given): the retry runs every job
    assert submit.limited(text, 1, 1390, attempt=2, outputs=None) == first


def test_a_changed_job_script_is_refused_on_a_retry():
    """A job script without the parts a retry edits fails loudly instead of training the
    finished runs again."""
    submit = _script("sbatch-submit")
    outputs = ["results/runs/a/seed1.h5", "results/runs/a/seed2.h5"]
    changed = JOBSCRIPT.format(props="{}").replace(" --force", "")
    with pytest.raises(SystemExit, match="has Snakemake's job script changed"):
        submit.limited(changed, 1, 1390, 2, outputs)
    assert submit.limited(changed, 1, 1390, 1, outputs)  # a first attempt edits nothing of that


def test_submit_prints_the_job_id_or_sbatchs_refusal(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\necho "4711;cluster"\n')
    (bin_ / "sbatch").chmod(0o755)
    script = tmp_path / "job.sh"
    script.write_text(JOBSCRIPT.format(props=json.dumps(_props(job_s=100, run_s=60, attempt=2))))
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    run = [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-submit.py"), str(script)]
    record = tmp_path / "submitted.txt"
    record.write_text("4710\n")
    sidecar_env = {**env, "SNAKEMAKE_CLUSTER_SIDECAR_VARS": str(record)}
    ok = subprocess.run(run, capture_output=True, text=True, env=sidecar_env, cwd=tmp_path)
    # a job sent to a cluster of --clusters is named with it, for the status and the sidecar
    assert ok.returncode == 0 and ok.stdout.strip() == "4711;cluster"
    assert record.read_text() == "4710\n4711;cluster\n"  # for the sidecar to cancel
    assert "--time=2" in (bin_ / "args").read_text() and "--force" in script.read_text()  # no outputs listed
    script.write_text(JOBSCRIPT.format(props=json.dumps(_props(job_s=100, run_s=60, attempt=1))))
    (bin_ / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: Invalid account' >&2\nexit 1\n")
    refused = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert refused.returncode == 1 and "Invalid account" in refused.stdout and "Invalid account" in refused.stderr


def test_a_job_is_named_by_its_study(tmp_path):
    """SLURM job names carry a prefix of the working directory: the same chunk of two
    studies in one account has two names, one study's the same name every time (also
    through a symlink to its directory), and the status script finds its log again."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/args"\necho 4711\n')
    (bin_ / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SNAKEMAKE_CLUSTER_SIDECAR_VARS", None)

    def submitted(cwd: Path) -> str:
        script = cwd / "job.sh"
        script.write_text(JOBSCRIPT.format(props=json.dumps(_props(job_s=100, run_s=60, attempt=1))))
        run = [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-submit.py"), str(script)]
        subprocess.run(run, capture_output=True, text=True, env=env, cwd=cwd, check=True)
        return re.search(r"--job-name=(\S+)", (bin_ / "args").read_text().splitlines()[-1]).group(1)

    one, other = tmp_path / "study", tmp_path / "another" / "study"  # one basename, two studies
    other.mkdir(parents=True)
    one.mkdir()
    (tmp_path / "link").symlink_to(one)
    names = [submitted(one), submitted(other), submitted(one), submitted(tmp_path / "link")]
    assert names[0] != names[1] and names[0] == names[2] == names[3], names
    assert all(re.fullmatch(r"[0-9a-f]{6}-train-03", n) for n in names), names
    # the failure line and the log's folder name the chunk as the study's plan does
    proc = _status(one, "42", "TIMEOUT", f"{names[0]}|TIMEOUT|00:04:00|00:04:00|1390M|", "batch|CANCELLED|||1390M|1M")
    assert "SLURM job 42 (train-03) ended TIMEOUT" in proc.stderr, proc.stderr
    assert "log: .snakemake/slurm_logs/train-03/42.log" in proc.stderr
    assert (one / ".snakemake" / "slurm_logs" / "train-03").is_dir()  # where sbatch-submit.py sent it


# -- profiles/slurm/sbatch-status.py ------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "verdict"),
    [("COMPLETED", "success"), ("RUNNING", "running"), ("PENDING", "running"), ("CANCELLED by 0", "failed"),
     ("TIMEOUT", "failed"), ("OUT_OF_MEMORY", "failed"), ("NODE_FAIL", "failed"), ("PREEMPTED", "failed")],
)  # fmt: skip
def test_status_verdicts(state, verdict):
    assert _script("sbatch-status").verdict(state) == verdict


def _status(tmp_path: Path, jobid: str, state: str, *sacct_rows: str) -> subprocess.CompletedProcess:
    """sbatch-status.py JOBID against a squeue that says ``state`` and a sacct that prints
    ``sacct_rows``."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    (bin_ / "squeue").write_text(f"#!/bin/sh\necho {state}\n")
    (bin_ / "sacct").write_text("#!/bin/sh\n" + "".join(f"echo '{row}'\n" for row in sacct_rows))
    for tool in ("squeue", "sacct"):
        (bin_ / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    status = [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-status.py"), jobid]
    return subprocess.run(status, capture_output=True, text=True, env=env, cwd=tmp_path)


def test_a_failed_job_is_reported_in_one_line(tmp_path):
    proc = _status(
        tmp_path,
        "42",
        "TIMEOUT",
        "train-07|TIMEOUT|00:04:00|00:04:00|1390M|",
        "batch|CANCELLED|00:04:02||1390M|1084.5M",
    )
    assert proc.stdout == "failed\n"
    assert proc.stderr == (
        "sbatch-status.py: SLURM job 42 (train-07) ended TIMEOUT after 00:04:00 (limit 00:04:00),"
        " MaxRSS 1084M of 1390M; log: .snakemake/slurm_logs/train-07/42.log\n"
    )
    # over its memory where SLURM samples it (no cgroups): FAILED, and the line says why
    proc = _status(tmp_path, "43", "FAILED", "train-07|FAILED|00:00:05|00:01:00|60M|", "batch|FAILED|||60M|66.8M")
    assert "SLURM job 43 (train-07) ended FAILED, OUT_OF_MEMORY after 00:00:05 (limit 00:01:00), MaxRSS 67M of 60M" in (
        proc.stderr
    )
    # a job that ran out of time near its memory limit ended TIMEOUT, and says that alone
    proc = _status(tmp_path, "44", "TIMEOUT", "train-07|TIMEOUT|00:01:00|00:01:00|60M|", "batch|CANCELLED|||60M|59.5M")
    assert "SLURM job 44 (train-07) ended TIMEOUT after 00:01:00" in proc.stderr and "MEMORY" not in proc.stderr


def test_the_line_names_the_state_that_failed_the_job_while_accounting_lags(tmp_path):
    """slurmdbd records a job's end after the controller: squeue already says NODE_FAIL while
    sacct still says RUNNING.  The line must say NODE_FAIL (the test of a lost node looks
    for it), not the stale RUNNING."""
    proc = _status(tmp_path, "142", "NODE_FAIL", "train-05|RUNNING|00:00:07|00:01:00|408M|", "batch|RUNNING|||408M|")
    assert proc.stdout == "failed\n"
    assert "SLURM job 142 (train-05) ended NODE_FAIL after 00:00:07 (limit 00:01:00)" in proc.stderr, proc.stderr
    # once accounting has it, its state is the one named (with its details: "CANCELLED by 0")
    proc = _status(tmp_path, "143", "CANCELLED", "train-05|CANCELLED by 0|00:00:05|00:01:00|408M|")
    assert "SLURM job 143 (train-05) ended CANCELLED by 0 after" in proc.stderr, proc.stderr


# -- profiles/slurm/sbatch-sidecar.py -----------------------------------------------------


def test_sidecar_picks_the_jobs_still_in_the_queue():
    live = _script("sbatch-sidecar").live_jobs
    squeue = "11|RUNNING\n12|COMPLETED\n13|PENDING\n14|COMPLETING\n99|RUNNING\n"
    assert live(["11", "12", "13", "14", "15"], squeue) == ["11", "13"]  # not another's 99
    assert live([], squeue) == []


# sacct --parsable2 --units=M of jobs 11-13 for the efficiency report (sbatch-sidecar.py):
# 11 cancelled while running, 12 completed, 13 cancelled while pending
EFFICIENCY_SACCT = """\
11|{tag}-train-01|CANCELLED by 0|node1|00:01:00|00:04:00|00:50.000|1|1390M|
11.batch|batch|CANCELLED|node1|00:01:01||00:50.000|1||1000.50M
12|{tag}-setup|COMPLETED|node2|00:00:30|00:01:00|00:15.000|2|1000M|
12.batch|batch|COMPLETED|node2|00:00:30||00:15.000|2||250M
12.extern|extern|COMPLETED|node2|00:00:30||00:00:00|2||0.50M
13|{tag}-train-02|CANCELLED by 0|None assigned|00:00:00|00:04:00|00:00:00|0|1390M|
"""


def _fake_slurm(tmp_path: Path) -> dict:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "squeue").write_text("#!/bin/sh\nprintf '11|RUNNING\\n12|COMPLETED\\n13|PENDING\\n99|RUNNING\\n'\n")
    (bin_ / "scancel").write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/cancelled"\n')
    tag = _script("sbatch-submit").study_tag(tmp_path)
    (bin_ / "sacct.out").write_text(EFFICIENCY_SACCT.format(tag=tag))
    (bin_ / "sacct").write_text(
        '#!/bin/sh\necho "$@" >> "$(dirname "$0")/sacct.calls"\ncat "$(dirname "$0")/sacct.out"\n'
    )
    for tool in ("squeue", "scancel", "sacct"):
        (bin_ / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}


def _efficiency_line(tmp_path: Path) -> str:
    """The summary the sidecar prints of EFFICIENCY_SACCT, and its CSV."""
    (csv_path,) = (tmp_path / "results" / "cluster").glob("efficiency-*.csv")
    return (
        "sbatch-sidecar.py: 3 SLURM jobs (1 did not start), time used/asked mean 0.38, min 0.25;"
        " memory used/asked mean 0.48, min 0.25; CPU efficiency mean 0.54, min 0.25"
        f" (results/cluster/{csv_path.name})\n"
    )


def _wait_gone(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("end", ["stopped", "snakemake-killed"])
def test_sidecar_cancels_what_snakemake_left_when_it_ends(tmp_path, end):
    """Stopped by the executor (SIGTERM), or its Snakemake killed: the submitted jobs still
    queued are cancelled, no others; the record is removed."""
    env = _fake_slurm(tmp_path)
    sidecar = REPO / "profiles" / "slurm" / "sbatch-sidecar.py"
    first_line = tmp_path / "first-line"
    # a stand-in for Snakemake: a shell that waits for the sidecar (so it is its parent)
    parent = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" "{sidecar}" > "{first_line}" 2> "{tmp_path / "said"}"; true'],
        env=env, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not (first_line.exists() and first_line.read_text().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.05)
    record = Path(first_line.read_text().strip())
    assert record.parent == (tmp_path / ".snakemake" / "slurm_logs").resolve() and record.read_text() == ""
    record.write_text("11\n12\n13\n")  # as sbatch-submit.py appends them
    time.sleep(0.6)
    assert not (tmp_path / "bin" / "cancelled").exists()  # nothing while Snakemake runs
    if end == "stopped":
        sidecar_pid = int(subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout)
        os.kill(sidecar_pid, signal.SIGTERM)
        assert parent.wait(20) == 0
    else:
        parent.kill()
        parent.wait(20)
    _wait_gone(record)
    assert not record.exists()
    assert (tmp_path / "bin" / "cancelled").read_text() == "11 13\n"
    assert (tmp_path / "said").read_text() == (
        "sbatch-sidecar.py: cancelled 2 SLURM jobs Snakemake left in the queue (11 13)\n" + _efficiency_line(tmp_path)
    )


def test_a_job_on_another_cluster_is_asked_for_and_cancelled_there(tmp_path, monkeypatch):
    """--clusters in slurm_extra: sbatch says "JOBID;CLUSTER", and squeue, sacct and scancel
    know the job only when given --clusters CLUSTER (without it: "Invalid job id")."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool, answer in (("squeue", "printf 'CLUSTER: far\\nRUNNING\\n'"), ("sacct", "echo RUNNING")):
        (bin_ / tool).write_text(
            f'#!/bin/sh\ncase "$*" in *"--clusters far"*) {answer} ;; '
            '*) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;; esac\n'
        )
    (bin_ / "scancel").write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/cancelled"\n')
    for tool in ("squeue", "sacct", "scancel"):
        (bin_ / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    status = [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-status.py")]
    far = subprocess.run([*status, "42;far"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert far.stdout == "running\n" and far.stderr == ""
    here = subprocess.run([*status, "42"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert here.stdout == "failed\n"  # asked on the default cluster, the job is unknown
    (bin_ / "squeue").write_text("#!/bin/sh\nprintf 'CLUSTER: far\\n42|RUNNING\\n43|COMPLETED\\n'\n")
    record = tmp_path / "submitted.txt"
    record.write_text("42;far\n43;far\n")
    monkeypatch.setenv("PATH", env["PATH"])
    assert _script("sbatch-sidecar").cancel_left(record) == 0
    assert (bin_ / "cancelled").read_text() == "--clusters far 42\n"


def test_sidecar_keeps_a_hangup_ignored_under_nohup(tmp_path):
    """Started under nohup (SIGHUP ignored, as Snakemake's child inherits it), a closed
    terminal cancels nothing: the sidecar goes on, and cancels only when Snakemake ends."""
    env = _fake_slurm(tmp_path)
    sidecar = subprocess.Popen(
        [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-sidecar.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    record = Path(sidecar.stdout.readline().strip())
    record.write_text("11\n13\n")
    sidecar.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert sidecar.poll() is None and not (tmp_path / "bin" / "cancelled").exists()
    sidecar.send_signal(signal.SIGTERM)
    sidecar.communicate(timeout=20)
    assert (tmp_path / "bin" / "cancelled").read_text() == "11 13\n"


def test_sidecar_cancels_nothing_after_a_run_that_completed(tmp_path):
    env = _fake_slurm(tmp_path)
    sidecar = subprocess.Popen(
        [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-sidecar.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    record = Path(sidecar.stdout.readline().strip())
    record.write_text("12\n")  # completed
    sidecar.send_signal(signal.SIGTERM)
    out, err = sidecar.communicate(timeout=20)
    # only the efficiency report (of the three jobs sacct prints here) is said
    assert sidecar.returncode == 0 and err == _efficiency_line(tmp_path) and not record.exists()
    assert not (tmp_path / "bin" / "cancelled").exists()
    assert [p.name for p in record.parent.iterdir()] == [], "the sidecar's files are left"


# -- the status of every job from one query per round (sbatch-sidecar.py, sbatch-status.py) --

FAKE_SLURM = '''#!{python}
"""squeue or sacct: states from queue.json (the controller's) or accounting.json (the
database's); each call is logged to calls."""
import json, pathlib, sys
here, tool, args = pathlib.Path(__file__).parent, pathlib.Path(sys.argv[0]).name, sys.argv[1:]
with open(here / "calls", "a") as f:
    f.write(tool + " " + " ".join(args) + "\\n")
states = json.loads((here / ("queue.json" if tool == "squeue" else "accounting.json")).read_text())
jobs = [a.split("=", 1)[1] for a in args if a.startswith("--jobs=")]
jobs += [args[i + 1] for i, a in enumerate(args) if a == "--jobs"]
asked = [j for j in ",".join(jobs).split(",") if j]
if tool == "squeue" and asked:  # one job (sbatch-status.py asking itself)
    if asked[0] not in states:
        sys.exit("slurm_load_jobs error: Invalid job id specified")
    print(states[asked[0]])
elif tool == "squeue":
    print("\\n".join(f"{{j}}|{{state}}" for j, state in states.items()))
else:
    with_id = any(a.startswith("--format=JobID") for a in args)
    print("\\n".join(f"{{j}}|{{states[j]}}" if with_id else states[j] for j in asked if j in states))
'''


def _fake_states(tmp_path: Path, queue: dict, accounting: dict) -> Path:
    """A bin/ of squeue and sacct that answer from ``queue`` and ``accounting`` (job id:
    state) and log their calls, and an scancel that does nothing."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("squeue", "sacct"):
        (bin_ / tool).write_text(FAKE_SLURM.format(python=sys.executable))
    (bin_ / "scancel").write_text("#!/bin/sh\n")
    for tool in ("squeue", "sacct", "scancel"):
        (bin_ / tool).chmod(0o755)
    _set_states(bin_, queue, accounting)
    return bin_


def _set_states(bin_: Path, queue: dict, accounting: dict) -> None:
    (bin_ / "queue.json").write_text(json.dumps(queue))
    (bin_ / "accounting.json").write_text(json.dumps(accounting))


def _calls(bin_: Path, tool: str) -> list[str]:
    calls = bin_ / "calls"
    return [line for line in calls.read_text().splitlines() if line.startswith(tool)] if calls.exists() else []


def _ask_status(status, external: str, capsys) -> tuple[str, str]:
    """sbatch-status.py EXTERNAL, run in this process (the rounds of many jobs stay fast)."""
    assert status.main(["sbatch-status.py", external]) == 0
    said = capsys.readouterr()
    return said.out, said.err


def _answers(record: Path, pid: int, jobs: dict, **more) -> None:
    """A round's answers as sbatch-sidecar.py writes them."""
    path = _script("sbatch-sidecar").status_file(record)
    path.write_text(json.dumps({"asked_at": time.time(), "pid": pid, "jobs": jobs, "silent": [], **more}))


def test_status_answers_from_the_sidecars_round_without_asking_slurm(tmp_path, monkeypatch, capsys):
    bin_ = _fake_states(tmp_path, {"42": "PENDING"}, {})
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    record = tmp_path / "submitted-1.txt"
    record.write_text("42\n43\n44\n45\n46;far\n")
    monkeypatch.setenv("SNAKEMAKE_CLUSTER_SIDECAR_VARS", str(record))
    states = {"42": "RUNNING", "43": "COMPLETED", "44": "TIMEOUT", "46;far": "COMPLETING"}
    _answers(record, os.getpid(), states, silent=["45"])  # a live sidecar: this process
    status = _script("sbatch-status")
    assert _ask_status(status, "42", capsys) == ("running\n", "")
    assert _ask_status(status, "43", capsys) == ("success\n", "")
    assert _ask_status(status, "45", capsys) == ("running\n", "")  # a controller that did not answer
    assert _ask_status(status, "46;far", capsys) == ("running\n", "")
    assert _calls(bin_, "squeue") == [] and _calls(bin_, "sacct") == []
    # a failed job is still reported in one line, with sacct's details
    out, err = _ask_status(status, "44", capsys)
    assert out == "failed\n" and err.startswith("sbatch-status.py: SLURM job 44 (") and "TIMEOUT" in err
    assert _calls(bin_, "squeue") == [] and len(_calls(bin_, "sacct")) == 1


def test_status_asks_slurm_itself_without_a_fresh_round(tmp_path, monkeypatch, capsys):
    """No sidecar's answers, a sidecar gone, one that does not answer for a new round in
    time, and a job its round found nowhere: the status call asks squeue and sacct itself."""
    bin_ = _fake_states(tmp_path, {"42": "PENDING", "43": "RUNNING"}, {})
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    record = tmp_path / "submitted-1.txt"
    record.write_text("42\n43\n44\n")
    monkeypatch.setenv("SNAKEMAKE_CLUSTER_SIDECAR_VARS", str(record))
    status = _script("sbatch-status")
    monkeypatch.setattr(status, "WAIT", 0.3)
    assert _ask_status(status, "42", capsys) == ("running\n", "")  # no answers written
    assert len(_calls(bin_, "squeue")) == 1
    gone = subprocess.Popen(["true"])
    gone.wait()
    _answers(record, gone.pid, {"42": "COMPLETED"})
    assert _ask_status(status, "42", capsys) == ("running\n", "")  # PENDING, as squeue says
    assert len(_calls(bin_, "squeue")) == 2
    # a live sidecar: its answer once, then none newer within WAIT: squeue again
    _answers(record, os.getpid(), {"42": "COMPLETED", "43": "RUNNING"}, unknown=["44"])
    assert _ask_status(status, "43", capsys) == ("running\n", "") and len(_calls(bin_, "squeue")) == 2
    t0 = time.monotonic()
    assert _ask_status(status, "43", capsys) == ("running\n", "") and len(_calls(bin_, "squeue")) == 3
    assert time.monotonic() - t0 >= 0.3 and float(_script("sbatch-sidecar").wanted(record)) > 0
    # unknown to the round's squeue and sacct: asked again, and failed as before
    out, err = _ask_status(status, "44", capsys)
    assert out == "failed\n" and err == "sbatch-status.py: SLURM job 44 is unknown to squeue and sacct\n"
    assert _calls(bin_, "squeue")[-1].endswith("--jobs 44 --format=%T")
    # a sidecar stopped (with Snakemake) while a call waits for its round: asked at once
    monkeypatch.setattr(status, "WAIT", 30)
    stopping = subprocess.Popen(["sleep", "0.5"])
    threading.Thread(target=stopping.wait).start()  # reaped, as Snakemake reaps its sidecar
    _answers(record, stopping.pid, {"43": "RUNNING"})
    assert _ask_status(status, "43", capsys) == ("running\n", "") and len(_calls(bin_, "squeue")) == 4
    t0 = time.monotonic()
    assert _ask_status(status, "43", capsys) == ("running\n", "") and time.monotonic() - t0 < 10
    assert len(_calls(bin_, "squeue")) == 5
    # answers it cannot read, or a note it cannot write: asked itself, in one line at most
    sidecar = _script("sbatch-sidecar")
    sidecar.status_file(record).write_text(json.dumps({"pid": os.getpid(), "jobs": None}))
    assert _ask_status(status, "43", capsys) == ("running\n", "") and len(_calls(bin_, "squeue")) == 6
    _answers(record, os.getpid(), {"43": "RUNNING"})
    record.with_name(record.stem + ".served.json").unlink()
    record.with_name(record.stem + ".served.json").mkdir()
    assert _ask_status(status, "43", capsys) == ("running\n", "") and len(_calls(bin_, "squeue")) == 7


def test_one_squeue_and_one_sacct_per_round_whatever_the_number_of_jobs(tmp_path, monkeypatch, capsys):
    """Two rounds of Snakemake's status calls for 300 jobs, against the sidecar: one squeue a
    round (by the sidecar), one sacct for the jobs squeue no longer lists, and the status
    calls ask nothing themselves but for the one job neither knows."""
    running = {str(j): "RUNNING" for j in range(1, 201)}
    bin_ = _fake_states(tmp_path, {**running, "999": "RUNNING"}, {str(j): "COMPLETED" for j in range(201, 300)})
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.chdir(tmp_path)
    sidecar = subprocess.Popen(
        [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-sidecar.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        record = Path(sidecar.stdout.readline().strip())
        record.write_text("".join(f"{j}\n" for j in range(1, 301)))  # 300: unknown to squeue and sacct
        monkeypatch.setenv("SNAKEMAKE_CLUSTER_SIDECAR_VARS", str(record))
        status = _script("sbatch-status")
        said = [_ask_status(status, str(j), capsys)[0] for j in range(1, 301)]
        assert said == ["running\n"] * 200 + ["success\n"] * 99 + ["failed\n"]
        ours = [call for call in _calls(bin_, "squeue") if "--user=" in call]
        assert len(ours) == 1 and len(_calls(bin_, "squeue")) == 2  # the sidecar's, and job 300's own
        sacct = _calls(bin_, "sacct")
        assert sacct[0].endswith(f"--jobs={','.join(str(j) for j in range(201, 301))} --format=JobID,State")
        assert len(sacct) == 2 and "--jobs 300 " in sacct[1]  # job 300's own
        # the next round: the first hundred have completed
        _set_states(bin_, {**running, **{str(j): "COMPLETED" for j in range(1, 101)}}, {})
        said = [_ask_status(status, str(j), capsys)[0] for j in range(1, 201)]
        assert said == ["success\n"] * 100 + ["running\n"] * 100
        assert len([call for call in _calls(bin_, "squeue") if "--user=" in call]) == 2
        assert len(_calls(bin_, "sacct")) == 3 and _calls(bin_, "sacct")[-1].endswith("--jobs=300 --format=JobID,State")
        answers = json.loads(_script("sbatch-sidecar").status_file(record).read_text())
        assert answers["pid"] == sidecar.pid and answers["unknown"] == ["300"]
    finally:
        sidecar.terminate()
        sidecar.communicate(timeout=30)
    assert not record.exists() and not _script("sbatch-sidecar").status_file(record).exists()


def test_sidecar_and_status_agree_on_the_files_they_share(tmp_path):
    """Both take the names of the files between them from one module (sidecar_files)."""
    sidecar, status = _script("sbatch-sidecar"), _script("sbatch-status")
    record = tmp_path / "submitted-7.txt"
    for name in ("status_file", "wanted_file", "served_file", "write_atomically"):
        assert getattr(sidecar, name) is getattr(status, name), name
    assert sidecar.status_file(record).name == "submitted-7.status.json"
    assert sidecar.wanted_file(record).name == "submitted-7.wanted"
    assert status.served_file(record).name == "submitted-7.served.json"


# -- the efficiency report (sbatch-sidecar.py) ----------------------------------------------


def test_efficiency_report_has_one_row_per_job_with_its_use_against_its_request(tmp_path, monkeypatch, capsys):
    env = _fake_slurm(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.chdir(tmp_path)
    record = tmp_path / "submitted.txt"
    record.write_text("11\n12\n13\n")
    sidecar = _script("sbatch-sidecar")
    path = sidecar.efficiency_report(record)
    assert path.parent == Path("results", "cluster") and re.fullmatch(r"efficiency-\d{8}T\d{6}Z\.csv", path.name)
    assert capsys.readouterr().err == _efficiency_line(tmp_path)
    (call,) = (tmp_path / "bin" / "sacct.calls").read_text().splitlines()  # one sacct for all jobs
    assert "--jobs=11,12,13" in call and "--parsable2" in call and "--units=M" in call
    text = path.read_text()
    notes = [line for line in text.splitlines() if line.startswith("#")]
    assert any("seconds" in n for n in notes) and any("MB" in n for n in notes), notes
    table = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert [r["job_id"] for r in table] == ["11", "12", "13"]
    assert [r["name"] for r in table] == ["train-01", "setup", "train-02"]  # less the study's prefix
    one, two, never = table
    assert (one["elapsed_s"], one["timelimit_s"], one["time_used_of_asked"]) == ("60.000", "240.000", "0.250")
    assert (one["maxrss_mb"], one["reqmem_mb"], one["memory_used_of_asked"]) == ("1000.500", "1390.000", "0.720")
    assert (one["totalcpu_s"], one["alloc_cpus"], one["cpu_efficiency"]) == ("50.000", "1", "0.833")
    assert (two["maxrss_mb"], two["cpu_efficiency"]) == ("250.000", "0.250")  # its largest step; 2 CPUs
    assert never["time_used_of_asked"] == never["memory_used_of_asked"] == never["cpu_efficiency"] == ""
    assert not list(path.parent.glob(".*")), "a temporary file is left"
    # no sacct: one line, no report
    (tmp_path / "bin" / "sacct").write_text(
        "#!/bin/sh\necho 'sacct: error: a\nsacct: fatal: no database' >&2\nexit 1\n"
    )
    assert sidecar.efficiency_report(record, tmp_path / "other") is None and not (tmp_path / "other").exists()
    assert (
        capsys.readouterr().err == "sbatch-sidecar.py: no efficiency report, sacct failed: sacct: fatal: no database\n"
    )
    (tmp_path / "bin" / "sacct").write_text("#!/bin/sh\n")  # jobs it does not know
    assert sidecar.efficiency_report(record, tmp_path / "other") is None and not (tmp_path / "other").exists()
    assert capsys.readouterr().err == "sbatch-sidecar.py: no efficiency report, sacct knows none of the 3 jobs\n"
    record.write_text("")
    assert sidecar.efficiency_report(record) is None and capsys.readouterr().err == ""  # no job, no report


def test_a_sidecar_that_cannot_write_its_answers_says_so_once_and_does_not_retry(tmp_path):
    bin_ = _fake_states(tmp_path, {"11": "RUNNING"}, {})
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    sidecar = subprocess.Popen(
        [sys.executable, str(REPO / "profiles" / "slurm" / "sbatch-sidecar.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    record = Path(sidecar.stdout.readline().strip())
    record.write_text("11\n")
    answers = _script("sbatch-sidecar").status_file(record)
    answers.unlink()
    answers.mkdir()  # os.replace cannot put a file there
    asked = lambda: [call for call in _calls(bin_, "squeue") if "--states=all" in call]  # noqa: E731
    for n in (1, 2):  # two rounds ask
        _script("sbatch-status").write_atomically(_script("sbatch-sidecar").wanted_file(record), repr(time.time()))
        deadline = time.monotonic() + 20
        while len(asked()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(0.5)  # ten ticks: no round asks again
    sidecar.terminate()
    _, err = sidecar.communicate(timeout=30)
    assert len(asked()) == 2, asked()  # once a round, not every tenth of a second
    said = [line for line in err.splitlines() if "could not write the status" in line]
    assert len(said) == 1 and "Traceback" not in err, err


def test_a_round_with_a_silent_controller_leaves_its_jobs_running(tmp_path, monkeypatch):
    """squeue gets no answer: the jobs sacct knows get its state, the others stay "running"
    (as a status call's own squeue that got no answer said); with --clusters, per cluster."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "squeue").write_text(
        '#!/bin/sh\ncase "$*" in *"--clusters far"*) printf "CLUSTER: far\\n7|RUNNING\\n" ;; '
        '*) echo "squeue: error: Socket timed out on send/recv operation" >&2; exit 1 ;; esac\n'
    )
    (bin_ / "sacct").write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/sacct.calls"\necho "12|COMPLETED"\n')
    for tool in ("squeue", "sacct"):
        (bin_ / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    states, silent, unknown = _script("sbatch-sidecar").ask(["11", "12", "7;far", "8;far"])
    assert states == {"12": "COMPLETED", "7;far": "RUNNING"} and silent == ["11"] and unknown == ["8;far"]
    calls = (bin_ / "sacct.calls").read_text().splitlines()
    assert len(calls) == 2 and "--jobs=11,12" in calls[0] and calls[1].startswith("--clusters far")
