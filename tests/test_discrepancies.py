"""The record's Discrepancies (``kmlp discrepancies``): every number of the report that is not
consistent under the report's setting, beside the hypotheses tested for it, each judged with
that number's variance model, Holm-corrected over the hypotheses tried on it, judged on
every other report number it touches and by a joint fit, and graded; the config's entries
checked, and their quotations found in the report, saying what they are quoted for."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml

from kmlp.aggregate.discrepancies import AS_RUN, discrepancy_frame, grade, hypothesis_runs
from kmlp.aggregate.record import discrepancies_section
from kmlp.aggregate.record_data import compare_record
from kmlp.aggregate.stats import holm, judge, summary_frame, tidy
from kmlp.aggregate.tabular import csv_text
from kmlp.cli import main
from kmlp.runs import FINAL_METRICS, HISTORY_COLUMNS, RunRecord, write_run
from kmlp.study import Study, StudyError
from kmlp.study.discrepancies import Discrepancy, Hypothesis
from kmlp.study.verdict import VerdictRule

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO.parent / "shared" / "reference" / "000_65490bf2cd826700.txt"
RULE = VerdictRule.from_dict({"pools": {"test": {"metric": "test_acc", "experiments": ["g-1", "g-2"]}}})
#: experiment -> (test accuracy around which its seeds lie, the report's numbers). h-1 is a
#: second report number, consistent under our setting, in no pool; h-1-x and h-1-y train
#: it under two hypotheses, the first as the report has it, the second far from it.
MEANS = {"g-1": (0.50, {"test_acc": 0.53}), "g-2": (0.52, {}), "g-3": (0.53, {}), "other": (0.40, {}),
         "h-1": (0.45, {"test_acc": 0.45}), "h-1-x": (0.45, {}), "h-1-y": (0.40, {})}  # fmt: skip


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


def h(name, runs, **more) -> dict:
    return {"name": name, "says": f"it was {name}", "runs": runs, "plausible": True, "because": "it may be",
            "posed": "abc1234", "post_hoc": False, **more}  # fmt: skip


SPEC = Discrepancy.from_dict(
    {
        "experiment": "g-1",
        "metric": "test_acc",
        "hypotheses": [
            h("best-val", ["g-1", "g-2"], pick="val_acc", kind="procedure", report_pick=["g-2"]),
            h("g-3", ["g-3"], touches={"h-1": "h-1-x"}),
            h("g-3-alas", ["g-3"], plausible=False, because="the text says otherwise"),
            h("g-3-late", ["g-3"], post_hoc=True, touches={"h-1": "h-1-x"}),
            h("g-3-short", ["g-3"], untrained=["h-1"]),
            h("g-3-wide", ["g-3"], touches={"h-1": "h-1-y"}),
            h("other", ["other"]),
        ],
        "untested": ["what cannot be tried here"],
    }
)
NAMES = [AS_RUN, "best-val", "g-3", "g-3-alas", "g-3-late", "g-3-short", "g-3-wide", "other"]


@pytest.fixture(scope="module")
def frame(runs):
    return discrepancy_frame(runs, [SPEC], summary_frame(runs, RULE).to_dict("records"), RULE)


def heads(frame):
    return frame[frame.role != "touched"].set_index("hypothesis")


def test_a_pick_takes_per_seed_the_best_run_of_the_experiments(runs):
    hyp = SPEC.hypotheses[0]
    picked, name = hypothesis_runs(runs, hyp, "test_acc", 0.53)
    assert name == "best-val" and [r.seed for r in picked] == list(range(1, 11))
    assert [r.experiment for r in picked] == ["best-val"] * 10 and all(r.paper == {"test_acc": 0.53} for r in picked)
    source = {(r.experiment, r.seed): r.final["test_acc"] for r in runs}
    assert [r.final["test_acc"] for r in picked] == [source["g-2" if s % 2 == 0 else "g-1", s] for s in range(1, 11)]
    # a seed one experiment lacks (or lost to divergence) is left out
    fewer = [r for r in runs if not (r.experiment == "g-2" and r.seed == 3)]
    fewer[0] = run("g-1", 1, 0.5, 0.5, status="diverged")
    assert [r.seed for r in hypothesis_runs(fewer, hyp, "test_acc", 0.53)[0]] == [2, 4, 5, 6, 7, 8, 9, 10]


def test_a_hypothesis_is_judged_with_the_variance_model_of_the_number_it_stands_in_for(runs, frame):
    rows = heads(frame)
    setting = rows.loc[AS_RUN]
    direct = judge(tidy(runs), RULE, [("g-1", "test_acc")]).iloc[0]
    assert setting["z"] == direct["z"] and setting["verdict"] == direct["verdict"] == "inconsistent"
    # g-1 is pooled with g-2: g-3's runs are judged with that pool's seed variance and degrees
    # of freedom, not their own (their own would give df 9)
    g3 = rows.loc["g-3"]
    assert g3["pool"] == "test" and g3["df"] == setting["df"] == 18 and g3["s_seed"] == setting["s_seed"]
    values = np.array([r.final["test_acc"] for r in runs if r.experiment == "g-3"])
    sigma = np.sqrt(setting["s_seed"] ** 2 * (1 + 1 / 10) + 0.001**2 / 12)
    assert g3["z"] == pytest.approx((0.53 - values.mean()) / sigma, rel=1e-12)
    # h-1 is in no pool: its stand-in h-1-y is judged on its own variance
    [wide] = frame[(frame.hypothesis == "g-3-wide") & (frame.role == "touched")].to_dict("records")
    own = np.array([r.final["test_acc"] for r in runs if r.experiment == "h-1-y"])
    assert wide["pool"] == "" and wide["df"] == 9 and wide["s_seed"] == pytest.approx(own.std(ddof=1), rel=1e-12)
    assert (wide["number_experiment"], wide["stands_in"], wide["verdict"]) == ("h-1", "h-1-y", "inconsistent")


def test_the_hypotheses_on_a_number_are_one_holm_family(frame):
    rows = heads(frame)
    tried = rows.drop(AS_RUN)
    assert (tried.m == len(SPEC.hypotheses)).all()
    p = 2 * scipy.stats.t.sf(np.abs(tried.z.to_numpy()), tried.df.to_numpy())
    assert np.allclose(tried.p, p, rtol=1e-12)
    # Holm by hand: sorted ascending, the j-th times (m - j + 1), never below an earlier one
    order = np.argsort(p)
    by_hand = np.maximum.accumulate(np.minimum(1, (len(p) - np.arange(len(p))) * p[order]))
    assert np.allclose(tried.p_holm.to_numpy()[order], by_hand, rtol=1e-12)
    levels = np.where(by_hand >= 0.05, "consistent", np.where(by_hand < 0.001, "inconsistent", "borderline"))
    assert list(tried.verdict_holm.to_numpy()[order]) == list(levels)
    assert list(holm([0.01, np.nan, 0.04, 0.03])[[0, 2, 3]]) == pytest.approx([0.03, 0.06, 0.06])


def test_every_number_a_hypothesis_touches_is_judged_and_the_fits_added_up(runs, frame):
    rows = heads(frame)
    assert rows.loc["g-3", "touched"] == 2 and rows.loc["g-3-alas", "touched"] == 1
    assert rows.loc["g-3-wide", "inconsistent_on"] == "h-1:test_acc" and rows.loc["g-3", "inconsistent_on"] == ""
    for name in ("g-3", "g-3-wide"):
        zs = frame[frame.hypothesis == name].z.to_numpy()
        ps = 2 * scipy.stats.t.sf(np.abs(zs), frame[frame.hypothesis == name].df.to_numpy())
        assert rows.loc[name, "chi2"] == pytest.approx(float(np.sum(scipy.stats.norm.isf(ps / 2) ** 2)), rel=1e-9)
    # our setting over the same two numbers: g-1's and h-1's own verdicts
    ours = judge(tidy(runs), RULE, [("g-1", "test_acc"), ("h-1", "test_acc")])
    p = 2 * scipy.stats.t.sf(np.abs(ours.z.to_numpy()), ours.df.to_numpy())
    assert rows.loc["g-3", "chi2_ours"] == pytest.approx(float(np.sum(scipy.stats.norm.isf(p / 2) ** 2)), rel=1e-9)
    assert rows.loc["g-3", "chi2"] < 1 < 25 < rows.loc["g-3-wide", "chi2"] and rows.loc["g-3", "chi2_ours"] > 10
    # the report's pick: g-2 is best on the even seeds, 5 of 10
    assert (rows.loc["best-val", "pick_k"], rows.loc["best-val", "pick_n"]) == (5, 10)
    assert rows.loc["best-val", "pick_verdict"] == "consistent"


def test_the_grades(frame):
    got = heads(frame).grade.to_dict()
    assert got == {
        AS_RUN: "",
        "best-val": "ruled out",  # its picks sit between g-1 and g-2, judged with their pool's spread
        "g-3": "explains",
        "g-3-alas": "fits",  # not a plausible reading
        "g-3-late": "fits",  # posed after its result
        "g-3-short": "fits",  # a number it touches untrained
        "g-3-wide": "fits this number only",  # inconsistent on h-1
        "other": "ruled out",
    }
    assert list(heads(frame).explains) == [g == "explains" for g in got.values()]


@pytest.mark.parametrize(
    "here, elsewhere, pick, chi2, expected",
    [
        ("inconsistent", "", "", (1, 2), "ruled out"),
        ("borderline", "x:test_acc", "", (1, 2), "ruled out"),
        ("borderline", "", "inconsistent", (1, 2), "ruled out"),
        ("borderline", "", "borderline", (1, 2), "not ruled out"),
        ("consistent", "", "inconsistent", (1, 2), "fits this number only"),
        ("consistent", "", "", (3, 2), "fits this number only"),
        ("consistent", "", "borderline", (2, 2), "explains"),
    ],
)
def test_the_grade_of_each_outcome(here, elsewhere, pick, chi2, expected):
    row = {"verdict_holm": here, "inconsistent_on": elsewhere, "pick_verdict": pick, "chi2": chi2[0],
           "chi2_ours": chi2[1]}  # fmt: skip
    assert grade(Hypothesis("x", "", ("a",), True, "", post_hoc=False), row) == expected
    if expected == "explains":
        for weaker in ({"plausible": False}, {"post_hoc": True}, {"untrained": ("b",)}):
            assert grade(Hypothesis(**{"name": "x", "says": "", "runs": ("a",), "plausible": True, "because": "",
                                       "post_hoc": False, **weaker}), row) == "fits"  # fmt: skip
        # nothing said of when it was posed: it may have been after its result
        assert grade(Hypothesis("x", "", ("a",), True, ""), row) == "fits"


def test_numbers_not_consistent_under_the_reports_setting_and_configured_ones_are_listed(runs):
    summary = summary_frame(runs, RULE).to_dict("records")
    for row in summary:
        row["verdict"] = "consistent"
    assert discrepancy_frame(runs, [], summary, RULE).empty
    # a configured number stays, with its explanations, when its verdict moved to consistent
    listed = discrepancy_frame(runs, [SPEC], summary, RULE)
    assert list(listed[listed.role != "touched"].hypothesis) == NAMES
    summary[0]["verdict"], summary[0]["reading"] = "inconsistent", "another reading"
    assert discrepancy_frame(runs, [], summary, RULE).empty
    summary[0]["reading"] = ""
    alone = discrepancy_frame(runs, [], summary, RULE)  # nothing configured: the number alone
    assert list(alone.hypothesis) == [AS_RUN]


def test_the_section_says_what_explains_and_what_is_ruled_out(frame, tmp_path):
    path = tmp_path / "discrepancies.csv"
    path.write_text(csv_text(frame, [f"discrepancies: {json.dumps([SPEC.as_dict()])}"]))
    text = "\n".join(discrepancies_section(path))
    assert "### g-1 test_acc: the report's 0.530" in text
    assert (
        "**Explained by g-3.** Fits, short of explaining: g-3-alas (not a plausible reading), g-3-late (posed or "
        "revised after its result), g-3-short (1 number it touches untrained)"
    ) in text
    assert "fits this number only: g-3-wide (inconsistent on h-1:test_acc)" in text
    assert "ruled out: best-val (z = " in text and "other (z = " in text
    assert "7 hypotheses tried on this number: Holm's correction is over 7." in text
    assert "- *best-val*: one of the report's in 5 of 10 seeds: consistent (rate rule)" in text
    assert "- *g-3-alas*: the text says otherwise" in text and "- what cannot be tried here" in text
    assert re.search(r"\| best-val: it was best-val \| g-1, g-2 \(best val_acc per seed\) \|", text)
    assert "#### g-3-wide (implementation: posed abc1234)" in text
    row = r"\| h-1 test_acc \| 0\.450 \| h-1-y \| 0\.4\d\d \| -?0\.\d \| consistent \| 0\.3\d\d ± 0\.00\d \| \d+\.\d \|"
    assert re.search(row + r" inconsistent \|", text)
    edited = frame.copy()
    edited.loc[edited.hypothesis == "g-3", ["grade", "explains"]] = ["fits", False]
    path.write_text(csv_text(edited, []))
    assert "**Not explained by any hypothesis tested.** Fits, short of explaining: g-3 (" in "\n".join(
        discrepancies_section(path)
    )
    # a configured number whose verdict is consistent: nothing to explain, the tests still shown
    edited.loc[edited.hypothesis == AS_RUN, "verdict"] = "consistent"
    path.write_text(csv_text(edited, []))
    text = "\n".join(discrepancies_section(path))
    said = "**Consistent under the report's setting: nothing to explain** (listed because the config tests it). Fits"
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
    tex = Path("d.tex").read_text()
    assert "tab:discrepancies" in tex and "fits this number only" in tex and "& h-1-y" not in tex
    (tmp_path / "g.csv").write_text("# environment: x\ncheck,parameter,passed\n")
    argv = ["record", "--summary", "s.csv", "--discrepancies", "d.csv", "--gradcheck", "g.csv", "--out", "rec.md"]
    assert main([*argv, "--runs", *paths, "--out-runs", "rec-runs.csv"]) == 0
    record = Path("rec.md").read_text()
    assert "## Discrepancies" in record and "**Explained by g-3.**" in record
    found = compare_record(record, "rec-runs.csv")
    assert found.equal and "discrepancies" in found.derived, found.report()
    # a hypothesis's grade edited in the record is found
    edited = record.replace("**Explained by g-3.**", "**Explained by g-3-late.**")
    assert not compare_record(edited, "rec-runs.csv").equal


def git(*args) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else ""


def test_when_each_hypothesis_was_posed_is_what_the_history_shows():
    """`posed` is the first commit whose config states the hypothesis; one not `post_hoc` had
    no run of its own number in the record's data then (its result unseen)."""
    if not git("rev-parse", "--verify", "-q", "02836d3^{commit}"):
        pytest.skip("this clone lacks the history the hypotheses' `posed` commits are in")
    for d in configured_entries():
        for hyp in d["hypotheses"]:
            first = git("log", "--reverse", "--format=%h", "-S", f"name: {hyp['name']}", "--", "config/config.yaml")
            assert first.split()[0].startswith(hyp["posed"][:7]), (hyp["name"], first.split()[:1], hyp["posed"])
            data = git("show", f"{hyp['posed']}:docs/reproduction-runs.csv")
            seen = [e for e in hyp["runs"] if re.search(rf"^{re.escape(e)},", data, re.M)]
            if not hyp["post_hoc"]:
                assert seen == [], f"{hyp['name']}: posed when the record held runs of {seen}: post hoc"
            elif "posed with its result" in " ".join(hyp.get("history", [])):
                assert seen, f"{hyp['name']}: no run of it in the record when posed, yet called posed with its result"


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


#: What a hypothesis's `because` must quote the report for, by its kind (its name): key words
#: that its quotations must hold between them (a tuple: any one of those words), each
#: quotation at least one of them; or, for a `because` that says the report states nothing
#: of the kind, words the report must not contain. A new kind needs a row here.
SUPPORT = {
    # the report picks its best network by validation
    "grid-best-val": {"quoted": ["validation accuracy", "recorded"]},
    "grid-best-test": {"quoted": ["validation accuracy", "recorded"]},
    # its best is a very small lambda or none
    "grid-lambda-0": {"quoted": ["very small", "no regularization"]},
    "grid-lambda-0.01": {"quoted": ["very small", "no regularization"]},
    # the report states no split, no precision
    "val1000": {"silent": ["1,000", "1000", "49,000", "49000", "split"]},
    "float64": {"silent": ["float32", "float64", "double", "precision"]},
    # 8 epochs of training, not 12
    "final-3-cycles": {"quoted": ["8 epochs"]},
    # where batch norm sits: the report adds batch normalization and never names the ReLU
    "bn-after-relu": {"quoted": ["batch normalization"], "silent": ["relu"]},
    # the net measured after its training
    "best-val-checkpoint": {"quoted": [("after training", "epochs of training"), "performance"]},
    # the batch size of exercise 2, and 8 epochs of the short schedule
    "batch-50": {"quoted": ["exercise 2", "shorter training"], "silent": ["batch size"]},
}


def report_words() -> str:
    if not REPORT.exists():
        pytest.skip(f"no report at {REPORT}: the discrepancies' quotations are not checked")
    return " ".join(REPORT.read_text().split()).replace("$\\lambda$", "lambda")


def quotation_problems(entries: list[dict], report: str) -> list[str]:
    """Where a hypothesis's quotation of the report is not the report's, or does not say what
    it is quoted for (SUPPORT)."""
    found = []
    for d in entries:
        for h in d["hypotheses"]:
            where = f"{d['experiment']} {h['name']}"
            quotes = re.findall(r'"([^"]+)"', h["because"])
            found += [f"{where}: not in the report: {q!r}" for q in quotes if q not in report]
            if h["name"] not in SUPPORT:
                found.append(f"{where}: no row in SUPPORT says what this kind must quote the report for")
                continue
            row = SUPPORT[h["name"]]
            words = [w if isinstance(w, tuple) else (w,) for w in row.get("quoted", [])]
            if words and not quotes:
                found.append(f"{where}: quotes nothing of the report, but must quote it for {words}")
            if quotes and not words:
                found.append(f"{where}: quotes the report, but SUPPORT names no key words it must hold")
            said = " ".join(quotes).lower()
            found += [f"{where}: its quotations do not say any of {w}" for w in words if not any(x in said for x in w)]
            found += [
                f"{where}: the quotation {q!r} says none of {words}"
                for q in quotes
                if words and not any(x in q.lower() for w in words for x in w)
            ]
            found += [
                f"{where}: the report does say {w!r}"
                for w in row.get("silent", [])
                if re.search(rf"\b{re.escape(w)}\b", report, re.IGNORECASE)
            ]
    return found


def test_the_configured_hypotheses_quote_the_report_for_what_they_claim():
    """Every double-quoted passage of a hypothesis's `because` occurs in the report and holds
    the key words of its kind; where the report is said to be silent, it is."""
    entries = configured_entries()
    quotes = [q for d in entries for h in d["hypotheses"] for q in re.findall(r'"([^"]+)"', h["because"])]
    assert len(quotes) >= 5
    found = quotation_problems(entries, report_words())
    assert found == [], "\n".join(found)


def configured_entries() -> list[dict]:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())["discrepancies"]


def hypothesis(entries: list[dict], experiment: str, name: str) -> dict:
    [entry] = [d for d in entries if d["experiment"] == experiment]
    return next(h for h in entry["hypotheses"] if h["name"] == name)


#: The report's number each configured hypothesis is tested for, by the experiment.
BEST, NINE = "lambda-bn-0.0001", "9layer-bn"


@pytest.mark.parametrize(
    "experiment, name, old, new, said",
    [
        # a real passage of the report, quoted for a claim it does not speak of
        (BEST, "bn-after-relu", "we add batch normalization to the first and second layers of the three-layer "
         "architecture", "Then the validation accuracy was recorded for each setting.", "do not say any of"),
        (BEST, "batch-50", "by the settings of exercise 2", "This may indicate the regularization effect of batch "
         "normalization", "do not say any of ('exercise 2',)"),
        (NINE, "best-val-checkpoint", "After training, the performance of the 9-layer model was 0.524 on validation "
         "and 0.525 on test data", "the regularization effect of batch normalization", "do not say any of"),
        (BEST, "grid-best-val", "Then the validation accuracy was recorded for each setting.", "the performance of "
         "the best network with 8 epochs of training was 0.528 on the test data", "do not say any of"),
        (BEST, "grid-lambda-0", "or even no regularization at all", "the regularization effect of batch "
         "normalization", "do not say any of ('no regularization',)"),
        (BEST, "final-3-cycles", "the best network with 8 epochs of training", "Then the validation accuracy was "
         "recorded", "do not say any of ('8 epochs',)"),
        # a real passage beside the right ones, saying none of the key words
        (BEST, "grid-lambda-0", '"very small"', '"very small" "we add batch normalization to the first and second '
         'layers"', "says none of"),
        # the passage no longer quoted
        (NINE, "bn-after-relu", '"we add batch normalization to the first and second layers of the three-layer '
         'architecture"', "we add batch normalization", "quotes nothing of the report"),
        # a quotation that is not the report's
        (BEST, "final-3-cycles", "the best network with 8 epochs", "the best network after 8 epochs",
         "not in the report"),
    ],
)  # fmt: skip
def test_a_quotation_that_does_not_say_what_it_is_quoted_for_fails(experiment, name, old, new, said):
    report, entries = report_words(), configured_entries()
    h = hypothesis(entries, experiment, name)
    assert old in h["because"] and quotation_problems(entries, report) == []
    h["because"] = h["because"].replace(old, new)
    found = quotation_problems(entries, report)
    assert any(f.startswith(f"{experiment} {name}: ") and said in f for f in found), found


def test_a_hypothesis_of_a_new_kind_needs_a_row():
    report, entries = report_words(), configured_entries()
    hypothesis(entries, BEST, "float64")["name"] = "float16"
    assert quotation_problems(entries, report) == [
        f"{BEST} float16: no row in SUPPORT says what this kind must quote the report for"
    ]


def test_a_silence_the_report_breaks_fails():
    """A `because` that says the report states no precision fails when the report states one."""
    entries = configured_entries()
    found = quotation_problems(entries, report_words() + " All networks were trained in float32.")
    assert found == [f"{e} float64: the report does say 'float32'" for e in (BEST, NINE)]


def test_every_row_of_the_table_is_a_configured_kind_and_says_something():
    kinds = {h["name"] for d in configured_entries() for h in d["hypotheses"]}
    assert set(SUPPORT) == kinds, "a row for a kind no hypothesis has, or a kind with no row"
    for kind, row in SUPPORT.items():
        assert row.keys() <= {"quoted", "silent"} and (row.get("quoted") or row.get("silent")), kind
