"""What several verbs share on the command line: argparse parents, JSON options, and
flags made from a settings dataclass (so each setting is defined once, in kmlp.nn)."""

from __future__ import annotations

import argparse
import inspect
import json
import math
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from ..errors import KmlpError


def json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None


def json_object(text: str) -> dict:
    value = json_arg(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def at_least(minimum: int):
    """An argparse type: an integer no smaller than ``minimum``."""

    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return integer


def positive(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def output(parser: argparse.ArgumentParser, *flags: str, **kw) -> None:
    """An option naming a file the verb writes: before the verb runs, :func:`check_outputs`
    makes sure it can be written, so a bad path fails at once and not after the work."""
    action = parser.add_argument(*flags, type=Path, **kw)
    parser.set_defaults(outputs=(*(parser.get_default("outputs") or ()), (action.dest, flags[0])))


def check_outputs(args) -> None:
    """Raise KmlpError for the first output option of ``args`` that cannot be written."""
    from ..files import check_writable

    for dest, flag in getattr(args, "outputs", ()):
        if getattr(args, dest) is not None:
            check_writable(getattr(args, dest), flag)


def verb(sub, func, help: str, *parents) -> argparse.ArgumentParser:
    """Register ``func`` as the verb named after it; its docstring is the verb's --help."""
    p = sub.add_parser(
        func.__name__.replace("_", "-"),
        parents=list(parents),
        help=help,
        description=inspect.cleandoc(func.__doc__ or help),
    )
    p.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line")
    p.set_defaults(func=func)
    return p


def parent(*options) -> argparse.ArgumentParser:
    """An argparse parent holding ``options``: (flags, keyword arguments) pairs."""
    p = argparse.ArgumentParser(add_help=False)
    for flags, kw in options:
        p.add_argument(*flags, **kw)
    return p


#: Options several verbs share; a verb lists the parents it takes.
CONFIG = parent((["--config"], dict(default="", help="config file name to record in the output")))
QUIET = parent((["--quiet"], dict(action="store_true", help="no progress output")))
THREADS = parent(
    (["--threads"], dict(type=at_least(0), default=0, help="BLAS threads (default: the library's own choice)"))
)
TABLE_OUT = parent()
output(TABLE_OUT, "--out-tex", required=True, help="booktabs LaTeX table to write")
output(TABLE_OUT, "--out-csv", required=True, help="the same as CSV")
VERDICT = parent(
    (["--verdict"], dict(type=json_object, default={}, help="the verdict rule as JSON (the config's verdict section)"))
)


def add_settings(parser: argparse.ArgumentParser, cls) -> None:
    """``--settings JSON`` and one flag per field of the dataclass ``cls``.

    A flag given on the command line wins over the same key in ``--settings``; a key
    given by neither keeps the field's default.
    """
    parser.add_argument(
        "--settings",
        type=json_object,
        default={},
        help="all settings at once, as a JSON object (the flags below override its keys)",
    )
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        kind = hints[f.name]
        default = f.default if f.default is not MISSING else None
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        kw = dict(dest=f.name, default=None, help=f"{f.metadata['help']} (default {shown})")
        if f.metadata.get("choices"):
            kw["choices"] = f.metadata["choices"]
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            kw.update(nargs="*", type=int, metavar="N")
        elif kind is int:
            kw["type"] = int
        elif kind is not str:
            kw["type"] = float
        parser.add_argument("--" + f.name.replace("_", "-"), **kw)


def settings_from(args, cls, base: dict | None = None):
    """The dataclass ``cls`` from ``base``, then ``--settings``, then the flags (each
    overriding the one before); one-line error if invalid."""
    given = {**(base or {}), **args.settings}
    given.update({f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name) is not None})
    try:
        return cls.from_dict(given)
    except ValueError as exc:
        raise KmlpError(f"bad settings: {exc}") from None


#: What every verb that writes a table of verdicts takes.
TABLE = (VERDICT, TABLE_OUT, CONFIG)
