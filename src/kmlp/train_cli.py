"""`kmlp train`: data set in, one run file out."""

from __future__ import annotations

import sys
import time

import numpy as np

from .errors import KmlpError
from .model import MLP
from .runs import RunRecord, write_run
from .training import TrainSettings, init_seed, print_progress, train


def run_train_cli(args) -> int:
    from .dataset import load

    if args.init == "normal" and args.sigma is None:
        raise KmlpError("--init normal needs --sigma")
    dtype = np.dtype(args.dtype)
    settings = TrainSettings(lam=args.lam, n_batch=args.n_batch, eta_min=args.eta_min,
                             eta_max=args.eta_max, n_s=args.n_s, cycles=args.cycles,
                             eval_every=args.eval_every,
                             eval_train_subset=args.eval_train_subset)
    t0 = time.monotonic()
    ds = load(args.data, dtype=dtype)
    try:
        settings.validate(ds.X_train.shape[0])
        model = MLP([ds.X_train.shape[1], *args.hidden, len(ds.class_names)],
                    batch_norm=args.batch_norm, init=args.init, sigma=args.sigma,
                    seed=init_seed(args.seed), dtype=dtype)
    except ValueError as exc:
        raise KmlpError(str(exc)) from None
    if not args.quiet:
        print(f"kmlp train {args.experiment} seed {args.seed}: sizes {model.sizes}, "
              f"batch norm {model.batch_norm}, {settings.total_updates} updates "
              f"(data loaded in {time.monotonic() - t0:.1f}s)", file=sys.stderr, flush=True)
    result = train(model, ds.X_train, ds.y_train, ds.X_val, ds.y_val, settings, args.seed,
                   progress=None if args.quiet else print_progress())
    final = dict(result.final)
    with np.errstate(all="ignore"):
        test = model.evaluate(ds.X_test, ds.y_test, settings.lam)
    final.update(test_loss=test[0], test_cost=test[1], test_acc=test[2])
    run = RunRecord(
        experiment=args.experiment, seed=args.seed, status=result.status,
        settings=settings.as_dict(), model=model.config(), history=result.history,
        final=final, weights=dict(model.state()), stopped_at=result.stopped_at,
        data_md5=ds.source_md5, data_file=str(args.data), paper=args.paper, source=args.source,
    )
    write_run(args.out, run)
    msg = (f"{args.experiment} seed {args.seed}: {result.status}; val acc {final['val_acc']:.4f}, "
           f"test acc {final['test_acc']:.4f} ({time.monotonic() - t0:.1f}s)")
    if result.status == "diverged":
        msg += f" -- diverged at update {result.stopped_at} (non-finite cost); recorded, not raised"
    print(msg)
    return 0
