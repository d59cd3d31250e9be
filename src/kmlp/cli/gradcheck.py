"""`kmlp gradcheck`: analytic gradients against centred differences, as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..nn.settings import GradcheckSettings
from . import options


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


VERBS = (add_gradcheck,)
