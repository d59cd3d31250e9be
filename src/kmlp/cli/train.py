"""`kmlp train`: one configuration with one seed, trained and written as a run file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import KmlpError
from ..nn.settings import TrainSettings
from . import options


def add_train(sub) -> None:
    s = options.verb(
        sub,
        train,
        "train one configuration with one seed and write a run file",
        options.THREADS,
        options.QUIET,
        options.CONFIG,
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
        "--evaluations",
        type=options.at_least(1),
        default=None,
        help="stop at this evaluation after step 0: a partial run (status 'partial'), the beginning of the "
        "whole run bit for bit, for the record check (kmlp check-runs)",
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
    from ..data.dataset import load
    from ..environment import numeric_environment
    from ..nn.training import run as train_run
    from ..runs import RunRecord, write_run

    settings = options.settings_from(args, TrainSettings)
    t0 = time.monotonic()
    ds = load(args.data, dtype=settings.dtype)
    try:
        settings.check_data(ds.X_train.shape[0])
    except ValueError as exc:
        raise KmlpError(str(exc)) from None
    if not args.quiet:
        print(
            f"kmlp train {args.experiment} seed {args.seed}: sizes "
            f"{[ds.X_train.shape[1], *settings.hidden, len(ds.class_names)]}, batch norm {settings.batch_norm}, "
            f"{settings.total_updates} updates (data loaded in {time.monotonic() - t0:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
    progress = None if args.quiet else print_progress()
    model, result = train_run(settings, ds, args.seed, on_evaluate=progress, evaluations=args.evaluations)
    final = result.final
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
        checkpoint_step=result.checkpoint_step,
        data_md5=ds.source_md5,
        data_sha256=ds.content_sha256,
        data_file=str(args.data),
        eval_sizes={split: len(getattr(ds, f"y_{split}")) for split in ("train", "val", "test")},
        environment=numeric_environment(),
        paper=args.paper,
        source={"config": args.config} if args.config else {},
    )
    write_run(args.out, run)
    took = f"({time.monotonic() - t0:.1f}s)"
    if result.status == "diverged":
        print(
            f"{args.experiment} seed {args.seed}: diverged at update {result.stopped_at} (non-finite cost), "
            f"so no final metrics; recorded, not raised {took}"
        )
    else:
        stopped = f" at update {result.stopped_at} of {settings.total_updates}" if result.status == "partial" else ""
        print(
            f"{args.experiment} seed {args.seed}: {result.status}{stopped}; val acc {final['val_acc']:.4f}, "
            f"test acc {final['test_acc']:.4f} {took}"
        )
    return 0


VERBS = (add_train,)
