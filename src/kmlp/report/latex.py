"""LaTeX tables (booktabs; longtables for the long ones) with escaping that keeps math."""

from __future__ import annotations

import math

from .checks import GRAD_STATS
from .tabular import fmt3

_TEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


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
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "$0$"
    mant, exp = f"{x:.2e}".split("e")
    return f"${mant}\\times10^{{{int(exp)}}}$"


def tex_comments(lines) -> str:
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
    lines = [
        tex_comments(comments).rstrip("\n"),
        r"\begin{table}[htbp]",
        r"\centering",
        f"\\caption{{{tex_text(spec.get('caption', ''))}}}",
        f"\\label{{{label}}}",
        r"\begin{tabular}{l" + "rr" * len(columns) + "}",
        r"\toprule",
        " & ".join([""] + [f"\\multicolumn{{2}}{{c}}{{{tex_text(c)}}}" for c in columns]) + r" \\",
        "".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(columns))),
        " & ".join([tex_text(spec.get("row_label", ""))] + ["ours", "paper"] * len(columns)) + r" \\",
        r"\midrule",
    ]
    by_row: dict = {}
    for r in rows:
        by_row.setdefault(r["row"], []).append(r)
    for row, cells in by_row.items():
        parts = [tex_text(row)]
        for c in cells:
            parts += [ours_tex(c, n_full), fmt3(c["paper"]) if c["paper"] is not None else "--"]
        lines.append(" & ".join(parts) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        "",
        f"\\smallskip{{\\footnotesize Ours: mean $\\pm$ sample std over $n={n_full}$ "
        r"seeds unless marked; $^\dagger$: runs diverged and are left out.}",
        r"\end{table}",
        "",
    ]
    return "\n".join(lines)


def longtable_head(comments, preamble: list[str], colspec: str, caption: str, label: str, head: str) -> list[str]:
    """The opening of a longtable that repeats its header on every page."""
    return [
        tex_comments(comments).rstrip("\n"),
        *preamble,
        f"\\begin{{longtable}}{{{colspec}}}",
        f"\\caption{{{caption}}}\\label{{{label}}}\\\\",
        r"\toprule",
        head,
        r"\midrule",
        r"\endfirsthead",
        r"\toprule",
        head,
        r"\midrule",
        r"\endhead",
        r"\bottomrule",
        r"\endfoot",
    ]


def render_summary_tex(rows: list[dict], comments, within_std: float) -> str:
    head = r"experiment & metric & paper & ours & $n$ & diverged & reproduced & reading \\"
    caption = (
        r"Every number of the report beside ours (mean $\pm$ sample std over "
        f"seeds); reproduced when the report's value lies within {within_std:g} "
        r"std of our mean."
    )
    lines = longtable_head(comments, [r"{\small"], "llrrrrlp{4cm}", caption, "tab:summary", head)
    for r in rows:
        ours = "n/a" if r["n"] == 0 else f"${r['mean']:.3f} \\pm {r['std']:.3f}$"
        lines.append(
            " & ".join(
                [
                    tex_escape(r["experiment"]),
                    tex_escape(r["metric"]),
                    fmt3(r["paper"]),
                    ours,
                    str(r["n"]),
                    str(r["diverged"]),
                    tex_escape(r["verdict"]),
                    tex_text(r["reading"]),
                ]
            )
            + r" \\"
        )
    lines += [r"\end{longtable}", "}", ""]
    return "\n".join(lines)


def render_gradtable_tex(rows: list[dict], comments) -> str:
    head = (
        r"check & param. & shape & grad mean & grad std & diff mean & diff std & "
        r"diff max & rel. err. & max entry rel. err. & passed \\"
    )
    caption = (
        r"Analytic against numerical (centred difference) gradients, per "
        r"parameter: statistics of the analytic gradient and of the difference "
        r"analytic $-$ numerical; the relative error $\|g_a-g_n\|/(\|g_a\|+\|g_n\|)$ "
        r"per parameter, and the largest entrywise one, which near-zero entries dominate."
    )
    lines = longtable_head(
        comments, [r"{\footnotesize", r"\setlength{\tabcolsep}{3pt}"], "lllrrrrrrrl", caption, "tab:gradcheck", head
    )
    previous = None
    for r in rows:
        first = r["check"] != previous
        if first and previous is not None:
            lines.append(r"\midrule")
        previous = r["check"]
        lines.append(
            " & ".join(
                [tex_escape(r["check"]) if first else "", tex_escape(r["parameter"]), tex_escape(r["shape"])]
                + [fmt_sci(r[k]) for k in GRAD_STATS]
                + [r["passed"] if first else ""]
            )
            + r" \\"
        )
    lines += [r"\end{longtable}", "}", ""]
    return "\n".join(lines)
