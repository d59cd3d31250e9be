"""Figures like the report's: accuracy, loss and cost against update step, train and
validation, the mean over seeds with a band of one sample standard deviation.

Diverged runs are left out of the mean and said so in the legend. The files are
byte-deterministic (no dates, no software stamp) and carry their provenance in the
PDF's Subject/Keywords and the PNG's text chunks.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..files import atomic_path
from .grouping import group_runs

PANELS = (("acc", "accuracy"), ("loss", "loss (cross-entropy)"), ("cost", "cost (loss + L2)"))
PNG_DPI = 120
# Fixed style, so neither a user's matplotlibrc nor the default cycle changes the output.
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def mean_band(runs, column: str):
    """(steps, mean, std, n) of a history column over runs, aligned on the union of steps.

    A run missing a step, or holding a non-finite value there, does not count at it.
    """
    steps = np.unique(np.concatenate([np.asarray(r.history["step"], np.float64) for r in runs]))
    values = np.full((len(runs), steps.size), np.nan)
    for i, run in enumerate(runs):
        values[i, np.searchsorted(steps, run.history["step"])] = run.history[column]
    ok = np.isfinite(values)
    n = ok.sum(axis=0)
    mean = np.where(ok, values, 0.0).sum(axis=0) / np.maximum(n, 1)
    dev = np.where(ok, values - mean, 0.0)
    std = np.sqrt((dev**2).sum(axis=0) / np.maximum(n - 1, 1))
    mean[n == 0] = np.nan
    std[n == 0] = np.nan
    return steps, mean, std, n


def legend_label(name: str, members) -> str:
    done = [r for r in members if r.status != "diverged"]
    diverged = len(members) - len(done)
    if not done:
        return f"{name} (all {diverged} runs diverged: no curve)"
    if diverged:
        return (
            f"{name} (n={len(done)}; diverged, left out of the mean: seed "
            + ",".join(str(r.seed) for r in members if r.status == "diverged")
            + ")"
        )
    return f"{name} (n={len(done)} seeds)"


def plot_runs(runs, title: str = "") -> Figure:
    """One figure, three panels, from RunRecords (a list, or experiment -> list)."""
    groups = runs if isinstance(runs, dict) else group_runs(runs)
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(PANELS))
    handles = []
    for k, (name, members) in enumerate(groups.items()):
        color = COLORS[k % len(COLORS)]
        done = [r for r in members if r.status != "diverged"]
        handles.append(Line2D([], [], color=color, lw=2, label=legend_label(name, members)))
        if not done:
            continue
        for ax, (key, _) in zip(axes, PANELS, strict=True):
            for split, style in (("train", "-"), ("val", "--")):
                steps, mean, std, _ = mean_band(done, f"{split}_{key}")
                ax.plot(steps, mean, ls=style, color=color, lw=1.4)
                ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.18, lw=0)
    for ax, (_, label) in zip(axes, PANELS, strict=True):
        ax.set_xlabel("update step")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    style = [
        Line2D([], [], color="0.3", ls="-", label="train"),
        Line2D([], [], color="0.3", ls="--", label="validation"),
        Line2D([], [], color="0.3", lw=6, alpha=0.25, label="mean $\\pm$ 1 std"),
    ]
    axes[0].legend(handles=style, loc="best", fontsize="small")
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), fontsize="small", frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig: Figure, pdf, png=None, title: str = "", prov: dict | None = None) -> None:
    """Write PDF (and PNG) with fixed metadata: the same figure gives the same bytes."""
    prov = prov or {}
    subject = "; ".join(f"{k}: {v}" for k, v in prov.items() if k != "experiments" and v)
    with atomic_path(pdf) as tmp:
        fig.savefig(
            tmp,
            format="pdf",
            metadata={
                "Title": title,
                "Subject": subject,
                "Keywords": prov.get("experiments", ""),
                "Creator": f"kmlp {prov.get('kmlp_version', '')}".strip(),
                "CreationDate": None,
                "ModDate": None,
            },
        )
    if png:
        write_png(fig, png, {"Title": title, **{k: str(v) for k, v in prov.items() if v}})


def write_png(fig: Figure, path, text: dict) -> None:
    """A 256-colour PNG (a third of the RGBA size: the record commits them) whose only
    metadata are the ``text`` chunks: no software stamp, no date."""
    from PIL import Image, PngImagePlugin

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    image = Image.open(buf).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    with atomic_path(path) as tmp:
        image.save(tmp, format="png", pnginfo=info, optimize=True)
