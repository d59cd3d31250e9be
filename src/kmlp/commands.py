"""The verbs whose core is the math: train, gradcheck, bench, lambda-pick.

Each reads its inputs (data set, run files), calls the pure modules (model, training,
gradcheck, bench, search) and writes machine-readable outputs plus a human summary;
cli.py only parses arguments.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np

from .errors import KmlpError
from .files import atomic_text
from .model import MLP
from .runs import RunRecord, read_run, write_run
from .training import TrainSettings, init_seed, train


def print_progress(stream=sys.stderr, every_seconds: float = 2.0):
    """A progress callback that prints a line per evaluation, at most every few seconds."""
    start = time.monotonic()
    last = [-1e9]

    def report(step, total, row):
        now = time.monotonic()
        if now - last[0] < every_seconds and step not in (0, total):
            return
        last[0] = now
        print(f"  step {step:6d}/{total}  epoch {row['epoch']:5.1f}  eta {row['eta']:.2e}  "
              f"train acc {row['train_acc']:.3f} cost {row['train_cost']:.3f}  "
              f"val acc {row['val_acc']:.3f}  [{now - start:5.1f}s]", file=stream, flush=True)

    return report


def train_cli(args) -> int:
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


def gradcheck_cli(args) -> int:
    from . import __version__
    from .gradcheck import check_model

    rng = np.random.default_rng(args.seed)
    data_md5 = ""
    if args.data:
        from .dataset import load

        ds = load(args.data, dtype=np.float64, limit=args.n_samples)
        X = ds.X_train[:args.n_samples, :args.input_dim]
        y = ds.y_train[:args.n_samples]
        data_md5 = ds.source_md5
    else:
        X = rng.standard_normal((args.n_samples, args.input_dim))
        y = rng.integers(0, 10, args.n_samples)
    sizes = [X.shape[1], *args.hidden, 10]
    model = MLP(sizes, batch_norm=args.batch_norm, init=args.init, sigma=args.sigma,
                seed=args.seed, dtype=np.float64)
    params = check_model(model, X, y, args.lam, args.h)
    worst = max(p["rel_error"] for p in params.values())
    passed = bool(worst <= args.max_rel_error)
    result = {
        "name": args.name,
        "settings": {"hidden": args.hidden, "batch_norm": args.batch_norm, "init": args.init,
                     "sigma": args.sigma, "lam": args.lam, "n_samples": args.n_samples,
                     "input_dim": int(X.shape[1]), "h": args.h, "seed": args.seed},
        "passed": passed, "max_rel_error": worst, "tolerance": args.max_rel_error,
        "data_md5": data_md5, "kmlp_version": __version__, "parameters": params,
    }
    print(f"gradient check {args.name}: {'PASSED' if passed else 'FAILED'} "
          f"(max relative error {worst:.2e}, tolerance {args.max_rel_error:.0e})")
    for name, p in params.items():
        print(f"  {name:7s} grad mean {p['grad_mean']: .3e} std {p['grad_std']:.3e}  "
              f"diff mean {p['diff_mean']: .2e} std {p['diff_std']:.2e} max {p['diff_max']:.2e}  "
              f"rel {p['rel_error']:.2e}" + (f"  ({p['kinks']} entries at a ReLU kink left out)" if p["kinks"] else ""))
    if args.out:
            atomic_text(args.out, json.dumps(result, indent=2) + "\n")
    if not passed:
        print(f"kmlp gradcheck: error: {args.name} failed: max relative error {worst:.2e} "
              f"exceeds {args.max_rel_error:.0e}", file=sys.stderr)
        return 2
    return 0


def bench_cli(args) -> int:
    from threadpoolctl import threadpool_info

    from .bench import measure

    res = measure(updates=args.updates, repeats=args.repeats)
    res["threads"] = args.threads
    res["blas"] = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                   for i in threadpool_info() if i.get("user_api") == "blas"]
    print(f"3072-50-50-10, batch 100, float32, {args.threads} BLAS thread(s); median of {args.repeats} x {args.updates} updates")
    print(f"  matrix products alone (floor): {res['gemm_floor_s'] * 1e3:8.3f} ms")
    print(f"  update without BN:             {res['update_nobn_s'] * 1e3:8.3f} ms  ({res['ratio_nobn']:.2f} x floor)")
    print(f"  update with BN:                {res['update_bn_s'] * 1e3:8.3f} ms  ({res['ratio_bn']:.2f} x floor)")
    print(f"  mini-batch gather (separate):  {res['gather_s'] * 1e3:8.3f} ms")
    if args.out:
            atomic_text(args.out, json.dumps(res, indent=2) + "\n")
    return 0


def pick_cli(args) -> int:
    from .search import random_lambdas, rank

    runs = [read_run(p) for p in args.runs]
    ranked = rank(runs)
    best = ranked[0]
    doc = {"ranked": ranked, "best": best}
    if args.fine_n:
        centre = math.log10(best["lam"]) if best["lam"] > 0 else args.log10_floor
        doc["fine"] = random_lambdas(args.fine_n, centre - args.half_width,
                                     centre + args.half_width, args.seed)
    atomic_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(f"best lambda {best['lam']:.3g} (validation accuracy {best['val_acc']:.4f}, "
          f"{best['experiment']}) of {len(ranked)}")
    return 0
