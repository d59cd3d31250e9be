"""The verbs that turn run files into outputs: figure, table, gradtable, summary, diagnose,
report, pdf, record. Each reads files, calls kmlp.aggregate and writes atomically."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import KmlpError
from ..study.seeds import COMMENT_KEY as NEED_KEY
from . import options


def _write_table(args, tex: str, frame, comments) -> None:
    from ..aggregate.tabular import csv_text
    from ..files import atomic_text

    atomic_text(args.out_tex, tex)
    atomic_text(args.out_csv, csv_text(frame, comments))


def _rule(args):
    from ..study.verdict import VerdictRule

    return VerdictRule.from_dict(args.verdict)


def _comments(prov: dict, rule) -> list:
    from ..aggregate.tabular import prov_lines

    return prov_lines(prov, {"verdict": rule.as_json()} if rule else None)


# -- figure --------------------------------------------------------------------------
def add_figure(sub) -> None:
    s = options.verb(sub, figure, "plot accuracy, loss and cost vs update step from run files", options.CONFIG)
    s.add_argument("runs", nargs="+", type=Path, help="run files (any experiments, any seeds)")
    s.add_argument("--title", default="", help="figure title")
    options.output(s, "--out", required=True, help="output .pdf")
    options.output(s, "--png", help="also write this PNG")


def figure(args) -> None:
    from ..aggregate.figures import plot_runs, save_figure
    from ..aggregate.grouping import load_groups, provenance

    if Path(args.out).suffix.lower() != ".pdf":
        raise KmlpError(f"--out must name a .pdf file, not {args.out}")
    groups = load_groups(args.runs)
    fig = plot_runs(groups, args.title)
    save_figure(fig, args.out, args.png, args.title, provenance(groups, args.config))


# -- table ---------------------------------------------------------------------------
def add_table(sub) -> None:
    s = options.verb(sub, table, "a LaTeX + CSV table of one metric over a grid of experiments", *options.TABLE)
    s.add_argument("runs", nargs="+", type=Path, help="run files")
    s.add_argument(
        "--spec", required=True, type=options.json_arg, help="table layout as JSON (the config's tables entry)"
    )


def table(args) -> None:
    from ..aggregate.grouping import load_groups, provenance
    from ..aggregate.latex import grid_tex
    from ..aggregate.stats import grid_frame
    from ..study.tables import TableSpec, TableSpecError

    try:
        spec = TableSpec.from_dict(args.spec)
    except TableSpecError as exc:
        raise KmlpError(f"--spec: {exc}") from None
    rule = _rule(args)
    groups = load_groups(args.runs)
    cells = grid_frame([r for members in groups.values() for r in members], spec, rule)
    used = set(cells.experiment)
    comments = _comments(provenance({k: v for k, v in groups.items() if k in used}, args.config), rule)
    label = spec.label or "tab:" + Path(args.out_tex).stem
    tex = grid_tex(spec.caption, spec.row_label, cells, label, comments, rule.describe())
    _write_table(args, tex, cells, comments)


# -- gradtable -----------------------------------------------------------------------
def add_gradtable(sub) -> None:
    s = options.verb(sub, gradtable, "the gradient-check statistics as LaTeX + CSV", options.TABLE_OUT, options.CONFIG)
    s.add_argument("checks", nargs="+", type=Path, help="gradcheck JSON files")


def gradtable(args) -> None:
    import pandas as pd

    from .. import __version__
    from ..aggregate.gradcheck_table import GRAD_HEADER, GRAD_STATS, gradcheck_rows, read_gradcheck
    from ..aggregate.grouping import unique
    from ..aggregate.latex import gradcheck_tex
    from ..aggregate.tabular import prov_lines
    from ..environment import describe

    docs = [read_gradcheck(p) for p in args.checks]
    rows = pd.DataFrame(gradcheck_rows(docs), columns=GRAD_HEADER)
    comments = prov_lines(
        {
            "kmlp_version": __version__,
            "config": str(args.config),
            "data_md5": " ".join(unique(str(d.get("data_md5") or "random inputs") for d in docs)),
            "environment": " | ".join(unique(describe(d.get("environment", {})) or "unknown" for d in docs)),
            "checks": " ".join(d["name"] for d in docs),
        }
    )
    _write_table(args, gradcheck_tex(rows, comments, GRAD_STATS), rows, comments)


# -- summary -------------------------------------------------------------------------
def add_summary(sub) -> None:
    s = options.verb(sub, summary, "every number of the report beside ours, with a verdict", *options.TABLE)
    s.add_argument("runs", nargs="+", type=Path, help="run files")
    s.add_argument(
        "--readings",
        type=options.json_arg,
        default={},
        help="JSON: experiment -> the alternative reading of the report it tests",
    )
    s.add_argument(
        "--need",
        type=options.json_object,
        default=None,
        help="JSON: seeds by need's rule and the configured seeds (Study.need_plan()): say what each number needed",
    )


def summary(args) -> None:
    import json

    from ..aggregate.grouping import load_groups, provenance
    from ..aggregate.latex import summary_tex
    from ..aggregate.stats import pools_comment, summary_frame

    if not isinstance(args.readings, dict):
        raise KmlpError("--readings must be a JSON object: experiment -> text")
    groups = load_groups(args.runs)
    rule = _rule(args)
    need = None
    if args.need:
        try:
            need = {"rule": args.need["rule"], "configured": args.need["configured"]}
        except (KeyError, TypeError) as exc:
            raise KmlpError(f"--need must be Study.need_plan()'s JSON: {exc!r}") from None
    runs = [r for members in groups.values() for r in members]
    rows = summary_frame(runs, rule, args.readings, need)
    comments = [*_comments(provenance(groups, args.config), rule), pools_comment(runs, rule)]
    if need:
        comments.append(f"{NEED_KEY}: {json.dumps(need, sort_keys=True)}")
    _write_table(args, summary_tex(rows, comments, rule.describe()), rows, comments)


# -- seeds by need ------------------------------------------------------------------
def add_seeds_needed(sub) -> None:
    s = options.verb(
        sub, seeds_needed, "which experiments get more seeds: one round of seeds by need (kmlp.study.seeds)",
        options.VERDICT, options.CONFIG,
    )  # fmt: skip
    s.add_argument("runs", nargs="+", type=Path, help="run files: every judged number's and its pools'")
    s.add_argument("--plan", required=True, type=options.json_object, help="JSON: Study.need_plan()")
    s.add_argument("--round", required=True, type=options.at_least(1), help="the round this decides (1: first)")
    options.output(s, "--out", required=True, help="output JSON: the seeds of every experiment after this round")


def seeds_needed(args) -> None:
    import json

    from ..aggregate.grouping import load_groups
    from ..aggregate.stats import summary_frame
    from ..files import atomic_text
    from ..study.seeds import SeedsByNeed

    try:
        need = SeedsByNeed.from_dict(args.plan["rule"])
        configured, seconds = args.plan["configured"], args.plan["seconds"]
        study_seconds, readings = float(args.plan["study_seconds"]), args.plan["readings"]
    except (KeyError, TypeError, ValueError) as exc:
        raise KmlpError(f"--plan must be Study.need_plan()'s JSON: {exc!r}") from None
    groups = load_groups(args.runs)
    missing = [e for e in configured if e not in groups]
    if missing:
        raise KmlpError(f"no run file was given for experiment(s) {', '.join(missing)}")
    seeds = {e: sorted(r.seed for r in groups[e]) for e in configured}
    rows = summary_frame([r for members in groups.values() for r in members], _rule(args), readings)
    numbers = [
        {"experiment": r.experiment, "metric": r.metric, "stability": float(r.stability), "reading": r.reading}
        for r in rows.itertuples()
    ]
    doc = {"round": args.round, **need.decide(numbers, seeds, configured, seconds, study_seconds)}
    for n in doc["numbers"]:
        print(f"round {args.round}: {n['experiment']} {n['metric']}: {n['runs']} seeds, "
              f"{n['stability']:.0%} stable: {n['state'] or 'not judged'}")  # fmt: skip
    for e, new in doc["added"].items():
        print(f"round {args.round}: {e} gets seed" + (f"s {new[0]}-{new[-1]}" if len(new) > 1 else f" {new[0]}"))
    print(f"round {args.round}: {doc['spent_s']:.0f} s of {doc['budget_s']:.0f} s predicted spent on added seeds; "
          + ("done" if doc["done"] else "another round follows"))  # fmt: skip
    atomic_text(args.out, json.dumps(doc, indent=1, sort_keys=True) + "\n")


# -- discrepancies -------------------------------------------------------------------
def add_discrepancies(sub) -> None:
    s = options.verb(
        sub, discrepancies, "the report's numbers that are not consistent, beside the explanations tested",
        *options.TABLE,
    )  # fmt: skip
    s.add_argument("runs", nargs="+", type=Path, help="run files: the numbers', the hypotheses' and their pools'")
    s.add_argument("--summary", required=True, type=Path, help="summary CSV (kmlp summary): the numbers to explain")
    s.add_argument("--spec", type=options.json_arg, default=[], help="JSON: the config's discrepancies entries")


def discrepancies(args) -> None:
    """Every number of the summary that is not consistent under the report's setting, and
    each hypothesis tested for it, judged by the verdict rule (kmlp.aggregate.discrepancies)."""
    import json

    from ..aggregate.discrepancies import discrepancy_frame
    from ..aggregate.grouping import load_groups, provenance
    from ..aggregate.latex import discrepancies_tex
    from ..aggregate.tabular import read_csv
    from ..study.discrepancies import Discrepancy

    try:
        specs = [Discrepancy.from_dict(d) for d in args.spec]
    except (KeyError, TypeError, AttributeError) as exc:
        raise KmlpError(f"--spec must be a list of discrepancies entries (config `discrepancies`): {exc!r}") from None
    groups = load_groups(args.runs)
    rule = _rule(args)
    _, summary_rows = read_csv(args.summary)
    frame = discrepancy_frame([r for members in groups.values() for r in members], specs, summary_rows, rule)
    comments = _comments(provenance(groups, args.config), rule)
    comments.append(f"discrepancies: {json.dumps([d.as_dict() for d in specs])}")
    _write_table(args, discrepancies_tex(frame, comments, rule.describe()), frame, comments)


# -- diagnose ------------------------------------------------------------------------
def add_diagnose(sub) -> None:
    s = options.verb(
        sub,
        diagnose,
        "re-evaluate trained runs: batch-norm evaluation modes, sampling spread",
        options.TABLE_OUT,
        options.CONFIG,
        options.THREADS,
    )
    s.add_argument("runs", nargs="+", type=Path, help="run files")
    s.add_argument(
        "--data", required=True, nargs="+", type=Path, help="the prepared HDF5 data set(s) the runs were trained on"
    )


def diagnose(args) -> int:
    """Re-evaluate the stored weights of run files (no training): validation and test
    accuracy with batch norm evaluated by the moving averages and by each split's own batch
    statistics, and the binomial std of an accuracy on that many images."""
    from ..aggregate.diagnose import CAPTION, ROW_LABEL, diagnose_frame
    from ..aggregate.grouping import group_runs, provenance
    from ..aggregate.latex import grid_tex
    from ..data.dataset import load
    from ..runs import load_model, read_run

    runs = {path: read_run(path) for path in args.runs}
    given = {Path(d).resolve(): d for d in args.data}
    data_of = {}
    for r in runs.values():
        found = given.get(Path(r.data_file).resolve()) if r.data_file else (args.data[0] if len(given) == 1 else None)
        if found is None:
            raise KmlpError(
                f"{r.experiment} seed {r.seed} was trained on {r.data_file or 'an unnamed data set'}, which is "
                f"not among --data ({', '.join(map(str, args.data))}): its validation split differs"
            )
        data_of[r.experiment, r.seed] = found
    path_of = {(r.experiment, r.seed): p for p, r in runs.items()}
    groups = group_runs(list(runs.values()))
    datasets = {d: load(d) for d in dict.fromkeys(data_of.values())}
    for r in runs.values():
        content = datasets[data_of[r.experiment, r.seed]].content_sha256
        if r.data_sha256 != content:
            raise KmlpError(
                f"{r.experiment} seed {r.seed} was trained on a data set with checksum {r.data_sha256 or '(none)'}, "
                f"but {data_of[r.experiment, r.seed]} has {content}: it is not the data set the weights were "
                "trained on (prepared again?)"
            )
    cells = diagnose_frame(
        groups, lambda r: load_model(path_of[r.experiment, r.seed]), lambda r: datasets[data_of[r.experiment, r.seed]]
    )
    if cells.empty:
        raise KmlpError("no runs to diagnose")
    comments = _comments(provenance(groups, args.config), None)
    _write_table(args, grid_tex(CAPTION, ROW_LABEL, cells, "tab:" + Path(args.out_tex).stem, comments), cells, comments)
    for _, c in cells.iterrows():
        print(f"{c['row']:28s} {c['column']:28s} {c['mean']:.4f} ± {c['std']:.4f} (n={c['n']})")
    return 0


# -- report and pdf ------------------------------------------------------------------
def add_report(sub) -> None:
    s = options.verb(sub, report, "a LaTeX report that includes every table and figure", options.CONFIG)
    s.add_argument("--tables", nargs="*", type=Path, default=[], help=".tex tables to include")
    s.add_argument("--figures", nargs="*", type=Path, default=[], help=".pdf figures to include")
    options.output(s, "--out", required=True, help="report .tex to write")


def report(args) -> None:
    from ..aggregate.document import report_tex
    from ..files import atomic_text

    for p in [*args.tables, *args.figures]:
        if not Path(p).exists():
            raise KmlpError(f"{p} does not exist (the report includes it)")
    atomic_text(args.out, report_tex(args.tables, args.figures, Path(args.out).parent, args.config))


def add_pdf(sub) -> None:
    s = options.verb(sub, pdf, "compile a LaTeX report to PDF (needs latexmk or pdflatex)")
    s.add_argument("tex", type=Path, help="the report .tex")
    options.output(s, "--out", required=True, help="PDF to write")


def pdf(args) -> None:
    from ..aggregate.document import compile_pdf

    compile_pdf(args.tex, args.out)


# -- record --------------------------------------------------------------------------
def add_record(sub) -> None:
    s = options.verb(sub, record, "the reproduction record (Markdown) from the workflow's outputs")
    s.add_argument("--summary", required=True, type=Path, help="summary CSV (kmlp summary)")
    s.add_argument("--gradcheck", required=True, type=Path, help="gradient-check CSV (kmlp gradtable)")
    s.add_argument("--tables", nargs="*", type=Path, default=[], help="table CSVs (kmlp table) to show as grids")
    s.add_argument("--figures", nargs="*", type=Path, default=[], help="PNG figures to copy beside the record")
    s.add_argument(
        "--benchmarks", nargs="*", type=Path, default=[], help="the study's Snakemake benchmark files (its times)"
    )
    s.add_argument(
        "--report-benchmarks", nargs="*", type=Path, default=[], help="those of the report's own training runs"
    )
    s.add_argument(
        "--added-benchmarks", nargs="*", type=Path, default=[],
        help="those of the runs seeds by need added (part of the study, not in --benchmarks)",
    )  # fmt: skip
    s.add_argument("--meta", type=options.json_arg, default={}, help="command, config, data MD5 and archive, as JSON")
    s.add_argument(
        "--notes",
        type=lambda text: Path(text) if text else None,
        help="hand-written Markdown (causes of non-reproduced numbers) to include; empty: none",
    )
    options.output(s, "--out", required=True, help="Markdown file to write; figures go beside it")
    s.add_argument(
        "--discrepancies",
        type=Path,
        help="discrepancies CSV (kmlp discrepancies): the numbers not consistent, explained",
    )
    s.add_argument("--runs", nargs="*", type=Path, default=[], help="every run file of the study (its data)")
    options.output(
        s, "--out-runs", help="also write the record's data: a CSV row per run of --runs, from which the "
        "record's verdicts can be derived again (kmlp.aggregate.record_data)"
    )  # fmt: skip


def record(args) -> None:
    from ..aggregate.record import record_markdown
    from ..files import atomic_text

    if not isinstance(args.meta or {}, dict):
        raise KmlpError("--meta must be a JSON object")
    if bool(args.runs) != bool(args.out_runs):
        raise KmlpError("--runs and --out-runs go together: the run files, and the CSV to write their rows to")
    if args.out_runs:
        from ..aggregate.grouping import load_groups, provenance
        from ..aggregate.record_data import runs_csv_text

        groups = load_groups(args.runs)
        prov = provenance(groups, args.meta.get("config", ""))
        prov.pop("experiments")  # the rows say it
        runs = [r for members in groups.values() for r in members]
        atomic_text(args.out_runs, runs_csv_text(runs, args.summary, args.tables, prov, args.discrepancies))
        rel = os.path.relpath(Path(args.out_runs).absolute(), Path(args.out).absolute().parent)
        args.meta = {**args.meta, "runs": f"{Path(rel).as_posix()}: a row per run, what every verdict below is "
                     "computed from (kmlp.aggregate.record_data derives them again from it)"}  # fmt: skip
    atomic_text(
        args.out,
        record_markdown(
            args.out,
            args.summary,
            args.gradcheck,
            tables=args.tables,
            figures=args.figures,
            benchmarks=args.benchmarks,
            report_benchmarks=args.report_benchmarks,
            added_benchmarks=args.added_benchmarks,
            meta=args.meta,
            notes=args.notes,
            discrepancies=args.discrepancies,
        ),
    )


# -- check-record --------------------------------------------------------------------
def add_check_record(sub) -> None:
    s = options.verb(sub, check_record, "derive a record's verdicts, z and intervals again from its data alone")
    s.add_argument("record", type=Path, help="the record (e.g. docs/reproduction.md)")
    s.add_argument(
        "--data", type=Path, help="the record's data (kmlp record --out-runs); default: beside it, <stem>-runs.csv"
    )


def check_record(args) -> int:
    """Every table of the record that judges the report's numbers, computed again from the
    record's data file alone (a row per run) and compared line by line with the record:
    exit 1 and the lines that differ when they disagree."""
    from ..aggregate.record_data import compare_record

    data = args.data or args.record.with_name(args.record.stem + "-runs.csv")
    if not args.record.exists():
        raise KmlpError(f"record {args.record} does not exist")
    found = compare_record(args.record.read_text(), data)
    for line in found.report():
        print(line)
    return 0 if found.equal else 1


# -- check-runs ----------------------------------------------------------------------
def add_check_runs(sub) -> None:
    s = options.verb(sub, check_runs, "compare runs trained again with their rows in a record's data")
    s.add_argument("runs", nargs="+", type=Path, help="run files trained again (kmlp train)")
    s.add_argument("--data", required=True, type=Path, help="the record's data (e.g. docs/reproduction-runs.csv)")
    s.add_argument(
        "--early",
        action="store_true",
        help="compare each run's first evaluation after step 0 (kmlp train --evaluations 1 trains just that far) "
        "with the record's early columns, not its final metrics",
    )
    s.add_argument(
        "--k", type=options.positive, default=4.4, help="the bound in standard deviations where the environment differs"
    )
    options.output(s, "--out", required=True, help="CSV to write: a row per (experiment, seed, metric)")


def check_runs(args) -> int:
    """Each retrained run's final metrics (with --early: its first evaluation after step 0)
    against the record's row for the same experiment and seed: bit for bit where the
    numeric environment is the row's, else within --k standard deviations of the
    difference of two seeds, and per metric their mean within --k standard errors
    (kmlp.aggregate.retrained). Exit 1, after writing the table and saying which numbers,
    when any is out of bounds."""
    from ..aggregate.retrained import compare_runs, record_frame, report
    from ..aggregate.tabular import csv_text
    from ..files import atomic_text
    from ..runs import read_run

    record = record_frame(args.data)
    table, joint = compare_runs(record, [read_run(p) for p in args.runs], args.k, early=args.early)
    compared = "first evaluation after step 0" if args.early else "final metrics"
    comments = [f"data: {args.data}", f"k: {args.k:g}", f"compared: {compared}"] + [
        f"mean z {j.metric}: {j.mean_z:+.3f} over {j.runs} runs (bound {j.bound:.3f}, ok {j.ok})"
        for j in joint.itertuples()
    ]
    atomic_text(args.out, csv_text(table, comments))
    for line in report(table, joint, args.k):
        print(line)
    return 0 if table["ok"].all() and joint["ok"].all() else 1


# -- record-diff ---------------------------------------------------------------------
def add_record_diff(sub) -> None:
    s = options.verb(sub, record_diff, "which numbers moved between two versions of a record's data")
    s.add_argument("old", type=Path, help="the earlier record data (e.g. from git show REV:docs/reproduction-runs.csv)")
    s.add_argument("new", type=Path, help="the later one (e.g. docs/reproduction-runs.csv)")


def record_diff(args) -> None:
    """The runs whose final metrics changed, by experiment, and every line of the record's
    judged tables (verdicts, z, intervals) that moved, as each version derives it."""
    from ..aggregate.record_data import moved

    for line in moved(args.old, args.new):
        print(line)


VERBS = (add_figure, add_table, add_diagnose, add_gradtable, add_summary, add_seeds_needed,
         add_discrepancies, add_report, add_pdf,
         add_record, add_check_record, add_check_runs, add_record_diff)  # fmt: skip
