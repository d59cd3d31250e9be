"""The `kmlp` command: the package's only face. Each verb is one workflow step.

Each verb's parser is defined next to its implementation (``cli/data.py``,
``cli/gradcheck.py``, ``cli/train.py``, ``cli/search.py``, ``cli/aggregate.py``,
``cli/bench.py``, ``cli/cluster.py``); shared options are argparse parents
(``cli/options.py``). Every failure of a verb is one sentence on stderr naming the file,
option or key, found before any work where it can be (usage, settings, whether the
outputs can be written): a usage error exits 2, any other error 1 (``--debug`` shows the
traceback instead), a failed gradient check 2, an interruption 130 (SIGINT) or 143
(SIGTERM), after the temporary file of an unfinished output is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from .. import __version__
from ..errors import KmlpError, Terminated
from . import aggregate, bench, cluster, data, gradcheck, options, search, train


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``--help`` has the rest)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="kmlp",
        description="k-layer MLP with batch normalisation on CIFAR-10 (KTH DD2424 "
        "Assignment 3 reproduction). Each verb is one step of the workflow.",
    )
    p.add_argument("--version", action="version", version=f"kmlp {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for module in (data, gradcheck, train, search, bench, cluster, aggregate):
        for add in module.VERBS:
            add(sub)
    return p


def _threads(args) -> None:
    """Cap BLAS threads at --threads so parallel jobs do not oversubscribe the cores."""
    if getattr(args, "threads", None):
        import numpy  # noqa: F401  (loads the BLAS library the limit is set on)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)


@contextlib.contextmanager
def _sigterm_unwinds():
    """While the verb runs, SIGTERM raises :class:`Terminated` where the process is (a
    second one, during the clean-up, is ignored)."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sentence(exc: BaseException) -> str:
    """What went wrong, as one line."""
    if isinstance(exc, KmlpError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory" + (f" ({exc})" if str(exc) else "") + ": give it more memory"
    elif isinstance(exc, OSError) and exc.filename:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = f"unexpected {type(exc).__name__}: {exc}"
    if not isinstance(exc, KmlpError):
        text += " (--debug shows the traceback)"
    return " ".join(text.split())


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (printed, one line)
        return exc.code if isinstance(exc.code, int) else 0
    verb = f"kmlp {args.verb}"
    with _sigterm_unwinds():
        try:
            _threads(args)
            options.check_outputs(args)
            return int(args.func(args) or 0)
        except BrokenPipeError:  # e.g. `kmlp gradcheck | head`: the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        except KeyboardInterrupt:
            print(f"{verb}: interrupted", file=sys.stderr)
            return 130
        except Terminated as exc:
            print(f"{verb}: terminated", file=sys.stderr)
            return 128 + exc.signum
        except Exception as exc:
            if args.debug:
                raise
            print(f"{verb}: error: {_sentence(exc)}", file=sys.stderr)
            return 1
