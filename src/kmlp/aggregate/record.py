"""The reproduction record: Markdown that puts every number of the report beside ours,
made from the workflow's CSV tables, with the figures copied beside it.

Deterministic: no dates, no absolute paths, so it can be committed and diffed.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from .. import __version__
from ..errors import KmlpError
from ..files import atomic_copy
from .document import rel_path
from .stats import POOLS_KEY
from .tabular import fmt3, interval_text, read_csv, split_text, to_float, verdict_text

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


def _ours(r) -> str:
    """``0.523 ± 0.004`` over seeds; one run shows no spread; runs at chance are counted."""
    if split_text(r):
        return split_text(r)
    mean, std = to_float(r["mean"]), to_float(r["std"])
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if math.isfinite(std) else f"{mean:.3f}"


def rule_text(meta: dict) -> str:
    """The verdict rule a CSV's comment lines record, in one sentence."""
    from ..study.verdict import VerdictRule

    return VerdictRule.from_json(meta.get("verdict", "")).describe()


def summary_section(path) -> list[str]:
    meta, rows = read_csv(path)
    main = [r for r in rows if not r.get("reading")]
    alt = [r for r in rows if r.get("reading")]

    def count(sub):
        """The part a rerun elsewhere cannot move first: inconsistent, or not."""
        c = {v: sum(r["verdict"] == v for r in sub) for v in ("consistent", "borderline", "inconsistent", "n/a")}
        return (
            f"of {len(sub)} numbers, {c['inconsistent']} inconsistent and {c['consistent'] + c['borderline']} not "
            f"({c['consistent']} consistent, {c['borderline']} borderline)"
            + (f", {c['n/a']} without a finite result" if c["n/a"] else "")
        )

    lines = [
        "## The report's numbers beside ours",
        "",
        "Ours: mean ± sample standard deviation over n seeds (diverged runs left out and counted). "
        f"The rule: {rule_text(meta)}. *One run, 95 %*: the interval one run of ours falls in; *z*: the "
        "report's value minus our mean, over the spread of one run; *stable*: the share of bootstrap "
        f"resamples of our seeds that give the same verdict (source: `{rel_path(path)}`). Rows with a "
        "*reading* test another reading of what the report did.",
        "",
        f"**The report's setting: {count(main)}.**" + (f" Other readings tested: {count(alt)}." if alt else ""),
        "",
    ]
    need = "need" in (rows[0] if rows else {})
    if need:
        lines[-3] += (
            f" *Seeds*: the seeds the number's experiment was trained with, and those added because a verdict "
            f"was not stable (seeds by need, {_need_rule(meta)})."
        )
        lines[-1:-1] = [_need_text(rows), ""]
    pools = _pools_text(meta)
    if pools:
        lines += [pools, ""]
    lines += [
        "| experiment | metric | paper | ours | n | one run, 95 % | z | verdict | stable | diverged | reading |"
        + (" seeds |" if need else ""),
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|" + ("---|" if need else ""),
    ]
    for r in rows:
        z, st = to_float(r["z"]), to_float(r["stability"])
        lines.append(
            f"| {_md(r['experiment'])} | {_md(r['metric'])} | {fmt3(r['paper'])} | {_ours(r)} | {r['n']} | "
            + interval_text(r)
            + f" | {f'{z:.1f}' if math.isfinite(z) else 'n/a'} | {verdict_text(r)} | "
            + (f"{st:.0%}" if math.isfinite(st) else "n/a")
            + f" | {r['diverged']} | {_md(r.get('reading', ''))} |"
            + (f" {_seeds_text(r)} |" if need else "")
        )
    return lines + [""]


def _pools_text(meta: dict) -> str:
    """Each configured variance pool: its Bartlett p, and the members it set apart (judged on
    their own variance): which variance model each number was judged with."""
    pools = json.loads(meta.get(POOLS_KEY) or "{}")
    if not pools:
        return ""
    level = json.loads(meta.get("verdict") or "{}").get("homogeneity", 0)
    parts = []
    for name, found in pools.items():
        text = f"{name} ({found['metric']}, {len(found['kept'])} of {len(found['kept']) + len(found['apart'])}"
        text += f", Bartlett p = {found['p']:.2g}" if len(found["kept"]) > 1 else ""
        parts.append(text + (f"; apart: {', '.join(found['apart'])})" if found["apart"] else ")"))
    test = f"where Bartlett's test at {level:g} does not set a member apart" if level else "without a test"
    return f"**Variance pools** ({test}; a member set apart is judged on its own variance): " + "; ".join(parts) + "."


def _need_rule(meta: dict) -> str:
    rule = json.loads(meta["seeds_by_need"])["rule"]
    return (
        f"{rule['step']} more at a time while under {rule['stable']:.0%} stable, up to {rule['cap']} seeds and "
        f"{rule['budget']:.0%} more predicted training time, the report's own numbers first"
    )


def _seeds_text(r) -> str:
    """``10``; ``20 (+10)``; with why it stopped where a verdict is not stable."""
    seeds, added = int(r["seeds"]), int(r["added"])
    text = f"{seeds} (+{added})" if added else f"{seeds}"
    return text + (f", {r['need']}" if r["need"] not in ("stable", "") else "")


def _need_text(rows) -> str:
    """Which numbers needed more seeds, and which are not stable after them."""
    more = [r for r in rows if int(r["added"]) > 0]
    held = [r for r in rows if r["need"] not in ("stable", "")]
    text = f"**Seeds by need:** {len(more)} of {len(rows)} numbers were given more seeds"
    text += ": " + ", ".join(f"{r['experiment']} {r['metric']} ({_seeds_text(r)})" for r in more) if more else ""
    if held:
        text += f"; {len(held)} not stable after them: " + ", ".join(
            f"{r['experiment']} {r['metric']} ({to_float(r['stability']):.0%}, {r['need']})" for r in held
        )
    return text + "."


def discrepancies_section(path) -> list[str]:
    """Every number not consistent under the report's setting (and any the config tests
    explanations of), beside the hypotheses tested for it (`kmlp discrepancies`): a table
    each, why each is plausible or not, the grades; then every number each hypothesis
    touches, our setting's verdict beside the hypothesis's, and the joint fits."""
    import json

    from .discrepancies import GRADES, why_not

    meta, rows = read_csv(path)
    untested = {
        (d["experiment"], d["metric"]): d.get("untested", []) for d in json.loads(meta.get("discrepancies") or "[]")
    }
    history = {h["name"]: h.get("history", []) for d in json.loads(meta.get("discrepancies") or "[]")
               for h in d["hypotheses"]}  # fmt: skip
    lines = [
        "## Discrepancies",
        "",
        "Every number of the report that is not consistent under the report's setting (the summary above), "
        'beside the explanations tested for it (config `discrepancies`; the rule: config/README.md, "Judging '
        "an explanation\"). A hypothesis is a claim about the report's whole implementation or procedure: its "
        "runs stand in for the report's on every number it touches, each judged with that number's variance "
        "model (its pool's, or its own). On the number it is posed for, the m hypotheses tried are one family "
        "(*p (Holm)*: Holm-adjusted, and the verdict from it); on the other numbers it touches, the summary's "
        "rule; *Σz²*: the joint fit over all of them (normal-equivalent z), beside our setting's over the same "
        "numbers. Grades: *explains* (consistent here, inconsistent on no other number, a joint fit no worse "
        "than ours, a plausible reading, posed before its result and trained on every number it touches); "
        "*fits* (the same, short of the last three); *fits this number only*; *not ruled out* (borderline); "
        f"*ruled out*. *Why* quotes the report (source: `{rel_path(path)}`).",
        "",
    ]
    if not rows:
        return lines + ["Every number of the report is consistent under the report's setting: nothing to explain.", ""]
    numbers: dict = {}
    touched: dict = {}
    for r in rows:
        if r["role"] == "touched":
            touched.setdefault(r["hypothesis"], {}).setdefault((r["number_experiment"], r["number_metric"]), r)
        else:
            numbers.setdefault((r["experiment"], r["metric"]), []).append(r)
    heads = {}
    for (experiment, metric), group in numbers.items():
        lines += [
            f"### {_md(experiment)} {_md(metric)}: the report's {fmt3(group[0]['paper'])}",
            "",
            "| hypothesis | runs | ours | n | one run, 95 % | z | p (Holm) | verdict | touches | inconsistent on "
            "| Σz² (ours) | posed | plausible | grade |",
            "|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|---|---|---|",
        ]
        for r in group:
            z = to_float(r["z"])
            runs = r["runs"].replace(" ", ", ") + (f" (best {r['pick']} per seed)" if r["pick"] else "")
            first = r is group[0]
            if not first:
                heads.setdefault(r["hypothesis"], r)
            p, p_holm = to_float(r["p"]), to_float(r["p_holm"])
            posed = "" if first else r["posed"] + (" (post hoc)" if r["post_hoc"] == "True" else "")
            joint = f"{to_float(r['chi2']):.1f} ({to_float(r['chi2_ours']):.1f})"
            lines.append(
                f"| {_md(r['hypothesis'])}: {_md(r['says'])} | {_md(runs)} | {_ours(r)} | {r['n']} | "
                f"{interval_text(r)} | {f'{z:.1f}' if math.isfinite(z) else 'n/a'} | "
                f"{_p(p) if first else f'{_p(p)} ({_p(p_holm)})'} | "
                f"{verdict_text(r) if first else verdict_text({**r, 'verdict': r['verdict_holm']})} | "
                f"{r['touched']} | {_md(r['inconsistent_on'].replace(' ', ', '))} | {joint} | {posed} | "
                + ("" if first else ("yes" if r["plausible"] == "True" else "no"))
                + " | "
                + ("" if first else (f"**{r['grade']}**" if r["grade"] == "explains" else r["grade"]))
                + " |"
            )
        tested = group[1:]
        if tested:
            lines += ["", f"{len(tested)} hypotheses tried on this number: Holm's correction is over {len(tested)}."]
        lines += ["", "Why each is a plausible reading of the report, or not:", ""]
        lines += [f"- *{_md(r['hypothesis'])}*: {r['because']}" for r in tested] or ["- (no hypothesis configured)"]
        picked = [r for r in tested if to_float(r["pick_n"]) > 0]
        if picked:
            lines += ["", "The report's own pick, which a procedure that picks per seed also decides:", ""]
            lines += [
                f"- *{_md(r['hypothesis'])}*: one of the report's in {int(to_float(r['pick_k']))} of "
                f"{int(to_float(r['pick_n']))} seeds: {r['pick_verdict']} (rate rule)"
                for r in picked
            ]
        if untested.get((experiment, metric)):
            lines += ["", "Not tested here:", ""] + [f"- {u}" for u in untested[(experiment, metric)]]
        explained = [r["hypothesis"] for r in tested if r["grade"] == "explains"]
        if group[0]["verdict"] == "consistent":
            verdict = "**Consistent under the report's setting: nothing to explain**"
            verdict += " (listed because the config tests it)."
        elif explained:
            verdict = f"**Explained by {', '.join(explained)}.**"
        else:
            verdict = "**Not explained by any hypothesis tested.**"
        parts = []
        for g in GRADES[1:]:
            named = [r for r in tested if r["grade"] == g]
            if not named:
                continue
            if g == "fits":
                parts.append("fits, short of explaining: " + ", ".join(
                    f"{r['hypothesis']} ({why_not(r)})" for r in named))  # fmt: skip
            elif g == "fits this number only":
                parts.append(g + ": " + ", ".join(
                    f"{r['hypothesis']} ({_fits_only(r)})" for r in named))  # fmt: skip
            else:
                parts.append(g + ": " + ", ".join(
                    f"{r['hypothesis']} (z = {to_float(r['z']):.1f})" for r in named))  # fmt: skip
        said = "; ".join(parts)
        lines += ["", verdict + (f" {said[0].upper()}{said[1:]}." if parts else ""), ""]
    lines += _touched_section(heads, touched, history)
    return lines


def _p(p: float) -> str:
    """A p value in two significant digits (scientific below 0.001)."""
    if not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def _fits_only(r) -> str:
    """Why a hypothesis consistent on its number fits that number only."""
    why = []
    if r["inconsistent_on"]:
        why.append("inconsistent on " + r["inconsistent_on"].replace(" ", ", "))
    if r["pick_verdict"] == "inconsistent":
        why.append("inconsistent with the report's pick")
    if not to_float(r["chi2"]) <= to_float(r["chi2_ours"]):
        why.append("a worse joint fit than our setting's")
    return "; ".join(why)


def _touched_section(heads: dict, touched: dict, history: dict) -> list[str]:
    """Per hypothesis, once: every report number it touches, judged under our setting (the
    summary) and under the hypothesis, the joint fits, what no run tests, and its history."""
    if not heads:
        return []
    lines = [
        "### Every number each hypothesis touches",
        "",
        "Under our setting (the summary's verdict) and under the hypothesis (its runs in place of ours, the "
        "number's variance model). Σz² is over the numbers with a z, against χ² with that many degrees of "
        "freedom.",
        "",
    ]
    for name, head in heads.items():
        own = (head["number_experiment"], head["number_metric"])
        others = {own: head, **touched.get(name, {})}
        untrained = head["untrained"].split()
        lines += [
            f"#### {_md(name)} ({head['kind']}: posed {head['posed']}"
            + (", post hoc)" if head["post_hoc"] == "True" else ")"),
            "",
            f"Touches {_count(int(to_float(head['touched'])), 'report number')} it was trained on"
            + (f"; untrained: {', '.join(_md(u) for u in untrained)}" if untrained else "")
            + f". Σz² = {to_float(head['chi2']):.1f} (χ² p = {_p(to_float(head['chi2_p']))}); our setting "
            f"{to_float(head['chi2_ours']):.1f} (p = {_p(to_float(head['chi2_ours_p']))}) on the same numbers.",
            "",
        ]
        if len(others) > 1:
            lines += [
                "| number | report | runs | ours | z | verdict | under the hypothesis | z | verdict |",
                "|---|---:|---|---:|---:|---|---:|---:|---|",
            ]
            for (e, m), t in others.items():
                lines.append(
                    f"| {_md(e)} {_md(m)} | {fmt3(t['paper'])} | {_md(t['stands_in'])} | {fmt3(t['ours_mean'])} | "
                    f"{_z(t['ours_z'])} | {t['ours_verdict']} | {_ours(t)} | {_z(t['z'])} | {verdict_text(t)} |"
                )
            lines.append("")
        if history.get(name):
            lines += ["History: " + "; ".join(history[name]) + ".", ""]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _z(value) -> str:
    z = to_float(value)
    return f"{z:.1f}" if math.isfinite(z) else "n/a"


def environment_section(*paths) -> list[str]:
    """The numeric environment(s) the tables' runs and checks came from."""
    found = []
    for path in paths:
        meta, _ = read_csv(path)
        found += [e.strip() for e in meta.get("environment", "").split(" | ") if e.strip()]
    found = list(dict.fromkeys(found))
    lines = ["## Numeric environment", "",
             "Floats depend on the BLAS kernel (OpenBLAS chooses it by CPU, or by `OPENBLAS_CORETYPE`): the same "
             "machine and seed give the same bytes; another machine gives other floats, and only the statistics "
             "above can agree. The runs and checks here came from:", ""]  # fmt: skip
    return lines + [f"- {_md(e)}" for e in found or ["(not recorded)"]] + [""]


def table_section(path) -> list[str]:
    """A `kmlp table` CSV as a Markdown grid: a row per value, ours, paper and verdict per column."""
    _, rows = read_csv(path)
    labels = list(dict.fromkeys(r["row"] for r in rows))
    columns = list(dict.fromkeys(r["column"] for r in rows))
    cells = {(r["row"], r["column"]): r for r in rows}
    metric = rows[0]["metric"] if rows else ""
    judged = any(r.get("verdict") for r in rows)
    parts_head = "ours | paper" + (" | verdict" if judged else "")
    head = "| | " + " | ".join(f"{_md(c)}: {parts_head}" for c in columns) + " |"
    lines = [
        f"### {_md(Path(path).stem)} ({_md(metric)})",
        "",
        f"Source: `{rel_path(path)}`.",
        "",
        head,
        "|---|" + ("---:|---:|---|" if judged else "---:|---:|") * len(columns),
    ]
    for label in labels:
        parts = []
        for c in columns:
            r = cells.get((label, c))
            if r is None:
                parts.append(" | | " if judged else " | ")
                continue
            paper = fmt3(r["paper"]) if math.isfinite(to_float(r["paper"])) else ""
            n = f" (n={r['n']})" if r["n"] == "1" else ""
            parts.append(f"{_ours(r)}{n} | {paper}" + (f" | {verdict_text(r, z=True)}" if judged else ""))
        lines.append(f"| {_md(label)} | " + " | ".join(parts) + " |")
    return lines + [""]


def _benchmarks(paths) -> list[tuple[float, float]]:
    """(start, end) of each benchmarked job: end is the file's time, start end minus its duration."""
    spans = []
    for path in map(Path, paths):
        seconds = benchmark_seconds([path])
        end = path.stat().st_mtime
        spans.append((end - seconds, end))
    return spans


def compute_section(paths, report_paths=(), cores=None, added_paths=()) -> list[str]:
    """Elapsed time of the whole study and the job times, from Snakemake's benchmark files;
    ``added_paths``: the runs seeds by need added, against the rest (``paths``)."""
    if not paths:
        return []
    rest = benchmark_seconds(paths)
    paths = [*paths, *added_paths]
    spans = _benchmarks(paths)
    elapsed = max(e for _, e in spans) - min(s for s, _ in spans)
    total = benchmark_seconds(paths)
    lines = [
        "## Compute time",
        "",
        f"Measured by the workflow from its benchmark files (a job ends when its file is written and starts "
        f"its duration before): the study took **{_hms(elapsed)}** wall-clock time from its first job's start "
        f"to its last job's end" + (f" on {cores} cores" if cores else "") + f"; its {len(paths)} jobs took "
        f"{total:.0f} s ({_hms(total)}) of job time in all.",
    ]
    if report_paths:
        mine = benchmark_seconds(report_paths)
        lines[-1] += (
            f" The report's own {len(report_paths)} training runs took {mine:.0f} s ({_hms(mine)}) of job time"
            + (f", {_hms(mine / cores)} on {cores} cores" if cores else "")
            + "."
        )
    if added_paths:
        added = benchmark_seconds(added_paths)
        lines[-1] += (
            f" Seeds by need added {len(added_paths)} training runs: {added:.0f} s of job time, "
            f"{added / rest:.1%} more than the other {len(paths) - len(added_paths)} jobs' {rest:.0f} s."
        )
    return lines + [""]


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


def record_markdown(out, summary, gradcheck, tables=(), figures=(), benchmarks=(), report_benchmarks=(),
                    meta=None, notes=None, discrepancies=None, added_benchmarks=()) -> str:  # fmt: skip
    """The record's text; the figures are copied into ``figures/`` beside ``out``."""
    out = Path(out)
    meta = dict(meta or {})
    cores = meta.pop("cores", None)
    lines = [
        "# Reproduction record",
        "",
        "A KTH DD2424 (Assignment 3) report on a k-layer MLP with batch normalisation "
        f"on CIFAR-10, reproduced with kmlp {__version__}. Written by `kmlp record` from "
        "the workflow's outputs: do not edit by hand.",
        "",
    ]
    lines += meta_section(meta)
    lines += environment_section(summary, gradcheck)
    lines += gradcheck_section(gradcheck)
    lines += summary_section(summary)
    if discrepancies:
        lines += discrepancies_section(discrepancies)
    if tables:
        lines += ["## The report's tables", ""]
        for path in tables:
            lines += table_section(path)
    lines += compute_section(benchmarks, report_benchmarks, cores, added_benchmarks)
    lines += figures_section(figures, out)
    if notes:
        if not Path(notes).exists():
            raise KmlpError(f"notes file {notes} does not exist")
        lines += ["## Notes", "", Path(notes).read_text().strip(), ""]
    return "\n".join(lines)
