"""Seeds by need (kmlp.study.seeds): which numbers get more seeds, in which order, and
where they stop; the workflow's rounds are in tests/test_workflow.py."""

import math

import pytest

from kmlp.study.seeds import BUDGET, CAP, MORE, STABLE, SeedsByNeed

RULE = SeedsByNeed(enabled=True, stable=0.9, step=5, cap=20, budget=0.15)


def number(experiment, stability, metric="test_acc", reading=""):
    return {"experiment": experiment, "metric": metric, "stability": stability, "reading": reading}


def ten(*names):
    return {e: list(range(1, 11)) for e in names}


def test_only_numbers_under_the_threshold_get_seeds_and_they_continue_the_seeds():
    seeds = ten("a", "b")
    out = RULE.decide([number("a", 0.61), number("b", 0.9)], seeds, seeds, {"a": 10, "b": 10}, 10_000)
    assert out["added"] == {"a": [11, 12, 13, 14, 15]}
    assert out["seeds"] == {"a": list(range(1, 16)), "b": list(range(1, 11))}
    assert [n["state"] for n in out["numbers"]] == [MORE, STABLE]
    assert not out["done"] and out["spent_s"] == 50


def test_an_experiment_gets_one_step_a_round_whichever_of_its_numbers_asks():
    seeds = ten("a")
    numbers = [number("a", 0.5, "val_acc"), number("a", 0.7)]
    out = RULE.decide(numbers, seeds, seeds, {"a": 10}, 10_000)
    assert out["added"] == {"a": list(range(11, 16))}
    assert [n["state"] for n in out["numbers"]] == [MORE, MORE]


def test_the_cap_stops_an_experiment_and_the_last_step_is_cut_to_it():
    configured = ten("a")
    seeds = {"a": list(range(1, 18))}  # 17 of the cap's 20
    out = RULE.decide([number("a", 0.5)], seeds, configured, {"a": 1}, 10_000)
    assert out["added"] == {"a": [18, 19, 20]}
    full = RULE.decide([number("a", 0.5)], out["seeds"], configured, {"a": 1}, 10_000)
    assert full["added"] == {} and full["done"] and full["numbers"][0]["state"] == CAP


def test_the_budget_goes_to_the_reports_own_numbers_first_then_the_least_stable():
    seeds = ten("reading", "own-stabler", "own-worse")
    seconds = {"reading": 10, "own-stabler": 10, "own-worse": 10}
    numbers = [number("reading", 0.1, reading="another reading"), number("own-stabler", 0.8), number("own-worse", 0.6)]
    # 0.15 x 700 s = 105 s: two experiments' 5 runs of 10 s fit, not three
    out = RULE.decide(numbers, seeds, seeds, seconds, 700)
    assert set(out["added"]) == {"own-worse", "own-stabler"}
    assert [n["state"] for n in out["numbers"]] == [BUDGET, MORE, MORE]
    # what the earlier rounds added counts against the budget
    again = RULE.decide(numbers, out["seeds"], seeds, seconds, 700)
    assert again["added"] == {} and again["done"] and again["spent_s"] == 100
    # a cheaper experiment still fits where a dearer one did not
    cheap = RULE.decide(numbers, seeds, seeds, {**seconds, "own-worse": 100, "reading": 1}, 700)
    assert set(cheap["added"]) == {"own-stabler", "reading"}


def test_numbers_without_a_stability_are_left_alone():
    seeds = ten("a")
    out = RULE.decide([number("a", math.nan)], seeds, seeds, {"a": 1}, 100)
    assert out["done"] and out["numbers"][0]["state"] == ""


@pytest.mark.parametrize(
    ("stability", "runs", "state"),
    [(0.95, 10, STABLE), (0.9, 10, STABLE), (0.89, 20, CAP), (0.89, 25, CAP), (0.5, 15, BUDGET), (math.nan, 10, "")],
)
def test_where_a_number_ended_follows_from_its_stability_and_seeds(stability, runs, state):
    assert RULE.state(stability, runs) == state


def test_the_same_runs_give_the_same_decision():
    seeds = ten("a", "b", "c")
    numbers = [number("c", 0.7), number("a", 0.7), number("b", 0.2, reading="r")]
    first = RULE.decide(numbers, seeds, seeds, {"a": 10, "b": 10, "c": 10}, 800)
    assert first == RULE.decide(numbers, seeds, seeds, {"a": 10, "b": 10, "c": 10}, 800)
    # a tie in stability goes by the order the numbers come in (the summary's)
    assert list(first["added"]) == ["c", "a"]


# -- the verb and the plan it is handed ------------------------------------------------
@pytest.fixture(scope="module")
def tiny_study():
    from pathlib import Path

    import yaml

    from kmlp.study import Study

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / ".test/config/config.yaml").read_text())
    cfg["seeds_by_need"].update(enabled=True, step=2)
    return Study(cfg).check()


def test_an_added_run_goes_to_a_slurm_job_of_its_experiment_and_round(tiny_study):
    planned = tiny_study.chunk("small-bn", 2)
    assert planned == tiny_study.chunks[("small-bn", 2)]
    first, second = tiny_study.chunk("small-bn", 3), tiny_study.chunk("small-bn", 4)
    assert first == second and first.name == "train-more-small-bn-1" and first.runs == 2
    assert first.seconds == pytest.approx(2 * tiny_study.run_seconds("small-bn"))
    assert tiny_study.chunk("small-bn", 5).name == "train-more-small-bn-2"
    assert tiny_study.chunk("lambda-bn-0", 4).name == "train-more-lambda-bn-0-1"  # its own 3 seeds, then 4


def test_the_plan_holds_every_judged_experiment_and_the_configured_runs_time(tiny_study):
    plan = tiny_study.need_plan()
    assert set(plan["configured"]) == set(tiny_study.pooled_with(tiny_study.paper_experiments()))
    assert plan["configured"]["lambda-bn-0"] == [1, 2, 3]
    total = sum(tiny_study.run_seconds(e) for e, _ in tiny_study.runs(tiny_study.experiments))
    assert plan["study_seconds"] == pytest.approx(total) and plan["rule"]["step"] == 2


@pytest.mark.parametrize(
    ("plan", "words"), [('{"rule": {}}', ["--plan", "Study.need_plan()"]), ("[1]", ["--plan", "JSON object"])]
)
def test_a_bad_plan_is_one_line(tmp_path, capsys, plan, words):
    from kmlp.cli import main

    rc = main(
        ["seeds-needed", "--round", "1", "--plan", plan, "--out", str(tmp_path / "r.json"), str(tmp_path / "x.h5")]
    )
    err = capsys.readouterr().err
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "r.json").exists()


def test_added_seeds_follow_the_largest_seed_not_the_count():
    seeds = {"a": [2, 7]}  # a config may give any seeds
    out = SeedsByNeed(True, 0.9, 2, 10, 1.0).decide([number("a", 0.5)], seeds, seeds, {"a": 1}, 100)
    assert out["added"] == {"a": [8, 9]}
