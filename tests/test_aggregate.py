"""Aggregation verbs (figure, table, summary, gradtable, report, pdf, record) on
synthetic run files: the numbers are numpy's, the outputs are deterministic."""

from __future__ import annotations

import json
import math
import re
import shutil
import stat

import numpy as np
import pandas as pd
import pytest

from kmlp.aggregate.latex import tex_text
from kmlp.aggregate.stats import STAT_COLUMNS
from kmlp.aggregate.tabular import read_csv
from kmlp.cli import main
from kmlp.runs import FINAL_METRICS, HISTORY_COLUMNS, RunRecord, write_run
from test_verdict import exact_stability

SEEDS = (1, 2, 3)
# experiment -> (base val_acc, paper values); the lambda pair forms a 1x2 table.
EXPERIMENTS = {
    "exp_a": (0.50, {"val_acc": 0.50, "test_acc": 0.99}),  # val inside, test far outside
    "exp-b": (0.40, {"val_acc": 0.41}),
    "exp-c": (0.30, {}),
}
MD5 = "0123456789abcdef0123456789abcdef"


def final_value(exp, seed, metric):
    base = EXPERIMENTS[exp][0]
    return base + 0.01 * seed + (0.001 if metric.startswith("test") else 0.0)


def make_run(exp, seed, status="completed"):
    steps = np.arange(0, 1000, 100, dtype=float)
    rng = np.random.default_rng(seed)
    hist = {c: rng.random(steps.size) for c in HISTORY_COLUMNS}
    hist["step"], hist["epoch"] = steps, steps / 100
    final = {m: final_value(exp, seed, m) for m in FINAL_METRICS}
    if status == "diverged":
        final = {m: (math.nan if m.startswith("test") else v) for m, v in final.items()}
    return RunRecord(
        experiment=exp,
        seed=seed,
        status=status,
        settings={"lam": 0.01},
        model={"sizes": [10, 5, 3]},
        history=hist,
        final=final,
        data_md5=MD5,
        data_file="cifar.h5",
        paper=EXPERIMENTS[exp][1],
        stopped_at=500 if status == "diverged" else None,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    paths = {}
    for exp in EXPERIMENTS:
        for seed in SEEDS:
            p = d / f"{exp}-{seed}.h5"
            write_run(p, make_run(exp, seed))
            paths[exp, seed] = p
    p = d / "exp-c-4.h5"
    write_run(p, make_run("exp-c", 4, status="diverged"))
    paths["exp-c", 4] = p
    return paths


def files(runs, *exps):
    """Run files of ``exps``, in that order (the order experiments appear in outputs)."""
    return [str(p) for exp in exps for (e, _), p in runs.items() if e == exp]


def run_twice(argv_for, outputs, tmp_path):
    """Run a verb into two folders; return the bytes of each output from both runs."""
    got = []
    for k in ("one", "two"):
        d = tmp_path / k
        d.mkdir()
        assert main(argv_for(d)) == 0
        got.append({name: (d / name).read_bytes() for name in outputs})
    return got


# -- figure --------------------------------------------------------------------------
def test_figure_valid_and_deterministic(runs, tmp_path):
    def args(d):
        return [
            "figure",
            *files(runs, "exp_a", "exp-c"),
            "--title",
            "Synthetic",
            "--out",
            str(d / "f.pdf"),
            "--png",
            str(d / "f.png"),
            "--config",
            "config/config.yaml",
        ]

    one, two = run_twice(args, ["f.pdf", "f.png"], tmp_path)
    assert one == two
    assert one["f.pdf"].startswith(b"%PDF-")
    assert one["f.png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert len(one["f.png"]) < 400_000
    assert b"CreationDate" not in one["f.pdf"]
    for blob in one.values():
        assert MD5.encode() in blob and b"config/config.yaml" in blob
    assert b"matplotlib" not in one["f.png"].lower()  # no software stamp


def test_figure_mean_band_excludes_nothing_finite():
    from kmlp.aggregate.figures import mean_band

    a, b = make_run("exp_a", 1), make_run("exp_a", 2)
    steps, mean, std, n = mean_band([a, b], "val_acc")
    stack = np.stack([a.history["val_acc"], b.history["val_acc"]])
    np.testing.assert_allclose(mean, stack.mean(0))
    np.testing.assert_allclose(std, stack.std(0, ddof=1))
    assert (n == 2).all() and (steps == a.history["step"]).all()


# -- table ---------------------------------------------------------------------------
SPEC = {
    "caption": "Validation accuracy over lambda (n_s = 900, 50% more).",
    "metric": "val_acc",
    "row_label": "$\\lambda$",
    "columns": ["without BN", "with BN"],
    "rows": {"0.1": ["exp_a", "exp-b"], "0": ["exp-c", "exp_a"]},
}


def table_argv(runs, d, spec=SPEC, exps=("exp_a", "exp-b", "exp-c")):
    return [
        "table",
        *files(runs, *exps),
        "--spec",
        json.dumps(spec),
        "--out-tex",
        str(d / "t.tex"),
        "--out-csv",
        str(d / "t.csv"),
        "--config",
        "config/config.yaml",
    ]


def test_table_numbers_verdicts_and_determinism(runs, tmp_path):
    one, two = run_twice(lambda d: table_argv(runs, d), ["t.tex", "t.csv"], tmp_path)
    assert one == two
    meta, rows = read_csv(tmp_path / "one" / "t.csv")
    assert meta["data_md5"] == MD5 and meta["config"] == "config/config.yaml"
    assert list(rows[0])[:4] == ["row", "column", "experiment", "metric"]
    assert set(STAT_COLUMNS) <= set(rows[0])
    assert [(r["row"], r["column"], r["experiment"]) for r in rows] == [
        ("0.1", "without BN", "exp_a"),
        ("0.1", "with BN", "exp-b"),
        ("0", "without BN", "exp-c"),
        ("0", "with BN", "exp_a"),
    ]
    for r in rows:
        vals = [final_value(r["experiment"], s, "val_acc") for s in SEEDS]
        assert int(r["n"]) == 3  # exp-c's diverged seed 4 is left out
        assert float(r["mean"]) == pytest.approx(np.mean(vals), abs=1e-15)
        assert float(r["std"]) == pytest.approx(np.std(vals, ddof=1), abs=1e-15)
        assert r["diverged"] == ("1" if r["experiment"] == "exp-c" else "0")
    verdicts = {r["experiment"]: r["verdict"] for r in rows}
    # exp_a: mean 0.52, std 0.01, n 3: one run lies within 0.52 +- 4.30 * 0.0116 (t, 2 df)
    assert verdicts == {"exp_a": "consistent", "exp-b": "consistent", "exp-c": ""}
    tex = one["t.tex"].decode()
    for token in (
        r"\toprule",
        r"\midrule",
        r"\bottomrule",
        r"\caption{",
        r"\label{tab:t}",
        "n\\_s",
        "50\\%",
        "$\\lambda$",
        "ours & paper & verdict",
        "$0.520 \\pm 0.010$",
        "0.500",
    ):
        assert token in tex, token
    assert tex.startswith("% kmlp_version:")
    # pandas (a dependency of kmlp: its tables) reads it with comment="#"
    df = pd.read_csv(tmp_path / "one" / "t.csv", comment="#")
    assert len(df) == 4 and list(df.columns)[0] == "row"


def test_table_missing_experiment(runs, tmp_path, capsys):
    assert main(table_argv(runs, tmp_path, exps=("exp_a", "exp-b"))) == 1
    err = capsys.readouterr().err
    assert "exp-c" in err and "error" in err and "Traceback" not in err


def test_tex_text_keeps_math():
    assert tex_text("a_b $\\lambda_1$ 5%") == "a\\_b $\\lambda_1$ 5\\%"


# -- summary -------------------------------------------------------------------------
def test_summary_covers_every_paper_value(runs, tmp_path):
    def argv(d):
        return [
            "summary",
            *files(runs, "exp-b", "exp_a", "exp-c"),
            "--out-tex",
            str(d / "s.tex"),
            "--out-csv",
            str(d / "s.csv"),
        ]

    one, two = run_twice(argv, ["s.tex", "s.csv"], tmp_path)
    assert one == two
    _, rows = read_csv(tmp_path / "one" / "s.csv")
    assert list(rows[0])[:3] == ["experiment", "metric", "reading"] and set(STAT_COLUMNS) <= set(rows[0])
    assert [(r["experiment"], r["metric"]) for r in rows] == [
        ("exp-b", "val_acc"),
        ("exp_a", "val_acc"),
        ("exp_a", "test_acc"),
    ]
    got = {(r["experiment"], r["metric"]): r for r in rows}
    assert float(got["exp_a", "test_acc"]["paper"]) == 0.99
    assert got["exp_a", "test_acc"]["verdict"] == "inconsistent"
    assert got["exp_a", "val_acc"]["verdict"] == "consistent"
    assert float(got["exp_a", "test_acc"]["stability"]) == 1.0
    tex = one["s.tex"].decode()
    assert "exp\\_a" in tex and "val\\_acc" in tex and r"\toprule" in tex
    assert all(r["reading"] == "" for r in rows)


def test_summary_labels_alternative_readings(runs, tmp_path, capsys):
    out = ["--out-tex", str(tmp_path / "s.tex"), "--out-csv", str(tmp_path / "s.csv")]
    assert main(["summary", *files(runs, "exp_a", "exp-b"), "--readings", '{"exp-b": "without BN"}', *out]) == 0
    _, rows = read_csv(tmp_path / "s.csv")
    assert {r["experiment"]: r["reading"] for r in rows} == {"exp_a": "", "exp-b": "without BN"}
    assert main(["summary", *files(runs, "exp_a"), "--readings", "[1]", *out]) == 1
    assert "--readings must be a JSON object" in capsys.readouterr().err


# -- gradtable -----------------------------------------------------------------------
def gradcheck_doc(name, passed=True):
    params = {}
    for p, shape in (("W1", [5, 10]), ("b1", [5, 1]), ("W2", [3, 5])):
        params[p] = {
            "shape": shape,
            "grad_mean": 0.1,
            "grad_std": 1.5,
            "diff_mean": 1e-9,
            "diff_std": 2e-9,
            "diff_max": 3.14159e-8,
            "rel_error": 1.23456e-7,
            "max_elem_rel_error": 2e-5,
        }
    return {
        "name": name,
        "settings": {"hidden": [5], "lam": 0.0},
        "passed": passed,
        "max_rel_error": 1.23456e-7,
        "tolerance": 1e-6,
        "data_md5": MD5,
        "kmlp_version": "0",
        "parameters": params,
    }


@pytest.fixture()
def checks(tmp_path):
    paths = []
    for name, ok in (("report-nobn", True), ("report-bn", False)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(gradcheck_doc(name, ok)))
        paths.append(str(p))
    return paths


def test_gradtable(checks, tmp_path):
    def argv(d):
        return ["gradtable", *checks, "--out-tex", str(d / "g.tex"), "--out-csv", str(d / "g.csv")]

    one, two = run_twice(argv, ["g.tex", "g.csv"], tmp_path)
    assert one == two
    _, rows = read_csv(tmp_path / "one" / "g.csv")
    assert len(rows) == 6
    assert rows[0]["shape"] == "5x10" and float(rows[0]["diff_max"]) == 3.14159e-8
    assert {r["check"]: r["passed"] for r in rows} == {"report-nobn": "yes", "report-bn": "no"}
    assert "$3.14\\times10^{-8}$" in one["g.tex"].decode()


def test_gradtable_malformed(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "parameters": {"W1": {"shape": [1]}}}')
    argv = ["gradtable", str(bad), "--out-tex", str(tmp_path / "g.tex"), "--out-csv", str(tmp_path / "g.csv")]
    assert main(argv) == 1
    assert "malformed" in capsys.readouterr().err
    bad.write_text("{not json")
    assert main(argv) == 1


# -- report and pdf ------------------------------------------------------------------
def test_report_relative_paths(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "figs").mkdir()
    (tmp_path / "tables" / "t_1.tex").write_text("% table\n")
    (tmp_path / "figs" / "figure1.pdf").write_bytes(b"%PDF-1.4\n")

    def argv(d):
        return [
            "report",
            "--tables",
            str(tmp_path / "tables" / "t_1.tex"),
            "--figures",
            str(tmp_path / "figs" / "figure1.pdf"),
            "--out",
            str(d / "report.tex"),
            "--config",
            "config/config.yaml",
        ]

    one, two = run_twice(argv, ["report.tex"], tmp_path)
    assert one == two
    tex = one["report.tex"].decode()
    assert r"\input{../tables/t_1.tex}" in tex
    assert r"\includegraphics[width=\textwidth]{../figs/figure1.pdf}" in tex
    assert r"\documentclass" in tex and r"\usepackage{booktabs" in tex
    assert "config/config.yaml" in tex and str(tmp_path) not in tex


def test_pdf_without_latex(tmp_path, monkeypatch, capsys):
    (tmp_path / "r.tex").write_text("\\documentclass{article}\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["pdf", str(tmp_path / "r.tex"), "--out", str(tmp_path / "r.pdf")]) == 1
    assert "no LaTeX installation found" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()


FAKE_PDFLATEX = """#!/bin/sh
for a in "$@"; do case "$a" in -output-directory=*) out="${a#*=}";; *.tex) tex="$a";; esac; done
name=$(basename "$tex" .tex)
echo "log of $name" > "$out/$name.log"
grep -q FAIL "$tex" && exit 1
printf '%%PDF-1.5 fake\\n' > "$out/$name.pdf"
"""


def test_pdf_with_fake_pdflatex(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pdflatex"
    exe.write_text(FAKE_PDFLATEX)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    # Only the fake and the tools it uses: a real latexmk on the machine stays unseen.
    for tool in ("basename", "grep"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    tex = tmp_path / "src" / "r.tex"
    tex.parent.mkdir()
    tex.write_text("ok\n")
    assert main(["pdf", str(tex), "--out", str(tmp_path / "out" / "r.pdf")]) == 0
    assert (tmp_path / "out" / "r.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tex.parent.iterdir()) == ["r.tex"]  # no intermediates
    tex.write_text("FAIL\n")
    assert main(["pdf", str(tex), "--out", str(tmp_path / "out" / "bad.pdf")]) == 1
    assert "bad.log" in capsys.readouterr().err
    assert (tmp_path / "out" / "bad.log").read_text() == "log of r\n"


# -- record --------------------------------------------------------------------------
def test_record(runs, checks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = tmp_path / "results"
    assert (
        main(["summary", *files(runs, "exp_a", "exp-b"), "--out-tex", "results/s.tex", "--out-csv", "results/s.csv"])
        == 0
    )
    assert main(["gradtable", *checks, "--out-tex", "results/g.tex", "--out-csv", "results/g.csv"]) == 0
    assert main(["figure", *files(runs, "exp_a"), "--out", "results/figure1.pdf", "--png", "results/figure1.png"]) == 0
    for k, secs in enumerate((10.5, 20.25)):
        (res / f"bench{k}.tsv").write_text(f"s\th:m:s\tmax_rss\n{secs}\t0:00:10\t1.0\n")
    (tmp_path / "notes.md").write_text("The test accuracy of exp_a is off because of X.\n")
    meta = {"command": "snakemake -c4", "config": "config/config.yaml", "data_md5": MD5, "kmlp_version": "0.1.0"}

    def argv(d):
        return [
            "record",
            "--summary",
            "results/s.csv",
            "--gradcheck",
            "results/g.csv",
            "--figures",
            "results/figure1.png",
            "--benchmarks",
            "results/bench0.tsv",
            "results/bench1.tsv",
            "--meta",
            json.dumps(meta),
            "--notes",
            "notes.md",
            "--out",
            f"{d.name}/reproduction.md",
        ]

    one, two = run_twice(argv, ["reproduction.md", "figures/figure1.png"], tmp_path)
    assert one == two
    md = one["reproduction.md"].decode()
    assert one["figures/figure1.png"] == (res / "figure1.png").read_bytes()
    assert "](figures/figure1.png)" in md
    assert "snakemake -c4" in md and MD5 in md
    # t(0.975, 2 df) = 4.303, one run's spread sqrt(0.01^2 (1 + 1/3) + 0.001^2 / 12) = 0.01155.
    # Stability, enumerated: of the 27 resamples of 3 seeds, the 3 that repeat one value have
    # no spread (inconsistent); the other 24 keep val_acc consistent (|z| <= 4.0), so 24/27 =
    # 89 %, and every one keeps test_acc inconsistent (|z| >= 35 > t(0.9995, 2) = 31.6): 100 %.
    # The record shows the bootstrap's estimate (1000 resamples): within its binomial error.
    # (The 91 % this test once expected was the code's own output.)
    lines = {
        "test_acc": "| exp_a | test_acc | 0.990 | 0.521 ± 0.010 | 3 | [0.471, 0.571] | 40.6 | inconsistent |",
        "val_acc": "| exp_a | val_acc | 0.500 | 0.520 ± 0.010 | 3 | [0.470, 0.570] | -1.7 | consistent |",
    }
    exact = {
        "test_acc": exact_stability([0.511, 0.521, 0.531], 0.99),
        "val_acc": exact_stability([0.51, 0.52, 0.53], 0.50),
    }
    assert exact == {"test_acc": ("inconsistent", 1.0), "val_acc": ("consistent", pytest.approx(24 / 27))}
    for metric, line in lines.items():
        m = re.search(rf"^{re.escape(line)} (\d+)% \| 0 \|", md, re.M)
        assert m, line
        share = exact[metric][1]
        # 4 binomial standard errors, and the display's rounding to a percent
        assert abs(int(m.group(1)) / 100 - share) <= 4 * math.sqrt(share * (1 - share) / 1000) + 0.005, m.group(1)
    assert "The report's setting: of 3 numbers, 1 inconsistent and 2 not (2 consistent, 0 borderline)." in md
    assert "inside the interval that one run of ours falls in with 95% probability" in md
    assert "| report-bn | 3 | 1.23e-07 | 1e-06 | no |" in md
    assert "1 of 2 checks passed" in md
    assert "2 jobs took 31 s" in md and "wall-clock" in md
    assert "because of X" in md
    assert str(tmp_path) not in md and "`results/s.csv`" in md


# -- diagnose ----------------------------------------------------------------------
def test_diagnose_batch_statistics_and_sampling_spread(tmp_path):
    """Re-evaluation from stored weights: a BN net scored with its moving averages and
    with each split's own statistics, and the binomial spread of an accuracy."""
    from kmlp import MLP
    from kmlp.aggregate.diagnose import diagnose_frame
    from kmlp.data.dataset import Dataset
    from kmlp.runs import RunRecord

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    ds = Dataset(
        X[:200], y[:200], X[200:300], y[200:300], X[300:], y[300:], np.zeros(6), np.ones(6), ["a", "b"], "md5", {}
    )
    models = {}
    runs = []
    for seed in (1, 2):
        m = MLP([6, 8, 2], batch_norm=True, seed=seed, dtype=np.float32)
        for _i in range(50):
            m.train_step(X[:200], y[:200], 0.0, 0.1)
        models[seed] = m
        runs.append(RunRecord("e", seed, "completed", {}, m.config(), {}, {}, paper={"val_acc": 0.5, "test_acc": 0.99}))
    cells = diagnose_frame({"e": runs}, lambda r: models[r.seed], lambda r: ds)
    cell = {(c["row"], c["column"]): c for _, c in cells.iterrows()}
    moving = cell["e: val", "moving averages"]
    expected = [float(np.mean(np.argmax(models[s].logits(ds.X_val), 1) == ds.y_val)) for s in (1, 2)]
    assert moving["mean"] == pytest.approx(np.mean(expected)) and moving["paper"] == 0.5
    batch = cell["e: val", "batch statistics"]
    expected = [float(np.mean(np.argmax(models[s].forward(ds.X_val, "train"), 1) == ds.y_val)) for s in (1, 2)]
    assert batch["mean"] == pytest.approx(np.mean(expected)) and batch["n"] == 2
    se = cell["e: val", "sampling std (binomial)"]["mean"]
    assert se == pytest.approx(math.sqrt(moving["mean"] * (1 - moving["mean"]) / 100))
    assert cell["e: test", "sampling std (binomial)"]["metric"] == "binomial std on 100 images"


def test_table_column_metrics(runs, tmp_path):
    spec = {
        "caption": "c",
        "metric": "val_acc",
        "row_label": "x",
        "columns": ["val", "test"],
        "column_metrics": ["val_acc", "test_acc"],
        "rows": {"r": ["exp_a", "exp_a"]},
    }
    out = ["--out-tex", str(tmp_path / "t.tex"), "--out-csv", str(tmp_path / "t.csv")]
    assert main(["table", *files(runs, "exp_a"), "--spec", json.dumps(spec), *out]) == 0
    _, rows = read_csv(tmp_path / "t.csv")
    assert [r["metric"] for r in rows] == ["val_acc", "test_acc"]
    assert rows[0]["mean"] != rows[1]["mean"]
    spec["column_metrics"] = ["val_acc"]
    assert main(["table", *files(runs, "exp_a"), "--spec", json.dumps(spec), *out]) == 1


# -- refusals: a seed counted twice, runs that disagree on the report's number ----------
def _aggregate_outputs(tmp_path) -> dict[str, list[str]]:
    """The output options of each aggregating verb, into ``tmp_path``."""
    return {
        "summary": ["--out-tex", str(tmp_path / "s.tex"), "--out-csv", str(tmp_path / "s.csv")],
        "table": ["--spec", json.dumps(SPEC), "--out-tex", str(tmp_path / "t.tex")]
        + ["--out-csv", str(tmp_path / "t.csv")],
        "figure": ["--out", str(tmp_path / "f.pdf")],
    }


@pytest.mark.parametrize("verb", ["summary", "table", "figure"])
def test_two_files_of_one_experiment_and_seed_are_refused(runs, tmp_path, capsys, verb):
    """The same (experiment, seed) twice would count one run twice in a mean, a std and a
    verdict: every verb that aggregates refuses it, naming the experiment and the seed."""
    twin = tmp_path / "exp_a-2-copy.h5"
    shutil.copyfile(runs["exp_a", 2], twin)
    given = [*files(runs, "exp_a", "exp-b", "exp-c"), str(twin)]
    outs = _aggregate_outputs(tmp_path)
    assert main([verb, *given, *outs[verb]]) == 1
    err = capsys.readouterr().err
    assert "experiment exp_a has more than one run file for seed(s) [2]" in err
    assert not any(p.suffix in (".tex", ".csv", ".pdf") for p in tmp_path.iterdir())
    assert main([verb, *given[:-1], *outs[verb]]) == 0  # without the copy: accepted


@pytest.mark.parametrize("verb", ["summary", "table"])
def test_runs_that_disagree_on_a_paper_value_are_refused(tmp_path, capsys, verb):
    """Runs of one experiment made from different configs (another number of the report)
    cannot be judged against one number: refused, naming the experiment, metric, values."""
    paths = []
    for exp in ("exp_a", "exp-b", "exp-c"):
        for seed in SEEDS:
            run = make_run(exp, seed)
            if exp == "exp-b" and seed == 3:
                run.paper = {"val_acc": 0.45}
            paths.append(tmp_path / f"{exp}-{seed}.h5")
            write_run(paths[-1], run)
    outs = _aggregate_outputs(tmp_path)
    assert main([verb, *map(str, paths), *outs[verb]]) == 1
    err = capsys.readouterr().err
    assert "the runs of experiment exp-b disagree on the report's val_acc ([0.41, 0.45])" in err
    assert main([verb, *map(str, paths[:-4]), *map(str, paths[-3:]), *outs[verb]]) == 0  # without exp-b seed 3


def test_paper_value_refuses_disagreeing_runs():
    from kmlp.aggregate.grouping import paper_value
    from kmlp.errors import KmlpError

    a, b = make_run("exp-b", 1), make_run("exp-b", 2)
    assert paper_value([a, b], "val_acc") == 0.41 and paper_value([a, b], "test_acc") is None
    b.paper = {"val_acc": 0.42}
    with pytest.raises(KmlpError, match=r"exp-b disagree on the report's val_acc \(\[0.41, 0.42\]\)"):
        paper_value([a, b], "val_acc")


# -- what the figures show ---------------------------------------------------------------
def test_figure_shows_each_experiments_train_and_val_mean_with_a_one_std_band():
    """Three panels (accuracy, loss, cost against update step); per experiment a solid
    training and a dashed validation curve of the mean over its finished seeds, each with
    a band of one sample std (ddof 1) around it, in one colour per experiment; a diverged
    run is left out and named in the legend. Checked on the matplotlib objects."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    from kmlp.aggregate.figures import plot_runs

    a = [make_run("exp_a", s) for s in SEEDS]
    c = [make_run("exp-c", s) for s in SEEDS] + [make_run("exp-c", 4, status="diverged")]
    c[-1].history = {k: v + 100.0 for k, v in c[-1].history.items()}  # far off: would show if plotted
    c[-1].history["step"] = c[0].history["step"]
    fig = plot_runs([*a, *c], "a title")
    axes = fig.axes
    assert len(axes) == 3
    assert [ax.get_xlabel() for ax in axes] == ["update step"] * 3
    assert [ax.get_ylabel() for ax in axes] == ["accuracy", "loss (cross-entropy)", "cost (loss + L2)"]
    assert fig._suptitle.get_text() == "a title"
    colours = {}
    for ax, key in zip(axes, ("acc", "loss", "cost"), strict=True):
        lines, bands = ax.get_lines(), [p for p in ax.collections if isinstance(p, PolyCollection)]
        assert len(lines) == len(bands) == 4  # 2 experiments x (train, validation)
        for (line, band), (name, members, split) in zip(
            zip(lines, bands, strict=True),
            [("exp_a", a, "train"), ("exp_a", a, "val"), ("exp-c", c[:3], "train"), ("exp-c", c[:3], "val")],
            strict=True,
        ):
            values = np.stack([r.history[f"{split}_{key}"] for r in members])
            mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
            x, y = line.get_data()
            np.testing.assert_array_equal(x, members[0].history["step"])
            np.testing.assert_allclose(y, mean, rtol=1e-12)
            assert line.get_linestyle() == ("-" if split == "train" else "--")
            colours.setdefault(name, to_rgba(line.get_color()))
            assert to_rgba(line.get_color()) == colours[name]
            assert to_rgba(band.get_facecolor()[0])[:3] == colours[name][:3]
            vertices = band.get_paths()[0].vertices
            for step, lo, hi in zip(x, mean - std, mean + std, strict=True):
                ys = vertices[np.isclose(vertices[:, 0], step), 1]
                assert ys.min() == pytest.approx(lo, rel=1e-12) and ys.max() == pytest.approx(hi, rel=1e-12)
    assert colours["exp_a"] != colours["exp-c"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["exp_a (n=3 seeds)", "exp-c (n=3; diverged, left out of the mean: seed 4)"]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["train", "validation", "mean $\\pm$ 1 std"]


def test_bartletts_test_sets_apart_the_member_whose_spread_differs():
    """A pool keeps the members Bartlett's test does not reject together; while it rejects,
    the one whose removal leaves the highest p goes (config/README.md, the verdict rule)."""
    import scipy.stats

    from kmlp.aggregate.stats import homogeneous

    rng = np.random.default_rng(0)
    alike = {f"e{i}": 0.5 + 0.003 * rng.standard_normal(10) for i in range(4)}
    wide = {**alike, "wide": 0.5 + 0.03 * rng.standard_normal(10)}
    kept, p = homogeneous(alike, 0.05)
    assert kept == list(alike) and p == pytest.approx(scipy.stats.bartlett(*alike.values()).pvalue)
    kept, p = homogeneous(wide, 0.05)
    assert scipy.stats.bartlett(*wide.values()).pvalue < 0.05
    assert kept == list(alike) and p >= 0.05
    assert homogeneous(wide, 0.0)[0] == list(wide)  # no test: every member stays
    # a member with one value adds nothing to the pool and stays; one with no spread goes first
    kept, _ = homogeneous({**alike, "one": np.array([0.9]), "flat": np.full(5, 0.5)}, 0.05)
    assert kept == [*alike, "one"]
