"""The reproduction record: Markdown that puts every number of the report beside ours,
made from the workflow's CSV tables, with the figures copied beside it.

Deterministic: no dates, no absolute paths, so it can be committed and diffed.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from .. import __version__
from ..errors import KmlpError
from ..files import atomic_copy
from .document import rel_path
from .tabular import fmt3, read_csv, to_float

META_ORDER = ("command", "config", "data_archive", "data_md5", "data_note", "kmlp_version")


def _md(text) -> str:
    """A table cell: pipes would split it."""
    return str(text).replace("|", r"\|").replace("\n", " ")


def benchmark_seconds(paths) -> float:
    """Sum of the ``s`` column over Snakemake benchmark files (every row: repeats too)."""
    total = 0.0
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise KmlpError(f"benchmark file {path} does not exist")
        rows = list(csv.reader(path.read_text().splitlines(), delimiter="\t"))
        if not rows or rows[0][:1] != ["s"]:
            raise KmlpError(f"{path} is not a Snakemake benchmark file (no 's' column first)")
        for row in rows[1:]:
            x = to_float(row[0]) if row else math.nan
            if math.isfinite(x):
                total += x
    return total


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def meta_section(meta: dict) -> list[str]:
    keys = [k for k in META_ORDER if k in meta] + sorted(k for k in meta if k not in META_ORDER)
    lines = ["## Provenance", ""]
    if not keys:
        return lines + ["(no provenance given)", ""]
    for k in keys:
        v = meta[k]
        v = " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        lines.append(
            f"- **{k}**: `{v}`" if k in ("command", "config", "data_md5", "data_archive") else f"- **{k}**: {v}"
        )
    return lines + [""]


def gradcheck_section(path) -> list[str]:
    _, rows = read_csv(path)
    checks: dict = {}
    for r in rows:
        c = checks.setdefault(r["check"], {"err": 0.0, "passed": r["passed"], "tol": r.get("tolerance", ""), "n": 0})
        c["err"] = max(c["err"], to_float(r["rel_error"]))
        c["n"] += 1
    passed = sum(c["passed"] == "yes" for c in checks.values())
    lines = [
        "## Gradient checks",
        "",
        f"Analytic against centred-difference gradients (source: `{rel_path(path)}`); "
        f"{passed} of {len(checks)} checks passed.",
        "",
        "| check | parameters | max relative error | tolerance | passed |",
        "|---|---:|---:|---:|---|",
    ]
    for name, c in checks.items():
        tol = to_float(c["tol"])
        lines.append(
            f"| {_md(name)} | {c['n']} | {c['err']:.2e} | "
            f"{f'{tol:.0e}' if math.isfinite(tol) else ''} | {c['passed']} |"
        )
    return lines + [""]


def summary_section(path) -> list[str]:
    meta, rows = read_csv(path)
    within = meta.get("within_std", "2")
    main = [r for r in rows if not r.get("reading")]
    alt = [r for r in rows if r.get("reading")]

    def count(sub):
        c = {v: sum(r["verdict"] == v for r in sub) for v in ("yes", "no", "n/a")}
        return f"{c['yes']} of {len(sub)} reproduced, {c['no']} not" + (
            f", {c['n/a']} without a finite result" if c["n/a"] else ""
        )

    lines = [
        "## The report's numbers beside ours",
        "",
        f"Ours: mean ± sample standard deviation over n seeds (diverged runs left out "
        f"and counted). A number counts as reproduced when it lies within {within} "
        f"standard deviations of our mean (source: `{rel_path(path)}`). Rows with a "
        "*reading* test another reading of what the report did.",
        "",
        f"**The report's setting: {count(main)}.**" + (f" Other readings tested: {count(alt)}." if alt else ""),
        "",
        "| experiment | metric | paper | ours | n | diverged | reproduced | reading |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        ours = f"{fmt3(r['mean'])} ± {fmt3(r['std'])}" if math.isfinite(to_float(r["mean"])) else "n/a"
        lines.append(
            f"| {_md(r['experiment'])} | {_md(r['metric'])} | {fmt3(r['paper'])} | "
            f"{ours} | {r['n']} | {r['diverged']} | {r['verdict']} | "
            f"{_md(r.get('reading', ''))} |"
        )
    return lines + [""]


def table_section(path) -> list[str]:
    """A `kmlp table` CSV as a Markdown grid: a row per value, ours and paper per column."""
    _, rows = read_csv(path)
    labels = list(dict.fromkeys(r["row"] for r in rows))
    columns = list(dict.fromkeys(r["column"] for r in rows))
    cells = {(r["row"], r["column"]): r for r in rows}
    metric = rows[0]["metric"] if rows else ""
    head = "| | " + " | ".join(f"{_md(c)}: ours | paper | reproduced" for c in columns) + " |"
    lines = [
        f"### {_md(Path(path).stem)} ({_md(metric)})",
        "",
        f"Source: `{rel_path(path)}`.",
        "",
        head,
        "|---|" + "---:|---:|---|" * len(columns),
    ]
    for label in labels:
        parts = []
        for c in columns:
            r = cells.get((label, c))
            if r is None:
                parts.append(" | | ")
                continue
            ours = f"{fmt3(r['mean'])} ± {fmt3(r['std'])}" if math.isfinite(to_float(r["mean"])) else "n/a"
            paper = fmt3(r["paper"]) if math.isfinite(to_float(r["paper"])) else ""
            parts.append(f"{ours} | {paper} | {r['verdict']}")
        lines.append(f"| {_md(label)} | " + " | ".join(parts) + " |")
    return lines + [""]


def compute_section(paths) -> list[str]:
    if not paths:
        return []
    total = benchmark_seconds(paths)
    return [
        "## Compute time",
        "",
        f"{total:.0f} s ({_hms(total)}): the sum of the wall-clock times of "
        f"{len(paths)} workflow job{'s' if len(paths) != 1 else ''} from their Snakemake "
        "benchmark files, not the "
        f"elapsed time (jobs may have run in parallel).",
        "",
    ]


def figures_section(pngs, out: Path) -> list[str]:
    """Copy the PNGs into ``figures/`` beside the record and link them relatively."""
    if not pngs:
        return []
    dest_dir = out.parent / "figures"
    names = [Path(p).name for p in pngs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise KmlpError(f"two figures share the file name(s) {dup}; they would overwrite each other in figures/")
    dest_dir.mkdir(parents=True, exist_ok=True)
    lines = ["## Figures", ""]
    for p in map(Path, pngs):
        if not p.exists():
            raise KmlpError(f"figure {p} does not exist")
        dest = dest_dir / p.name
        if not (dest.exists() and os.path.samefile(p, dest)):
            atomic_copy(p, dest)
        lines += [f"![{_md(p.stem)}](figures/{p.name})", ""]
    return lines


def record_markdown(out, summary, gradcheck, tables=(), figures=(), benchmarks=(), meta=None, notes=None) -> str:
    """The record's text; the figures are copied into ``figures/`` beside ``out``."""
    out = Path(out)
    lines = [
        "# Reproduction record",
        "",
        "A KTH DD2424 (Assignment 3) report on a k-layer MLP with batch normalisation "
        f"on CIFAR-10, reproduced with kmlp {__version__}. Written by `kmlp record` from "
        "the workflow's outputs: do not edit by hand.",
        "",
    ]
    lines += meta_section(meta or {})
    lines += gradcheck_section(gradcheck)
    lines += summary_section(summary)
    if tables:
        lines += ["## The report's tables", ""]
        for path in tables:
            lines += table_section(path)
    lines += compute_section(benchmarks)
    lines += figures_section(figures, out)
    if notes:
        if not Path(notes).exists():
            raise KmlpError(f"notes file {notes} does not exist")
        lines += ["## Notes", "", Path(notes).read_text().strip(), ""]
    return "\n".join(lines)
