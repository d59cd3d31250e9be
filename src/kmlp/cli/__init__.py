"""The `kmlp` command: the package's only face. Each verb is one workflow step.

Each verb's parser is defined next to its implementation (``cli/data.py``,
``cli/nn.py``, ``cli/report.py``); shared options are argparse parents
(``cli/options.py``). Every verb turns a :class:`~kmlp.errors.KmlpError` (bad input,
wrong checksum, a corrupt file) into one sentence on stderr and exit status 1; a
failed gradient check exits 2.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import KmlpError
from . import bench, data, nn, report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kmlp",
        description="k-layer MLP with batch normalisation on CIFAR-10 (KTH DD2424 "
        "Assignment 3 reproduction). Each verb is one step of the workflow.",
    )
    p.add_argument("--version", action="version", version=f"kmlp {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add in (*data.VERBS, *nn.VERBS, *bench.VERBS, *report.VERBS):
        add(sub)
    return p


def _threads(args) -> None:
    """Cap BLAS threads at --threads so parallel jobs do not oversubscribe the cores."""
    if getattr(args, "threads", None):
        import numpy  # noqa: F401  (loads the BLAS library the limit is set on)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)


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
