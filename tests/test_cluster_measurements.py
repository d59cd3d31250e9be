"""Issue 32's measurements on the two-node test cluster, as committed and as
profiles/slurm/README.md gives them (no SLURM needed: these read the JSON).

- tests/slurm/two_nodes.json: the 40 runs of figures 1-4 (real study, chunks sized to
  `cluster.cpus: 2`) on two nodes in at most 0.55 of one node's wall time, byte-identical.
- tests/slurm/scale_test.json: a study of at least 2,000 runs through the profile, the
  login node's CPU time under 5 % of the jobs'; scale_test_tiny.json, the same study with
  the tiny config's own runs (of a quarter of a second), over it, and why
  (scale_test_cprofile.json).
"""

from __future__ import annotations

import re

import cluster_measurements as cm

FIVE_PERCENT = cm.LOGIN_SHARE


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_readme_gives_the_numbers_of_the_committed_measurements():
    readme = _norm(cm.README.read_text())
    fragments = [*cm.chunk_sentence(), *cm.two_nodes(), *cm.scale_rows(), *cm.scale_sentences()]
    missing = [f for f in fragments if _norm(f) not in readme]
    assert not missing, "profiles/slurm/README.md should say, as the committed JSON gives it:\n" + "\n".join(missing)
    for name in ("two_nodes.json", "scale_test.json", "scale_test_tiny.json"):
        command = cm.load(name)["command"]
        assert command in readme, f"the command that made {name} is not in the README: {command}"


def test_two_nodes_take_at_most_055_of_one_node_with_the_same_run_files():
    d = cm.load("two_nodes.json")
    one, two = d["runs"]
    assert (one["partition"], two["partition"]) == ("single", "study")
    assert one["runs"] == two["runs"] == 40
    assert {j["NodeList"] for j in one["jobs"]} == {"node1"}
    assert {j["NodeList"] for j in two["jobs"]} == {"node1", "node2"}
    assert all(j["State"] == "COMPLETED" for j in one["jobs"] + two["jobs"])
    assert d["wall_ratio"] == round(two["wall_s"] / one["wall_s"], 3) <= cm.TWO_NODE_BOUND
    assert d["two_nodes_makespan_over_elapsed"] == round(two["makespan_s"] / two["jobs_elapsed_s"], 3)
    assert d["run_files_identical"] and d["run_files_compared"] == 40 and not d["run_files_differ"]
    assert "config/rebuild-archive.yaml" in d["config"]
    local = d["local"]
    assert local["run_files_compared"] == 40 and local["identical_to_one_node"] and local["identical_to_two_nodes"]
    assert local["command"].startswith("snakemake --cores 2 --configfile config/rebuild-archive.yaml -- ")


def _consistent(d: dict) -> None:
    """The measurement's own arithmetic."""
    assert d["snakemake_exit_status"] == 0
    assert d["runs_made"] == d["runs_planned"] >= 2000
    assert d["job_states"] == {"COMPLETED": d["jobs_submitted"]}
    assert d["cluster_cpus"] == 2 and d["profile"].startswith("profiles/slurm")
    assert "seconds-between-status-checks" not in d["snakemake_command"]  # the profile's own 15 s
    assert abs(d["login_cpu_s"] - d["login_user_s"] - d["login_sys_s"]) <= 0.1
    assert abs(d["login_share_of_jobs_cpu"] - d["login_cpu_s"] / d["jobs_cpu_s"]) < 1e-3
    assert abs(d["login_cpu_per_1000_runs_s"] - 1000 * d["login_cpu_s"] / d["runs_made"]) <= 0.1
    assert abs(d["jobs_elapsed_over_cpus_s"] - d["jobs_elapsed_s"] / 2) <= 0.1
    assert d["rpcs_total"] == sum(d["rpcs_by_type"].values()) == sum(d["rpcs_by_user"].values())


def test_the_login_node_uses_under_5_percent_of_the_jobs_cpu_time_at_2000_runs():
    d = cm.load("scale_test.json")
    _consistent(d)
    assert d["login_share_of_jobs_cpu"] < FIVE_PERCENT, d["login_share_of_jobs_cpu"]
    # one squeue (REQUEST_JOB_INFO) a round, whatever the number of jobs: fewer than the jobs
    assert d["rpcs_by_type"]["REQUEST_JOB_INFO"] == d["rpcs_by_type"]["REQUEST_PARTITION_INFO"]
    assert d["rpcs_by_type"]["REQUEST_SUBMIT_BATCH_JOB"] == d["jobs_submitted"]
    assert "REQUEST_JOB_INFO_SINGLE" not in d["rpcs_by_type"]  # no status call asked SLURM itself


def test_with_runs_of_a_quarter_second_the_login_share_is_over_5_percent_as_the_readme_says():
    """The tiny config's own runs: the jobs' CPU time is mostly Python's start, and what
    Snakemake spends on the login node per run (its bookkeeping, the local rules over every
    run) is then over 5 % of it; the README says so, and why (scale_test_cprofile.json)."""
    tiny, prof = cm.load("scale_test_tiny.json"), cm.load("scale_test_cprofile.json")
    _consistent(tiny)
    assert tiny["jobs_cpu_s"] / tiny["runs_made"] < 0.5
    assert tiny["login_share_of_jobs_cpu"] > FIVE_PERCENT
    assert tiny["local_rules_cpu_s"] / tiny["login_cpu_s"] > 0.3
    # what the login node spends per run is nearly the same whatever a run costs
    per_run = [cm.load(name)["login_cpu_per_1000_runs_s"] for name in cm.SCALE]
    assert max(per_run) < 1.5 * min(per_run), per_run
    c = prof["cprofile"]
    ours = c["ours"]["Study.settings (TrainSettings built for every job, every evaluation)"]
    assert ours < 0.1 * c["working_s"] < c["snakemake"]["JobScheduler._finish_jobs"]
