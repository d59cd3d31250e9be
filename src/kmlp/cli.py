"""The `kmlp` command: the package's only face. Each verb is one workflow step.

Every verb turns a :class:`~kmlp.errors.KmlpError` (bad input, wrong checksum, a
corrupt file) into one sentence on stderr and exit status 1; a failed gradient check
exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from . import __version__
from .errors import KmlpError

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"


def _json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None


def _threads(args) -> None:
    """Cap BLAS threads at --threads so parallel jobs do not oversubscribe the cores."""
    if getattr(args, "threads", None):
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)


# -- verbs ---------------------------------------------------------------------------
def _verb(module: str, function: str):
    """The verb's implementation, imported only when it runs (a fast --help)."""

    def run(args):
        return getattr(importlib.import_module(f"kmlp.{module}"), function)(args)

    return run


def _download(args):
    from .download import download

    download(args.url, args.out, args.md5, progress=not args.quiet)


def _prepare(args):
    from .dataset import prepare

    summary = prepare(args.archive, args.md5, args.out, val_size=args.val_size,
                      progress=not args.quiet)
    print(json.dumps(summary, indent=2, sort_keys=True))


def _table_outputs(s, verdict: bool = True) -> None:
    """Options every table-writing verb shares."""
    if verdict:
        s.add_argument("--within-std", type=float, default=2.0, help="verdict threshold in standard deviations")
    s.add_argument("--out-tex", required=True, type=Path, help="booktabs LaTeX table to write")
    s.add_argument("--out-csv", required=True, type=Path, help="the same as CSV")
    s.add_argument("--config", default="", help="config file name to record in the output")


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kmlp",
        description="k-layer MLP with batch normalisation on CIFAR-10 (KTH DD2424 "
        "Assignment 3 reproduction). Each verb is one step of the workflow.",
    )
    p.add_argument("--version", action="version", version=f"kmlp {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    s = sub.add_parser("download", help="download CIFAR-10 and verify its MD5",
                       description="Download an archive to a temporary name, verify its "
                       "MD5 and only then move it to --out. Nothing is left on failure.")
    s.add_argument("--url", default=OFFICIAL_URL, help="where to download from (default: the official archive)")
    s.add_argument("--md5", default=OFFICIAL_MD5, help="MD5 the bytes must have (default: the official archive's)")
    s.add_argument("--out", required=True, type=Path, help="where to put the verified archive")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_download)

    s = sub.add_parser("prepare", help="verify, read and normalise CIFAR-10 into one HDF5 file",
                       description="Read the python-version CIFAR-10 archive (or its extracted "
                       "folder) safely, split off a validation set, normalise with training "
                       "statistics and write one HDF5 file.")
    s.add_argument("--archive", required=True, type=Path, help="cifar-10-python.tar.gz or an extracted cifar-10-batches-py/ folder")
    s.add_argument("--md5", default=OFFICIAL_MD5, help="MD5 the archive must have (default: the official one); for a folder, 'skip' skips the check")
    s.add_argument("--out", required=True, type=Path, help="the HDF5 file to write")
    s.add_argument("--val-size", type=int, default=5000, help="images held out of the training batches for validation (default 5000)")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=_prepare)

    s = sub.add_parser("gradcheck", help="compare analytic gradients with centred differences",
                       description="Build a net on the first --input-dim dimensions of the "
                       "first --n-samples training images and compare every parameter's "
                       "analytic gradient with a float64 centred difference. Exit 2 if the "
                       "maximum relative error exceeds --max-rel-error.")
    s.add_argument("--data", type=Path, help="prepared HDF5 data set (default: Gaussian random inputs)")
    s.add_argument("--name", default="gradcheck", help="a label stored in the output")
    s.add_argument("--hidden", type=int, nargs="*", default=[50, 50], help="hidden widths (default 50 50)")
    s.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    s.add_argument("--init", default="he", choices=["he", "normal"], help="weight initialisation")
    s.add_argument("--sigma", type=float, help="std for --init normal")
    s.add_argument("--lam", type=float, default=0.0, help="L2 weight lambda (default 0)")
    s.add_argument("--n-samples", type=int, default=20, help="mini-batch size of the check (default 20)")
    s.add_argument("--input-dim", type=int, default=10, help="input dimensions used (default 10)")
    s.add_argument("--h", type=float, default=1e-5, help="finite-difference step (default 1e-5)")
    s.add_argument("--seed", type=int, default=1, help="seed of the weights and sample choice")
    s.add_argument("--max-rel-error", type=float, default=1e-6, help="pass threshold on the max relative error")
    s.add_argument("--out", type=Path, help="write the statistics as JSON here")
    s.set_defaults(func=_verb("commands", "gradcheck_cli"))

    s = sub.add_parser("train", help="train one configuration with one seed and write a run file",
                       description="Mini-batch gradient descent with a triangular cyclical "
                       "learning rate and L2 regularisation. Writes an HDF5 run file with the "
                       "history, final train/validation/test metrics and the weights. A "
                       "divergence (non-finite cost) ends the run and is recorded, not raised.")
    s.add_argument("--data", required=True, type=Path, help="prepared HDF5 data set (kmlp prepare)")
    s.add_argument("--out", required=True, type=Path, help="run file to write (.h5)")
    s.add_argument("--experiment", default="run", help="experiment name stored in the run file")
    s.add_argument("--seed", type=int, default=1, help="seed of initialisation and shuffling")
    s.add_argument("--hidden", type=int, nargs="*", default=[50, 50], help="hidden widths (default 50 50)")
    s.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    s.add_argument("--init", default="he", choices=["he", "normal"], help="weight initialisation (default he)")
    s.add_argument("--sigma", type=float, help="std for --init normal")
    s.add_argument("--lam", type=float, default=0.005, help="L2 weight lambda (default 0.005)")
    s.add_argument("--n-batch", type=int, default=100, help="mini-batch size (default 100)")
    s.add_argument("--eta-min", type=float, default=1e-5, help="cyclical LR minimum (default 1e-5)")
    s.add_argument("--eta-max", type=float, default=1e-1, help="cyclical LR maximum (default 0.1)")
    s.add_argument("--n-s", type=int, default=2250, help="half-cycle length in updates (default 2250)")
    s.add_argument("--cycles", type=int, default=2, help="number of cycles (default 2)")
    s.add_argument("--eval-every", type=int, default=0, help="updates between evaluations (default 0: once per epoch)")
    s.add_argument("--eval-train-subset", type=int, default=0, help="training images the history's train metrics use, a fixed random subset (default 0: all); final train metrics use all")
    s.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="training precision (default float32)")
    s.add_argument("--threads", type=int, default=0, help="BLAS threads (default: the library's own choice)")
    s.add_argument("--paper", type=_json_arg, default={}, help="the report's numbers for this run, as JSON, stored for aggregation")
    s.add_argument("--source", type=_json_arg, default={}, help="provenance to store (JSON), e.g. the config file")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=_verb("commands", "train_cli"))

    s = sub.add_parser("bench", help="time a training update against the matrix-product floor",
                       description="Time one update of the 3072-50-50-10 net at batch 100 in "
                       "float32, with and without batch norm, beside the same matrix products "
                       "alone, measured in the same run.")
    s.add_argument("--repeats", type=int, default=7, help="timing rounds; the median is reported")
    s.add_argument("--updates", type=int, default=200, help="updates per round")
    s.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    s.add_argument("--out", type=Path, help="also write the figures as JSON")
    s.set_defaults(func=_verb("commands", "bench_cli"))

    s = sub.add_parser("lambda-pick", help="rank lambda-search runs and draw the next, finer grid",
                       description="Rank run files by mean final validation accuracy; write "
                       "the ranking, the best lambda and (with --fine-n) random lambdas "
                       "log-uniform within --half-width decades around the best, as JSON.")
    s.add_argument("runs", nargs="+", type=Path, help="run files of the search")
    s.add_argument("--out", required=True, type=Path, help="JSON to write")
    s.add_argument("--fine-n", type=int, default=0, help="how many lambdas to draw for the next pass (default 0: none)")
    s.add_argument("--half-width", type=float, default=0.5, help="half width of the next pass, in decades of lambda")
    s.add_argument("--seed", type=int, default=1, help="seed of the draw")
    s.add_argument("--log10-floor", type=float, default=-5.0, help="centre used when the best lambda is 0")
    s.set_defaults(func=_verb("commands", "pick_cli"))

    s = sub.add_parser("figure", help="plot accuracy, loss and cost vs update step from run files")
    s.add_argument("runs", nargs="+", type=Path, help="run files (any experiments, any seeds)")
    s.add_argument("--title", default="", help="figure title")
    s.add_argument("--out", required=True, type=Path, help="output .pdf (a .png beside it with --png)")
    s.add_argument("--png", type=Path, help="also write this PNG")
    s.add_argument("--config", default="", help="config file name to record in the output")
    s.set_defaults(func=_verb("figures", "figure_cli"))

    s = sub.add_parser("table", help="a LaTeX + CSV table of one metric over a grid of experiments")
    s.add_argument("runs", nargs="+", type=Path, help="run files")
    s.add_argument("--spec", required=True, type=_json_arg, help="table layout as JSON (the config's tables entry)")
    _table_outputs(s)
    s.set_defaults(func=_verb("tables", "table_cli"))

    s = sub.add_parser("diagnose", help="re-evaluate trained runs: batch-norm evaluation modes, sampling spread",
                       description="Re-evaluate the stored weights of run files (no training): "
                       "validation and test accuracy with batch norm evaluated by the moving "
                       "averages and by each split's own batch statistics, the binomial std of an "
                       "accuracy on that many images, and the verdict with it added.")
    s.add_argument("runs", nargs="+", type=Path, help="run files")
    s.add_argument("--data", required=True, type=Path, help="the prepared HDF5 data set the runs used")
    _table_outputs(s)
    s.set_defaults(func=_verb("diagnose", "diagnose_cli"))

    s = sub.add_parser("gradtable", help="the gradient-check statistics as LaTeX + CSV")
    s.add_argument("checks", nargs="+", type=Path, help="gradcheck JSON files")
    _table_outputs(s, verdict=False)
    s.set_defaults(func=_verb("tables", "gradtable_cli"))

    s = sub.add_parser("summary", help="every number of the report beside ours, with a verdict")
    s.add_argument("runs", nargs="+", type=Path, help="run files")
    s.add_argument("--readings", type=_json_arg, default={}, help="JSON: experiment -> the alternative reading of the report it tests")
    _table_outputs(s)
    s.set_defaults(func=_verb("tables", "summary_cli"))

    s = sub.add_parser("report", help="a LaTeX report that includes every table and figure")
    s.add_argument("--tables", nargs="*", type=Path, default=[], help=".tex tables to include")
    s.add_argument("--figures", nargs="*", type=Path, default=[], help=".pdf figures to include")
    s.add_argument("--out", required=True, type=Path, help="report .tex to write")
    s.add_argument("--config", default="", help="config file name to record in the output")
    s.set_defaults(func=_verb("report", "report_cli"))

    s = sub.add_parser("pdf", help="compile a LaTeX report to PDF (needs latexmk or pdflatex)")
    s.add_argument("tex", type=Path, help="the report .tex")
    s.add_argument("--out", required=True, type=Path, help="PDF to write")
    s.set_defaults(func=_verb("report", "pdf_cli"))

    s = sub.add_parser("record", help="the reproduction record (Markdown) from the workflow's outputs")
    s.add_argument("--summary", required=True, type=Path, help="summary CSV (kmlp summary)")
    s.add_argument("--gradcheck", required=True, type=Path, help="gradient-check CSV (kmlp gradtable)")
    s.add_argument("--tables", nargs="*", type=Path, default=[], help="table CSVs (kmlp table) to show as grids")
    s.add_argument("--figures", nargs="*", type=Path, default=[], help="PNG figures to copy beside the record")
    s.add_argument("--benchmarks", nargs="*", type=Path, default=[], help="Snakemake benchmark files (for the wall time)")
    s.add_argument("--meta", type=_json_arg, default={}, help="command, config, data MD5 and archive, as JSON")
    s.add_argument("--notes", type=Path, help="hand-written Markdown (causes of non-reproduced numbers) to include")
    s.add_argument("--out", required=True, type=Path, help="Markdown file to write; figures go beside it")
    s.set_defaults(func=_verb("report", "record_cli"))
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _threads(args)
    try:
        rc = args.func(args)
    except KmlpError as exc:
        print(f"kmlp {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"kmlp {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `kmlp gradcheck | head`: the reader left
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
