"""The record's Discrepancies (``kmlp discrepancies``): every number of the report that is not
consistent under the report's setting, beside the hypotheses tested for it, each judged by
the verdict rule, explaining it only when consistent and plausible; the config's entries
checked, and their quotations found in the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from kmlp.aggregate.discrepancies import AS_RUN, discrepancy_frame, hypothesis_runs
from kmlp.aggregate.record import discrepancies_section
from kmlp.aggregate.record_data import compare_record
from kmlp.aggregate.stats import judge, summary_frame, tidy
from kmlp.aggregate.tabular import csv_text
from kmlp.cli import main
from kmlp.runs import FINAL_METRICS, HISTORY_COLUMNS, RunRecord, write_run
from kmlp.study import Study, StudyError
from kmlp.study.discrepancies import Discrepancy
from kmlp.study.verdict import VerdictRule

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO.parent / "shared" / "reference" / "000_65490bf2cd826700.txt"
RULE = VerdictRule.from_dict({"pools": {"test": {"metric": "test_acc", "experiments": ["g-1", "g-2"]}}})
#: experiment -> (test accuracy around which its seeds lie, the report's numbers)
MEANS = {"g-1": (0.50, {"test_acc": 0.53}), "g-2": (0.52, {}), "g-3": (0.53, {}), "other": (0.40, {})}


def run(experiment, seed, test, val, status="completed") -> RunRecord:
    final = {m: 0.5 for m in FINAL_METRICS} | {"test_acc": test, "val_acc": val}
    return RunRecord(experiment=experiment, seed=seed, status=status, settings={}, model={"sizes": [4, 10]},
                     history={c: np.zeros(1) for c in HISTORY_COLUMNS}, final=final,
                     paper=MEANS[experiment][1], eval_sizes={"train": 100, "val": 5000, "test": 10000})  # fmt: skip


@pytest.fixture(scope="module")
def runs():
    """10 seeds per experiment: g-1's test accuracy 0.50 (the report says 0.53: inconsistent),
    g-2's 0.52, g-3's 0.53; per seed, validation ranks g-2 first on even seeds, g-1 on odd."""
    rng = np.random.default_rng(1)
    out = []
    for e, (mean, _) in MEANS.items():
        for seed in range(1, 11):
            val = 0.5 + (0.02 if (e == "g-2") == (seed % 2 == 0) and e != "g-3" else 0.0)
            out.append(run(e, seed, mean + 0.003 * rng.standard_normal(), val))
    return out


SPEC = Discrepancy.from_dict(
    {
        "experiment": "g-1",
        "metric": "test_acc",
        "hypotheses": [
            {
                "name": "best-val",
                "says": "per seed, best by validation",
                "runs": ["g-1", "g-2"],
                "pick": "val_acc",
                "plausible": True,
                "because": "a choice on validation",
            },
            {"name": "g-3", "says": "it was g-3", "runs": ["g-3"], "plausible": True, "because": "it may be"},
            {
                "name": "g-3-alas",
                "says": "it was g-3, read against the text",
                "runs": ["g-3"],
                "plausible": False,
                "because": "the text says otherwise",
            },
            {"name": "other", "says": "it was other", "runs": ["other"], "plausible": True, "because": "why not"},
        ],
        "untested": ["what cannot be tried here"],
    }  # fmt: skip
)


def test_a_pick_takes_per_seed_the_best_run_of_the_experiments(runs):
    h = SPEC.hypotheses[0]
    picked, name = hypothesis_runs(runs, h, "test_acc", 0.53)
    assert name == "best-val" and [r.seed for r in picked] == list(range(1, 11))
    assert [r.experiment for r in picked] == ["best-val"] * 10 and all(r.paper == {"test_acc": 0.53} for r in picked)
    source = {(r.experiment, r.seed): r.final["test_acc"] for r in runs}
    assert [r.final["test_acc"] for r in picked] == [source["g-2" if s % 2 == 0 else "g-1", s] for s in range(1, 11)]
    # a seed one experiment lacks (or lost to divergence) is left out
    fewer = [r for r in runs if not (r.experiment == "g-2" and r.seed == 3)]
    fewer[0] = run("g-1", 1, 0.5, 0.5, status="diverged")
    assert [r.seed for r in hypothesis_runs(fewer, h, "test_acc", 0.53)[0]] == [2, 4, 5, 6, 7, 8, 9, 10]


def test_one_experiment_is_judged_in_its_pool_with_the_reports_value(runs):
    frame = discrepancy_frame(runs, [SPEC], summary_frame(runs, RULE).to_dict("records"), RULE)
    row = frame.set_index("hypothesis").loc[AS_RUN]
    direct = judge(tidy(runs), RULE, [("g-1", "test_acc")]).iloc[0]
    assert row["z"] == direct["z"] and row["verdict"] == direct["verdict"] == "inconsistent"
    # g-3 carries no report number: it is judged with g-1's, on its own variance (no pool)
    g3 = frame.set_index("hypothesis").loc["g-3"]
    moved = [r if r.experiment != "g-3" else RunRecord(**{**r.__dict__, "paper": {"test_acc": 0.53}}) for r in runs]
    assert g3["z"] == judge(tidy(moved), RULE, [("g-3", "test_acc")]).iloc[0]["z"]


def test_only_a_consistent_and_plausible_hypothesis_explains(runs):
    frame = discrepancy_frame(runs, [SPEC], summary_frame(runs, RULE).to_dict("records"), RULE)
    assert list(frame.hypothesis) == [AS_RUN, "best-val", "g-3", "g-3-alas", "other"]
    got = frame.set_index("hypothesis")[["verdict", "explains"]].to_dict("index")
    assert got["g-3"] == {"verdict": "consistent", "explains": True}
    assert got["g-3-alas"] == {"verdict": "consistent", "explains": False}  # not a plausible reading
    assert got["other"] == {"verdict": "inconsistent", "explains": False}
    assert not got[AS_RUN]["explains"]


def test_numbers_not_consistent_under_the_reports_setting_and_configured_ones_are_listed(runs):
    summary = summary_frame(runs, RULE).to_dict("records")
    for row in summary:
        row["verdict"] = "consistent"
    assert discrepancy_frame(runs, [], summary, RULE).empty
    # a configured number stays, with its explanations, when its verdict moved to consistent
    assert list(discrepancy_frame(runs, [SPEC], summary, RULE).hypothesis) == [
        AS_RUN,
        "best-val",
        "g-3",
        "g-3-alas",
        "other",
    ]
    summary[0]["verdict"], summary[0]["reading"] = "inconsistent", "another reading"
    assert discrepancy_frame(runs, [], summary, RULE).empty
    summary[0]["reading"] = ""
    frame = discrepancy_frame(runs, [], summary, RULE)  # nothing configured: the number alone
    assert list(frame.hypothesis) == [AS_RUN]


def test_the_section_says_what_explains_and_what_is_ruled_out(runs, tmp_path):
    frame = discrepancy_frame(runs, [SPEC], summary_frame(runs, RULE).to_dict("records"), RULE)
    path = tmp_path / "discrepancies.csv"
    path.write_text(csv_text(frame, [f"discrepancies: {json.dumps([SPEC.as_dict()])}"]))
    text = "\n".join(discrepancies_section(path))
    assert "### g-1 test_acc: the report's 0.530" in text
    assert "**Explained by best-val, g-3.** Ruled out as inconsistent: other (z = " in text
    assert "consistent but not a plausible reading: g-3-alas" in text
    assert "- *g-3-alas*: the text says otherwise" in text and "- what cannot be tried here" in text
    assert re.search(r"\| best-val: per seed, best by validation \| g-1, g-2 \(best val_acc per seed\) \|", text)
    frame.loc[frame.hypothesis == "g-3", "plausible"] = False
    frame["explains"] = False
    path.write_text(csv_text(frame, []))
    assert "**Not explained.** Ruled out as inconsistent: other" in "\n".join(discrepancies_section(path))
    # a configured number whose verdict is consistent: nothing to explain, the tests still shown
    frame.loc[frame.hypothesis == AS_RUN, "verdict"] = "consistent"
    frame.loc[frame.hypothesis == "g-3", ["plausible", "explains"]] = True
    path.write_text(csv_text(frame, []))
    text = "\n".join(discrepancies_section(path))
    said = (
        "**Consistent under the report's setting: nothing to explain** (listed because the config tests it). "
        "Consistent and plausible too: g-3. Ruled out"
    )
    assert said in text and "Not explained" not in text and "Explained by" not in text


def test_the_verb_and_the_records_data_agree(runs, tmp_path, monkeypatch):
    """kmlp discrepancies writes the table; the record shows it; check-record derives it again."""
    monkeypatch.chdir(tmp_path)
    paths = []
    for r in runs:
        paths.append(f"{r.experiment}-{r.seed}.h5")
        write_run(paths[-1], r)
    verdict = json.dumps({"pools": RULE.pools})
    out = ["--out-tex", "s.tex", "--out-csv", "s.csv"]
    assert main(["summary", *paths, "--verdict", verdict, *out]) == 0
    spec = json.dumps([SPEC.as_dict()])
    argv = ["discrepancies", *paths, "--verdict", verdict, "--summary", "s.csv", "--spec", spec]
    assert main([*argv, "--out-tex", "d.tex", "--out-csv", "d.csv"]) == 0
    assert "tab:discrepancies" in Path("d.tex").read_text()
    (tmp_path / "g.csv").write_text("# environment: x\ncheck,parameter,passed\n")
    argv = ["record", "--summary", "s.csv", "--discrepancies", "d.csv", "--gradcheck", "g.csv", "--out", "rec.md"]
    assert main([*argv, "--runs", *paths, "--out-runs", "rec-runs.csv"]) == 0
    record = Path("rec.md").read_text()
    assert "## Discrepancies" in record and "**Explained by best-val, g-3.**" in record
    found = compare_record(record, "rec-runs.csv")
    assert found.equal and "discrepancies" in found.derived, found.report()
    # a hypothesis's verdict edited in the record is found
    edited = record.replace("**Explained by best-val, g-3.**", "**Explained by g-3.**")
    assert not compare_record(edited, "rec-runs.csv").equal


def test_bad_entries_are_named_by_key():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    entry = config["discrepancies"][0]
    entry["hypotheses"][0] = {**entry["hypotheses"][0], "pick": ""}
    entry["hypotheses"][1] = {**entry["hypotheses"][1], "runs": ["no-such"]}
    config["discrepancies"].append({"experiment": "3layer-bn", "metric": "train_acc", "hypotheses": []})
    with pytest.raises(StudyError) as err:
        Study(config).check()
    said = "\n".join(err.value.problems)
    assert "discrepancies[0].hypotheses.grid-best-val: several experiments need a `pick` metric" in said
    assert "discrepancies[0]: 'no-such' is not an experiment of the config" in said
    assert f"discrepancies[{len(config['discrepancies']) - 1}]: the report gives no train_acc for 3layer-bn" in said


def test_the_configured_hypotheses_quote_the_report():
    """Every double-quoted passage of a hypothesis's `because` occurs in the report."""
    if not REPORT.exists():
        pytest.skip(f"no report at {REPORT}: the discrepancies' quotations are not checked")
    report = " ".join(REPORT.read_text().split()).replace("$\\lambda$", "lambda")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    quotes = [
        q for d in config["discrepancies"] for h in d["hypotheses"] for q in re.findall(r'"([^"]+)"', h["because"])
    ]
    assert len(quotes) >= 5
    for q in quotes:
        assert q in report, q
