"""The verbs whose core is the math: gradcheck, train, lambda-grid, lambda-pick (bench: cli/bench.py).

Each reads its inputs (data set, run files), calls kmlp.nn and writes machine-readable
outputs plus a human summary.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from ..errors import KmlpError
from ..nn.settings import GradcheckSettings, TrainSettings
from . import options


# -- gradcheck -----------------------------------------------------------------------
def add_gradcheck(sub) -> None:
    s = options.verb(sub, gradcheck, "compare analytic gradients with centred differences", options.THREADS)
    s.add_argument("--data", type=Path, help="prepared HDF5 data set (default: Gaussian random inputs)")
    s.add_argument("--name", default="gradcheck", help="a label stored in the output")
    options.output(s, "--out", help="write the statistics as JSON here")
    options.add_settings(s, GradcheckSettings)


def gradcheck(args) -> int:
    """Build a net on the first --input-dim dimensions of the first --n-samples training
    images and compare every parameter's analytic gradient with a float64 centred
    difference. Exit 2 if the maximum relative error exceeds --max-rel-error."""
    from .. import __version__
    from ..environment import numeric_environment
    from ..files import atomic_text
    from ..nn.gradcheck import random_batch, run_check

    settings = options.settings_from(args, GradcheckSettings)
    data_md5 = ""
    if args.data:
        from ..data.dataset import load

        ds = load(args.data, dtype="float64", limit=settings.n_samples)
        X = ds.X_train[: settings.n_samples, : settings.input_dim]
        y = ds.y_train[: settings.n_samples]
        data_md5 = ds.source_md5
    else:
        X, y = random_batch(settings)
    res = run_check(settings, X, y)
    worst, passed, params = res["max_rel_error"], res["passed"], res["parameters"]
    recorded = settings.as_dict()
    del recorded["max_rel_error"]
    recorded["input_dim"] = int(X.shape[1])
    result = {
        "name": args.name,
        "settings": recorded,
        "passed": passed,
        "max_rel_error": worst,
        "tolerance": settings.max_rel_error,
        "data_md5": data_md5,
        "kmlp_version": __version__,
        "environment": numeric_environment(),
        "parameters": params,
    }
    print(
        f"gradient check {args.name}: {'PASSED' if passed else 'FAILED'} "
        f"(max relative error {worst:.2e}, tolerance {settings.max_rel_error:.0e})"
    )
    for name, p in params.items():
        print(
            f"  {name:7s} grad mean {p['grad_mean']: .3e} std {p['grad_std']:.3e}  "
            f"diff mean {p['diff_mean']: .2e} std {p['diff_std']:.2e} max {p['diff_max']:.2e}  "
            f"rel {p['rel_error']:.2e}" + (f"  ({p['kinks']} entries at a ReLU kink left out)" if p["kinks"] else "")
        )
    if args.out:
        atomic_text(args.out, json.dumps(result, indent=2) + "\n")
    if not passed:
        print(
            f"kmlp gradcheck: error: {args.name} failed: max relative error {worst:.2e} "
            f"exceeds {settings.max_rel_error:.0e}",
            file=sys.stderr,
        )
        return 2
    return 0


# -- train ---------------------------------------------------------------------------
def add_train(sub) -> None:
    s = options.verb(
        sub, train, "train one configuration with one seed and write a run file", options.THREADS, options.QUIET
    )
    s.add_argument("--data", required=True, type=Path, help="prepared HDF5 data set (kmlp prepare)")
    options.output(s, "--out", required=True, help="run file to write (.h5)")
    s.add_argument("--experiment", default="run", help="experiment name stored in the run file")
    s.add_argument("--seed", type=options.at_least(0), default=1, help="seed of initialisation and shuffling")
    s.add_argument(
        "--paper",
        type=options.json_object,
        default={},
        help="the report's numbers for this run, as JSON, stored for aggregation",
    )
    s.add_argument(
        "--source", type=options.json_object, default={}, help="provenance to store (JSON), e.g. the config file"
    )
    options.add_settings(s, TrainSettings)


def print_progress(stream=sys.stderr, every_seconds: float = 2.0):
    """A progress callback that prints a line per evaluation, at most every few seconds."""
    start = time.monotonic()
    last = [-1e9]

    def report(step, total, row):
        now = time.monotonic()
        if now - last[0] < every_seconds and step not in (0, total):
            return
        last[0] = now
        print(
            f"  step {step:6d}/{total}  epoch {row['epoch']:5.1f}  eta {row['eta']:.2e}  "
            f"train acc {row['train_acc']:.3f} cost {row['train_cost']:.3f}  "
            f"val acc {row['val_acc']:.3f}  [{now - start:5.1f}s]",
            file=stream,
            flush=True,
        )

    return report


def train(args) -> int:
    """Mini-batch gradient descent with a triangular cyclical learning rate and L2
    regularisation. Writes an HDF5 run file with the history, final train/validation/test
    metrics and the weights. A divergence (non-finite cost) ends the run and is recorded,
    not raised; a diverged run's final metrics are NaN (nothing is measured on it)."""
    import numpy as np

    from ..data.dataset import load
    from ..environment import numeric_environment
    from ..nn.training import build_model
    from ..nn.training import train as fit
    from ..runs import RunRecord, write_run

    settings = options.settings_from(args, TrainSettings)
    t0 = time.monotonic()
    ds = load(args.data, dtype=settings.dtype)
    try:
        settings.check_data(ds.X_train.shape[0])
        model = build_model(settings, ds.X_train.shape[1], len(ds.class_names), args.seed)
    except ValueError as exc:
        raise KmlpError(str(exc)) from None
    if not args.quiet:
        print(
            f"kmlp train {args.experiment} seed {args.seed}: sizes {model.sizes}, "
            f"batch norm {model.batch_norm}, {settings.total_updates} updates "
            f"(data loaded in {time.monotonic() - t0:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
    result = fit(
        model,
        ds.X_train,
        ds.y_train,
        ds.X_val,
        ds.y_val,
        settings,
        args.seed,
        progress=None if args.quiet else print_progress(),
    )
    final = dict(result.final)
    if result.status == "diverged":  # nothing is measured on a diverged net
        final.update(test_loss=math.nan, test_cost=math.nan, test_acc=math.nan)
    else:
        with np.errstate(all="ignore"):
            test = model.evaluate(ds.X_test, ds.y_test, settings.lam)
        final.update(test_loss=test[0], test_cost=test[1], test_acc=test[2])
    run = RunRecord(
        experiment=args.experiment,
        seed=args.seed,
        status=result.status,
        settings=settings.schedule_dict(),
        model=model.config(),
        history=result.history,
        final=final,
        weights=dict(model.state()),
        stopped_at=result.stopped_at,
        data_md5=ds.source_md5,
        data_sha256=ds.content_sha256,
        data_file=str(args.data),
        eval_sizes={split: len(getattr(ds, f"y_{split}")) for split in ("train", "val", "test")},
        environment=numeric_environment(),
        paper=args.paper,
        source=args.source,
    )
    write_run(args.out, run)
    took = f"({time.monotonic() - t0:.1f}s)"
    if result.status == "diverged":
        print(
            f"{args.experiment} seed {args.seed}: diverged at update {result.stopped_at} (non-finite cost), "
            f"so no final metrics; recorded, not raised {took}"
        )
    else:
        print(
            f"{args.experiment} seed {args.seed}: {result.status}; val acc {final['val_acc']:.4f}, "
            f"test acc {final['test_acc']:.4f} {took}"
        )
    return 0


# -- lambda-grid and lambda-pick -----------------------------------------------------
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


VERBS = (add_gradcheck, add_train, add_lambda_grid, add_lambda_pick)
