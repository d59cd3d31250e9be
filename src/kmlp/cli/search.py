"""`kmlp lambda-grid` and `kmlp lambda-pick`: the course's coarse-to-fine lambda search."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import KmlpError
from . import options


def add_lambda_grid(sub) -> None:
    s = options.verb(sub, lambda_grid, "draw the first, coarse grid of a lambda search")
    s.add_argument("--n", type=options.at_least(1), required=True, help="how many lambdas")
    s.add_argument("--log10-min", type=float, required=True, help="lower end, in log10(lambda)")
    s.add_argument("--log10-max", type=float, required=True, help="upper end, in log10(lambda)")
    s.add_argument("--seed", type=options.at_least(0), default=1, help="seed of the draw")
    options.output(s, "--out", required=True, help='JSON to write: {"lambdas": [...]}')


def lambda_grid(args) -> int:
    """Draw --n lambdas with log10(lambda) uniform in [--log10-min, --log10-max],
    reproducibly from --seed, as JSON."""
    from ..files import atomic_text
    from ..nn.search import random_lambdas

    try:
        lams = random_lambdas(args.n, args.log10_min, args.log10_max, args.seed)
    except ValueError as exc:
        raise KmlpError(str(exc)) from None
    atomic_text(args.out, json.dumps({"lambdas": lams}, indent=2) + "\n")
    print(f"{len(lams)} lambdas from 1e{args.log10_min:g} to 1e{args.log10_max:g}")
    return 0


def add_lambda_pick(sub) -> None:
    s = options.verb(sub, lambda_pick, "rank lambda-search runs and draw the next, finer grid")
    s.add_argument("runs", nargs="*", type=Path, help="run files of the search (of an unnamed pass)")
    s.add_argument(
        "--pass",
        dest="passes",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "RUN"),
        help="a named pass of the search and its run files (repeatable)",
    )
    options.output(s, "--out", required=True, help="JSON to write")
    s.add_argument(
        "--fine-n",
        type=options.at_least(0),
        default=0,
        help="how many lambdas to draw for the next pass (default 0: none)",
    )
    s.add_argument(
        "--half-width", type=options.positive, default=0.5, help="half width of the next pass, in decades of lambda"
    )
    s.add_argument("--seed", type=options.at_least(0), default=1, help="seed of the draw")
    s.add_argument(
        "--log10-floor", type=float, default=-5.0, help="centre (log10) of the fine draws when the best lambda is 0"
    )
    s.add_argument(
        "--top", type=options.at_least(0), default=0, help="also list the best K entries (to re-run with more seeds)"
    )


def lambda_pick(args) -> int:
    """Rank run files by mean final validation accuracy; write the ranking (each entry with
    its pass and a distinct row label), the best lambda, (with --top) the best K entries and
    (with --fine-n) random lambdas log-uniform within --half-width decades around the best,
    as JSON."""
    from ..files import atomic_text
    from ..nn.search import random_lambdas, rank
    from ..runs import read_run

    groups = [("search", args.runs)] if args.runs else []
    groups += [(name, paths) for name, *paths in args.passes]
    if not any(paths for _, paths in groups):
        raise KmlpError("no run files given (positional, or after --pass NAME)")
    runs = [(name, read_run(p)) for name, paths in groups for p in paths]
    try:
        ranked = rank([r for _, r in runs], passes={r.experiment: name for name, r in runs})
        best = ranked[0]
        doc = {"ranked": ranked, "best": best}
        if args.top:
            doc["top"] = ranked[: args.top]
        if args.fine_n:
            centre = math.log10(best["lam"]) if best["lam"] > 0 else args.log10_floor
            doc["fine"] = random_lambdas(args.fine_n, centre - args.half_width, centre + args.half_width, args.seed)
    except ValueError as exc:
        raise KmlpError(str(exc)) from None
    atomic_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(
        f"best lambda {best['lam']:.3g} (validation accuracy {best['val_acc']:.4f}, "
        f"{best['experiment']}) of {len(ranked)}"
    )
    return 0


VERBS = (add_lambda_grid, add_lambda_pick)
