"""Tables: our numbers beside the report's, as LaTeX (for the report) and CSV (for people
and the reproduction record).

Every file starts with comment lines (``%`` in LaTeX, ``#`` in CSV) naming the kmlp
version, the data MD5 and the config, so a table can be traced to what made it. The
pure functions (:func:`cell_stats`, :func:`table_rows`, :func:`summary_rows`,
:func:`gradcheck_rows`) do the arithmetic; the ``*_cli`` functions only read and write.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from . import __version__
from .errors import KmlpError
from .files import atomic_text
from .runs import FINAL_METRICS, read_run

TABLE_HEADER = ["row", "column", "experiment", "metric", "n", "mean", "std", "paper", "verdict"]
SUMMARY_HEADER = ["experiment", "metric", "paper", "mean", "std", "n", "diverged", "verdict",
                  "reading"]
GRAD_HEADER = ["check", "parameter", "shape", "grad_mean", "grad_std", "diff_mean",
               "diff_std", "diff_max", "rel_error", "max_elem_rel_error", "kinks", "passed", "tolerance"]
GRAD_STATS = ["grad_mean", "grad_std", "diff_mean", "diff_std", "diff_max", "rel_error",
              "max_elem_rel_error"]
# The report's own numbers come first, in this order; any other metric follows.
METRIC_ORDER = ["val_acc", "test_acc"] + [m for m in FINAL_METRICS
                                          if m not in ("val_acc", "test_acc")]


# -- runs ----------------------------------------------------------------------------
def group_runs(runs) -> dict:
    """Runs by experiment, experiments in order of first appearance, seeds sorted.

    Two files holding the same (experiment, seed) would be counted twice: refuse them.
    """
    groups: dict = {}
    for run in runs:
        groups.setdefault(run.experiment, []).append(run)
    for name, members in groups.items():
        seeds = [r.seed for r in members]
        dup = sorted({s for s in seeds if seeds.count(s) > 1})
        if dup:
            raise KmlpError(f"experiment {name} has more than one run file for seed(s) {dup}")
        members.sort(key=lambda r: r.seed)
    return groups


def load_groups(paths) -> dict:
    return group_runs([read_run(p) for p in paths])


def provenance(groups: dict, config: str = "") -> dict:
    """What made an output: kmlp version, data MD5(s), config, experiments and seeds."""
    runs = [r for members in groups.values() for r in members]
    return {
        "kmlp_version": __version__,
        "config": str(config),
        "data_md5": " ".join(_unique(r.data_md5 or "unknown" for r in runs)),
        "run_kmlp_versions": " ".join(_unique(r.kmlp_version for r in runs)),
        "experiments": "; ".join(f"{name} (seeds {','.join(str(r.seed) for r in members)})"
                                 for name, members in groups.items()),
    }


def _unique(items) -> list:
    return list(dict.fromkeys(items))


# -- statistics ----------------------------------------------------------------------
def verdict(paper, mean, std, n, within_std: float) -> str:
    """"yes" if the paper's value lies within ``within_std`` sample stds of our mean.

    A tiny absolute slack lets a zero std with equal values count as reproduced despite
    rounding in the mean.
    """
    if paper is None:
        return ""
    if n == 0 or not math.isfinite(mean):
        return "n/a"
    return "yes" if abs(paper - mean) <= within_std * std + 1e-12 else "no"


def cell_stats(values, paper=None, within_std: float = 2.0) -> dict:
    """Mean and sample std (ddof=1; 0 for a single value) of the finite ``values``."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    mean = float(v.mean()) if n else math.nan
    std = float(v.std(ddof=1)) if n > 1 else (0.0 if n == 1 else math.nan)
    paper = None if paper is None else float(paper)
    return {"n": n, "mean": mean, "std": std, "paper": paper,
            "verdict": verdict(paper, mean, std, n, within_std)}


def paper_value(members, metric):
    """The report's number for ``metric`` as the runs store it (they must agree)."""
    values = _unique(float(r.paper[metric]) for r in members if metric in r.paper)
    if len(values) > 1:
        raise KmlpError(f"the runs of experiment {members[0].experiment} disagree on the "
                        f"report's {metric} ({values}): were they made from different configs?")
    return values[0] if values else None


def experiment_stats(members, metric, within_std):
    """Stats over the completed runs; diverged runs are counted, not averaged."""
    done = [r.final[metric] for r in members if r.status != "diverged"]
    stats = cell_stats(done, paper_value(members, metric), within_std)
    stats["diverged"] = sum(r.status == "diverged" for r in members)
    return stats


def table_rows(groups: dict, spec: dict, within_std: float = 2.0) -> list[dict]:
    """One dict per cell of a grid table (``config["tables"][...]``), row by row."""
    for key in ("metric", "columns", "rows"):
        if key not in spec:
            raise KmlpError(f"the table spec lacks the key {key!r} (it has {sorted(spec)})")
    metric, columns = spec["metric"], list(spec["columns"])
    # A column may show another metric of the same runs (e.g. test beside validation).
    metrics = list(spec.get("column_metrics") or [metric] * len(columns))
    if len(metrics) != len(columns):
        raise KmlpError(f"the table has {len(columns)} columns but {len(metrics)} column_metrics")
    for m in {metric, *metrics}:
        if m not in FINAL_METRICS:
            raise KmlpError(f"the table metric {m!r} is not one of {list(FINAL_METRICS)}")
    wanted = [e for exps in spec["rows"].values() for e in exps]
    missing = _unique(e for e in wanted if e not in groups)
    if missing:
        raise KmlpError(f"no run file was given for experiment(s) {', '.join(missing)}")
    out = []
    for row, exps in spec["rows"].items():
        if len(exps) != len(columns):
            raise KmlpError(f"table row {row!r} has {len(exps)} experiments for "
                            f"{len(columns)} columns")
        for column, col_metric, exp in zip(columns, metrics, exps):
            stats = experiment_stats(groups[exp], col_metric, within_std)
            out.append({"row": str(row), "column": column, "experiment": exp,
                        "metric": col_metric, **stats})
    return out


def summary_rows(groups: dict, within_std: float = 2.0, readings: dict | None = None) -> list[dict]:
    """Every number of the report (any run's ``paper`` entry) beside ours.

    ``readings`` names, per experiment, the alternative reading of the report it tests
    (empty for the report's setting as the config states it).
    """
    readings = readings or {}
    out = []
    for exp, members in groups.items():
        metrics = {m for r in members for m in r.paper}
        unknown = sorted(metrics - set(FINAL_METRICS))
        if unknown:
            raise KmlpError(f"experiment {exp} has paper values for unknown metric(s) {unknown}")
        for metric in (m for m in METRIC_ORDER if m in metrics):
            out.append({"experiment": exp, "metric": metric,
                        **experiment_stats(members, metric, within_std),
                        "reading": readings.get(exp, "")})
    return out


def gradcheck_rows(checks) -> list[dict]:
    """One dict per (check, parameter) of parsed gradcheck JSON documents."""
    out = []
    for doc in checks:
        for name, p in doc["parameters"].items():
            out.append({"check": doc["name"], "parameter": name,
                        "shape": "x".join(str(int(d)) for d in p["shape"]),
                        **{k: float(p[k]) for k in GRAD_STATS},
                        "kinks": int(p.get("kinks", 0)),
                        "passed": "yes" if doc["passed"] else "no",
                        "tolerance": float(doc["tolerance"])})
    return out


def read_gradcheck(path) -> dict:
    """Parse and validate one gradcheck JSON file; any defect is one KmlpError."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc["parameters"], dict):
            raise TypeError("not a JSON object with a 'parameters' object")
        gradcheck_rows([doc])   # touches every field the tables need
    except FileNotFoundError:
        raise KmlpError(f"gradient-check file {path} does not exist") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KmlpError(f"gradient-check file {path} is malformed ({type(exc).__name__}: "
                        f"{exc})") from None
    return doc


# -- formatting ----------------------------------------------------------------------
_TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                 "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}"}


def tex_escape(text) -> str:
    return "".join(_TEX_SPECIALS.get(c, c) for c in str(text))


def tex_text(text) -> str:
    """Escape prose but keep ``$...$`` math as written (e.g. a row label ``$\\lambda$``)."""
    parts = str(text).split("$")
    if len(parts) % 2 == 0:          # an unpaired $: treat everything as prose
        return tex_escape(text)
    return "$".join(p if i % 2 else tex_escape(p) for i, p in enumerate(parts))


def fmt3(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


def fmt_sci(x) -> str:
    """3 significant digits as LaTeX math, e.g. ``$3.10\\times10^{-7}$``."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "$0$"
    mant, exp = f"{x:.2e}".split("e")
    return f"${mant}\\times10^{{{int(exp)}}}$"


def csv_value(x) -> str:
    """Full precision for floats (repr round-trips), '' for missing."""
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x) if math.isfinite(x) else "nan"
    return str(x)


def prov_lines(prov: dict, extra: dict | None = None) -> list[str]:
    items = {**prov, **(extra or {})}
    return [f"{k}: {v if v != '' else '(not given)'}" for k, v in items.items()]


def csv_text(header, rows, comments) -> str:
    buf = io.StringIO()
    for line in comments:
        buf.write(f"# {line}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([csv_value(row[k]) for k in header])
    return buf.getvalue()


def read_csv(path) -> tuple[dict, list[dict]]:
    """Read a CSV written here: ``(comment key/values, rows as dicts of strings)``."""
    path = Path(path)
    if not path.exists():
        raise KmlpError(f"CSV file {path} does not exist")
    meta, body = {}, []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(": ")
            meta[key] = value
        elif line.strip():
            body.append(line)
    if not body:
        raise KmlpError(f"CSV file {path} has no header line")
    return meta, list(csv.DictReader(body))


def _tex_comments(lines) -> str:
    return "".join(f"% {line}\n" for line in lines)


def ours_tex(stats: dict, n_full: int) -> str:
    """``$0.523 \\pm 0.004$``, with the seed count when it falls short of the others'
    and a dagger when runs diverged."""
    dagger = r"^\dagger" if stats["diverged"] else ""
    if stats["n"] == 0:
        text = f"n/a${dagger}$" if dagger else "n/a"
    else:
        text = f"${stats['mean']:.3f} \\pm {stats['std']:.3f}{dagger}$"
    if stats["n"] != n_full:
        text += f" ($n={stats['n']}$)"
    return text


def render_table_tex(spec: dict, rows: list[dict], label: str, comments) -> str:
    columns = list(spec["columns"])
    n_full = max((r["n"] for r in rows), default=0)
    lines = [_tex_comments(comments).rstrip("\n"),
             r"\begin{table}[htbp]", r"\centering",
             f"\\caption{{{tex_text(spec.get('caption', ''))}}}",
             f"\\label{{{label}}}",
             r"\begin{tabular}{l" + "rr" * len(columns) + "}", r"\toprule",
             " & ".join([""] + [f"\\multicolumn{{2}}{{c}}{{{tex_text(c)}}}" for c in columns])
             + r" \\",
             "".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(columns))),
             " & ".join([tex_text(spec.get("row_label", ""))] + ["ours", "paper"] * len(columns))
             + r" \\", r"\midrule"]
    by_row: dict = {}
    for r in rows:
        by_row.setdefault(r["row"], []).append(r)
    for row, cells in by_row.items():
        parts = [tex_text(row)]
        for c in cells:
            parts += [ours_tex(c, n_full), fmt3(c["paper"]) if c["paper"] is not None else "--"]
        lines.append(" & ".join(parts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", "",
              f"\\smallskip{{\\footnotesize Ours: mean $\\pm$ sample std over $n={n_full}$ "
              r"seeds unless marked; $^\dagger$: runs diverged and are left out.}",
              r"\end{table}", ""]
    return "\n".join(lines)


def _longtable_head(comments, preamble: list[str], colspec: str, caption: str,
                    label: str, head: str) -> list[str]:
    """The opening of a longtable that repeats its header on every page."""
    return [_tex_comments(comments).rstrip("\n"), *preamble,
            f"\\begin{{longtable}}{{{colspec}}}", f"\\caption{{{caption}}}\\label{{{label}}}\\\\",
            r"\toprule", head, r"\midrule", r"\endfirsthead",
            r"\toprule", head, r"\midrule", r"\endhead",
            r"\bottomrule", r"\endfoot"]


def render_summary_tex(rows: list[dict], comments, within_std: float) -> str:
    head = r"experiment & metric & paper & ours & $n$ & diverged & reproduced & reading \\"
    caption = (r"Every number of the report beside ours (mean $\pm$ sample std over "
               f"seeds); reproduced when the report's value lies within {within_std:g} "
               r"std of our mean.")
    lines = _longtable_head(comments, [r"{\small"], "llrrrrlp{4cm}", caption, "tab:summary", head)
    for r in rows:
        ours = "n/a" if r["n"] == 0 else f"${r['mean']:.3f} \\pm {r['std']:.3f}$"
        lines.append(" & ".join([tex_escape(r["experiment"]), tex_escape(r["metric"]),
                                 fmt3(r["paper"]), ours, str(r["n"]), str(r["diverged"]),
                                 tex_escape(r["verdict"]), tex_text(r["reading"])]) + r" \\")
    lines += [r"\end{longtable}", "}", ""]
    return "\n".join(lines)


def render_gradtable_tex(rows: list[dict], comments) -> str:
    head = (r"check & param. & shape & grad mean & grad std & diff mean & diff std & "
            r"diff max & rel. err. & max entry rel. err. & passed \\")
    caption = (r"Analytic against numerical (centred difference) gradients, per "
               r"parameter: statistics of the analytic gradient and of the difference "
               r"analytic $-$ numerical; the relative error $\|g_a-g_n\|/(\|g_a\|+\|g_n\|)$ "
               r"per parameter, and the largest entrywise one, which near-zero entries dominate.")
    lines = _longtable_head(comments, [r"{\footnotesize", r"\setlength{\tabcolsep}{3pt}"],
                            "lllrrrrrrrl", caption, "tab:gradcheck", head)
    previous = None
    for r in rows:
        first = r["check"] != previous
        if first and previous is not None:
            lines.append(r"\midrule")
        previous = r["check"]
        lines.append(" & ".join(
            [tex_escape(r["check"]) if first else "", tex_escape(r["parameter"]),
             tex_escape(r["shape"])] + [fmt_sci(r[k]) for k in GRAD_STATS]
            + [r["passed"] if first else ""]) + r" \\")
    lines += [r"\end{longtable}", "}", ""]
    return "\n".join(lines)


# -- verbs ---------------------------------------------------------------------------
def table_cli(args) -> None:
    spec = args.spec
    if not isinstance(spec, dict):
        raise KmlpError("--spec must be a JSON object (the config's tables entry)")
    groups = load_groups(args.runs)
    rows = table_rows(groups, spec, args.within_std)
    used = {r["experiment"] for r in rows}
    prov = provenance({k: v for k, v in groups.items() if k in used}, args.config)
    comments = prov_lines(prov, {"within_std": f"{args.within_std:g}"})
    label = spec.get("label") or "tab:" + Path(args.out_tex).stem
    atomic_text(args.out_tex, render_table_tex(spec, rows, label, comments))
    atomic_text(args.out_csv, csv_text(TABLE_HEADER, rows, comments))


def summary_cli(args) -> None:
    groups = load_groups(args.runs)
    if not isinstance(args.readings, dict):
        raise KmlpError("--readings must be a JSON object: experiment -> text")
    rows = summary_rows(groups, args.within_std, args.readings)
    comments = prov_lines(provenance(groups, args.config),
                          {"within_std": f"{args.within_std:g}"})
    atomic_text(args.out_tex, render_summary_tex(rows, comments, args.within_std))
    atomic_text(args.out_csv, csv_text(SUMMARY_HEADER, rows, comments))


def gradtable_cli(args) -> None:
    docs = [read_gradcheck(p) for p in args.checks]
    rows = gradcheck_rows(docs)
    comments = prov_lines({
        "kmlp_version": __version__, "config": str(args.config),
        "data_md5": " ".join(_unique(str(d.get("data_md5") or "random inputs") for d in docs)),
        "checks": " ".join(d["name"] for d in docs)})
    atomic_text(args.out_tex, render_gradtable_tex(rows, comments))
    atomic_text(args.out_csv, csv_text(GRAD_HEADER, rows, comments))
