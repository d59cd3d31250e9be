"""LaTeX tables: cells formatted here, laid out by pandas (``Styler.to_latex``, booktabs
rules; longtables for the long ones). Escaping keeps ``$...$`` math as written."""

from __future__ import annotations

import math

import pandas as pd

from .tabular import fmt3, interval_text, split_text, to_float

_TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def tex_escape(text) -> str:
    return "".join(_TEX_SPECIALS.get(c, c) for c in str(text))


def tex_text(text) -> str:
    """Escape prose but keep ``$...$`` math as written (e.g. a row label ``$\\lambda$``)."""
    parts = str(text).split("$")
    if len(parts) % 2 == 0:  # an unpaired $: treat everything as prose
        return tex_escape(text)
    return "$".join(p if i % 2 else tex_escape(p) for i, p in enumerate(parts))


def fmt_sci(x) -> str:
    """3 significant digits as LaTeX math, e.g. ``$3.10\\times10^{-7}$``."""
    x = to_float(x)
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "$0$"
    mant, exp = f"{x:.2e}".split("e")
    return f"${mant}\\times10^{{{int(exp)}}}$"


def comments_tex(lines) -> str:
    return "".join(f"% {line}\n" for line in lines)


def ours_tex(cell, n_full: int) -> str:
    """``$0.523 \\pm 0.004$``; a single run shows no spread; the seed count where it falls
    short of the others'; a dagger where runs diverged or gave non-finite values."""
    mark = r"^\dagger" if cell["diverged"] or cell["nonfinite"] else ""
    if split_text(cell):  # runs at chance: say so, not a mean of two modes
        text = tex_escape(split_text(cell)).replace("±", "$\\pm$") + (f"${mark}$" if mark else "")
    elif cell["n"] == 0:
        text = f"n/a${mark}$" if mark else "n/a"
    elif cell["n"] == 1 or not math.isfinite(cell["std"]):  # one run, or a single number
        text = f"${cell['mean']:.3f}{mark}$"
    else:
        text = f"${cell['mean']:.3f} \\pm {cell['std']:.3f}{mark}$"
    return text + (f" ($n={cell['n']}$)" if cell["n"] != n_full else "")


def verdict_tex(cell) -> str:
    """``consistent ($z=-0.4$)``; empty where the report gives no number."""
    if not cell["verdict"]:
        return ""
    z = to_float(cell["z"])
    how = f" (by {cell['by']})" if cell.get("by") not in ("interval", "", None) else ""
    return cell["verdict"] + (f" ($z={z:.1f}$)" if math.isfinite(z) else "") + tex_escape(how)


def interval_tex(cell) -> str:
    return tex_escape(interval_text(cell))


def _latex(frame: pd.DataFrame, comments, caption: str, label: str, longtable: bool, colspec: str,
           footnote: str = "", size: str = "") -> str:  # fmt: skip
    body = frame.style.hide(axis="index").to_latex(
        hrules=True,
        multicol_align="c",
        column_format=colspec,
        caption=caption,
        label=label,
        environment="longtable" if longtable else None,
        position=None if longtable else "htbp",
        position_float=None if longtable else "centering",
    )
    if footnote:
        note = f"\\smallskip{{\\footnotesize {footnote}}}\n"
        body = body.replace("\\end{table}", note + "\\end{table}") if not longtable else body + note
    if size:
        body = f"{{{size}\n{body}}}\n"
    return comments_tex(comments) + body


def grid_tex(caption: str, row_label: str, cells: pd.DataFrame, label: str, comments, rule_note: str = "") -> str:
    """A grid table: a row per label, per column our number, the report's and the verdict."""
    n_full = int(cells.n.max()) if len(cells) else 0
    show_verdict = bool((cells.verdict != "").any())
    head = tex_text(row_label)
    columns = list(dict.fromkeys(cells.column))
    table = {}
    for row, group in cells.groupby("row", sort=False):
        by_col = {c["column"]: c for _, c in group.iterrows()}
        line = {(head, ""): tex_text(row)}
        for col in columns:
            c = by_col.get(col)
            line[(tex_text(col), "ours")] = ours_tex(c, n_full) if c is not None else "--"
            line[(tex_text(col), "paper")] = fmt3(c["paper"]) if c is not None and math.isfinite(c["paper"]) else "--"
            if show_verdict:
                line[(tex_text(col), "verdict")] = verdict_tex(c) if c is not None else ""
        table[row] = line
    frame = pd.DataFrame(list(table.values()))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    note = (
        f"Ours: mean $\\pm$ sample std over $n={n_full}$ seeds unless marked; $^\\dagger$: runs diverged or gave "
        "non-finite values and are left out." + (f" Verdict: {tex_escape(rule_note)}." if show_verdict else "")
    )
    colspec = "l" + ("rr" + ("l" if show_verdict else "")) * len(columns)
    return _latex(frame, comments, tex_text(caption), label, False, colspec, note,
                  "\\small" if show_verdict else "")  # fmt: skip


def summary_tex(rows: pd.DataFrame, comments, rule_note: str) -> str:
    """Every number of the report beside ours, in a longtable."""
    frame = pd.DataFrame(
        {
            "experiment": [tex_escape(e) for e in rows.experiment],
            "metric": [tex_escape(m) for m in rows.metric],
            "paper": [fmt3(p) for p in rows.paper],
            "ours": [ours_tex(r, r["n"]) for _, r in rows.iterrows()],
            "$n$": [str(n) for n in rows.n],
            "one run, 95\\%": [interval_tex(r) for _, r in rows.iterrows()],
            "$z$": [f"{z:.1f}" if math.isfinite(z) else "n/a" for z in rows.z],
            "verdict": list(rows.verdict),
            "stable": [f"{s:.0%}".replace("%", "\\%") if math.isfinite(s) else "n/a" for s in rows.stability],
            "reading": [tex_text(r) for r in rows.reading],
        }
    )
    caption = (
        "Every number of the report beside ours (mean $\\pm$ sample std over $n$ seeds), the interval one run "
        f"of ours falls in, the standardised distance $z$ and the verdict: {tex_escape(rule_note)}. "
        "Stable: the share of bootstrap resamples of our seeds that give the same verdict."
    )
    if "need" in rows:
        frame["stable"] = [
            f"{st} ({tex_escape(n)})" if n not in ("stable", "") else st
            for st, n in zip(frame["stable"], rows["need"].fillna(""), strict=True)
        ]
        caption += (
            " A number under the stability threshold got more seeds (seeds by need); one still under it says why "
            "it got no more: at the cap of seeds, or the budget of compute spent."
        )
    return _latex(frame, comments, caption, "tab:summary", True, "llrrrrrllp{3.5cm}", size="\\scriptsize")


def gradcheck_tex(rows: pd.DataFrame, comments, stats) -> str:
    """The gradient-check statistics: a block of rows per check."""
    first = ~rows.check.duplicated()
    frame = pd.DataFrame(
        {
            "check": [tex_escape(c) if f else "" for c, f in zip(rows.check, first, strict=True)],
            "param.": [tex_escape(p) for p in rows.parameter],
            "shape": [tex_escape(s) for s in rows["shape"]],
            **{k.replace("_", " "): [fmt_sci(v) for v in rows[k]] for k in stats},
            "passed": [p if f else "" for p, f in zip(rows.passed, first, strict=True)],
        }
    )  # fmt: skip
    caption = (
        r"Analytic against numerical (centred difference) gradients, per parameter: statistics of the analytic "
        r"gradient and of the difference analytic $-$ numerical; the relative error "
        r"$\|g_a-g_n\|/(\|g_a\|+\|g_n\|)$ per parameter, and the largest entrywise one, which near-zero "
        r"entries dominate."
    )
    return _latex(frame, comments, caption, "tab:gradcheck", True, "lll" + "r" * len(stats) + "l",
                  size="\\footnotesize")  # fmt: skip


def discrepancies_tex(rows: pd.DataFrame, comments, rule_note: str) -> str:
    """The numbers not consistent under the report's setting (and any the config tests
    explanations of) and the hypotheses tested for each, graded, in a longtable (the other
    numbers each hypothesis touches are in the CSV and the record)."""
    rows = rows[rows.role != "touched"]
    first = rows.role == "setting"
    verdicts = [v if f else h for v, h, f in zip(rows.verdict, rows.verdict_holm, first, strict=True)]
    frame = pd.DataFrame(
        {
            "number": [f"{tex_escape(e)} {tex_escape(m)}: {fmt3(p)}" if f else ""
                       for e, m, p, f in zip(rows.experiment, rows.metric, rows.paper, first, strict=True)],
            "hypothesis": [tex_text(f"{h}: {s}") for h, s in zip(rows.hypothesis, rows.says, strict=True)],
            "ours": [ours_tex(r, r["n"]) for _, r in rows.iterrows()],
            "$n$": [str(n) for n in rows.n],
            "one run, 95\\%": [interval_tex(r) for _, r in rows.iterrows()],
            "$z$": [f"{z:.1f}" if math.isfinite(z) else "n/a" for z in rows.z],
            "verdict": verdicts,
            "touches": [str(int(k)) for k in rows.touched],
            "grade": ["" if f else tex_escape(g) for g, f in zip(rows.grade, first, strict=True)],
        }
    )  # fmt: skip
    caption = (
        "The report's numbers that are not consistent under the report's setting, and the explanations tested "
        f"for each, judged by the same rule ({tex_escape(rule_note)}), Holm-corrected over the hypotheses tried "
        "on a number, and graded by every number each touches (the record lists them): one explains a number "
        "only if consistent here, inconsistent on no other number it touches, no worse in joint fit than our "
        "setting, a plausible reading of the report's text, posed before its result and trained on every "
        "number it touches."
    )
    return _latex(frame, comments, caption, "tab:discrepancies", True, "p{2.4cm}p{5cm}rrrrlrl", size="\\scriptsize")
