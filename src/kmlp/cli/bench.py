"""`kmlp bench`: how close a training update and a whole run come to the machine's limit."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import KmlpError
from ..nn.settings import TrainSettings
from . import options

#: The study whose nets are timed unless --config names another, and its experiments: the
#: report's 3- and 9-layer nets (each timed with and without batch norm), and the run.
CONFIG = "config/config.yaml"
NETS = ("3layer-nobn", "9layer-nobn")
RUN = "3layer-bn"


def add_bench(sub) -> None:
    s = options.verb(sub, bench, "time an update and a whole run against their matrix-product floors (and PyTorch)")
    s.add_argument(
        "--repeats", type=options.at_least(1), default=7, help="rounds of the update timings; medians are reported"
    )
    s.add_argument("--updates", type=options.at_least(1), default=200, help="updates per candidate and round")
    s.add_argument("--run-rounds", type=options.at_least(0), default=3, help="rounds of whole runs (0: no whole run)")
    s.add_argument("--data", type=Path, help="prepared HDF5 data set for the whole run (default: synthetic data)")
    s.add_argument(
        "--train-size",
        type=options.at_least(3),
        default=45000,
        help="synthetic data: training images (validation 1/9, test 2/9 of it)",
    )
    s.add_argument(
        "--config", type=Path, default=Path(CONFIG), help=f"the study whose experiments are timed (default {CONFIG})"
    )
    s.add_argument(
        "--nets",
        nargs="+",
        default=list(NETS),
        metavar="EXPERIMENT",
        help=f"experiments whose net's update is timed, with and without batch norm (default {' '.join(NETS)})",
    )
    s.add_argument(
        "--experiment", default=RUN, help=f"the experiment whose whole run is timed (default {RUN}); flags change it"
    )
    s.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    s.add_argument("--threads", type=options.at_least(1), default=1, help="BLAS (and PyTorch) threads (default 1)")
    options.output(s, "--out", help="also write every figure as JSON")
    options.add_settings(s, TrainSettings)


def bench(args) -> int:
    """Time one training update of the report's 3- and 9-layer nets, with and without batch
    norm (batch 100, float32), beside the matrix products the update cannot avoid (the
    floor); then whole runs as the workflow makes them (load, training, the history's
    evaluations, final evaluation) beside their floor and, if PyTorch is installed
    (pip install "kmlp[bench]"), the same training in PyTorch on the CPU. Candidates are
    timed in turn, round after round; CPU time of the process counts, wall time is shown
    beside it. The nets and the run come from the study's experiments (--config): by
    default the report's 3- and 9-layer nets and the workflow's 3-layer run with batch
    norm (9,000 updates), with --settings and the training flags over its settings
    (--n-s 225 makes it a tenth)."""
    from ..bench import runs as nb
    from ..environment import numeric_environment
    from ..files import atomic_text

    study = _study(args)
    nets = {f"{len(h) + 1}-layer": h for h in (study.settings(e).hidden for e in args.nets)}
    base = study.settings(args.experiment).as_dict() if args.run_rounds else None
    settings = options.settings_from(args, TrainSettings, base=base) if args.run_rounds else None
    data = _run_data(args, settings, nb) if settings else None  # checked before any timing
    if args.threads != 1:
        print(f"note: {args.threads} threads; the floors and ratios are defined for 1")
    res = {"environment": numeric_environment(), "threads": args.threads}
    res["torch"] = _torch_info(args)
    env = res["environment"]
    print(f"machine: {env['cpu']}; BLAS: {env['blas']}; NumPy {env['numpy']}")
    print(_torch_line(res["torch"]))

    res["config"], res["nets"] = str(args.config), args.nets
    res["update"] = u = nb.measure_updates(nets, calls=args.updates, rounds=args.repeats)
    print(
        f"\none update, batch {u['n_batch']}, float32; median of {u['rounds']} rounds x {u['calls']} updates; "
        "CPU ms (wall ms); x: over the floor"
    )
    print(f"  {'net':8s} {'floor':>15s} {'no BN':>24s} {'BN':>24s}   floor with W1 d_out x d_in: no BN / BN")
    for name, e in u["nets"].items():
        cells = [f"{_ms(e['floor_s']):>15s}"]
        for key in ("no_bn", "bn"):
            cells.append(f"{_ms(e[f'update_{key}_s'])} {e[f'ratio_{key}']['cpu']:5.2f}x".rjust(24))
        cells.append(f"  {e['ratio_no_bn_dout_din']['cpu']:5.2f}x / {e['ratio_bn_dout_din']['cpu']:.2f}x")
        print(f"  {name:8s} " + " ".join(cells))
    print(f"  gathering a shuffled batch of {u['n_batch']} (not in the update): {_ms(u['gather_s'])} ms")

    if settings is not None:
        res["run"] = _whole_run(args, settings, nb, *data)
    if args.out:
        atomic_text(args.out, json.dumps(res, indent=2) + "\n")
    return 0


def _study(args):
    """The study of --config, checked, and the experiments the flags name in it."""
    from ..study import StudyError, load

    if not args.config.is_file():
        raise KmlpError(f"{args.config}: no such config file (--config names the study whose nets are timed)")
    try:
        study = load(args.config)
    except StudyError as exc:
        raise KmlpError(f"{args.config}: " + "; ".join(exc.problems)) from None
    unknown = [e for e in [*args.nets, args.experiment] if e not in study.config["experiments"]]
    if unknown:
        raise KmlpError(f"{', '.join(unknown)}: not an experiment of {args.config}")
    return study


def _torch_info(args) -> dict:
    if args.no_torch:
        return {"available": False, "skipped": True}
    from ..bench.torch_twin import info

    return info()


def _torch_line(t: dict) -> str:
    if t.get("skipped"):
        return "PyTorch: left out (--no-torch)"
    if not t["available"]:
        return 'PyTorch: not installed, no comparison (pip install "kmlp[bench]")'
    return f"PyTorch {t['version']} ({t['cpu_capability']}; import {t['import_s']:.1f} s, not counted)"


def _ms(t: dict) -> str:
    return f"{t['cpu'] * 1e3:.3f} ({t['wall'] * 1e3:.3f})"


def _run_data(args, settings, nb):
    """The whole run's data as ``(load, description)``, checked against the settings."""
    if args.data:
        from ..data import dataset

        n_train, source = dataset.train_size(args.data), str(args.data)

        def load():
            return dataset.load(args.data, dtype=settings.dtype)

    else:
        n_train = args.train_size
        data = nb.synthetic_data(n_train, max(1, n_train // 9), max(1, 2 * n_train // 9))
        source = f"synthetic, {n_train} training images (made once; the load is not timed)"

        def load():
            return data

    try:
        settings.check_data(n_train)
    except ValueError as exc:
        raise KmlpError(f"{source}: {exc}") from None
    return load, source


def _whole_run(args, settings, nb, load, source: str) -> dict:
    r = nb.measure_run(load, settings, rounds=args.run_rounds, torch=not args.no_torch, threads=args.threads)
    r["data"] = source
    net = f"{len(settings.hidden) + 1}-layer{' BN' if settings.batch_norm else ''}"
    first = next(iter(r["runs"].values()))
    print(
        f"\nwhole run: {net}, {first['updates']} updates, {first['evaluated_images']:,} images evaluated; "
        f"data: {source}; median of {r['rounds']} rounds"
    )
    print(f"  {'':6s} {'CPU s':>7s} {'wall s':>7s} {'x floor':>8s} {'load':>6s} {'updates':>8s} {'eval':>6s}  val acc")
    for name, e in r["runs"].items():
        print(
            f"  {name:6s} {e['total_s']['cpu']:7.2f} {e['total_s']['wall']:7.2f} {e['ratio']['cpu']:7.2f}x "
            f"{e['load_s']['cpu']:6.2f} {e['updates_s']['cpu']:8.2f} {e['evaluation_s']['cpu']:6.2f}  "
            f"{e['val_acc']:.4f}{'' if e['status'] == 'completed' else ' (' + e['status'] + ')'}"
        )
    f, u, i = r["runs"]["kmlp"]["floor_s"], r["floor_per_update_s"]["cpu"], r["floor_per_image_s"]["cpu"]
    print(
        f"  floor  {f['cpu']:7.2f} {f['wall']:7.2f}    the products alone: {u * 1e3:.3f} ms per update, "
        f"{i * 1e6:.2f} us per image (CPU)"
    )
    if "speedup_over_torch" in r:
        s = r["speedup_over_torch"]
        print(f"  kmlp is {s['cpu']:.2f}x as fast as PyTorch (CPU time; wall {s['wall']:.2f}x)")
    return r


def add_cost_fit(sub) -> None:
    s = options.verb(sub, cost_fit, "fit the cost model of a training run to the benchmark files of earlier runs")
    s.add_argument("--benchmarks", type=Path, default=Path("results/benchmarks/train"), help="benchmark folder")
    s.add_argument(
        "--config", type=Path, nargs="+", default=[Path(CONFIG)], help="the study's config file(s), later ones on top"
    )
    s.add_argument("--quantile", type=float, default=0.5, help="share of runs the rates predict as slow or slower")


def cost_fit(args) -> int:
    """Fit the rates of kmlp.study.cost (what each term of a training run costs in seconds)
    to the wall times Snakemake measured for earlier runs (their benchmark files), and say
    how well they predict them: the model's REFERENCE on the machine those runs ran on."""
    import numpy as np

    from ..bench.cost_fit import fit, measured
    from ..study import StudyError, load

    try:
        study = load(*args.config)
    except StudyError as exc:
        raise KmlpError(f"{' '.join(map(str, args.config))}: " + "; ".join(exc.problems)) from None
    if not args.benchmarks.is_dir():
        raise KmlpError(f"{args.benchmarks}: no such folder (--benchmarks: results/benchmarks/train of a run)")
    result = fit(study, measured(args.benchmarks, study), args.quantile)
    err = np.abs(result.errors())
    total_m = sum(m for _, _, m, _ in result.runs)
    total_p = sum(p for _, _, _, p in result.runs)
    print(f"REFERENCE = {json.dumps(result.rates)}")
    print(
        f"{len(result.runs)} runs, {total_m:.0f} s measured, {total_p:.0f} s predicted; |predicted/measured - 1|:"
        f" median {np.median(err):.0%}, 90th percentile {np.quantile(err, 0.9):.0%}, max {err.max():.0%};"
        f" predicted slower than measured for {np.mean(np.array(result.errors()) >= 0):.0%} of the runs"
    )
    return 0


VERBS = (add_bench, add_cost_fit)
