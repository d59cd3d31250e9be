"""Numerical gradient checks: centred differences against the analytic gradients."""

from __future__ import annotations

import json
import sys

import numpy as np

from .model import MLP


def numerical_gradients(model: MLP, X, y, lam: float, h: float = 1e-5):
    """Centred differences (J(p + h) - J(p - h)) / 2h for every parameter entry."""
    grads = {}
    for name, p in model.parameters().items():
        g = np.empty_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            c_plus = model.cost(X, y, lam)
            flat[i] = old - h
            c_minus = model.cost(X, y, lam)
            flat[i] = old
            gflat[i] = (c_plus - c_minus) / (2 * h)
        grads[name] = g
    return grads


def relative_error(ga, gn, eps: float = 1e-12):
    """|ga - gn| / max(eps, |ga| + |gn|), elementwise."""
    return np.abs(ga - gn) / np.maximum(eps, np.abs(ga) + np.abs(gn))


def compare(analytic: dict, numerical: dict, abs_floor: float = 1e-8) -> dict:
    """The report's statistics per parameter, and relative errors two ways.

    ``rel_error`` (what a check passes or fails on) is the array-level
    ||ga - gn|| / max(eps, ||ga|| + ||gn||). The entrywise maximum
    ``max_elem_rel_error`` is shown too, but is dominated by entries whose gradient is
    near zero, where the difference quotient's round-off (~1e-10 here) is all there is.
    A parameter whose gradients are all below ``abs_floor`` (a bias before batch norm
    has a true gradient of exactly zero) is compared absolutely: its ``rel_error`` is 0
    when max |ga - gn| < ``abs_floor`` and 1 otherwise.
    """
    stats = {}
    for name, ga in analytic.items():
        gn = numerical[name]
        diff = ga - gn
        scale = np.linalg.norm(ga) + np.linalg.norm(gn)
        if np.abs(ga).max() < abs_floor and np.abs(gn).max() < abs_floor:
            rel = 0.0 if np.abs(diff).max() < abs_floor else 1.0
        else:
            rel = float(np.linalg.norm(diff) / max(1e-12, scale))
        stats[name] = {
            "shape": list(ga.shape),
            "grad_mean": float(ga.mean()), "grad_std": float(ga.std()),
            "diff_mean": float(diff.mean()), "diff_std": float(diff.std()),
            "diff_max": float(np.abs(diff).max()),
            "rel_error": rel,
            "max_elem_rel_error": float(relative_error(ga, gn).max()),
        }
    return stats


def check_model(model: MLP, X, y, lam: float = 0.0, h: float = 1e-5) -> dict:
    _, analytic = model.cost_and_gradients(X, y, lam)
    numerical = numerical_gradients(model, X, y, lam, h)
    return compare(analytic, numerical)


def run_gradcheck_cli(args) -> int:
    from . import __version__

    rng = np.random.default_rng(args.seed)
    data_md5 = ""
    if args.data:
        from .dataset import load

        ds = load(args.data, dtype=np.float64)
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
              f"rel {p['rel_error']:.2e}")
    if args.out:
        from .h5util import atomic_text

        atomic_text(args.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    if not passed:
        print(f"kmlp gradcheck: error: {args.name} failed: max relative error {worst:.2e} "
              f"exceeds {args.max_rel_error:.0e}", file=sys.stderr)
        return 2
    return 0
